"""JSON HTTP API poller (forum, review and social search APIs).

Every ``interval`` seconds one *cycle*: GET the URL with the configured query parameters and read the
items at the mapping's ``items`` path, then follow the pages while the response names a next cursor
(up to ``max_pages``). Pagination, from the ``pagination`` section of the mapping file:

- ``cursor_path`` — where the next cursor is in a response (``meta.next_cursor``); ``cursor_param`` — the
  query parameter to send it in. Without ``cursor_param`` the cursor value is a full next-page URL.
- ``since_param`` + ``since_field`` — incremental polling: the highest ``since_field`` value (a dotted
  path in the raw items, default the mapped ``id`` path) seen so far is sent as ``since_param`` on the
  next cycle (``since_id=…``, ``updated_after=…``).
- ``resume_cursor: true`` — stream-like APIs: the next cycle starts from the last cursor instead of from
  the top.

A 429 (or 503) answer is retried after its ``Retry-After`` (delta-seconds or HTTP date; jittered
backoff when absent), up to 5 times per page, without restarting the cycle. The since value, cursor and
recently seen ids are checkpointed after each cycle.
"""

from __future__ import annotations

import logging
import os
import string
from dataclasses import dataclass
from typing import Any

import httpx

from crisiswatch.connectors import metrics
from crisiswatch.connectors.base import (
    Backoff,
    ConnectorError,
    Handover,
    PollingConnector,
    StateStore,
    check_response,
    retry_after_seconds,
    safe_url,
    sleep_or_stop,
)
from crisiswatch.connectors.mapping import MISSING, FieldMapping, MappingError, get_path
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.detectors.seen import SeenIds

log = logging.getLogger(__name__)
MAX_RATE_LIMIT_RETRIES = 5


def expand_env(value: str) -> str:
    """``${VAR}`` / ``$VAR`` replaced from the environment (keeps secrets out of mapping files)."""
    return string.Template(value).safe_substitute(os.environ)


def _expanded(values: dict[str, Any]) -> dict[str, str]:
    return {str(k): expand_env(str(v)) for k, v in values.items()}


@dataclass(frozen=True)
class Pagination:
    """How the poller walks pages and resumes between cycles (see the module docstring)."""

    cursor_path: str | None = None
    cursor_param: str | None = None
    since_param: str | None = None
    since_field: str | None = None
    resume_cursor: bool = False
    max_pages: int = 10

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Pagination:
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"pagination: unknown keys {sorted(unknown)}")
        return cls(**data)


def _later(a: Any, b: Any) -> bool:
    """Whether since value ``a`` is after ``b`` (numerically when both are numbers, else as text)."""
    try:
        return float(a) > float(b)
    except (TypeError, ValueError):
        return str(a) > str(b)


class JsonApiPoller(PollingConnector):
    """Polls one JSON API endpoint, page by page, and publishes the mapped items."""

    kind = "poll"

    def __init__(
        self,
        url: str,
        mapping: FieldMapping,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        pagination: Pagination | None = None,
        interval: float = 60.0,
        state: StateStore | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        user_agent: str = "crisiswatch-connector/0.1",
    ):
        super().__init__(interval, backoff or Backoff(), state or StateStore(None), timeout, user_agent)
        self.url = url
        self.mapping = mapping
        self.params = _expanded({**mapping.extra.get("params", {}), **(params or {})})
        self.headers = _expanded({**mapping.extra.get("headers", {}), **(headers or {})})
        self.pagination = pagination or Pagination.from_dict(mapping.extra.get("pagination"))
        self.since_field = self.pagination.since_field or mapping.fields["id"]
        self.seen = SeenIds(self.state.data.get("seen", []), max_ids=5000)
        self.requests = 0

    async def _get_json(self, url: str, params: dict[str, str]) -> Any:
        """GET and decode JSON, waiting out 429/503 answers (Retry-After) on the same page."""
        for _attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
            response = await self.client.get(url, params=params, headers=self.headers)
            self.requests += 1
            if response.status_code in (429, 503):
                delay = retry_after_seconds(response.headers.get("retry-after"))
                if delay is None and response.status_code == 503:
                    check_response(response)  # a plain 503: the cycle fails, run() backs off
                delay = self.backoff.next() if delay is None else delay
                log.info("poll %s: HTTP %d, retrying in %.1fs", safe_url(url), response.status_code, delay)
                metrics.count_error(self.kind, "rate_limited")  # waited out, not a failed cycle
                if await sleep_or_stop(self._stop, delay):
                    raise ConnectorError("rate_limited", "stopped while waiting for Retry-After")
                continue
            check_response(response)
            try:
                return response.json()
            except ValueError as exc:
                raise ConnectorError("parse", f"{safe_url(url)} did not answer JSON") from exc
        raise ConnectorError("rate_limited", f"still rate limited after {MAX_RATE_LIMIT_RETRIES} retries")

    async def poll_once(self, sink: MentionSink) -> int:
        pagination = self.pagination
        since = self.state.data.get("since")
        cursor = self.state.data.get("cursor") if pagination.resume_cursor else None
        newest = since
        handover = Handover(sink, self.kind, self.seen)
        for _page in range(pagination.max_pages):
            url, params = self.url, dict(self.params)
            if since is not None and pagination.since_param:
                params[pagination.since_param] = str(since)
            if cursor:
                if pagination.cursor_param:
                    params[pagination.cursor_param] = str(cursor)
                else:
                    url = str(httpx.URL(self.url).join(str(cursor)))
            body = await self._get_json(url, params)
            try:
                items = self.mapping.items_of(body)
            except MappingError:
                items = []  # a page without the items key: an empty page
            await handover.items(items, self.mapping)
            for item in items:
                value = get_path(item, self.since_field)
                if value is not MISSING and (newest is None or _later(value, newest)):
                    newest = value
            next_cursor = get_path(body, pagination.cursor_path) if pagination.cursor_path else MISSING
            if next_cursor is MISSING or not next_cursor or next_cursor == cursor:
                break
            cursor = next_cursor
            if not items:
                break
        await sink.flush()
        self.state.data.update(since=newest, seen=self.seen.to_list())
        if pagination.resume_cursor:
            self.state.data["cursor"] = cursor
        self.state.save()
        self.mark_success()
        return handover.published
