"""Max- and Avg-Sensitivity: how much a map changes when the input barely does.

Yeh, Hsieh, Suggala, Inouye & Ravikumar (2019), "On the (In)fidelity and
Sensitivity of Explanations". https://arxiv.org/abs/1901.09392
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.base import Explainer
from keras_explainable.explanation import Explanation
from keras_explainable.metrics.perturbs import PerturbsInputs, sample_major
from keras_explainable.metrics.removal import run_keys
from keras_explainable.metrics.rerun import ExplainerRerun, maps_of
from keras_explainable.metrics.result import MetricResult
from keras_explainable.noise import METRIC_NOISE, hashed_uniform
from keras_explainable.validators import check_seed, positive_int, positive_number

__all__ = ["AvgSensitivity", "MaxSensitivity", "SensitivityResult"]


@attrs.frozen(eq=False, repr=False)
class SensitivityResult(MetricResult):
    """Per-sample sensitivities, with the ratio of every perturbation.

    Attributes:
        metric: 'MaxSensitivity' or 'AvgSensitivity'.
        values: float64 `(N,)`: the largest (or mean) ratio of each sample.
        ratios: float32 `(N, n_perturb_samples)`:
            `||phi(x + delta) - phi(x)|| / ||phi(x)||` for each perturbation.

    Example:
        >>> result = ke.metrics.MaxSensitivity()(ke.Saliency(model), x, y)
        >>> result.ratios.mean(axis=1)   # AvgSensitivity, from the same runs
    """

    ratios: np.ndarray = attrs.field(kw_only=True)


@attrs.define(eq=False)
class Sensitivity(PerturbsInputs, ExplainerRerun):
    """Base of Max- and Avg-Sensitivity: re-explain perturbed copies of each input.

    Each sample `x` is perturbed `n_perturb_samples` times, the explainer
    explains every perturbed copy on the same target, and each copy gives the
    ratio `||phi(x + delta) - phi(x)||_F / ||phi(x)||_F` (Frobenius norms of
    the maps). A subclass reduces the ratios to one value per sample.
    """

    higher_is_better: ClassVar[bool] = False

    perturbation: Callable | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(attrs.validators.is_callable()),
    )
    radius: float = attrs.field(default=0.02, kw_only=True, validator=positive_number)
    n_perturb_samples: int = attrs.field(default=10, kw_only=True, validator=positive_int)
    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    step_batch_size: int = attrs.field(default=8, kw_only=True, validator=positive_int)

    @abc.abstractmethod
    def _reduce(self, ratios: np.ndarray) -> np.ndarray:
        """`(n,)` values from `(n, n_perturb_samples)` ratios."""

    def _perturbed(self, inputs: tf.Tensor, indices: np.ndarray) -> tf.Tensor:
        """`(k * n, ...)` perturbed copies `indices` of the batch, copy-major."""
        count = len(indices)
        copies = tf.reshape(
            tf.tile(inputs[None], [count, *[1] * inputs.shape.rank]),
            [-1, *inputs.shape[1:]],
        )
        if self.perturbation is not None:
            return tf.cast(self.perturbation(copies), tf.float32)
        keys = tf.reshape(run_keys(inputs, self.seed, tf.constant(indices), METRIC_NOISE), [-1])
        uniform = hashed_uniform(tf.shape(copies), keys)
        return copies + self.radius * (2.0 * uniform - 1.0)

    def _perturbed_inputs(self, inputs: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
        count = self.n_perturb_samples
        copies = self._perturbed(inputs, np.arange(count))
        return sample_major(tf.reshape(copies, [count, -1, *inputs.shape[1:]]))

    def _compare(
        self, explainer: Explainer, inputs: tf.Tensor, y: Any, explanation: Explanation
    ) -> tuple[np.ndarray, np.ndarray]:
        maps = maps_of(explanation)
        size = len(maps)
        flat = maps.reshape(size, -1).astype(np.float64)
        norms = np.linalg.norm(flat, axis=1)
        ratios = []
        for first in range(0, self.n_perturb_samples, self.step_batch_size):
            indices = np.arange(first, min(first + self.step_batch_size, self.n_perturb_samples))
            copies_y = y if callable(y) or y is None else np.tile(np.asarray(y), len(indices))
            perturbed = explainer.explain(self._perturbed(inputs, indices), copies_y)
            moved = maps_of(perturbed).reshape(len(indices), size, -1).astype(np.float64)
            distances = np.linalg.norm(moved - flat[None], axis=2)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.append(np.where(norms > 0, distances / norms, np.nan))
        ratios = np.concatenate(ratios, axis=0).T.astype(np.float32)
        return self._reduce(ratios), ratios

    def _result(self, values: np.ndarray, *extras: np.ndarray) -> SensitivityResult:
        (ratios,) = extras
        return SensitivityResult(self.name, values.astype(np.float64), ratios=ratios)


@attrs.define(eq=False)
class MaxSensitivity(Sensitivity):
    """Max-Sensitivity: the largest relative change of the map under small noise.

    Each sample `x` is perturbed `n_perturb_samples` times, by default with
    uniform noise in `[-radius, radius]` on every input value (a function of
    the seed, the perturbation's number and the sample's values: the same in
    any batch). The explainer explains every perturbed copy on the sample's
    explained target (a top-class target stays the class explained on `x`),
    and each copy gives the ratio of Frobenius norms

        ||phi(x + delta) - phi(x)|| / ||phi(x)||

    Each sample's value is the largest of its ratios: 0 for a map that
    does not move (Saliency of a linear model). **Lower is better.** A
    sample whose map is all zero has no ratio: NaN, left out of the mean.

    The perturbed copies are explained `step_batch_size` perturbations per
    explainer call (`step_batch_size * batch_size` inputs, which the
    explainer splits into its own batches): the cost is
    `n_perturb_samples` explanations per sample, and memory is bounded by
    one call's copies.

    Conventions: Captum's `sensitivity_max` (radius 0.02, 10
    perturbations, Frobenius norms, the difference divided by the norm of
    the input's map). Quantus's `MaxSensitivity` uses a radius (`lower_bound`) of
    0.2 and 200 samples, and normalises the maps first; pass
    `radius=0.2, n_perturb_samples=200` and an explainer with its default
    `postprocess='auto'` (which also normalises) to come closer. A
    `perturbation` function receives the stacked copies `(k * n, ...)` and
    returns the perturbed inputs (as Captum's `perturb_func`).

    Args:
        perturbation: None (uniform noise) or a function `copies -> perturbed`.
        radius: the half-width of the default uniform noise (default 0.02).
        n_perturb_samples: perturbations per sample (default 10).
        seed: the integer seed of the default noise (default 0).
        step_batch_size: perturbations explained per explainer call
            (default 8); results do not depend on it.
        return_perturbed: keep the perturbed inputs of the first `k`
            samples in the result (default 0).
        batch_size: samples per batch of `x` (default 32).
        verbose: progress display.

    Call with the explainer (not ready-made maps): `metric(explainer, x, y)`.

    Returns from a call: a `SensitivityResult`: per-sample values, their
    `mean` and the `ratios` `(N, n_perturb_samples)`.

    Raises:
        ValueError, TypeError: an option is invalid (at construction), or
            (from a call) maps instead of an explainer.

    Example:
        >>> metric = ke.metrics.MaxSensitivity(radius=0.05, n_perturb_samples=20)
        >>> metric(ke.Saliency(model), images, labels).mean
        0.41

    References:
        Yeh, Hsieh, Suggala, Inouye & Ravikumar (2019), "On the (In)fidelity
        and Sensitivity of Explanations". NeurIPS 2019.
        <https://arxiv.org/abs/1901.09392>
    """

    def _reduce(self, ratios: np.ndarray) -> np.ndarray:
        return ratios.max(axis=1)


@attrs.define(eq=False)
class AvgSensitivity(Sensitivity):
    """Avg-Sensitivity: the mean relative change of the map under small noise.

    Each sample `x` is perturbed `n_perturb_samples` times, by default with
    uniform noise in `[-radius, radius]` on every input value (a function of
    the seed, the perturbation's number and the sample's values: the same in
    any batch). The explainer explains every perturbed copy on the sample's
    explained target (a top-class target stays the class explained on `x`),
    and each copy gives the ratio of Frobenius norms

        ||phi(x + delta) - phi(x)|| / ||phi(x)||

    Each sample's value is the mean of its ratios: 0 for a map that
    does not move (Saliency of a linear model). **Lower is better.** A
    sample whose map is all zero has no ratio: NaN, left out of the mean.

    The perturbed copies are explained `step_batch_size` perturbations per
    explainer call (`step_batch_size * batch_size` inputs, which the
    explainer splits into its own batches): the cost is
    `n_perturb_samples` explanations per sample, and memory is bounded by
    one call's copies.

    Conventions: Captum's `sensitivity_max` with the mean for the max (radius 0.02, 10
    perturbations, Frobenius norms, the difference divided by the norm of
    the input's map). Quantus's `AvgSensitivity` uses a radius (`lower_bound`) of
    0.2 and 200 samples, and normalises the maps first; pass
    `radius=0.2, n_perturb_samples=200` and an explainer with its default
    `postprocess='auto'` (which also normalises) to come closer. A
    `perturbation` function receives the stacked copies `(k * n, ...)` and
    returns the perturbed inputs (as Captum's `perturb_func`).

    Args:
        perturbation: None (uniform noise) or a function `copies -> perturbed`.
        radius: the half-width of the default uniform noise (default 0.02).
        n_perturb_samples: perturbations per sample (default 10).
        seed: the integer seed of the default noise (default 0).
        step_batch_size: perturbations explained per explainer call
            (default 8); results do not depend on it.
        return_perturbed: keep the perturbed inputs of the first `k`
            samples in the result (default 0).
        batch_size: samples per batch of `x` (default 32).
        verbose: progress display.

    Call with the explainer (not ready-made maps): `metric(explainer, x, y)`.

    Returns from a call: a `SensitivityResult`: per-sample values, their
    `mean` and the `ratios` `(N, n_perturb_samples)`.

    Raises:
        ValueError, TypeError: an option is invalid (at construction), or
            (from a call) maps instead of an explainer.

    Example:
        >>> metric = ke.metrics.AvgSensitivity(radius=0.05, n_perturb_samples=20)
        >>> metric(ke.Saliency(model), images, labels).mean
        0.27

    References:
        Yeh, Hsieh, Suggala, Inouye & Ravikumar (2019), "On the (In)fidelity
        and Sensitivity of Explanations". NeurIPS 2019.
        <https://arxiv.org/abs/1901.09392>
    """

    def _reduce(self, ratios: np.ndarray) -> np.ndarray:
        return ratios.mean(axis=1)
