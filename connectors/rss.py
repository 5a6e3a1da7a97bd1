"""RSS / Atom feed connector (news sites, blogs).

Each poll is a conditional GET (``If-None-Match`` / ``If-Modified-Since`` from the last answer's
``ETag`` / ``Last-Modified``; a 304 publishes nothing), parsed with feedparser. An entry becomes a
Mention with:

- ``id`` = ``rss:<feed host>:<entry id>``, or ``rss:<feed host>:<hash of the link>`` when the entry has
  no id (``<hash of title+summary>`` when it has neither);
- ``text`` = title and summary (or content) with HTML stripped and entities decoded;
- ``created_at`` = published, else updated, else the fetch time; a date without a timezone is UTC;
- ``url`` = link, ``author.handle`` = author name, ``lang`` = the feed's language (2-letter code).

Entries already published (ids remembered per feed, up to 5,000) are not published again. An entry
with neither title nor summary is handed over raw (the pipeline dead-letters it). A response that is
not a feed at all is a source error (counted, retried with backoff), not a mention.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import feedparser

from crisiswatch.connectors.base import (
    Backoff,
    ConnectorError,
    Handover,
    PollingConnector,
    StateStore,
    check_response,
    safe_url,
    short_hash,
)
from crisiswatch.connectors.mapping import MappingError, parse_timestamp, qualified_id
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.contracts.records import Author, Mention
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.detectors.seen import SeenIds

log = logging.getLogger(__name__)
SEEN_PER_FEED = 5000
_BLOCK_TAGS = frozenset({"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote"})
_SPACES = re.compile(r"\s+")
_LANG = re.compile(r"^([A-Za-z]{2})(?:[-_].*)?$")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment: tags, scripts and styles removed, entities decoded, spaces squeezed."""
    if "<" not in markup and "&" not in markup:
        return _SPACES.sub(" ", markup).strip()
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return _SPACES.sub(" ", "".join(extractor.parts)).strip()


def entry_text(entry: Any) -> str:
    """Title plus summary (or the first content block), as plain text."""
    title = html_to_text(entry.get("title") or "")
    body_html = entry.get("summary") or ""
    if not body_html and entry.get("content"):
        body_html = entry["content"][0].get("value") or ""
    body = html_to_text(body_html)
    if title and body.startswith(title):
        return body
    return "\n".join(part for part in (title, body) if part)


def entry_time(entry: Any, fallback: datetime) -> datetime:
    """published, else updated, else created, else ``fallback``; all UTC (no timezone → UTC)."""
    for name in ("published", "updated", "created"):
        parsed = entry.get(f"{name}_parsed")
        if parsed:
            return datetime(*parsed[:6], tzinfo=UTC)  # feedparser already converted to UTC
        raw = entry.get(name)
        if raw:
            try:
                return parse_timestamp(raw)
            except MappingError:
                continue
    return fallback


def feed_language(feed: Any) -> str | None:
    """The feed's 2-letter language code (``en-us`` → ``en``), if it declares one."""
    match = _LANG.match((feed.get("language") or "").strip())
    return match.group(1).lower() if match else None


class FeedConnector(PollingConnector):
    """Polls one RSS/Atom feed URL and publishes its new entries."""

    kind = "rss"

    def __init__(
        self,
        url: str,
        *,
        source: str = "news",
        interval: float = 60.0,
        state: StateStore | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        user_agent: str = "crisiswatch-connector/0.1",
    ):
        super().__init__(interval, backoff or Backoff(), state or StateStore(None), timeout, user_agent)
        self.url = url
        self.source = source
        self.host = (urlsplit(url).hostname or "unknown").lower()
        self.seen = SeenIds(self.state.data.get("seen", []), max_ids=SEEN_PER_FEED)

    def mention_id(self, entry: Any) -> str:
        """``rss:<feed host>:<entry id | link hash | content hash>``."""
        entry_id = (entry.get("id") or "").strip()
        if entry_id:
            return qualified_id(f"rss:{self.host}", entry_id)
        link = (entry.get("link") or "").strip()
        basis = link or f"{entry.get('title', '')}\n{entry.get('summary', '')}"
        return f"rss:{self.host}:{short_hash(basis)}"

    def to_mention(self, entry: Any, language: str | None, fetched_at: datetime) -> Mention | None:
        """The Mention of one entry, or None when it has no text to speak of."""
        text = entry_text(entry)
        if not text:
            return None
        author = (entry.get("author") or "").strip()
        return Mention(
            id=self.mention_id(entry),
            source=self.source,
            text=text[:50_000],
            created_at=entry_time(entry, fetched_at),
            url=entry.get("link") or None,
            author=Author(handle=author[:200]) if author else None,
            lang=language,
            fetched_at=fetched_at,
        )

    async def poll_once(self, sink: MentionSink) -> int:
        headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"}
        if etag := self.state.data.get("etag"):
            headers["If-None-Match"] = etag
        if modified := self.state.data.get("last_modified"):
            headers["If-Modified-Since"] = modified
        response = await self.client.get(self.url, headers=headers)
        if response.status_code == 304:
            self.mark_success()
            return 0
        check_response(response)
        fetched_at = utcnow()
        parsed = feedparser.parse(
            response.content,
            response_headers={
                "content-location": str(response.url),
                "content-type": response.headers.get("content-type", ""),
                "content-language": response.headers.get("content-language", ""),
            },
        )
        if not parsed.get("version") and not parsed.entries:
            raise ConnectorError("parse", f"{safe_url(self.url)} is not an RSS/Atom feed")
        language = feed_language(parsed.feed)
        handover = Handover(sink, self.kind, self.seen)
        for entry in parsed.entries:
            mention = self.to_mention(entry, language, fetched_at)
            if mention is None:
                if self.seen.first_time(f"raw:{self.mention_id(entry)}"):
                    await handover.raw(json.dumps(entry, default=str).encode(), "feed entry without text")
                continue
            await handover.mention(mention)
        await sink.flush()
        self.state.data.update(
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            seen=self.seen.to_list(),
        )
        self.state.save()
        self.mark_success()
        log.info("rss %s: %d new of %d entries", safe_url(self.url), handover.published, len(parsed.entries))
        return handover.published
