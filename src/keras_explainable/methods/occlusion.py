"""Occlusion: the score lost when a sliding window of the input is hidden.

Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional
Networks". ECCV 2014. https://arxiv.org/abs/1311.2901
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.base import Attribution
from keras_explainable.baselines import (
    as_baseline,
    baseline_images,
    baseline_validator,
    blend_with_baseline,
    is_zero_baseline,
)
from keras_explainable.errors import InputError
from keras_explainable.perturbation import InputPerturbation, evaluate_perturbations
from keras_explainable.signature import RESULT_NEUTRAL
from keras_explainable.targets import Targets
from keras_explainable.validators import positive_int, positive_number

__all__ = ["Occlusion", "window_starts"]

_BASELINES = ("zeros", "mean", "blur")


def _per_axis(value: Any) -> Any:
    """Keep an int (the same for every axis) or None; turn a sequence into a tuple."""
    if value is None or isinstance(value, (int, np.integer)) or not isinstance(value, Sequence):
        return value
    return tuple(value)


def _positive_sizes(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Accept a positive integer or a non-empty tuple of them (None where allowed)."""
    if value is None and attribute.name == "stride":
        return
    values = value if isinstance(value, tuple) and value else (value,)
    for size in values:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(
                f"{attribute.name} must be a positive integer or a tuple of them, one per "
                f"spatial axis; got {value!r}."
            )


