"""Training the sentiment model from files: reading labelled data, hold-out, fitting, per-language report.

The model itself (`detectors.sentiment.SentimentModel`) is pure; this module does the I/O around it:

- labelled CSV (header with ``text,label[,lang]``) or JSONL (objects with ``text``, ``label``[, ``lang``]),
  labels as names (negative/neutral/positive) or 0/1/2; a bad line is reported as ``file:line: why``;
- the UMSAB folder layout (``<language>/{train,val}_{text,labels}.txt``) used to build the shipped model;
- a stratified hold-out when no validation file is given, a progress bar while training, and a
  per-language validation report (precision / recall / F1 per class, macro-F1 per language and averaged).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crisiswatch.detectors.sentiment import LABELS, SentimentModel, label_index

UNKNOWN_LANG = "all"
FEATURE_CHUNK = 2_000


class DataError(ValueError):
    """A labelled data file that cannot be used; the message names the file and line."""


@dataclass
class LabelledData:
    """Texts with 0/1/2 labels and, when known, a language per text."""

    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    langs: list[str] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: Sequence[int] | np.ndarray) -> LabelledData:
        return LabelledData(
            [self.texts[i] for i in index],
            [self.labels[i] for i in index],
            None if self.langs is None else [self.langs[i] for i in index],
            self.source,
        )

    def lang_list(self) -> list[str]:
        return self.langs if self.langs is not None else [UNKNOWN_LANG] * len(self.texts)


# -- reading ---------------------------------------------------------------------------------------------
def _record(path: Path, line: int, text: object, label: object, lang: object) -> tuple[str, int, str | None]:
    if not isinstance(text, str):
        raise DataError(f"{path}:{line}: 'text' must be a string, got {type(text).__name__}")
    try:
        index = label_index(label)
    except ValueError as exc:
        raise DataError(f"{path}:{line}: {exc}") from None
    if lang is not None and not isinstance(lang, str):
        raise DataError(f"{path}:{line}: 'lang' must be a string, got {type(lang).__name__}")
    return text, index, (lang.strip() or None) if isinstance(lang, str) else None


def _csv_records(path: Path) -> Iterator[tuple[int, str, object, object]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        missing = {"text", "label"} - set(columns)
        if missing:
            raise DataError(
                f"{path}:1: header must name the columns text,label[,lang]; missing {', '.join(sorted(missing))}"
                f" (found: {', '.join(columns) or 'nothing'})"
            )
        reader.fieldnames = columns
        for row in reader:
            if None in row:
                raise DataError(f"{path}:{reader.line_num}: more fields than the header has columns")
            if row.get("text") is None or row.get("label") is None:
                raise DataError(f"{path}:{reader.line_num}: fewer fields than the header has columns")
            yield reader.line_num, row["text"], row["label"], row.get("lang")


def _jsonl_records(path: Path) -> Iterator[tuple[int, str, object, object]]:
    with path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object with text and label")
            for key in ("text", "label"):
                if key not in obj:
                    raise DataError(f"{path}:{number}: missing field {key!r}")
            yield number, obj["text"], obj["label"], obj.get("lang")


def read_labelled(path: str | Path) -> LabelledData:
    """Read a labelled ``.csv`` or ``.jsonl`` file (``.json``/``.ndjson`` are read as JSON lines)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records = _csv_records(path)
    elif suffix in {".jsonl", ".ndjson", ".json"}:
        records = _jsonl_records(path)
    else:
        raise DataError(f"{path}: unknown format {suffix or '(no suffix)'}; use .csv or .jsonl")
    data = LabelledData(source=path.name)
    langs: list[str | None] = []
    try:
        for line, text, label, lang in records:
            text, index, lang = _record(path, line, text, label, lang)
            data.texts.append(text)
            data.labels.append(index)
            langs.append(lang)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    if not data.texts:
        raise DataError(f"{path}: no labelled rows")
    if any(lang is not None for lang in langs):
        data.langs = [lang or UNKNOWN_LANG for lang in langs]
    return data


def is_umsab_dir(path: str | Path) -> bool:
    """True for a folder laid out as UMSAB: ``<language>/train_text.txt`` + ``train_labels.txt``."""
    path = Path(path)
    return path.is_dir() and any((sub / "train_text.txt").is_file() for sub in path.iterdir() if sub.is_dir())


def read_umsab(root: str | Path, split: str) -> LabelledData:
    """One split (``train``/``val``/``test``) of every language folder under ``root``."""
    root = Path(root)
    data = LabelledData(langs=[], source=f"{root.name}/{split}")
    assert data.langs is not None
    languages = sorted(p for p in root.iterdir() if p.is_dir() and (p / f"{split}_text.txt").is_file())
    if not languages:
        raise DataError(f"{root}: no <language>/{split}_text.txt files")
    for folder in languages:
        text_file, label_file = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
        if not label_file.is_file():
            raise DataError(f"{label_file}: missing (needed next to {text_file.name})")
        texts = text_file.read_text(encoding="utf-8").split("\n")
        labels = label_file.read_text(encoding="utf-8").split("\n")
        while texts and texts[-1] == "":
            texts.pop()
        while labels and labels[-1].strip() == "":
            labels.pop()
        if len(texts) != len(labels):
            raise DataError(f"{folder}: {len(texts)} lines in {text_file.name} but {len(labels)} in {label_file.name}")
        for number, (text, label) in enumerate(zip(texts, labels, strict=True), start=1):
            try:
                data.labels.append(label_index(label))
            except ValueError as exc:
                raise DataError(f"{label_file}:{number}: {exc}") from None
            data.texts.append(text)
            data.langs.append(folder.name)
    return data


