"""SISA training (Bourtoule et al., "Machine Unlearning", IEEE S&P 2021) on stateless hashed features.

- **Sharded, by author**: a user's rows all go to one shard and one slice of it,
  `sha256(f"{seed}:{user_key}")` read as an integer v: shard = v mod S, slice = (v div S) mod R.
- **Isolated**: one `SGDClassifier` (log loss) per shard; nothing is fitted on all the data: features are
  a HashingVectorizer (no vocabulary, no IDF), the classes are fixed (0, 1, 2), no global class weights
  (each step weighs classes n / (K n_c) over *its own shard's* slices 0..r — fitted per shard, recomputed
  by any retrain of that step), and the hyper-parameters are constants.
- **Sliced**: step r trains `epochs` passes over slices 0..r of the shard (Bourtoule's cumulative
  slicing) starting from the checkpoint of step r-1, and writes checkpoint r. Row order is a function of
  the rows only: sorted by row key, permuted by a generator seeded with (seed, shard, slice, epoch).
- **Aggregated** by averaging the shards' predicted probabilities (shards with no rows abstain).

Unlearning retrains only the shards that held forgotten rows, from the checkpoint preceding the
first slice that held one. Training is deterministic, so the result is bit-identical to training from
scratch on the remaining rows with the same assignment and seeds.
"""

from __future__ import annotations

import hashlib
import pickle
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import SGDClassifier

from partnerkit.data import CLASSES
from partnerkit.features import HASH_FEATURES, hashed
from partnerkit.store import canonical, sha256_bytes


def dump(model: SGDClassifier | None) -> bytes:
    """A checkpoint: the pickled classifier, zlib-compressed (hashed weights are mostly zeros)."""
    return zlib.compress(pickle.dumps(model, protocol=5), 1)


def restore(checkpoint: bytes) -> SGDClassifier | None:
    restored: SGDClassifier | None = pickle.loads(zlib.decompress(checkpoint))  # our own checkpoint
    return restored


UNTRAINED = dump(None)


@dataclass(frozen=True)
class SisaConfig:
    shards: int = 8
    slices: int = 4
    seed: int = 0
    epochs: int = 5
    alpha: float = 1e-5
    n_features: int = HASH_FEATURES
    balanced: bool = True  # per-step sample weights n / (K n_c) from the shard's own slices 0..r

    def as_dict(self) -> dict[str, Any]:
        return {
            "shards": self.shards,
            "slices": self.slices,
            "seed": self.seed,
            "epochs": self.epochs,
            "alpha": self.alpha,
            "n_features": self.n_features,
            "balanced": self.balanced,
        }


