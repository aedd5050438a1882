"""Curation, computed once per post: PII scrubbed into typed placeholders, and VADER sentiment.

Only posts that are new or whose text changed since the last run (by sha256 of the text) are
processed, in a process pool; deleted posts are curated like live ones (the policy decides what a
deletion withholds), posts that left the lake lose their curated row. Everything lands in
`posts_curated` in one Delta commit, so releases join it instead of re-scrubbing.

No model is ever downloaded: Presidio runs its pattern recognizers over a blank spaCy pipeline, and
a spaCy NER model is used only if one is named and already installed.
"""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

import duckdb
import pyarrow as pa
import spacy
from presidio_analyzer import AnalyzerEngine, Pattern, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import EmailRecognizer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from datalease.platform.lake import CURATED_POSTS, Lake
from datalease.platform.schemas import POSTS_CURATED

LANGUAGE: Final = "en"
# What is scrubbed. Left out on purpose: DATE_TIME (a date alone identifies nobody and carries the
# post's meaning), US_DRIVER_LICENSE and US_BANK_NUMBER (their patterns match ordinary tokens such
# as "p2" or any long number).
PATTERN_ENTITIES: Final = (
    "CREDIT_CARD", "CRYPTO", "EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS", "MAC_ADDRESS", "MEDICAL_LICENSE",
    "PHONE_NUMBER", "UK_NHS", "URL", "US_ITIN", "US_PASSPORT", "US_SSN", "UUID",
)  # fmt: skip
NER_ENTITIES: Final = ("PERSON", "LOCATION")  # only with an installed spaCy NER model
# Presidio scores below this are too weak to act on (e.g. any 9-digit number as a passport).
SCORE_THRESHOLD: Final = 0.3
PLACEHOLDER_NAMES: Final = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "IBAN_CODE": "IBAN"}
MENTION_TYPE: Final = "MENTION"
MENTION: Final = re.compile(r"(?<![\w@.])@(\w+)")
MENTION_PLACEHOLDER: Final = "@user"
# VADER's documented thresholds on the compound score.
POSITIVE_FROM: Final = 0.05
NEGATIVE_TO: Final = -0.05
DEFAULT_BATCH_SIZE: Final = 1000
# The local part may start with any RFC 5322 atom character; a dot never ends the domain.
EMAIL_PATTERN: Final = Pattern(
    "Email (permissive)",
    r"(?<![\w!#$%&'*+/=?^`{|}~.-])[\w!#$%&'*+/=?^`{|}~.-]+@\w+(?:-+\w+)*(?:\.\w+(?:-+\w+)*)+",
    0.5,
)


@dataclass(frozen=True)
class Curated:
    """The curation of one text."""

    text_scrubbed: str
    pii_types: list[str]
    sentiment_compound: float
    sentiment_label: str


@dataclass(frozen=True)
class CurateResult:
    """Posts curated in this run, live posts already curated with the same text, curated rows removed."""

    curated: int
    unchanged: int
    removed: int


class OfflineEmailRecognizer(EmailRecognizer):
    """E-mail addresses, validated without the network.

    Presidio's own recognizer validates matches with tldextract, which downloads the Public Suffix
    List on first use, reads `a/b@example.com` as a URL path and misses addresses whose local part
    starts with a symbol (`#x@example.com`) or whose domain is itself a public suffix. Scrubbing errs
    on the side of privacy: any address whose last domain label contains a letter counts.
    """

    def __init__(self) -> None:
        super().__init__(patterns=[EMAIL_PATTERN], supported_language=LANGUAGE)

    def validate_result(self, pattern_text: str) -> bool:
        """True when the domain has a top-level label with a letter (validated matches score 1.0)."""
        top_label = pattern_text.rpartition(".")[2]
        return any(char.isalpha() for char in top_label)


