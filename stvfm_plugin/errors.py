"""The one exception type whose message is shown to users as is (no traceback), and the exit codes of the commands."""
from __future__ import annotations

import os
import sys
from typing import Callable, Union


class UserError(Exception):
    """A problem the user can fix: wrong path, missing data, bad option.

    The command-line entry points print the message as one paragraph and exit with status 2.
    """


def exit_status(action: Callable[[], object], interrupted: Union[str, Callable[[], str]] = "interrupted.") -> int:
    """Run a command's action: 0 when done, 2 with the message on a `UserError`, 130 with `interrupted` (or what it
    returns, asked at that moment) on Ctrl-C."""
    try:
        action()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted() if callable(interrupted) else interrupted, file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output has gone (e.g. `| head`): stop quietly, as `cat` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0
