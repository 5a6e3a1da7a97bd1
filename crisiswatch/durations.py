"""The one parser of durations written by people (CLI options), and their short form for printing.

A duration always carries its unit, so that ``10`` can never silently mean ten seconds when ten hours
were meant::

    parse_duration("90s") == 90        parse_duration("10m") == 600      parse_duration("1h30m") == 5400
    parse_duration("2h") == 7200       parse_duration("1d") == 86400     parse_duration("1.5h") == 5400
    parse_duration("PT10M") == 600     parse_duration("P1DT2H") == 93600 parse_duration("P2W") == 1209600
    parse_duration("10")  -> DurationError: "10" has no unit: write 10s, 10m, 10h or 10d

Units: ``s``, ``m``, ``h``, ``d``, ``w`` (also spelt ``sec``, ``min``, ``hours``, ``days`` ...), compound
(``1h30m``, spaces allowed), or an ISO 8601 duration (``PnWnDTnHnMnS``; years and months are refused,
as their length varies).
"""

from __future__ import annotations

import re

_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_ALIASES = {
    **dict.fromkeys(("sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("day", "days"), "d"),
    **dict.fromkeys(("week", "weeks"), "w"),
}
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_PART = re.compile(rf"\s*({_NUMBER})\s*([a-z]+)\s*", re.IGNORECASE)
_BARE = re.compile(rf"^\s*({_NUMBER})\s*$")
_ISO = re.compile(
    rf"^P(?:(?P<y>{_NUMBER})Y)?(?:(?P<mo>{_NUMBER})M)?(?:(?P<w>{_NUMBER})W)?(?:(?P<d>{_NUMBER})D)?"
    rf"(?:T(?:(?P<h>{_NUMBER})H)?(?:(?P<m>{_NUMBER})M)?(?:(?P<s>{_NUMBER})S)?)?$",
    re.IGNORECASE,
)
EXAMPLES = "e.g. 90s, 10m, 2h, 1d, 1h30m or ISO 8601 PT10M"


class DurationError(ValueError):
    """Not a duration with a unit (the message says what to write instead)."""


def parse_duration(text: str, *, allow_bare_seconds: bool = False) -> float:
    """Seconds in ``text`` (see the module docstring); a bare number is refused unless ``allow_bare_seconds``.

    Raises `DurationError` (a `ValueError`) with a hint; zero and negative durations are refused too.
    """
    raw = text.strip()
    bare = _BARE.match(raw)
    if bare:
        if not allow_bare_seconds:
            number = bare.group(1)
            raise DurationError(
                f"{raw!r} has no unit: write {number}s, {number}m, {number}h or {number}d (seconds, minutes, "
                "hours, days)"
            )
        seconds = float(bare.group(1))
    elif raw[:1] in ("P", "p"):
        seconds = _iso_seconds(raw)
    else:
        seconds = _compound_seconds(raw)
    if seconds <= 0:
        raise DurationError(f"{raw!r}: a duration must be longer than zero")
    return seconds


def _iso_seconds(raw: str) -> float:
    match = _ISO.match(raw)
    if match is None or raw.upper() in ("P", "PT") or raw.upper().endswith("T"):
        raise DurationError(f"not an ISO 8601 duration: {raw!r} ({EXAMPLES})")
    if match.group("y") or match.group("mo"):
        raise DurationError(f"{raw!r}: years and months vary in length; give weeks, days, hours or minutes")
    factors = {"w": _UNITS["w"], "d": _UNITS["d"], "h": _UNITS["h"], "m": _UNITS["m"], "s": _UNITS["s"]}
    return sum(float(match.group(name)) * factor for name, factor in factors.items() if match.group(name))


def _compound_seconds(raw: str) -> float:
    position, total, seen = 0, 0.0, []
    while position < len(raw):
        part = _PART.match(raw, position)
        if part is None:
            raise DurationError(f"not a duration: {raw!r} ({EXAMPLES})")
        unit = _ALIASES.get(part.group(2).lower(), part.group(2).lower())
        if unit not in _UNITS:
            raise DurationError(f"{raw!r}: unknown unit {part.group(2)!r} (use s, m, h, d or w; {EXAMPLES})")
        if unit in seen:
            raise DurationError(f"{raw!r}: the unit {unit!r} is given twice")
        seen.append(unit)
        total += float(part.group(1)) * _UNITS[unit]
        position = part.end()
    if not seen:
        raise DurationError(f"not a duration: {raw!r} ({EXAMPLES})")
    return total


def format_duration(seconds: float) -> str:
    """The short form: ``36000`` -> ``10h``, ``5400`` -> ``1h30m``, ``90`` -> ``1m30s``, ``0.2`` -> ``0.2s``."""
    if 0 < seconds < 1:
        return f"{seconds:g}s"
    rest: int = round(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not parts):
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)
