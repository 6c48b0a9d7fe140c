"""ReLUs with another backward pass: the taps behind Guided Backprop and Deconvnet.

A `ReLURule` tap computes a ReLU's forward pass, `max(z, 0)`, and maps the
incoming gradient with a *rule* on the way back. It sits on a plain ReLU
layer (its input is `z`), or on a layer with a ReLU fused into it
(`Conv2D(..., activation="relu")`), which then runs as its linear twin, `z`,
followed by the ruled ReLU. `relu_rule_taps` puts one on every plain ReLU a
model map reaches, at any depth. `ordinary_relu_gradients()` switches the
rules back to the ordinary ReLU gradient while a gradient is built, so one
forward pass can serve a ruled and an ordinary backward pass.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import keras
import tensorflow as tf

from keras_explainable.exposure.taps import Tap, TappedCall
from keras_explainable.exposure.twins import LINEAR_MAP_LAYERS, linear_twin

__all__ = [
    "RELU_FUNCTIONS",
    "ReLUGradient",
    "ReLURule",
    "has_fused_relu",
    "is_plain_relu",
    "is_relu_function",
    "ordinary_relu_gradients",
    "rectify",
    "relu_rule_taps",
]

#: The activation functions taken for a plain ReLU, `max(x, 0)`.
RELU_FUNCTIONS = (keras.activations.relu, keras.ops.relu, tf.nn.relu)

#: A ReLU's backward rule: `rule(outputs, gradients)` maps the gradient that
#: reaches a ReLU's output to the gradient it passes to its input; `outputs`
#: are the ReLU's forward outputs (positive exactly where its input is).
ReLUGradient = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

_ORDINARY_RELU_GRADIENTS = contextvars.ContextVar("ordinary_relu_gradients", default=False)


@contextlib.contextmanager
def ordinary_relu_gradients() -> Iterator[None]:
    """Build ordinary ReLU gradients through ruled ReLUs.

    A ruled ReLU chooses its backward pass when the gradient is built
    (`tf.gradients` or `GradientTape.gradient` inside this block), not when
    the forward pass runs. So one forward pass can serve two backward
    passes: one with the rules and, inside this block, one with the ReLU's
    ordinary gradient `g * (outputs > 0)`. Guided Grad-CAM uses it for the
    Grad-CAM half of its map.

    Example:
        >>> features, outputs = guided_exposure(x)
        >>> with ordinary_relu_gradients():
        ...     plain = tf.gradients(score, features)   # ordinary ReLU gradients
        >>> guided = tf.gradients(score, x)   # the rules
    """
    token = _ORDINARY_RELU_GRADIENTS.set(True)
    try:
        yield
    finally:
        _ORDINARY_RELU_GRADIENTS.reset(token)


def rectify(inputs: tf.Tensor, rule: ReLUGradient) -> tf.Tensor:
    """`max(inputs, 0)`, whose gradient is `rule(outputs, gradients)`.

    Example:
        >>> guided = lambda y, g: tf.nn.relu(g) * tf.cast(y > 0, g.dtype)
        >>> rectify(tf.constant([-1.0, 2.0]), guided)   # [0., 2.]
    """

    @tf.custom_gradient
    def rectified(x: tf.Tensor) -> tuple:
        outputs = tf.nn.relu(x)

        def backward(gradients: tf.Tensor) -> tf.Tensor:
            if _ORDINARY_RELU_GRADIENTS.get():
                return tf.raw_ops.ReluGrad(gradients=gradients, features=outputs)
            return rule(outputs, gradients)

        return outputs, backward

    return rectified(inputs)


def is_relu_function(function: Any) -> bool:
    """Whether `function` is one of `RELU_FUNCTIONS` (a layer's `activation`)."""
    return any(function is relu for relu in RELU_FUNCTIONS)


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


def has_fused_relu(layer: Any) -> bool:
    """Whether `layer` applies a plain ReLU last, to a linear map."""
    return isinstance(layer, LINEAR_MAP_LAYERS) and is_relu_function(
        getattr(layer, "activation", None)
    )


@attrs.define(eq=False)
class ReLURule(Tap):
    """A ReLU whose backward pass follows a rule; the forward pass is unchanged.

    Attributes:
        rule: the backward rule, `(outputs, gradients) -> gradients`.
        twin: for a layer with a fused ReLU, its linear twin (the ReLU's
            input is then the twin's output); None for a plain ReLU layer.
    """

    rule: ReLUGradient = attrs.field(kw_only=True)
    twin: keras.layers.Layer | None = attrs.field(default=None, kw_only=True)

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """The ReLU of the layer's input (or of its twin's output), with the rule's gradient."""
        if self.twin is None:
            return rectify(call.inputs, self.rule)
        return rectify(self.twin(*call.args, **call.kwargs), self.rule)


def relu_rule_taps(calls: Any, rule: ReLUGradient) -> list[ReLURule]:
    """A `ReLURule` on every call of a plain ReLU among `calls` (`LayerCall`s of a map).

    Plain ReLU layers, and layers with a ReLU fused into a linear map, at any
    depth; other activations (and ReLUs written as operations inside a
    layer's code) keep their gradient.
    """
    taps = []
    twins: dict[int, keras.layers.Layer] = {}
    for call in calls:
        if call.composite:
            continue
        if is_plain_relu(call.layer):
            taps.append(ReLURule(call.site, rule=rule))
        elif has_fused_relu(call.layer):
            twin = twins.get(id(call.layer))
            if twin is None:
                twin = twins[id(call.layer)] = linear_twin(call.layer, *call.inputs[:1])
            taps.append(ReLURule(call.site, rule=rule, twin=twin))
    return taps
