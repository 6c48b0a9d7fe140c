"""The energy-based pointing game: how much of the map lies on the object.

Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), "Score-CAM:
Score-Weighted Visual Explanations for Convolutional Neural Networks".
https://arxiv.org/abs/1910.01279
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import tensorflow as tf

from keras_explainable.metrics.base import Batch, Metric

__all__ = ["EnergyPointingGame"]


@attrs.define(eq=False)
class EnergyPointingGame(Metric):
    """Energy-based pointing game: the share of the map's mass on the object.

    Each sample's value is `sum(M * G) / sum(M)`, with `M` the map with
    negative values set to zero and `G` the ground truth (1 inside the box or
    mask, 0 outside): 1.0 when all the map's energy lies on the object, 0.0
    when none does (an all-zero map scores 0). Score-CAM used boxes; masks
    give the tighter, shape-aware version. **Higher is better.**

    Args:
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Call with ground truth as `masks=` (bool `(N, *spatial)`) or `boxes=`
    (`(N, 4)` `(y_min, x_min, y_max, x_max)`, max exclusive); maps must have
    the inputs' size. An empty mask is an error.

    Returns from a call: a `MetricResult` with per-sample proportions in [0, 1].

    Raises:
        TypeError: a call without ground truth (`masks=` or `boxes=`).
        InputError: (from a call) empty masks, or masks or boxes that do not
            match the maps.

    Example:
        >>> ke.metrics.EnergyPointingGame()(expl, boxes=data.boxes).mean
        0.64

    References:
        Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), "Score-CAM:
        Score-Weighted Visual Explanations for Convolutional Neural
        Networks". <https://arxiv.org/abs/1910.01279>
    """

    higher_is_better: ClassVar[bool] = True
    needs_inputs: ClassVar[bool] = False
    needs_masks: ClassVar[bool] = True

    def _measure(self, batch: Batch) -> tf.Tensor:
        size = tf.shape(batch.maps)[0]
        energy = tf.reshape(tf.nn.relu(batch.maps), [size, -1])
        inside = tf.reshape(tf.cast(batch.masks, tf.float32), [size, -1])
        return tf.math.divide_no_nan(
            tf.reduce_sum(energy * inside, axis=1), tf.reduce_sum(energy, axis=1)
        )
