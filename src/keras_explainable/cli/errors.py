"""The command line's errors: one line on stderr for each problem of the user's."""

from __future__ import annotations

__all__ = ["PROG", "CommandError", "error_line"]

#: The command's name, which starts each of its error lines.
PROG = "keras-explainable"


class CommandError(Exception):
    """A problem with the user's input, reported as one line."""


def error_line(error: BaseException) -> str:
    """Return the one line that reports `error`: `keras-explainable: error: ...`.

    The message of a `CommandError` or `ValueError` (the library's errors for
    bad input) is shown as is, others after their type's name; an `OSError`
    shows its reason and file name. Line breaks are folded into spaces.
    """
    text = " ".join(str(error).split())
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.strerror}: {error.filename!r}"
    if not isinstance(error, (CommandError, ValueError)) and text:
        text = f"{type(error).__name__}: {text}"
    return f"{PROG}: error: {text or type(error).__name__}"
