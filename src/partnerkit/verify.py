"""`partnerkit verify CERT [--dir DIR]`: check a forget certificate against the partner's directory.

Checks: the certificate's own digest; that DIR's published model is the certified version, with the
certified manifest hash (recomputed from the manifest file), shard hashes and checkpoint/statistics
hashes (recomputed from the files); and that no forgotten row key or author key is in the manifest, the
training rows, the cached embeddings or the local copy. If the model has moved on since, the absence
checks run against the current version and the version difference is reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from partnerkit import model as models
from partnerkit.exact import Statistics
from partnerkit.store import canonical, read_json, sha256_bytes, sha256_file
from partnerkit.sync import read_state, row_keys


def verify(certificate_path: Path, directory: Path | None = None) -> tuple[list[str], list[str]]:
    """(passed checks, problems) — no problems means the certificate holds."""
    cert: dict[str, Any] = read_json(certificate_path)
    directory = directory or certificate_path.resolve().parent.parent
    ok: list[str] = []
    problems: list[str] = []

    def check(condition: bool, passed: str, failed: str) -> None:
        (ok if condition else problems).append(passed if condition else failed)

    body = {k: v for k, v in cert.items() if k != "digest"}
    check(
        sha256_bytes(canonical(body)) == cert.get("digest"),
        "certificate digest",
        "certificate digest mismatch",
    )
    loaded = models.load(directory)
    forgotten_rows = set(cert["forgotten_row_keys"])
    forgotten_users = set(cert["forgotten_user_keys"])
    if loaded is None:
        check(
            cert["model"]["version"] is None, "no model, none certified", f"{directory}: no published model"
        )
    else:
        where = directory / read_json(directory / models.POINTER)["path"]
        manifest_sha = sha256_bytes(canonical(read_json(where / "manifest.json")))
        certified = cert["model"]["version"]
        if certified == loaded.version:
            check(
                manifest_sha == cert["model"]["manifest_sha256"],
                f"manifest sha256 {manifest_sha[:16]}… of model v{certified}",
                f"manifest sha256 {manifest_sha} ≠ certified {cert['model']['manifest_sha256']}",
            )
            shards = {str(e["shard"]): models.shard_digest(e) for e in loaded.manifest["shards"]}
            check(
                shards == cert["shard_manifest_sha256"],
                "per-shard manifest hashes",
                "shard manifest hashes differ",
            )
            if loaded.sisa is not None:
                files = {
                    str(s): [
                        sha256_file(where / "checkpoints" / f"s{s:03d}-r{r:03d}.pkl") for r in range(len(h))
                    ]
                    for s, h in loaded.checkpoint_hashes().items()
                }
                check(
                    files == cert["checkpoint_sha256"],
                    "checkpoint files hash as certified",
                    "checkpoint files differ",
                )
            if loaded.exact is not None:
                with np.load(where / "stats.npz") as saved:
                    digest = Statistics(saved["gram"], saved["sums"], saved["counts"]).digest()
                check(
                    digest == cert["statistics_sha256"], "statistics hash as certified", "statistics differ"
                )
        else:
            problems.append(f"the published model is v{loaded.version}, the certificate names v{certified}")
        listed_rows = {k for e in loaded.manifest["shards"] for p in e["slices"] for k in p["row_keys"]}
        listed_users = {k for e in loaded.manifest["shards"] for p in e["slices"] for k in p["user_keys"]}
        check(
            not forgotten_rows & listed_rows,
            "no forgotten row key in the manifest",
            "forgotten row keys in the manifest",
        )
        check(
            not forgotten_users & listed_users,
            "no forgotten user key in the manifest",
            "forgotten user keys in the manifest",
        )
        check(
            not loaded.rows["row_key"].isin(forgotten_rows).any()
            and not loaded.rows["user_key"].isin(forgotten_users).any(),
            "no forgotten key in the training rows",
            "forgotten keys in the training rows",
        )
    for cached in sorted((directory / "embeddings").glob("*.parquet")):
        keys = set(pd.read_parquet(cached, columns=["row_key"])["row_key"])
        check(
            not keys & forgotten_rows,
            f"no forgotten row in {cached.name}",
            f"forgotten rows cached in {cached.name}",
        )
    state = read_state(directory)
    if state is not None:
        local = pd.read_parquet(directory / state["data_file"])
        present = set(row_keys(local, list(state["key_columns"])))
        users = set(local["user_key"].astype(str)) if "user_key" in local.columns else set()
        check(
            not present & forgotten_rows,
            "no forgotten row in the local copy",
            "forgotten rows in the local copy",
        )
        check(
            not users & {u for u in forgotten_users if any(s["subject_key"] == u for s in cert["subjects"])},
            "no forgotten subject in the local copy",
            "a forgotten subject's rows are in the local copy",
        )
    return ok, problems