def holdout_split(data: LabelledData, fraction: float, seed: int = 0) -> tuple[LabelledData, LabelledData]:
    """Stratified (language x label) random split into (train, validation)."""
    if not 0 < fraction < 1:
        raise ValueError("the validation fraction must be between 0 and 1")
    rng = np.random.default_rng(seed)
    strata: dict[tuple[str, int], list[int]] = {}
    for i, key in enumerate(zip(data.lang_list(), data.labels, strict=True)):
        strata.setdefault(key, []).append(i)
    val_index: list[int] = []
    for members in strata.values():
        take = round(len(members) * fraction)
        if len(members) >= 2:
            take = min(max(take, 1), len(members) - 1)
            val_index.extend(rng.choice(members, size=take, replace=False).tolist())
    val_set = set(val_index)
    train_index = [i for i in range(len(data)) if i not in val_set]
    if not val_index:
        raise DataError(f"{data.source}: too little data to hold out a validation part; pass --val")
    return data.subset(train_index), data.subset(sorted(val_index))


# -- training and evaluation -------------------------------------------------------------------------------
def fit_model(model: SentimentModel, data: LabelledData, progress: bool = True) -> SentimentModel:
    """Featurise (in chunks, with a progress bar) and fit ``model`` on ``data``."""
    import scipy.sparse as sp
    from tqdm import tqdm

    chunks = range(0, len(data), FEATURE_CHUNK)
    with tqdm(total=len(chunks) + 1, desc="training", unit="step", disable=not progress) as bar:
        blocks = []
        for start in chunks:
            blocks.append(model.space.transform(data.texts[start : start + FEATURE_CHUNK]))
            bar.set_postfix_str(f"features {min(start + FEATURE_CHUNK, len(data))}/{len(data)}")
            bar.update()
        X = sp.vstack(blocks, format="csr")
        y = np.asarray(data.labels, dtype=np.int64)
        bar.set_postfix_str("fitting")
        model.fit_matrix(X, y, model.sample_weights(y, data.langs))
        bar.set_postfix_str("done")
        bar.update()
    return model


def evaluate(model: SentimentModel, data: LabelledData) -> dict[str, Any]:
    """Per-language precision/recall/F1 per class and macro-F1, plus the average over languages."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    predicted = model.predict_proba(data.texts).argmax(axis=1)
    truth = np.asarray(data.labels)
    langs = np.asarray(data.lang_list())
    per_language: dict[str, Any] = {}
    for lang in sorted(set(langs.tolist())):
        mask = langs == lang
        precision, recall, f1, support = precision_recall_fscore_support(
            truth[mask], predicted[mask], labels=[0, 1, 2], zero_division=0
        )
        macro_f1 = f1_score(truth[mask], predicted[mask], labels=[0, 1, 2], average="macro", zero_division=0)
        per_language[lang] = {
            "n": int(mask.sum()),
            "macro_f1": float(macro_f1),
            "accuracy": float((truth[mask] == predicted[mask]).mean()),
            "classes": {
                name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for name, p, r, f, s in zip(LABELS, precision, recall, f1, support, strict=True)
            },
        }
    return {
        "n": len(data),
        "macro_f1_avg": float(np.mean([v["macro_f1"] for v in per_language.values()])),
        "per_language": per_language,
    }


def format_report(report: dict[str, Any]) -> str:
    """Plain-text table of an `evaluate` result."""
    lines = [
        f"{'language':<12}{'n':>6}  {'P-neg':>6}{'R-neg':>6}{'F-neg':>6}  {'P-neu':>6}{'R-neu':>6}{'F-neu':>6}"
        f"  {'P-pos':>6}{'R-pos':>6}{'F-pos':>6}  {'macro-F1':>8}"
    ]
    for lang, row in report["per_language"].items():
        cells = "  ".join(
            "".join(f"{row['classes'][name][k]:6.3f}" for k in ("precision", "recall", "f1")) for name in LABELS
        )
        lines.append(f"{lang:<12}{row['n']:>6}  {cells}  {row['macro_f1']:8.3f}")
    lines.append(f"{'average':<12}{report['n']:>6}  {'':58}  {report['macro_f1_avg']:8.3f}")
    return "\n".join(lines)


def load_train_val(
    data: str | Path, val: str | Path | None = None, val_fraction: float = 0.15, seed: int = 0
) -> tuple[LabelledData, LabelledData]:
    """Training and validation data from a file or a UMSAB folder (+ an optional validation file)."""
    if is_umsab_dir(data):
        train = read_umsab(data, "train")
        validation = read_labelled(val) if val else read_umsab(data, "val")
        return train, validation
    if Path(data).is_dir():
        raise DataError(f"{data}: a folder, but not in the UMSAB layout (<language>/train_text.txt)")
    train = read_labelled(data)
    if val:
        return train, read_labelled(val)
    return holdout_split(train, val_fraction, seed)


def train_sentiment(
    data: str | Path,
    out: str | Path,
    val: str | Path | None = None,
    val_fraction: float = 0.15,
    seed: int = 0,
    model_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Read, fit, validate and save; returns (artifact path, validation report)."""
    train, validation = load_train_val(data, val, val_fraction, seed)
    model = fit_model(SentimentModel(**(model_options or {})), train, progress=progress)
    report = evaluate(model, validation)
    model.metadata = {
        "trained_on": train.source,
        "n_train": len(train),
        "validated_on": validation.source,
        "n_val": len(validation),
        "val_macro_f1_avg": round(report["macro_f1_avg"], 4),
        "val_macro_f1": {k: round(v["macro_f1"], 4) for k, v in report["per_language"].items()},
    }
    return model.save(out), report
