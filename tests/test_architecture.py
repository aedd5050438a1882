"""The layout of ../shared/ARCHITECTURE.md, held by tests (the layer order itself: `lint-imports`).

- the store is an adapter: it imports the domain's models, never its logic;
- no module reaches into another module's private names;
- no import hides inside a function in datalease, except the CLI's (start-up time: a command loads only
  what it runs; partnerkit imports its optional model libraries when asked for them);
- no module of src/ (migrations aside) is over ~400 lines;
- every CLI command and every `DATALEASE_*` setting is documented.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import typer

from datalease.cli import app
from datalease.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PACKAGE = SRC / "datalease"
MAX_LINES = 420
# What store/ may import of datalease besides itself: models, the vocabulary, small utilities.
STORE_MAY_IMPORT = (
    "datalease.store",
    "datalease.consent.chain",
    "datalease.consent.digest",
    "datalease.licensing.model",
    "datalease.licensing.tokens",
    "datalease.platform.events",
    "datalease.policy.model",
    "datalease.policy.vocabulary",
    "datalease.releases.model",
    "datalease.revocation.model",
    "datalease.sharing.model",
    "datalease.billing.model",
    "datalease.errors",
    "datalease.timeparse",
)


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        yield name, path, ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree: ast.Module) -> Iterator[tuple[ast.ImportFrom | ast.Import, bool]]:
    """Every import, and whether it sits inside a function."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.ImportFrom | ast.Import, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            yield from walk(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    yield from walk(tree, False)


def test_the_store_imports_only_domain_models() -> None:
    wrong = []
    for name, _path, tree in _modules():
        if not name.startswith("datalease.store"):
            continue
        for node, _ in _imports(tree):
            targets = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            for target in targets:
                if target.startswith("datalease") and not target.startswith(STORE_MAY_IMPORT):
                    wrong.append(f"{name} imports {target}")
    assert not wrong, wrong


def test_no_module_imports_a_private_name_of_another() -> None:
    wrong = []
    for name, _path, tree in _modules():
        for node, _ in _imports(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                ("datalease", "partnerkit")
            ):
                wrong += [
                    f"{name}: from {node.module} import {a.name}"
                    for a in node.names
                    if a.name.startswith("_")
                ]
    assert not wrong, wrong


# Third-party modules a function may import when it needs them, for what importing them costs every
# process at start-up (measured: `python -X importtime -c "import datalease.cli"`). Never one of ours:
# an import of ours inside a function would be dodging a cycle (ARCHITECTURE.md).
DEFERRED_FOR_START_UP: Final = {
    "alembic": "~0.3 s; only a store behind the head runs a migration",
    "alembic.config": "with alembic",
    "alembic.script": "with alembic",
    "pyarrow.dataset": "~0.4 s: it imports pandas; only what scans a dataset needs it",
}


def test_imports_sit_at_the_top_of_modules_outside_the_cli() -> None:
    wrong = []
    for name, _path, tree in _modules():
        if not name.startswith("datalease.") or name.startswith("datalease.cli"):
            continue
        for node, in_function in _imports(tree):
            targets = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            if in_function and not all(t in DEFERRED_FOR_START_UP for t in targets):
                wrong.append(f"{name}:{node.lineno} imports {', '.join(targets)} inside a function")
    assert not wrong, wrong


def test_no_module_is_over_400_lines() -> None:
    long = {name: n for name, path, _ in _modules() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def _documentation() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)


def _commands(group: Any, prefix: str = "") -> Iterator[str]:
    for name, command in sorted(group.commands.items()):
        full = f"{prefix} {name}".strip()
        if hasattr(command, "commands"):
            yield from _commands(command, full)
        else:
            yield full


def test_every_command_is_documented() -> None:
    text = _documentation()
    group = typer.main.get_command(app)
    missing = [c for c in _commands(group) if not re.search(rf"datalease {re.escape(c)}\b", text)]
    assert not missing, f"commands not in README.md or docs/: {missing}"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    assert f"DATALEASE_{field.upper()}" in _documentation(), f"DATALEASE_{field.upper()} is not documented"
