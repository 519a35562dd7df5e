"""The one exception type for errors a user can cause.

Every layer (spaces, store, searchers, CLI) raises ``UserError`` for bad input so that the command
line can print the message without a traceback and exit with status 2. The message must say what
was wrong and what to do about it.
"""


class UserError(ValueError):
    """Bad input from a user: a malformed arch string, an unknown dataset, a corrupt file, ..."""
