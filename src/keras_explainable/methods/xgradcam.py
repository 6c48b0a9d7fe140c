"""XGrad-CAM: Grad-CAM with gradients averaged under activation weights.

Fu, Hu, Dong, Guo, Gao & Li (2020), "Axiom-based Grad-CAM: Towards
Accurate Visualization and Explanation of CNNs". https://arxiv.org/abs/2008.02312
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.methods.gradcam import GradCAM

__all__ = ["XGradCAM", "xgradcam_weights"]


def xgradcam_weights(features: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
    """XGrad-CAM channel weights: gradients averaged with activation weights.

        w_c = sum_ij (A_ijc / sum_ab A_abc) * G_ijc

    A channel whose activations sum to 0 gets weight 0 (no NaN).

    Args:
        features: `(N, *spatial, C)` activations `A`.
        gradients: `(N, L, *spatial, C)` gradients `G` of each score.

    Returns:
        `(N, L, C)` channel weights.
    """
    features = tf.cast(features, gradients.dtype)
    sums = tf.reduce_sum(features, axis=ops.spatial_axes(features), keepdims=True)
    shares = tf.math.divide_no_nan(features, sums)[:, None]
    return tf.reduce_sum(shares * gradients, axis=list(range(2, gradients.shape.rank - 1)))


@attrs.define(eq=False)
class XGradCAM(GradCAM):
    """XGrad-CAM: Grad-CAM with activation-weighted average gradients.

    As `GradCAM`, the map is `ReLU(sum_c w_c A_c)`, but each channel's
    gradient is averaged with the channel's own normalised activations as
    weights, `w_c = sum_ij (A_ijc / sum_ab A_abc) dS/dA_ijc`, the weights
    the paper derives from its sensitivity and conservation axioms (see
    `xgradcam_weights`). Same cost as `GradCAM`: one forward pass and one
    backward pass through the head per target.

    Args:
        model: the model to explain (see `Explainer`).
        layer: the layer to explain; default the last layer whose output keeps
            the input's spatial dimensions.
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1].

    Raises:
        LayerError: the layer is unknown, ambiguous or does not feed the output.

    Example:
        >>> expl = ke.XGradCAM(model, layer="conv5_block3_out").explain(x, y)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Fu, Hu, Dong, Guo, Gao & Li (2020), "Axiom-based Grad-CAM:
        Towards Accurate Visualization and Explanation of CNNs". BMVC 2020.
        <https://arxiv.org/abs/2008.02312>
    """

    def _channel_weights(self, features: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        return xgradcam_weights(features, gradients)
