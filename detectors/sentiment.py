"""Multilingual three-class sentiment (negative / neutral / positive) of short social-media texts.

A linear model over hashed word and character n-grams (`detectors.sentiment_features`) plus a block of
word-polarity values distilled offline from a multilingual sentence encoder (`detectors.sentiment_static`,
it covers words the training tweets never showed): fast (tens of thousands of tweets per second on one
core), language-agnostic (one model for every language) and stored as small NON-pickle ``.npz`` files
(weights + hyper-parameters, ``allow_pickle=False``). No encoder is needed or imported at prediction time.

>>> from detectors.sentiment import predict_batch, predict_proba_batch
>>> predict_batch(["I love it 😍", "this is not good", "la réunion est à 10h"])
['positive', 'negative', 'neutral']

The shipped model (``detectors/models/sentiment-v1.npz``, with the lexicon it names,
``detectors/models/sentiment-e5-lexicon.npz``) is trained on the train split of the UMSAB tweets of eight
languages (the val split only chose the settings and gives the report), from the repository root, by::

    crisiswatch train-sentiment --data ../shared/data/sentiment-umsab \\
        --out detectors/models/sentiment-v1.npz --word-bits 20 --c 10 --nb-weight 0.3 --static-weight 0.7

(those are also the command's defaults). The same command trains a model on other labelled data.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from crisiswatch.contracts.vocabulary import SENTIMENTS
from crisiswatch.detectors.sentiment_features import HashedFeatures
from crisiswatch.detectors.sentiment_static import DEFAULT_LEXICON, Lexicon, load_lexicon

LABELS = SENTIMENTS
DEFAULT_ARTIFACT = "sentiment-v1.npz"
FORMAT = "crisiswatch-sentiment/1"
# What a text without a single feature (empty, only spaces/separators) gets: no evidence -> neutral.
NO_EVIDENCE = np.array([0.0, 1.0, 0.0])


def label_index(label: object) -> int:
    """0/1/2 for a label given as a name (negative/neutral/positive, any case) or as 0/1/2 (int or str)."""
    if isinstance(label, bool):
        raise ValueError(f"not a sentiment label: {label!r}")
    if isinstance(label, int | np.integer) and 0 <= int(label) <= 2:
        return int(label)
    if isinstance(label, str):
        text = label.strip().lower()
        if text in LABELS:
            return LABELS.index(text)
        if text in {"0", "1", "2"}:
            return int(text)
    raise ValueError(f"not a sentiment label: {label!r} (use negative/neutral/positive or 0/1/2)")


class SentimentModel:
    """Multinomial logistic regression over `HashedFeatures`, with fit/predict separation.

    ``C`` is the inverse L2 strength; ``nb_weight`` adds a multinomial naive-Bayes log-count-ratio
    model on the same features to the logits. ``static_weight`` (0 to 1) mixes in the word-polarity
    ``lexicon`` distilled from a multilingual sentence encoder (`detectors.sentiment_static`), which knows
    words the training data never showed: the logits are ``(1 - static_weight) * (regression + nb_weight
    * naive Bayes) + static_weight * lexicon``. The lexicon is a block of the features (its words' counts)
    and the mixture is linear, so the model is still ONE weight matrix: the regression and naive Bayes
    are fitted on the hashed blocks, the lexicon block's weights are the lexicon's values. Weights are
    rounded to float16 when fitted, so a saved and re-loaded model predicts exactly the same numbers.
    """

    def __init__(
        self,
        features: HashedFeatures | None = None,
        C: float = 10.0,
        nb_weight: float = 0.3,
        nb_alpha: float = 0.1,
        max_iter: int = 300,
        balance_languages: bool = True,
        static_weight: float = 0.0,
        lexicon: str = DEFAULT_LEXICON,
    ) -> None:
        self.features = features
        self.C = C
        self.nb_weight = nb_weight
        self.nb_alpha = nb_alpha
        self.max_iter = max_iter
        self.balance_languages = balance_languages
        self.static_weight = static_weight
        self.lexicon = lexicon  # file name in detectors/models (or a path); used when static_weight > 0
        self.weights: np.ndarray | None = None  # (n_features, 3) float32, float16-exact
        self.bias: np.ndarray | None = None  # (3,) float32
        self.metadata: dict[str, Any] = {}
        self.features_: HashedFeatures | None = None
        """The feature space actually used (with the lexicon block when ``static_weight``); set by `prepare`."""
        self._lexicon: Lexicon | None = None

    def prepare(self) -> SentimentModel:
        """Check the parameters and load the lexicon (scikit-learn style: nothing of this in ``__init__``)."""
        if not 0.0 <= self.static_weight <= 1.0:
            raise ValueError(f"static_weight must be between 0 and 1, got {self.static_weight}")
        features = self.features or HashedFeatures()
        self._lexicon = None
        if self.static_weight:
            self._lexicon = load_lexicon(self.lexicon)
            features = replace(features, lexicon_hashes=self._lexicon.hashes)
        elif features.lexicon_hashes is not None:
            raise ValueError("features with a lexicon block need static_weight > 0")
        self.features_ = features
        return self

    @property
    def space(self) -> HashedFeatures:
        """`features_`, preparing the model first if needed."""
        if self.features_ is None:
            self.prepare()
        assert self.features_ is not None
        return self.features_

    # -- training ---------------------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[object], langs: Sequence[str] | None = None) -> SentimentModel:
        """Learn the weights from texts and labels (names or 0/1/2); ``langs`` balances languages."""
        y = np.array([label_index(label) for label in labels], dtype=np.int64)
        if len(y) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(y)} labels")
        self.prepare()
        return self.fit_matrix(self.space.transform(texts), y, self.sample_weights(y, langs))

    def sample_weights(self, y: np.ndarray, langs: Sequence[str] | None = None) -> np.ndarray:
        """Weights that give every (language, class) pair the same total weight, averaging 1."""
        groups = np.array(langs if (langs is not None and self.balance_languages) else [""] * len(y), dtype=str)
        keys = np.char.add(groups, y.astype(str))
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        weights = 1.0 / counts[inverse]
        return weights * (len(y) / weights.sum())

    def fit_matrix(self, X: sp.csr_matrix, y: np.ndarray, sample_weight: np.ndarray | None = None) -> SentimentModel:
        """Learn from an already transformed feature matrix (see `HashedFeatures.transform`)."""
        from sklearn.linear_model import LogisticRegression

        present = np.unique(y)
        if len(present) < 2:
            raise ValueError("training data needs at least two different labels")
        if X.shape[1] != self.space.n_features:
            raise ValueError(f"{X.shape[1]} feature columns, the model has {self.space.n_features}")
        X_hashed = X[:, : self.space.n_hashed] if self.space.n_lexicon else X
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=1e-4)
        lr.fit(X_hashed, y, sample_weight=sample_weight)
        weights = np.zeros((self.space.n_hashed, 3), dtype=np.float64)
        bias = np.full(3, -30.0)  # a class never seen in training is never predicted
        weights[:, lr.classes_] = lr.coef_.T if len(lr.classes_) > 2 else np.c_[-lr.coef_[0], lr.coef_[0]] / 2
        bias[lr.classes_] = lr.intercept_ if len(lr.classes_) > 2 else np.r_[-lr.intercept_, lr.intercept_] / 2
        if self.nb_weight:
            nb_w, nb_b = _naive_bayes(X_hashed, y, sample_weight, self.nb_alpha)
            weights[:, present] += self.nb_weight * nb_w[:, present]
            bias[present] += self.nb_weight * nb_b[present]
        if self._lexicon is not None:
            mix = self.static_weight
            weights *= 1 - mix
            bias[present] = (1 - mix) * bias[present] + mix * self._lexicon.bias[present]
            weights = np.vstack([_float16_exact(weights), self._lexicon_block()])
        self.weights = _float16_exact(weights)
        self.bias = bias.astype(np.float32)
        return self

    def _lexicon_block(self) -> np.ndarray:
        """Weights of the lexicon block: ``static_weight`` x the lexicon's values, float16-exact float32."""
        assert self._lexicon is not None
        return _float16_exact(self.static_weight * self._lexicon.block_weights().astype(np.float64))

    # -- prediction -------------------------------------------------------------------------------------
    def _check_fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.weights is None or self.bias is None:
            raise RuntimeError("SentimentModel is not fitted: call fit() or load()")
        return self.weights, self.bias

    def decision_function(self, texts: Sequence[object]) -> np.ndarray:
        """Logits (n, 3) in the order negative, neutral, positive."""
        weights, bias = self._check_fitted()
        X = self.space.transform(texts, sum_duplicates=False)
        return X @ weights + bias

    def predict_proba(self, texts: Sequence[object]) -> np.ndarray:
        """Class probabilities (n, 3), columns negative, neutral, positive; rows sum to 1."""
        weights, bias = self._check_fitted()
        if len(texts) == 0:
            return np.zeros((0, 3))
        X = self.space.transform(texts, sum_duplicates=False)
        logits = (X @ weights + bias).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        proba /= proba.sum(axis=1, keepdims=True)
        proba[X.indptr[1:] == X.indptr[:-1]] = NO_EVIDENCE
        return proba

    def predict(self, texts: Sequence[object]) -> list[str]:
        """One label per text: 'negative', 'neutral' or 'positive'."""
        return [LABELS[i] for i in self.predict_proba(texts).argmax(axis=1)]

    # -- persistence ------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write a compressed, pickle-free ``.npz`` (float16 weights, hyper-parameters as JSON).

        With a lexicon block, ``weights`` holds the rows of the hashed blocks only: the lexicon block is
        ``static_weight`` x the lexicon file's values, so the artifact names that file (``model.lexicon``)
        and records its `Lexicon.digest`; `load` rebuilds the same weight matrix from it.
        """
        weights, bias = self._check_fitted()
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "labels": list(LABELS),
            "features": self.space.to_dict(),
            "model": {
                "C": self.C,
                "nb_weight": self.nb_weight,
                "nb_alpha": self.nb_alpha,
                "max_iter": self.max_iter,
                "balance_languages": self.balance_languages,
                "static_weight": self.static_weight,
                "lexicon": self.lexicon if self._lexicon is not None else None,
            },
            "lexicon_sha256": self._lexicon.digest() if self._lexicon is not None else None,
            "metadata": self.metadata,
        }
        arrays = {
            "weights": weights[: self.space.n_hashed].astype(np.float16),
            "bias": bias.astype(np.float32),
            "config": np.array(json.dumps(config, sort_keys=True, ensure_ascii=False)),
        }
        # Same layout as np.savez_compressed, but with fixed zip timestamps: byte-identical rebuilds.
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, array, allow_pickle=False)
                archive.writestr(info, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path | Any) -> SentimentModel:
        """Load a model written by `save` (``np.load(..., allow_pickle=False)``).

        A model with a lexicon block also loads its lexicon file (pickle-free too) and checks its digest.
        """
        with np.load(path, allow_pickle=False) as data:
            config = json.loads(str(data["config"]))
            if config.get("format") != FORMAT:
                raise ValueError(f"{path}: not a {FORMAT} artifact (format={config.get('format')!r})")
            options = dict(config["model"])
            if options.get("lexicon") is None:
                options.pop("lexicon", None)
            model = cls(HashedFeatures(**config["features"]), **options).prepare()
            weights = data["weights"].astype(np.float32)
            model.bias = data["bias"].astype(np.float32)
        if weights.shape != (model.space.n_hashed, 3):
            raise ValueError(f"{path}: weights of shape {weights.shape} do not match the features")
        if model._lexicon is not None:
            if model._lexicon.digest() != config.get("lexicon_sha256"):
                raise ValueError(
                    f"{path}: built with another version of the lexicon {model.lexicon!r} (SHA-256 differs);"
                    " retrain the model with crisiswatch train-sentiment"
                )
            weights = np.vstack([weights, model._lexicon_block()])
        model.weights = np.ascontiguousarray(weights)
        model.metadata = config.get("metadata", {})
        return model


def _float16_exact(values: np.ndarray) -> np.ndarray:
    """float32 values that are exactly representable in float16 (what the artifact stores)."""
    return np.asarray(values).astype(np.float16).astype(np.float32)


def _naive_bayes(X: sp.csr_matrix, y: np.ndarray, sample_weight: np.ndarray | None, alpha: float):
    """Centred multinomial naive-Bayes log-probabilities per class: (weights (F, 3), bias (3,))."""
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    onehot = sp.csr_matrix((w, (np.arange(len(y)), y)), shape=(len(y), 3))
    counts = np.asarray((onehot.T @ X).todense()).T + alpha  # (F, 3)
    log_prob = np.log(counts / counts.sum(axis=0, keepdims=True))
    log_prob -= log_prob.mean(axis=1, keepdims=True)
    prior = np.log(np.maximum(np.bincount(y, weights=w, minlength=3), 1e-9) / w.sum())
    return log_prob, prior


@lru_cache(maxsize=1)
def load_default() -> SentimentModel:
    """The model shipped inside the package (``detectors/models/sentiment-v1.npz`` and its lexicon), loaded once."""
    artifact = resources.files("crisiswatch.detectors").joinpath("models", DEFAULT_ARTIFACT)
    with artifact.open("rb") as fh:
        return SentimentModel.load(fh)


def predict_batch(texts: Sequence[object]) -> list[str]:
    """Labels ('negative' / 'neutral' / 'positive') of a batch of texts, with the shipped model."""
    return load_default().predict(texts)


def predict_proba_batch(texts: Sequence[object]) -> np.ndarray:
    """Probabilities (n, 3), columns negative, neutral, positive, with the shipped model."""
    return load_default().predict_proba(texts)
