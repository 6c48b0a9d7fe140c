"""The engine: running compiled steps over batches of inputs.

Explainers, metrics, `FullGradient.terms()` and the command line all run their
work through this module, which owns, once:

- `StepCache`: compiled steps, one per input signature and target form (the
  batch axis is left open, so a smaller last batch does not retrace);
- `local_batches` and `keras_explainable.distribute.distributed_batches`:
  the steps run batch by batch on one device, or on every replica of a
  `tf.distribute.Strategy`;
- `run_steps`: the loop that takes each batch's results through the finite
  check and the progress bar into a `ResultWriter`;
- the writers: `ArrayWriter` (in memory) here and
  `keras_explainable.streaming.NpyWriter` (`.npy` files);
- `batch_indices`: a batch's target indices from the run's `TargetPlan`;
- `progress_bar`: the Keras progress bar every long loop shows.

A step is any function `(inputs, indices, ...) -> (*results, finite)`: its
last output is a scalar bool, False when the batch's inputs hold NaN or Inf.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, Protocol

import keras
import numpy as np
import tensorflow as tf

from keras_explainable.errors import InputError, ModelStructureError
from keras_explainable.inputs import InputSource, batch_length
from keras_explainable.targets import TargetPlan, as_index_array

__all__ = [
    "ArrayWriter",
    "ResultWriter",
    "StepCache",
    "batch_indices",
    "local_batches",
    "progress_bar",
    "run_steps",
]


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


class ResultWriter(Protocol):
    """Where `run_steps` puts each batch's results.

    Attributes:
        size: the number of samples written so far.
    """

    size: int

    def write(self, start: int, *parts: np.ndarray) -> None:
        """Store the results of samples `start .. start + len(parts[0])`."""

    def log(self, message: str) -> None:
        """Record a warning about the run where its results are kept (a run's log file)."""


class ArrayWriter:
    """Results written batch by batch into preallocated numpy arrays.

    With a known sample count the arrays are allocated once; for a dataset of
    unknown length they grow by doubling (amortised linear copying).

    Args:
        count: the number of samples, or None when unknown.

    Example:
        >>> writer = ArrayWriter(10)
        >>> run_steps(batches, writer)
        >>> maps, scores, targets = writer.arrays()
    """

    def __init__(self, count: int | None) -> None:
        self.count = count
        self.size = 0
        self._buffers: list[np.ndarray] | None = None

    def write(self, start: int, *parts: np.ndarray) -> None:
        """Store one batch's arrays (one per result, batch axis first)."""
        stop = start + len(parts[0])
        if self._buffers is None:
            capacity = self.count if self.count is not None else max(stop, 64)
            self._buffers = [np.empty((capacity, *p.shape[1:]), p.dtype) for p in parts]
        elif stop > len(self._buffers[0]):
            capacity = max(stop, 2 * len(self._buffers[0]))
            self._buffers = [_grown(buffer, capacity) for buffer in self._buffers]
        for buffer, part in zip(self._buffers, parts, strict=True):
            buffer[start:stop] = part
        self.size = max(self.size, stop)

    def log(self, message: str) -> None:
        """Nothing to record: in-memory results have no log (the warning itself is shown)."""

    def arrays(self) -> list[np.ndarray]:
        """The written arrays, one per result, trimmed to `size` samples."""
        return [buffer[: self.size] for buffer in self._buffers or []]


def _grown(buffer: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.empty((capacity, *buffer.shape[1:]), buffer.dtype)
    grown[: len(buffer)] = buffer
    return grown


class StepCache:
    """Compiled steps, built once per key (input signature and target form).

    Args:
        jit_compile: compile the steps with XLA.
        autograph: let `tf.function` convert Python control flow (default
            False: steps use TensorFlow ops for their control flow).

    Example:
        >>> steps = StepCache()
        >>> step = steps.get(key, lambda: step_function, [spec, indices_spec])
    """

    def __init__(self, jit_compile: bool = False, autograph: bool = False) -> None:
        self.jit_compile = jit_compile
        self.autograph = autograph
        self._steps: dict[Hashable, tuple[Callable, Any]] = {}

    def get(
        self,
        key: Hashable,
        build: Callable[[], Callable],
        input_signature: Any,
        keep: Any = None,
        jit_compile: bool | None = None,
    ) -> Callable:
        """The compiled step for `key`, built from `build()` on first use.

        Args:
            key: what identifies the step (shapes, dtypes, target form).
            build: returns the uncompiled step function.
            input_signature: the `tf.TensorSpec`s of the step's arguments.
            keep: an object the step depends on, kept alive with it (so an
                `id()` in the key stays unique).
            jit_compile: overrides the cache's `jit_compile` for this step.

        Returns:
            The `tf.function`.
        """
        if key not in self._steps:
            compiled = self.jit_compile if jit_compile is None else jit_compile
            function = tf.function(
                build(),
                input_signature=input_signature,
                jit_compile=compiled,
                autograph=self.autograph,
            )
            self._steps[key] = (function, keep, _xla_errors(function) if compiled else function)
        return self._steps[key][2]

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def trace_count(self) -> int:
        """How many times the cached steps were traced, all together."""
        return sum(
            int(function.experimental_get_tracing_count()) for function, *_ in self._steps.values()
        )


def _xla_errors(function: Callable) -> Callable:
    """`function` (compiled with XLA), whose compilation failure says what to do.

    XLA compiles a step on its first call, before any batch is explained; an
    operation it has no kernel for (a `tf.numpy_function` in a layer, say)
    fails there with TensorFlow's own error, which this turns into one that
    names the cause and the way out.
    """

    def step(*args: Any) -> Any:
        try:
            return function(*args)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
            message = str(error)
            if "XLA" not in message and "compil" not in message.lower():
                raise
            first = next((line for line in message.splitlines() if line.strip()), message)
            raise ModelStructureError(
                "The explanation step could not be compiled with XLA (jit_compile=True): "
                f"{first.strip()[:300]}. An operation of the model, or of a layer the "
                "explainer reaches inside it, has no XLA kernel. Pass jit_compile=False."
            ) from error

    return step


def batch_indices(
    plan: TargetPlan, start: int, size: int, batch_targets: Any, units: int | None
) -> np.ndarray:
    """The `(size, L)` int64 target indices of samples `start .. start + size`.

    Args:
        plan: the run's validated targets.
        start: the batch's first sample.
        size: the batch's size.
        batch_targets: the batch's own targets (from a dataset of `(x, y)`),
            or None.
        units: the explained output's number of units, to check indices.

    Returns:
        The indices; `(size, 0)` when the targets are not indices.

    Raises:
        TargetError: the batch's own targets do not fit.
        TypeError: the batch's own targets are not integers.
    """
    if batch_targets is not None:
        batch_targets = as_index_array(batch_targets, size, units)
    return plan.batch(start, start + size, batch_targets)


def local_batches(
    source: InputSource,
    plan: TargetPlan,
    units: int | None,
    step_for: Callable[[int], Callable],
    skip_batches: int = 0,
) -> Iterator[tuple[int, tuple]]:
    """Run a step on each batch of `source` on this device.

    Args:
        source: the validated inputs.
        plan: the validated targets.
        units: the explained output's number of units, to check targets.
        step_for: returns the compiled step `(inputs, feed)` for `L` targets
            per sample.
        skip_batches: batches already done (a resumed run).

    Yields:
        `(start, outputs)` per batch, the step's outputs as tensors.
    """
    for start, batch, batch_targets in source.iterate(skip_batches):
        # `source.iterate` drops a dataset's empty batches, which the model
        # must not see (see `keras_explainable.distribute`).
        size = batch_length(batch)
        indices = batch_indices(plan, start, size, batch_targets, units)
        feed = {"indices": indices, "data": plan.batch_data(start, start + size)}
        yield start, step_for(indices.shape[1])(batch, feed)


def run_steps(
    batches: Iterable[tuple[int, tuple]],
    writer: ResultWriter,
    progress: keras.utils.Progbar | None = None,
) -> None:
    """Take each batch's step outputs into `writer`.

    Args:
        batches: `(start, outputs)` per batch, outputs `(*results, finite)`
            as tensors or arrays; a result may be a tuple of them (the maps
            of each input of a model with several inputs).
        writer: receives each batch's results as numpy arrays, flattened
            in order.
        progress: advanced by one per batch, when given.

    Raises:
        InputError: a batch's inputs hold NaN or Inf values, or there was no
            batch at all.
    """
    for start, outputs in batches:
        *results, finite = outputs
        if not bool(np.all(finite)):
            raise InputError(
                f"Inputs contain NaN or Inf values in the batch starting at sample "
                f"{start}; clean or drop them first."
            )
        writer.write(start, *(np.asarray(result) for result in tf.nest.flatten(results)))
        if progress is not None:
            progress.add(1)
    if writer.size == 0:
        raise InputError("The inputs are empty; nothing to do.")
