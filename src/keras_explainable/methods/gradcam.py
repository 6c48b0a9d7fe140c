"""Grad-CAM: feature maps weighted by their spatially averaged gradients.

Selvaraju et al. (2017), "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization". https://arxiv.org/abs/1610.02391
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Attribution, Explainer
from keras_explainable.targets import Targets

__all__ = ["GradCAM"]


@attrs.define(eq=False)
class GradCAM(Explainer):
    """Gradient-weighted class activation maps.

    With activations `A` `(*spatial, C)` of the explained layer and target
    score `S`, each channel weight is the spatial mean of the gradient,
    `alpha_c = mean_ij dS/dA_ijc`, and the map is `ReLU(sum_c alpha_c A_c)`.
    The gradient flows back only to the explained layer, so the cost is about
    one forward pass plus a backward pass through the head per target.

    Args:
        model: the model to explain (see `Explainer`).
        layer: the layer to explain; default the last layer whose output keeps
            the input's spatial dimensions.
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1].

    Raises:
        LayerError: the layer is unknown, ambiguous, has no spatial axes or
            does not feed the output.
        ModelStructureError: the model is subclassed (pass a `SplitModel`).

    Example:
        >>> expl = ke.GradCAM(model, layer="conv5_block3_out").explain(x, y)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), "Grad-CAM:
        Visual Explanations from Deep Networks via Gradient-based
        Localization". <https://arxiv.org/abs/1610.02391>
    """

    def _channel_weights(self, features: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        """`(N, L, C)` channel weights from `(N, L, *spatial, C)` gradients."""
        return tf.reduce_mean(gradients, axis=list(range(2, gradients.shape.rank - 1)))

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        result = self._feature_gradients(inputs, targets)
        weights = self._channel_weights(result.features, result.gradients)
        return result.attribution(ops.weighted_feature_sum(result.features, weights))
