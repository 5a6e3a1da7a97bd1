"""Multilingual three-class sentiment (negative / neutral / positive) of short social-media texts.

A linear model over hashed word and character n-grams (`detectors.sentiment_features`): fast (tens of
thousands of tweets per second on one core), language-agnostic (one model for every language) and
stored as a small NON-pickle ``.npz`` artifact (weights + hyper-parameters, ``allow_pickle=False``).

>>> from detectors.sentiment import predict_batch, predict_proba_batch
>>> predict_batch(["I love it 😍", "this is not good", "la réunion est à 10h"])
['positive', 'negative', 'neutral']

The shipped model (``detectors/models/sentiment-v1.npz``) is trained on the UMSAB tweets of eight
languages; `crisiswatch train-sentiment` rebuilds it or trains one on other labelled data.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from detectors.sentiment_features import HashedFeatures

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
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
    model on the same features to the logits (an ensemble that is still one linear model, so it costs
    nothing at prediction time). Weights are rounded to float16 when fitted, so a saved and re-loaded
    model predicts exactly the same numbers.
    """

    def __init__(
        self,
        features: HashedFeatures | None = None,
        C: float = 10.0,
        nb_weight: float = 0.3,
        nb_alpha: float = 0.1,
        max_iter: int = 300,
        balance_languages: bool = True,
    ) -> None:
        self.features = features or HashedFeatures()
        self.C = C
        self.nb_weight = nb_weight
        self.nb_alpha = nb_alpha
        self.max_iter = max_iter
        self.balance_languages = balance_languages
        self.weights: np.ndarray | None = None  # (n_features, 3) float32, float16-exact
        self.bias: np.ndarray | None = None  # (3,) float32
        self.metadata: dict[str, Any] = {}

    # -- training ---------------------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[object], langs: Sequence[str] | None = None) -> SentimentModel:
        """Learn the weights from texts and labels (names or 0/1/2); ``langs`` balances languages."""
        y = np.array([label_index(label) for label in labels], dtype=np.int64)
        if len(y) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(y)} labels")
        return self.fit_matrix(self.features.transform(texts), y, self.sample_weights(y, langs))

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
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=1e-4)
        lr.fit(X, y, sample_weight=sample_weight)
        weights = np.zeros((X.shape[1], 3), dtype=np.float64)
        bias = np.full(3, -30.0)  # a class never seen in training is never predicted
        weights[:, lr.classes_] = lr.coef_.T if len(lr.classes_) > 2 else np.c_[-lr.coef_[0], lr.coef_[0]] / 2
        bias[lr.classes_] = lr.intercept_ if len(lr.classes_) > 2 else np.r_[-lr.intercept_, lr.intercept_] / 2
        if self.nb_weight:
            nb_w, nb_b = _naive_bayes(X, y, sample_weight, self.nb_alpha)
            weights[:, present] += self.nb_weight * nb_w[:, present]
            bias[present] += self.nb_weight * nb_b[present]
        self.weights = weights.astype(np.float16).astype(np.float32)
        self.bias = bias.astype(np.float32)
        return self

    # -- prediction -------------------------------------------------------------------------------------
    def _check_fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.weights is None or self.bias is None:
            raise RuntimeError("SentimentModel is not fitted: call fit() or load()")
        return self.weights, self.bias

    def decision_function(self, texts: Sequence[object]) -> np.ndarray:
        """Logits (n, 3) in the order negative, neutral, positive."""
        weights, bias = self._check_fitted()
        X = self.features.transform(texts, sum_duplicates=False)
        return X @ weights + bias

    def predict_proba(self, texts: Sequence[object]) -> np.ndarray:
        """Class probabilities (n, 3), columns negative, neutral, positive; rows sum to 1."""
        weights, bias = self._check_fitted()
        if len(texts) == 0:
            return np.zeros((0, 3))
        X = self.features.transform(texts, sum_duplicates=False)
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
        """Write a compressed, pickle-free ``.npz`` (float16 weights, hyper-parameters as JSON)."""
        weights, bias = self._check_fitted()
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "labels": list(LABELS),
            "features": self.features.to_dict(),
            "model": {"C": self.C, "nb_weight": self.nb_weight, "nb_alpha": self.nb_alpha,
                      "max_iter": self.max_iter, "balance_languages": self.balance_languages},
            "metadata": self.metadata,
        }
        arrays = {
            "weights": weights.astype(np.float16),
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
        """Load a model written by `save` (``np.load(..., allow_pickle=False)``)."""
        with np.load(path, allow_pickle=False) as data:
            config = json.loads(str(data["config"]))
            if config.get("format") != FORMAT:
                raise ValueError(f"{path}: not a {FORMAT} artifact (format={config.get('format')!r})")
            model = cls(HashedFeatures(**config["features"]), **config["model"])
            model.weights = np.ascontiguousarray(data["weights"].astype(np.float32))
            model.bias = data["bias"].astype(np.float32)
        if model.weights.shape != (model.features.n_features, 3):
            raise ValueError(f"{path}: weights of shape {model.weights.shape} do not match the features")
        model.metadata = config.get("metadata", {})
        return model


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
    """The model shipped inside the package (``detectors/models/sentiment-v1.npz``), loaded once."""
    artifact = resources.files("detectors").joinpath("models", DEFAULT_ARTIFACT)
    with artifact.open("rb") as fh:
        return SentimentModel.load(fh)


def predict_batch(texts: Sequence[object]) -> list[str]:
    """Labels ('negative' / 'neutral' / 'positive') of a batch of texts, with the shipped model."""
    return load_default().predict(texts)


def predict_proba_batch(texts: Sequence[object]) -> np.ndarray:
    """Probabilities (n, 3), columns negative, neutral, positive, with the shipped model."""
    return load_default().predict_proba(texts)
