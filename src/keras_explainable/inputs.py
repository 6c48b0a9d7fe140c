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
from keras_explainable.exposure.input_layout import InputLayout

__all__ = ["InputLayout", "InputSource", "batch_length", "make_source"]


def _describe(shape: tuple) -> str:
    return "(" + ", ".join("N" if i == 0 else str(s) for i, s in enumerate(shape)) + ")"


def check_shape(shape: tuple, expected: tuple | None, what: str = "Inputs") -> None:
    """Check a batch shape `(N, ...)` against the model's input shape.

    `what` names the inputs in messages (`"Input 'image'"` for one of several).
    """
    if expected is None:
        if len(shape) < 2:
            raise InputError(f"{what} must have a batch axis; got shape {shape}.")
        return
    if len(shape) != len(expected):
        hint = ""
        if len(shape) == len(expected) - 1:
            hint = " For a single sample, add a batch axis: x[None]."
        raise InputError(
            f"{what} have rank {len(shape)} (shape {tuple(shape)}), but the model "
            f"expects rank {len(expected)}: {_describe(expected)}.{hint}"
        )
    for axis, (got, want) in enumerate(zip(shape[1:], expected[1:], strict=True), start=1):
        if got is not None and want is not None and got != want:
            raise InputError(
                f"{what} have shape {tuple(shape)}, but the model expects "
                f"{_describe(expected)} (axis {axis} is {got}, expected {want})."
            )


def _check_dtype(dtype: Any, what: str = "Inputs") -> None:
    dtype = np.dtype(dtype)
    if dtype.kind == "b" or not np.issubdtype(dtype, np.number):
        raise TypeError(f"{what} must be numeric (float or integer images); got dtype {dtype}.")
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"{what} must be real numbers; got dtype {dtype}.")


def check_finite(x: np.ndarray, what: str = "Inputs") -> None:
    """Raise InputError naming the first sample with NaN or Inf values."""
    if np.issubdtype(x.dtype, np.integer):
        return
    finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InputError(
            f"{what} contain NaN or Inf values (in {bad.size} sample(s), first at "
            f"index {int(bad[0])}); clean or drop them before explaining."
        )


def batch_length(x: Any) -> int:
    """The number of samples in a batch of inputs (one tensor or a tuple of them)."""
    return int(tf.nest.flatten(x)[0].shape[0])


@attrs.define
class InputSource:
    """Batches of inputs (and optional per-batch targets) to explain.

    Attributes:
        count: the number of samples, or None when unknown (a dataset).
        batches: the number of batches, or None when unknown.
        spec: `tf.TensorSpec` of one batch of inputs, batch axis None; for a
            model with several inputs, a tuple of them in the model's order.
        has_targets: whether the source yields its own targets.
    """

    count: int | None
    batches: int | None
    spec: tf.TensorSpec | tuple[tf.TensorSpec, ...]
    has_targets: bool
    _array: Any = None
    _dataset: tf.data.Dataset | None = None
    _batch_size: int = 32

    @property
    def array(self) -> Any:
        """The whole inputs, for inputs given as arrays (a tuple with several); else None."""
        return self._array

    def iterate(self, skip_batches: int = 0) -> Iterator[tuple[int, Any, np.ndarray | None]]:
        """Yield `(start, x_batch, y_batch_or_None)`, after `skip_batches` batches."""
        if self._array is not None:
            for start in range(skip_batches * self._batch_size, self.count, self._batch_size):
                rows = slice(start, start + self._batch_size)
                yield (
                    start,
                    tf.nest.map_structure(lambda part, rows=rows: part[rows], self._array),
                    None,
                )
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
                start += batch_length(self._split(element)[0])
            dataset = dataset.skip(skip_batches)
        for element in dataset:
            x, y = self._split(element)
            yield start, x, None if y is None else np.asarray(y)
            start += batch_length(x)

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
            `{"indices": (n, L), "data": {name: (n, ...)}}` (see `TargetPlan.feed_spec`).
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


