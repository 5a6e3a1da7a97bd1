"""X (Twitter) API v2 filtered stream, with its rules kept in step with the brands file.

Rules: on every start, ``GET /2/tweets/search/stream/rules`` lists the app's rules; each watched brand
gets one rule, tagged ``<rule_tag_prefix><brand id>`` (``crisiswatch:acme``), whose value is built from
the brand's terms and exclusions (``(acme OR #acme OR @acme) -"acme tools" -is:retweet``). Missing
rules are added and rules carrying our tag prefix that no longer match the brands file are deleted
(``POST /2/tweets/search/stream/rules``); rules of other tags are left alone.

Stream: ``GET /2/tweets/search/stream`` with ``tweet.fields``, ``expansions=author_id`` and
``user.fields``: one JSON object per line (``{"data": {...}, "includes": {"users": [...]},
"matching_rules": [...]}``), and an empty ``\\r\\n`` keep-alive line about every 20 s. No byte for
``stall_timeout`` (default 3 × 20 s) is a stall: reconnect. An ``{"errors": [...]}`` line without
``data`` (an operational disconnect) ends the connection: reconnect.

Reconnect backoff, as X documents it: network errors and stalls back off linearly (+250 ms per attempt,
up to 16 s); HTTP errors exponentially from 5 s up to 320 s; ``429`` exponentially from 1 min, and never
before ``x-rate-limit-reset``. A connection that delivered data resets all three.

Catch-up: the checkpoint keeps the newest tweet id. After each (re)connect, the recent search
(``GET /2/tweets/search/recent?query=<rule>&since_id=…``, ``next_token`` pages) fills the gap for every
rule; the overlap with the stream is dropped by id. Set ``catch_up: false`` on access levels without
recent search.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from crisiswatch.connectors import metrics
from crisiswatch.connectors.base import (
    Connector,
    ConnectorError,
    Handover,
    StateStore,
    check_response,
    keep_connected,
    retry_after_seconds,
    safe_url,
    sleep_or_stop,
)
from crisiswatch.connectors.mapping import MappingError, parse_timestamp
from crisiswatch.connectors.platforms._common import (
    SAVE_EVERY_SECONDS,
    Checkpoint,
    catch_up_or_skip,
    newer,
    reset_delay,
)
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.connectors.sources import BuildContext, Duration, SourceConfig, source_kind
from crisiswatch.contracts.records import Author, Context, Mention, Metrics
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.detectors.brands import BrandsConfig, TermSet
from crisiswatch.detectors.seen import SeenIds

log = logging.getLogger(__name__)
TWEET_FIELDS = "created_at,lang,public_metrics,author_id,conversation_id,referenced_tweets"
USER_FIELDS = "public_metrics,username"
MAX_RULE_CHARS = 512
MAX_RATE_LIMIT_WAITS = 5
_PLAIN = re.compile(r"^[#@]?\w+$")


# --- rules ------------------------------------------------------------------------------------------------------
def _operand(term: str) -> str:
    term = term.strip()
    return term if _PLAIN.match(term) else '"' + term.replace("\\", "").replace('"', "") + '"'


def brand_rule(brand: TermSet, include_retweets: bool = False) -> str:
    """The filtered-stream rule value of one brand: its terms OR-ed, its exclusions negated."""
    terms = [_operand(t) for t in brand.terms]
    value = terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"
    value += "".join(f" -{_operand(e)}" for e in brand.exclude)
    if not include_retweets:
        value += " -is:retweet"
    return value


@dataclass
class RuleSync:
    """What a rule synchronisation did."""

    added: list[dict[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: int = 0


# --- records ----------------------------------------------------------------------------------------------------
def tweet_to_mention(tweet: dict[str, Any], users: dict[str, dict[str, Any]], fetched_at: datetime) -> Mention:
    """The mention of one tweet object (``users``: the ``includes.users`` by id). Raises MappingError."""
    tweet_id, text = tweet.get("id"), tweet.get("text")
    if not isinstance(tweet_id, str) or not tweet_id or not isinstance(text, str):
        raise MappingError("tweet without id or text")
    created = parse_timestamp(tweet.get("created_at"))
    user = users.get(str(tweet.get("author_id"))) or {}
    username = user.get("username")
    counts = tweet.get("public_metrics") or {}
    followers = (user.get("public_metrics") or {}).get("followers_count")
    refs = {r.get("type"): r.get("id") for r in tweet.get("referenced_tweets") or [] if isinstance(r, dict)}
    conversation = tweet.get("conversation_id")
    lang = tweet.get("lang")
    shares = [counts[k] for k in ("retweet_count", "quote_count") if isinstance(counts.get(k), int)]
    try:
        return Mention(
            id=f"x:{tweet_id}",
            source="x",
            text=text,
            created_at=created,
            url=f"https://x.com/{username}/status/{tweet_id}" if username else f"https://x.com/i/web/status/{tweet_id}",
            lang=lang if isinstance(lang, str) and len(lang) == 2 else None,  # not "und", "qme", "zxx"
            author=Author(id=tweet.get("author_id"), handle=username, followers=followers),
            metrics=Metrics(
                likes=counts.get("like_count"),
                shares=sum(shares) if shares else None,
                replies=counts.get("reply_count"),
                reach=counts.get("impression_count") or None,
            ),
            fetched_at=fetched_at,
            context=Context(
                in_reply_to=f"x:{refs['replied_to']}" if refs.get("replied_to") else None,
                quotes=f"x:{refs['quoted']}" if refs.get("quoted") else None,
                root=f"x:{conversation}" if conversation and conversation != tweet_id else None,
            ),
        )
    except ValueError as exc:
        raise MappingError(f"invalid tweet: {str(exc).splitlines()[0]}") from exc


# --- backoff ----------------------------------------------------------------------------------------------------
class XReconnect(BaseModel):
    """Reconnect delays (seconds) of the filtered stream; the defaults are the ones X documents."""

    model_config = ConfigDict(extra="forbid")

    network_step: Duration = Field(0.25, gt=0)
    network_max: Duration = Field(16.0, gt=0)
    http_initial: Duration = Field(5.0, gt=0)
    http_max: Duration = Field(320.0, gt=0)
    rate_limit_initial: Duration = Field(60.0, gt=0)
    rate_limit_max: Duration = Field(960.0, gt=0)


class XBackoff:
    """X's three reconnect schedules: linear for network errors, exponential for HTTP errors and 429."""

    def __init__(self, policy: XReconnect | None = None):
        self.policy = policy or XReconnect()
        self.network_attempts = self.http_attempts = self.rate_attempts = 0

    def network(self) -> float:
        self.network_attempts += 1
        return min(self.policy.network_step * self.network_attempts, self.policy.network_max)

    def http(self) -> float:
        delay = min(self.policy.http_initial * 2 ** min(self.http_attempts, 30), self.policy.http_max)
        self.http_attempts += 1
        return delay

    def rate_limited(self, reset_wait: float | None) -> float:
        delay = min(self.policy.rate_limit_initial * 2 ** min(self.rate_attempts, 30), self.policy.rate_limit_max)
        self.rate_attempts += 1
        return max(delay, reset_wait or 0.0)

    def reset(self) -> None:
        self.network_attempts = self.http_attempts = self.rate_attempts = 0


