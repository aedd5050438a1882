"""`python -m datalease …` is the `datalease` command."""

from datalease.cli import main

main()
