"""How much the generated tests search: CI's budget by default, far more with DATALEASE_TEST_DEPTH=deep.

`make test` (and CI) runs each generated test at the `ci` count it names, chosen so the suite stays
near 30 minutes on 2 cores; `make test-deep` runs the `deep` counts (the two compilers over 500
worlds, 100 oracle worlds, …). Tests that are not derandomized draw new examples on every run, so CI
keeps widening what has been tried."""

from __future__ import annotations

import os
from typing import Final

DEPTH_ENV: Final = "DATALEASE_TEST_DEPTH"
_DEPTHS: Final = ("ci", "deep")


def _depth() -> str:
    value = os.environ.get(DEPTH_ENV, "ci")
    if value not in _DEPTHS:
        raise ValueError(f"{DEPTH_ENV}={value!r}: expected one of {', '.join(_DEPTHS)}")
    return value


DEEP: Final = _depth() == "deep"


def examples(ci: int, deep: int) -> int:
    """The number of examples (or worlds) to run at this depth."""
    return deep if DEEP else ci
