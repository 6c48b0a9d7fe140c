"""The `keras-explainable` command line.

Three commands:

* `keras-explainable demo` explains the bundled shapes classifier with every
  method, writes a gallery PNG and prints each method's speed and pointing-game
  accuracy. Nothing is downloaded.
* `keras-explainable explain MODEL IMAGE...` explains a saved Keras model on
  image files, writing one overlay PNG per image and target and a `.npy` file
  of the maps.
* `keras-explainable evaluate MODEL DATA` scores several methods with several
  metrics on a saved model and a folder of images or a `.npy`/`.npz` file,
  prints the table and writes an HTML report; `--demo` uses the bundled model.

Bad input (a missing or corrupt file, an unknown method, layer or target, an
output that exists) ends the run with one line on stderr,
`keras-explainable: error: ...`, and exit status 1 (2 for malformed command
lines). `--traceback` shows the full traceback instead, for bug reports.

Each command is a module with its parser and its run (`demo`, `explain`,
`evaluate`);
`methods` holds the methods by command-line name and `io` the reading of
models and images. The names below are imported on first use, so that `main`
quiets TensorFlow's start-up logging (`quiet`) before anything imports
TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from keras_explainable import __version__
from keras_explainable.cli.arguments import ArgumentParser
from keras_explainable.cli.errors import PROG, CommandError, error_line
from keras_explainable.cli.quiet import quiet_tensorflow

__all__ = [
    "METHODS",
    "CommandError",
    "MethodSpec",
    "available_methods",
    "load_model",
    "main",
    "preprocess",
]

# Public name -> the module that defines it, imported on first use (methods imports
# TensorFlow).
_EXPORTS = {
    "load_model": "keras_explainable.cli.io",
    "preprocess": "keras_explainable.cli.io",
    "METHODS": "keras_explainable.cli.methods",
    "MethodSpec": "keras_explainable.cli.methods",
    "available_methods": "keras_explainable.cli.methods",
}

_EXAMPLES = """\
examples:
  keras-explainable demo                      # no download: see every method
  keras-explainable explain model.keras cat.jpg --method gradcam
  keras-explainable evaluate --demo           # which method is faithful? (HTML report)
  keras-explainable explain --help
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments without the program name; default `sys.argv[1:]`.

    Returns:
        The exit status: 0 on success, 1 on bad input, 2 on a malformed
        command line, 130 when interrupted.

    Example:
        >>> main(["demo", "--images", "8"])
        0
    """
    quiet_tensorflow()  # first: building the parser imports TensorFlow
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return args.run(args)
    except (CommandError, ValueError, TypeError, OSError) as error:
        if args.traceback:
            raise
        print(error_line(error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """Return the command line's parser, with a subparser per command.

    Each command's module adds its own subparser (`add_parser`), whose
    defaults hold the function that runs it (`run`).
    """
    from keras_explainable.cli import demo, evaluate, explain

    parser = ArgumentParser(
        prog=PROG,
        description="Explain the predictions of Keras models from the shell.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="on errors, show the full traceback (for bug reports)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (demo, explain, evaluate):
        command.add_parser(commands)
    return parser


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from keras_explainable.cli.io import load_model, preprocess
    from keras_explainable.cli.methods import METHODS, MethodSpec, available_methods
