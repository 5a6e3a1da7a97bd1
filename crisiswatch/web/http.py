"""What every JSON handler of the page's API shares: request bodies, errors, scope checks, scope JSON.

`crisiswatch.web.server` (the `Api`), `crisiswatch.web.governance_api` and `crisiswatch.web.silences_api`
build their handlers on these, so none of them imports another's internals.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from crisiswatch.contracts.control import ControlMessage, is_scope


class Body(BaseModel):
    """A JSON request body: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def error(kind: type[web.HTTPException], message: str, headers: dict[str, str] | None = None) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": message}``."""
    return kind(text=json.dumps({"error": message}), content_type="application/json", headers=headers)


async def parse(request: web.Request, model: type[Body]) -> Any:
    """The request's JSON body as ``model`` (400 with the first problem otherwise)."""
    try:
        raw = await request.read()
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise error(web.HTTPBadRequest, first_error(exc)) from exc


def first_error(exc: ValidationError) -> str:
    """The first validation problem, as ``field: message``."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


def check_scope(scope: str) -> None:
    """400 unless ``scope`` is a valid scope."""
    if not is_scope(scope):
        hint = "use global, brand:<id>, channel:<name> or account:<id>"
        raise error(web.HTTPBadRequest, f"invalid scope {scope!r}: {hint}")


def scope_json(scope: str, message: ControlMessage | None, name: str | None = None) -> dict[str, Any]:
    """One scope as the page shows it (a scope without any message is active)."""
    kind, _, ident = scope.partition(":")
    out: dict[str, Any] = {
        "scope": scope,
        "kind": kind,
        "name": name or ident or "All publishing",
        "paused": bool(message and message.paused),
        "state": message.state if message else "active",
    }
    if message is not None:
        out.update(
            actor=message.actor,
            reason=message.reason,
            since=message.issued_at.isoformat(),
            resume_at=message.resume_at.isoformat() if message.resume_at else None,
            on_resume=message.on_resume,
            alert_id=message.alert_id,
            episode=message.episode,
            seq=message.seq,
            kid=message.kid,
        )
    return out
