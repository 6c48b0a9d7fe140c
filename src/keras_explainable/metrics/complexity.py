"""Complexity: the entropy of a map's share of relevance per feature.

Bhatt, Weller & Moura (2020), "Evaluating and Aggregating Feature-based Model
Explanations". https://arxiv.org/abs/2005.00631
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import tensorflow as tf

from keras_explainable.metrics.base import Batch, Metric

__all__ = ["Complexity"]


@attrs.define(eq=False)
class Complexity(Metric):
    """Complexity: the entropy of the fractional contribution of each position.

    With `p_i = |a_i| / sum_j |a_j|` the share of a map's absolute relevance
    at position `i`, each sample's value is the Shannon entropy (natural
    logarithm)

        H = -sum_i p_i ln p_i        (0 ln 0 = 0)

    0 for a map with one non-zero position, `ln n` for a uniform map of `n`
    positions. A simple map puts its relevance on few features: **lower is
    better**. An all-zero map has no distribution: its value is NaN and the
    mean leaves it out.

    Conventions: as Quantus (`quantus.Complexity`, which calls
    `scipy.stats.entropy` on the absolute values: natural logarithm), except
    that Quantus scores every input feature (each channel apart) while maps
    here have one value per position (the explainer's channel reduction).
    The entropy does not depend on the map's scale, so Quantus's
    normalisation changes nothing.

    Args:
        batch_size: maps per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `MetricResult` with per-sample entropies in nats.

    Raises:
        InputError: (from a call) maps of the wrong shape or with NaN values.

    Example:
        >>> ke.metrics.Complexity()(ke.GradCAM(model), images, labels).mean
        7.9

    References:
        Bhatt, Weller & Moura (2020), "Evaluating and Aggregating
        Feature-based Model Explanations". IJCAI 2020.
        <https://arxiv.org/abs/2005.00631>
    """

    higher_is_better: ClassVar[bool] = False
    needs_inputs: ClassVar[bool] = False

    def _measure(self, batch: Batch) -> tf.Tensor:
        size = tf.shape(batch.maps)[0]
        values = tf.abs(tf.reshape(batch.maps, [size, -1]))
        total = tf.reduce_sum(values, axis=1, keepdims=True)
        shares = values / total
        terms = tf.where(shares > 0, -shares * tf.math.log(shares), tf.zeros_like(shares))
        entropy = tf.reduce_sum(terms, axis=1)
        return tf.where(total[:, 0] > 0, entropy, tf.fill(tf.shape(entropy), float("nan")))
