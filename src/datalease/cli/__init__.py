"""The `datalease` command: every operation, with Rich output and errors written for people.

One module per command group (`platform`, `policy`, `consent`, `licensing`, `releases`, `revocation`,
`server`), joined here; each command parses its input, calls one use case of `datalease.services` and
renders the result.
"""

from __future__ import annotations

import gc
import sys

import typer

from datalease.cli import (
    billing,
    consent,
    licensing,
    orders,
    platform,
    policy,
    provenance,
    releases,
    revocation,
    server,
)
from datalease.cli.arguments import check_argument_lengths
from datalease.cli.common import err
from datalease.cli.notices import register as register_notices  # issue 15
from datalease.errors import UserError
from datalease.policy.problems import ProblemsError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="License platform data to AI partners, with consent."
)
for group in (platform, policy, consent, licensing, releases, revocation, server):
    group.register(app)
billing.register(app)
provenance.register(app)
orders.register(app)
register_notices(app)


def main() -> None:
    code = _run()
    # Arrow's reader threads must be joined while Arrow is alive: what only a cycle still holds (an
    # exception's frames, say) is collected now, not at interpreter teardown, where a thread left
    # running aborts the process after its work is done (apache/arrow#34314; seen as exit -6).
    gc.collect()
    sys.exit(code)


def _run() -> int:
    try:
        check_argument_lengths(app, sys.argv[1:])
        code = app(standalone_mode=False)
    except ProblemsError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        err.print(f"{len(exc.problems)} problem(s) found", style="red")
        return 2
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, style="red", soft_wrap=True)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        return 1
    except Exception as exc:
        # Usage errors of the click that typer bundles: show the short usage message, exit 2.
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            return exit_code
        raise
    return code if isinstance(code, int) else 0
