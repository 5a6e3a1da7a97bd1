"""What a notification says: a headline, the reasons, and the evidence, as plain text or Slack mrkdwn.

The text answers "why?" from the alert itself: the detector's ``summary`` and ``explanation`` lines,
then the facts in its typed ``evidence`` (`detectors.evidence.Evidence`). A fact the evidence does not
carry (``None``: an older alert, or one built with only some facts) is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from crisiswatch.alerting.plain import plain_headline
from crisiswatch.alerting.policy import Notification
from crisiswatch.contracts.records import Alert
from crisiswatch.detectors.citing import cited, mention_concerning
from crisiswatch.detectors.evidence import Evidence

MAX_TOP_MENTIONS = 5
MAX_MENTION_CHARS = 240

_EVENT_WORDS = {
    "opened": "brand crisis",
    "escalated": "brand crisis escalated",
    "resolved": "resolved",
    "acknowledged": "acknowledged",
    "reminder": "brand crisis still unacknowledged (reminder)",
    "escalation": "brand crisis unacknowledged: escalated",
}


@dataclass(frozen=True)
class TopMentionLine:
    """One cited mention, ready to print."""

    text: str
    source: str
    reach: int
    lang: str
    sentiment: str
    url: str | None


@dataclass(frozen=True)
class Explanation:
    """The reasons behind an alert, in words and numbers."""

    reasons: list[str]
    facts: list[tuple[str, str]]
    top_mentions: list[TopMentionLine]


def headline(n: Notification) -> str:
    """E.g. ``CRITICAL: acme brand crisis escalated (was warning)``: the e-mail subject and Slack's first line.

    ``[silenced] CRITICAL: …`` when a planned event's silence covered the alert's window (`silenced`): it is
    told as usual but never pauses publishing.
    """
    return ("[silenced] " if silenced(n.alert) else "") + _headline(n)


def silenced(alert: Alert) -> bool:
    """A planned event's silence covered the alert's window (``evidence.silence``, set by the risk stage)."""
    return alert.evidence.silence is not None


def _headline(n: Notification) -> str:
    brand = n.alert.brand
    if n.event == "resolved":
        return f"RESOLVED: {brand} ({n.peak_severity} episode is over)"
    if n.event == "acknowledged":
        who = n.acks[-1].actor if n.acks else "someone"
        return f"ACKNOWLEDGED by {who}: {brand} ({n.peak_severity})"
    text = f"{n.peak_severity.upper()}: {brand} {_EVENT_WORDS[n.event]}"
    if n.event == "escalated" and n.previous_severity:
        text += f" (was {n.previous_severity})"
    return text


def in_plain_words(alert: Alert) -> str:
    """The alert's evidence as one sentence (`crisiswatch.alerting.plain`), what people read first."""
    return plain_headline(alert.brand, alert.evidence)


def explain(alert: Alert) -> Explanation:
    """Reasons (the detector's summary and explanation) and facts (from the evidence)."""
    ev = alert.evidence
    reasons = [alert.summary, *[line for line in alert.explanation if line and line != alert.summary]]
    facts: list[tuple[str, str]] = []
    volume, mentions = ev.volume, ev.mentions
    if volume is not None and volume.observed is not None:
        observed, expected, stories = volume.observed, volume.expected, ev.stories
        if stories is not None and mentions is not None and stories < mentions:  # near-duplicates fold into stories
            text = f"{_count(stories)} stories ({_count(mentions)} mentions)"
            observed = stories
        else:
            text = f"{_count(observed)} mentions"
        if expected is not None:
            text += f" vs {_count(expected)} expected"
            if volume.ratio is not None:
                text += f" ({volume.ratio:.1f}×)"
            elif expected > 0:
                text += f" ({observed / expected:.1f}×)"
        facts.append(("Volume", text))
    elif mentions is not None:
        facts.append(("Volume", f"{_count(mentions)} mentions"))
    share = ev.share
    if share is not None:
        text = f"{share:.0%} negative"
        if ev.expected_negative_share is not None:
            text += f" (usually {ev.expected_negative_share:.0%})"
        facts.append(("Negative share", text))
    if ev.reach:
        facts.append(("Reach", _count(ev.reach)))
    for counts, label in ((ev.languages, "Languages"), (ev.sources, "Sources")):
        if counts:
            facts.append((label, _shares(_ranked(counts))))
    terms = _ranked(ev.crisis_terms)
    if terms:
        facts.append(("Crisis terms", ", ".join(f"{t} ({c})" if c > 1 else t for t, c in terms[:8])))
    facts.append(("Risk", f"{alert.risk:.0f}/100"))
    if alert.pause:
        facts.append(("Publishing", "pause requested by the risk policy"))
    return Explanation(reasons=[r for r in reasons if r], facts=facts, top_mentions=_top_mentions(ev))


