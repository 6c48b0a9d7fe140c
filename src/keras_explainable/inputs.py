"""Input sources: numpy arrays, tensors and `tf.data` datasets, validated.

A source yields `(start, x_batch, y_batch)` batches. Arrays are validated whole
before any work starts (rank, shape, dtype, emptiness, NaN/Inf); datasets are
checked for rank and shape from their element spec, and for finite values batch
by batch inside the compiled step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.errors import InputError, TargetError

__all__ = ["InputSource", "make_source"]


def _describe(shape: tuple) -> str:
    return "(" + ", ".join("N" if i == 0 else str(s) for i, s in enumerate(shape)) + ")"


def check_shape(shape: tuple, expected: tuple | None) -> None:
    """Check a batch shape `(N, ...)` against the model's input shape."""
    if expected is None:
        if len(shape) < 2:
            raise InputError(f"Inputs must have a batch axis; got shape {shape}.")
        return
    if len(shape) != len(expected):
        hint = ""
        if len(shape) == len(expected) - 1:
            hint = " For a single sample, add a batch axis: x[None]."
        raise InputError(
            f"Inputs have rank {len(shape)} (shape {tuple(shape)}), but the model "
            f"expects rank {len(expected)}: {_describe(expected)}.{hint}"
        )
    for axis, (got, want) in enumerate(zip(shape[1:], expected[1:], strict=True), start=1):
        if got is not None and want is not None and got != want:
            raise InputError(
                f"Inputs have shape {tuple(shape)}, but the model expects "
                f"{_describe(expected)} (axis {axis} is {got}, expected {want})."
            )


def _check_dtype(dtype: Any) -> None:
    dtype = np.dtype(dtype)
    if dtype.kind == "b" or not np.issubdtype(dtype, np.number):
        raise TypeError(f"Inputs must be numeric (float or integer images); got dtype {dtype}.")
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"Inputs must be real numbers; got dtype {dtype}.")


def check_finite(x: np.ndarray) -> None:
    """Raise InputError naming the first sample with NaN or Inf values."""
    if np.issubdtype(x.dtype, np.integer):
        return
    finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InputError(
            f"Inputs contain NaN or Inf values (in {bad.size} sample(s), first at "
            f"index {int(bad[0])}); clean or drop them before explaining."
        )


@attrs.define
class InputSource:
    """Batches of inputs (and optional per-batch targets) to explain.

    Attributes:
        count: the number of samples, or None when unknown (a dataset).
        batches: the number of batches, or None when unknown.
        spec: `tf.TensorSpec` of one batch of inputs, batch axis None.
        has_targets: whether the source yields its own targets.
    """

    count: int | None
    batches: int | None
    spec: tf.TensorSpec
    has_targets: bool
    _array: Any = None
    _dataset: tf.data.Dataset | None = None
    _batch_size: int = 32

    def iterate(self, skip_batches: int = 0) -> Iterator[tuple[int, Any, np.ndarray | None]]:
        """Yield `(start, x_batch, y_batch_or_None)`, after `skip_batches` batches."""
        if self._array is not None:
            for start in range(skip_batches * self._batch_size, self.count, self._batch_size):
                yield start, self._array[start : start + self._batch_size], None
            return
        # A dataset may yield empty batches; they are dropped before batches
        # are counted, so that a resumed run skips exactly the batches it
        # wrote. (The model must not see one: see `distribute._replica_slices`.)
        dataset = self._dataset.filter(
            lambda *element: tf.shape(tf.nest.flatten(element)[0])[0] > 0
        )
        start = 0
        if skip_batches:
            # Count the skipped samples without running the explainer on them.
            for element in dataset.take(skip_batches):
                start += int(self._split(element)[0].shape[0])
            dataset = dataset.skip(skip_batches)
        for element in dataset:
            x, y = self._split(element)
            yield start, x, None if y is None else np.asarray(y)
            start += int(x.shape[0])

    def __iter__(self) -> Iterator[tuple[int, Any, np.ndarray | None]]:
        """Yield `(start, x_batch, y_batch_or_None)`."""
        return self.iterate()

    def _split(self, element: Any) -> tuple[Any, Any]:
        if self.has_targets:
            return element[0], element[1]
        return (element[0] if isinstance(element, (tuple, list)) else element), None

    def as_dataset(
        self,
        indices: np.ndarray | None,
        count: int,
        constant: int | None = None,
        data: dict[str, np.ndarray] | None = None,
    ) -> tf.data.Dataset:
        """Batches of `(positions, x, feed)` for distributed runs.

        Args:
            indices: `(N, L)` targets by position, or None to take them from
                the dataset (or to use `constant`, or `(n, 0)` placeholders).
            count: L, the number of target columns.
            constant: the unit to explain for every sample (`y` an int), or None.
            data: per-sample arrays `(N, ...)` by name, fed with the inputs.

        Returns:
            A dataset of global batches of `batch_size` samples, whose feed is
            `{"indices": (n, L), "data": {name: (n, ...)}}` (see `TargetPlan.feed`).
        """
        fill = 0 if constant is None else constant
        data = data or {}
        if self._array is not None:
            if indices is None:
                indices = np.full((self.count, count), fill, np.int64)
            positions = np.arange(self.count, dtype=np.int64)
            feed = {"indices": indices, "data": data}
            dataset = tf.data.Dataset.from_tensor_slices((positions, self._array, feed))
        else:
            has_targets = self.has_targets
            # A dataset without its own targets is explained on `y` (an array
            # by position, or an int) like the local loop does (`TargetPlan.batch`).
            table = None if indices is None else tf.constant(indices, tf.int64)
            tables = {name: tf.constant(array) for name, array in data.items()}

            def sample(position: tf.Tensor, element: Any) -> tuple:
                if has_targets:
                    x, y = element[0], element[1]
                    y = tf.reshape(tf.cast(y, tf.int64), [count])
                else:
                    x = element[0] if isinstance(element, (tuple, list)) else element
                    if table is None:
                        y = tf.fill([count], tf.constant(fill, tf.int64))
                    else:
                        y = tf.gather(table, position)
                for name, array in tables.items():
                    tf.debugging.assert_less(
                        position,
                        tf.cast(tf.shape(array)[0], position.dtype),
                        message=f"The inputs have more samples than the rows of the "
                        f"per-sample {name!r}; give one row per input.",
                    )
                rows = {name: tf.gather(array, position) for name, array in tables.items()}
                return position, x, {"indices": y, "data": rows}

            dataset = self._dataset.unbatch().enumerate().map(sample)
        return dataset.batch(self._batch_size)


