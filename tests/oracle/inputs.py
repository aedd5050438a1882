"""A world's inputs as plain data: platform rows, consent events, platform events and the steps that
feed them to the system, in order. Nothing here knows the system (or the oracle); the generator
(`generate.py`) writes these, the adapter (`drive.py`) hands them to datalease and the oracle
(`docs_oracle.py`) reads them against the docs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

ENGAGEMENT = ("likes", "reposts", "bookmarks")
CATEGORIES = ("posts", "likes", "reposts", "bookmarks", "profile")


@dataclass(frozen=True)
class UserRow:
    user_id: int
    handle: str
    country: str
    birth_date: date | None
    account_state: str
    created_at: datetime


@dataclass(frozen=True)
class PostRow:
    post_id: int
    author_id: int
    text: str
    lang: str | None
    created_at: datetime
    visibility: str
    deleted_at: datetime | None


@dataclass(frozen=True)
class EngagementRow:
    user_id: int
    post_id: int
    created_at: datetime
    deleted_at: datetime | None


Row = UserRow | PostRow | EngagementRow


@dataclass(frozen=True)
class ConsentChange:
    """One `consent set`: `at` is when the setting takes effect (it may lie before or after now)."""

    user_id: int
    key: str
    value: bool
    at: datetime


@dataclass(frozen=True)
class PlatformEvent:
    """One compliance event as the platform sends it (docs/revocation.md); `at` is the event time."""

    event_id: str
    type: str
    user_id: int
    at: datetime
    post_id: int | None = None
    country: str | None = None


# --- steps -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyPolicy:
    text: str


@dataclass(frozen=True)
class AddPartner:
    name: str


@dataclass(frozen=True)
class CreateAgreement:
    text: str


@dataclass(frozen=True)
class Ingest:
    """Upsert rows into a lake table (by its primary key), as `datalease ingest` does."""

    table: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Curate:
    pass


@dataclass(frozen=True)
class RecordConsent:
    changes: tuple[ConsentChange, ...]


@dataclass(frozen=True)
class SubmitEvents:
    """One submission (all or nothing); the events arrive in this order."""

    events: tuple[PlatformEvent, ...]


@dataclass(frozen=True)
class Build:
    agreement_id: str
    at: datetime


@dataclass(frozen=True)
class KilledBuild:
    """`datalease release build` killed (SIGKILL) at a crash point, e.g. `after_table:posts`."""

    agreement_id: str
    at: datetime
    crashpoint: str


@dataclass(frozen=True)
class RevocationBatch:
    now: datetime


Step = (
    ApplyPolicy
    | AddPartner
    | CreateAgreement
    | Ingest
    | Curate
    | RecordConsent
    | SubmitEvents
    | Build
    | KilledBuild
    | RevocationBatch
)
RELEASING = (Build, KilledBuild, RevocationBatch)  # the steps that change what partners get


@dataclass(frozen=True)
class World:
    """Everything the test does, in order. `read_format` picks the response format the partners ask
    for (`parquet` or `delta`): both are what the official client reads."""

    seed: int
    master_key: bytes
    partners: tuple[str, ...]
    steps: tuple[Step, ...]
    read_format: str = "parquet"
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        lines = [f"world {self.seed} ({self.read_format}): {len(self.steps)} steps"]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
