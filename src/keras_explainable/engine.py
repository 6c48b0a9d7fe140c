"""The engine: running compiled steps over batches of inputs.

Explainers, metrics and the command line run their work through this module:
the progress bar they all show lives here.
"""

from __future__ import annotations

import sys

import keras

__all__ = ["progress_bar"]


def progress_bar(
    verbose: str | int, total: int | None, unit: str = "batch"
) -> keras.utils.Progbar | None:
    """Return a Keras progress bar, or None when silent.

    Args:
        verbose: 'auto' (a bar on a terminal when there is more than one
            step), 0 (silent), 1 (a bar) or 2 (one line per run).
        total: the number of steps, or None when unknown.
        unit: the name of a step in the bar ('batch', 'layer', 'image').

    Returns:
        The `keras.utils.Progbar`, or None.

    Example:
        >>> progress = progress_bar("auto", 10)
        >>> if progress is not None:
        ...     progress.add(1)
    """
    if verbose == "auto":
        verbose = 1 if (total is None or total > 1) and sys.stdout.isatty() else 0
    if not verbose:
        return None
    return keras.utils.Progbar(total, verbose=verbose, unit_name=unit)
