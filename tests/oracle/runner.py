"""Runs one world on the system and on the oracle side by side and lists every divergence.

After each build or revocation batch (the only steps that change what partners get; several in a row
are read after the last), every partner reads, through a real server and the official client: the
tables it is offered, each table's snapshot, the change feed replayed from version 0, and its copy
synced from the last version it saw. Each must hold exactly the oracle's rows, and no text of a post
the share withdrew may be in any of it. A table whose served version did not move is not read again
when the oracle expects the same rows as at the last read.

A build that raises leaves the previous release visible (docs/releases.md "All or nothing"): the
oracle keeps the batch the build ran first and drops the build, and the world goes on. Any other
step that raises ends the world. A divergence in what partners read does not: the oracle's next
expectations do not depend on what the system did.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from docs_oracle import FORGET_COLUMNS, IDENTITY, LEDGER_HEAD_COLUMNS, Oracle, Share
from drive import System, failed_in_batch
from inputs import (
    RELEASING,
    Build,
    Ingest,
    KilledBuild,
    RecordConsent,
    RevocationBatch,
    Step,
    SubmitEvents,
    World,
)
from partner import Partner, Row, TableCopy, capturing_files, fold

Hashable = tuple[tuple[str, Any], ...]

# Divergence kinds
RAISED = "raised"  # a system step raised
CLIENT = "client"  # the official client failed on an answer
LISTING = "listing"  # the tables offered differ
COLUMNS = "columns"
SNAPSHOT = "snapshot"  # a table's rows differ
FORGET = "forget"  # the forget entries (or their fields) differ
LEDGER_HEAD = "ledger-head"  # the ledger_head rows differ (one per build)
FEED = "feed"  # a replayed or synced change feed does not end with the snapshot
REVOKED_TEXT = "revoked-text"


def hashable(row: Row) -> Hashable:
    return tuple(sorted(row.items()))


def describe(step: Step) -> str:
    if isinstance(step, Ingest):
        return f"ingest {len(step.rows)} {step.table} rows"
    if isinstance(step, RecordConsent):
        return "consent " + ", ".join(
            f"{c.user_id} {c.key}={c.value} at {c.at:%m-%d %H:%M:%S.%f}" for c in step.changes
        )
    if isinstance(step, SubmitEvents):
        return "events " + ", ".join(
            f"{e.type} {e.user_id}"
            + (f"/{e.post_id}" if e.post_id is not None else "")
            + (f" {e.country}" if e.country else "")
            + f" at {e.at:%m-%d %H:%M}"
            for e in step.events
        )
    if isinstance(step, Build):
        return f"build {step.agreement_id} at {step.at.isoformat()}"
    if isinstance(step, KilledBuild):
        return f"build {step.agreement_id} at {step.at.isoformat()} killed at {step.crashpoint}"
    if isinstance(step, RevocationBatch):
        return f"revocation batch at {step.now.isoformat()}"
    return type(step).__name__


@dataclass
class Divergence:
    step: int
    step_text: str
    kind: str
    what: str
    share: str | None = None
    table: str | None = None
    observed: Any = None  # what the partner saw (for telling which known bug explains it)

    def __str__(self) -> str:
        return f"step {self.step} ({self.step_text}): {self.what}"


@dataclass
class WorldRun:
    world: World
    root: Path
    template: Path | None = None
    divergences: list[Divergence] = field(default_factory=list)
    failed_builds: set[str] = field(default_factory=set)  # agreements a build of which raised
    # shares a build died on since the last read: their Delta tables moved without a release, so
    # their answers are read again even at an unchanged version
    dead_since_read: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.oracle = Oracle(self.world.master_key)
        self.system = System(self.root / "home", self.world.master_key, self.template)
        self.partners: dict[str, Partner] = {}
        self.seen: dict[tuple[str, str, str], Counter[Hashable]] = {}
        # identities each table's snapshots have held: a feed may name those (a release the oracle did
        # not expect is a snapshot divergence already) and rows of releases the oracle expects
        self.served: dict[tuple[str, str], set[tuple[Any, ...]]] = {}
        self.started = datetime.now(UTC)
        self.index = 0

    def run(self) -> list[Divergence]:
        self.system.start_server()
        try:
            for index, step in enumerate(self.world.steps):
                self.index = index
                if not self.apply(step):
                    break
                if isinstance(step, RELEASING) and not self.more_releases_follow():
                    self.check_partners()
        finally:
            self.system.close()
        return self.divergences

    def apply(self, step: Step) -> bool:
        """Apply the step to both; False when the world cannot go on."""
        try:
            self.system.apply(step)
        except Exception as exc:
            self.diverge(RAISED, f"the system raised {type(exc).__name__}: {str(exc)[:800]}", observed=exc)
            if isinstance(step, Build) and not failed_in_batch(exc):
                self.oracle.apply_failed_build(step)
                self.failed_builds.add(step.agreement_id)
                self.dead_since_read.add(step.agreement_id)
                return True
            return False
        self.oracle.apply(step)
        if isinstance(step, KilledBuild) and step.crashpoint != "after_ledger":
            self.dead_since_read.add(step.agreement_id)
        return True

    def more_releases_follow(self) -> bool:
        """Builds and batches in a row at one instant (every agreement built at T) are read once, after
        the last of them: the copy synced from the last version seen still reads every version."""
        following = self.world.steps[self.index + 1 : self.index + 2]
        if not following or not isinstance(following[0], RELEASING):
            return False
        return _instant(following[0]) == _instant(self.world.steps[self.index])

    def diverge(
        self, kind: str, what: str, share: str | None = None, table: str | None = None, observed: Any = None
    ) -> None:
        step = self.world.steps[self.index]
        self.divergences.append(Divergence(self.index, describe(step), kind, what, share, table, observed))

    # --- the partner's view ----------------------------------------------------------------------

    def partner(self, name: str) -> Partner:
        if name not in self.partners:
            path = self.system.profile(name, self.root / f"{name}.share")
            self.partners[name] = Partner(name, path, self.world.read_format)
        return self.partners[name]

    def check_partners(self) -> None:
        for name in self.world.partners:
            partner = self.partner(name)
            expected = self.expected_tables(name)
            try:
                listed = partner.listed()
            except Exception as exc:
                self.diverge(
                    CLIENT, f"{name}: listing the tables failed: {type(exc).__name__}: {str(exc)[:300]}"
                )
                continue
            if listed != expected:
                self.diverge(
                    LISTING,
                    f"{name} is offered {sorted(listed)}, expected {sorted(expected)}",
                    observed=frozenset(listed),
                )
            for share, table in sorted(expected & listed):
                self.check_table(partner, share, table)
        self.dead_since_read.clear()

    def expected_tables(self, partner: str) -> set[tuple[str, str]]:
        return expected_tables(self.oracle, partner)

    def check_table(self, partner: Partner, share_id: str, table: str) -> None:
        share = self.oracle.shares[share_id]
        where = f"{partner.name} {share_id}.{table}"
        expected = Counter(hashable(r) for r in expected_rows(share, table))
        copy = partner.copies.setdefault((share_id, table), TableCopy())
        try:
            version = partner.version(share_id, table)
        except Exception as exc:
            self.diverge(
                CLIENT,
                f"{where}: the table version failed: {type(exc).__name__}: {str(exc)[:300]}",
                share_id,
                table,
            )
            return
        seen = self.seen.get((partner.name, share_id, table))
        if version == copy.version and seen == expected and share_id not in self.dead_since_read:
            return
        self.seen[(partner.name, share_id, table)] = expected
        identity = IDENTITY[table]
        replay: list[Row] = []
        with capturing_files() as capture:
            try:
                columns, snapshot = partner.snapshot(share_id, table)
            except Exception as exc:
                self.diverge(
                    CLIENT,
                    f"{where} v{version}: load_as_pandas failed: {type(exc).__name__}: {str(exc)[:400]}",
                    share_id,
                    table,
                )
                return
            self.compare_snapshot(share, table, where, version, columns, snapshot, expected)
            current = {tuple(r[k] for k in identity): r for r in snapshot}
            self.served.setdefault((share_id, table), set()).update(current)
            try:
                replay = partner.changes(share_id, table, 0)
                self.check_released_only(share, table, where, replay)
                replayed, problems = fold({}, replay, identity)
                self.compare_copy(
                    share_id,
                    table,
                    where,
                    f"the change feed replayed from version 0 to v{version}",
                    replayed,
                    current,
                    problems,
                )
                if copy.version < 0:
                    copy.rows = replayed
                elif version > copy.version:
                    since = partner.changes(share_id, table, copy.version + 1)
                    self.check_released_only(share, table, where, since)
                    copy.rows, problems = fold(copy.rows, since, identity)
                    self.compare_copy(
                        share_id,
                        table,
                        where,
                        f"the copy synced from v{copy.version} to v{version}",
                        copy.rows,
                        current,
                        problems,
                    )
                copy.version = version
            except Exception as exc:
                self.diverge(
                    CLIENT,
                    f"{where} v{version}: load_table_changes_as_pandas failed: {type(exc).__name__}: {str(exc)[:400]}",
                    share_id,
                    table,
                )
                partner.copies[(share_id, table)] = TableCopy()
        self.check_revoked_text(
            share, where, [capture.strings(), _row_strings(snapshot), _row_strings(replay)]
        )

    def compare_snapshot(
        self,
        share: Share,
        table: str,
        where: str,
        version: int,
        columns: Sequence[str],
        snapshot: list[Row],
        expected: Counter[Hashable],
    ) -> None:
        share_id = share.agreement.agreement_id
        want_columns = {"forget": FORGET_COLUMNS, "ledger_head": LEDGER_HEAD_COLUMNS}.get(table) or (
            share.agreement.columns(table)
        )
        if sorted(columns) != sorted(want_columns):
            self.diverge(
                COLUMNS,
                f"{where} v{version}: columns {list(columns)}, expected {list(want_columns)}",
                share_id,
                table,
            )
        if table == "forget":
            self.check_forget(share, where, version, snapshot, expected)
            return
        if table == "ledger_head":
            self.check_ledger_head(share, where, version, snapshot, expected)
            return
        got = Counter(hashable(r) for r in snapshot)
        if got != expected:
            pinned = self.system.pinned_rows(share_id, table)
            cause = ""
            if pinned is not None:
                same = Counter(hashable(_plain_row(r)) for r in pinned) == got
                cause = (
                    " (the table the release pins holds the same)"
                    if same
                    else " (the pinned table holds other rows)"
                )
            self.diverge(
                SNAPSHOT,
                f"{where} v{version}: snapshot differs from the oracle{cause}:\n"
                + self.difference(share, expected, got),
                share_id,
                table,
                observed=got,
            )

    def check_ledger_head(
        self, share: Share, where: str, version: int, snapshot: list[Row], expected: Counter[Hashable]
    ) -> None:
        """A row per build at its as-of, ids and consent seqs rising with the builds (the seq and hash
        themselves are checked against the ledger by `consent verify --anchor`, not here)."""
        got = Counter(hashable({"as_of": pd.Timestamp(r["as_of"]).to_pydatetime()}) for r in snapshot)
        ordered = sorted(snapshot, key=lambda r: r["release_id"])
        seqs = [r["consent_seq"] for r in ordered]
        if got != expected or seqs != sorted(seqs) or any(r["kind"] != "build" for r in snapshot):
            self.diverge(
                LEDGER_HEAD,
                f"{where} v{version}: ledger_head rows {[(r['release_id'], r['as_of'], r['consent_seq']) for r in ordered]}"
                f", expected one build row at each of {sorted(dict(k)['as_of'] for k in expected)}",
                share.agreement.agreement_id,
                "ledger_head",
            )

    def check_forget(
        self, share: Share, where: str, version: int, snapshot: list[Row], expected: Counter[Hashable]
    ) -> None:
        share_id = share.agreement.agreement_id
        got = Counter(hashable({"scope": r["scope"], "subject_key": r["subject_key"]}) for r in snapshot)
        if got != expected:
            self.diverge(
                FORGET,
                f"{where} v{version}: forget entries differ from the oracle:\n"
                + self.difference(share, expected, got),
                share_id,
                "forget",
                observed=got,
            )
        ids = Counter(r["forget_id"] for r in snapshot)
        if any(n > 1 for n in ids.values()):
            self.diverge(
                FORGET,
                f"{where}: forget_id repeated: {[i for i, n in ids.items() if n > 1]}",
                share_id,
                "forget",
            )
        now = datetime.now(UTC)
        sla = timedelta(hours=share.agreement.deletion_sla_hours)
        for row in snapshot:
            if row["deadline"] - row["requested_at"] != sla:
                self.diverge(
                    FORGET,
                    f"{where}: deadline {row['deadline']} is not requested_at {row['requested_at']} + {sla}",
                    share_id,
                    "forget",
                )
            if not self.started - timedelta(seconds=1) <= row["requested_at"] <= now:
                self.diverge(
                    FORGET,
                    f"{where}: requested_at {row['requested_at']} is not when the intent was recorded",
                    share_id,
                    "forget",
                )
        if got == expected:
            self.check_reason_codes(share, where, snapshot)

    def check_reason_codes(self, share: Share, where: str, snapshot: list[Row]) -> None:
        """Each entry's reason code is one of its subject's intents' (entries of one subject, from several
        batches, are paired with the oracle's in any order that fits)."""
        for scope, key in {(r["scope"], r["subject_key"]) for r in snapshot}:
            codes = sorted(
                r["reason_code"] for r in snapshot if (r["scope"], r["subject_key"]) == (scope, key)
            )
            allowed = [f.reasons for f in share.forget if (f.scope, f.subject_key) == (scope, key)]
            if not _assignable(codes, allowed):
                self.diverge(
                    FORGET,
                    f"{where}: reason codes {codes} for {scope} {self.key_names(share).get(key, key)}, "
                    f"expected one each of {[sorted(a) if a else 'any' for a in allowed]}",
                    share.agreement.agreement_id,
                    "forget",
                )

    def compare_copy(
        self,
        share_id: str,
        table: str,
        where: str,
        what: str,
        rows: dict[tuple[Any, ...], Row],
        current: dict[tuple[Any, ...], Row],
        problems: list[str],
    ) -> None:
        for problem in problems:
            self.diverge(FEED, f"{where}: {what}: {problem}", share_id, table)
        if {k: hashable(v) for k, v in rows.items()} != {k: hashable(v) for k, v in current.items()}:
            got, want = Counter(map(hashable, rows.values())), Counter(map(hashable, current.values()))
            names = self.key_names(self.oracle.shares[share_id])
            self.diverge(
                FEED,
                f"{where}: {what} does not end with the snapshot's rows:\n"
                + _lines(want - got, got - want, names),
                share_id,
                table,
            )

    def check_released_only(self, share: Share, table: str, where: str, changes: list[Row]) -> None:
        """docs/releases.md: a dead build's commits are invisible; nothing is served that no release
        pinned. So every row the feed names (inserted or deleted) is one some release held."""
        if table in ("forget", "ledger_head"):
            return
        identity = IDENTITY[table]
        released = share.keys_ever.get(table, set()) | self.served.get(
            (share.agreement.agreement_id, table), set()
        )
        strangers = {tuple(c[k] for k in identity) for c in changes} - released
        if strangers:
            names = self.key_names(share)
            shown = sorted(":".join(names.get(k, k) for k in key) for key in strangers)
            self.diverge(
                FEED,
                f"{where}: the change feed names rows no release held: {shown[:4]}",
                share.agreement.agreement_id,
                table,
            )

    def check_revoked_text(self, share: Share, where: str, sources: Iterable[Iterable[str]]) -> None:
        revoked = share.revoked_texts()
        if not revoked:
            return
        leaked = {text for source in sources for value in source for text in revoked if text in value}
        if leaked:
            share_id = share.agreement.agreement_id
            what = f"{where}: revoked text reached the partner: {sorted(leaked)[:3]}"
            self.diverge(REVOKED_TEXT, what, share_id, observed=frozenset(leaked))

    # --- messages ----------------------------------------------------------------------------------

    def difference(self, share: Share, expected: Counter[Hashable], got: Counter[Hashable]) -> str:
        return _lines(expected - got, got - expected, self.key_names(share))

    def key_names(self, share: Share) -> dict[str, str]:
        platform = self.oracle.platform
        names = {share.user_key(u): f"user {u}" for u in platform.users}
        names |= {share.post_key(p): f"post {p}" for p in platform.posts}
        names |= {
            f"{share.user_key(u)}:{share.post_key(p)}": f"user {u} on post {p}"
            for rows in platform.engagement.values()
            for u, p in rows
        }
        return names


