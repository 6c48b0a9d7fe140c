"""Guided Backpropagation: the input gradient, passing back only positive signals at ReLUs.

Springenberg, Dosovitskiy, Brox & Riedmiller (2015), "Striving for Simplicity:
The All Convolutional Net". https://arxiv.org/abs/1412.6806
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import attrs
import tensorflow as tf

from keras_explainable.exposure import Exposure, expose
from keras_explainable.exposure.relu_rules import ReLUGradient, ReLURule
from keras_explainable.methods.saliency import Saliency

__all__ = ["GuidedBackprop", "guided_relu_gradient", "warn_without_relu"]


def guided_relu_gradient(outputs: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
    """Guided Backprop's backward pass through a ReLU.

    The gradient `g` passes where the ReLU's forward input was positive (as
    for the ordinary gradient) and where `g` itself is positive:
    `g * (outputs > 0) * (g > 0)`.

    Args:
        outputs: the ReLU's forward outputs.
        gradients: the gradient that reaches the ReLU's outputs.

    Returns:
        The gradient passed to the ReLU's inputs, of the same shape.

    Example:
        >>> guided_relu_gradient(tf.constant([0.0, 2.0, 3.0]), tf.constant([1.0, -1.0, 5.0]))
        <tf.Tensor: shape=(3,), dtype=float32, numpy=array([0., 0., 5.], dtype=float32)>
    """
    return tf.raw_ops.ReluGrad(gradients=tf.nn.relu(gradients), features=outputs)


def warn_without_relu(exposure: Exposure, method: str) -> None:
    """Warn that `method` equals plain input gradients when no ReLU was replaced.

    Args:
        exposure: an exposure built with `relu_gradient`.
        method: the method's name, for the message.
    """
    if any(isinstance(tap, ReLURule) for tap in exposure.taps):
        return
    warnings.warn(
        f"{method}: the model has no plain ReLU that keras-explainable can see (ReLU() "
        'layers, Activation("relu") layers, or activation="relu" in Dense and '
        "convolution layers), so no backward rule applies and its input gradient "
        "equals Saliency's. Capped, leaky and thresholded ReLUs, and ReLUs written as "
        "operations inside a layer's code, keep their ordinary gradient.",
        UserWarning,
        stacklevel=5,
    )


@attrs.define(eq=False)
class GuidedBackprop(Saliency):
    """Guided Backpropagation maps.

    The gradient of the target score `S` with respect to the input, where the
    backward pass through every ReLU `y = max(z, 0)` passes the incoming
    gradient `g` only where the forward input was positive *and* `g` is
    positive: `g * (z > 0) * (g > 0)` (`guided_relu_gradient`). Negative
    gradients, which would suppress the score, are stopped at every ReLU, so
    the map keeps the input patterns that excite the score, in fine detail.
    The map at each position is then reduced over the input's channels as
    for `Saliency` (default: the largest absolute value).

    The rule applies to every plain ReLU: `keras.layers.ReLU()` layers,
    `Activation("relu")` layers and `activation="relu"` fused into Dense,
    EinsumDense and convolution layers, at any depth: in nested models,
    inside composite layers (a keras-hub block) and subclassed models.
    Capped, leaky or thresholded ReLUs (`ReLU(max_value=6)`, `LeakyReLU`,
    "relu6") are not ReLUs for the rule and keep their ordinary gradient, as
    do ReLUs written as operations in a layer's code. A model without a plain
    ReLU gets a warning: its map equals Saliency's.

    The rule is a tap on each ReLU (`keras_explainable.exposure.relu_rules`)
    that exists only while the compiled step is traced: the model itself and
    other explainers on it keep their ordinary gradients. Cost: one forward
    and one backward pass to the input per target, as Saliency.

    Args:
        model: a Keras model (functional, `Sequential`, nested, keras-hub or
            built subclassed), or a `SplitModel`; it takes no `layer=`.
        channel_reduction: how to reduce the input channels at each position:
            'auto' (default: 'max', or 'l2' on a text model), 'max', 'mean',
            'sum' or 'l2'; None keeps one map per channel, maps `(N, *spatial,
            C, L)`.
        absolute: take the absolute value of the gradient before reducing
            (default True). 'auto' post-processing then min-max normalises
            the map, as for `Saliency`; with False and 'sum' or 'mean' the
            raw map is signed.
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`).

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]
    (`(N, *spatial, C, L)` with `channel_reduction=None`).

    Raises:
        ModelStructureError: the model does not say what inputs it takes (a
            subclassed model never built), or a layer with a fused ReLU
            cannot be rebuilt without it.
        ValueError: `channel_reduction` is not 'auto', 'max', 'mean', 'sum', 'l2' or None.
        LayerError: `layer=` is given: the method explains the input itself.

    Example:
        >>> expl = ke.GuidedBackprop(model).explain(images, labels)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Springenberg, Dosovitskiy, Brox & Riedmiller (2015), "Striving for
        Simplicity: The All Convolutional Net". <https://arxiv.org/abs/1412.6806>
    """

    relu_gradient: ClassVar[ReLUGradient] = staticmethod(guided_relu_gradient)
    """The backward rule at every plain ReLU, `(outputs, gradients) -> gradients`."""

    def _expose(self) -> Exposure:
        return expose(
            self.model,
            needs_layer=False,
            output=self.output,
            logits=self.logits,
            relu_gradient=self.relu_gradient,
        )

    def _prepare(self, exposure: Exposure) -> None:
        warn_without_relu(exposure, type(self).__name__)
