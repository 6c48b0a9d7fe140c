"""The base of Average Drop and Increase in Confidence.

Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), "Grad-CAM++:
Generalized Gradient-based Visual Explanations for Deep Convolutional
Networks". https://arxiv.org/abs/1710.11063
"""

from __future__ import annotations

import abc

import attrs
import tensorflow as tf

from keras_explainable.metrics.base import Batch, ModelMetric
from keras_explainable.metrics.perturbs import PerturbsInputs

__all__ = ["ConfidenceChange", "explanation_images"]


def explanation_images(inputs: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
    """Multiply `(N, *spatial, C)` inputs by their `(N, *spatial)` maps, normalised.

    Each map is rectified and divided by its maximum, so a map already in
    [0, 1] with maximum 1 is used as it is, a constant positive map becomes
    all ones, and an all-zero map stays zero.

    Args:
        inputs: `(N, *spatial, C)` images.
        maps: `(N, *spatial)` maps.

    Returns:
        `(N, *spatial, C)`: the "explanation map" images `x * M` of the paper.
    """
    maps = tf.nn.relu(tf.cast(maps, tf.float32))
    axes = list(range(1, maps.shape.rank))
    maps = tf.math.divide_no_nan(maps, tf.reduce_max(maps, axis=axes, keepdims=True))
    return inputs * tf.cast(maps[..., None], inputs.dtype)


@attrs.define(eq=False)
class ConfidenceChange(PerturbsInputs, ModelMetric):
    """Compare the score of each image with the score of the image times its map.

    With `Y` the explained unit's score (probability by default) on the image
    and `O` its score on the image multiplied by the normalised map (see
    `explanation_images`), a subclass maps `(Y, O)` to a per-sample value.
    Both images are scored in one forward pass.

    Args:
        use_probabilities: score probabilities (default True, as in the
            paper) or logits; see `ModelMetric`.
        return_perturbed: keep the map-weighted images of the first `k`
            samples in the result (default 0), `(k, 1, *input_shape)`.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.
    """

    @abc.abstractmethod
    def _change(self, original: tf.Tensor, explained: tf.Tensor) -> tf.Tensor:
        """Map the scores on the images and on the map-weighted images to values."""

    def _perturbed_inputs(self, inputs: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
        return explanation_images(inputs, maps)[:, None]

    def _measure(self, batch: Batch) -> tf.Tensor:
        images = tf.concat([batch.inputs, explanation_images(batch.inputs, batch.maps)], 0)
        original, explained = tf.split(batch.score(images, copies=2), 2)
        return self._change(original, explained)
