"""Language identification benchmark: accuracy on UMSAB tweets and on two-word phrases, and throughput.

Data: ``sentiment-umsab/<language>/{train,val}_text.txt`` of the shared data folder. Seven languages have
a clean label (arabic, english, french, german, italian, portuguese, spanish -> ar en fr de it pt es); the
Hindi tweets are mostly romanised Hinglish, so they are reported apart and not counted in the accuracy.

Rules of the count:

* A tweet whose cleaned text (`detectors.text.strip_social_noise`) has fewer than
  `detectors.language.MIN_LETTERS` letters carries no language: it is left out of the accuracy (the
  detector answers ``"und"`` for it by design) and counted separately as ``no_language``.
* Every other tweet counts; an ``"und"`` answer for it is an error.
* Two-word phrases: for each val tweet of the seven languages, in file order, the words of its cleaned text
  are the runs of letters (``[^\\W\\d_]+``, joined across an inner apostrophe or hyphen); a tweet with at
  least two words gives one phrase, two consecutive words starting at an index drawn by
  ``random.Random(0)`` shared across all tweets (languages in the order above).
* Throughput: CPU time of this process (one core: the detector is single-threaded and BLAS is held to one
  thread), `detect_batch` over batches of 1,024 raw tweets including cleaning. "cold" starts with an empty
  fastText word cache, "warm" runs again over the same tweets; best of three. langdetect is timed over the
  val tweets only (it is slow).
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from crisiswatch.detectors import language
from crisiswatch.detectors.text import strip_social_noise, strip_social_noise_batch

LANGUAGES = {
    "arabic": "ar", "english": "en", "french": "fr", "german": "de",
    "italian": "it", "portuguese": "pt", "spanish": "es",
}
HINDI = "hindi"
SPLITS = ("val", "train")
BATCH = 1024
SEED = 0
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def _umsab(data_dir: Path) -> Path:
    data_dir = Path(data_dir)
    return data_dir / "sentiment-umsab" if (data_dir / "sentiment-umsab").is_dir() else data_dir


def load_tweets(data_dir: Path, split: str, folders: Sequence[str] = tuple(LANGUAGES)) -> list[tuple[str, str]]:
    """(tweet, folder) pairs of one split, languages in the given order, tweets in file order."""
    root = _umsab(data_dir)
    out = []
    for folder in folders:
        lines = (root / folder / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
        out += [(line, folder) for line in lines]
    return out


def two_word_phrases(tweets: Sequence[tuple[str, str]], seed: int = SEED) -> list[tuple[str, str]]:
    """One (phrase, ISO code) per tweet with at least two words: two consecutive words, start drawn by seed."""
    rng = random.Random(seed)
    out = []
    for text, folder in tweets:
        words = _WORD.findall(strip_social_noise(text))
        if len(words) >= 2:
            start = rng.randrange(len(words) - 1)
            out.append((f"{words[start]} {words[start + 1]}", LANGUAGES[folder]))
    return out


def _accuracy(detector: language.LanguageDetector, tweets: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Accuracy per language and overall; tweets without language after cleaning are left out."""
    kept = [(t, f) for t, f in tweets if language.has_language(strip_social_noise(t))]
    predicted = detector.detect_batch([t for t, _ in kept])
    right, total, und = Counter(), Counter(), 0
    for (_, folder), code in zip(kept, predicted, strict=True):
        total[folder] += 1
        right[folder] += code == LANGUAGES[folder]
        und += code == language.UND
    return {
        "accuracy": round(sum(right.values()) / max(sum(total.values()), 1), 4),
        "tweets": sum(total.values()),
        "no_language": len(tweets) - len(kept),
        "und_answers": und,
        "per_language": {LANGUAGES[f]: round(right[f] / total[f], 4) for f in LANGUAGES if total[f]},
    }


def _hindi(detector: language.LanguageDetector, tweets: Sequence[tuple[str, str]]) -> dict[str, Any]:
    predicted = detector.detect_batch([t for t, _ in tweets])
    counts = Counter(predicted)
    return {
        "tweets": len(tweets),
        "hi_share": round(counts["hi"] / max(len(tweets), 1), 4),
        "top_answers": {code: round(n / len(tweets), 4) for code, n in counts.most_common(6)},
    }


def _two_words(detector: language.LanguageDetector, phrases: Sequence[tuple[str, str]]) -> dict[str, Any]:
    predicted = detector.detect_batch([p for p, _ in phrases])
    right, total = Counter(), Counter()
    for (_, code), got in zip(phrases, predicted, strict=True):
        total[code] += 1
        right[code] += got == code
    return {
        "accuracy": round(sum(right.values()) / max(len(phrases), 1), 4),
        "phrases": len(phrases),
        "per_language": {c: round(right[c] / total[c], 4) for c in LANGUAGES.values() if total[c]},
    }


def _cpu_seconds(action: Callable[[], object], repeats: int = 3, before: Callable[[], object] | None = None) -> float:
    best = float("inf")
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.process_time()
        action()
        best = min(best, time.process_time() - start)
    return max(best, 1e-9)


