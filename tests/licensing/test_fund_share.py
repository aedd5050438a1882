"""`pricing.fund_share` in the agreement YAML: default 20, 0–100 (numbers or "12.5%"), errors at the
line, and the content fingerprint of agreements that do not set it is what it was before it existed."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from datalease.licensing.load import load_agreement
from datalease.licensing.model import DEFAULT_FUND_SHARE, agreement_to_dict, content_fingerprint
from datalease.licensing.registry import create_agreement
from datalease.policy.model import Policy
from datalease.policy.problems import ProblemsError
from datalease.store import session_scope
from datalease.store.licensing import add_partner, list_agreements

# Fingerprints computed by the code before fund_share existed (commit ccdb6c9).
BEFORE = {
    "lumen-genai.yaml": "8a64502d68e2d4c2baf2072cc7d8ea5a7ad3e53d759f79f6d1ebf47b55b059a4",
    "sentimetrics-us.yaml": "25bda306bb39b580b6f8fe332b7c6a502eabc83dcee02fe1e1648b06a1b3ed3e",
}


def _with_share(text: str, share: str) -> str:
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("pricing:"))
    line = lines[at].rstrip()
    if line.endswith("}"):  # pricing: {model: …, amount: …, currency: …}
        lines[at] = line[:-1] + f", fund_share: {share}}}"
    else:  # a block mapping
        lines.insert(at + 1, f"  fund_share: {share}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_old_fingerprints_are_unchanged(policy: Policy, agreements_dir: Path, name: str) -> None:
    text = (agreements_dir / name).read_text(encoding="utf-8")
    agreement = load_agreement(text, name, policy=policy)
    assert agreement.pricing.fund_share == DEFAULT_FUND_SHARE == Decimal(20)
    assert content_fingerprint(agreement) == BEFORE[name]
    # Writing the default explicitly is the same contract; another share is a different one.
    assert content_fingerprint(load_agreement(_with_share(text, "20"), name, policy=policy)) == BEFORE[name]
    other = load_agreement(_with_share(text, "30"), name, policy=policy)
    assert content_fingerprint(other) != BEFORE[name]
    assert agreement_to_dict(other)["pricing"]["fund_share"] == "30"


@pytest.mark.parametrize(
    ("written", "share"), [("0", "0"), ("100", "100"), ("12.5", "12.5"), ('"12.5%"', "12.5")]
)
def test_fund_share_values(policy: Policy, agreements_dir: Path, written: str, share: str) -> None:
    text = _with_share((agreements_dir / "lumen-genai.yaml").read_text(encoding="utf-8"), written)
    assert load_agreement(text, "a.yaml", policy=policy).pricing.fund_share == Decimal(share)


@pytest.mark.parametrize("written", ["-1", "100.01", '"abc"', "true", '"150%"', '"nan"'])
def test_fund_share_outside_0_to_100_is_a_problem_at_its_line(
    policy: Policy, agreements_dir: Path, written: str
) -> None:
    text = _with_share((agreements_dir / "lumen-genai.yaml").read_text(encoding="utf-8"), written)
    with pytest.raises(ProblemsError) as caught:
        load_agreement(text, "a.yaml", policy=policy)
    messages = [str(p) for p in caught.value.problems]
    assert any("pricing.fund_share: expected a percentage from 0 to 100" in m for m in messages), messages
    assert all(m.startswith("a.yaml:") for m in messages)


def _without_pricing(text: str) -> str:
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("pricing:"))
    end = at + 1
    while end < len(lines) and lines[end].startswith(" "):
        end += 1
    return "\n".join(lines[:at] + lines[end:]) + "\n"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_without_pricing, "pricing: required field is missing"),
        (lambda t: _with_share(t, "101"), "pricing.fund_share: expected a percentage from 0 to 100"),
        (lambda t: _with_share(t, "-5"), "pricing.fund_share: expected a percentage from 0 to 100"),
    ],
    ids=["no-pricing", "share-101", "share-negative"],
)
def test_an_agreement_that_cannot_be_billed_is_not_stored(
    engine: Engine, policy: Policy, agreements_dir: Path, change: Callable[[str], str], expected: str
) -> None:
    text = change((agreements_dir / "sentimetrics-us.yaml").read_text(encoding="utf-8"))
    with session_scope(engine) as session:
        add_partner(session, "sentimetrics", "Sentimetrics")
    with pytest.raises(ProblemsError) as caught, session_scope(engine) as session:
        create_agreement(session, text, "s.yaml", policy=policy)
    assert any(expected in str(p) for p in caught.value.problems), [str(p) for p in caught.value.problems]
    with session_scope(engine) as session:
        assert list_agreements(session) == []
