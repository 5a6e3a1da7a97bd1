"""Crises and decoys: where they go (seeded, anywhere in the corpus) and what traffic they add.

An event is a labelled window on one brand plus one or more `Component` s: extra mentions per minute
over the window (relative to the brand's local level, so a crisis at night is relative to the night),
with their own text kind, sentiment, language and source mix. A slow burn also *converts* a share of
the brand's ordinary mentions into crisis mentions, so its negative share climbs at modest volume.

Placement rules: a crisis starts at least 26 hours after its brand's first mention (a brand's first day
is its maturity period); events of one brand are at least 6 hours apart; every window lies inside the
corpus; start times are uniform over what is allowed, so events fall at any hour, night included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from crisiswatch.scenarios.phrases import BOT, LANGS, STORIES
from crisiswatch.scenarios.profiles import SOURCES, BrandSpec

MATURITY_MINUTES = 26 * 60 + 30
"""A crisis starts at least 26 h after its brand's first mention (plus half an hour of slack: a sparse brand's
first mention can come a few minutes after its traffic starts)."""
SLOW_BURN_MIN_RATE = 3.0
"""A slow burn needs a few mentions a minute to be a slow burn rather than noise (sparse brands get theirs)."""
SPACING_MINUTES = 6 * 60
END_MARGIN = 30
BASE_BRAND_DAYS = 112
"""The default corpus (8 brands x 14 days) gets the counts below; other sizes scale them (at least 1)."""

CRISIS_PLAN = (
    ("sparse_crisis", 1),
    ("one_language", 2),
    ("high_reach", 1),
    ("slow_burn", 2),
    ("sudden_explosion", 2),
    ("competitor", 1),
)
DECOY_PLAN = (
    ("first_day_launch", 1),
    ("viral_positive", 2),
    ("neutral_news", 2),
    ("gap_recovery", 2),
    ("bot_flood", 2),
    ("positive_launch", 1),
)
CELEBRITIES = ("@thenightdesk", "@marcusvlogs", "@lena_live", "@realchefomar", "@techwithpriya", "@dailyrobin")
BOT_MAX_PER_MINUTE = 600.0


@dataclass
class Component:
    """Mentions an event adds to one brand's stream."""

    brand: int
    event: int
    m0: int
    extra: np.ndarray
    text: str
    sentiment: tuple[float, float, float]
    languages: dict[str, float]
    sources: dict[str, float]
    conv: np.ndarray | None = None
    authors: str = "crowd"
    story: str | None = None
    related: int | None = None
    related_share: float = 0.0
    rt_share: float = 0.0
    fixed_text: str | None = None
    celebrity: tuple[str, int] | None = None
    bot_accounts: tuple[int, ...] = ()
    bot_template: tuple[str, int] = ("en", 0)
    product: str = ""
    exact: bool = False
    related_event: int | None = None
    parent: Component | None = None
    recent: list[tuple[str, str]] = field(default_factory=list)

    @property
    def m1(self) -> int:
        return self.m0 + self.extra.size


@dataclass
class Event:
    """A labelled window (minutes from the corpus start) and the components that make it."""

    kind: str
    name: str
    brand: int
    start: int
    end: int
    description: str = ""
    story: str | None = None
    languages: list[str] = field(default_factory=list)
    related: int | None = None
    peak: float | None = None
    components: list[Component] = field(default_factory=list)
    uid: int = -1

    @property
    def expect_pause(self) -> bool:
        return self.kind == "crisis"


@dataclass
class Context:
    """What events are built from: the brands, their per-minute rates and local levels."""

    brands: list[BrandSpec]
    rates: list[np.ndarray]
    levels: list[np.ndarray]
    total_minutes: int
    nab_windows: list[list[tuple[int, int]]]
    rng: np.random.Generator


def _counts(brand_days: float) -> list[tuple[str, str]]:
    """(kind, name) to place, one of each first (so small corpora still get every kind it can fit)."""
    factor = brand_days / BASE_BRAND_DAYS
    rounds: list[list[tuple[str, str]]] = []
    for kind, plan in (("crisis", CRISIS_PLAN), ("decoy", DECOY_PLAN)):
        for name, base in plan:
            n = max(1, round(base * factor)) if name != "first_day_launch" else 1
            for r in range(n):
                while len(rounds) <= r:
                    rounds.append([])
                rounds[r].append((kind, name))
    return [item for r in rounds for item in r]


