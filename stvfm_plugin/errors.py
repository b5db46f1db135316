"""The one exception type whose message is shown to users as is (no traceback)."""


class UserError(Exception):
    """A problem the user can fix: wrong path, missing data, bad option.

    The command-line entry points print the message as one paragraph and exit with status 2.
    """
