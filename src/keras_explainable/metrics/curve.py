"""The pixel-curve metrics shared by Deletion and Insertion.

Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for Explanation
of Black-box Models". https://arxiv.org/abs/1806.07421
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.baselines import as_baseline, baseline_images, baseline_validator
from keras_explainable.errors import InputError
from keras_explainable.metrics.base import Batch, MetricResult, ModelMetric
from keras_explainable.metrics.perturbs import PerturbsInputs, sample_major
from keras_explainable.perturbation import evaluate_perturbations
from keras_explainable.validators import positive_int, positive_number

__all__ = ["CurveResult", "PixelCurve", "as_baseline", "check_baseline"]

_BASELINES = ("zeros", "blur", "mean")


@attrs.frozen(eq=False, repr=False)
class CurveResult(MetricResult):
    """Areas under per-sample curves, with the curves.

    Attributes:
        metric: the metric's name.
        values: float64 `(N,)`: the area under each sample's curve.
        curves: float32 `(N, steps + 1)`: the score after each step, from
            step 0 (no pixel changed) to the last (every pixel changed).
        fractions: float64 `(steps + 1,)`: the nominal fraction of pixels
            changed at each step, `k / steps`.

    Example:
        >>> result = ke.metrics.Deletion(steps=20)(ke.GradCAM(model), x, y)
        >>> plt.plot(result.fractions, result.curves.mean(axis=0))   # the mean curve
    """

    curves: np.ndarray = attrs.field(kw_only=True)
    fractions: np.ndarray = attrs.field(kw_only=True)


#: Validates a metric's `baseline`: one of `_BASELINES`, a finite number or array.
check_baseline = baseline_validator(_BASELINES)


def pixel_counts(pixels: int, steps: int) -> np.ndarray:
    """Pixels changed after each of `steps` steps: `round(k * pixels / steps)`.

    Args:
        pixels: the number of spatial positions.
        steps: the number of steps.

    Returns:
        int32 `(steps + 1,)`, from 0 to `pixels` (halves round up).
    """
    k = np.arange(steps + 1, dtype=np.int64)
    return ((2 * k * pixels + steps) // (2 * steps)).astype(np.int32)


def curve_area(curves: tf.Tensor) -> tf.Tensor:
    """Trapezoidal area under `(N, steps + 1)` curves sampled evenly on [0, 1]."""
    steps = curves.shape[-1] - 1
    inner = tf.reduce_sum(curves, axis=-1) - (curves[:, 0] + curves[:, -1]) / 2
    return inner / steps


@attrs.define(eq=False)
class PixelCurve(PerturbsInputs, ModelMetric):
    """Base of Deletion and Insertion: a score curve as pixels change by rank.

    Pixels (spatial positions, all channels together) are ranked by
    decreasing saliency, ties broken by position (row-major, first first).
    After step `k` of `steps`, the `round(k * P / steps)` top-ranked of the
    `P` pixels have changed: replaced by the baseline (deletion) or restored
    from the baseline to the image (insertion). The curve is the explained
    unit's score at steps `0 .. steps`; the value is the area under it, by
    the trapezoidal rule over the fraction of pixels changed, `k / steps`.

    The perturbed images are built and scored inside the compiled step,
    `step_batch_size` curve points per forward pass, so a pass holds at most
    `batch_size * step_batch_size` images.

    Args:
        steps: steps of the curve (default 100), which has `steps + 1` points.
        baseline: what a removed pixel becomes (deletion) or the starting
            image (insertion): 'zeros'; 'blur' (the image blurred with a
            Gaussian of `blur_sigma` pixels, 2-D images only); 'mean' (each
            image's mean per channel); a number; or an array broadcastable to
            one input `(*spatial, C)`.
        blur_sigma: the blur's standard deviation in pixels (default 5.0, as
            in the RISE code). Used by `baseline='blur'` only.
        step_batch_size: curve points evaluated in one forward pass (default
            16). Results do not depend on it.
        use_probabilities: score probabilities (default True, as in the
            paper) or logits (False); see `ModelMetric`.
        return_perturbed: keep the images of every curve point of the first
            `k` samples as the result's `perturbed`, `(k, steps + 1,
            *input_shape)` (default 0: none).
        batch_size: samples per compiled step (default 32).
        verbose: progress display, as for `Metric`.
    """

    #: True: top-ranked pixels move from the image to the baseline (deletion);
    #: False: from the baseline to the image (insertion).
    deletes: ClassVar[bool] = True

    steps: int = attrs.field(default=100, kw_only=True, validator=positive_int)
    baseline: Any = attrs.field(
        default="zeros", kw_only=True, converter=as_baseline, validator=check_baseline
    )
    blur_sigma: float = attrs.field(default=5.0, kw_only=True, validator=positive_number)
    step_batch_size: int = attrs.field(default=16, kw_only=True, validator=positive_int)

    def _curve_images(self, inputs: tf.Tensor, maps: tf.Tensor) -> Any:
        """`points (k,) -> (k, N, *input_shape)`: the images at curve points `points`."""
        spatial = inputs.shape[1:-1]
        if any(size is None for size in spatial):
            raise InputError(
                f"{self.name} needs inputs of a known spatial size; got shape "
                f"{tuple(inputs.shape)}. Batch images of one size."
            )
        pixels = int(np.prod(spatial))
        size = tf.shape(inputs)[0]
        saliency = tf.reshape(maps, [size, pixels])
        # Rank 0 is the most salient pixel; ties go to the earlier pixel.
        order = tf.argsort(saliency, axis=1, direction="DESCENDING", stable=True)
        ranks = tf.argsort(order, axis=1, stable=True)
        ranks = tf.reshape(ranks, [1, size, *spatial, 1])
        baseline = baseline_images(self.baseline, inputs, blur_sigma=self.blur_sigma)
        start, end = (inputs, baseline) if self.deletes else (baseline, inputs)

        counts = tf.constant(pixel_counts(pixels, self.steps))
        # (k,) curve points -> (k, 1, 1.., 1) pixel counts against the ranks.
        count_shape = [-1, 1, *[1] * len(spatial), 1]

        def changed_images(points: tf.Tensor) -> tf.Tensor:
            changed = ranks < tf.reshape(tf.gather(counts, points), count_shape)
            return tf.where(changed, end[None], start[None])

        return changed_images

    def _perturbed_inputs(self, inputs: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
        changed_images = self._curve_images(inputs, maps)
        return sample_major(changed_images(tf.range(self.steps + 1)))

    def _measure(self, batch: Batch) -> tuple[tf.Tensor, tf.Tensor]:
        changed_images = self._curve_images(batch.inputs, batch.maps)
        scores = evaluate_perturbations(
            changed_images, batch.score, self.steps + 1, self.step_batch_size
        )
        curves = tf.transpose(scores)
        return curve_area(curves), curves

    def _result(self, values: np.ndarray, *extras: np.ndarray) -> CurveResult:
        (curves,) = extras
        fractions = np.arange(self.steps + 1) / self.steps
        return CurveResult(self.name, values.astype(np.float64), curves=curves, fractions=fractions)
