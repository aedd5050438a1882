"""`partnerkit forget`: consume deletes and the forget list, unlearn, certify, acknowledge.

1. `sync` (the change feed's deletes remove rows from the local copy);
2. the pending forget entries of this table's share (`GET /api/v1/partner/forget?pending=true`): rows
   of their subjects are removed from the local copy too (the feed may not have reached them yet);
3. forgotten = the published model's training rows that are no longer in the local copy or that match
   a forget subject; SISA retrains the shards that held them from the checkpoint preceding their first
   affected slice (a corrupt checkpoint is detected by its hash: that shard is retrained whole), exact
   mode subtracts their statistics; a new model version is published and the old one deleted; cached
   embeddings of rows no longer held are dropped;
4. a certificate is written to `DIR/certificates/` and sent with the acknowledgement of the entries
   (`POST /api/v1/partner/forget/ack`). An entry whose subject has no rows here is acknowledged too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from partnerkit import lineage
from partnerkit import model as models
from partnerkit.features import EmbeddingCache, make_embedder
from partnerkit.profile import Profile, acknowledge, forget_entries
from partnerkit.sisa import forget_sisa
from partnerkit.store import canonical, locked, sha256_bytes, write_json_atomic
from partnerkit.sync import KEY_SEPARATOR, SyncResult, read_local, replace_local, row_keys, sync

ENGAGEMENT_SCOPES = {"like": "likes", "repost": "reposts", "bookmark": "bookmarks"}


@dataclass
class ForgetOutcome:
    certificate_path: Path | None
    certificate: dict[str, Any] | None
    acknowledged: dict[str, Any] | None
    synced: SyncResult | None

    def describe(self) -> str:
        lines = [self.synced.describe()] if self.synced else []
        if self.certificate is None:
            lines.append("nothing to forget")
            return "\n".join(lines)
        cert = self.certificate
        lines.append(
            f"forgot {len(cert['forgotten_row_keys'])} rows of {len(cert['forgotten_user_keys'])} users "
            f"({len(cert['forget_ids'])} forget entries); model {cert['model']['mode']} "
            f"v{cert['model']['previous_version']} → v{cert['model']['version']}"
        )
        for shard in cert["shards_retrained"]:
            note = " (corrupt checkpoint detected: whole shard)" if shard["corrupt_checkpoint"] else ""
            lines.append(f"  shard {shard['shard']} retrained from slice {shard['from_slice']}{note}")
        lines.append(f"certificate: {self.certificate_path}")
        if self.acknowledged is not None:
            lines.append(f"acknowledged: {json.dumps(self.acknowledged, sort_keys=True)}")
        return "\n".join(lines)


def subject_mask(frame: pd.DataFrame, table_name: str, entries: list[dict[str, Any]]) -> pd.Series:
    """Rows of `frame` (with key columns) that a forget entry names."""
    mask = pd.Series(False, index=frame.index)
    if frame.empty:
        return mask
    users = {e["subject_key"] for e in entries if e.get("scope") == "user"}
    posts = {e["subject_key"] for e in entries if e.get("scope") == "post"}
    pairs = {
        e["subject_key"]
        for e in entries
        if ENGAGEMENT_SCOPES.get(str(e.get("scope"))) == table_name and ":" in str(e.get("subject_key"))
    }
    if "user_key" in frame.columns:
        mask |= frame["user_key"].isin(users)
    if "post_key" in frame.columns:
        mask |= frame["post_key"].isin(posts)
        if "user_key" in frame.columns and pairs:
            mask |= (frame["user_key"].astype(str) + ":" + frame["post_key"].astype(str)).isin(pairs)
    return mask


def _with_keys(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Training rows with their key columns recovered from the row key."""
    out = rows.copy()
    parts = rows["row_key"].str.split(KEY_SEPARATOR, regex=False)
    for i, key in enumerate(keys):
        out[key] = parts.str[i]
    return out


def _digest(document: dict[str, Any]) -> str:
    return sha256_bytes(canonical({k: v for k, v in document.items() if k != "digest"}))


