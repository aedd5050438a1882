"""Named crash points, so tests can `kill -9` a real process at an exact moment of a write path.

`crashpoint("after_table:posts")` kills the current process with SIGKILL when the environment
variable DATALEASE_CRASHPOINT names that point; otherwise it does nothing. Nothing else reads it.
"""

from __future__ import annotations

import os
import signal

ENV = "DATALEASE_CRASHPOINT"


def crashpoint(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
