"""The governance endpoints of the HTTP API: the audit log and two-person resume requests.

* ``GET /api/audit?since=2h&scope=global&limit=200``: the audit log, newest last, each record verified
  (``verified``; ``problem`` says why one cannot be). Every role may read it.
* ``GET /api/resume-requests``: pending two-person resume requests.
* ``POST /api/resume-requests/{id}/approve`` (``{"reason": ...}``): a second person (operator or admin,
  not the requester) approves within the time limit; the resume is published as the approver, and a
  ``resume_approved`` audit record names both. 410 when it expired, 409 when the scope's pause changed
  since the request (a new pause needs a new request).
* ``POST /api/resume-requests/{id}/cancel``: the requester (or an admin) withdraws it.

The rules are in `crisiswatch.web.governance`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import Field

from crisiswatch.contracts.control import AuditRecord, ControlMessage
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.audit import parse_since, read_audit
from crisiswatch.control.messages import SigningUnavailable
from crisiswatch.control.plane import ResumeRefused
from crisiswatch.web.auth import Principal
from crisiswatch.web.governance import Denied, RequestExpired, RequestGone, ResumeRequest
from crisiswatch.web.http import Body, check_scope, error, parse, scope_json

if TYPE_CHECKING:
    from crisiswatch.web.server import Api

AUDIT_READS_AT_ONCE = 2


class DecisionBody(Body):
    reason: str | None = Field(default=None, max_length=2000)


def denied(exc: Denied) -> web.HTTPException:
    return error(web.HTTPForbidden, str(exc))


class GovernanceApi:
    """Handlers for the audit log and the two-person resume (they share `Api`'s services and rules)."""

    def __init__(self, api: Api):
        self.api = api
        self._audit_slots = asyncio.Semaphore(AUDIT_READS_AT_ONCE)

    def add_routes(self, app: web.Application, read: Any, change: Any) -> None:
        app.router.add_get("/api/audit", read(self.audit))
        app.router.add_get("/api/resume-requests", read(self.list_requests))
        app.router.add_post("/api/resume-requests/{request_id}/approve", change(self.approve))
        app.router.add_post("/api/resume-requests/{request_id}/cancel", change(self.cancel))

    # --- audit log -------------------------------------------------------------------------------------
    async def audit(self, request: web.Request, principal: Principal) -> web.Response:
        query = request.query
        try:
            since = parse_since(query.get("since", "24h"))
            limit = max(1, min(1000, int(query.get("limit", "200"))))
        except ValueError as exc:
            raise error(web.HTTPBadRequest, str(exc)) from exc
        scope = query.get("scope") or None
        if scope is not None:
            check_scope(scope)
        plane = self.api.s.plane
        try:
            async with self._audit_slots:
                entries = await read_audit(self.api.settings, plane.keyring, since=since, scope=scope, limit=limit)
        except TimeoutError as exc:
            raise error(web.HTTPServiceUnavailable, str(exc)) from exc
        return web.json_response(
            {
                "since": since.isoformat(),
                "records": [e.to_json() for e in entries],
                "unverified": sum(1 for e in entries if not e.verified),
            }
        )

    # --- two-person resume -----------------------------------------------------------------------------
    async def request_resume(
        self, principal: Principal, scope: str, reason: str, on_resume: str | None
    ) -> web.Response:
        """An operator's resume of ``scope`` that needs a second person: record the request (202)."""
        current = self.api.s.plane.get(scope)
        if current is None or not current.paused:
            return web.json_response(
                {"changed": False, "note": f"{scope} is not paused", "state": scope_json(scope, current)}
            )
        requests = self.api.requests
        pending = requests.for_scope(scope)
        if pending is not None and pending.seq == current.seq:
            if pending.user != principal.user:
                raise error(
                    web.HTTPConflict,
                    f"{pending.user} already asked to resume {scope}: approve their request {pending.id} instead",
                )
            note = "you already asked: publishing stays paused until a second person approves"
            return self._request_response(pending, note)
        if pending is not None:
            requests.remove(pending.id)  # it asked about an earlier pause
        created = requests.create(
            scope=scope,
            user=principal.user,
            reason=reason,
            seconds=self.api.policy.approval_seconds,
            seq=current.seq,
            episode=current.episode,
            on_resume=on_resume,
        )
        await self._audit(created, "resume_requested", principal.user, reason, current)
        minutes = max(1, round(self.api.policy.approval_seconds / 60))
        note = f"publishing stays paused until a second person (operator or admin) approves, within {minutes} min"
        return self._request_response(created, note)

    def _request_response(self, request: ResumeRequest, note: str) -> web.Response:
        body = {"changed": False, "approval_required": True, "note": note, "request": request.to_json(utcnow())}
        return web.json_response(body, status=202)

    async def list_requests(self, request: web.Request, principal: Principal) -> web.Response:
        now = utcnow()
        pending = [r.to_json(now) for r in self.api.requests.pending()]
        for row in pending:
            row["you_may_approve"] = row["requested_by"] != principal.user and principal.role in ("operator", "admin")
        return web.json_response({"requests": pending, "approval_enabled": self.api.policy.resume_approval})

    def _pending(self, request: web.Request) -> ResumeRequest:
        request_id = request.match_info["request_id"]
        try:
            return self.api.requests.get(request_id)
        except RequestExpired as exc:
            raise error(web.HTTPGone, str(exc)) from exc
        except RequestGone as exc:
            raise error(web.HTTPNotFound, str(exc)) from exc

    async def approve(self, request: web.Request, principal: Principal) -> web.Response:
        pending = self._pending(request)
        body = await parse(request, DecisionBody)
        policy = self.api.policy
        try:
            policy.check_approve(principal.role, principal.user, pending)
            approval = policy.reason(body.reason, "approved")
        except Denied as exc:
            raise denied(exc) from exc
        except ValueError as exc:
            raise error(web.HTTPBadRequest, str(exc)) from exc
        plane = self.api.s.plane
        current = plane.get(pending.scope)
        if current is None or not current.paused or current.seq != pending.seq:
            self.api.requests.remove(pending.id)
            raise error(
                web.HTTPConflict,
                f"{pending.scope} changed since {pending.user} asked to resume it: ask again if it should resume",
            )
        self.api.requests.remove(pending.id)  # one approval: a second click cannot resume a later pause
        reason = f"{pending.reason} (asked by {pending.user}; approved by {principal.user}: {approval})"[:2000]
        try:
            result = await plane.resume(
                pending.scope,
                reason=reason,
                actor=principal.user,
                on_resume=pending.on_resume,  # type: ignore[arg-type]
            )
        except ResumeRefused as exc:
            raise error(web.HTTPForbidden, str(exc)) from exc
        except SigningUnavailable as exc:
            raise error(web.HTTPServiceUnavailable, str(exc)) from exc
        await self._audit(pending, "resume_approved", principal.user, approval, current, result.message)
        return web.json_response(
            {
                "changed": result.changed,
                "note": result.note,
                "state": scope_json(pending.scope, result.message),
                "requested_by": pending.user,
                "approved_by": principal.user,
            }
        )

    async def cancel(self, request: web.Request, principal: Principal) -> web.Response:
        pending = self._pending(request)
        body = await parse(request, DecisionBody)
        try:
            self.api.policy.check_cancel(principal.role, principal.user, pending)
        except Denied as exc:
            raise denied(exc) from exc
        self.api.requests.remove(pending.id)
        current = self.api.s.plane.get(pending.scope)
        await self._audit(pending, "resume_cancelled", principal.user, body.reason or "withdrawn", current)
        return web.json_response({"cancelled": pending.id})

    async def _audit(
        self,
        pending: ResumeRequest,
        action: str,
        actor: str,
        reason: str,
        before: ControlMessage | None,
        after: ControlMessage | None = None,
    ) -> None:
        record = AuditRecord(
            action=action,  # type: ignore[arg-type]
            scope=pending.scope,
            actor=actor,
            reason=reason[:2000],
            at=utcnow(),
            episode=pending.episode,
            seq=after.seq if after else None,
            state=after.state if after else None,
            previous_state=before.state if before else None,
            previous_seq=before.seq if before else None,
            previous_actor=before.actor if before else None,
            previous_reason=before.reason if before else None,
            request_id=pending.id,
            requested_by=pending.user,
            expires_at=pending.expires_at,
        )
        try:
            await self.api.s.plane.append_audit(record)
        except SigningUnavailable as exc:
            raise error(web.HTTPServiceUnavailable, str(exc)) from exc
