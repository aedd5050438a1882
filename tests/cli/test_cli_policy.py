"""`datalease policy validate | apply | show | diff` against real files and a real store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_harness import EXAMPLE_POLICY, count, expect, only_error_line, run

BROKEN = """\
versions:
  - id: "2024-11"
    effective_from: 2024-13-45
    rules:
      - region: Mars
        mechanism: optin
      - region: EEA
        categories: [posts, dms]
        mechanism: excluded
hard_exclusions:
  minimum_age: 9
  unknown_age: maybe
regions:
  EEA: [DE, fr]
  UK: [GB, DE]
policy: x-bad
colour: blue
"""

# Found while walking the document top to bottom, but reported sorted by line: the regions the rules
# name are declared below them.
BROKEN_PROBLEMS = [
    "bad.yaml:3:21: versions[0].effective_from: expected a date (2024-11-15) or an ISO-8601 date-time, "
    "got '2024-13-45'",
    "bad.yaml:5:17: versions[0].rules[0].region: expected one of EEA, UK or '*', got 'Mars'",
    "bad.yaml:6:20: versions[0].rules[0].mechanism: expected one of opt_out, opt_in, excluded, got 'optin'",
    "bad.yaml:8:29: versions[0].rules[1].categories[1]: expected one of posts, likes, reposts, bookmarks, "
    "profile or '*', got 'dms'",
    "bad.yaml:11:16: hard_exclusions.minimum_age: expected a whole number of years between 13 and 25, got int 9",
    "bad.yaml:12:16: hard_exclusions.unknown_age: expected one of exclude, allow, got 'maybe'",
    "bad.yaml:14:13: regions.EEA[1]: expected an ISO-3166 alpha-2 country code such as DE, got 'fr'",
    "bad.yaml:15:12: regions.UK[1]: country DE is already in region EEA; a country belongs to one region",
    "bad.yaml:17:1: colour: unknown field; expected one of policy, description, categories, purposes, "
    "regions, hard_exclusions, versions, notice_periods, signals",
]

# The bookmarks rule of version 2024-11 (in force since 2024-11-15) edited in place.
EDITED_IN_FORCE = EXAMPLE_POLICY.read_text(encoding="utf-8").replace(
    "categories: [bookmarks]\n        mechanism: opt_in",
    "categories: [bookmarks]\n        mechanism: opt_out",
)


def test_validate_example_is_ok(tmp_path: Path) -> None:
    home = tmp_path / "never-created"
    result = expect(run("policy", "validate", EXAMPLE_POLICY, home=home), 0)
    assert result.out_lines == [f"{EXAMPLE_POLICY}: OK — policy x-platform, 2 versions, 4 regions"]
    assert result.err == ""
    assert not home.exists(), "validate must not touch DATALEASE_HOME"


def test_validate_reports_every_problem_located_and_sorted(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BROKEN, encoding="utf-8")
    result = expect(run("policy", "validate", "bad.yaml", home=tmp_path / "h", cwd=tmp_path), 2)
    assert result.out == ""
    assert result.err_lines == [*BROKEN_PROBLEMS, "9 problem(s) found"]
    assert not (tmp_path / "h").exists()


def test_apply_of_a_broken_file_stores_nothing(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BROKEN, encoding="utf-8")
    result = expect(run("policy", "apply", "bad.yaml", home=tmp_path / "h", cwd=tmp_path), 2)
    assert result.out == ""
    assert result.err_lines == [*BROKEN_PROBLEMS, "9 problem(s) found"]
    assert not (tmp_path / "h").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.yaml", None, "missing.yaml: no such file"),
    ],
    ids=["missing"],
)
def test_validate_unreadable_file_is_one_error_line(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    result = run("policy", "validate", name, home=tmp_path / "h", cwd=tmp_path)
    assert only_error_line(result) == message


def test_validate_a_file_that_is_not_utf8_is_a_located_problem(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"policy: x\ndescription: caf\xe9\n")
    result = expect(run("policy", "validate", "latin1.yaml", home=tmp_path / "h", cwd=tmp_path), 2)
    assert result.err_lines == [
        "latin1.yaml:2:17: (document): expected UTF-8 text, found byte 0xe9 (is this a binary file?)",
        "1 problem(s) found",
    ]


def test_apply_twice_then_refuse_rewriting_history(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copy(EXAMPLE_POLICY, tmp_path / "x-2024.yaml")
    (tmp_path / "edited.yaml").write_text(EDITED_IN_FORCE, encoding="utf-8")
    assert EXAMPLE_POLICY.read_text(encoding="utf-8") != EDITED_IN_FORCE

    first = expect(run("policy", "apply", "x-2024.yaml", home=home, cwd=tmp_path), 0)
    assert first.out_lines == ["applied x-2024.yaml as policy revision 1"]
    again = expect(run("policy", "apply", "x-2024.yaml", home=home, cwd=tmp_path), 0)
    assert again.out_lines == ["no change: the active policy already says this"]
    assert count(home, "policy_revisions") == 1

    before = expect(run("policy", "show", "--at", "2025-01-01", "--json", home=home), 0)
    refused = run("policy", "apply", "edited.yaml", "--actor", "mallory", home=home, cwd=tmp_path)
    assert only_error_line(refused) == (
        "edited.yaml: version 2024-11 is in force and would be changed — history is immutable: "
        "add a new version with a later effective_from"
    )
    after = expect(run("policy", "show", "--at", "2025-01-01", "--json", home=home), 0)
    assert after.json() == before.json()
    assert count(home, "policy_revisions") == 1
    rules = next(v["rules"] for v in after.json()["versions"] if v["id"] == "2024-11")
    assert "every region · bookmarks · every purpose → opt_in" in rules


def test_show_at_names_version_in_force_and_next(tmp_path: Path) -> None:
    home = tmp_path / "home"
    expect(run("policy", "apply", EXAMPLE_POLICY, home=home), 0)
    shown = expect(run("policy", "show", "--at", "2024-11-14", "--json", home=home), 0)
    view = shown.json()
    assert view["policy"] == "x-platform"
    assert view["at"] == "2024-11-14T00:00:00+00:00"
    assert view["in_force"] == "2023-09"
    assert view["next"] == {"id": "2024-11", "effective_from": "2024-11-15T00:00:00+00:00"}
    assert [v["id"] for v in view["versions"]] == ["2023-09", "2024-11"]
    assert view["regions"]["US"] == ["US"]
    assert view["hard_exclusions"]["minimum_age"] == 18


def test_diff_prints_each_change_on_one_line(tmp_path: Path) -> None:
    changed = (
        EDITED_IN_FORCE.replace("minimum_age: 18", "minimum_age: 16")
        .replace("  US: [US]", "  US: [US, PR]")
        .replace('notice_periods:\n  "*": 30\n', "")  # 2030-01 turns EEA on and gives no notice
        + '  - id: "2030-01"\n    effective_from: 2030-01-01\n    rules:\n'
        + '      - region: "*"\n        mechanism: opt_out\n'
    )
    (tmp_path / "b.yaml").write_text(changed, encoding="utf-8")
    result = expect(run("policy", "diff", EXAMPLE_POLICY, "b.yaml", home=None, cwd=tmp_path), 0)
    assert result.out_lines == [
        "region US: + PR",
        "hard_exclusions.minimum_age: 18 → 16",
        "version 2024-11 rule: + every region · bookmarks · every purpose → opt_out",
        "version 2024-11 rule: - every region · bookmarks · every purpose → opt_in",
        "version 2030-01: + effective 2030-01-01, 1 rules",
    ]
    assert result.err == ""
