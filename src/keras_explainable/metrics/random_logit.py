"""Random Logit: how much a map depends on the class it explains.

Sixt, Granz & Landgraf (2020), "When Explanations Lie: Why Many Modified BP
Attributions Fail". ICML 2020. https://arxiv.org/abs/1912.09818
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.base import Explainer
from keras_explainable.errors import InputError, TargetError
from keras_explainable.explanation import Explanation
from keras_explainable.metrics.rerun import ExplainerRerun, maps_of
from keras_explainable.noise import METRIC_SUBSET, hash32, sample_keys, stream_key
from keras_explainable.validators import check_seed, positive_int

__all__ = ["RandomLogit", "ssim"]


def ssim(first: np.ndarray, second: np.ndarray, win_size: int = 7) -> np.ndarray:
    """Mean structural similarity of each pair of 2-D maps, as scikit-image computes it.

    `skimage.metrics.structural_similarity` with its defaults: a uniform
    `win_size x win_size` window, sample covariances, `K1 = 0.01`,
    `K2 = 0.03`, the mean over the windows that fit inside the map, and
    (as Quantus passes it) `data_range` the spread of the pair's values.

    Args:
        first: `(N, H, W)` maps.
        second: `(N, H, W)` maps.
        win_size: the window's side, odd, at most the maps' sides (default 7).

    Returns:
        float64 `(N,)` similarities in [-1, 1]; 1 for identical maps.
    """
    first = tf.constant(first, tf.float64)[..., None]
    second = tf.constant(second, tf.float64)[..., None]
    axes = [1, 2, 3]
    spread = tf.maximum(tf.reduce_max(first, axes), tf.reduce_max(second, axes)) - tf.minimum(
        tf.reduce_min(first, axes), tf.reduce_min(second, axes)
    )
    spread = tf.where(spread > 0, spread, tf.ones_like(spread))[:, None, None, None]

    def mean(values: tf.Tensor) -> tf.Tensor:
        return tf.nn.avg_pool2d(values, win_size, 1, "VALID")

    points = win_size * win_size
    sample = points / (points - 1)
    mean_a, mean_b = mean(first), mean(second)
    var_a = sample * (mean(first * first) - mean_a * mean_a)
    var_b = sample * (mean(second * second) - mean_b * mean_b)
    cov = sample * (mean(first * second) - mean_a * mean_b)
    c1, c2 = (0.01 * spread) ** 2, (0.03 * spread) ** 2
    index = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / (
        (mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2)
    )
    return tf.reduce_mean(index, axis=[1, 2, 3]).numpy()


@attrs.define(eq=False)
class RandomLogit(ExplainerRerun):
    """Random Logit: the similarity of the map of the class and of a random other class.

    Each sample is explained on its target `y` and on another class drawn
    uniformly among the model's other output units (a function of the seed
    and the sample's values: the same in any batch). The value is the
    structural similarity (SSIM) of the two maps: a map that explains the
    class changes with it, so **lower is better**; 1 for a method whose map
    does not depend on the class at all (or a model whose classes look at
    the same evidence).

    Conventions: Quantus's `RandomLogit` (SSIM through scikit-image with
    its defaults, `data_range` the pair's spread; the other class drawn
    uniformly). Quantus normalises both maps first, like an explainer's
    default `postprocess='auto'` here; with `postprocess=None` the raw maps
    are compared. Maps must be 2-D and at least `win_size` on each side.

    Args:
        seed: the integer seed of the other classes (default 0).
        win_size: SSIM's window side (default 7, as scikit-image).
        batch_size: samples per batch of `x` (default 32).
        verbose: progress display.

    Call with the explainer (not ready-made maps): `metric(explainer, x, y)`.
    The model must have at least two output units, and `y` must name them
    (not a callable).

    Returns from a call: a `MetricResult` with per-sample SSIM values.

    Raises:
        ValueError, TypeError: an option is invalid (at construction), or
            (from a call) maps instead of an explainer.
        TargetError: (from a call) a model with one output unit, or targets
            given as a callable.
        InputError: (from a call) maps that are not 2-D or are smaller than
            the window.

    Example:
        >>> ke.metrics.RandomLogit()(ke.GradCAM(model), images, labels).mean
        0.12

    References:
        Sixt, Granz & Landgraf (2020), "When Explanations Lie: Why Many
        Modified BP Attributions Fail". ICML 2020.
        <https://arxiv.org/abs/1912.09818>
    """

    higher_is_better: ClassVar[bool] = False

    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    win_size: int = attrs.field(default=7, kw_only=True, validator=positive_int)

    def __attrs_post_init__(self) -> None:
        if self.win_size % 2 == 0:
            raise ValueError(f"win_size must be odd; got {self.win_size}.")

    def _compare(
        self, explainer: Explainer, inputs: tf.Tensor, y: Any, explanation: Explanation
    ) -> tuple[np.ndarray]:
        units = explainer.exposure.output_units
        if callable(y) or y is None or units is None or units < 2:
            raise TargetError(
                f"{self.name} explains another class of the same output: it needs a model "
                f"with at least two output units and class targets; got {units} unit(s)"
                f"{' and a target callable' if callable(y) else ''}."
            )
        maps = maps_of(explanation)
        if maps.ndim != 3 or min(maps.shape[1:]) < self.win_size:
            raise InputError(
                f"{self.name} compares 2-D maps at least {self.win_size} on each side "
                f"(win_size); got maps of shape {maps.shape[1:]}."
            )
        classes = np.asarray(y, np.int64)
        keys = hash32(sample_keys(inputs) ^ stream_key(self.seed, 0, METRIC_SUBSET))
        shift = 1 + keys.numpy() % (units - 1)
        others = (classes + shift) % units
        other_maps = maps_of(explainer.explain(inputs, others))
        return (ssim(maps, other_maps, self.win_size),)