def plain_text(n: Notification, link: str | None = None) -> str:
    """The full plain-text message (e-mail body, generic webhook ``text``, Slack fallback)."""
    lines = [headline(n), ""]
    if n.event != "acknowledged":
        lines += [in_plain_words(n.alert) + ".", ""]
    lines += _event_lines(n)
    exp = explain(n.alert)
    if n.event != "acknowledged":
        lines += ["Why:", *[f"  - {r}" for r in exp.reasons], ""]
        lines += [f"{label}: {value}" for label, value in exp.facts]
        if exp.top_mentions:
            lines += ["", "What people are saying:"]
            for m in exp.top_mentions:
                lines.append(f"  - [{m.source}, {_count(m.reach)} reach, {m.lang}, {m.sentiment}] {m.text}")
                if m.url:
                    lines.append(f"    {m.url}")
    lines += ["", f"Alert id: {n.alert_id}"]
    if link:
        lines.append(f"Open: {link}")
    return "\n".join(lines).rstrip() + "\n"


def slack_mrkdwn_reasons(n: Notification) -> str:
    """The reasons as a Slack mrkdwn bullet list."""
    exp = explain(n.alert)
    first = f"*{slack_escape(in_plain_words(n.alert))}.*\n"
    return first + "\n".join(f"• {slack_escape(r)}" for r in exp.reasons)


def slack_mentions(n: Notification) -> str:
    """Top mentions as Slack mrkdwn (links where the mention has a URL)."""
    out = []
    for m in explain(n.alert).top_mentions:
        meta = f"{m.source} · {_count(m.reach)} reach · {m.lang} · {m.sentiment}"
        text = slack_escape(m.text)
        if m.url and m.url.startswith(("http://", "https://")):
            text = f"<{m.url}|{text}>"
        out.append(f"• {text}\n   _{meta}_")
    return "\n".join(out)


def _event_lines(n: Notification) -> list[str]:
    started = n.started_at.strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Brand: {n.alert.brand}", f"Severity: {n.peak_severity}", f"Started: {started}"]
    if n.event == "resolved":
        lines.append(f"Resolved: {n.alert.created_at.strftime('%Y-%m-%d %H:%M UTC')}")
    if n.acks:
        for ack in n.acks:
            note = f": {ack.note}" if ack.note else ""
            lines.append(f"Acknowledged by {ack.actor} at {ack.at.strftime('%H:%M UTC')}{note}")
    return [*lines, ""]


def _top_mentions(ev: Evidence) -> list[TopMentionLine]:
    out = []
    for m in ev.top_mentions:
        if not m.text:
            continue
        text = " ".join(m.text.split())
        if len(text) > MAX_MENTION_CHARS:
            text = text[: MAX_MENTION_CHARS - 1] + "…"
        out.append(
            TopMentionLine(
                text=text,
                source=m.source or "?",
                reach=m.reach,
                lang=m.lang or "und",
                sentiment=m.sentiment or "?",
                url=m.url or None,
            )
        )
    out = cited(out, _most_reach_first, mention_concerning, about_negativity(ev))  # ties keep the evidence order
    return out[:MAX_TOP_MENTIONS]


def about_negativity(evidence: Evidence) -> bool:
    """The alert is about negativity (a negativity spike, or the crisis gate's candidate or critical verdict):
    it cites negative and crisis-term mentions first, as the risk assessor does (`detectors.citing`)."""
    negativity, crisis = evidence.negativity, evidence.crisis
    return bool(
        (negativity is not None and negativity.spike) or (crisis is not None and (crisis.candidate or crisis.critical))
    )


def _ranked(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """``{name: count}`` as (name, count) pairs, largest first."""
    return sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda p: (-p[1], p[0]))


def _shares(counts: list[tuple[str, int]], top: int = 5) -> str:
    total = sum(c for _, c in counts) or 1
    parts = [f"{name} {c / total:.0%}" for name, c in counts[:top]]
    if len(counts) > top:
        parts.append(f"+{len(counts) - top} more")
    return ", ".join(parts)


def _count(value: float) -> str:
    """1234 -> '1,234'; 2_300_000 -> '2.3M'."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 100_000:
        return f"{value / 1000:.0f}k"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _most_reach_first(line: TopMentionLine) -> float:
    return -line.reach
