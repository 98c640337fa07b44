"""The application's exceptions: a refusal is a rule saying no; anything else is broken."""


class MigrabotError(Exception):
    """Root of the application's own exceptions."""


class Refusal(MigrabotError):
    """A rule said no (bad input, not allowed, lock held …): expected, shown as is, no traceback."""


class IllegalTransition(MigrabotError):
    """Code tried a state change the state table does not allow: a bug, never a user's doing."""
