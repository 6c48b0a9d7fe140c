"""Targets: which output units an explanation explains.

Users pass `y` in one of five forms (None, an int, shape `(N,)`, shape `(N, L)`,
or a callable). `TargetPlan` validates it on the host before any work starts;
`Targets` selects the explained scores from the model's outputs inside the
compiled step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.errors import TargetError

__all__ = ["TargetPlan", "Targets", "plan_targets"]

TOP = "top"
INDEX = "index"
FUNCTION = "function"


@attrs.frozen(eq=False)
class Targets:
    """The targets of one batch, used inside the compiled step.

    Attributes:
        kind: 'top' (the top predicted unit), 'index' or 'function'.
        indices: `(N, L)` int64 unit indices for kind 'index', else None.
        function: the user's `outputs -> (N, L)` callable for kind 'function'.

    Example:
        In a method's `_attribute`, whatever form the user's `y` took:

        >>> features, outputs = self._forward(inputs)
        >>> scores, indices = targets.select(outputs)   # (N, L) and (N, L)
    """

    kind: str
    indices: tf.Tensor | None = None
    function: Callable | None = None

    def select(self, outputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Return the explained scores `(N, L)` and unit indices `(N, L)`.

        For kind 'function' the indices are -1: a custom objective has no unit.
        """
        if self.kind == FUNCTION:
            scores = tf.convert_to_tensor(self.function(outputs))
            scores = tf.cast(scores, tf.float32)
            if scores.shape.rank == 1:
                scores = scores[:, None]
            if scores.shape.rank != 2:
                raise TargetError(
                    "A target callable must return scores of shape (N,) or (N, L); "
                    f"got shape {scores.shape}."
                )
            if scores.shape[1] is None:
                raise TargetError(
                    "A target callable must return a statically known number of "
                    "scores per sample (the L of (N, L))."
                )
            indices = -tf.ones(tf.shape(scores), dtype=tf.int64)
            return scores, indices
        outputs = tf.cast(outputs, tf.float32)
        if self.kind == TOP:
            indices = tf.argmax(outputs, axis=-1, output_type=tf.int64)[:, None]
        else:
            indices = tf.cast(self.indices, tf.int64)
        scores = tf.gather(outputs, indices, batch_dims=1)
        return scores, indices

    def tiled(self, copies: int) -> Targets:
        """Return the targets of `copies` copies of the batch, stacked.

        The copies are stacked along the batch axis, copy-major (all samples
        of copy 0, then all samples of copy 1, ...).
        """
        if self.kind != INDEX:
            return self
        return Targets(INDEX, indices=tf.tile(self.indices, [copies, 1]))

    def fixed(self, outputs: tf.Tensor) -> Targets:
        """Resolve 'top' targets on these outputs.

        Later passes on perturbed inputs (noise, augmentation) then explain
        the same units.
        """
        if self.kind != TOP:
            return self
        _, indices = self.select(outputs)
        return Targets(INDEX, indices=indices)


@attrs.frozen
class TargetPlan:
    """Host-side, validated targets for a whole call of `explain`.

    Attributes:
        kind: 'top', 'index' or 'function'.
        indices: `(N, L)` int64 array for 'index' targets given as an array,
            or None when targets come per batch (int, dataset) or are not indices.
        constant: the unit index when `y` was one int, else None.
        count: L, the number of targets per sample (None for callables until traced).
        function: the callable for kind 'function'.
    """

    kind: str
    indices: np.ndarray | None = None
    constant: int | None = None
    count: int | None = 1
    function: Callable | None = None

    def targets(self, indices: tf.Tensor) -> Targets:
        """The `Targets` of one batch inside a compiled step.

        Args:
            indices: the batch's `(n, L)` int64 indices (`(n, 0)` when the
                targets are not indices).
        """
        return Targets(
            self.kind, indices=indices if self.kind == INDEX else None, function=self.function
        )

    def batch(self, start: int, stop: int, batch_targets: Any = None) -> np.ndarray:
        """The `(n, L)` int64 indices for samples `start:stop` of the input."""
        n = stop - start
        if batch_targets is not None:
            return batch_targets
        if self.kind != INDEX:
            return np.zeros((n, 0), dtype=np.int64)
        if self.constant is not None:
            return np.full((n, 1), self.constant, dtype=np.int64)
        return self.indices[start:stop]


def _check_range(indices: np.ndarray, units: int | None) -> None:
    if indices.size == 0:
        return
    low, high = int(indices.min()), int(indices.max())
    if low < 0:
        raise TargetError(f"Target index {low} is negative; targets are unit indices >= 0.")
    if units is not None and high >= units:
        raise TargetError(
            f"Target index {high} is out of range: the explained output has {units} "
            f"units (valid indices 0..{units - 1})."
        )


def as_index_array(y: Any, n: int | None, units: int | None) -> np.ndarray:
    """Validate per-sample targets and return them as `(N, L)` int64."""
    array = np.asarray(y)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        hint = " For one-hot labels pass y.argmax(-1)." if array.ndim == 2 else ""
        raise TypeError(
            f"Targets must be integer unit indices; got an array of dtype {array.dtype}." + hint
        )
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise TargetError(f"Targets must have shape (N,) or (N, L); got shape {np.shape(y)}.")
    if n is not None and array.shape[0] != n:
        raise TargetError(
            f"Got {array.shape[0]} targets for {n} inputs; y must have one row per input."
        )
    if array.shape[1] == 0:
        raise TargetError("Targets of shape (N, 0) explain nothing; give at least one.")
    array = array.astype(np.int64)
    _check_range(array, units)
    return array


def plan_targets(
    y: Any, n: int | None, units: int | None, output_shape: tuple | None
) -> TargetPlan:
    """Validate `y` against the inputs and the explained output.

    Args:
        y: None, an int, an array of shape `(N,)` or `(N, L)`, or a callable.
        n: the number of inputs, or None when unknown (a dataset).
        units: the number of units of a `(N, K)` output, or None.
        output_shape: the explained output's shape, or None when unknown.

    Returns:
        The `TargetPlan`.

    Raises:
        TargetError: wrong length or shape, or an index out of range.
        TypeError: targets that are not integers.
    """
    if callable(y):
        return TargetPlan(FUNCTION, count=None, function=y)
    if output_shape is not None and len(output_shape) != 2:
        raise TargetError(
            f"The explained output has shape {output_shape}, not (N, units): unit "
            "indices are ambiguous. Pass a callable y=lambda outputs: ... returning "
            "(N,) or (N, L) scores (for example a mask-weighted sum for segmentation)."
        )
    if y is None:
        return TargetPlan(TOP)
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
        _check_range(np.array([[int(y)]]), units)
        return TargetPlan(INDEX, constant=int(y))
    if isinstance(y, bool):
        raise TypeError("Targets must be integer unit indices; got a bool.")
    if isinstance(y, tf.Tensor):
        y = y.numpy()
    array = np.asarray(y)
    if array.ndim == 0:
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"Targets must be integer unit indices; got {y!r}.")
        return plan_targets(int(array), n, units, output_shape)
    indices = as_index_array(array, n, units)
    return TargetPlan(INDEX, indices=indices, count=indices.shape[1])
