"""Infidelity: how well a map predicts the score's change under perturbations.

Yeh, Hsieh, Suggala, Inouye & Ravikumar (2019), "On the (In)fidelity and
Sensitivity of Explanations". https://arxiv.org/abs/1901.09392
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import tensorflow as tf

from keras_explainable.baselines import as_baseline, baseline_images
from keras_explainable.metrics.base import Batch, ModelMetric
from keras_explainable.metrics.perturbs import PerturbsInputs, sample_major
from keras_explainable.metrics.removal import check_replacement, run_keys
from keras_explainable.noise import METRIC_NOISE, hashed_normal
from keras_explainable.perturbation import evaluate_perturbations
from keras_explainable.validators import check_seed, positive_int, positive_number

__all__ = ["Infidelity"]


@attrs.define(eq=False)
class Infidelity(PerturbsInputs, ModelMetric):
    """Infidelity: the expected squared error of the map's prediction of score changes.

    With perturbations `I` drawn at random, each sample's value is Captum's

        E_I[ (I . phi - (f(x) - f(x - I)))^2 ]

    estimated over `n_perturb_samples` perturbations, with `I . phi` the sum
    over positions of the map times the perturbation there (its mean over
    channels: exact when a perturbation is the same on every channel, as the
    default one is). With `normalize=True` (the default) the map is first
    rescaled by the best factor `beta = E[I.phi * df] / E[(I.phi)^2]`, so the
    value does not depend on the map's scale. 0 for the gradient map of a
    linear model, whatever the perturbations. **Lower is better.**

    By default each perturbation is Gaussian noise of standard deviation
    `noise_std` per position, shared by its channels, a function of the seed,
    the perturbation's number and the sample's values (the same in any
    batch). Any `perturbation` can be passed instead: a function of the
    stacked copies `(m, *spatial, C)` of a batch, in the compiled step, that
    returns the perturbations `I` (broadcastable to the copies; the model
    scores `x - I`) or, as Captum's `perturb_func`, a pair
    `(I, perturbed inputs)`. Its randomness is its own (`tf.random` ops).

    For maps that already multiply by the input (Integrated Gradients,
    Gradient x Input), `multiply_by_inputs=True` divides the perturbation by
    `x - baseline` before the product, as Captum's
    `infidelity_perturb_func_decorator(multiply_by_inputs=True)`: with
    `I = x - baseline` the value is then the squared completeness gap.

    The perturbed inputs are scored `step_batch_size` perturbations per
    forward pass: memory is bounded by `batch_size * step_batch_size` inputs.

    Conventions: Captum's definition and `n_perturb_samples=10`; Captum's
    `normalize` defaults to False and it has no default perturbation (its
    tutorials use Gaussian noise of standard deviation 0.003, the default
    here); Quantus's `Infidelity` removes patches instead and scores
    differently. Scores are logits by default, as the explainers attribute
    them. An explainer's default `postprocess='auto'` takes absolute values:
    pass `postprocess=None` for signed maps.

    Args:
        perturbation: None (default: Gaussian noise) or a function
            `copies -> I` or `copies -> (I, perturbed)`, as above.
        noise_std: the standard deviation of the default noise (default
            0.003), in input units.
        n_perturb_samples: perturbations per sample (default 10).
        normalize: rescale the map by the optimal `beta` (default True).
        multiply_by_inputs: divide perturbations by `x - baseline` (default
            False), for maps that multiply by the input.
        baseline: the baseline of `multiply_by_inputs`: 'zeros' (default),
            'blur', 'mean', a number, an array, or a function
            `inputs -> baselines`.
        blur_sigma: the standard deviation of 'blur' in pixels (default 5.0).
        seed: the integer seed of the default noise (default 0).
        step_batch_size: perturbations per forward pass (default 16).
        return_perturbed: keep the perturbed inputs `x - I` of the first `k`
            samples in the result (default 0); see `PerturbsInputs`.
        use_probabilities: score logits (default False) or probabilities.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `MetricResult` with per-sample infidelities.

    Raises:
        ValueError, TypeError: an option is invalid (at construction).

    Example:
        >>> infidelity = ke.metrics.Infidelity(noise_std=0.05)
        >>> infidelity(ke.Saliency(model, postprocess=None), images, labels).mean
        0.0021

    References:
        Yeh, Hsieh, Suggala, Inouye & Ravikumar (2019), "On the (In)fidelity
        and Sensitivity of Explanations". NeurIPS 2019.
        <https://arxiv.org/abs/1901.09392>
    """

    higher_is_better: ClassVar[bool] = False

    perturbation: Callable | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(attrs.validators.is_callable()),
    )
    noise_std: float = attrs.field(default=0.003, kw_only=True, validator=positive_number)
    n_perturb_samples: int = attrs.field(default=10, kw_only=True, validator=positive_int)
    normalize: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    multiply_by_inputs: bool = attrs.field(
        default=False, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    baseline: Any = attrs.field(
        default="zeros", kw_only=True, converter=as_baseline, validator=check_replacement
    )
    blur_sigma: float = attrs.field(default=5.0, kw_only=True, validator=positive_number)
    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    step_batch_size: int = attrs.field(default=16, kw_only=True, validator=positive_int)
    use_probabilities: bool = attrs.field(
        default=False, kw_only=True, validator=attrs.validators.instance_of(bool)
    )

    def _perturbed(self, inputs: tf.Tensor, indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`(k, N, ...)` perturbations `I` and perturbed inputs of runs `indices`."""
        count = tf.shape(indices)[0]
        if self.perturbation is None:
            keys = tf.reshape(run_keys(inputs, self.seed, indices, METRIC_NOISE), [-1])
            shape = tf.concat([tf.shape(keys), tf.shape(inputs)[1:-1], [1]], 0)
            noise = self.noise_std * hashed_normal(shape, keys)
            noise = tf.reshape(noise, tf.concat([[count, -1], shape[1:]], 0))
            return noise, inputs[None] - noise
        copies = tf.reshape(
            tf.tile(inputs[None], [count, *[1] * inputs.shape.rank]),
            tf.concat([[-1], tf.shape(inputs)[1:]], 0),
        )
        out = self.perturbation(copies)
        if isinstance(out, (tuple, list)):
            perturbations, perturbed = (tf.cast(part, tf.float32) for part in out)
        else:
            perturbations = tf.cast(out, tf.float32)
            perturbed = copies - perturbations
        perturbations = tf.broadcast_to(perturbations, tf.shape(copies))
        stacked = tf.concat([[count, -1], tf.shape(inputs)[1:]], 0)
        return tf.reshape(perturbations, stacked), tf.reshape(perturbed, stacked)

    def _perturbed_inputs(self, inputs: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
        return sample_major(self._perturbed(inputs, tf.range(self.n_perturb_samples))[1])

    def _measure(self, batch: Batch) -> tf.Tensor:
        inputs = batch.inputs
        original = batch.score(inputs)
        baseline = None
        if self.multiply_by_inputs:
            baseline = baseline_images(self.baseline, inputs, blur_sigma=self.blur_sigma)

        def perturb(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            perturbations, perturbed = self._perturbed(inputs, indices)
            if baseline is not None:
                perturbations = tf.math.divide_no_nan(perturbations, (inputs - baseline)[None])
            weights = tf.reduce_mean(tf.broadcast_to(perturbations, tf.shape(perturbed)), axis=-1)
            return perturbed, weights

        def score(flat: tuple[tf.Tensor, tf.Tensor], copies: int) -> tf.Tensor:
            images, weights = flat
            maps = tf.tile(batch.maps, [copies, *[1] * (batch.maps.shape.rank - 1)])
            axes = list(range(1, batch.maps.shape.rank))
            dots = tf.reduce_sum(maps * weights, axis=axes)
            return tf.stack([batch.score(images, copies), dots], axis=-1)

        results = evaluate_perturbations(
            perturb, score, self.n_perturb_samples, self.step_batch_size, score_shape=(2,)
        )
        drops = original[None] - results[..., 0]
        dots = results[..., 1]
        if self.normalize:
            beta = tf.math.divide_no_nan(
                tf.reduce_mean(dots * drops, axis=0), tf.reduce_mean(dots**2, axis=0)
            )
            dots = beta[None] * dots
        return tf.reduce_mean(tf.square(dots - drops), axis=0)
