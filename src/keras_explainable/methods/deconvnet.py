"""Deconvnet: the input gradient, with ReLUs rectifying the backward signal itself.

Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional
Networks". https://arxiv.org/abs/1311.2901
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable.methods.guided_backprop import GuidedBackprop

__all__ = ["Deconvnet", "deconvnet_relu_gradient"]


def deconvnet_relu_gradient(outputs: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
    """Deconvnet's backward pass through a ReLU: `max(g, 0)`.

    The incoming gradient `g` is rectified, whatever the ReLU's forward input
    was: the deconvolution network applies a ReLU to the signal it
    reconstructs.

    Args:
        outputs: the ReLU's forward outputs (not used by this rule).
        gradients: the gradient that reaches the ReLU's outputs.

    Returns:
        The gradient passed to the ReLU's inputs, of the same shape.

    Example:
        >>> deconvnet_relu_gradient(tf.constant([0.0, 2.0]), tf.constant([1.0, -1.0]))
        <tf.Tensor: shape=(2,), dtype=float32, numpy=array([1., 0.], dtype=float32)>
    """
    del outputs
    return tf.nn.relu(gradients)


@attrs.define(eq=False)
class Deconvnet(GuidedBackprop):
    """Deconvnet maps: Guided Backprop's input gradient with another ReLU rule.

    The gradient of the target score with respect to the input, where the
    backward pass through every ReLU passes `max(g, 0)` for the incoming
    gradient `g`, ignoring where the forward input was positive
    (`deconvnet_relu_gradient`). This is Zeiler & Fergus' projection of a
    unit back to the input through a deconvolution network that reuses the
    network's filters and max-pooling switches. Without the forward mask the
    map depends less on the particular input than Guided Backprop's.

    Everything else is as `GuidedBackprop`: which ReLUs get the rule, the
    channel reduction, post-processing, the warning for a model without
    ReLU, and the cost (one forward and one backward pass per target).

    Args:
        model: a Keras model (functional, `Sequential`, nested, keras-hub or
            built subclassed), or a `SplitModel`; it takes no `layer=`.
        channel_reduction: 'auto' (default: 'max', or 'l2' on a text model),
            'max', 'mean', 'sum' or 'l2'; None keeps one map per channel, maps
            `(N, *spatial, C, L)`.
        absolute: take the absolute value before reducing (default True).
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]
    (`(N, *spatial, C, L)` with `channel_reduction=None`).

    Raises:
        ModelStructureError: the model does not say what inputs it takes (a
            subclassed model never built), or a layer with a fused ReLU
            cannot be rebuilt without it.
        ValueError: `channel_reduction` is not 'auto', 'max', 'mean', 'sum', 'l2' or None.
        LayerError: `layer=` is given: the method explains the input itself.

    Example:
        >>> expl = ke.Deconvnet(model).explain(images, labels)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional
        Networks". <https://arxiv.org/abs/1311.2901>
    """

    relu_gradient = staticmethod(deconvnet_relu_gradient)
