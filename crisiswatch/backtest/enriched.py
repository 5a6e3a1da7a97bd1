"""The first half of a backtest: a mention file in, the ``mentions.enriched`` records the worker would write out.

Each raw record goes through the enrich stage's own code: `stream.dead_letters.decode_mention` (bad
records are counted as dead letters with their reason), `stream.dedupe.SeenIds`, and
`stream.enrichment.Enricher` in batches. The result is cached beside the output as gzip JSONL of the
enriched records themselves, keyed by the input file, the brands file and the model, so trying
another policy on the same history skips enrichment (the slow part) and replays only decisions.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crisiswatch.brands_file import load_brands
from crisiswatch.connectors.replay import read_items
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.detectors import sentiment
from crisiswatch.detectors.seen import SeenIds
from crisiswatch.settings import Settings
from crisiswatch.stream.dead_letters import RejectedRecord, decode_mention
from crisiswatch.stream.enrichment import Enricher

BATCH = 2000
CACHE_VERSION = 1


@dataclass
class EnrichedFile:
    """Where the enriched records of one input are, and what enrichment counted on the way."""

    path: Path
    raw: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    unmatched: int = 0
    cached: bool = False


def cache_key(mentions: Path, brands_file: Path, language_backend: str) -> str:
    """Changes when the input, the brands, the language backend or the sentiment model change."""
    digest = hashlib.sha256()
    stat = mentions.stat()
    digest.update(f"{CACHE_VERSION}|{mentions.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
    digest.update(brands_file.read_bytes())
    digest.update(language_backend.encode())
    digest.update(str(getattr(sentiment, "MODEL_VERSION", "")).encode())
    model_dir = Path(sentiment.__file__).parent / "models"
    for artifact in sorted(model_dir.glob("*")) if model_dir.is_dir() else []:
        digest.update(f"{artifact.name}:{artifact.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def enrich_file(
    mentions: Path,
    settings: Settings,
    cache_dir: Path,
    progress: Callable[[int], None] | None = None,
) -> EnrichedFile:
    """Enrich ``mentions`` into ``cache_dir`` (or reuse the cached result); return where it is."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(mentions, settings.worker.brands_file, settings.worker.language_backend)
    target = cache_dir / f"enriched-{key}.jsonl.gz"
    stats_path = target.with_suffix(".stats.json")
    if target.is_file() and stats_path.is_file():
        stats = json.loads(stats_path.read_text())
        return EnrichedFile(
            target, stats["raw"], Counter(stats["dead_letters"]), stats["duplicates"], stats["unmatched"], cached=True
        )
    result = EnrichedFile(target)
    enricher = Enricher(load_brands(settings.worker.brands_file), settings.worker.language_backend)
    seen = SeenIds(max_ids=settings.worker.dedupe_max_ids, ttl_seconds=settings.worker.dedupe_ttl_seconds)
    partial = target.with_suffix(".partial")
    with gzip.open(partial, "wb", compresslevel=3) as out:
        for batch in _batches(mentions, settings, seen, result):
            for item in enricher.enrich(batch):
                if not item.brands:
                    result.unmatched += 1
                    continue
                for brand in item.brands:
                    out.write(item.to_json(brand))
                    out.write(b"\n")
            if progress is not None:
                progress(len(batch))
    partial.replace(target)
    stats_path.write_text(
        json.dumps(
            {
                "raw": result.raw,
                "dead_letters": dict(result.dead_letters),
                "duplicates": result.duplicates,
                "unmatched": result.unmatched,
            }
        )
    )
    return result


def _batches(mentions: Path, settings: Settings, seen: SeenIds, result: EnrichedFile) -> Iterator[list[Mention]]:
    batch: list[Mention] = []
    now = utcnow()
    for item in read_items(mentions):
        result.raw += 1
        try:
            mention = decode_mention(item.value, settings.worker.max_record_bytes, now)
        except RejectedRecord as exc:
            result.dead_letters[exc.reason] += 1
            continue
        if not seen.first_time(mention.id):
            result.duplicates += 1
            continue
        batch.append(mention)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