def window_starts(size: int, window: int, stride: int) -> np.ndarray:
    """Where the windows along one axis start.

    Windows start every `stride` positions, `0, stride, 2 * stride, ...`, as
    long as they fit; when the stride does not divide `size - window`, one
    more window is aligned to the end, starting at `size - window`, so that
    the windows cover the whole axis (when `stride <= window`) and every
    window has its full size. There are `ceil((size - window) / stride) + 1`
    windows, as in Captum, whose last window is cut at the border instead.

    Args:
        size: the axis' size.
        window: the window's size along the axis (at most `size`).
        stride: the step between windows.

    Returns:
        int64 `(count,)` start positions.

    Example:
        >>> window_starts(10, 4, 4)
        array([0, 4, 6])
    """
    count = -(-(size - window) // stride) + 1
    return np.minimum(np.arange(count) * stride, size - window)


@attrs.define(eq=False)
class Occlusion(InputPerturbation):
    """Occlusion: the drop of the score when a window of the input is hidden.

    A window of `baseline` values slides over the input's spatial axes (all
    channels at once); at each position `w` the score of the occluded input
    is subtracted from the score of the input, and each input position gets
    the mean drop over the windows that cover it:

        A(i) = mean over windows w covering i of  S(x) - S(x with w occluded)

    with `S` the explained score (the logits, or what a target callable
    returns). Windows start every `stride` positions along each axis; when the
    stride does not divide the room left, one more window is aligned to the
    end (`window_starts`), so every window is whole and, with `stride <=
    window`, every position is covered. With `stride > window` uncovered
    positions get 0. Works on 1-D, 2-D and 3-D inputs `(N, *spatial, C)`.

    The map is signed: a negative value means hiding that region raises the
    score. 'auto' post-processing keeps the positive part (the evidence for
    the target, as the paper's maps show) and scales it to [0, 1];
    `postprocess=None` returns the signed mean drops.

    The method needs only forward passes, so it explains any model: a
    subclassed model, or a plain callable `inputs -> outputs`. The occluded
    copies are built and scored `window_batch_size` windows at a time inside
    the compiled step. Cost: one forward pass per window position and sample,
    plus one for the input; `prod_a (ceil((size_a - window_a) / stride_a) +
    1)` positions.

    Args:
        model: the model to explain (see `Explainer`): any Keras model, or a
            callable `inputs -> outputs`.
        window: the window's size, one int per spatial axis, or one int for
            every axis (default `(8, 8)`).
        stride: the step between windows, as `window` (default: the window,
            non-overlapping windows).
        baseline: what fills the window: a number (default 0.0), an array
            broadcastable to one input, 'zeros', 'mean' (each input's mean
            per channel), 'blur' (the input blurred, 2-D images), or a
            callable `inputs -> baselines`.
        window_batch_size: windows whose occluded copies are scored together
            in one forward pass (default 16); a pass holds `batch_size *
            window_batch_size` copies. Results do not depend on it.
        blur_sigma: the standard deviation in pixels of the 'blur' baseline
            (default 5.0).
        perturb_inputs: for a model with several inputs, the inputs to
            occlude (names or indices); default every input the window fits
            (a window of two sizes fits 2-D images; an int fits any input,
            a feature vector `(N, D)` being a sequence of `D` features). Each
            is occluded in turn, the others kept as they are, and gets its
            own maps (see `InputPerturbation`). `baseline` may then be a
            dict by input name.
        **kwargs: the `Explainer` options (no layer options).

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1];
    scores are the explained scores of the input. With several inputs, one
    such array per occluded input (see `Explanation.maps`).

    Raises:
        ValueError: `window`, `stride` or `window_batch_size` is not a
            positive integer (or a tuple of them); an unknown baseline name.
        InputError: the window is larger than the input, has a size for
            another number of spatial axes, or the input's spatial size is
            unknown when the step is compiled; an array baseline that does
            not broadcast to one input.

    Example:
        >>> occlusion = ke.Occlusion(model, window=(16, 16), stride=8)
        >>> expl = occlusion.explain(images, labels)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional
        Networks". ECCV 2014. <https://arxiv.org/abs/1311.2901>
    """

    rectify = True

    window: int | tuple[int, ...] = attrs.field(
        default=(8, 8), kw_only=True, converter=_per_axis, validator=_positive_sizes
    )
    stride: int | tuple[int, ...] | None = attrs.field(
        default=None, kw_only=True, converter=_per_axis, validator=_positive_sizes
    )
    baseline: Any = attrs.field(
        default=0.0,
        kw_only=True,
        converter=as_baseline,
        validator=baseline_validator(_BASELINES, callables=True),
    )
    window_batch_size: int = attrs.field(
        default=16, kw_only=True, validator=positive_int, metadata=RESULT_NEUTRAL
    )
    blur_sigma: float = attrs.field(default=5.0, kw_only=True, validator=positive_number)

    def _check_input(self, spatial: tuple, vector: bool) -> None:
        if all(size is not None for size in spatial):
            self.windows(spatial)

    def windows(self, size: Sequence[int | None]) -> list[np.ndarray]:
        """The windows' start positions along each spatial axis of inputs of `size`.

        Args:
            size: the inputs' spatial size.

        Returns:
            One int64 array of starts per axis (see `window_starts`); the
            windows are every combination of them.

        Raises:
            InputError: a size is unknown, the window does not fit, or the
                window or stride has a size for another number of axes.
        """
        size = tuple(size)
        if any(length is None for length in size):
            raise InputError(
                "Occlusion slides its window over the input, whose size must be known: "
                f"got inputs of spatial size {size}. Batch inputs of one size."
            )
        window = self._for_axes(self.window, "window", size)
        stride = window if self.stride is None else self._for_axes(self.stride, "stride", size)
        if any(w > length for w, length in zip(window, size, strict=True)):
            raise InputError(
                f"The occlusion window {window} is larger than the input's spatial size "
                f"{size}; use a window of at most the input's size."
            )
        return [window_starts(*axis) for axis in zip(size, window, stride, strict=True)]

    @staticmethod
    def _for_axes(value: int | tuple, name: str, size: tuple) -> tuple[int, ...]:
        if not isinstance(value, tuple):
            return (int(value),) * len(size)
        if len(value) != len(size):
            raise InputError(
                f"{name}={value} has {len(value)} sizes but the input has {len(size)} "
                f"spatial axes {size}; give one size per axis, or one int for all."
            )
        return tuple(int(v) for v in value)

    def _attribute_input(
        self,
        image: tf.Tensor,
        inputs: Any,
        copies_of: Callable[[tf.Tensor], Any],
        baseline: Any,
        vector: bool,
        targets: Targets,
    ) -> Attribution:
        size = tuple(image.shape[1:-1])
        starts = self.windows(size)
        window = self._for_axes(self.window, "window", size)
        # covers[a][p, i]: whether window position p along axis a covers index i.
        covers = [
            (np.arange(length)[None] >= first[:, None])
            & (np.arange(length)[None] < first[:, None] + width)
            for first, width, length in zip(starts, window, size, strict=True)
        ]
        counts = [len(first) for first in starts]
        baselines = None
        if not is_zero_baseline(baseline):
            baselines = baseline_images(
                baseline, image, blur_sigma=self.blur_sigma, embedding=self.exposure.embedding
            )
        _, outputs = self._forward(inputs)
        scores, indices = targets.select(outputs)
        targets = targets.fixed(outputs)
        rank = len(size)
        axis_covers = [tf.constant(cover, image.dtype) for cover in covers]

        def occluded(positions: tf.Tensor) -> tf.Tensor:
            # (k,) window numbers -> (k, N, *spatial, C) copies, window k hidden in copy k.
            # Window numbers run over the axes' positions in row-major order.
            coordinates, rest = [], positions
            for axis_count in reversed(counts):
                coordinates.insert(0, rest % axis_count)
                rest = rest // axis_count
            mask = None
            for axis in range(rank):
                line = tf.gather(axis_covers[axis], coordinates[axis])  # (k, size_a)
                line = tf.reshape(line, [-1, *[1] * axis, size[axis], *[1] * (rank - 1 - axis)])
                mask = line if mask is None else mask * line
            return copies_of(blend_with_baseline(image, baselines, 1.0 - mask[:, None, ..., None]))

        def score(images: tf.Tensor, copies: int) -> tf.Tensor:
            _, occluded_outputs = self._forward(images)
            occluded_scores, _ = targets.tiled(copies).select(occluded_outputs)
            return occluded_scores

        total = int(np.prod(counts))
        count = scores.shape[1]
        occluded_scores = evaluate_perturbations(
            occluded, score, total, self.window_batch_size, [count]
        )
        drops = tf.cast(scores, tf.float32)[None] - occluded_scores  # (P, N, L)
        # Windows are products of one interval per axis, so the sum of each
        # window's drop over the positions it covers contracts axis by axis.
        maps = tf.reshape(tf.transpose(drops, [1, 2, 0]), [-1, count, *counts])
        coverage = np.ones((), np.float32)
        for axis in range(rank):
            cover = covers[axis].astype(np.float32)
            maps = tf.tensordot(maps, tf.constant(cover), axes=[[2], [0]])
            coverage = np.multiply.outer(coverage, cover.sum(axis=0))
        # Every axis contracted moved to the end: maps is (N, L, *spatial).
        maps = tf.math.divide_no_nan(maps, tf.constant(coverage)[None, None])
        maps = tf.experimental.numpy.moveaxis(maps, 1, -1)
        return Attribution(maps, scores, indices)
