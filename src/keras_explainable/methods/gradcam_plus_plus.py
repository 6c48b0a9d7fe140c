"""Grad-CAM++: Grad-CAM with pixel-wise weighted positive gradients.

Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), "Grad-CAM++:
Improved Visual Explanations for Deep Convolutional Networks".
https://arxiv.org/abs/1710.11063
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.methods.gradcam import GradCAM

__all__ = ["GradCAMPlusPlus", "gradcam_plus_plus_weights"]


def gradcam_plus_plus_weights(features: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
    """Grad-CAM++ channel weights (the paper's closed form, Eq. 19).

    With `g = dS/dA` the gradient of the score `S` w.r.t. the activations `A`,
    the paper explains `exp(S)`, whose higher derivatives are powers of `g`
    times `exp(S)` (exact when `S` is piecewise linear in `A`). Then

        alpha_ijc = g_ijc^2 / (2 g_ijc^2 + (sum_ab A_abc) g_ijc^3)
        w_c = sum_ij alpha_ijc * relu(g_ijc)

    The factor `exp(S)` cancels in `alpha` and multiplies every `w_c` of a
    map by the same positive constant, which min-max normalisation removes;
    it is left out (it also overflows float32 for scores above ~88). Where
    the denominator is 0, `alpha` is 0 (as in pytorch-grad-cam), so no NaN.

    Args:
        features: `(N, *spatial, C)` activations `A`.
        gradients: `(N, L, *spatial, C)` gradients `g` of each score.

    Returns:
        `(N, L, C)` channel weights.
    """
    features = tf.cast(features, gradients.dtype)
    spatial = list(range(2, gradients.shape.rank - 1))
    # sum_ab A_abc, broadcast over targets and positions: (N, 1, 1.., C).
    feature_sums = tf.reduce_sum(features, axis=ops.spatial_axes(features), keepdims=True)
    feature_sums = tf.expand_dims(feature_sums, 1)
    squared = tf.square(gradients)
    denominator = 2.0 * squared + feature_sums * squared * gradients
    alpha = tf.math.divide_no_nan(squared, denominator)
    return tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=spatial)


@attrs.define(eq=False)
class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++: channels weighted by pixel-wise weighted positive gradients.

    As `GradCAM`, the map is `ReLU(sum_c w_c A_c)`, but each channel weight
    sums the positive gradients with per-position coefficients `alpha` (see
    `gradcam_plus_plus_weights`) instead of averaging all gradients, so
    several instances of a class and small objects are better covered. Same
    cost as `GradCAM`: one forward pass and one backward pass through the
    head per target.

    Args:
        model: the model to explain (see `Explainer`).
        layer: the layer to explain; default the last layer whose output keeps
            the input's spatial dimensions.
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]. With
    `postprocess=None`, raw maps are the paper's maps divided by `exp(S)`.

    Raises:
        LayerError: the layer is unknown, ambiguous or does not feed the output.

    Example:
        >>> expl = ke.GradCAMPlusPlus(model, layer="conv5_block3_out").explain(x, y)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), "Grad-CAM++:
        Improved Visual Explanations for Deep Convolutional Networks".
        <https://arxiv.org/abs/1710.11063>
    """

    def _channel_weights(self, features: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        return gradcam_plus_plus_weights(features, gradients)
