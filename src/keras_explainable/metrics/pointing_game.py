"""The pointing game: whether the map's peak falls on the object.

Zhang, Bargal, Lin, Brandt, Shen & Sclaroff (2018), "Top-down Neural Attention
by Excitation Backprop". https://arxiv.org/abs/1608.00507
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.metrics.base import Batch, Metric
from keras_explainable.validators import non_negative_number

__all__ = ["PointingGame"]


@attrs.define(eq=False)
class PointingGame(Metric):
    """Pointing game: a hit when the map's maximum lies on the ground truth.

    Each sample's value is 1.0 for a hit and 0.0 for a miss, so the mean is
    the hit rate (the localisation accuracy of the paper). The peak is the
    first maximum in row-major order; a constant map has no peak and misses.
    With a `tolerance`, the peak hits when it lies within `tolerance` pixels
    (Euclidean distance between pixel centres) of a ground-truth pixel; the
    paper uses 15 pixels on 224 x 224 images. **Higher is better.**

    Args:
        tolerance: the distance in pixels within which the peak counts as a
            hit (default 0: on the mask or inside the box).
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Call with ground truth as `masks=` (bool `(N, *spatial)`) or `boxes=`
    (`(N, 4)` `(y_min, x_min, y_max, x_max)`, max exclusive); maps must have
    the inputs' size. An empty mask is an error.

    Returns from a call: a `MetricResult` with per-sample hits (1.0 or 0.0).

    Raises:
        ValueError: `tolerance` is negative or not a number.

    Example:
        >>> from keras_explainable import demo
        >>> data = demo.make_shapes(32)
        >>> game = ke.metrics.PointingGame(tolerance=2)
        >>> game(ke.GradCAM(model), data.images, data.labels, masks=data.masks).mean
        0.97

    References:
        Zhang, Bargal, Lin, Brandt, Shen & Sclaroff (2018), "Top-down Neural
        Attention by Excitation Backprop". <https://arxiv.org/abs/1608.00507>
    """

    higher_is_better: ClassVar[bool] = True
    needs_inputs: ClassVar[bool] = False
    needs_masks: ClassVar[bool] = True

    tolerance: float = attrs.field(default=0, kw_only=True, validator=non_negative_number)

    def _measure(self, batch: Batch) -> tf.Tensor:
        maps, masks = batch.maps, batch.masks
        spatial = maps.shape[1:]
        size = tf.shape(maps)[0]
        flat = tf.reshape(maps, [size, -1])
        peaks = tf.argmax(flat, axis=1, output_type=tf.int32)
        constant = tf.reduce_max(flat, axis=1) == tf.reduce_min(flat, axis=1)
        truth = tf.reshape(masks, [size, -1])
        if self.tolerance == 0:
            hits = tf.gather(truth, peaks, batch_dims=1)
        else:
            grid = np.stack(np.meshgrid(*[np.arange(s) for s in spatial], indexing="ij"), -1)
            grid = tf.constant(grid.reshape(-1, len(spatial)).astype(np.float32))
            distances = tf.reduce_sum(
                tf.square(grid[None] - tf.gather(grid, peaks)[:, None]), axis=-1
            )
            near = distances <= float(self.tolerance) ** 2
            hits = tf.reduce_any(truth & near, axis=1)
        return tf.cast(hits & ~constant, tf.float32)