def _ramp(duration: int, rise: int, hold: int) -> np.ndarray:
    """1 at the peak: a linear rise, a plateau, then an exponential decay to about 5% at the end."""
    t = np.arange(duration, dtype=float)
    rise = max(1, rise)
    tau = max(1.0, (duration - rise - hold) / 3)
    shape = np.where(t < rise, (t + 1) / rise, np.exp(-np.maximum(0.0, t - rise - hold) / tau))
    return np.clip(shape, 0.0, 1.0)


def _mix(base: dict[str, float], extra: dict[str, float], weight: float) -> dict[str, float]:
    keys = sorted(set(base) | set(extra), key=lambda k: (k not in base, k))
    raw = {k: (1 - weight) * base.get(k, 0.0) + weight * extra.get(k, 0.0) for k in keys}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items() if v > 0}


def _boost(mix: dict[str, float], key: str, factor: float) -> dict[str, float]:
    raw = {k: v * (factor if k == key else 1.0) for k, v in mix.items()}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}


def _lognormal_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


class Planner:
    """Places events (seeded) and builds their components."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.rng = ctx.rng
        self.events: list[Event] = []
        self.skipped: list[str] = []
        self._taken: dict[int, list[tuple[int, int]]] = {b.index: [] for b in ctx.brands}
        self._stories = list(self.rng.permutation(STORIES))
        self._one_language_done: list[str] = []

    # --- placement ------------------------------------------------------------------------------
    def _free(self, brand: int, start: int, end: int) -> bool:
        return all(start >= e + SPACING_MINUTES or end + SPACING_MINUTES <= s for s, e in self._taken[brand])

    def _in_nab(self, brand: int, start: int, end: int) -> bool:
        return any(start < e and s < end for s, e in self.ctx.nab_windows[brand])

    def _bounds(self, brand: BrandSpec, crisis: bool) -> tuple[int, int]:
        rates = self.ctx.rates[brand.index]
        live = np.flatnonzero(rates[brand.first_minute :] > 0)
        first = brand.first_minute + (int(live[0]) if live.size else 0)
        lo = first + (MATURITY_MINUTES if crisis else 60)
        return lo, self.ctx.total_minutes - END_MARGIN

    def _place(
        self,
        brands: list[int],
        duration: int,
        crisis: bool,
        partner: int | None = None,
        window: tuple[int, int] | None = None,
    ) -> tuple[int, int] | None:
        """(brand, start) for an event of ``duration`` minutes, or None when nothing fits."""
        if not brands:
            return None
        for attempt in range(400):
            b = brands[int(self.rng.integers(len(brands)))]
            lo, hi = window if window is not None else self._bounds(self.ctx.brands[b], crisis)
            if partner is not None:
                plo, phi = self._bounds(self.ctx.brands[partner], False)
                lo, hi = max(lo, plo), min(hi, phi)
            if hi - duration <= lo:
                continue
            start = int(self.rng.integers(lo, hi - duration))
            end = start + duration
            if not self._free(b, start, end) or (partner is not None and not self._free(partner, start, end)):
                continue
            if crisis and attempt < 250 and self._in_nab(b, start, end):
                continue  # prefer crises away from NAB's own bursts, so labels do not overlap
            return b, start
        return None

    def _take(self, event: Event) -> None:
        event.uid = len(self.events)
        self._taken[event.brand].append((event.start, event.end))
        self.events.append(event)

    # --- plan ---------------------------------------------------------------------------------------
    def plan(self) -> list[Event]:
        ctx = self.ctx
        brand_days = sum((ctx.total_minutes - b.first_minute) / 1440 for b in ctx.brands)
        for kind, name in _counts(brand_days):
            built = getattr(self, f"_{name}")()
            if not built:
                self.skipped.append(f"{kind}:{name}")
        self.events.sort(key=lambda e: (e.start, e.brand, e.name))
        return self.events

    def _level(self, brand: int, start: int, duration: int) -> np.ndarray:
        return self.ctx.levels[brand][start : start + duration]

    def _event(self, kind: str, name: str, brand: int, start: int, duration: int, **kw: object) -> Event:
        return Event(kind, name, brand, start, start + duration, **kw)  # type: ignore[arg-type]

    def _story(self) -> str:
        story = self._stories.pop(0)
        self._stories.append(story)
        return story

    def _multilingual(self, b: BrandSpec) -> dict[str, float]:
        others = [lang for lang in LANGS if lang not in b.languages]
        picked = list(self.rng.choice(others, size=min(2, len(others)), replace=False))
        pool = {lang: 1.0 for lang in [*b.languages, *picked]}
        total = sum(pool.values())
        return _mix(b.languages, {k: v / total for k, v in pool.items()}, 0.5)

    def _crisis_sentiment(self, b: BrandSpec, peak: float) -> tuple[tuple[float, float, float], float]:
        target = float(self.rng.uniform(0.6, 0.8))
        q = float(np.clip((target * peak - b.sentiment[0]) / max(peak - 1, 1e-6), 0.5, 0.95))
        return (q, (1 - q) * 0.8, (1 - q) * 0.2), target

    def _explosion_component(
        self, b: BrandSpec, ev: int, start: int, duration: int, peak: float, story: str
    ) -> tuple[Component, str]:
        rise = int(self.rng.integers(2, 9))
        hold = int(self.rng.integers(20, 61))
        hold = min(hold, max(5, duration - rise - 20))
        shape = _ramp(duration, rise, hold)
        sentiment, target = self._crisis_sentiment(b, peak)
        comp = Component(
            b.index,
            ev,
            start,
            self._level(b.index, start, duration) * (peak - 1) * shape,
            "crisis",
            sentiment,
            self._multilingual(b),
            _boost(b.sources, "news", 3.0),
            story=story,
            rt_share=0.25,
        )
        return comp, f"x{peak:.1f} within {rise} min, held {hold} min, then decaying; ~{target:.0%} negative at peak"

    def _sudden_explosion(self) -> bool:
        duration = int(self.rng.integers(60, 181))
        spot = self._place([b.index for b in self.ctx.brands], duration, True)
        if spot is None:
            return False
        b = self.ctx.brands[spot[0]]
        story = self._story()
        peak = float(self.rng.uniform(8, 15))
        comp, how = self._explosion_component(b, len(self.events), spot[1], duration, peak, story)
        event = self._event(
            "crisis",
            "sudden_explosion",
            b.index,
            spot[1],
            duration,
            story=story,
            peak=peak,
            languages=sorted(comp.languages),
            components=[comp],
            description=f"{story.replace('_', ' ')} story breaks: {how}; multilingual",
        )
        self._take(event)
        return True

    def _competitor(self) -> bool:
        if len(self.ctx.brands) < 2:
            return False
        duration = int(self.rng.integers(60, 151))
        order = [int(i) for i in self.rng.permutation(len(self.ctx.brands))]
        x, y = order[0], order[1]
        spot = self._place([x], duration, True, partner=y)
        if spot is None:
            return False
        bx, by = self.ctx.brands[x], self.ctx.brands[y]
        story = self._story()
        peak = float(self.rng.uniform(6, 10))
        comp, how = self._explosion_component(bx, len(self.events), spot[1], duration, peak, story)
        comp.related = y
        comp.related_share = float(self.rng.uniform(0.3, 0.5))
        comp.related_event = len(self.events) + 1
        crisis = self._event(
            "crisis",
            "sudden_explosion",
            x,
            spot[1],
            duration,
            story=story,
            peak=peak,
            related=y,
            languages=sorted(comp.languages),
            components=[comp],
            description=f"{story.replace('_', ' ')} at {bx.name}: {how}; {comp.related_share:.0%} of its mentions "
            f"also name {by.name} in passing",
        )
        self._take(crisis)
        decoy = self._event(
            "decoy",
            "competitor_crisis",
            y,
            spot[1],
            duration,
            story=story,
            related=x,
            languages=sorted(comp.languages),
            description=f"competitor {bx.name} is in a crisis ({story.replace('_', ' ')}); about "
            f'{comp.related_share:.0%} of those mentions name {by.name} in passing ("moving to {by.name}")',
        )
        self._take(decoy)
        return True

    def _slow_burn(self) -> bool:
        hold = int(self.rng.integers(30, 61))
        duration = 120 + hold
        eligible = [b.index for b in self.ctx.brands if b.rate >= SLOW_BURN_MIN_RATE]
        spot = self._place(eligible or [b.index for b in self.ctx.brands], duration, True)
        if spot is None:
            return False
        b = self.ctx.brands[spot[0]]
        story = self._story()
        m = float(self.rng.uniform(1.5, 2.5))
        u = np.minimum(1.0, np.arange(duration, dtype=float) / 120.0)
        s0 = b.sentiment[0]
        q = 0.9
        m_u = 1 + (m - 1) * u
        target = s0 + (0.7 - s0) * u
        conv = np.clip((target * m_u - s0 - q * (m_u - 1)) / (q - s0), 0.0, 1.0)
        comp = Component(
            b.index,
            len(self.events),
            spot[1],
            self._level(b.index, spot[1], duration) * (m - 1) * u,
            "crisis",
            (q, 1 - q, 0.0),
            dict(b.languages),
            _boost(b.sources, "news", 1.5),
            conv=conv,
            story=story,
            rt_share=0.1,
        )
        self._take(
            self._event(
                "crisis",
                "slow_burn",
                b.index,
                spot[1],
                duration,
                story=story,
                peak=m,
                languages=sorted(b.languages),
                components=[comp],
                description=f"{story.replace('_', ' ')}: negative share climbs from {s0:.0%} to ~70% over 2 h while "
                f"volume rises to x{m:.1f}, then holds {hold} min",
            )
        )
        return True

    def _one_language(self) -> bool:
        wanted = [lang for lang in ("ar", "de") if lang not in self._one_language_done] or ["ar", "de"]
        lang = wanted[0]
        eligible = [b.index for b in self.ctx.brands if b.languages.get(lang, 0) >= 0.05]
        if not eligible:
            lang = wanted[-1]
            eligible = [b.index for b in self.ctx.brands if b.languages.get(lang, 0) >= 0.05]
        if not eligible:
            eligible = [b.index for b in self.ctx.brands]
        duration = int(self.rng.integers(60, 151))
        spot = self._place(eligible, duration, True)
        if spot is None:
            return False
        self._one_language_done.append(lang)
        b = self.ctx.brands[spot[0]]
        story = self._story()
        k = float(self.rng.uniform(2, 4))
        rise = int(self.rng.integers(10, 21))
        shape = _ramp(duration, rise, int(duration * 0.5))
        comp = Component(
            b.index,
            len(self.events),
            spot[1],
            self._level(b.index, spot[1], duration) * k * shape,
            "crisis",
            (0.8, 0.17, 0.03),
            {lang: 1.0},
            b.sources,
            story=story,
            rt_share=0.15,
        )
        self._take(
            self._event(
                "crisis",
                "one_language",
                b.index,
                spot[1],
                duration,
                story=story,
                peak=1 + k,
                languages=[lang],
                components=[comp],
                description=f"{story.replace('_', ' ')} only in '{lang}' ({b.languages.get(lang, 0):.0%} of the "
                f"brand's usual traffic): x{1 + k:.1f} overall volume within {rise} min, 80% negative, crisis terms "
                f"in '{lang}'",
            )
        )
        return True

    def _high_reach(self) -> bool:
        duration = int(self.rng.integers(90, 151))
        spot = self._place([b.index for b in self.ctx.brands], duration, True)
        if spot is None:
            return False
        b = self.ctx.brands[spot[0]]
        start = spot[1]
        story = self._story()
        ev = len(self.events)
        handle = CELEBRITIES[int(self.rng.integers(len(CELEBRITIES)))]
        followers = int(_lognormal_uniform(self.rng, 1.5e6, 1.2e7))
        level = self._level(b.index, start, duration)
        k = float(self.rng.uniform(2, 4))
        peak_rate = np.maximum(level * k, 4.0)
        t = np.arange(duration, dtype=float)
        hold = int(self.rng.integers(20, 41))
        growth = np.where(t < 30, np.exp((t - 30) / 7.0), np.exp(-np.maximum(0.0, t - 30 - hold) / 20.0))
        growth[0] = 0.0
        lang = b.main_language
        original = Component(
            b.index,
            ev,
            start,
            np.array([1.0]),
            "original",
            (1.0, 0.0, 0.0),
            {lang: 1.0},
            {"twitter": 1.0},
            authors="celebrity",
            story=story,
            celebrity=(handle, followers),
            exact=True,
        )
        reshares = Component(
            b.index,
            ev,
            start,
            peak_rate * growth,
            "reshare",
            (1.0, 0.0, 0.0),
            {lang: 1.0},
            {"twitter": 1.0},
            story=story,
            celebrity=(handle, followers),
            parent=original,
        )
        organic = Component(
            b.index,
            ev,
            start,
            peak_rate * growth * 0.3,
            "crisis",
            (0.75, 0.2, 0.05),
            dict(b.languages),
            _boost(b.sources, "news", 1.5),
            story=story,
        )
        self._take(
            self._event(
                "crisis",
                "high_reach",
                b.index,
                start,
                duration,
                story=story,
                peak=1 + k * 1.3,
                languages=sorted(b.languages),
                components=[original, reshares, organic],
                description=f"{handle} ({followers:,} followers) posts about a {story.replace('_', ' ')} at {b.name}; "
                f"reshares grow over ~30 min to ~{float(np.median(peak_rate)):.0f}/min, hold {hold} min, then fade",
            )
        )
        return True

    def _sparse_crisis(self) -> bool:
        sparse = [b.index for b in self.ctx.brands if b.rate <= 2] or [min(self.ctx.brands, key=lambda b: b.rate).index]
        duration = int(self.rng.integers(60, 121))
        spot = self._place(sparse, duration, True)
        if spot is None:
            return False
        b = self.ctx.brands[spot[0]]
        story = self._story()
        e = float(self.rng.uniform(9, 19))
        rise = int(self.rng.integers(5, 16))
        shape = _ramp(duration, rise, int(duration * 0.6))
        comp = Component(
            b.index,
            len(self.events),
            spot[1],
            e * shape,
            "crisis",
            (0.75, 0.2, 0.05),
            self._multilingual(b),
            _boost(b.sources, "news", 2.0),
            story=story,
            rt_share=0.2,
        )
        self._take(
            self._event(
                "crisis",
                "sparse_crisis",
                b.index,
                spot[1],
                duration,
                story=story,
                peak=1 + e / b.rate,
                languages=sorted(comp.languages),
                components=[comp],
                description=f"{story.replace('_', ' ')} at a sparse brand: {b.rate:g}/min -> "
                f"~{b.rate + e:.0f}/min within {rise} min, 75% negative",
            )
        )
        return True

    # --- decoys -----------------------------------------------------------------------------------
    def _decoy_shape(
        self,
        name: str,
        brands: list[int],
        duration: int,
        peak: float,
        rise: int,
        hold: int,
        text: str,
        sentiment: tuple[float, float, float],
        sources: dict[str, float] | None,
        rt_share: float,
        description: str,
        window: tuple[int, int] | None = None,
        news_boost: float = 1.0,
    ) -> bool:
        spot = self._place(brands, duration, False, window=window)
        if spot is None:
            return False
        b = self.ctx.brands[spot[0]]
        shape = _ramp(duration, rise, hold)
        langs = _boost(b.languages, "en", 1.5) if "en" in b.languages else dict(b.languages)
        comp = Component(
            b.index,
            len(self.events),
            spot[1],
            self._level(b.index, spot[1], duration) * (peak - 1) * shape,
            text,
            sentiment,
            langs,
            sources or _boost(b.sources, "news", news_boost),
            rt_share=rt_share,
            product=str(self.rng.choice(["app", "Pro", "Max", "One", "Air", "Go", "X2", "Plus"])),
        )
        self._take(
            self._event(
                "decoy",
                name,
                b.index,
                spot[1],
                duration,
                peak=peak,
                languages=sorted(langs),
                components=[comp],
                description=description.format(peak=peak, rise=rise, name=b.name, product=comp.product),
            )
        )
        return True

    def _viral_positive(self) -> bool:
        duration = int(self.rng.integers(90, 241))
        return self._decoy_shape(
            "viral_positive",
            [b.index for b in self.ctx.brands],
            duration,
            float(self.rng.uniform(8, 12)),
            int(self.rng.integers(10, 31)),
            int(self.rng.integers(30, 61)),
            "viral",
            (0.03, 0.12, 0.85),
            None,
            0.4,
            "a positive viral moment: x{peak:.1f} within {rise} min, 85% positive, many reshares",
        )

    def _neutral_news(self) -> bool:
        duration = int(self.rng.integers(60, 181))
        sources = {"news": 0.6, "twitter": 0.3, "reddit": 0.1}
        return self._decoy_shape(
            "neutral_news",
            [b.index for b in self.ctx.brands],
            duration,
            float(self.rng.uniform(4, 6)),
            int(self.rng.integers(5, 16)),
            int(self.rng.integers(30, 61)),
            "news",
            (0.05, 0.9, 0.05),
            sources,
            0.2,
            "a neutral news burst: x{peak:.1f}, mostly news sources and syndicated headlines (some say 'lawsuit' "
            "or 'investigation' in a neutral report)",
        )

    def _positive_launch(self, window: tuple[int, int] | None = None, brands: list[int] | None = None) -> bool:
        duration = int(self.rng.integers(180, 361))
        return self._decoy_shape(
            "positive_launch",
            brands or [b.index for b in self.ctx.brands],
            duration,
            float(self.rng.uniform(4, 8)),
            int(self.rng.integers(15, 46)),
            duration // 2,
            "launch",
            (0.05, 0.35, 0.6),
            None,
            0.3,
            "a loud product launch ({name} {product}): x{peak:.1f} over {rise} min, 60% positive, news coverage",
            window=window,
            news_boost=2.0,
        )

    def _first_day_launch(self) -> bool:
        late = [b for b in self.ctx.brands if b.first_minute > 0]
        if not late:
            return False
        b = late[0]
        hi = min(self.ctx.total_minutes - END_MARGIN, b.first_minute + 20 * 60)
        return self._positive_launch(window=(b.first_minute + 30, hi), brands=[b.index])

    def _bot_flood(self) -> bool:
        duration = int(self.rng.integers(30, 121))
        spot = self._place([b.index for b in self.ctx.brands], duration, False)
        if spot is None:
            return False
        b = self.ctx.brands[spot[0]]
        mult = float(self.rng.uniform(15, 25))
        rise = int(self.rng.integers(3, 11))
        shape = np.minimum(1.0, (np.arange(duration) + 1) / rise)
        extra = np.minimum(self._level(b.index, spot[1], duration) * (mult - 1), BOT_MAX_PER_MINUTE) * shape
        lang = b.main_language if b.main_language in BOT else "en"
        template = (lang, int(self.rng.integers(len(BOT[lang]))))
        accounts = tuple(int(a) for a in self.rng.integers(0, 1 << 30, size=int(self.rng.integers(3, 9))))
        comp = Component(
            b.index,
            len(self.events),
            spot[1],
            extra,
            "bot",
            (1.0, 0.0, 0.0),
            {lang: 1.0},
            {"twitter": 1.0},
            authors="bots",
            bot_accounts=accounts,
            bot_template=template,
        )
        self._take(
            self._event(
                "decoy",
                "bot_flood",
                b.index,
                spot[1],
                duration,
                peak=mult,
                languages=[lang],
                components=[comp],
                description=f"spam/bot flood: x{mult:.0f} volume of near-identical negative-ish posts ('{lang}') from "
                f"{len(accounts)} low-follower accounts",
            )
        )
        return True

    def _gap_recovery(self) -> bool:
        gap = int(self.rng.integers(120, 361))
        catch_up = int(self.rng.integers(10, 31))
        duration = gap + catch_up
        spot = self._place([b.index for b in self.ctx.brands], duration, False)
        if spot is None:
            return False
        b = self.ctx.brands[spot[0]]
        start = spot[1]
        rates = self.ctx.rates[b.index]
        missed = float(rates[start : start + gap].sum())
        rates[start : start + gap] = 0.0
        share = float(self.rng.uniform(0.3, 0.8))
        weights = np.exp(-np.arange(catch_up) / max(1.0, catch_up / 3))
        backlog = np.zeros(duration)
        backlog[gap:] = weights / weights.sum() * missed * share
        comp = Component(
            b.index, len(self.events), start, backlog, "ordinary", b.sentiment, dict(b.languages), b.sources
        )
        level = float(np.median(self.ctx.levels[b.index][start : start + duration]))
        peak = 1 + float(backlog.max()) / max(level, 1e-6)
        self._take(
            self._event(
                "decoy",
                "gap_recovery",
                b.index,
                start,
                duration,
                peak=peak,
                languages=sorted(b.languages),
                components=[comp],
                description=f"collection gap of {gap} min (no data), then a backlog of ~{share:.0%} of the missed "
                f"mentions over {catch_up} min as collection catches up (peak x{peak:.1f})",
            )
        )
        return True


def bot_text(template: str, u: float, v: float, w: float) -> str:
    """One copy of a bot template: a random short link and small edits (case, punctuation, emoji)."""
    code = "".join("abcdefghijkmnpqrstuvwxyz23456789"[int(x * 32) % 32] for x in (u, v, w, (u + v) % 1, (v + w) % 1))
    text = template
    if u < 0.3:
        text = text.upper()
    elif u < 0.4:
        text = text.lower()
    bang = "!" * (1 + int(v * 3))
    emoji = ("", " ⚠️", " 💰", " 🚨")[int(w * 4)]
    return f"{text}{bang} https://bit.ly/{code}{emoji}"


SOURCE_INDEX = {s: i for i, s in enumerate(SOURCES)}
