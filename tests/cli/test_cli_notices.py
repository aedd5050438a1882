"""`datalease policy apply` of the X example with its notice published too late (issue 15).

Proves: the real console script refuses the file with FILE:LINE:COL of the `published` date, names the
field and the deadline, exits 2 and stores nothing (no home is created).
"""

from __future__ import annotations

from pathlib import Path

from cli_harness import EXAMPLE_POLICY, expect, run


def test_apply_of_x_2024_with_a_notice_published_too_late_is_refused_at_its_line(tmp_path: Path) -> None:
    late = EXAMPLE_POLICY.read_text(encoding="utf-8").replace(
        "published: 2024-10-16", "published: 2024-11-01"
    )
    (tmp_path / "x-late.yaml").write_text(late, encoding="utf-8")
    line = next(i for i, text in enumerate(late.splitlines(), 1) if "published: 2024-11-01" in text)
    result = expect(run("policy", "apply", "x-late.yaml", home=tmp_path / "h", cwd=tmp_path), 2)
    assert result.err_lines[0].startswith(
        f"x-late.yaml:{line}:18: versions[1].notice.published: published 2024-11-01"
    )
    assert "expected at least 30 days (by 2024-10-16)" in result.err_lines[0]
    assert result.err_lines[-1] == "1 problem(s) found"
    assert not (tmp_path / "h").exists()
