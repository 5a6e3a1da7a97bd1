"""The brands of a corpus: invented names, rates, language and source mixes, sectors, series segments.

Names are invented and unambiguous: none is a word in any of the eight languages or occurs in the
UMSAB tweets (a test checks the latter), so a brand matches only where the generator put it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crisiswatch.scenarios.phrases import SECTORS

NAMES = (
    "Zentrix", "Corvanta", "Quillora", "Bravexa", "Nolvexa", "Tarpexo",
    "Vyndora", "Plumetra", "Kestova", "Drombelt", "Oxivane", "Luxtera",
    "Yurvana", "Skelvio", "Morquint", "Trevalux", "Ombrexa", "Fennaro",
    "Jaxolin", "Wembrio", "Hovantra", "Irzelta", "Grubbix", "Synvaro",
)  # fmt: skip
"""Brand names: the tune split draws from the first twelve, the check split from the last twelve."""

DEFAULT_RATES = (1, 2, 3, 5, 8, 12, 20, 50)
SOURCES = ("twitter", "reddit", "news", "forum", "reviews")
BASE_SOURCES = (0.72, 0.09, 0.06, 0.06, 0.07)

LANGUAGE_PROFILES: tuple[tuple[str, dict[str, float]], ...] = (
    ("insurer", {"en": 0.8, "es": 0.1, "fr": 0.1}),
    ("pharma", {"en": 0.55, "de": 0.25, "it": 0.2}),
    ("bank", {"es": 0.7, "en": 0.2, "pt": 0.1}),
    ("telecom", {"ar": 0.65, "en": 0.25, "fr": 0.1}),
    ("food", {"de": 0.6, "en": 0.3, "it": 0.1}),
    ("automotive", {"en": 0.5, "hi": 0.3, "de": 0.1, "ar": 0.1}),
    ("tech", {"en": 0.7, "fr": 0.1, "es": 0.1, "pt": 0.05, "de": 0.05}),
    ("retail", {"en": 0.6, "es": 0.1, "pt": 0.1, "fr": 0.05, "de": 0.05, "it": 0.05, "ar": 0.05}),
)
"""(sector, language mix): one mostly Spanish, one mostly Arabic, one mostly German, the rest mostly English."""
assert {s for s, _ in LANGUAGE_PROFILES} == set(SECTORS)


@dataclass
class BrandSpec:
    """One brand as the generator builds it (labels.BrandLabel is what is written out)."""

    index: int
    id: str
    name: str
    handle: str
    rate: float
    sector: str
    languages: dict[str, float]
    sources: dict[str, float]
    sentiment: tuple[float, float, float]
    sector_share: float
    first_minute: int
    series: str = ""
    start_row: int = 0
    audience: int = 0
    terms: list[str] = field(default_factory=list)

    @property
    def profile(self) -> str:
        if self.rate <= 2:
            return "sparse"
        if self.rate <= 5:
            return "quiet"
        if self.rate < 20:
            return "moderate"
        return "busy"

    @property
    def main_language(self) -> str:
        return max(self.languages, key=lambda k: self.languages[k])


def rates_for(count: int) -> list[float]:
    """Default rates: 1, 2, 3, 5, 8, 12, 20, 50 for eight brands; a 1-to-50 geometric spread otherwise."""
    if count == len(DEFAULT_RATES):
        return [float(r) for r in DEFAULT_RATES]
    if count == 1:
        return [5.0]
    return [float(max(1, round(r))) for r in np.geomspace(1, 50, count)]


def _jitter(mix: dict[str, float], rng: np.random.Generator, spread: float = 0.2) -> dict[str, float]:
    raw = {k: v * float(rng.uniform(1 - spread, 1 + spread)) for k, v in mix.items()}
    total = sum(raw.values())
    return {k: round(v / total, 4) for k, v in raw.items()}


def make_brands(count: int, names: tuple[str, ...], total_minutes: int, rng: np.random.Generator) -> list[BrandSpec]:
    """``count`` brands with varied rates and profiles; one (not the sparsest) starts later (day 3 of a
    14-day corpus; a quarter in for short corpora), so its first day lies inside the corpus."""
    rates = rates_for(count)
    chosen = list(rng.permutation(len(names))[:count]) if count <= len(names) else list(range(count))
    profile_order = rng.permutation(len(LANGUAGE_PROFILES))
    days = total_minutes / 1440
    late_offset = 2 * 1440 if days >= 7 else int(total_minutes * 0.25)
    late = int(rng.integers(1, count)) if count > 1 else -1
    brands = []
    for i, rate in enumerate(rates):
        name = names[chosen[i] % len(names)] + ("" if count <= len(names) else str(i))
        sector, langs = LANGUAGE_PROFILES[int(profile_order[i % len(profile_order)])]
        neg = float(rng.uniform(0.22, 0.28))
        pos = float(rng.uniform(0.32, 0.38))
        sources = rng.dirichlet(np.array(BASE_SOURCES) * 60)
        first = late_offset + int(rng.integers(0, 6 * 60)) if i == late else 0
        handle = f"@{name.lower()}"
        brands.append(
            BrandSpec(
                index=i,
                id=f"b{i + 1}-{name.lower()}",
                name=name,
                handle=handle,
                rate=rate,
                sector=sector,
                languages=_jitter(langs, rng),
                sources={s: round(float(p), 4) for s, p in zip(SOURCES, sources, strict=True)},
                sentiment=(neg, 1 - neg - pos, pos),
                sector_share=float(rng.uniform(0.02, 0.05)),
                first_minute=first,
                audience=int(rng.integers(0, 1 << 30)),
                terms=[name.lower(), f"#{name.lower()}", handle, f"{handle}_help"],
            )
        )
    return brands


def brands_yaml(brands: list[BrandSpec]) -> str:
    """The brands file of the corpus (the format of ``crisiswatch/data/brands.yaml``)."""
    lines = [
        "# Brands of a generated scenario corpus (crisiswatch corpus generate). Invented names;",
        "# matching is case-insensitive and whole-word, `#name` and `@handle` match too.",
        "brands:",
    ]
    for b in brands:
        terms = ", ".join(f'"{t}"' for t in b.terms)
        lines += [f"  - id: {b.id}", f"    name: {b.name}", f"    terms: [{terms}]"]
    lines += [
        "topics:",
        "  - id: security",
        '    terms: ["breach", "hack", "hacked", "leak", "leaked", "password", "passwords", "data breach"]',
        "  - id: product",
        '    terms: ["recall", "defect", "launch", "app"]',
    ]
    return "\n".join(lines) + "\n"
