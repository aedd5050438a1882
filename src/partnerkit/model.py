"""The partner's model on disk: versions, manifest, checkpoints, and training from the local copy.

    DIR/model.json                 the published version: {"version", "path", "mode", "manifest_sha256", …}
    DIR/models/vN/model.json       what version N is (mode, configuration, digests)
    DIR/models/vN/manifest.json    per shard and slice: row keys, author keys, sha256 of the rows;
                                   checkpoint hashes (SISA) or the statistics' hash (exact)
    DIR/models/vN/train.parquet    the rows version N was trained on (row_key, user_key, text, label)
    DIR/models/vN/checkpoints/     SISA: sSSS-rRRR.pkl, one per shard and slice
    DIR/models/vN/stats.npz        exact: the sufficient statistics and the solved head
    DIR/embeddings/NAME.parquet    exact: embeddings cached per row key

A version is written into `models/vN.tmp`, renamed, and only then published by rewriting
`DIR/model.json`; older versions are deleted after that (they may hold forgotten rows).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from partnerkit.data import training_rows
from partnerkit.errors import PartnerError
from partnerkit.exact import ExactConfig, ExactModel, Statistics
from partnerkit.features import EmbeddingCache, make_embedder
from partnerkit.sisa import SisaConfig, SisaModel, assign, manifest_entries, rows_digest, train_sisa
from partnerkit.store import canonical, read_json, sha256_bytes, write_json_atomic, write_parquet_atomic
from partnerkit.sync import read_local

POINTER = "model.json"
MODES = ("sisa", "exact")


@dataclass
class Loaded:
    directory: Path
    doc: dict[str, Any]  # models/vN/model.json
    manifest: dict[str, Any]
    rows: pd.DataFrame
    sisa: SisaModel | None
    exact: ExactModel | None

    @property
    def version(self) -> int:
        return int(self.doc["version"])

    @property
    def mode(self) -> str:
        return str(self.doc["mode"])

    @property
    def sisa_config(self) -> SisaConfig:
        return SisaConfig(**self.doc["sisa"])

    def checkpoint_hashes(self) -> dict[int, list[str]]:
        return {int(s): list(h) for s, h in self.manifest.get("checkpoints", {}).items()}

    def predict(self, texts: list[str]) -> np.ndarray:
        if self.sisa is not None:
            return self.sisa.predict(texts)
        assert self.exact is not None
        embedder = make_embedder(self.doc["features"], seed=int(self.doc["sisa"]["seed"]))
        return self.exact.predict(embedder.embed(texts))


def _checkpoint_name(shard: int, slice_: int) -> str:
    return f"s{shard:03d}-r{slice_:03d}.pkl"


def shard_digest(entry: dict[str, Any]) -> str:
    return sha256_bytes(canonical(entry))


def build_manifest(
    version: int,
    mode: str,
    config: SisaConfig,
    rows: pd.DataFrame,
    sisa: SisaModel | None,
    exact: ExactModel | None,
) -> dict[str, Any]:
    assigned = assign(rows, config.shards, config.slices, config.seed)
    manifest: dict[str, Any] = {
        "model_version": version,
        "mode": mode,
        "assignment": f"sha256(f'{{seed}}:{{user_key}}') as int v: shard = v % {config.shards}, "
        f"slice = (v // {config.shards}) % {config.slices}, seed {config.seed}",
        "rows": len(rows),
        "training_rows_sha256": rows_digest(rows),
        "shards": manifest_entries(assigned, config.shards, config.slices),
    }
    if sisa is not None:
        manifest["checkpoints"] = {str(s): h for s, h in sisa.checkpoint_hashes().items()}
    if exact is not None:
        manifest["statistics_sha256"] = exact.stats.digest()
    return manifest


def current_version(directory: Path) -> int | None:
    pointer = directory / POINTER
    return int(read_json(pointer)["version"]) if pointer.exists() else None


def publish(
    directory: Path,
    version: int,
    doc: dict[str, Any],
    rows: pd.DataFrame,
    sisa: SisaModel | None,
    exact: ExactModel | None,
) -> dict[str, Any]:
    """Write version `version` and make it the published one; delete every other version."""
    config = SisaConfig(**doc["sisa"])
    models = directory / "models"
    final = models / f"v{version}"
    staging = models / f"v{version}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_parquet_atomic(staging / "train.parquet", rows[["row_key", "user_key", "text", "label"]])
    if sisa is not None:
        (staging / "checkpoints").mkdir()
        for shard, checkpoints in sisa.checkpoints.items():
            for slice_, blob in enumerate(checkpoints):
                (staging / "checkpoints" / _checkpoint_name(shard, slice_)).write_bytes(blob)
    if exact is not None:
        np.savez(
            staging / "stats.npz",
            gram=exact.stats.gram,
            sums=exact.stats.sums,
            counts=exact.stats.counts,
            weights=exact.weights,
        )
    manifest = build_manifest(version, doc["mode"], config, rows, sisa, exact)
    manifest_sha = sha256_bytes(canonical(manifest))
    write_json_atomic(staging / "manifest.json", manifest)
    full = {
        **doc,
        "version": version,
        "rows": len(rows),
        "manifest_sha256": manifest_sha,
        "published_at": datetime.now(UTC).isoformat(),
    }
    write_json_atomic(staging / "model.json", full)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    write_json_atomic(
        directory / POINTER,
        {
            "version": version,
            "path": f"models/v{version}",
            "mode": doc["mode"],
            "manifest_sha256": manifest_sha,
        },
    )
    for other in models.iterdir():
        if other != final:
            shutil.rmtree(other, ignore_errors=True)
    return full


def load(directory: Path) -> Loaded | None:
    pointer = directory / POINTER
    if not pointer.exists():
        return None
    where = directory / read_json(pointer)["path"]
    doc = read_json(where / "model.json")
    manifest = read_json(where / "manifest.json")
    rows = pd.read_parquet(where / "train.parquet")
    sisa = exact = None
    config = SisaConfig(**doc["sisa"])
    if doc["mode"] == "sisa":
        sisa = SisaModel(config)
        for shard in range(config.shards):
            sisa.checkpoints[shard] = [
                (where / "checkpoints" / _checkpoint_name(shard, r)).read_bytes()
                for r in range(config.slices)
            ]
    else:
        with np.load(where / "stats.npz") as saved:
            stats = Statistics(saved["gram"], saved["sums"], saved["counts"])
            exact = ExactModel(ExactConfig(**doc["exact"]), stats, saved["weights"])
    return Loaded(directory, doc, manifest, rows, sisa, exact)


def train(
    directory: Path,
    *,
    mode: str,
    shards: int,
    slices: int,
    seed: int = 0,
    epochs: int = 5,
    features: str = "minilm",
    head: str = "lda",
) -> dict[str, Any]:
    """Train a new model version from scratch on the local copy (the caller holds the lock)."""
    if mode not in MODES:
        raise PartnerError(f"--mode: expected one of {MODES}, got {mode!r}")
    if shards < 1 or slices < 1:
        raise PartnerError("--shards and --slices must be at least 1")
    state, data = read_local(directory)
    rows = training_rows(data, list(state["key_columns"]))
    config = SisaConfig(shards=shards, slices=slices, seed=seed, epochs=epochs)
    exact_config = ExactConfig(head=head)
    doc: dict[str, Any] = {
        "mode": mode,
        "sisa": config.as_dict(),
        "exact": exact_config.as_dict(),
        "features": "hashing" if mode == "sisa" else features,
        "table": state["table"],
        "table_version": state["version"],
        "labels": "label column"
        if "label" in data.columns
        else "VADER compound thresholds ±0.05 on `sentiment`",
    }
    sisa = exact = None
    if mode == "sisa":
        sisa = train_sisa(rows, config)
    else:
        cache = EmbeddingCache(directory, make_embedder(features, seed=seed))
        vectors = cache.vectors(rows)
        cache.save()
        exact = ExactModel.train(vectors, rows["label"].to_numpy(), exact_config)
    previous = current_version(directory) or 0
    return publish(directory, previous + 1, doc, rows, sisa, exact)
