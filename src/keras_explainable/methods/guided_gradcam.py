"""Guided Grad-CAM: Guided Backprop's map times the upsampled Grad-CAM map.

Selvaraju et al. (2017), "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization". https://arxiv.org/abs/1610.02391
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Attribution
from keras_explainable.exposure import Exposure, expose
from keras_explainable.exposure.relu_rules import ordinary_relu_gradients
from keras_explainable.methods.gradcam import GradCAM
from keras_explainable.methods.guided_backprop import guided_relu_gradient, warn_without_relu
from keras_explainable.targets import Targets

__all__ = ["GuidedGradCAM"]


@attrs.define(eq=False)
class GuidedGradCAM(GradCAM):
    """Guided Grad-CAM maps: fine detail from Guided Backprop, located by Grad-CAM.

    With `G` the Guided Backprop map (the guided input gradient, reduced over
    the input's channels as for `GuidedBackprop`) and
    `L = ReLU(sum_c alpha_c A^c)` the Grad-CAM map of the explained layer,
    upsampled bilinearly to the input's size, the map is the product
    `G * up(L)` at each position. `L` is non-negative and the same for every
    input channel, so reducing the channels before the product (as here) or
    after it (as pytorch-grad-cam, which keeps the RGB channels for display)
    gives the same map.

    Both halves come from one forward pass of the model whose plain ReLUs
    carry Guided Backprop's rule (taps that exist only while the step is
    traced). Grad-CAM's weights `alpha_c`
    use the ordinary gradient from the score to the layer, as in the paper
    (a ReLU in the head, after the layer, passes negative gradients there);
    the guided gradient to the input uses the rule at every ReLU, head
    included. The model itself is not changed. Cost: one forward pass, one
    backward pass to the input and one backward pass through the head per
    target.

    Args:
        model: a Keras model (functional, `Sequential`, nested, keras-hub or
            built subclassed), or a `SplitModel`.
        layer: the layer to explain; default the last layer whose output keeps
            the input's spatial dimensions.
        channel_reduction: how to reduce the guided gradient's input channels:
            'auto' (default: 'max', or 'l2' over a text model's embeddings),
            'max', 'mean', 'sum' or 'l2'; None keeps one map per channel,
            `G_c * up(L)`, maps `(N, *spatial, C, L)`.
        absolute: take the absolute value of the guided gradient before
            reducing (default True): the map is then non-negative. With False
            and 'sum' or 'mean' it is signed.
        **kwargs: the `Explainer` options. 'auto' post-processing min-max
            normalises the map (the Grad-CAM half is rectified by
            definition); the map is built at the input's size, so `resize`
            has no effect. `postprocess=None` returns `G * up(L)` as is.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]
    (`(N, *spatial, C, L)` with `channel_reduction=None`).

    Raises:
        LayerError: the layer is unknown, ambiguous, has no spatial axes or
            does not feed the output.
        ModelStructureError: the model does not say what inputs it takes (a
            subclassed model never built), or a layer with a fused ReLU
            cannot be rebuilt without it.
        ValueError: `channel_reduction` is not 'auto', 'max', 'mean', 'sum', 'l2' or None.

    Example:
        >>> expl = ke.GuidedGradCAM(model, layer="conv5_block3_out").explain(x, y)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), "Grad-CAM:
        Visual Explanations from Deep Networks via Gradient-based
        Localization". <https://arxiv.org/abs/1610.02391>
    """

    rectify = False
    several_inputs_refusal = (
        "it multiplies a layer's map by one input's gradient; use GradCAM (its map "
        "fits the layer's input) and GuidedBackprop (one map per input) separately."
    )

    channel_reduction: str | None = attrs.field(
        default="auto",
        kw_only=True,
        validator=attrs.validators.optional(
            attrs.validators.in_(("auto", *ops.CHANNEL_REDUCTIONS))
        ),
    )
    absolute: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )

    def _expose(self) -> Exposure:
        return expose(self.model, **self._exposure_options(), relu_gradient=guided_relu_gradient)

    def _prepare(self, exposure: Exposure) -> None:
        warn_without_relu(exposure, type(self).__name__)

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        with ordinary_relu_gradients():
            result = self._feature_gradients(inputs, targets)
        features, scores, indices = result.features, result.scores, result.targets
        weights = self._channel_weights(features, result.gradients)
        cam = tf.nn.relu(ops.weighted_feature_sum(features, weights))
        size = [
            tf.shape(inputs)[axis] if length is None else length
            for axis, length in enumerate(inputs.shape[1:-1], start=1)
        ]
        cam = ops.resize_maps(cam, size)
        reduction = ops.gradient_reduction(
            self.channel_reduction, self.exposure.embedding is not None
        )
        guided = ops.gradient_maps(
            self._gradients(scores, inputs, "the input"), reduction, self.absolute
        )
        if reduction is None:
            cam = cam[..., None, :]  # the same located weight for every channel
        return Attribution(cam * tf.cast(guided, tf.float32), scores, indices)
