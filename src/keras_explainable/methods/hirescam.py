"""HiResCAM: activations times their own gradients, summed over channels.

Draelos & Carin (2020), "Use HiResCAM instead of Grad-CAM for faithful
explanations of convolutional neural networks". https://arxiv.org/abs/2011.08891
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable.base import Attribution, Explainer
from keras_explainable.targets import Targets

__all__ = ["HiResCAM"]


@attrs.define(eq=False)
class HiResCAM(Explainer):
    """High-resolution class activation maps: gradient times activation.

    With activations `A` `(*spatial, C)` of the explained layer and gradients
    `G = dS/dA` of the target score `S`, the map is the element-wise product
    summed over channels, `M_ij = sum_c G_ijc A_ijc`, with no spatial
    averaging of the gradient (which is what lets Grad-CAM highlight
    positions the model did not use). For a head of global average pooling
    and one Dense layer it equals CAM, and the raw map sums to the score
    minus its bias. Cost: as `GradCAM`, one forward pass and one backward
    pass through the head per target.

    The raw map (`postprocess=None`) is signed: negative where the layer's
    activations lower the score. 'auto' post-processing keeps the positive
    evidence (a ReLU) before scaling to [0, 1], as for the rest of the CAM
    family and as pytorch-grad-cam does.

    Args:
        model: the model to explain (see `Explainer`).
        layer: the layer to explain; default the last layer whose output keeps
            the input's spatial dimensions.
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1].

    Raises:
        LayerError: the layer is unknown, ambiguous or does not feed the output.

    Example:
        >>> expl = ke.HiResCAM(model, layer="conv5_block3_out").explain(x, y)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Draelos & Carin (2020), "Use HiResCAM instead of Grad-CAM for faithful
        explanations of convolutional neural networks".
        <https://arxiv.org/abs/2011.08891>
    """

    def _position_weights(self, gradients: tf.Tensor) -> tf.Tensor:
        """`(N, L, *spatial, C)` weights of each activation, from its gradients."""
        return gradients

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        result = self._feature_gradients(inputs, targets)
        weights = self._position_weights(result.gradients)
        features = tf.cast(result.features, weights.dtype)
        return result.attribution(tf.einsum("nl...c,n...c->n...l", weights, features))
