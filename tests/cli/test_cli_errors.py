"""Failures every command shares: usage errors, unreadable paths, and how the process exits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_harness import ABORT_SIGNATURE, DATALEASE, Demo, cli_env, run


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("release", "show", "abc"), "integer"),
        (("consent", "set", "42"), "KEY"),
        (("users", "list", "--bogus"), "--bogus"),
    ],
    ids=["not-an-integer", "missing-argument", "unknown-option"],
)
def test_usage_errors_are_short_and_exit_2(tmp_path: Path, args: tuple[str, ...], mentions: str) -> None:
    result = run(*args, home=tmp_path / "home")
    assert "Traceback" not in result.err, result.describe()
    assert result.code == 2, result.describe()
    assert result.out == ""
    assert mentions.lower() in result.err.lower()
    assert len(result.err_lines) <= 5, result.describe()


def test_validate_a_directory_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    result = run("policy", "validate", "policies", home=tmp_path / "home", cwd=tmp_path)
    assert "Traceback" not in result.err, result.describe()
    assert result.code == 2, result.describe()
    assert result.err_lines[0].startswith("error: policies: "), result.describe()
    assert len(result.err_lines) == 1, result.describe()


def test_lake_reading_commands_exit_cleanly(demo: Demo) -> None:
    """Six plain `users list` runs, two at a time: none may die on the way out."""
    codes: list[int] = []
    for _ in range(3):
        procs = [
            subprocess.Popen(
                [str(DATALEASE), "users", "list", "--limit", "1", "--json"],
                env=cli_env(demo.home),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            codes.append(proc.returncode)
            assert ABORT_SIGNATURE not in err, f"exit {proc.returncode}: {err}"
    assert codes == [0] * 6
