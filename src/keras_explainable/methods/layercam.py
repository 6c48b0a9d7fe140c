"""LayerCAM: activations times their own positive gradients.

Jiang, Zhang, Hou, Cheng & Wei (2021), "LayerCAM: Exploring Hierarchical
Class Activation Maps for Localization". https://doi.org/10.1109/TIP.2021.3089943
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable.methods.hirescam import HiResCAM

__all__ = ["LayerCAM"]


@attrs.define(eq=False)
class LayerCAM(HiResCAM):
    """LayerCAM: each activation weighted by its own positive gradient.

    With activations `A` `(*spatial, C)` of the explained layer and gradients
    `G = dS/dA`, the map is `M_ij = sum_c ReLU(G_ijc) A_ijc`: as `HiResCAM`,
    but only the gradients that raise the score count. Position-wise weights
    keep the detail of earlier, higher-resolution layers, where Grad-CAM's
    averaged weights blur it, so LayerCAM suits shallow layers and maps
    combined across layers. Cost: as `GradCAM`, one forward pass and one
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
        >>> expl = ke.LayerCAM(model, layer="conv3_block4_out").explain(x, y)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Jiang, Zhang, Hou, Cheng & Wei (2021), "LayerCAM: Exploring
        Hierarchical Class Activation Maps for Localization". IEEE
        Transactions on Image Processing 30.
        <https://doi.org/10.1109/TIP.2021.3089943>
    """

    def _position_weights(self, gradients: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(gradients)
