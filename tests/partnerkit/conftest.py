"""partnerkit tests: the helpers of the release, CLI and sharing tests are imported (for the world
and the real `datalease serve`); partnerkit itself never imports datalease."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for helpers in (HERE, HERE.parent / "releases", HERE.parent / "cli", HERE.parent / "sharing"):
    if str(helpers) not in sys.path:
        sys.path.insert(0, str(helpers))