class _Disconnect(Exception):
    """The stream ended in a way that calls for the network (linear) schedule."""


def _rate_limit_wait(response: httpx.Response) -> float | None:
    retry = retry_after_seconds(response.headers.get("retry-after"))
    return retry if retry is not None else reset_delay(response.headers.get("x-rate-limit-reset"))


def _error_titles(body: Any) -> str:
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ""
    return "; ".join(str(e.get("title") or e.get("message") or e)[:120] for e in errors if isinstance(e, dict))


# --- options and connector --------------------------------------------------------------------------------------
class XSource(SourceConfig):
    """``kind: x`` options."""

    api_url: str = "https://api.x.com"
    token_env: str = Field(description="Environment variable holding the app's bearer token.")
    brands: list[str] | None = Field(None, description="Only these brand ids of the brands file (default: all).")
    rule_tag_prefix: str = Field("crisiswatch:", min_length=1)
    include_retweets: bool = False
    manage_rules: bool = True
    catch_up: bool = True
    stall_timeout: Duration = Field(60.0, gt=0, description="No byte (not even a keep-alive) this long: reconnect.")
    checkpoint_every: Duration = Field(SAVE_EVERY_SECONDS, gt=0, description="Checkpoint at most this often.")
    max_pages: int = Field(10, ge=1, le=100)
    reconnect: XReconnect = Field(default_factory=XReconnect)