class _SpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine over a blank English pipeline, or an installed model: never a download."""

    def __init__(self, model: str | None) -> None:
        super().__init__(models=[{"lang_code": LANGUAGE, "model_name": model or "blank"}])
        self._model = model

    def load(self) -> None:
        """Build the pipeline without `spacy.cli.download`."""
        # Presidio annotates `nlp` as None (its initial value); it holds a dict once loaded.
        if self._model is None:
            self.nlp = {LANGUAGE: spacy.blank(LANGUAGE)}  # type: ignore[assignment]
            return
        if not spacy.util.is_package(self._model):
            raise ValueError(
                f"spaCy model {self._model!r} is not installed: install it with pip first "
                f"(datalease never downloads models)"
            )
        self.nlp = {LANGUAGE: spacy.load(self._model)}  # type: ignore[assignment]


class Scrubber:
    """PII scrubbing (Presidio pattern recognizers, @mentions) and VADER sentiment for post texts."""

    def __init__(self, spacy_model: str | None = None) -> None:
        engine = _SpacyEngine(spacy_model)
        engine.load()
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=engine)
        registry.remove_recognizer("EmailRecognizer")
        registry.add_recognizer(OfflineEmailRecognizer())
        if spacy_model is None:
            registry.remove_recognizer("SpacyRecognizer")
        self._entities = [*PATTERN_ENTITIES, *(NER_ENTITIES if spacy_model else ())]
        self._analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[LANGUAGE])
        self._vader = SentimentIntensityAnalyzer()

    def scrub(self, text: str) -> tuple[str, list[str]]:
        """`text` with PII replaced by `<TYPE>` placeholders and @mentions by `@user`; the types found.

        The types are the placeholder names, sorted, plus MENTION when a real handle was replaced.

        Overlapping detections are resolved first: the higher score wins, then the longer span (so an
        e-mail address is not also reported as a URL inside it).
        """
        results = self._analyzer.analyze(
            text, language=LANGUAGE, entities=self._entities, score_threshold=SCORE_THRESHOLD
        )
        kept = resolve_overlaps(results)
        scrubbed = _replace(text, kept)
        scrubbed, mentioned = _replace_mentions(scrubbed)
        types = {placeholder_name(result.entity_type) for result in kept}
        return scrubbed, sorted(types | ({MENTION_TYPE} if mentioned else set()))

    def sentiment(self, text: str) -> tuple[float, str]:
        """VADER's compound score in [-1, 1] and its label: positive, negative or neutral."""
        compound = float(self._vader.polarity_scores(text)["compound"])
        return compound, sentiment_label(compound)

    def curate(self, text: str) -> Curated:
        """Scrub `text` and score the sentiment of the original wording."""
        scrubbed, types = self.scrub(text)
        compound, label = self.sentiment(text)
        return Curated(scrubbed, types, compound, label)


def placeholder_name(entity_type: str) -> str:
    """The placeholder word for a Presidio entity type: EMAIL, PHONE, IBAN, else the type itself."""
    return PLACEHOLDER_NAMES.get(entity_type, entity_type)


def sentiment_label(compound: float) -> str:
    """positive from 0.05, negative to -0.05, neutral between (VADER's documented thresholds)."""
    if compound >= POSITIVE_FROM:
        return "positive"
    if compound <= NEGATIVE_TO:
        return "negative"
    return "neutral"


def resolve_overlaps(results: Sequence[RecognizerResult]) -> list[RecognizerResult]:
    """Non-overlapping detections in text order: by score, then length, the first claim on a span wins."""
    kept: list[RecognizerResult] = []
    for result in sorted(results, key=lambda r: (-r.score, r.start - r.end, r.start)):
        if all(result.end <= other.start or result.start >= other.end for other in kept):
            kept.append(result)
    return sorted(kept, key=lambda r: r.start)


def _replace(text: str, results: list[RecognizerResult]) -> str:
    pieces, position = [], 0
    for result in results:
        pieces += [text[position : result.start], f"<{placeholder_name(result.entity_type)}>"]
        position = result.end
    pieces.append(text[position:])
    return "".join(pieces)


def _replace_mentions(text: str) -> tuple[str, bool]:
    """Every @handle becomes @user; whether any was a real handle (not already @user)."""
    found = False

    def anonymous(match: re.Match[str]) -> str:
        nonlocal found
        found = found or match.group(1) != "user"
        return MENTION_PLACEHOLDER

    return MENTION.sub(anonymous, text), found


# --- the incremental run -------------------------------------------------------------------------


@dataclass(frozen=True)
class CurationPlan:
    """What a run must do: posts to (re)curate, curated rows to remove, live posts already current."""

    todo: pa.Table  # post_id, text, text_sha256
    removed: pa.Table  # post_id
    unchanged: int