def _throughput(backend: str, texts: Sequence[str]) -> dict[str, Any]:
    detector = language.LanguageDetector(backend)
    detector.detect_batch(list(texts[:10]))  # load the models outside the clock

    def batches() -> None:
        for lo in range(0, len(texts), BATCH):
            detector.detect_batch(texts[lo:lo + BATCH])

    if backend != "fast":
        seconds = _cpu_seconds(batches, repeats=1)
        return {"texts": len(texts), "texts_per_second": round(len(texts) / seconds)}
    model = language.fasttext_model()
    cold = _cpu_seconds(batches, before=model._clear_cache)
    warm = _cpu_seconds(batches)
    few = texts[:2000]
    single = _cpu_seconds(lambda: [detector.detect(t) for t in few])
    clean = _cpu_seconds(lambda: [strip_social_noise_batch(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
    return {
        "texts": len(texts),
        "batch": BATCH,
        "texts_per_second_cold": round(len(texts) / cold),
        "texts_per_second_warm": round(len(texts) / warm),
        "microseconds_per_text_cold": round(cold / len(texts) * 1e6, 1),
        "microseconds_per_text_warm": round(warm / len(texts) * 1e6, 1),
        "cleaning_microseconds_per_text": round(clean / len(texts) * 1e6, 1),
        "texts_per_second_one_at_a_time": round(len(few) / single),
    }


def run(data_dir: Path) -> dict[str, Any]:
    """Every measurement of this benchmark, per backend, as a JSON-serialisable dict."""
    tweets = {split: load_tweets(data_dir, split) for split in SPLITS}
    hindi = [pair for split in SPLITS for pair in load_tweets(data_dir, split, (HINDI,))]
    phrases = two_word_phrases(tweets["val"])
    all_texts = [t for split in SPLITS for t, _ in tweets[split]]
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                    "python": platform.python_version()},
        "rules": {"min_letters": language.MIN_LETTERS, "two_word_seed": SEED, "batch": BATCH},
        "backends": {},
    }
    with threadpool_limits(limits=1):  # one core: no BLAS worker threads
        for backend in language.BACKENDS:
            detector = language.LanguageDetector(backend)
            splits = {split: _accuracy(detector, tweets[split]) for split in SPLITS}
            both = sum(s["accuracy"] * s["tweets"] for s in splits.values()) / sum(s["tweets"] for s in splits.values())
            texts = all_texts if backend == "fast" else [t for t, _ in tweets["val"]]
            result["backends"][backend] = {
                "languages": len(detector.languages()),
                "tweets": splits,
                "overall_accuracy": round(both, 4),
                "hindi": _hindi(detector, hindi),
                "two_words": _two_words(detector, phrases),
                "throughput": _throughput(backend, texts),
            }
    return result


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def markdown(result: dict[str, Any]) -> str:
    """The report section as Markdown."""
    backends = result["backends"]
    codes = list(LANGUAGES.values())
    lines = [
        "# Language identification benchmark",
        "",
        "UMSAB tweets (7 languages, val + train splits), cleaned with `strip_social_noise`; tweets left with "
        f"fewer than {result['rules']['min_letters']} letters carry no language and are not counted; an "
        '"und" answer on any other tweet is an error. Two-word phrases: two consecutive words of each val '
        f"tweet, start drawn with `random.Random({result['rules']['two_word_seed']})`.",
        "",
        "| backend | languages | val | train | val + train | two words | Hindi tweets answered `hi` |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, b in backends.items():
        lines.append(
            f"| {name} | {b['languages']} | {_pct(b['tweets']['val']['accuracy'])} "
            f"| {_pct(b['tweets']['train']['accuracy'])} | **{_pct(b['overall_accuracy'])}** "
            f"| **{_pct(b['two_words']['accuracy'])}** | {_pct(b['hindi']['hi_share'])} |"
        )
    lines += ["", "Per language (val / train / two words):", "",
              "| backend | " + " | ".join(codes) + " |", "|---|" + "---:|" * len(codes)]
    for name, b in backends.items():
        cells = [
            f"{_pct(b['tweets']['val']['per_language'][c])} / {_pct(b['tweets']['train']['per_language'][c])}"
            f" / {_pct(b['two_words']['per_language'][c])}"
            for c in codes
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    fast = backends.get("fast")
    if fast:
        t, v = fast["throughput"], fast["tweets"]
        lines += [
            "",
            f"Counted: {v['val']['tweets'] + v['train']['tweets']:,} tweets "
            f"({v['val']['no_language'] + v['train']['no_language']} without language left out; "
            f"{v['val']['und_answers'] + v['train']['und_answers']} answered und, counted wrong); "
            f"{fast['two_words']['phrases']:,} two-word phrases.",
            "",
            "Hindi (romanised Hinglish, not counted), answers: "
            + ", ".join(f"{c} {_pct(s)}" for c, s in fast["hindi"]["top_answers"].items()) + ".",
            "",
            f"## Throughput (one core, CPU time, batches of {t['batch']}, cleaning included)",
            "",
            "| backend | cold word cache | warm | one text per call |",
            "|---|---:|---:|---:|",
            f"| fast | {t['texts_per_second_cold']:,}/s ({t['microseconds_per_text_cold']} µs) "
            f"| {t['texts_per_second_warm']:,}/s ({t['microseconds_per_text_warm']} µs) "
            f"| {t['texts_per_second_one_at_a_time']:,}/s |",
        ]
        if "langdetect" in backends:
            lines.append(f"| langdetect | {backends['langdetect']['throughput']['texts_per_second']:,}/s | | |")
        lines += [
            "",
            "Of the fast path, cleaning (`strip_social_noise_batch`) takes "
            f"{t['cleaning_microseconds_per_text']} µs a text. "
            f"Machine: {result['machine']['cpus']} CPUs, 1-minute load average "
            f"{result['machine']['load_average_1m']} during the run (shared machine: CPU time is inflated when "
            "the other core is busy).",
        ]
    return "\n".join(lines) + "\n"


def write_report(data_dir: Path, out: Path) -> str:
    """Run, write ``bench-language.md`` and ``.json`` under ``out``; returns the Markdown."""
    result = run(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-language.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / "bench-language.md").write_text(text)
    return text
