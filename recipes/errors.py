"""User errors: one clear message, no traceback, non-zero exit.

Anything the user can fix (a path, a config key, a value) raises `UserError`. Entry points wrap
`main` in `exit_on_user_error`, which prints the message and exits with status 2; real bugs
still raise with their traceback. Ctrl-C (SIGINT) ends in one line that says how to go on, and
exit status 130 (128 + SIGINT), as a shell reports an interrupted command.
"""

import functools
import sys
from collections.abc import Callable

INTERRUPTED_EXIT_STATUS = 130


class UserError(Exception):
    """An error in the user's input: the message names the file or field and the fix."""


def _start_again() -> str:
    return "rerun the same command to start again."


# What rerunning an interrupted command does. The run sets it once it knows its output folder
# (recipes/runs/start.py `start_run`); read only when Ctrl-C arrives.
_how_to_go_on: Callable[[], str] = _start_again


def on_interrupt(how_to_go_on: Callable[[], str]) -> None:
    """Say what the line printed on Ctrl-C tells the user to do (called by start_run)."""
    global _how_to_go_on
    _how_to_go_on = how_to_go_on


def exit_on_user_error(main):
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        global _how_to_go_on
        _how_to_go_on = _start_again  # an earlier main in this process (tests) left its own
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print(f"interrupted: {_how_to_go_on()}", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT_STATUS)

    return wrapper