def plan_curation(lake: Lake) -> CurationPlan:
    """Compare the posts with `posts_curated` by sha256 of the text (DuckDB, zero-copy over the lake)."""
    con = duckdb.connect()
    try:
        lake.register(con, "posts")
        lake.register(con, CURATED_POSTS, alias="curated")
        # Deleted posts are curated too: a post deleted after T was live at T, and a policy may
        # release deleted content (`deleted_content: false`); the policy decides, not curation.
        con.execute("""
            CREATE TEMP TABLE compared AS
            SELECT p.post_id, p.text, sha256(p.text) AS text_sha256, c.text_sha256 AS curated_sha256
            FROM posts p LEFT JOIN curated c USING (post_id)""")
        todo = con.sql("""
            SELECT post_id, text, text_sha256 FROM compared
            WHERE curated_sha256 IS DISTINCT FROM text_sha256 ORDER BY post_id""").to_arrow_table()
        removed = con.sql("""
            SELECT post_id FROM curated WHERE post_id NOT IN (SELECT post_id FROM compared)
            ORDER BY post_id""").to_arrow_table()
        unchanged = con.sql("SELECT count(*) FROM compared WHERE curated_sha256 = text_sha256")
        count = int(unchanged.fetchall()[0][0])
    finally:
        con.close()
    return CurationPlan(todo=todo, removed=removed, unchanged=count)


def curate(
    lake: Lake,
    *,
    workers: int = 2,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
    spacy_model: str | None = None,
) -> CurateResult:
    """Curate new and changed posts into `posts_curated`, drop those no longer in `posts`, in one commit.

    `workers` processes (spawned, each building its Scrubber once) share batches of `batch_size`
    texts; with one worker, or less than two batches of work, it runs in this process.
    `on_progress` receives the number of posts finished since its previous call.
    """
    plan = plan_curation(lake)
    texts = plan.todo.column("text").to_pylist()
    curated = list(_curate_all(texts, workers, batch_size, on_progress, spacy_model))
    rows = _curated_table(plan.todo, curated, datetime.now(UTC))
    if rows.num_rows or plan.removed.num_rows or not lake.exists(CURATED_POSTS):
        lake.upsert(CURATED_POSTS, rows, delete=plan.removed)
    return CurateResult(curated=rows.num_rows, unchanged=plan.unchanged, removed=plan.removed.num_rows)


def _curate_all(
    texts: list[str],
    workers: int,
    batch_size: int,
    on_progress: Callable[[int], None] | None,
    spacy_model: str | None,
) -> Iterator[Curated]:
    batches = [(spacy_model, texts[i : i + batch_size]) for i in range(0, len(texts), max(1, batch_size))]
    if workers <= 1 or len(batches) < 2:
        results: Iterator[list[Curated]] = map(_curate_batch, batches)
        yield from _reporting(results, on_progress)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(batches)), initializer=_scrubber, initargs=(spacy_model,)) as pool:
        yield from _reporting(pool.imap(_curate_batch, batches), on_progress)


def _reporting(
    batches: Iterator[list[Curated]], on_progress: Callable[[int], None] | None
) -> Iterator[Curated]:
    for batch in batches:
        yield from batch
        if on_progress is not None:
            on_progress(len(batch))


def _curate_batch(job: tuple[str | None, list[str]]) -> list[Curated]:
    """Curate one batch of texts with this process's Scrubber (a pool task)."""
    spacy_model, texts = job
    scrubber = _scrubber(spacy_model)
    return [scrubber.curate(text) for text in texts]


@cache
def _scrubber(spacy_model: str | None) -> Scrubber:
    """One Scrubber per process and model, built on first use (also the pool's initializer)."""
    return Scrubber(spacy_model)


def _curated_table(todo: pa.Table, curated: list[Curated], at: datetime) -> pa.Table:
    columns: dict[str, Any] = {
        "post_id": todo.column("post_id"),
        "text_sha256": todo.column("text_sha256"),
        "text_scrubbed": [c.text_scrubbed for c in curated],
        "pii_types": [c.pii_types for c in curated],
        "sentiment_compound": [c.sentiment_compound for c in curated],
        "sentiment_label": [c.sentiment_label for c in curated],
        "curated_at": [at] * len(curated),
    }
    return pa.table(columns).cast(POSTS_CURATED)
