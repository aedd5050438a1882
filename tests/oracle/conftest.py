"""Fixtures of the oracle tests: the modules of this folder on sys.path (as the other test folders
do), an empty migrated home that each world copies, and an official client that never retries (it
retries 5xx ten times with backoff: a broken server would show up only after minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from delta_sharing.rest_client import DataSharingRestClient  # noqa: E402
from drive import make_template  # noqa: E402


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("oracle-template") / "home")


@pytest.fixture(autouse=True)
def client_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DataSharingRestClient the official functions build gets num_retries=0."""
    monkeypatch.setattr(DataSharingRestClient.__init__, "__defaults__", (0,))
