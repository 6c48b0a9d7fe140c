"""Sparseness: the Gini index of a map's absolute values.

Chalasani, Chen, Chowdhury, Wu & Jha (2020), "Concise Explanations of Neural
Networks using Adversarial Training". https://arxiv.org/abs/1810.06583
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import tensorflow as tf

from keras_explainable.metrics.base import Batch, Metric

__all__ = ["Sparseness"]


def gini_index(maps: tf.Tensor) -> tf.Tensor:
    """The Gini index of each map's absolute values.

    With `a_1 <= ... <= a_n` a map's absolute values in increasing order,
    `G = sum_k (2k - n - 1) a_k / (n * sum_k a_k)`.

    Args:
        maps: `(N, *spatial)` float maps.

    Returns:
        `(N,)` float32 indices in [0, (n - 1) / n]; NaN for an all-zero map.
    """
    size = tf.shape(maps)[0]
    values = tf.sort(tf.abs(tf.reshape(maps, [size, -1])), axis=1)
    n = tf.cast(tf.shape(values)[1], tf.float32)
    weights = 2.0 * tf.range(1.0, n + 1.0) - n - 1.0
    total = tf.reduce_sum(values, axis=1)
    gini = tf.reduce_sum(values * weights[None], axis=1) / (n * total)
    return tf.where(total > 0, gini, tf.fill(tf.shape(gini), float("nan")))


@attrs.define(eq=False)
class Sparseness(Metric):
    """Sparseness: the Gini index of the map's absolute values.

    With `a_1 <= ... <= a_n` the absolute values of a map's `n` positions in
    increasing order, each sample's value is

        G = sum_k (2k - n - 1) a_k / (n * sum_k a_k)

    0 for a uniform map, `(n - 1) / n` for a map with one non-zero position.
    A concise map puts its relevance on few features: **higher is better**.
    An all-zero map has no distribution of relevance: its value is NaN and
    the mean leaves it out.

    Conventions: Quantus (`quantus.Sparseness`) adds 1e-7 to every value
    (so an all-zero map scores 0) and scores every input feature (each
    channel apart); here maps have one value per position (the explainer's
    channel reduction) and an all-zero map is NaN. Both take absolute
    values; the index does not depend on the map's scale, so Quantus's
    normalisation changes nothing.

    Args:
        batch_size: maps per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `MetricResult` with per-sample Gini indices.

    Raises:
        InputError: (from a call) maps of the wrong shape or with NaN values.

    Example:
        >>> ke.metrics.Sparseness()(ke.Saliency(model), images, labels).mean
        0.52
        >>> ke.metrics.Sparseness()(expl).values   # ready-made maps, no inputs

    References:
        Chalasani, Chen, Chowdhury, Wu & Jha (2020), "Concise Explanations of
        Neural Networks using Adversarial Training". ICML 2020.
        <https://arxiv.org/abs/1810.06583>
    """

    higher_is_better: ClassVar[bool] = True
    needs_inputs: ClassVar[bool] = False

    def _measure(self, batch: Batch) -> tf.Tensor:
        return gini_index(batch.maps)
