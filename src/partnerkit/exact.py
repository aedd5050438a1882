"""The exact mode: frozen features and a linear head whose training state is a sufficient statistic.

Each row's feature vector x (a unit-length embedding from a model trained on public data only, never
fitted here) is quantised to integers, q = round(x · 2^15), with a bias entry 2^15. Per class c the state
holds G_c = Σ q qᵀ, s_c = Σ q and n_c over the rows of that class. Every entry is an integer below
2^53 (|q| ≤ 2^15, so a product is ≤ 2^30 and a sum of up to 2^23 rows stays exact), so float64 BLAS
computes them exactly in any order: **subtracting a user's rows gives bit-for-bit the statistics of
training without them**, and the head solved from them is the same as a from-scratch one.

Heads (both closed forms of the statistics, constants fixed in advance, nothing tuned):
- `ridge`: class-balanced ridge regression on one-hot targets, weights w_c = n / (K n_c) — recomputed
  from the counts, so they follow every forget exactly;
- `lda`: linear discriminant analysis with a shrunk pooled covariance and uniform priors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from partnerkit.data import CLASSES
from partnerkit.store import sha256_bytes

SCALE = float(2**15)
MAX_ROWS = 2**23
RIDGE_LAMBDA = 1.0
LDA_SHRINKAGE = 0.1


@dataclass(frozen=True)
class ExactConfig:
    head: str = "lda"
    ridge_lambda: float = RIDGE_LAMBDA
    shrinkage: float = LDA_SHRINKAGE

    def as_dict(self) -> dict[str, Any]:
        return {"head": self.head, "ridge_lambda": self.ridge_lambda, "shrinkage": self.shrinkage}


def quantise(vectors: np.ndarray) -> np.ndarray:
    """Integer-valued float64 rows with the bias entry last."""
    q = np.rint(np.asarray(vectors, dtype=np.float64) * SCALE)
    return np.hstack([q, np.full((len(q), 1), SCALE)])


@dataclass
class Statistics:
    gram: np.ndarray  # (K, d+1, d+1)
    sums: np.ndarray  # (K, d+1)
    counts: np.ndarray  # (K,)

    @classmethod
    def zeros(cls, dim: int) -> Statistics:
        k = len(CLASSES)
        return cls(np.zeros((k, dim + 1, dim + 1)), np.zeros((k, dim + 1)), np.zeros(k, dtype=np.int64))

    @classmethod
    def of(cls, vectors: np.ndarray, labels: np.ndarray) -> Statistics:
        stats = cls.zeros(vectors.shape[1])
        stats.add(vectors, labels)
        return stats

    def _delta(self, vectors: np.ndarray, labels: np.ndarray, sign: float) -> None:
        q = quantise(vectors)
        for c in CLASSES:
            rows = q[labels == c]
            if len(rows):
                self.gram[c] += sign * (rows.T @ rows)
                self.sums[c] += sign * rows.sum(axis=0)
                self.counts[c] += int(sign) * len(rows)
        if int(self.counts.sum()) > MAX_ROWS:
            raise ValueError(f"more than {MAX_ROWS} rows: the integer statistics would lose exactness")

    def add(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        self._delta(vectors, labels, 1.0)

    def subtract(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        self._delta(vectors, labels, -1.0)

    def digest(self) -> str:
        return sha256_bytes(self.gram.tobytes() + self.sums.tobytes() + self.counts.tobytes())


def solve(stats: Statistics, config: ExactConfig) -> np.ndarray:
    """The head's weights W, shape (d+1, K): scores = [x, 1] @ W."""
    k = len(CLASSES)
    dim = stats.gram.shape[1] - 1
    counts = stats.counts.astype(np.float64)
    total = counts.sum()
    present = counts > 0
    if config.head == "ridge":
        weights = np.where(present, total / (k * np.maximum(counts, 1)), 0.0)
        a = np.einsum("c,cij->ij", weights, stats.gram) / SCALE**2 + config.ridge_lambda * np.eye(dim + 1)
        b = (stats.sums * weights[:, None]).T / SCALE
        return np.asarray(np.linalg.solve(a, b))
    if config.head == "lda":
        means = stats.sums[:, :dim] / SCALE / np.maximum(counts, 1)[:, None]
        scatter = stats.gram[:, :dim, :dim].sum(axis=0) / SCALE**2 - np.einsum(
            "c,ci,cj->ij", counts, means, means
        )
        covariance = scatter / max(total - int(present.sum()), 1.0)
        shrunk = (1 - config.shrinkage) * covariance + config.shrinkage * (
            np.trace(covariance) / dim + 1e-12
        ) * np.eye(dim)
        coef = np.linalg.solve(shrunk, means.T)  # (d, K)
        intercept = -0.5 * np.einsum("ck,kc->c", means, coef)
        intercept = np.where(present, intercept, -np.inf)
        return np.vstack([coef, intercept[None, :]])
    raise ValueError(f"unknown head {config.head!r}: expected `ridge` or `lda`")


@dataclass
class ExactModel:
    config: ExactConfig
    stats: Statistics
    weights: np.ndarray

    @classmethod
    def train(cls, vectors: np.ndarray, labels: np.ndarray, config: ExactConfig) -> ExactModel:
        stats = Statistics.of(vectors, labels)
        return cls(config, stats, solve(stats, config))

    def forget(self, vectors: np.ndarray, labels: np.ndarray) -> ExactModel:
        """Subtract the rows' contribution and solve again (exact; see the module doc)."""
        stats = Statistics(self.stats.gram.copy(), self.stats.sums.copy(), self.stats.counts.copy())
        stats.subtract(vectors, labels)
        return ExactModel(self.config, stats, solve(stats, self.config))

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        q = quantise(vectors) / SCALE
        return np.asarray(q @ self.weights)

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(np.argmax(self.scores(vectors), axis=1), dtype=np.int64)