class XFilteredStream(Connector):
    """Keeps the filtered-stream rules in step with the brands file and follows the stream."""

    kind = "x"

    def __init__(
        self,
        brands: BrandsConfig,
        token: str,
        *,
        api_url: str = "https://api.x.com",
        only_brands: list[str] | None = None,
        rule_tag_prefix: str = "crisiswatch:",
        include_retweets: bool = False,
        manage_rules: bool = True,
        catch_up: bool = True,
        stall_seconds: float = 60.0,
        max_pages: int = 10,
        reconnect: XReconnect | None = None,
        checkpoint_every: float = SAVE_EVERY_SECONDS,
        state: StateStore | None = None,
        timeout: float = 30.0,
        user_agent: str = "crisiswatch-connector/0.1",
    ):
        wanted = [b for b in brands.brands if only_brands is None or b.id in only_brands]
        if not wanted:
            raise ValueError(f"none of the brands {only_brands} is in the brands file")
        self.rules = {f"{rule_tag_prefix}{b.id}": brand_rule(b, include_retweets) for b in wanted}
        for tag, value in self.rules.items():
            if len(value) > MAX_RULE_CHARS:
                log.warning("x rule %s is %d characters (the basic limit is %d)", tag, len(value), MAX_RULE_CHARS)
        self.api_url = api_url.rstrip("/")
        self.prefix = rule_tag_prefix
        self.manage_rules = manage_rules
        self.catch_up_enabled = catch_up
        self.stall_seconds = stall_seconds
        self.max_pages = max_pages
        self.backoff = XBackoff(reconnect)
        self.checkpoint = Checkpoint(state or StateStore(None), every=checkpoint_every)
        self.timeout = timeout
        self.headers = {"User-Agent": user_agent, "Authorization": f"Bearer {token}"}
        self.seen = SeenIds(self.checkpoint.data.get("seen", []), max_ids=5000)
        self.connections = 0
        self.delays: list[tuple[str, float]] = []  # (schedule, seconds) of every reconnect wait
        self._rules_synced = False
        self._schedule = "network"  # the backoff schedule of the next reconnect wait
        self._stop = asyncio.Event()

    # --- rules ----------------------------------------------------------------------------------------------
    async def sync_rules(self, client: httpx.AsyncClient) -> RuleSync:
        """Add the missing brand rules, delete our stale ones; other tags are not touched."""
        url = f"{self.api_url}/2/tweets/search/stream/rules"
        response = await client.get(url)
        self._check(response)
        existing = response.json().get("data") or []
        sync = RuleSync()
        present = set()
        for rule in existing:
            tag, value = str(rule.get("tag") or ""), rule.get("value")
            if not tag.startswith(self.prefix):
                continue
            if self.rules.get(tag) == value and (tag, value) not in present:
                present.add((tag, value))
                sync.kept += 1
            else:
                sync.deleted.append(str(rule.get("id")))
        if sync.deleted:
            response = await client.post(url, json={"delete": {"ids": sync.deleted}})
            self._check(response)
        sync.added = [{"value": v, "tag": t} for t, v in self.rules.items() if (t, v) not in present]
        if sync.added:
            response = await client.post(url, json={"add": sync.added})
            self._check(response)
            titles = _error_titles(response.json())
            if titles:
                log.warning("x rules: some were not created: %s", titles)
        log.info("x rules: %d kept, %d added, %d deleted", sync.kept, len(sync.added), len(sync.deleted))
        return sync

    def _check(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            raise ConnectorError("rate_limited", "HTTP 429", _rate_limit_wait(response))
        if response.status_code >= 400:
            try:
                titles = _error_titles(response.json())
            except ValueError:
                titles = ""
            log.warning("x %s: HTTP %d %s", safe_url(str(response.request.url)), response.status_code, titles)
        check_response(response)

    # --- run ------------------------------------------------------------------------------------------------
    async def run(self, sink: MentionSink, stop: asyncio.Event) -> None:
        self._stop = stop
        handover = Handover(sink, self.kind, self.seen)
        timeout = httpx.Timeout(self.timeout, read=self.stall_seconds)
        async with httpx.AsyncClient(timeout=timeout, headers=self.headers) as client:
            try:
                await keep_connected(
                    lambda: self._connect(client, handover),
                    stop,
                    after_end=lambda: self._next_wait("network"),  # the server closed the stream
                    after_error=self._failed,
                    waiting=self._waiting,
                )
            finally:
                await self._save(handover)

    async def _connect(self, client: httpx.AsyncClient, handover: Handover) -> None:
        if self.manage_rules and not self._rules_synced:
            await self.sync_rules(client)
            self._rules_synced = True
        await self._follow(client, handover)

    def _failed(self, exc: Exception) -> float:
        """Count a failed connection; the wait of X's backoff schedule for its kind (network, HTTP, 429)."""
        if isinstance(exc, ConnectorError):
            self.count_error(exc, "stream")
            if exc.reason == "rate_limited":
                return self._next_wait("rate_limit", exc.retry_after)
            return self._next_wait("http" if exc.reason in ("http_4xx", "http_5xx") else "network")
        if isinstance(exc, _Disconnect | httpx.TransportError | OSError):
            self.count_error(ConnectorError("connect", str(exc)), "stream")
            return self._next_wait("network")
        self.count_error(exc, "stream")
        return self._next_wait("http")

    def _next_wait(self, schedule: str, retry_after: float | None = None) -> float:
        self._schedule = schedule
        if schedule == "rate_limit":
            return self.backoff.rate_limited(retry_after)
        return self.backoff.http() if schedule == "http" else self.backoff.network()

    def _waiting(self, delay: float) -> None:
        self.delays.append((self._schedule, delay))
        log.info("x stream: reconnecting in %.2fs (%s backoff)", delay, self._schedule)

    async def _save(self, handover: Handover) -> None:
        self.checkpoint.data["seen"] = self.seen.to_list()[-2000:]
        await self.checkpoint.save(handover.sink)

    def stream_params(self) -> dict[str, str]:
        return {"tweet.fields": TWEET_FIELDS, "expansions": "author_id", "user.fields": USER_FIELDS}

    async def _follow(self, client: httpx.AsyncClient, handover: Handover) -> None:
        url = f"{self.api_url}/2/tweets/search/stream"
        async with client.stream("GET", url, params=self.stream_params()) as response:
            if response.status_code >= 400:
                await response.aread()
            self._check(response)
            self.connections += 1
            self.mark_success()
            if self.catch_up_enabled:
                await catch_up_or_skip(self.catch_up(client, handover), self.kind, log)
            try:
                async for line in response.aiter_lines():
                    if not line.strip():
                        self.mark_success()  # keep-alive
                        continue
                    await self._line(line, handover)
                    self.backoff.reset()
                    self.mark_success()
            except httpx.ReadTimeout as exc:
                raise _Disconnect(f"stalled: no keep-alive for {self.stall_seconds:.0f}s") from exc
            except httpx.RemoteProtocolError as exc:
                raise _Disconnect("stream dropped") from exc

    async def _line(self, line: str, handover: Handover) -> None:
        try:
            payload = json.loads(line)
        except ValueError as exc:
            await handover.raw(line.encode("utf-8", errors="surrogateescape"), f"not JSON: {exc}")
            return
        if not isinstance(payload, dict):
            await handover.raw(line.encode(), "not an object")
            return
        if "data" not in payload and payload.get("errors"):
            raise ConnectorError("connect", f"disconnected by X: {_error_titles(payload)}")
        newest = await self._tweets(payload, handover)
        if newer(newest, self.checkpoint.data.get("since_id")):
            self.checkpoint.data["since_id"] = newest
        self.checkpoint.data["seen"] = self.seen.to_list()[-2000:]
        await self.checkpoint.maybe_save(handover.sink)

    async def _tweets(self, payload: dict[str, Any], handover: Handover) -> str | None:
        """Hand over the tweets of one stream line or search page; returns the newest id among them."""
        data = payload.get("data")
        tweets = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        users = {str(u.get("id")): u for u in (payload.get("includes") or {}).get("users") or [] if isinstance(u, dict)}
        newest: str | None = None
        fetched = utcnow()
        for tweet in tweets:
            try:
                mention = tweet_to_mention(tweet, users, fetched)
            except MappingError as exc:
                await handover.raw(json.dumps(tweet, ensure_ascii=False).encode(), str(exc))
                continue
            await handover.mention(mention)
            if newer(tweet.get("id"), newest):
                newest = tweet["id"]
        return newest

    # --- catch-up -------------------------------------------------------------------------------------------
    async def catch_up(self, client: httpx.AsyncClient, handover: Handover) -> int:
        """Recent search since the checkpoint's tweet id for every rule (nothing on a first start)."""
        since = self.checkpoint.data.get("since_id")
        if since is None:
            return 0
        newest, read = since, 0
        url = f"{self.api_url}/2/tweets/search/recent"
        for tag, rule in self.rules.items():
            token: str | None = None
            for _page in range(self.max_pages):
                params = {**self.stream_params(), "query": rule, "since_id": str(since), "max_results": "100"}
                if token:
                    params["next_token"] = token
                body = await self._get_json(client, url, params)
                page_newest = await self._tweets(body, handover)
                if newer(page_newest, newest):
                    newest = page_newest
                meta = body.get("meta") or {}
                read += int(meta.get("result_count") or 0)
                token = meta.get("next_token")
                if not token:
                    break
            else:
                log.warning("x catch-up of %s: more than %d pages; older ones skipped", tag, self.max_pages)
        self.checkpoint.data["since_id"] = newest
        await self._save(handover)
        if read:
            log.info("x: caught up %d tweets since %s", read, since)
        return read

    async def _get_json(self, client: httpx.AsyncClient, url: str, params: dict[str, str]) -> dict[str, Any]:
        for _attempt in range(MAX_RATE_LIMIT_WAITS + 1):
            response = await client.get(url, params=params)
            if response.status_code == 429:
                delay = _rate_limit_wait(response)
                delay = self.backoff.rate_limited(None) if delay is None else delay
                metrics.count_error(self.kind, "rate_limited")
                if await sleep_or_stop(self._stop, delay):
                    raise ConnectorError("rate_limited", "stopped while rate limited")
                continue
            self._check(response)
            try:
                body = response.json()
            except ValueError as exc:
                raise ConnectorError("parse", f"{safe_url(url)} did not answer JSON") from exc
            if not isinstance(body, dict):
                raise ConnectorError("parse", f"{safe_url(url)}: not an object")
            return body
        raise ConnectorError("rate_limited", f"still rate limited after {MAX_RATE_LIMIT_WAITS} waits")


@source_kind("x", XSource)
def build(config: XSource, ctx: BuildContext) -> Connector:
    """The connector of a ``kind: x`` entry."""
    token = ctx.secret(config, config.token_env)
    assert token is not None
    return XFilteredStream(
        ctx.brands(),
        token,
        api_url=config.api_url,
        only_brands=config.brands,
        rule_tag_prefix=config.rule_tag_prefix,
        include_retweets=config.include_retweets,
        manage_rules=config.manage_rules,
        catch_up=config.catch_up,
        stall_seconds=config.stall_timeout,
        checkpoint_every=config.checkpoint_every,
        max_pages=config.max_pages,
        reconnect=config.reconnect,
        state=ctx.state(config),
        timeout=ctx.settings.connectors.connector_timeout_seconds,
        user_agent=ctx.settings.connectors.connector_user_agent,
    )
