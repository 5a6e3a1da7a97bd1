"""The page's pictures and plain words: per-brand timeline endpoints and the alert headline.

* ``GET /api/brands/{brand}/timeline?hours=6``: one brand's chart data (`TimelineStore.timeline_json`)
  with ``headline``, the newest window in one sentence;
* ``GET /api/timelines?hours=6``: every brand's (the configured brands first), for the page's charts;
* `alert_view`: an alert episode as ``GET /api/alerts`` returns it, plus ``headline`` (the newest window
  of a firing episode in plain words, else its peak), ``peak_headline`` and ``latest`` (the newest
  window's numbers, so a card never shows only the window that triggered it).

``hours`` is clamped to 0.25-24 (what the timelines keep). 503 until the feed has read its history.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from crisiswatch.alerting.plain import plain_headline
from crisiswatch.web.timeline import MAX_HOURS, TimelineFeed, window_numbers

if TYPE_CHECKING:
    from crisiswatch.alerting.book import Episode
    from crisiswatch.web.server import WebServices

DEFAULT_HOURS = 6.0


def _error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


def _hours(request: web.Request) -> float:
    try:
        hours = float(request.query.get("hours", DEFAULT_HOURS))
    except ValueError as exc:
        raise _error(web.HTTPBadRequest, "hours must be a number") from exc
    if hours != hours:  # NaN
        raise _error(web.HTTPBadRequest, "hours must be a number")
    return min(MAX_HOURS, max(0.25, hours))


def _names(services: WebServices) -> dict[str, str]:
    return dict(services.brands)


def brand_timeline(feed: TimelineFeed, brand: str, hours: float, name: str | None) -> dict[str, Any] | None:
    """One brand's chart data with its plain-words headline (None for a brand with no windows yet)."""
    data = feed.store.timeline_json(brand, hours, name)
    if data is None:
        return None
    latest = data.get("latest")
    data["headline"] = plain_headline(brand, latest["evidence"], name) if latest else None
    if latest:
        latest = data["latest"] = {k: v for k, v in latest.items() if k != "evidence"}
    return data


def _feed(services: WebServices) -> TimelineFeed:
    feed = getattr(services, "timelines", None)
    if feed is None:
        raise _error(web.HTTPNotFound, "timelines are not followed by this server")
    return feed


def timeline_handler(services: WebServices) -> Callable[..., Any]:
    """``GET /api/brands/{brand}/timeline``."""

    async def handle(request: web.Request, principal: Any) -> web.Response:
        feed = _feed(services)
        brand = request.match_info["brand"]
        data = brand_timeline(feed, brand, _hours(request), _names(services).get(brand))
        if data is None:
            if not feed.caught_up.is_set():
                raise _error(web.HTTPServiceUnavailable, "still reading the signals history, try again shortly")
            raise _error(web.HTTPNotFound, f"no windows for brand {brand!r} yet")
        return web.json_response({**data, "caught_up": feed.caught_up.is_set()})

    return handle


def timelines_handler(services: WebServices) -> Callable[..., Any]:
    """``GET /api/timelines``: every brand with windows, configured brands first (in the brands file's order)."""

    async def handle(request: web.Request, principal: Any) -> web.Response:
        feed = _feed(services)
        hours = _hours(request)
        names = _names(services)
        order = [*names, *sorted(b for b in feed.store.brands if b not in names)]
        out = []
        for brand in order:
            data = brand_timeline(feed, brand, hours, names.get(brand))
            if data is not None:
                out.append(data)
        return web.json_response({"timelines": out, "caught_up": feed.caught_up.is_set(), "hours": hours})

    return handle


def alert_view(episode: Episode, services: WebServices) -> dict[str, Any]:
    """``Episode.to_json`` plus the plain words and numbers of its newest and its worst window.

    ``headline``: the newest window of a firing episode in plain words (else its peak); ``peak_headline``
    and ``peak``: the worst window of the episode on the brand's timeline (highest risk, then volume), or
    the alert record's own evidence when the timeline does not reach back that far; ``latest``: the newest
    window's numbers.
    """
    data = episode.to_json()
    name = _names(services).get(episode.brand)
    shown = episode.latest if episode.status == "firing" else (episode.peak or episode.latest)
    data["name"] = name or episode.brand
    data["peak_headline"] = plain_headline(episode.brand, shown.evidence, name)
    data["headline"] = data["peak_headline"]
    data["latest"] = None
    data["peak"] = None
    feed = getattr(services, "timelines", None)
    if feed is not None:
        timeline = feed.store.brands.get(episode.brand)
        points = timeline.points if timeline is not None else ()
        if timeline is not None and points and points[-1].end >= shown.event_time.timestamp():
            newest = feed.store.timeline_json(episode.brand, 0.25, name)
            if newest and newest["latest"]:
                latest = newest["latest"]
                if episode.status == "firing":
                    data["headline"] = plain_headline(episode.brand, latest["evidence"], name)
                data["latest"] = {k: v for k, v in latest.items() if k != "evidence"}
        until = episode.latest.event_time.timestamp() if episode.status == "resolved" else float("inf")
        peak = feed.store.peak_between(episode.brand, episode.first.window_start.timestamp(), until)
        if peak is not None:
            data["peak"] = window_numbers(peak)
            data["peak_headline"] = plain_headline(episode.brand, peak.evidence(), name)
            if episode.status != "firing":
                data["headline"] = data["peak_headline"]
    return data


def add_routes(app: web.Application, services: WebServices, read: Callable[[Any], Any]) -> None:
    """Register the timeline endpoints (``read``: the API's authenticated, read-only wrapper)."""
    app.router.add_get("/api/timelines", read(timelines_handler(services)))
    app.router.add_get("/api/brands/{brand}/timeline", read(timeline_handler(services)))
