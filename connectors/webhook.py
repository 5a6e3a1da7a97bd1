"""Webhook receiver for push sources (review platforms, social-listening vendors).

``POST /webhooks/{source}`` takes one JSON mention, a JSON array of mentions, or NDJSON (one per line).
Items are mention-shaped by default (``id``, ``text``, ``created_at``, optional ``url``, ``lang``,
``author``, ``metrics``); a per-source `connectors.mapping.FieldMapping` handles a vendor's own shape.
Ids are qualified with the source (``trustpilot:<id>``) and ``source`` is the path's ``{source}``
unless the mapping maps it.

Authentication (at least one must be configured): ``X-Crisiswatch-Signature: sha256=<hex>`` — an
HMAC-SHA256 of the raw body with ``CRISISWATCH_CONNECTOR_WEBHOOK_SECRET``, compared in constant time —
or ``Authorization: Bearer <CRISISWATCH_CONNECTOR_WEBHOOK_TOKEN>``. A request that fails
authentication gets 401 and nothing is published. Bodies over ``max_bytes`` get 413.

Answers: 202 ``{"accepted": n, "rejected": m}`` once every item is *secured*: acknowledged by the
broker (``acks=all``) or, while the broker is down, fsynced in the sink's on-disk spool, from which it
is delivered in order when the broker is back (`connectors.sink`). Items that could not be normalised
are handed over raw and counted as rejected: the pipeline dead-letters them with the reason. 503 with
``Retry-After`` when they cannot be secured within ``handover_timeout`` seconds (broker down and no
spool, or the spool full): the sender should retry; ids are stable and the pipeline de-duplicates, so a
retry of items that did get through costs nothing. Also ``GET /healthz`` and ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from crisiswatch.connectors import metrics
from crisiswatch.connectors.base import Connector, Handover
from crisiswatch.connectors.mapping import FieldMapping
from crisiswatch.connectors.sink import MentionSink, SinkClosed

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Crisiswatch-Signature"
SINK_KEY = web.AppKey("sink", MentionSink)
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def split_body(body: bytes) -> tuple[list[Any], list[bytes]]:
    """Parse a body into items (a JSON value, array or NDJSON) and the raw lines that were not JSON."""
    try:
        parsed = json.loads(body)
    except ValueError:
        pass
    else:
        return (parsed if isinstance(parsed, list) else [parsed]), []
    items: list[Any] = []
    bad: list[bytes] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        items.extend(value if isinstance(value, list) else [value])
    return items, bad


class WebhookReceiver(Connector):
    """An aiohttp app that receives pushed mentions and hands them to the sink."""

    kind = "webhook"

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 8090,
        max_bytes: int = 1 << 20,
        sources: Iterable[str] | None = None,
        mappings: dict[str, FieldMapping] | None = None,
        handover_timeout: float = 10.0,
        retry_after: int = 5,
    ):
        if not secret and not token:
            raise ValueError("webhook receiver needs a signing secret or a bearer token")
        self.secret = secret or None
        self.token = token or None
        self.host = host
        self.port = port
        self.max_bytes = max_bytes
        self.sources = frozenset(sources) if sources else None
        self.mappings = dict(mappings or {})
        self.bound_port: int | None = None
        self.handover_timeout = handover_timeout
        """Seconds a request may wait for its items to be secured before it is answered 503."""
        self.retry_after = retry_after
        """``Retry-After`` of a 503, seconds."""

    def mapping_for(self, source: str) -> FieldMapping:
        """The source's own mapping, else the mention-shaped default (ids prefixed with the source)."""
        return self.mappings.get(source) or FieldMapping(source=source)

    def authorised(self, request: web.Request, body: bytes) -> bool:
        """Valid signature or bearer token (constant-time comparisons)."""
        signature = request.headers.get(SIGNATURE_HEADER, "").strip()
        if self.secret and signature:
            expected = sign(self.secret, body)
            if hmac.compare_digest(signature.lower().encode(), expected.encode()):
                return True
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if self.token and scheme.lower() == "bearer" and presented:
            return hmac.compare_digest(presented.strip().encode(), self.token.encode())
        return False

    def app(self, sink: MentionSink) -> web.Application:
        """The aiohttp application, bound to ``sink``."""
        app = web.Application(client_max_size=self.max_bytes)
        app[SINK_KEY] = sink
        app.router.add_post("/webhooks/{source}", self._receive)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _receive(self, request: web.Request) -> web.Response:
        source = request.match_info["source"]
        if not SOURCE_NAME.match(source) or (self.sources is not None and source not in self.sources):
            return web.json_response({"error": "unknown source"}, status=404)
        if request.content_length is not None and request.content_length > self.max_bytes:
            metrics.count_error(self.kind, "too_large")
            return web.json_response({"error": "body too large"}, status=413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            metrics.count_error(self.kind, "too_large")
            return web.json_response({"error": "body too large"}, status=413)
        if not self.authorised(request, body):
            metrics.count_error(self.kind, "auth")
            log.warning("webhook %s: rejected a request with a bad or missing signature/token", source)
            return web.json_response(
                {"error": "bad or missing signature"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        if not body.strip():
            return web.json_response({"error": "empty body"}, status=400)
        items, bad_lines = split_body(body)
        sink = request.app[SINK_KEY]
        if not sink.has_room():  # memory and spool full: do not even start
            return self._unavailable(source, "the hand-over buffer and spool are full")
        handover = Handover(sink, self.kind)
        try:
            async with asyncio.timeout(self.handover_timeout):
                for line in bad_lines:
                    await handover.raw(line, "webhook line is not JSON")
                published, raw = await handover.items(items, self.mapping_for(source))
                await sink.flush()  # 202 only once acknowledged, or fsynced in the spool
        except TimeoutError:
            return self._unavailable(source, f"not secured within {self.handover_timeout:g} s (broker down)")
        except SinkClosed:
            return self._unavailable(source, "the receiver is stopping")
        except Exception:
            log.exception("webhook %s: handing over failed", source)
            return self._unavailable(source, "handing over failed")
        self.mark_success()
        return web.json_response({"accepted": published, "rejected": raw + len(bad_lines)}, status=202)

    def _unavailable(self, source: str, why: str) -> web.Response:
        metrics.count_error(self.kind, "kafka")
        log.warning("webhook %s: answered 503 (%s)", source, why)
        return web.json_response(
            {"error": f"could not store the items ({why}); retry"},
            status=503,
            headers={"Retry-After": str(self.retry_after)},
        )

    async def run(self, sink: MentionSink, stop: asyncio.Event) -> None:
        runner = web.AppRunner(self.app(sink), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        addresses = runner.addresses
        self.bound_port = int(addresses[0][1]) if addresses else self.port
        log.info("webhook receiver listening on http://%s:%s/webhooks/{source}", self.host, self.bound_port)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
