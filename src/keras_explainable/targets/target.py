"""Target objects: what score of a model's outputs an explanation explains.

A `Target` is passed as `y` to `explain` (and `explain_to_disk`) when the
explained score is not simply one output unit: the logits of a class summed
over a region of a segmentation map, the score of one detection among a
detector's boxes, a regression output or its decrease. It is checked against
the model's outputs before any forward pass over the data, and computes its
scores inside the compiled step, from the outputs and from its per-sample
arrays (a mask or a box per sample), which travel batch by batch with the
inputs.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.errors import TargetError

__all__ = [
    "Class",
    "Regression",
    "Target",
    "TargetRows",
    "batch_size",
    "describe_outputs",
    "per_sample_ints",
]


def describe_outputs(outputs: Any) -> str:
    """A readable description of an output structure of shapes (for errors)."""

    def shape(value: Any) -> str:
        return "(" + ", ".join("N" if i == 0 else str(s) for i, s in enumerate(value)) + ")"

    if isinstance(outputs, dict):
        return (
            "{" + ", ".join(f"{name!r}: {describe_outputs(v)}" for name, v in outputs.items()) + "}"
        )
    if isinstance(outputs, list):
        return "[" + ", ".join(describe_outputs(value) for value in outputs) + "]"
    if (
        isinstance(outputs, tuple)
        and outputs
        and not all(value is None or isinstance(value, (int, np.integer)) for value in outputs)
    ):
        return "(" + ", ".join(describe_outputs(value) for value in outputs) + ")"
    return shape(outputs)


def batch_size(outputs: Any) -> tf.Tensor:
    """The batch size of a (possibly structured) output, as a scalar tensor."""
    return tf.shape(tf.nest.flatten(outputs)[0])[0]


def per_sample_ints(value: Any, name: str) -> np.ndarray | int:
    """An int, or a `(N,)` int64 array of one integer per sample; else `TypeError`."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer or one integer per sample; got a bool.")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (tf.Tensor, tf.Variable)):
        value = value.numpy()
    array = np.asarray(value)
    if array.ndim == 0 and np.issubdtype(array.dtype, np.integer):
        return int(array)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"{name} must be an integer or an integer array (N,) of one per sample; got "
            f"{array.dtype} of shape {array.shape}."
        )
    if array.size == 0:
        raise TargetError(f"{name} is empty; give one integer per sample.")
    return array.astype(np.int64)


