"""Which mentions an alert cites as "what people are saying".

A window keeps (`keep_cited`) its `TOP_CITED` mentions with the most reach **and** its `TOP_CITED` most
reached *concerning* mentions (negative, or naming a crisis term), one per story: at most twice
`TOP_CITED`. The risk assessor then orders them (`cited`): for a negativity alert the concerning ones
first, by reach, then the others by reach (a happy review with a large audience is not evidence of a
breach); for any other alert (a viral, positive spike) by reach alone. Renderers show them in that order.

Pure: the standard library and the lexicon only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

TOP_CITED = 5
"""Mentions a window keeps by reach, and again among its concerning ones; also how many an alert cites."""

T = TypeVar("T")


def concerning(sentiment: str | None, text: str | None = None, terms: Iterable[str] | None = None) -> bool:
    """A mention that speaks to a crisis: negative, or naming a crisis term (``terms`` when the enricher
    found them, else looked up in ``text``)."""
    if sentiment == "negative":
        return True
    if terms is not None:
        return any(True for _ in terms)
    if not text:
        return False
    from crisiswatch.detectors.lexicon import find_crisis_terms  # the lexicon compiles on first use

    return bool(find_crisis_terms(text))


def keep_cited(items: Sequence[T], order: Callable[[T], Any], is_concerning: Callable[[T], bool]) -> list[T]:
    """The `TOP_CITED` items first in ``order`` (most reach first: `citation_order`) and the `TOP_CITED` first
    concerning ones (an item in both counts once), in that order."""
    ranked = sorted(items, key=order)
    kept, worrying = [], 0
    for i, item in enumerate(ranked):
        worry = is_concerning(item)
        if i < TOP_CITED or (worry and worrying < TOP_CITED):
            kept.append(item)
        worrying += worry
    return kept


def cited(
    items: Sequence[T], order: Callable[[T], Any], is_concerning: Callable[[T], bool], negativity: bool
) -> list[T]:
    """``items`` in the order an alert cites them: concerning ones first for a ``negativity`` alert (each group
    in ``order``), else in ``order`` alone; all of them (the caller cuts)."""
    ranked = sorted(items, key=order)
    if not negativity:
        return ranked
    return [item for item in ranked if is_concerning(item)] + [item for item in ranked if not is_concerning(item)]


class Mention(Protocol):
    """What a cited mention has (`detectors.closed.TopMention`)."""

    @property
    def text(self) -> str: ...
    @property
    def sentiment(self) -> str: ...
    @property
    def reach(self) -> int: ...
    @property
    def id(self) -> str: ...


def citation_order(m: Mention) -> tuple[float, str]:
    """The key `keep_cited` and `cited` sort a cited mention by: most reach first, then by id, so that ties
    are cut the same way whatever order the mentions arrived in (the worker and the backtest agree)."""
    return (-m.reach, m.id)


def dict_order(item: dict[str, Any]) -> tuple[float, str]:
    """`citation_order` for a window's kept mention (a dict)."""
    return (-item["reach"], item["id"])


def mention_concerning(m: Mention) -> bool:
    """`concerning` for a cited mention (its crisis terms looked up in its text)."""
    return concerning(m.sentiment, m.text)


def dict_concerning(item: dict[str, Any]) -> bool:
    """`concerning` for a window's kept mention (a dict; ``concerning`` is set when it was counted)."""
    flag = item.get("concerning")
    if flag is not None:
        return bool(flag)
    return concerning(item.get("sentiment"), item.get("text"))
