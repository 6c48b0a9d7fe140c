"""Validators for the options of explainers, decorators and metrics.

Each is an `attrs` field validator, `validator(instance, attribute, value)`,
that raises a `ValueError` (or `TypeError`) naming the option, what it got and
what it expects, when the object is constructed.

Example:
    >>> @attrs.define(eq=False)
    ... class MyCAM(ke.GradCAM):
    ...     samples: int = attrs.field(default=8, kw_only=True, validator=positive_int)
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

__all__ = [
    "layer_list",
    "non_negative_int",
    "non_negative_number",
    "open_fraction",
    "positive_int",
    "positive_number",
    "check_postprocess",
    "check_seed",
    "check_token_grid",
    "check_verbose",
]


def positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Accept an integer >= 1 (not a bool).

    Raises:
        ValueError: `value` is not a positive integer.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer; got {value!r}.")


def non_negative_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Accept an integer >= 0 (not a bool).

    Raises:
        ValueError: `value` is not an integer >= 0.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{attribute.name} must be an integer >= 0; got {value!r}.")


def _is_finite_number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
    )


def non_negative_number(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Accept a finite real number >= 0 (not a bool).

    Raises:
        ValueError: `value` is not a finite number >= 0.
    """
    if not _is_finite_number(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0; got {value!r}.")


def positive_number(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Accept a finite real number > 0 (not a bool).

    Raises:
        ValueError: `value` is not a finite number > 0.
    """
    if not _is_finite_number(value) or value <= 0:
        raise ValueError(f"{attribute.name} must be a finite number > 0; got {value!r}.")


def open_fraction(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Accept a number strictly between 0 and 1 (a probability or a fraction).

    Raises:
        ValueError: `value` is not a number in (0, 1).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not 0.0 < value < 1.0
    ):
        raise ValueError(f"{attribute.name} must be a number in (0, 1); got {value!r}.")


def check_seed(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Accept an integer seed that fits in 64 bits (signed).

    Raises:
        TypeError: `value` is not an integer.
        ValueError: `value` does not fit in 64 bits.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{attribute.name} must be an integer; got {type(value).__name__}.")
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{attribute.name} must fit in 64 bits; got {value}.")


def check_postprocess(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Accept 'auto', None or a callable.

    Raises:
        ValueError: anything else.
    """
    if value is None or value == "auto" or callable(value):
        return
    raise ValueError(f"postprocess must be 'auto', None (raw maps) or a callable; got {value!r}.")


def check_verbose(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Accept 'auto', 0, 1 or 2.

    Raises:
        ValueError: anything else.
    """
    if value == "auto" or value in (0, 1, 2):
        return
    raise ValueError(f"verbose must be 'auto', 0, 1 or 2; got {value!r}.")


def layer_list(value: Any) -> tuple | None:
    """Converter of `layers=`: a non-empty list or tuple of layer specs, as a tuple.

    Raises:
        TypeError: `value` is a single name or not a list.
        ValueError: `value` is empty.
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(
            "layers must be a list of layers (names, paths, indices or Layers), e.g. "
            f"layers=['conv4_block6_out', 'conv5_block3_out']; got {value!r}. For one "
            "layer pass layer=."
        )
    if not value:
        raise ValueError("layers must list at least one layer; got an empty list.")
    return tuple(value)


def check_token_grid(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Accept None or `(h, w)`: two positive integers.

    Raises:
        ValueError: anything else.
    """
    if value is None:
        return
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in value)
    ):
        raise ValueError(
            f"{attribute.name} must be (rows, columns) of the patch grid, two positive "
            f"integers; got {value!r}."
        )
