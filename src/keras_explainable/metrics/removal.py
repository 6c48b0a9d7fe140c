"""The base of FaithfulnessCorrelation and MuFidelity: removal against attribution.

Both remove random sets of features, score each perturbed input on the
explained unit, and correlate, over the runs, the score's drop with the sum
of the map over the removed features. The perturbed inputs and the sums are
built and scored by the shared perturbation evaluator, `step_batch_size` runs
per forward pass, so memory is bounded by `batch_size * step_batch_size`
inputs whatever the number of runs.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.baselines import as_baseline, baseline_images, baseline_validator
from keras_explainable.errors import InputError
from keras_explainable.metrics.base import Batch, ModelMetric
from keras_explainable.metrics.perturbs import PerturbsInputs, sample_major
from keras_explainable.metrics.result import MetricResult
from keras_explainable.noise import (
    METRIC_SUBSET,
    hash32,
    hashed_uniform,
    sample_keys,
    stream_key,
)
from keras_explainable.perturbation import evaluate_perturbations
from keras_explainable.validators import check_seed, positive_int, positive_number

#: Validates what removed features become: a name, a number, an array or a
#: function of the inputs (the perturbation).
check_replacement = baseline_validator(("zeros", "blur", "mean"), callables=True)

__all__ = [
    "CorrelationResult",
    "RemovalCorrelation",
    "check_replacement",
    "pearson",
    "run_keys",
    "spearman_ranks",
]


def pearson(first: tf.Tensor, second: tf.Tensor) -> tf.Tensor:
    """Pearson correlation of each row pair of `(N, R)` tensors; NaN for a constant row."""
    first = tf.cast(first, tf.float64)
    second = tf.cast(second, tf.float64)
    first -= tf.reduce_mean(first, axis=1, keepdims=True)
    second -= tf.reduce_mean(second, axis=1, keepdims=True)
    scale = tf.sqrt(tf.reduce_sum(first**2, axis=1) * tf.reduce_sum(second**2, axis=1))
    value = tf.reduce_sum(first * second, axis=1) / scale
    value = tf.where(scale > 0, value, tf.constant(float("nan"), tf.float64))
    return tf.cast(value, tf.float32)


def spearman_ranks(values: tf.Tensor) -> tf.Tensor:
    """Rank each row of `(N, R)` values, 0-based, ties at their average rank."""
    below = tf.reduce_sum(tf.cast(values[:, None, :] < values[:, :, None], tf.float32), axis=2)
    equal = tf.reduce_sum(tf.cast(values[:, None, :] == values[:, :, None], tf.float32), axis=2)
    return below + (equal - 1.0) / 2.0


def run_keys(inputs: tf.Tensor, seed: int, indices: tf.Tensor, purpose: int) -> tf.Tensor:
    """`(k, N)` int64 keys of runs `indices` of each sample: batch-independent."""
    streams = stream_key(seed, tf.cast(indices, tf.int64)[:, None], purpose)
    return hash32(sample_keys(inputs)[None] ^ streams)


def keyed_uniform(keys: tf.Tensor, size: int) -> tf.Tensor:
    """`(*keys.shape, size)` uniform numbers in (0, 1), one stream per key."""
    flat = tf.reshape(keys, [-1])
    shape = tf.stack([tf.size(flat), size])
    return tf.reshape(hashed_uniform(shape, flat), tf.concat([tf.shape(keys), [size]], 0))


@attrs.frozen(eq=False, repr=False)
class CorrelationResult(MetricResult):
    """Per-sample correlations, with the series they correlate.

    Attributes:
        metric: the metric's name.
        values: float64 `(N,)`: each sample's correlation.
        sums: float32 `(N, R)`: the map's sum over the features run `r` removed.
        drops: float32 `(N, R)`: the score's drop when run `r`'s features are
            removed, `f(x) - f(x with them at the baseline)`.

    Example:
        >>> result = ke.metrics.FaithfulnessCorrelation(subset_size=64)(explainer, x, y)
        >>> plt.scatter(result.sums[0], result.drops[0])
    """

    sums: np.ndarray = attrs.field(kw_only=True)
    drops: np.ndarray = attrs.field(kw_only=True)


@attrs.define(eq=False)
class RemovalCorrelation(PerturbsInputs, ModelMetric):
    """Correlate the score's drop with the map's sum over random removed features.

    A subclass says which positions run `r` removes (`_removed`) and how the
    two series are correlated (`_correlation`).

    Args:
        baseline: what removed features become: 'zeros' (default), 'blur',
            'mean', a number, an array broadcastable to one input, or a
            perturbation function `inputs -> replacements` of the inputs'
            shape (called in the compiled step).
        blur_sigma: the standard deviation of 'blur' in pixels (default 5.0).
        seed: the integer seed of the random removals (default 0). Each
            sample's removals are a function of the seed, the run's number and
            the sample's values: the same in any batch.
        step_batch_size: runs scored in one forward pass (default 16).
            Results do not depend on it.
        return_perturbed: keep the perturbed inputs of the first `k`
            samples in the result (default 0); see `PerturbsInputs`.
        use_probabilities: score logits (default False) or probabilities.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.
    """

    higher_is_better: ClassVar[bool] = True

    baseline: Any = attrs.field(
        default="zeros", kw_only=True, converter=as_baseline, validator=check_replacement
    )
    blur_sigma: float = attrs.field(default=5.0, kw_only=True, validator=positive_number)
    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    step_batch_size: int = attrs.field(default=16, kw_only=True, validator=positive_int)
    use_probabilities: bool = attrs.field(
        default=False, kw_only=True, validator=attrs.validators.instance_of(bool)
    )

    @property
    @abc.abstractmethod
    def _runs_count(self) -> int:
        """The number of random removals per sample."""

    @abc.abstractmethod
    def _removed(self, keys: tf.Tensor, spatial: tuple[int, ...]) -> tf.Tensor:
        """`(k, N, *spatial)` float32: 1 where run `(k, N)` (its key) removes a position."""

    @abc.abstractmethod
    def _correlation(self, sums: tf.Tensor, drops: tf.Tensor) -> tf.Tensor:
        """`(N,)` correlations of `(N, R)` attribution sums with `(N, R)` score drops."""

    def _removal(
        self, inputs: tf.Tensor, baseline: tf.Tensor, indices: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """`(k, N, ...)` inputs with runs `indices` removed, and the removed positions."""
        removed = self._removed(
            run_keys(inputs, self.seed, indices, METRIC_SUBSET), tuple(inputs.shape[1:-1])
        )
        return tf.where(removed[..., None] > 0, baseline[None], inputs[None]), removed

    def _perturbed_inputs(self, inputs: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
        baseline = baseline_images(self.baseline, inputs, blur_sigma=self.blur_sigma)
        return sample_major(self._removal(inputs, baseline, tf.range(self._runs_count))[0])

    def _measure(self, batch: Batch) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        inputs = batch.inputs
        spatial = tuple(inputs.shape[1:-1])
        if any(size is None for size in spatial):
            raise InputError(
                f"{self.name} needs inputs of a known spatial size; got shape "
                f"{tuple(inputs.shape)}. Batch images of one size."
            )
        baseline = baseline_images(self.baseline, inputs, blur_sigma=self.blur_sigma)
        original = batch.score(inputs)

        def perturb(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return self._removal(inputs, baseline, indices)

        def score(flat: tuple[tf.Tensor, tf.Tensor], copies: int) -> tf.Tensor:
            images, removed = flat
            maps = tf.tile(batch.maps, [copies, *[1] * len(spatial)])
            axes = list(range(1, len(spatial) + 1))
            sums = tf.reduce_sum(maps * removed, axis=axes)
            return tf.stack([batch.score(images, copies), sums], axis=-1)

        results = evaluate_perturbations(
            perturb, score, self._runs_count, self.step_batch_size, score_shape=(2,)
        )
        drops = tf.transpose(original[None] - results[..., 0])
        sums = tf.transpose(results[..., 1])
        return self._correlation(sums, drops), sums, drops

    def _result(self, values: np.ndarray, *extras: np.ndarray) -> CorrelationResult:
        sums, drops = extras
        return CorrelationResult(self.name, values.astype(np.float64), sums=sums, drops=drops)