def make_source(
    x: Any,
    expected_shape: tuple | None,
    batch_size: int,
    y: Any,
    layout: InputLayout | None = None,
) -> InputSource:
    """Validate inputs and wrap them as an `InputSource`.

    Args:
        x: a numpy array, a `tf.Tensor`, anything array-like, or a
            `tf.data.Dataset` yielding `x` or `(x, y)` (batched or not). For
            a model with several inputs, `x` is a tuple or list of them (in
            the model's order) or a dict by input name, or a dataset yielding
            such structures (alone or as `(x, y)`).
        expected_shape: the model's input shape with the batch axis, or None
            (ignored when `layout` is given).
        batch_size: samples per batch for arrays and unbatched datasets.
        y: the user's targets (used here only to reject array targets combined
            with a dataset that has its own).
        layout: the inputs of a model with several inputs, else None.

    Returns:
        The `InputSource`; with several inputs its batches are tuples of
        arrays in the model's order.

    Raises:
        InputError: wrong rank or shape, empty input, NaN/Inf values; with
            several inputs also a wrong number of inputs, an unknown or
            missing input name, or inputs with different numbers of samples.
            Messages name the input.
        TypeError: non-numeric inputs.
    """
    several = layout is not None and len(layout) > 1
    if isinstance(x, tf.data.Dataset):
        if several:
            return _structured_dataset_source(x, layout, batch_size, y)
        return _dataset_source(x, expected_shape, batch_size, y)
    if not several:
        x = _checked_array(x, expected_shape, "Inputs")
        spec = tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype))
        batches = -(-x.shape[0] // batch_size)
        return InputSource(int(x.shape[0]), batches, spec, False, array=x, batch_size=batch_size)
    arrays = tuple(
        _checked_array(part, shape, f"Input {name!r}")
        for part, name, shape in zip(layout.flatten(x), layout.names, layout.shapes, strict=True)
    )
    counts = {name: len(array) for name, array in zip(layout.names, arrays, strict=True)}
    if len(set(counts.values())) > 1:
        raise InputError(
            f"The inputs have different numbers of samples {counts}; every input needs one "
            "entry per sample."
        )
    spec = tuple(tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in arrays)
    count = len(arrays[0])
    batches = -(-count // batch_size)
    return InputSource(count, batches, spec, False, array=arrays, batch_size=batch_size)


def _checked_array(x: Any, expected_shape: tuple | None, what: str) -> np.ndarray:
    """One input as a validated numpy array (dtype, shape, samples, finite values)."""
    if isinstance(x, (tf.Tensor, tf.Variable)):
        x = x.numpy()
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as error:
            raise TypeError(
                f"{what} must be an array, a tensor or a tf.data.Dataset: {error}"
            ) from error
    _check_dtype(x.dtype, what)
    check_shape(x.shape, expected_shape, what)
    if x.shape[0] == 0:
        raise InputError(f"{what} are empty (0 samples); nothing to explain.")
    check_finite(x, what)
    return x


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


def _is_structure(spec: Any) -> bool:
    return isinstance(spec, (tuple, list, dict))


def _structured_dataset_source(
    dataset: tf.data.Dataset, layout: InputLayout, batch_size: int, y: Any
) -> InputSource:
    """A dataset of the inputs of a model with several inputs, as `(x_tuple,)` or `(x_tuple, y)`.

    An element is the inputs' structure (a dict, or a tuple of one tensor
    per input), or a tuple whose first item is that structure and whose
    second, if any, is the targets.
    """
    spec = dataset.element_spec
    if isinstance(spec, dict) or (
        isinstance(spec, (tuple, list)) and not any(_is_structure(part) for part in spec)
    ):
        inputs_spec, has_targets = spec, False
    elif isinstance(spec, (tuple, list)) and _is_structure(spec[0]):
        inputs_spec, has_targets = spec[0], len(spec) > 1
    else:
        raise TypeError(
            f"A dataset for a model with inputs {list(layout.names)} must yield a dict or a "
            f"tuple of them, or (inputs, y); got element spec {spec}."
        )
    flat_spec = layout.flatten(inputs_spec)
    if has_targets and y is not None:
        raise TargetError(
            "The dataset yields its own targets (x, y); do not also pass y to explain()."
        )

    def canonical(*element: Any) -> tuple:
        # `map` passes a tuple element's items as arguments, a dict as one.
        if len(element) == 1 and isinstance(element[0], dict):
            return (layout.flatten(element[0]),)
        if _is_structure(element[0]):
            inputs = (layout.flatten(element[0]),)
            return inputs + ((element[1],) if has_targets else ())
        return (layout.flatten(element),)

    dataset = dataset.map(canonical)
    first = flat_spec[0]
    if len(first.shape) == len(layout.shapes[0]) - 1:
        dataset = dataset.batch(batch_size)
        flat_spec = tuple(tf.TensorSpec((None, *part.shape), part.dtype) for part in flat_spec)
    for part, name, shape in zip(flat_spec, layout.names, layout.shapes, strict=True):
        check_shape(tuple(part.shape), shape, f"Input {name!r}")
        _check_dtype(part.dtype.as_numpy_dtype, f"Input {name!r}")
    cardinality = int(dataset.cardinality())
    batch_spec = tuple(tf.TensorSpec((None, *part.shape[1:]), part.dtype) for part in flat_spec)
    return InputSource(
        None,
        cardinality if cardinality >= 0 else None,
        batch_spec,
        has_targets,
        dataset=dataset,
        batch_size=batch_size,
    )
