"""Target plans: which output units an explanation explains, batch by batch.

Users pass `y` in one of six forms (None, an int, shape `(N,)`, shape `(N, L)`,
a callable, or a target object such as `ke.targets.Segmentation`). `TargetPlan`
validates it on the host before any work starts and cuts the per-sample data
(target indices, a target object's masks or boxes, an explainer's own
per-sample arrays) into each batch's *feed*; `Targets` selects the explained
scores from the model's outputs inside the compiled step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.errors import InputError, ModelStructureError, TargetError
from keras_explainable.targets.target import Class, Target

__all__ = ["TargetPlan", "Targets", "plan_targets"]

TOP = "top"
INDEX = "index"
FUNCTION = "function"
OBJECT = "object"
#: The `Targets.data` entry of a target object's units fixed on the clean inputs.
FIXED_UNITS = "fixed units"


@attrs.frozen(eq=False)
class Targets:
    """The targets of one batch, used inside the compiled step.

    Attributes:
        kind: 'top' (the top predicted unit), 'index', 'function' or 'object'.
        indices: `(N, L)` int64 unit indices for kind 'index', else None.
        function: the user's `outputs -> (N, L)` callable for kind 'function'.
        target: the `Target` object for kind 'object'.
        data: the batch's per-sample tensors `(N, ...)` by name: a target
            object's (masks, boxes) and the explainer's own (see
            `Explainer._sample_data`). They follow the batch: `tiled` tiles them.
        outputs_view: a function applied to the outputs before the scores are
            read, or None: `TTA` un-flips a flipped input's segmentation map
            with it, so a mask still covers the pixels it was drawn on.

    Example:
        In a method's `_attribute`, whatever form the user's `y` took:

        >>> features, outputs = self._forward(inputs)
        >>> scores, indices = targets.select(outputs)   # (N, L) and (N, L)
    """

    kind: str
    indices: tf.Tensor | None = None
    function: Callable | None = None
    target: Target | None = None
    data: dict = attrs.field(factory=dict)
    outputs_view: Callable | None = None

    @property
    def reads_probabilities(self) -> bool:
        """Whether methods may score these targets on probabilities (see `Target`)."""
        return self.target is None or self.target.reads_probabilities

    def input_suffix(self, samples: tf.Tensor) -> tf.Tensor | None:
        """Token ids `(samples, S)` run after a text model's inputs (`Target.input_suffix`)."""
        if self.kind != OBJECT:
            return None
        return self.target.input_suffix(samples, self.data)

    def select(self, outputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Return the explained scores `(N, L)` and unit indices `(N, L)`.

        For kind 'function' the indices are -1: a custom objective has no unit.
        A target object gives its own (-1 where a score is not one unit's).
        """
        if self.outputs_view is not None:
            outputs = self.outputs_view(outputs)
        if self.kind == OBJECT:
            if FIXED_UNITS in self.data:
                scores, units = self.target.scores(outputs, self.data), self.data[FIXED_UNITS]
            else:
                scores, units = self.target.select(outputs, self.data)
            scores = tf.cast(scores, tf.float32)
            if scores.shape.rank != 2 or scores.shape[1] != self.target.count:
                raise TargetError(
                    f"{type(self.target).__name__}.scores must return (N, "
                    f"{self.target.count}) scores; got shape {tuple(scores.shape)}."
                )
            return scores, tf.cast(units, tf.int64)
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
        data = {
            name: tf.tile(value, tf.concat([[copies], tf.ones([tf.rank(value) - 1], tf.int32)], 0))
            for name, value in self.data.items()
        }
        indices = self.indices
        if self.kind == INDEX:
            indices = tf.tile(indices, [copies, 1])
        return attrs.evolve(self, indices=indices, data=data)

    def fixed(self, outputs: tf.Tensor) -> Targets:
        """Resolve 'top' targets on these outputs; record a target object's units.

        Later passes on perturbed inputs (noise, augmentation) then explain
        the same units. A target object still computes its scores on each
        pass (a `Box` matches the detections of each perturbed input), but
        the units it reports are those of these (clean) outputs.
        """
        if self.kind == OBJECT:
            _, units = self.select(outputs)
            return attrs.evolve(self, data={**self.data, FIXED_UNITS: units})
        if self.kind != TOP:
            return self
        _, indices = self.select(outputs)
        return attrs.evolve(self, kind=INDEX, indices=indices)


@attrs.frozen
class TargetPlan:
    """Host-side, validated targets for a whole call of `explain`.

    Attributes:
        kind: 'top', 'index', 'function' or 'object'.
        indices: `(N, L)` int64 array for 'index' targets given as an array,
            or None when targets come per batch (int, dataset) or are not indices.
        constant: the unit index when `y` was one int, else None.
        count: L, the number of targets per sample (None for callables until traced).
        function: the callable for kind 'function'.
        target: the target object for kind 'object'.
        data: per-sample arrays `(N, ...)` by name, fed batch by batch with
            the inputs: the target object's and the explainer's own.
    """

    kind: str
    indices: np.ndarray | None = None
    constant: int | None = None
    count: int | None = 1
    function: Callable | None = None
    target: Target | None = None
    data: dict = attrs.field(factory=dict)

    def targets(self, feed: dict) -> Targets:
        """The `Targets` of one batch inside a compiled step.

        Args:
            feed: the batch's feed (see `feed_spec`): `"indices"`, `(n, L)` int64
                (`(n, 0)` when the targets are not indices), and `"data"`, the
                batch's rows of the per-sample arrays.
        """
        indices = feed["indices"]
        return Targets(
            self.kind,
            indices=indices if self.kind == INDEX else None,
            function=self.function,
            target=self.target,
            data=dict(feed["data"]),
        )

    def with_data(self, data: dict[str, np.ndarray]) -> TargetPlan:
        """Return the plan with more per-sample arrays (an explainer's own)."""
        clash = set(data) & set(self.data)
        if clash:
            raise ValueError(f"Per-sample data {sorted(clash)} is given twice.")
        return attrs.evolve(self, data={**self.data, **data})

    def check_count(self, count: int | None) -> None:
        """Check the per-sample arrays cover `count` inputs (None: unknown yet).

        Raises:
            InputError: an array has a different number of rows.
        """
        for name, array in self.data.items():
            if count is not None and len(array) != count:
                raise InputError(
                    f"The per-sample {name!r} has {len(array)} rows for {count} inputs; "
                    "give one row per input."
                )

    def batch_data(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """The rows `start:stop` of the per-sample arrays.

        Raises:
            InputError: the inputs have more samples than an array has rows (a
                dataset, whose length was unknown).
        """
        for name, array in self.data.items():
            if stop > len(array):
                raise InputError(
                    f"The inputs have more samples than the {len(array)} rows of the "
                    f"per-sample {name!r}; give one row per input."
                )
        return {name: array[start:stop] for name, array in self.data.items()}

    def feed_spec(self, count: int) -> dict:
        """The `tf.TensorSpec`s of a batch's feed with `count` target indices per sample.

        A feed is `{"indices": (n, L) int64, "data": {name: (n, ...)}}`: the
        rows of `batch` and `batch_data` for the batch's samples.
        """
        return {
            "indices": tf.TensorSpec((None, count), tf.int64),
            "data": {
                name: tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype))
                for name, array in self.data.items()
            },
        }

    def finished(self, targets: np.ndarray) -> None:
        """Let a target object look at the recorded targets after a run."""
        if self.target is not None:
            self.target.finished(targets)

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
    y: Any,
    n: int | None,
    units: int | None,
    output_shape: Any,
    output_names: list[str] | None = None,
) -> TargetPlan:
    """Validate `y` against the inputs and the explained output.

    Args:
        y: None, an int, an array of shape `(N,)` or `(N, L)`, a callable or
            a target object (`ke.targets`).
        n: the number of inputs, or None when unknown (a dataset).
        units: the number of units of a `(N, K)` output, or None.
        output_shape: the explained output's shape, or a dict/list of shapes
            when all the outputs of a multi-output model are explained, or
            None when unknown.
        output_names: the outputs' names when all are explained, else None.

    Returns:
        The `TargetPlan`.

    Raises:
        TargetError: wrong length or shape, an index out of range, or a
            target object that does not fit the outputs.
        ModelStructureError: unit targets on a multi-output model explained
            on all its outputs.
        TypeError: targets that are not integers.
    """
    if isinstance(y, Class):
        y = y.index
    if isinstance(y, Target):
        if output_names is not None and not y.reads_all_outputs:
            raise ModelStructureError(
                f"The model has {len(output_names)} outputs {output_names}; "
                f"{type(y).__name__} explains one: choose it with output=<name or index>."
            )
        y.check(output_shape, n)
        data = {name: np.asarray(array) for name, array in y.sample_data().items()}
        return TargetPlan(OBJECT, count=y.count, target=y, data=data)
    if callable(y):
        return TargetPlan(FUNCTION, count=None, function=y)
    if output_names is not None:
        raise ModelStructureError(
            f"The model has {len(output_names)} outputs {output_names}; choose the one to "
            "explain with output=<name or index>, or pass a target that reads them all "
            "(a callable of the outputs, or ke.targets.Box for a detector)."
        )
    if output_shape is not None and len(output_shape) != 2:
        raise TargetError(
            f"The explained output has shape {output_shape}, not (N, units): unit "
            "indices are ambiguous. Pass a target object (ke.targets.Segmentation(mask, "
            "k) for a segmentation map, ke.targets.NextToken(token_id) or "
            "ke.targets.Continuation(token_ids) for a language model's logits (N, T, "
            "vocabulary), ke.targets.Regression()) or a callable y=lambda outputs: ... "
            "returning (N,) or (N, L) scores."
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