class Target(abc.ABC):
    """Base of the target objects: the scores an explanation explains.

    A subclass says how many scores it gives per sample (`count`), which
    per-sample arrays it needs batch by batch (`sample_data`), how to check
    the model's outputs before any work (`check`), and how to compute the
    scores inside the compiled step (`scores`, `units`). Every method and
    decorator takes target objects, and so do `explain_to_disk`, distributed
    runs and the metrics: the per-sample arrays are sliced with the inputs.

    Example:
        A target of your own: the mean of outputs `a` and `b`.

        >>> class MeanOf(ke.targets.Target):
        ...     def __init__(self, a, b):
        ...         self.a, self.b = a, b
        ...     def scores(self, outputs, data):
        ...         return (outputs[:, self.a] + outputs[:, self.b])[:, None] / 2
        >>> ke.GradCAM(model).explain(images, MeanOf(3, 5))
    """

    reads_all_outputs: ClassVar[bool] = False
    """Whether the target reads a multi-output model's whole output structure
    (a detector's boxes and scores) rather than one chosen output."""

    reads_probabilities: ClassVar[bool] = True
    """Whether methods that score probabilities (Score-CAM) may give the
    target the softmax (or sigmoid) of the outputs; False for outputs that
    are not class scores (a regression's values)."""

    @property
    def count(self) -> int:
        """L: the number of scores per sample (maps get L channels)."""
        return 1

    def sample_data(self) -> dict[str, np.ndarray]:
        """Arrays of one row per sample `(N, ...)`, fed to `scores` batch by batch."""
        return {}

    def check(self, outputs: Any, count: int | None) -> None:  # noqa: B027 - optional hook
        """Check the model's outputs and the number of inputs before any work.

        Args:
            outputs: the shapes of the explained output (a tuple, batch axis
                included), or a dict/list of them for a multi-output model
                whose outputs are all explained; None when unknown (an opaque
                model or callable).
            count: the number of inputs, or None when unknown (a dataset).

        Raises:
            TargetError: the target does not fit the outputs or the inputs.
        """

    @abc.abstractmethod
    def scores(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, L)` scores of a batch, inside the compiled step.

        Args:
            outputs: the model's outputs on the batch (float tensors).
            data: the batch's rows of `sample_data()`.
        """

    def units(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, L)` int64 output unit of each score, recorded in `Explanation.targets`.

        -1 where a score is not one unit's (the default).
        """
        return -tf.ones(tf.stack([batch_size(outputs), self.count]), tf.int64)

    def select(self, outputs: Any, data: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """`(scores, units)` of a batch: `scores` and `units` together.

        A target whose scores and units share their work (a `Box`'s matching)
        overrides this to do it once.
        """
        return self.scores(outputs, data), self.units(outputs, data)

    def finished(self, units: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Look at the recorded units `(N, L)` after a run (to warn, say)."""

    def check_padding(self, keep: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Check a text model's padding before any work (inputs given as arrays).

        Args:
            keep: `(N, T)` 1 at the inputs' tokens, 0 at their padding.

        Raises:
            TargetError: the target reads a padding position.
        """

    @property
    def suffix_length(self) -> int:
        """S: the number of tokens `input_suffix` adds (0 for none)."""
        return 0

    def input_suffix(self, samples: tf.Tensor, data: dict[str, tf.Tensor]) -> tf.Tensor | None:
        """Token ids `(samples, S)` to run after each input of a text model, or None.

        A target that explains a continuation (`Continuation`) has the model
        run on the inputs followed by it; attributions cover the inputs only.
        """
        return None

    def rows(self, start: int, stop: int) -> Target:
        """The same target for samples `start:stop` only (its per-sample rows cut).

        Code that explains a dataset piece by piece (the metrics) explains
        each piece with its rows. The whole target is checked first: `check`
        on the rows skips the counts.
        """
        return TargetRows(self, start, stop)

    def _check_count(self, rows: np.ndarray, count: int | None, name: str) -> None:
        if count is not None and rows.shape[0] != count:
            raise TargetError(
                f"{type(self).__name__} got {rows.shape[0]} {name} for {count} inputs; "
                f"give one per input, or one for all."
            )


class TargetRows(Target):
    """A target restricted to samples `start:stop` (see `Target.rows`)."""

    def __init__(self, whole: Target, start: int, stop: int) -> None:
        """Cut `whole`'s per-sample rows to `start:stop`."""
        self.whole, self.start, self.stop = whole, start, stop
        self.reads_all_outputs = whole.reads_all_outputs
        self.reads_probabilities = whole.reads_probabilities

    @property
    def count(self) -> int:
        """The whole target's L."""
        return self.whole.count

    def sample_data(self) -> dict[str, np.ndarray]:
        """The whole target's per-sample arrays, rows `start:stop`."""
        return {
            name: array[self.start : self.stop] for name, array in self.whole.sample_data().items()
        }

    def check(self, outputs: Any, count: int | None) -> None:
        """The whole target's check, without its counts (checked on the whole)."""
        self.whole.check(outputs, None)

    def scores(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """The whole target's scores."""
        return self.whole.scores(outputs, data)

    def units(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """The whole target's units."""
        return self.whole.units(outputs, data)

    def select(self, outputs: Any, data: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """The whole target's scores and units."""
        return self.whole.select(outputs, data)

    def finished(self, units: np.ndarray) -> None:
        """The whole target's look at the units."""
        self.whole.finished(units)

    def check_padding(self, keep: np.ndarray) -> None:
        """The whole target's check of the padding."""
        self.whole.check_padding(keep)

    @property
    def suffix_length(self) -> int:
        """The whole target's suffix length."""
        return self.whole.suffix_length

    def input_suffix(self, samples: tf.Tensor, data: dict[str, tf.Tensor]) -> tf.Tensor | None:
        """The whole target's suffix."""
        return self.whole.input_suffix(samples, data)


@attrs.frozen(init=False)
class Class:
    """The logit of a class: the same as passing the class index as `y`.

    Written `ke.targets.Class(k)` for symmetry with the other targets; for
    multi-label models (sigmoid outputs) each class's logit is explained on
    its own, independently of the others.

    Args:
        index: the class: an int for every sample, an integer array `(N,)`
            of one class per sample, or `(N, L)` of L classes per sample.

    Example:
        >>> ke.GradCAM(model).explain(images, ke.targets.Class(207))
    """

    index: Any

    def __init__(self, index: Any) -> None:
        if isinstance(index, bool):
            raise TypeError("Class(index): index must be an integer class; got a bool.")
        self.__attrs_init__(index)


@attrs.frozen(init=False, eq=False)
class Regression(Target):
    """A regression output, or its decrease.

    The score is `sign * outputs[:, index]` for outputs `(N, K)` (or
    `sign * outputs[:, 0]` for `(N,)`): the evidence for a larger value with
    `sign=+1`, for a smaller one with `sign=-1`. A final sigmoid (a bounded
    regression) is stripped like a classifier's (`logits=True`); it is
    monotonic, so the evidence points the same way. Methods that score
    probabilities of classes (Score-CAM) score the values themselves.

    Args:
        index: which output unit (default 0).
        sign: +1 (default) or -1.

    Raises:
        TargetError: the output is not `(N,)` or `(N, K)`, or `index` is out
            of range (at `explain`, before any work).

    Example:
        >>> ke.Saliency(price_model).explain(houses, ke.targets.Regression())
        >>> ke.GradCAM(age_model).explain(faces, ke.targets.Regression(sign=-1))
    """

    reads_probabilities: ClassVar[bool] = False

    index: int
    sign: int

    def __init__(self, index: int = 0, sign: int = 1) -> None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise TypeError(f"Regression index must be an integer >= 0; got {index!r}.")
        if isinstance(sign, bool) or sign not in (1, -1):
            raise ValueError(f"Regression sign must be +1 or -1; got {sign!r}.")
        self.__attrs_init__(int(index), int(sign))

    def check(self, outputs: Any, count: int | None) -> None:
        """Check the outputs and counts before any work (see `Target.check`)."""
        if outputs is None:
            return
        if not isinstance(outputs, tuple) or not (
            len(outputs) == 1 or (len(outputs) == 2 and outputs[1] is not None)
        ):
            raise TargetError(
                f"Regression needs an output (N,) or (N, K); the model outputs "
                f"{describe_outputs(outputs)}. Choose one output with output=."
            )
        units = 1 if len(outputs) == 1 else outputs[1]
        if self.index >= units:
            raise TargetError(
                f"Regression index {self.index} is out of range: the output has {units} unit(s)."
            )

    def scores(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, 1)` scores of a batch (see `Target.scores`)."""
        outputs = tf.cast(outputs, tf.float32)
        if outputs.shape.rank == 1:
            outputs = outputs[:, None]
        if outputs.shape.rank != 2:
            raise TargetError(
                f"Regression needs an output (N,) or (N, K); got shape {tuple(outputs.shape)}."
            )
        return self.sign * outputs[:, self.index : self.index + 1]

    def units(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, 1)` units of the scores (see `Target.units`)."""
        return tf.fill(tf.stack([batch_size(outputs), 1]), tf.constant(self.index, tf.int64))
