"""Which alert records become notifications: de-duplication, escalation, resolution, cool-down. Pure.

The ``alerts`` topic carries every decision the detector makes, so the same episode (``alert_id``)
appears many times. `DeliveryPolicy` turns that stream into the few notifications a person should see:

* ``opened``: the first record of an episode at or above ``min_severity``;
* ``escalated``: a record whose severity is higher than the highest one already sent;
* ``resolved``: the first ``resolved`` record of an episode that was announced;
* ``acknowledged``: a person acknowledged an announced episode;
* ``reminder`` and ``escalation`` (`due`, driven by the clock, not by records): see `ReminderPolicy`.

Everything else is a duplicate and sends nothing: the same or a lower severity again, a resolution of
an episode nobody was told about, a record for an episode that already resolved. Per brand, a new
episode that opens within ``cooldown_seconds`` of the previous episode's resolution is *suppressed*
unless it is worse than that episode's peak (flapping protection); if it escalates past the peak it
is announced then. Time is the records' own ``created_at``, so replaying the topic rebuilds exactly
the same state. Records older than ``max_age_seconds`` (relative to ``now``) update the state but
send nothing, so a restart or a first start never re-sends yesterday's crisis.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from crisiswatch.contracts.records import Alert, AlertAck
from crisiswatch.contracts.vocabulary import utcnow

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
NotificationEvent = Literal["opened", "escalated", "resolved", "acknowledged", "reminder", "escalation"]
PRIMARY = "primary"
ESCALATION = "escalation"
"""The two routes: every channel is on ``primary`` except those configured as the escalation route."""


@dataclass(frozen=True)
class ReminderPolicy:
    """Reminders for critical episodes nobody acknowledged (both off when 0).

    A critical episode (announced at ``critical``) that has no acknowledgement ``remind_after_seconds``
    after it was announced critical is sent again as a ``reminder``, and again every
    ``remind_after_seconds``; once ``escalate_after_seconds`` have passed it is sent once as an
    ``escalation`` to the escalation route, and later reminders, the acknowledgement and the resolution go
    to both routes. An acknowledgement or the resolution stops both. An episode whose latest record is
    marked silenced (a planned event, `crisiswatch.control.silences`) is never reminded or escalated.
    """

    remind_after_seconds: float = 0.0
    escalate_after_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.remind_after_seconds < 0 or self.escalate_after_seconds < 0:
            raise ValueError("reminder and escalation delays must be >= 0 (0: off)")

    @property
    def enabled(self) -> bool:
        return self.remind_after_seconds > 0 or self.escalate_after_seconds > 0


@dataclass(frozen=True)
class Notification:
    """One thing to tell people about one episode, with everything a channel needs to render it."""

    event: NotificationEvent
    alert: Alert
    """The latest record of the episode (for ``resolved``: the resolving record)."""
    started_at: datetime
    """When the episode began (window start of its first record)."""
    peak_severity: str
    """Highest severity of the episode so far."""
    previous_severity: str | None = None
    """For ``escalated``: the severity announced before."""
    acks: tuple[AlertAck, ...] = ()
    routes: tuple[str, ...] = (PRIMARY,)
    """Which routes get it: ``primary`` (the usual channels) and/or ``escalation``."""
    reminder: int = 0
    """For ``reminder``: its number (1 = the first, ``remind_after`` after the episode was announced critical)."""

    @property
    def alert_id(self) -> str:
        return self.alert.alert_id

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and restarts: receivers can de-duplicate on it."""
        tail = self.acks[-1].at.isoformat() if self.event == "acknowledged" and self.acks else ""
        if self.event == "reminder":
            tail = str(self.reminder)
        return f"{self.alert_id}:{self.event}:{self.peak_severity}{':' + tail if tail else ''}"


@dataclass
class EpisodeRecord:
    """What the policy remembers about one episode."""

    alert_id: str
    brand: str
    started_at: datetime
    latest: Alert
    peak_rank: int
    announced_rank: int | None = None
    resolved: bool = False
    suppressed: bool = False
    acks: list[AlertAck] = field(default_factory=list)
    critical_at: datetime | None = None
    """When the episode was announced critical (``created_at`` of that record): reminders count from here."""
    reminded: int = 0
    escalated: bool = False

    @property
    def announced(self) -> bool:
        return self.announced_rank is not None


@dataclass
class _BrandMemory:
    resolved_at: datetime | None = None
    resolved_peak: int = -1


