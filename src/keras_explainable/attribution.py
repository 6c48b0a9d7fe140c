"""What a method's `_attribute` returns, and what the gradient helpers give it.

`Attribution` is one batch's raw maps with their scores and targets;
`FeatureGradients` and `InputGradients` are what `Explainer._feature_gradients`
and `Explainer._input_gradients` return to a method.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

__all__ = ["Attribution", "FeatureGradients", "InputGradients"]


class Attribution(NamedTuple):
    """What `_attribute` returns for one batch.

    Attributes:
        maps: `(N, *spatial, L)` raw maps (before post-processing and
            resizing), or per-channel maps `(N, *spatial, C, L)`.
        scores: `(N, L)` explained scores.
        targets: `(N, L)` explained unit indices.
        notes: optional per-sample diagnostics, name -> `(N, ...)` tensor
            (Integrated Gradients' completeness error, say). After each batch
            they reach the explainer's `_report` hook on the host, as numpy
            arrays, so a method can warn about its own accuracy.

    Example:
        A method's `_attribute` returns one (CAM's, here):

        >>> def _attribute(self, inputs, targets):
        ...     features, outputs = self._forward(inputs)
        ...     scores, indices = targets.select(outputs)
        ...     weights = tf.gather(tf.transpose(kernel), indices)   # (N, L, C)
        ...     maps = tf.einsum("nhwc,nlc->nhwl", features, weights)
        ...     return Attribution(maps, scores, indices)
    """

    maps: tf.Tensor
    scores: tf.Tensor
    targets: tf.Tensor
    notes: dict[str, tf.Tensor] | None = None


class FeatureGradients(NamedTuple):
    """Activations of the explained layer and the gradients of each score.

    Attributes:
        features: `(N, *spatial, C)` activations of the explained layer.
        gradients: `(N, L, *spatial, C)` gradient of score `l` w.r.t. features.
        scores: `(N, L)` explained scores.
        targets: `(N, L)` explained unit indices.

    Example:
        Grad-CAM's `_attribute`, for 2-D inputs:

        >>> def _attribute(self, inputs, targets):
        ...     result = self._feature_gradients(inputs, targets)
        ...     weights = tf.reduce_mean(result.gradients, axis=[2, 3])   # (N, L, C)
        ...     maps = tf.einsum("nhwc,nlc->nhwl", result.features, weights)
        ...     return result.attribution(maps)
    """

    features: tf.Tensor
    gradients: tf.Tensor
    scores: tf.Tensor
    targets: tf.Tensor

    def attribution(self, maps: tf.Tensor) -> Attribution:
        """Pair `maps` with these scores and targets."""
        return Attribution(maps, self.scores, self.targets)


class InputGradients(NamedTuple):
    """Gradients of each explained score with respect to the input.

    Attributes:
        gradients: `(N, L, *spatial, C)` gradient of score `l` w.r.t. the input.
        scores: `(N, L)` explained scores.
        targets: `(N, L)` explained unit indices.

    Example:
        The `_attribute` of gradient times input:

        >>> def _attribute(self, inputs, targets):
        ...     result = self._input_gradients(inputs, targets)
        ...     maps = tf.reduce_sum(result.gradients * inputs[:, None], axis=-1)
        ...     return result.attribution(tf.experimental.numpy.moveaxis(maps, 1, -1))
    """

    gradients: tf.Tensor
    scores: tf.Tensor
    targets: tf.Tensor

    def attribution(self, maps: tf.Tensor) -> Attribution:
        """Pair `maps` with these scores and targets."""
        return Attribution(maps, self.scores, self.targets)
