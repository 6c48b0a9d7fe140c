"""What every subcommand's parser shares: one-line usage errors and value types."""

from __future__ import annotations

import argparse
import textwrap
from typing import NoReturn

from keras_explainable.cli.errors import PROG

__all__ = ["ArgumentParser", "positive", "wrap"]


class ArgumentParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like the command's.

    Its subcommands' parsers are of the same class, so they report the same
    way. A usage error exits with status 2.
    """

    def error(self, message: str) -> NoReturn:
        """Exit with status 2 after printing `message` as one line."""
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def positive(text: str) -> int:
    """Parse a positive integer option (an argparse `type`)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def wrap(text: str) -> str:
    """Fill a description to the width of `--help`."""
    return textwrap.fill(text, width=78)