def _instant(step: Step) -> object:
    return step.now if isinstance(step, RevocationBatch) else getattr(step, "at", None)


def expected_tables(oracle: Oracle, partner: str) -> set[tuple[str, str]]:
    """docs/sharing.md: a share per active agreement with a release, a table per category, the ledger
    head (written by every build), and the forget list once there is an entry."""
    out = set()
    for agreement_id, share in oracle.shares.items():
        if share.agreement.partner != partner or share.release_at is None:
            continue
        out |= {(agreement_id, c) for c in share.agreement.categories}
        if share.builds:
            out.add((agreement_id, "ledger_head"))
        if share.forget:
            out.add((agreement_id, "forget"))
    return out


def expected_rows(share: Share, table: str) -> list[Row]:
    if table == "forget":
        return [{"scope": f.scope, "subject_key": f.subject_key} for f in share.forget]
    if table == "ledger_head":
        return [{"as_of": at} for at in share.builds]
    return share.rows(table)


def _lines(missing: Counter[Hashable], extra: Counter[Hashable], names: dict[str, str]) -> str:
    def show(row: Hashable) -> str:
        return "{" + ", ".join(f"{k}: {names.get(v, v) if isinstance(v, str) else v}" for k, v in row) + "}"

    lines = [f"  {sum(missing.values())} missing, {sum(extra.values())} unexpected"]
    lines += [f"  missing    {show(r)}" for r in list(missing)[:4]]
    lines += [f"  unexpected {show(r)}" for r in list(extra)[:4]]
    return "\n".join(lines)


def _assignable(codes: list[str], allowed: list[frozenset[str] | None]) -> bool:
    """Whether each code can be paired with its own entry of `allowed` (None: any non-empty code)."""
    if len(codes) != len(allowed):
        return False
    if not codes:
        return True
    first, rest = codes[0], codes[1:]
    for index, reasons in enumerate(allowed):
        fits = bool(first) and (reasons is None or first in reasons)
        if fits and _assignable(rest, allowed[:index] + allowed[index + 1 :]):
            return True
    return False


def _plain_row(row: Row) -> Row:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}


def _row_strings(rows: Iterable[Row]) -> Iterable[str]:
    for row in rows:
        for value in row.values():
            if isinstance(value, str):
                yield value
            elif isinstance(value, tuple):
                yield from (v for v in value if isinstance(v, str))
