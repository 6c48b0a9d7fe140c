"""Average Drop: how much of the score the map alone keeps.

Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), "Grad-CAM++:
Generalized Gradient-based Visual Explanations for Deep Convolutional
Networks". https://arxiv.org/abs/1710.11063
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import tensorflow as tf

from keras_explainable.metrics.confidence import ConfidenceChange

__all__ = ["AverageDrop"]


@attrs.define(eq=False)
class AverageDrop(ConfidenceChange):
    """Average Drop (%): the score lost when only the explained region is kept.

    With `Y` the explained unit's probability on the image and `O` its
    probability on the image multiplied by the normalised map (rectified and
    divided by its maximum; see `explanation_images`), each sample's value is

        100 * max(0, Y - O) / Y

    and the mean over samples is the paper's Average Drop. A map that keeps
    what the prediction needs loses little: **lower is better**; an all-ones
    map scores 0. A sample whose score `Y` is not positive (possible with
    `use_probabilities=False`) has no relative drop: its value is NaN and the
    mean leaves it out.

    Args:
        use_probabilities: score probabilities (default True, as in the
            paper) or logits.
        return_perturbed: keep the map-weighted images of the first `k`
            samples in the result (default 0), `(k, 1, *input_shape)`.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `MetricResult` with per-sample drops in percent.

    Raises:
        TypeError: an option is not of its type (at construction), or a call
            without the model: pass an explainer, or maps with `model=`.

    Example:
        >>> ke.metrics.AverageDrop()(ke.GradCAMPlusPlus(model), images, labels).mean
        19.5

    References:
        Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), "Grad-CAM++:
        Generalized Gradient-based Visual Explanations for Deep Convolutional
        Networks". <https://arxiv.org/abs/1710.11063>
    """

    higher_is_better: ClassVar[bool] = False

    def _change(self, original: tf.Tensor, explained: tf.Tensor) -> tf.Tensor:
        drop = 100.0 * tf.nn.relu(original - explained) / original
        return tf.where(original > 0, drop, tf.fill(tf.shape(drop), float("nan")))
