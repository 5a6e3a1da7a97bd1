"""HTTP API of silences (`crisiswatch.control.silences`): ``GET|POST /api/silences``, ``DELETE /api/silences/{id}``.

Mounted by `crisiswatch.web.server.create_app` with `add_silence_routes`; every endpoint needs an
authenticated user, changes also pass the CSRF, origin and rate checks of the page's other changes, and
a ``viewer`` (when roles are configured) may only read. The app starts its own `SilenceStore` in the
background when it starts (the page does not wait for it; the endpoints answer 503 until it has read
the topic) and stops it when it stops.

``POST /api/silences`` takes ``{"brand", "reason", "until", "from"?, "id"?}``: ``from`` and ``until``
are ISO times with a zone, ``now`` (``from`` only), or durations with units (``2h``: ``from`` counts from
now, ``until`` from ``from``); a bare number is refused, and so is a window that is already over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.messages import SigningUnavailable
from crisiswatch.control.silences import SilenceStore, new_silence, parse_when, silence_json
from crisiswatch.follow import cancel_and_wait

log = logging.getLogger(__name__)

STORE_KEY = web.AppKey("silence_store", dict)
"""``{"store": SilenceStore | None, "task": asyncio.Task | None, "error": str | None}``."""


class SilenceBody(BaseModel):
    """What ``POST /api/silences`` takes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    brand: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)
    until: str = Field(min_length=1, max_length=64)
    start: str = Field("now", alias="from", min_length=1, max_length=64)
    id: str | None = Field(default=None, max_length=64)


def _error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


def _store(request: web.Request) -> SilenceStore:
    holder = request.app[STORE_KEY]
    store = holder.get("store")
    if holder.get("error") or store is None or (holder.get("task") is not None and not holder["task"].done()):
        raise _error(web.HTTPServiceUnavailable, holder.get("error") or "silences are still loading, try again")
    return store


def _may_change(principal: Any) -> None:
    if getattr(principal, "role", None) == "viewer":
        raise _error(web.HTTPForbidden, "viewers cannot plan silences: an operator or admin can")


async def list_silences(request: web.Request, principal: Any) -> web.Response:
    """Silences not over yet (``?all=1``: also the past ones), by start."""
    store = _store(request)
    now = utcnow()
    include_past = request.query.get("all", "") in ("1", "true", "yes")
    return web.json_response({"silences": [silence_json(s, now) for s in store.silences(include_past=include_past)]})


async def add_silence(request: web.Request, principal: Any) -> web.Response:
    _may_change(principal)
    try:
        body = SilenceBody.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise _error(web.HTTPBadRequest, f"{where}: {err.get('msg')}") from exc
    store = _store(request)
    now = utcnow()
    try:
        start = parse_when(body.start, base=now)
        end = parse_when(body.until, base=start)
        silence = new_silence(
            body.brand, start=start, end=end, reason=body.reason, created_by=principal.user, silence_id=body.id, now=now
        )
    except ValidationError as exc:
        raise _error(web.HTTPBadRequest, str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from exc
    except ValueError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from exc
    try:
        stored = await store.add(silence)
    except SigningUnavailable as exc:
        raise _error(web.HTTPServiceUnavailable, str(exc)) from exc
    except ValueError as exc:
        raise _error(web.HTTPConflict, str(exc)) from exc
    log.warning("%s silenced %s (%s): %s", principal.user, stored.brand, stored.id, stored.reason)
    return web.json_response({"silence": silence_json(stored, utcnow())}, status=201)


async def remove_silence(request: web.Request, principal: Any) -> web.Response:
    _may_change(principal)
    silence_id = request.match_info["silence_id"]
    try:
        removed = await _store(request).remove(silence_id, actor=principal.user)
    except SigningUnavailable as exc:
        raise _error(web.HTTPServiceUnavailable, str(exc)) from exc
    if removed is None:
        raise _error(web.HTTPNotFound, f"no silence {silence_id!r}")
    return web.json_response({"removed": silence_id})


def add_silence_routes(app: web.Application, api: Any) -> None:
    """Mount the silence endpoints on ``app`` (``api``: the page's `Api`, for authentication and its settings)."""
    holder: dict[str, Any] = {"store": None, "task": None, "error": None}
    app[STORE_KEY] = holder

    async def start(_: web.Application) -> None:
        store = SilenceStore(api.settings, keyring=api.s.plane.keyring)
        holder["store"] = store

        async def run() -> None:
            try:
                await store.start()
            except Exception as exc:  # the page works without silences; the endpoints say why
                holder["error"] = f"silences unavailable: {exc}"
                log.warning("%s", holder["error"])

        holder["task"] = asyncio.create_task(run(), name="silences-start")

    async def stop(_: web.Application) -> None:
        task, store = holder["task"], holder["store"]
        if task is not None and not task.done():
            await cancel_and_wait(task)
        if store is not None:
            with contextlib.suppress(Exception):
                await store.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    read, change = api.authenticated(change=False), api.authenticated(change=True)
    app.router.add_get("/api/silences", read(list_silences))
    app.router.add_post("/api/silences", change(add_silence))
    app.router.add_delete("/api/silences/{silence_id}", change(remove_silence))
