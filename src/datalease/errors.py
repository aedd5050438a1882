"""The one exception type the CLI and API turn into a message for a person (and a non-zero exit)."""


class UserError(Exception):
    """Bad input or a missing precondition, explained in words: what was given, what was expected."""
