"""The `partnerkit` command."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

import requests

from partnerkit import lineage
from partnerkit import model as models
from partnerkit.errors import PartnerError
from partnerkit.forget import forget
from partnerkit.profile import load_profile
from partnerkit.store import locked
from partnerkit.sync import read_local, sync
from partnerkit.verify import verify


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="partnerkit", description="A partner's side of datalease-style sharing."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("sync", help="pull the snapshot, then follow the change feed")
    p.add_argument("profile", type=Path)
    p.add_argument("--table", help="SHARE.SCHEMA.TABLE (needed on the first sync)")
    p.add_argument("--dir", type=Path, required=True)

    p = commands.add_parser("train", help="train a new model version from scratch on the local copy")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--slices", type=int, default=4)
    p.add_argument("--mode", choices=models.MODES, default="sisa")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--features", choices=("minilm", "projection"), default="minilm", help="exact mode only")
    p.add_argument("--head", choices=("lda", "ridge"), default="lda", help="exact mode only")
    p.add_argument(
        "--profile", type=Path, help="declare the model's lineage to the platform with this profile"
    )

    p = commands.add_parser("forget", help="unlearn deletes and forget entries; certify and acknowledge")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("profile", type=Path)
    p.add_argument(
        "--no-sync", action="store_true", help="only the forget list (do not read the change feed)"
    )
    p.add_argument("--json", action="store_true", help="print the certificate")

    p = commands.add_parser("verify", help="check a forget certificate against the directory")
    p.add_argument("certificate", type=Path)
    p.add_argument("--dir", type=Path, help="default: the certificate's directory's parent")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    finally:
        # Arrow's parquet reader threads must be joined while Arrow is alive: left to interpreter
        # teardown they can abort the process after its work is done (apache/arrow#34314).
        gc.collect()


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "sync":
            with locked(args.dir):
                print(sync(args.dir, load_profile(args.profile), args.table).describe())
        elif args.command == "train":
            with locked(args.dir):
                doc = models.train(
                    args.dir,
                    mode=args.mode,
                    shards=args.shards,
                    slices=args.slices,
                    seed=args.seed,
                    epochs=args.epochs,
                    features=args.features,
                    head=args.head,
                )
            print(
                f"model v{doc['version']} ({doc['mode']}, {doc['rows']} rows), manifest {doc['manifest_sha256'][:16]}…"
            )
            if args.profile is not None:
                state, _ = read_local(args.dir)
                lineage.declare(
                    args.dir,
                    load_profile(args.profile),
                    state["table"],
                    int(state["version"]),
                    int(doc["version"]),
                )
                print(
                    f"declared {lineage.model_id(state['table'], int(doc['version']))} on version {state['version']}"
                )
        elif args.command == "forget":
            outcome = forget(args.dir, load_profile(args.profile), sync_first=not args.no_sync)
            if args.json:
                print(json.dumps(outcome.certificate, indent=2, sort_keys=True))
            else:
                print(outcome.describe())
        elif args.command == "verify":
            passed, problems = verify(args.certificate, args.dir)
            for line in passed:
                print(f"ok: {line}")
            for line in problems:
                print(f"FAIL: {line}")
            return 1 if problems else 0
    except PartnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except requests.RequestException as exc:  # the server refused or could not be reached
        print(f"error: the sharing server: {exc}", file=sys.stderr)
        return 3
    return 0
