"""Increase in Confidence: how often the map alone raises the score.

Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), "Grad-CAM++:
Generalized Gradient-based Visual Explanations for Deep Convolutional
Networks". https://arxiv.org/abs/1710.11063
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import tensorflow as tf

from keras_explainable.metrics.confidence import ConfidenceChange

__all__ = ["IncreaseInConfidence"]


@attrs.define(eq=False)
class IncreaseInConfidence(ConfidenceChange):
    """Increase in Confidence (%): the share of samples the map makes surer.

    With `Y` the explained unit's probability on the image and `O` its
    probability on the image multiplied by the normalised map (rectified and
    divided by its maximum; see `explanation_images`), each sample's value is
    100 when `Y < O` and 0 otherwise, so the mean is the paper's percentage.
    **Higher is better.**

    Args:
        use_probabilities: score probabilities (default True, as in the
            paper) or logits.
        return_perturbed: keep the map-weighted images of the first `k`
            samples in the result (default 0), `(k, 1, *input_shape)`.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `MetricResult` with per-sample values 0 or 100.

    Raises:
        TypeError: an option is not of its type (at construction), or a call
            without the model: pass an explainer, or maps with `model=`.

    Example:
        >>> ke.metrics.IncreaseInConfidence()(ke.GradCAMPlusPlus(model), images).mean
        31.0

    References:
        Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), "Grad-CAM++:
        Generalized Gradient-based Visual Explanations for Deep Convolutional
        Networks". <https://arxiv.org/abs/1710.11063>
    """

    higher_is_better: ClassVar[bool] = True

    def _change(self, original: tf.Tensor, explained: tf.Tensor) -> tf.Tensor:
        return 100.0 * tf.cast(original < explained, tf.float32)