def forget(directory: Path, profile: Profile, *, sync_first: bool = True) -> ForgetOutcome:
    with locked(directory):
        synced = sync(directory, profile) if sync_first else None
        state, data = read_local(directory)
        keys = list(state["key_columns"])
        share, _, table_name = state["table"].split(".")
        entries = [e for e in forget_entries(profile, pending=True) if e.get("share") == share]
        named = subject_mask(data, table_name, entries)
        if named.any():
            data = data[~named].reset_index(drop=True)
            replace_local(directory, data)
        present = set(row_keys(data, keys))
        loaded = models.load(directory)
        rows = (
            loaded.rows
            if loaded is not None
            else pd.DataFrame(columns=["row_key", "user_key", "text", "label"])
        )
        gone = ~rows["row_key"].isin(present) | subject_mask(_with_keys(rows, keys), table_name, entries)
        forgotten, remaining = rows[gone], rows[~gone].reset_index(drop=True)
        if not entries and forgotten.empty:
            _drop_cached(directory, loaded, present)
            return ForgetOutcome(None, None, None, synced)

        report: list[dict[str, Any]] = []
        previous = loaded.version if loaded is not None else None
        published = loaded.doc if loaded is not None else None
        if loaded is not None and not forgotten.empty:
            doc = {
                k: v
                for k, v in loaded.doc.items()
                if k not in ("version", "rows", "manifest_sha256", "published_at")
            }
            if loaded.sisa is not None:
                sisa, retrained = forget_sisa(loaded.sisa, remaining, forgotten, loaded.checkpoint_hashes())
                report = [
                    {
                        "shard": r.shard,
                        "from_slice": r.from_slice,
                        "reason": r.reason,
                        "corrupt_checkpoint": r.corrupt_checkpoint,
                    }
                    for r in retrained
                ]
                published = models.publish(directory, loaded.version + 1, doc, remaining, sisa, None)
            else:
                assert loaded.exact is not None
                cache = EmbeddingCache(
                    directory, make_embedder(doc["features"], seed=int(doc["sisa"]["seed"]))
                )
                vectors = cache.vectors(forgotten)
                exact = loaded.exact.forget(vectors, forgotten["label"].to_numpy(dtype=np.int64))
                published = models.publish(directory, loaded.version + 1, doc, remaining, None, exact)
        cache_left = _drop_cached(directory, models.load(directory), present)

        now = models.load(directory)
        forgotten_rows = sorted(forgotten["row_key"])
        forgotten_users = sorted(
            set(forgotten["user_key"]) | {e["subject_key"] for e in entries if e.get("scope") == "user"}
        )
        manifest_keys: set[str] = set()
        manifest_users: set[str] = set()
        shard_hashes: dict[str, str] = {}
        if now is not None:
            for entry in now.manifest["shards"]:
                shard_hashes[str(entry["shard"])] = models.shard_digest(entry)
                for part in entry["slices"]:
                    manifest_keys.update(part["row_keys"])
                    manifest_users.update(part["user_keys"])
        retrained_shards = {r["shard"] for r in report}
        certificate: dict[str, Any] = {
            "certificate_version": 1,
            "issued_at": datetime.now(UTC).isoformat(),
            "table": state["table"],
            "table_version": state["version"],
            "forget_ids": sorted(e["id"] for e in entries),
            "subjects": [
                {
                    "forget_id": e["id"],
                    "scope": e.get("scope"),
                    "subject_key": e.get("subject_key"),
                    "reason_code": e.get("reason_code"),
                    "rows_forgotten": int(subject_mask(_with_keys(forgotten, keys), table_name, [e]).sum()),
                }
                for e in entries
            ],
            "forgotten_row_keys": forgotten_rows,
            "forgotten_user_keys": forgotten_users,
            "model": {
                "mode": published["mode"] if published else None,
                "version": int(published["version"]) if published else None,
                "previous_version": previous,
                "manifest_sha256": published["manifest_sha256"] if published else None,
                "training_rows_sha256": now.manifest["training_rows_sha256"] if now else None,
                "rows": int(published["rows"]) if published else 0,
            },
            "shards_retrained": [{**r, "manifest_sha256": shard_hashes.get(str(r["shard"]))} for r in report],
            "shard_manifest_sha256": shard_hashes,
            "unchanged_shards": sorted(int(s) for s in shard_hashes if int(s) not in retrained_shards),
            "checkpoint_sha256": now.manifest.get("checkpoints") if now else None,
            "statistics_sha256": now.manifest.get("statistics_sha256") if now else None,
            "checks": {
                "forgotten_row_keys_in_manifest": len(manifest_keys & set(forgotten_rows)),
                "forgotten_user_keys_in_manifest": len(manifest_users & set(forgotten_users)),
                "forgotten_row_keys_in_training_rows": int(
                    now.rows["row_key"].isin(forgotten_rows).sum() if now else 0
                ),
                "forgotten_row_keys_in_embedding_cache": len(cache_left & set(forgotten_rows)),
                "forgotten_row_keys_in_local_copy": len(present & set(forgotten_rows)),
            },
            "verify": "partnerkit verify CERTIFICATE [--dir DIR]",
        }
        certificate["digest"] = _digest(certificate)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = directory / "certificates" / f"certificate-{stamp}.json"
        write_json_atomic(path, certificate)
        acked = None
        if entries:
            text = json.dumps(certificate, sort_keys=True)
            models_declared = lineage.declared(directory)
            if models_declared:  # issue 18: each declared model answers, then the entries are acknowledged
                lineage.acknowledge_models(profile, certificate["forget_ids"], models_declared, text)
            acked = acknowledge(profile, certificate["forget_ids"], text)
            write_json_atomic(path.with_suffix(".ack.json"), acked)
        return ForgetOutcome(path, certificate, acked, synced)


def _drop_cached(directory: Path, loaded: models.Loaded | None, present: set[str]) -> set[str]:
    """Drop cached embeddings of rows neither in the local copy nor in the model; returns the keys left."""
    if loaded is None or loaded.mode != "exact":
        return set()
    cache = EmbeddingCache(
        directory, make_embedder(loaded.doc["features"], seed=int(loaded.doc["sisa"]["seed"]))
    )
    keep = present | set(loaded.rows["row_key"])
    stale = cache.keys() - keep
    if stale:
        cache.drop(stale)
        cache.save()
    return cache.keys()
