"""User errors: one clear message, no traceback, non-zero exit.

Anything the user can fix (a path, a config key, a value) raises `UserError`. Entry points wrap
`main` in `exit_on_user_error`, which prints the message and exits with status 2; real bugs
still raise with their traceback.
"""

import functools
import sys


class UserError(Exception):
    """An error in the user's input: the message names the file or field and the fix."""


def exit_on_user_error(main):
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper
