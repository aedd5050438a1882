"""`datalease partner add` and `datalease agreement create | list | show`."""

from __future__ import annotations

from pathlib import Path

from cli_harness import EXAMPLE_AGREEMENTS, Demo, count, expect, only_error_line, rows, run


def test_adding_a_partner_twice_names_it(home: Path) -> None:
    first = expect(run("partner", "add", "acme-ai", "--display-name", "Acme AI", home=home), 0)
    assert first.out_lines == ["partner acme-ai added"]
    second = run("partner", "add", "acme-ai", "--display-name", "Someone Else", home=home)
    message = only_error_line(second)
    assert message.startswith("partner 'acme-ai' already exists (added ")
    assert message.endswith(" as 'Acme AI'); choose another name or use the existing partner")
    assert rows(home, "SELECT name, display_name FROM partners WHERE name = 'acme-ai'") == [
        ("acme-ai", "Acme AI")
    ]


def test_agreement_with_unknown_partner_is_a_located_problem(home: Path, tmp_path: Path) -> None:
    text = (EXAMPLE_AGREEMENTS / "lumen-genai.yaml").read_text(encoding="utf-8")
    text = text.replace("agreement: lumen-genai-2025", "agreement: ghost-genai-2025")
    text = text.replace("partner: lumen-labs", "partner: ghost-labs")
    (tmp_path / "ghost.yaml").write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("partner:"))
    agreements, partners = count(home, "agreements"), count(home, "partners")

    result = run("agreement", "create", "ghost.yaml", home=home, cwd=tmp_path)
    expect(result, 2)
    assert result.out == ""
    assert result.err_lines == [
        f"ghost.yaml:{line}:10: partner: expected a known partner; 'ghost-labs' is not one yet: "
        "add it first with `datalease partner add ghost-labs`",
        "1 problem(s) found",
    ]
    assert (count(home, "agreements"), count(home, "partners")) == (agreements, partners)


def test_creating_a_stored_agreement_again_changes_nothing(home: Path) -> None:
    stored = rows(home, "SELECT * FROM agreements ORDER BY agreement_id")
    result = expect(run("agreement", "create", EXAMPLE_AGREEMENTS / "lumen-genai.yaml", home=home), 0)
    assert result.out_lines == [
        "agreement already stored, unchanged: lumen-genai-2025 for lumen-labs (active)"
    ]
    assert rows(home, "SELECT * FROM agreements ORDER BY agreement_id") == stored


def test_agreement_list_and_show(demo: Demo) -> None:
    listed = expect(run("agreement", "list", "--json", home=demo.home), 0).json()
    assert [(a["agreement_id"], a["partner"], a["status"]) for a in listed] == [
        ("lumen-genai-2025", "lumen-labs", "active"),
        ("sentimetrics-us-2025", "sentimetrics", "active"),
    ]
    assert all("source_text" not in a for a in listed)
    lumen = next(a for a in listed if a["agreement_id"] == "lumen-genai-2025")
    assert lumen["term_start"].startswith("2025-01-01 00:00:00")
    assert lumen["term_end"].startswith("2027-01-01 00:00:00")  # `end: 2026-12-31` is the last day

    shown = expect(run("agreement", "show", "lumen-genai-2025", "--json", home=demo.home), 0).json()
    assert shown["agreement"] == "lumen-genai-2025"
    assert shown["partner"] == "lumen-labs"
    assert shown["status"] == "active"
    assert shown["purposes"] == ["train_ai_system.generative"]
    assert shown["categories"] == ["posts", "reposts"]
    assert shown["regions"] == {"allowed": None, "denied": ["EEA"]}
    assert shown["term"] == {"start": "2025-01-01T00:00:00+00:00", "end": "2027-01-01T00:00:00+00:00"}
    assert shown["deletion_sla_hours"] == 72


def test_agreement_show_unknown_id(demo: Demo) -> None:
    result = run("agreement", "show", "nope", "--json", home=demo.home)
    assert only_error_line(result) == "no agreement 'nope'; see `datalease agreement list`"