def place(user_key: str, shards: int, slices: int, seed: int) -> tuple[int, int]:
    """(shard, slice) of an author: a deterministic hash of the key and the seed."""
    value = int.from_bytes(hashlib.sha256(f"{seed}:{user_key}".encode()).digest()[:8], "big")
    return value % shards, (value // shards) % slices


def assign(rows: pd.DataFrame, shards: int, slices: int, seed: int) -> pd.DataFrame:
    """`rows` with `shard` and `slice` columns (by author)."""
    places = {u: place(u, shards, slices, seed) for u in rows["user_key"].unique()}
    out = rows.copy()
    out["shard"] = [places[u][0] for u in rows["user_key"]]
    out["slice"] = [places[u][1] for u in rows["user_key"]]
    return out


def rows_digest(rows: pd.DataFrame) -> str:
    """sha256 over the canonical (row_key, user_key, text, label) list, in row-key order."""
    ordered = rows.sort_values("row_key", kind="stable")
    records = [
        [k, u, t, int(y)]
        for k, u, t, y in zip(
            ordered["row_key"], ordered["user_key"], ordered["text"], ordered["label"], strict=True
        )
    ]
    return sha256_bytes(canonical(records))


def manifest_entries(assigned: pd.DataFrame, shards: int, slices: int) -> list[dict[str, Any]]:
    """Per shard and slice: the row keys, the author keys and a sha256 of the training rows."""
    entries = []
    for shard in range(shards):
        in_shard = assigned[assigned["shard"] == shard]
        shard_slices = []
        for slice_ in range(slices):
            part = in_shard[in_shard["slice"] == slice_]
            shard_slices.append(
                {
                    "slice": slice_,
                    "rows": len(part),
                    "row_keys": sorted(part["row_key"]),
                    "user_keys": sorted(set(part["user_key"])),
                    "sha256": rows_digest(part),
                }
            )
        entries.append({"shard": shard, "rows": len(in_shard), "slices": shard_slices})
    return entries


def new_classifier(config: SisaConfig) -> SGDClassifier:
    return SGDClassifier(loss="log_loss", alpha=config.alpha, shuffle=False, random_state=config.seed)


def train_shard(
    config: SisaConfig, shard: int, rows: pd.DataFrame, start: int = 0, state: bytes = UNTRAINED
) -> list[bytes]:
    """Checkpoints of steps `start`..R-1 for one shard's rows (columns row_key, text, label, slice),
    continuing from `state` (the checkpoint of step start-1)."""
    ordered = rows.sort_values("row_key", kind="stable").reset_index(drop=True)
    features = hashed(list(ordered["text"]), config.n_features) if len(ordered) else None
    labels = ordered["label"].to_numpy(dtype=np.int64)
    slice_of = ordered["slice"].to_numpy()
    checkpoints: list[bytes] = []
    for step in range(start, config.slices):
        index = np.flatnonzero(slice_of <= step)
        if len(index) == 0 or features is None:
            checkpoints.append(state)
            continue
        restored = restore(state)
        model = new_classifier(config) if restored is None else restored
        weights = np.ones(len(labels))
        if config.balanced:  # from this shard's slices 0..step only: retraining from a slice recomputes it
            counts = np.bincount(labels[index], minlength=len(CLASSES)).astype(np.float64)
            per_class = len(index) / (len(CLASSES) * np.maximum(counts, 1.0))
            weights = per_class[labels]
        for epoch in range(config.epochs):
            order = index[np.random.default_rng([config.seed, shard, step, epoch]).permutation(len(index))]
            model.partial_fit(
                features[order], labels[order], classes=np.array(CLASSES), sample_weight=weights[order]
            )
        state = dump(model)
        checkpoints.append(state)
    return checkpoints


@dataclass
class SisaModel:
    config: SisaConfig
    checkpoints: dict[int, list[bytes]] = field(default_factory=dict)  # shard -> one per slice

    def classifiers(self) -> list[SGDClassifier]:
        found = []
        for shard in sorted(self.checkpoints):
            model = restore(self.checkpoints[shard][-1])
            if model is not None:
                found.append(model)
        return found

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        models = self.classifiers()
        if not models:
            return np.full((len(texts), len(CLASSES)), 1.0 / len(CLASSES))
        features = hashed(texts, self.config.n_features)
        total = np.zeros((len(texts), len(CLASSES)))
        for model in models:
            total += model.predict_proba(features)
        return total / len(models)

    def predict(self, texts: list[str]) -> np.ndarray:
        return np.asarray(np.argmax(self.predict_proba(texts), axis=1), dtype=np.int64)

    def checkpoint_hashes(self) -> dict[int, list[str]]:
        return {s: [sha256_bytes(c) for c in cps] for s, cps in self.checkpoints.items()}


def train_sisa(rows: pd.DataFrame, config: SisaConfig) -> SisaModel:
    """Train every shard from scratch on `rows` (row_key, user_key, text, label)."""
    assigned = assign(rows, config.shards, config.slices, config.seed)
    model = SisaModel(config)
    for shard in range(config.shards):
        model.checkpoints[shard] = train_shard(config, shard, assigned[assigned["shard"] == shard])
    return model


@dataclass(frozen=True)
class ShardRetrain:
    shard: int
    from_slice: int  # the first step re-run (0: the whole shard)
    reason: str  # "forgotten rows" | "corrupt checkpoint"
    corrupt_checkpoint: bool


def forget_sisa(
    model: SisaModel,
    remaining: pd.DataFrame,
    forgotten: pd.DataFrame,
    expected_hashes: dict[int, list[str]] | None = None,
) -> tuple[SisaModel, list[ShardRetrain]]:
    """Retrain the shards that held `forgotten` rows from the checkpoint preceding their first
    affected slice, on the `remaining` rows. A checkpoint whose sha256 differs from `expected_hashes`
    (a corrupted file) is not trusted: that shard is retrained from scratch, and so is any other shard
    whose final checkpoint is corrupt."""
    config = model.config
    remaining_assigned = assign(remaining, config.shards, config.slices, config.seed)
    forgotten_assigned = assign(forgotten, config.shards, config.slices, config.seed)
    first: dict[int, int] = {}
    for shard, slice_ in zip(forgotten_assigned["shard"], forgotten_assigned["slice"], strict=True):
        first[int(shard)] = min(first.get(int(shard), config.slices), int(slice_))

    def intact(shard: int, step: int) -> bool:
        if expected_hashes is None:
            return True
        return sha256_bytes(model.checkpoints[shard][step]) == expected_hashes[shard][step]

    for shard in range(config.shards):
        if shard not in first and not intact(shard, config.slices - 1):
            first[shard] = -1  # corrupt final checkpoint of an unaffected shard
    checkpoints = dict(model.checkpoints)
    report = []
    for shard in sorted(first):
        start = first[shard]
        corrupt = start == -1
        if start > 0 and not intact(shard, start - 1):
            corrupt, start = True, 0
        start = max(start, 0)
        state = checkpoints[shard][start - 1] if start > 0 else UNTRAINED
        rows = remaining_assigned[remaining_assigned["shard"] == shard]
        checkpoints[shard] = checkpoints[shard][:start] + train_shard(config, shard, rows, start, state)
        reason = "forgotten rows" if first[shard] >= 0 else "corrupt checkpoint"
        report.append(ShardRetrain(shard, start, reason, corrupt))
    return SisaModel(config, checkpoints), report