def make_source(x: Any, expected_shape: tuple | None, batch_size: int, y: Any) -> InputSource:
    """Validate inputs and wrap them as an `InputSource`.

    Args:
        x: a numpy array, a `tf.Tensor`, anything array-like, or a
            `tf.data.Dataset` yielding `x` or `(x, y)` (batched or not).
        expected_shape: the model's input shape with the batch axis, or None.
        batch_size: samples per batch for arrays and unbatched datasets.
        y: the user's targets (used here only to reject array targets combined
            with a dataset that has its own).

    Returns:
        The `InputSource`.

    Raises:
        InputError: wrong rank or shape, empty input, NaN/Inf values.
        TypeError: non-numeric inputs.
    """
    if isinstance(x, tf.data.Dataset):
        return _dataset_source(x, expected_shape, batch_size, y)
    if isinstance(x, (tf.Tensor, tf.Variable)):
        x = x.numpy()
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as error:
            raise TypeError(
                f"Inputs must be an array, a tensor or a tf.data.Dataset: {error}"
            ) from error
    _check_dtype(x.dtype)
    check_shape(x.shape, expected_shape)
    if x.shape[0] == 0:
        raise InputError("Inputs are empty (0 samples); nothing to explain.")
    check_finite(x)
    spec = tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype))
    batches = -(-x.shape[0] // batch_size)
    return InputSource(int(x.shape[0]), batches, spec, False, array=x, batch_size=batch_size)


def _dataset_source(
    dataset: tf.data.Dataset, expected_shape: tuple | None, batch_size: int, y: Any
) -> InputSource:
    spec = dataset.element_spec
    has_targets = isinstance(spec, (tuple, list))
    x_spec = spec[0] if has_targets else spec
    if isinstance(spec, dict) or not isinstance(x_spec, tf.TensorSpec):
        raise TypeError(f"A dataset must yield x or (x, y) tensors; got element spec {spec}.")
    if has_targets and len(spec) > 1 and y is not None:
        raise TargetError(
            "The dataset yields its own targets (x, y); do not also pass y to explain()."
        )
    shape = tuple(x_spec.shape)
    if expected_shape is not None and len(shape) == len(expected_shape) - 1:
        dataset = dataset.batch(batch_size)
        shape = (None, *shape)
    if len(spec if has_targets else ()) == 1:
        has_targets = False
    check_shape(shape, expected_shape)
    _check_dtype(x_spec.dtype.as_numpy_dtype)
    cardinality = int(dataset.cardinality())
    batches = cardinality if cardinality >= 0 else None
    batch_spec = tf.TensorSpec((None, *shape[1:]), x_spec.dtype)
    return InputSource(
        None, batches, batch_spec, has_targets, dataset=dataset, batch_size=batch_size
    )
