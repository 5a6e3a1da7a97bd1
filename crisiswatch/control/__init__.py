"""The pause-all-publishing control plane.

* `ControlPlane` (``plane.py``): signs and publishes pause/resume changes (the risk agent, the CLI and
  the HTTP API use it).
* `PublishingGate` / `SyncPublishingGate` (``gate.py``): what every publishing service embeds to ask
  whether a post may go out, failing closed (unverifiable, unknown, stale or unsigned state: no).
* `ScheduleStore` / `Scheduler` (``schedules.py``): planned pause windows, absolute or recurring.
* `Relay` (``relay.py``): pushes every change to external systems by webhook.
* ``messages.py``: the `Keyring` that signs and verifies the records (Ed25519); ``keys.py``: key pairs
  (writers hold private keys, gates only public keys). The records themselves are contracts
  (`crisiswatch.contracts.control`); the most used ones are re-exported here for publishing services.
"""

from crisiswatch.contracts.control import AuditRecord, ControlMessage, Heartbeat, Schedule, scope_of
from crisiswatch.control.backlog import Backlog, DeferredPost
from crisiswatch.control.gate import PublishingGate, SyncPublishingGate
from crisiswatch.control.messages import ControlRejected, Keyring, SigningUnavailable
from crisiswatch.control.plane import ChangeResult, ControlPlane, ResumeRefused
from crisiswatch.control.view import Decision

__all__ = [
    "AuditRecord",
    "Backlog",
    "ChangeResult",
    "ControlMessage",
    "ControlPlane",
    "ControlRejected",
    "Decision",
    "DeferredPost",
    "Heartbeat",
    "Keyring",
    "PublishingGate",
    "ResumeRefused",
    "Schedule",
    "SigningUnavailable",
    "SyncPublishingGate",
    "scope_of",
]
