"""Completeness: whether a map adds up to the score's change from the baseline.

Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep Networks".
https://arxiv.org/abs/1703.01365
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.baselines import as_baseline, baseline_images
from keras_explainable.metrics.base import Batch, ModelMetric
from keras_explainable.metrics.perturbs import PerturbsInputs
from keras_explainable.metrics.removal import check_replacement
from keras_explainable.metrics.result import MetricResult
from keras_explainable.validators import non_negative_number, positive_number

__all__ = ["Completeness", "CompletenessResult"]


@attrs.frozen(eq=False, repr=False)
class CompletenessResult(MetricResult):
    """Relative completeness gaps, with the sums and score changes they compare.

    Attributes:
        metric: 'Completeness'.
        values: float64 `(N,)`: `|sum(phi) - delta| / |delta|` per sample
            (NaN where `delta` is 0).
        sums: float32 `(N,)`: each map's sum, `sum(phi)`.
        deltas: float32 `(N,)`: `delta = f(x) - f(baseline)`.
        tolerance: the relative gap under which a sample counts as complete.

    Example:
        >>> result = ke.metrics.Completeness()(ig, images, labels)
        >>> result.complete.mean()   # the share of samples within tolerance
    """

    sums: np.ndarray = attrs.field(kw_only=True)
    deltas: np.ndarray = attrs.field(kw_only=True)
    tolerance: float = attrs.field(kw_only=True)

    @property
    def complete(self) -> np.ndarray:
        """Bool `(N,)`: whether each sample's relative gap is within `tolerance`."""
        return self.values <= self.tolerance


@attrs.define(eq=False)
class Completeness(PerturbsInputs, ModelMetric):
    """Completeness: the gap between a map's sum and the score's change, relative.

    Methods that claim completeness (Integrated Gradients, KernelSHAP,
    GradientSHAP in expectation) give maps that add up to the explained
    score's change from the baseline, `delta = f(x) - f(baseline)`. Each
    sample's value is the relative gap

        |sum_i phi_i - delta| / |delta|

    0 for an exactly complete map. **Lower is better.** A sample whose score
    does not change (`delta = 0`) has no relative gap: NaN, left out of the
    mean; the result's `sums` and `deltas` give the absolute gap.
    `result.complete` tells which samples are within `tolerance`.

    The maps must be the raw attributions: pass the explainer with
    `postprocess=None` (its default 'auto' takes absolute values and
    rescales) and the same `baseline` the explainer used. Scores are logits
    by default, which is what the explainers attribute.

    Conventions: Captum's `convergence_delta` is the signed gap
    `sum(phi) - delta` per sample; here its absolute value is divided by
    `|delta|`, so that one tolerance fits every model's scale.

    Args:
        baseline: the baseline of the explainer: 'zeros' (default), 'blur',
            'mean', a number, an array broadcastable to one input, or a
            function `inputs -> baselines`.
        blur_sigma: the standard deviation of 'blur' in pixels (default 5.0).
        tolerance: the relative gap under which a sample is complete
            (default 0.01).
        use_probabilities: score logits (default False) or probabilities.
        return_perturbed: keep the baselines of the first `k` samples in the
            result (default 0), `(k, 1, *input_shape)`.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `CompletenessResult`: per-sample relative gaps,
    their `mean`, the `sums`, `deltas` and `complete`.

    Raises:
        ValueError, TypeError: an option is invalid (at construction).

    Example:
        >>> ig = ke.IntegratedGradients(model, steps=64, postprocess=None)
        >>> result = ke.metrics.Completeness()(ig, images, labels)
        >>> result.mean, result.complete.all()
        (0.004, True)

    References:
        Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep
        Networks". ICML 2017. <https://arxiv.org/abs/1703.01365>
    """

    higher_is_better: ClassVar[bool] = False

    baseline: Any = attrs.field(
        default="zeros", kw_only=True, converter=as_baseline, validator=check_replacement
    )
    blur_sigma: float = attrs.field(default=5.0, kw_only=True, validator=positive_number)
    tolerance: float = attrs.field(default=0.01, kw_only=True, validator=non_negative_number)
    use_probabilities: bool = attrs.field(
        default=False, kw_only=True, validator=attrs.validators.instance_of(bool)
    )

    def _perturbed_inputs(self, inputs: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
        return baseline_images(self.baseline, inputs, blur_sigma=self.blur_sigma)[:, None]

    def _measure(self, batch: Batch) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        inputs = batch.inputs
        baseline = baseline_images(self.baseline, inputs, blur_sigma=self.blur_sigma)
        original, reference = tf.split(batch.score(tf.concat([inputs, baseline], 0), 2), 2)
        deltas = original - reference
        size = tf.shape(batch.maps)[0]
        sums = tf.reduce_sum(tf.reshape(batch.maps, [size, -1]), axis=1)
        gaps = tf.abs(sums - deltas) / tf.abs(deltas)
        return tf.where(deltas != 0, gaps, tf.fill(tf.shape(gaps), float("nan"))), sums, deltas

    def _result(self, values: np.ndarray, *extras: np.ndarray) -> CompletenessResult:
        sums, deltas = extras
        return CompletenessResult(
            self.name,
            values.astype(np.float64),
            sums=sums,
            deltas=deltas,
            tolerance=self.tolerance,
        )
