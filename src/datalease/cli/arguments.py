"""A bound on the length of every command-line argument, checked before a command runs.

No id, key, name, instant, path or URL that `datalease` takes is longer than MAX_ARGUMENT_CHARS, so a
longer argument is a mistake (or hostile) and is refused in one line that names the option or the
argument, instead of being carried into a lookup, the store or an error message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.main import get_command

from datalease.errors import UserError

MAX_ARGUMENT_CHARS: Final = 4096  # PATH_MAX on Linux, the longest path a command could be given
_SHOWN_CHARS: Final = 20


def check_argument_lengths(app: typer.Typer, argv: Sequence[str]) -> None:
    """UserError naming the first argument of `argv` longer than MAX_ARGUMENT_CHARS, if there is one."""
    for index, argument in enumerate(argv):
        if len(argument) > MAX_ARGUMENT_CHARS:
            name = _parameter_name(get_command(app), argv, index)
            raise UserError(
                f"{name}: {len(argument):,} characters; expected at most {MAX_ARGUMENT_CHARS:,} "
                "characters in one argument"
            )


def _parameter_name(command: object, argv: Sequence[str], target: int) -> str:
    """The option (`--id`) or argument (`KEY`) that `argv[target]` is the value of.

    Walks the subcommand names, then reads the rest the way click does: `--opt=value`, `--opt value`
    (unless the option is a flag), `--` ends the options, anything else fills the next argument.
    """
    index = 0
    while isinstance(command, TyperGroup) and index < len(argv) and argv[index] in command.commands:
        command = command.commands[argv[index]]
        index += 1
    params = getattr(command, "params", [])
    flags = {"--help"} | {
        opt
        for p in params
        if isinstance(p, TyperOption) and p.is_flag
        for opt in (*p.opts, *p.secondary_opts)
    }
    arguments = [p.metavar or p.name.upper() for p in params if isinstance(p, TyperArgument) and p.name]
    positional = 0
    options_ended = False
    while index < len(argv):
        token = argv[index]
        if not options_ended and token == "--":
            options_ended = True
        elif not options_ended and token.startswith("-") and token != "-":
            option, has_value, _ = token.partition("=")
            if index == target:
                return option if has_value else _shown(token)
            if not has_value and token not in flags:
                index += 1
                if index == target:
                    return token
        else:
            if index == target:
                return arguments[positional] if positional < len(arguments) else _shown(token)
            positional += 1
        index += 1
    return _shown(argv[target])


def _shown(argument: str) -> str:
    return f"argument {argument[:_SHOWN_CHARS]!r}…"
