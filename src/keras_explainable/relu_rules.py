"""ReLUs with another backward pass: the layer behind Guided Backprop and Deconvnet.

`ReLUWithGradient` computes `max(x, 0)` forward and maps the incoming
gradient with a *rule* backward. The graph replay (`keras_explainable.graph`,
`relu_gradient=`) puts it in place of a model's plain ReLUs in a replayed
copy of the graph, so the model itself keeps its ordinary gradients.
`ordinary_relu_gradients()` switches the layers back to the ordinary ReLU
gradient while a gradient is built, so one forward pass can serve a ruled and
an ordinary backward pass.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import keras
import tensorflow as tf

__all__ = [
    "RELU_FUNCTIONS",
    "ReLUGradient",
    "ReLUWithGradient",
    "is_plain_relu",
    "is_relu_function",
    "ordinary_relu_gradients",
]

#: The activation functions the replay takes for a plain ReLU, `max(x, 0)`.
RELU_FUNCTIONS = (keras.activations.relu, keras.ops.relu, tf.nn.relu)

#: A ReLU's backward rule: `rule(outputs, gradients)` maps the gradient that
#: reaches a ReLU's output to the gradient it passes to its input; `outputs`
#: are the ReLU's forward outputs (positive exactly where its input is).
ReLUGradient = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

_ORDINARY_RELU_GRADIENTS = contextvars.ContextVar("ordinary_relu_gradients", default=False)


@contextlib.contextmanager
def ordinary_relu_gradients() -> Iterator[None]:
    """Build ordinary ReLU gradients through `ReLUWithGradient` layers.

    A `ReLUWithGradient` layer chooses its backward pass when the gradient
    is built (`tf.gradients` or `GradientTape.gradient` inside this block),
    not when the forward pass runs. So one forward pass can serve two
    backward passes: one with the layers' rules and, inside this block, one
    with the ReLU's ordinary gradient `g * (outputs > 0)`. Guided Grad-CAM
    uses it for the Grad-CAM half of its map.

    Example:
        >>> features, outputs = guided_exposure(x)
        >>> with ordinary_relu_gradients():
        ...     plain = tf.gradients(score, features)   # ordinary ReLU gradients
        >>> guided = tf.gradients(score, x)   # the layers' rules
    """
    token = _ORDINARY_RELU_GRADIENTS.set(True)
    try:
        yield
    finally:
        _ORDINARY_RELU_GRADIENTS.reset(token)


def _rectify(inputs: tf.Tensor, rule: ReLUGradient) -> tf.Tensor:
    @tf.custom_gradient
    def rectify(x: tf.Tensor) -> tuple:
        outputs = tf.nn.relu(x)

        def backward(gradients: tf.Tensor) -> tf.Tensor:
            if _ORDINARY_RELU_GRADIENTS.get():
                return tf.raw_ops.ReluGrad(gradients=gradients, features=outputs)
            return rule(outputs, gradients)

        return outputs, backward

    return rectify(inputs)


class ReLUWithGradient(keras.layers.Layer):
    """A ReLU whose backward pass follows a rule.

    The forward pass is `max(x, 0)`, as a ReLU's. The backward pass maps the
    gradient `g` that reaches the output to `rule(outputs, g)` (inside
    `ordinary_relu_gradients()`, to the ReLU's own gradient instead). The
    replay puts it in place of the model's ReLUs when given `relu_gradient`;
    it is not meant to be saved.

    Args:
        rule: the backward rule, `(outputs, gradients) -> gradients`, all of
            the layer's input shape.
        **kwargs: `keras.layers.Layer` options (`name`, `dtype`).

    Example:
        >>> guided = ReLUWithGradient(lambda y, g: tf.nn.relu(g) * tf.cast(y > 0, g.dtype))
        >>> guided(tf.constant([-1.0, 2.0]))   # [0., 2.]
    """

    def __init__(self, rule: ReLUGradient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        """`max(inputs, 0)`, with the rule's gradient."""
        return _rectify(inputs, self.rule)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The input's shape."""
        return input_shape


def is_plain_relu(layer: Any) -> bool:
    """Whether `layer` is a plain ReLU layer, `max(x, 0)`.

    That is a `keras.layers.ReLU` without `max_value`, `negative_slope` or
    `threshold`, or an `Activation` layer of `RELU_FUNCTIONS`. Capped, leaky
    and thresholded ReLUs (`ReLU(max_value=6)`, `LeakyReLU`, "relu6") are
    not plain.
    """
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and not layer.negative_slope and not layer.threshold
    return isinstance(layer, keras.layers.Activation) and is_relu_function(layer.activation)


def is_relu_function(function: Any) -> bool:
    """Whether `function` is one of `RELU_FUNCTIONS` (a layer's `activation`)."""
    return any(function is relu for relu in RELU_FUNCTIONS)
