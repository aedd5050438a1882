"""Checks of a loaded agreement against what the store already holds. Pure: the caller passes the
existing partners and agreements; problems come back in the loader's Problem type so the CLI prints
them the same way (FILE:LINE:COL: field: expected …).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from ruamel.yaml.comments import CommentedMap

from datalease.licensing.model import (
    Agreement,
    Partner,
    agreement_to_dict,
    content_fingerprint,
    describe_term,
)
from datalease.policy.documents import parse_yaml
from datalease.policy.model import Policy
from datalease.policy.problems import Problem, ProblemsError


@dataclass(frozen=True)
class Overlap:
    """Where two agreements of one partner license the same records at the same time."""

    other: Agreement
    term_start: datetime
    term_end: datetime
    categories: tuple[str, ...]
    purposes: tuple[str, ...]  # the narrower purpose of each overlapping pair
    regions: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"{self.other.agreement_id} (term {describe_term(self.other.term_start, self.other.term_end)}) "
            f"for {describe_term(self.term_start, self.term_end)}, categories {', '.join(self.categories)}, "
            f"purposes {', '.join(self.purposes)}, regions {', '.join(self.regions)}"
        )


def purposes_overlap(a: str, b: str) -> bool:
    """A purpose covers its descendants: train_ai_system overlaps train_ai_system.generative."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _intervals_overlap(
    a_start: datetime | None, a_end: datetime | None, b_start: datetime | None, b_end: datetime | None
) -> bool:
    """Half-open [start, end) intervals, None meaning unbounded on that side."""
    return (a_start is None or b_end is None or a_start < b_end) and (
        b_start is None or a_end is None or b_start < a_end
    )


def find_overlap(a: Agreement, b: Agreement, region_names: Iterable[str]) -> Overlap | None:
    """The overlap of two agreements' scopes, or None.

    They overlap when their terms overlap AND they share a category AND a purpose of one covers a
    purpose of the other AND they cover a common region AND their content windows overlap.
    """
    if not _intervals_overlap(a.term_start, a.term_end, b.term_start, b.term_end):
        return None
    if not _intervals_overlap(a.content_from, a.content_until, b.content_from, b.content_until):
        return None
    categories = tuple(c for c in a.categories if c in b.categories)
    if not categories:
        return None
    purposes: list[str] = []
    for pa in a.purposes:
        for pb in b.purposes:
            if purposes_overlap(pa, pb):
                narrower = pa if len(pa) >= len(pb) else pb
                if narrower not in purposes:
                    purposes.append(narrower)
    if not purposes:
        return None
    names = tuple(region_names)
    common = a.covers_regions(names) & b.covers_regions(names)
    if not common:
        return None
    ordered = tuple(r for r in (*names, "*") if r in common)
    return Overlap(
        other=b,
        term_start=max(a.term_start, b.term_start),
        term_end=min(a.term_end, b.term_end),
        categories=categories,
        purposes=tuple(purposes),
        regions=ordered,
    )


def overlapping_agreements(
    agreement: Agreement, others: Iterable[Agreement], policy: Policy
) -> list[Overlap]:
    """Active agreements of the same partner (other than this one) whose scope overlaps this one's."""
    found: list[Overlap] = []
    for other in others:
        if other.agreement_id == agreement.agreement_id or other.partner != agreement.partner:
            continue
        if other.status != "active":
            continue
        overlap = find_overlap(agreement, other, policy.regions)
        if overlap is not None:
            found.append(overlap)
    return found


def differing_parts(a: Agreement, b: Agreement) -> list[str]:
    """Top-level parts of the document in which two agreements differ (status ignored)."""
    left, right = agreement_to_dict(a), agreement_to_dict(b)
    return [key for key in left if key != "status" and left[key] != right[key]]


def validate_agreement(
    agreement: Agreement,
    *,
    source_text: str,
    source: str,
    policy: Policy,
    partners: Iterable[Partner | str],
    agreements: Iterable[Agreement],
) -> list[Problem]:
    """Problems of `agreement` (loaded from `source_text`) given the partners and agreements stored.

    - the partner must exist (the message names the `datalease partner add` command);
    - an agreement with the same id must have the same content (status aside): agreements are
      immutable, so re-submitting the same contract is fine and a changed one needs a new id;
    - an active agreement must not overlap another active agreement of the same partner.
    """
    locate = _locator(source_text)
    problems: list[Problem] = []
    names = {p.name if isinstance(p, Partner) else p for p in partners}
    if agreement.partner not in names:
        line, col = locate("partner")
        problems.append(
            Problem(
                source,
                line,
                col,
                "partner",
                f"expected a known partner; {agreement.partner!r} is not one yet: add it first with "
                f"`datalease partner add {agreement.partner}`",
            )
        )
    existing = list(agreements)
    same_id = next((a for a in existing if a.agreement_id == agreement.agreement_id), None)
    if same_id is not None and content_fingerprint(same_id) != content_fingerprint(agreement):
        line, col = locate("agreement")
        parts = differing_parts(same_id, agreement) or ["formatting of amounts or list order"]
        problems.append(
            Problem(
                source,
                line,
                col,
                "agreement",
                f"expected a new agreement id; {agreement.agreement_id!r} already exists with different "
                f"content ({', '.join(parts)}). Agreements are immutable: give the changed contract its "
                f"own id (e.g. {agreement.agreement_id}-v2) and terminate the old one",
            )
        )
    if agreement.status == "active":
        line, col = locate("agreement")
        for overlap in overlapping_agreements(agreement, existing, policy):
            problems.append(
                Problem(
                    source,
                    line,
                    col,
                    "agreement",
                    f"expected at most one active agreement of partner {agreement.partner} per scope; "
                    f"this one overlaps active agreement {overlap.describe()}. Make the terms, categories, "
                    "purposes, regions or content windows disjoint, or create this one as draft",
                )
            )
    return sorted(problems, key=lambda p: (p.line, p.col))


def check_agreement(
    agreement: Agreement,
    *,
    source_text: str,
    source: str,
    policy: Policy,
    partners: Iterable[Partner | str],
    agreements: Iterable[Agreement],
) -> None:
    """`validate_agreement`, raising ProblemsError when there is any problem."""
    problems = validate_agreement(
        agreement,
        source_text=source_text,
        source=source,
        policy=policy,
        partners=partners,
        agreements=agreements,
    )
    if problems:
        raise ProblemsError(problems)


def _locator(source_text: str) -> Callable[[str], tuple[int, int]]:
    """Position (1-based line, col) of a top-level key's value in the document, (1, 1) if unknown."""
    try:
        root = parse_yaml(source_text, "<agreement>")
    except ProblemsError:
        root = None

    def locate(key: str) -> tuple[int, int]:
        if isinstance(root, CommentedMap) and key in root:
            line, col = root.lc.value(key)
            return int(line) + 1, int(col) + 1
        return 1, 1

    return locate
