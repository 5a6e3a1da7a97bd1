"""The HTTP API and the one-button page: state of every scope, "Pause all", alerts, schedules.

`WebServer` runs it (on its own port, inside any asyncio process); `create_app` builds the aiohttp
application for mounting; ``crisiswatch serve`` runs it standalone. See ``server.py``.
"""

from crisiswatch.web.auth import Authenticator, ConfigError, RateLimiter
from crisiswatch.web.server import WebServer, WebServices, create_app, run_forever

__all__ = ["Authenticator", "ConfigError", "RateLimiter", "WebServer", "WebServices", "create_app", "run_forever"]