class DeliveryPolicy:
    """Decides, record by record, what to send. Keeps the last ``max_episodes`` episodes in memory."""

    def __init__(
        self,
        *,
        min_severity: str = "warning",
        cooldown_seconds: float = 900.0,
        max_age_seconds: float = 3600.0,
        max_episodes: int = 10_000,
        reminders: ReminderPolicy | None = None,
    ):
        if min_severity not in SEVERITY_RANK:
            raise ValueError(f"min_severity must be one of {list(SEVERITY_RANK)}")
        self.min_rank = SEVERITY_RANK[min_severity]
        self.cooldown = timedelta(seconds=cooldown_seconds)
        self.max_age = timedelta(seconds=max_age_seconds)
        self.max_episodes = max_episodes
        self.reminders = reminders or ReminderPolicy()
        self.episodes: OrderedDict[str, EpisodeRecord] = OrderedDict()
        self._brands: dict[str, _BrandMemory] = {}

    # --- alerts --------------------------------------------------------------------------------------
    def on_alert(self, alert: Alert, *, now: datetime | None = None) -> Notification | None:
        """Feed one record of ``alerts``; return the notification to send, if any."""
        rank = SEVERITY_RANK[alert.severity]
        episode = self.episodes.get(alert.alert_id)
        if episode is None:
            if alert.status == "resolved":
                return None  # never saw it firing: nobody needs to hear it ended
            episode = EpisodeRecord(alert.alert_id, alert.brand, alert.window_start, alert, rank)
            self._remember(episode)
        if episode.resolved:
            return None  # a late record of a finished episode
        episode.latest = alert
        fresh = (now or utcnow()) - alert.created_at <= self.max_age
        if alert.status == "resolved":
            return self._resolve(episode, fresh)
        episode.peak_rank = max(episode.peak_rank, rank)
        if rank < self.min_rank:
            return None
        if episode.announced_rank is not None:
            if rank <= episode.announced_rank:
                return None  # duplicate (same or lower severity)
            previous = _severity_name(episode.announced_rank)
            episode.announced_rank = rank
            self._critical(episode, alert, rank)
            return self._notify("escalated", episode, fresh, previous)
        if self._cooling_down(episode, alert, rank):
            episode.suppressed = True
            return None
        episode.announced_rank, episode.suppressed = rank, False
        self._critical(episode, alert, rank)
        return self._notify("opened", episode, fresh)

    @staticmethod
    def _critical(episode: EpisodeRecord, alert: Alert, rank: int) -> None:
        if rank >= SEVERITY_RANK["critical"] and episode.critical_at is None:
            episode.critical_at = alert.created_at

    # --- reminders -----------------------------------------------------------------------------------
    def due(self, now: datetime) -> list[Notification]:
        """Reminders and escalations due at ``now`` (each is returned once; see `ReminderPolicy`)."""
        r = self.reminders
        if not r.enabled:
            return []
        out: list[Notification] = []
        for e in self.episodes.values():
            if e.critical_at is None or e.resolved or e.acks or e.latest.evidence.silence is not None:
                continue
            waited = (now - e.critical_at).total_seconds()
            if r.escalate_after_seconds > 0 and waited >= r.escalate_after_seconds and not e.escalated:
                e.escalated = True
                out.append(self._clock_notice("escalation", e, (ESCALATION,)))
            if r.remind_after_seconds > 0:
                slot = int(waited // r.remind_after_seconds)
                if slot >= 1 and slot > e.reminded:
                    e.reminded = slot
                    routes = (PRIMARY, ESCALATION) if e.escalated else (PRIMARY,)
                    out.append(self._clock_notice("reminder", e, routes, slot))
        return out

    @staticmethod
    def _clock_notice(
        event: NotificationEvent, e: EpisodeRecord, routes: tuple[str, ...], reminder: int = 0
    ) -> Notification:
        peak = _severity_name(e.announced_rank)
        return Notification(event, e.latest, e.started_at, peak, acks=tuple(e.acks), routes=routes, reminder=reminder)

    def _resolve(self, episode: EpisodeRecord, fresh: bool) -> Notification | None:
        episode.resolved = True
        memory = self._brands.setdefault(episode.brand, _BrandMemory())
        memory.resolved_at = episode.latest.created_at
        memory.resolved_peak = max(episode.peak_rank, episode.announced_rank or -1)
        if not episode.announced:
            return None
        return self._notify("resolved", episode, fresh)

    def _cooling_down(self, episode: EpisodeRecord, alert: Alert, rank: int) -> bool:
        memory = self._brands.get(episode.brand)
        if memory is None or memory.resolved_at is None:
            return False
        within = alert.created_at - memory.resolved_at < self.cooldown
        return within and rank <= memory.resolved_peak

    # --- acknowledgements ----------------------------------------------------------------------------
    def on_ack(self, ack: AlertAck, *, now: datetime | None = None) -> Notification | None:
        """Feed one record of ``alerts.ack``; return the notification to send, if any."""
        episode = self.episodes.get(ack.alert_id)
        if episode is None:
            return None
        if any(a.actor == ack.actor and a.at == ack.at for a in episode.acks):
            return None  # the same acknowledgement read twice
        episode.acks.append(ack)
        if not episode.announced:
            return None
        fresh = (now or utcnow()) - ack.at <= self.max_age
        return self._notify("acknowledged", episode, fresh)

    # --- reading -------------------------------------------------------------------------------------
    def active(self) -> list[Notification]:
        """An ``opened`` notification for every announced episode that has not resolved (for re-posting)."""
        return [
            Notification("opened", e.latest, e.started_at, _severity_name(e.announced_rank), acks=tuple(e.acks))
            for e in self.episodes.values()
            if e.announced_rank is not None and not e.resolved
        ]

    # --- internals -----------------------------------------------------------------------------------
    def _notify(
        self, event: NotificationEvent, episode: EpisodeRecord, fresh: bool, previous: str | None = None
    ) -> Notification | None:
        if not fresh:
            return None
        peak = _severity_name(episode.announced_rank if episode.announced_rank is not None else episode.peak_rank)
        routes = (PRIMARY, ESCALATION) if episode.escalated else (PRIMARY,)  # the on-call hears how it ended
        return Notification(event, episode.latest, episode.started_at, peak, previous, tuple(episode.acks), routes)

    def _remember(self, episode: EpisodeRecord) -> None:
        self.episodes[episode.alert_id] = episode
        while len(self.episodes) > self.max_episodes:
            self.episodes.popitem(last=False)


def _severity_name(rank: int | None) -> str:
    for name, value in SEVERITY_RANK.items():
        if value == rank:
            return name
    return "info"
