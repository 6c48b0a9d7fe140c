"""Layer-wise relevance propagation rules for linear layers, as modified gradients.

LRP (Bach et al. 2015) sends the score back through the network as
*relevance*: each linear layer `z = W x + b` hands the relevance `R` of its
outputs to its inputs by a rule. Here relevance travels as a modified
gradient `g`, with `R = z * g` at a layer's output and `R_in = x * g_in` at
its input, so that:

- a ReLU, max pooling (winner takes all), `Add` (relevance split in
  proportion to the contributions), average pooling, `Concatenate`,
  `Flatten` and `Reshape` keep their ordinary gradient;
- LRP-0 on every layer is the ordinary gradient, so its relevance is
  exactly gradient times input;
- a rule replaces only the backward pass of a linear layer:
  `g_in = W'^T (R / stabilise(z'))`, for a modified forward pass `z'`
  (`W⁺` for z⁺, `W + γW⁺` for γ, ...).

The rules follow Zennit's definitions (Anders et al. 2021), signed inputs
included: `stabilise(z) = z + ε·sign(z)` with `sign(0) = 1`. The flat, w²
and z^B rules redistribute relevance in a way that does not factor as
`x * g_in` (the relevance an input receives does not scale with it): they
return the input relevance itself (`Rule.relevance_form`). On a model's
first linear layers the explainer then reads the relevance at the input
directly; on a hidden layer (flat and w²; z^B is for bounded inputs, the
first layers only) it travels on as `g_in = R_in / x`, and an input that is
exactly 0, a ReLU's unit that is off, passes none on: its ReLU's gradient
would drop it, as in Zennit, where relevance travels as the gradient.

A rule's mathematics is a small pure function of a `LinearMap` (the layer's
operation, kernel and bias: `keras.ops` only), the layer's input `x`, its
output `z` and the incoming gradient `g`. The taps that put the rules on the
layers' calls use `tf.custom_gradient` (TensorFlow-only; on JAX it would be a
`jax.custom_vjp`, on PyTorch an `autograd.Function`), the transposed
maps `W'^T s` are taken with a `tf.GradientTape` over the linear operation,
and LRP-ε's elementwise share is one kernel fused by XLA
(`tf.function(jit_compile=True)`; `jax.jit` on JAX).

References:
    Bach, Binder, Montavon, Klauschen, Müller & Samek (2015), "On Pixel-Wise
    Explanations for Non-Linear Classifier Decisions by Layer-Wise Relevance
    Propagation". <https://doi.org/10.1371/journal.pone.0130140>
    Montavon, Binder, Lapuschkin, Samek & Müller (2019), "Layer-Wise Relevance
    Propagation: An Overview". <https://doi.org/10.1007/978-3-030-28954-6_10>
    Anders, Neumann, Samek, Müller & Lapuschkin (2021), "Software for Dataset-wide
    XAI: From Local Explanations to Global Insights with Zennit, CoRelAy, and
    ViRelAy". <https://arxiv.org/abs/2106.13200>
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "COMPOSITES",
    "RULE_NAMES",
    "TRANSPOSED_CONV_LAYERS",
    "AlphaBeta",
    "Epsilon",
    "Flat",
    "Gamma",
    "LinearMap",
    "Rule",
    "WSquare",
    "ZBox",
    "Zero",
    "linear_maps",
    "make_rule",
    "pass_through",
    "ruled_linear",
    "stabilize",
]

#: Zennit's stabiliser of denominators.
STABILIZER = 1e-6


def stabilize(values: tf.Tensor, epsilon: float = STABILIZER) -> tf.Tensor:
    """`values + epsilon * sign(values)`, with `sign(0) = 1` (Zennit's `stabilize`).

    Example:
        >>> stabilize(tf.constant([-2.0, 0.0, 3.0]), 0.5)   # [-2.5, 0.5, 3.5]
    """
    return values + epsilon * tf.where(values >= 0, 1.0, -1.0)


@attrs.frozen(eq=False)
class LinearMap:
    """A linear layer's operation: `op(x, kernel) + bias`, with the layer's values.

    Attributes:
        op: `(inputs, kernel) -> outputs`, linear in both (a `keras.ops`
            convolution or matmul).
        kernel: the kernel tensor.
        bias: the bias, broadcastable to the outputs, or None.
        non_negative: whether the inputs are known to be >= 0 (they come
            from a ReLU): the rules then skip the terms of negative inputs.
    """

    op: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    kernel: tf.Tensor
    bias: tf.Tensor | None = None
    non_negative: bool = False

    def __call__(
        self, inputs: tf.Tensor, kernel: tf.Tensor | None = None, bias: Any = "own"
    ) -> tf.Tensor:
        """`op(inputs, kernel) + bias` (the map's own kernel and bias by default)."""
        outputs = self.op(inputs, self.kernel if kernel is None else kernel)
        bias = self.bias if isinstance(bias, str) else bias
        return outputs if bias is None else outputs + bias

    def transpose(self, kernel: tf.Tensor, signal: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
        """`kernel^T signal`: the map's transpose applied to `signal`, shaped as `like`."""
        with tf.GradientTape() as tape:
            tape.watch(like)
            outputs = self.op(like, kernel)
        return tape.gradient(outputs, like, output_gradients=signal)


def _positive(values: Any) -> Any:
    return None if values is None else tf.nn.relu(values)


def _negative(values: Any) -> Any:
    return None if values is None else tf.minimum(values, 0.0)


def _add(*parts: Any) -> tf.Tensor:
    return tf.add_n([part for part in parts if part is not None])


@attrs.frozen
class Rule:
    """An LRP rule for a linear layer (subclasses say which).

    `input_gradient(linear, x, z, g)` returns `g_in` with `x * g_in` the
    relevance of the layer's inputs, for the relevance `R = z * g` of its
    outputs; a rule of `relevance_form` returns the input relevance itself
    from `input_relevance`.
    """

    name: ClassVar[str] = ""
    relevance_form: ClassVar[bool] = False
    """Whether the input relevance does not factor as `x * g_in` (flat, w², z^B)."""

    def input_gradient(
        self, linear: LinearMap, x: tf.Tensor, z: tf.Tensor, g: tf.Tensor
    ) -> tf.Tensor:
        """`g_in` such that `x * g_in` is the input relevance."""
        raise NotImplementedError

    def input_relevance(
        self, linear: LinearMap, x: tf.Tensor, z: tf.Tensor, g: tf.Tensor
    ) -> tf.Tensor:
        """The input relevance `R_in`."""
        return x * self.input_gradient(linear, x, z, g)

    def __str__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in attrs.asdict(self).items())
        return f"{self.name}({fields})" if fields else self.name


@attrs.frozen
class Zero(Rule):
    """LRP-0: `R_in = x * W^T (R / z)`, which is the ordinary gradient times input."""

    name: ClassVar[str] = "zero"

    def input_gradient(
        self, linear: LinearMap, x: tf.Tensor, z: tf.Tensor, g: tf.Tensor
    ) -> tf.Tensor:
        """`g_in` (see the class)."""
        del z
        return linear.transpose(linear.kernel, g, x)


@attrs.frozen
class Epsilon(Rule):
    """LRP-ε: `R_in = x * W^T (R / stabilise(z, ε))`; the bias absorbs some relevance."""

    name: ClassVar[str] = "epsilon"
    epsilon: float = 1e-6

    def input_gradient(
        self, linear: LinearMap, x: tf.Tensor, z: tf.Tensor, g: tf.Tensor
    ) -> tf.Tensor:
        """`g_in` (see the class)."""
        return linear.transpose(linear.kernel, _epsilon_signal(z, g, self.epsilon), x)


@tf.function(jit_compile=True, autograph=False)
def _epsilon_signal(z: tf.Tensor, g: tf.Tensor, epsilon: float) -> tf.Tensor:
    """`R / stabilise(z, ε)` for `R = z * g`, as `g |z| / (|z| + ε)`: one fused kernel (XLA)."""
    magnitude = tf.abs(z)
    return g * magnitude / (magnitude + epsilon)


@attrs.frozen
class Gamma(Rule):
    """LRP-γ (generalised to signed inputs, as Zennit): favour positive contributions.

    With `W_↑ = W + γW⁺`, `W_↓ = W + γW⁻` (and the biases alike), outputs with
    `z > 0` redistribute over `W_↑ x⁺ + b_↑ + W_↓ x⁻`, outputs with `z < 0`
    over `W_↓ x⁺ + b_↓ + W_↑ x⁻`.
    """

    name: ClassVar[str] = "gamma"
    gamma: float = 0.25

    def input_gradient(
        self, linear: LinearMap, x: tf.Tensor, z: tf.Tensor, g: tf.Tensor
    ) -> tf.Tensor:
        """`g_in` (see the class)."""
        kernel, bias, gamma = linear.kernel, linear.bias, self.gamma
        up, down = kernel + gamma * _positive(kernel), kernel + gamma * _negative(kernel)
        bias_up = None if bias is None else bias + gamma * _positive(bias)
        bias_down = None if bias is None else bias + gamma * _negative(bias)
        relevance = z * g
        if linear.non_negative:
            s_up = tf.where(z > 0, relevance / stabilize(linear(x, up, bias_up)), 0.0)
            s_down = tf.where(z < 0, relevance / stabilize(linear(x, down, bias_down)), 0.0)
            return linear.transpose(up, s_up, x) + linear.transpose(down, s_down, x)
        xp, xn = tf.nn.relu(x), tf.minimum(x, 0.0)
        up_total = _add(linear(xp, up, bias_up), linear(xn, down, None))
        down_total = _add(linear(xp, down, bias_down), linear(xn, up, None))
        s_up = tf.where(z > 0, relevance / stabilize(up_total), 0.0)
        s_down = tf.where(z < 0, relevance / stabilize(down_total), 0.0)
        on_positive = linear.transpose(up, s_up, x) + linear.transpose(down, s_down, x)
        on_negative = linear.transpose(down, s_up, x) + linear.transpose(up, s_down, x)
        return tf.where(x > 0, on_positive, tf.where(x < 0, on_negative, 0.0))


@attrs.frozen
class AlphaBeta(Rule):
    """LRP-αβ: positive contributions weighted by α, negative ones by β (α − β = 1).

    Positive contributions `W⁺x⁺ + b⁺ + W⁻x⁻` and negative ones
    `W⁻x⁺ + b⁻ + W⁺x⁻` are each normalised separately; α = 1, β = 0 is z⁺.
    """

    name: ClassVar[str] = "alphabeta"
    alpha: float = 2.0
    beta: float = 1.0

    def input_gradient(
        self, linear: LinearMap, x: tf.Tensor, z: tf.Tensor, g: tf.Tensor
    ) -> tf.Tensor:
        """`g_in` (see the class)."""
        kernel, bias = linear.kernel, linear.bias
        wp, wn = _positive(kernel), _negative(kernel)
        relevance = z * g
        if linear.non_negative:
            # For inputs >= 0 the positive part `W⁺x + b⁺` is >= 0, so it is
            # stabilised by adding ε, folded into its bias: no elementwise
            # passes over the layer's outputs beyond the product and quotient.
            shift = STABILIZER if bias is None else _positive(bias) + STABILIZER
            positive = linear(x, wp, shift)
            gradient = linear.transpose(wp, relevance / positive, x)
            if self.alpha != 1.0:
                gradient *= self.alpha
            if self.beta:
                s_neg = relevance / stabilize(linear(x, wn, _negative(bias)))
                gradient -= self.beta * linear.transpose(wn, s_neg, x)
            return gradient
        xp, xn = tf.nn.relu(x), tf.minimum(x, 0.0)
        s_pos = relevance / stabilize(_add(linear(xp, wp, _positive(bias)), linear(xn, wn, None)))
        on_positive = self.alpha * linear.transpose(wp, s_pos, x)
        on_negative = self.alpha * linear.transpose(wn, s_pos, x)
        if self.beta:
            negative = _add(linear(xp, wn, _negative(bias)), linear(xn, wp, None))
            s_neg = relevance / stabilize(negative)
            on_positive -= self.beta * linear.transpose(wn, s_neg, x)
            on_negative -= self.beta * linear.transpose(wp, s_neg, x)
        return tf.where(x > 0, on_positive, tf.where(x < 0, on_negative, 0.0))


@attrs.frozen
class Flat(Rule):
    """Flat: relevance spread evenly over each output's receptive field (weights, inputs 1)."""

    name: ClassVar[str] = "flat"
    relevance_form: ClassVar[bool] = True

    def weights(self, linear: LinearMap) -> tuple[tf.Tensor, tf.Tensor | None]:
        """The kernel and bias relevance is spread by: ones, no bias."""
        return tf.ones_like(linear.kernel), None

    def input_relevance(
        self, linear: LinearMap, x: tf.Tensor, z: tf.Tensor, g: tf.Tensor
    ) -> tf.Tensor:
        """The input relevance (see the class)."""
        kernel, bias = self.weights(linear)
        # The denominator does not depend on the inputs: one sample's, broadcast.
        denominator = stabilize(linear(tf.ones_like(x[:1]), kernel, bias))
        return linear.transpose(kernel, z * g / denominator, x)


@attrs.frozen
class WSquare(Flat):
    """w²: relevance spread in proportion to the squared weights (Zennit squares the bias too)."""

    name: ClassVar[str] = "wsquare"

    def weights(self, linear: LinearMap) -> tuple[tf.Tensor, tf.Tensor | None]:
        """The kernel and bias relevance is spread by: their squares."""
        return tf.square(linear.kernel), None if linear.bias is None else tf.square(linear.bias)


@attrs.frozen
class ZBox(Rule):
    """z^B: for inputs bounded by `low <= x <= high` (the first layer, pixels).

    `R_in = x W^T s - l W⁺^T s - h W⁻^T s` with `s = R / (Wx - W⁺l - W⁻h)`.
    `low` and `high` are scalars or arrays broadcast to the layer's input
    (per channel: shape `(C,)`).
    """

    name: ClassVar[str] = "zbox"
    relevance_form: ClassVar[bool] = True
    low: Any = attrs.field(default=None, eq=False)
    high: Any = attrs.field(default=None, eq=False)

    def input_relevance(
        self, linear: LinearMap, x: tf.Tensor, z: tf.Tensor, g: tf.Tensor
    ) -> tf.Tensor:
        """The input relevance (see the class)."""
        low = tf.broadcast_to(tf.cast(self.low, x.dtype), tf.shape(x))
        high = tf.broadcast_to(tf.cast(self.high, x.dtype), tf.shape(x))
        kernel = linear.kernel
        wp, wn = _positive(kernel), _negative(kernel)
        denominator = linear(x, kernel, None) - linear(low, wp, None) - linear(high, wn, None)
        s = z * g / stabilize(denominator)
        return (
            x * linear.transpose(kernel, s, x)
            - low * linear.transpose(wp, s, x)
            - high * linear.transpose(wn, s, x)
        )

    def __str__(self) -> str:
        return f"zbox(low={np.asarray(self.low).tolist()}, high={np.asarray(self.high).tolist()})"


#: The rule names `make_rule` knows.
RULE_NAMES = (
    "zero",
    "epsilon",
    "gamma",
    "alpha1beta0",
    "alpha2beta1",
    "zplus",
    "flat",
    "wsquare",
    "zbox",
)


def make_rule(
    name: str | Rule,
    *,
    epsilon: float = 1e-6,
    gamma: float = 0.25,
    low: Any = None,
    high: Any = None,
) -> Rule:
    """The rule called `name` (a `Rule` is returned as it is).

    Args:
        name: one of `RULE_NAMES`, or a `Rule`.
        epsilon: ε of "epsilon".
        gamma: γ of "gamma".
        low: the inputs' lower bound, for "zbox".
        high: the inputs' upper bound, for "zbox".

    Returns:
        The `Rule`.

    Raises:
        ValueError: an unknown name, or "zbox" without `low` and `high`.

    Example:
        >>> make_rule("gamma", gamma=0.5)   # Gamma(gamma=0.5)
    """
    from keras_explainable.errors import LRPRuleError

    if isinstance(name, Rule):
        return name
    if name == "zbox" and (low is None or high is None):
        raise LRPRuleError(
            "The zbox rule needs the bounds of the first layer's inputs: pass low= and high= "
            "(e.g. LRP(model, composite='epsilon_gamma_box', low=0.0, high=1.0))."
        )
    rules: dict[str, Callable[[], Rule]] = {
        "zero": Zero,
        "epsilon": lambda: Epsilon(epsilon),
        "gamma": lambda: Gamma(gamma),
        "alpha1beta0": lambda: AlphaBeta(1.0, 0.0),
        "zplus": lambda: AlphaBeta(1.0, 0.0),
        "alpha2beta1": lambda: AlphaBeta(2.0, 1.0),
        "flat": Flat,
        "wsquare": WSquare,
        "zbox": lambda: ZBox(low, high),
    }
    if not isinstance(name, str) or name not in rules:
        raise LRPRuleError(
            f"Unknown LRP rule {name!r}; expected one of {list(RULE_NAMES)}, 'gradient', "
            "or a keras_explainable.exposure.lrp_rules.Rule."
        )
    return rules[name]()


#: Named composites, as Zennit defines them: the rule of dense layers, of
#: convolutions, and of the first linear layer (None: its type's rule).
COMPOSITES: dict[str, dict[str, str | None]] = {
    "epsilon_plus": {"dense": "epsilon", "conv": "zplus", "first": None},
    "epsilon_plus_flat": {"dense": "epsilon", "conv": "zplus", "first": "flat"},
    "epsilon_gamma_box": {"dense": "epsilon", "conv": "gamma", "first": "zbox"},
    "epsilon_alpha2_beta1": {"dense": "epsilon", "conv": "alpha2beta1", "first": None},
    "epsilon_alpha2_beta1_flat": {"dense": "epsilon", "conv": "alpha2beta1", "first": "flat"},
}


# ------------------------------------------------------------ the layers' maps
#: Transposed convolutions: their kernel's output channels are its second-to-last axis.
TRANSPOSED_CONV_LAYERS = (
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)


def _channel_shape(layer: keras.layers.Layer, rank: int) -> tuple[int, ...]:
    """Shape a per-channel vector broadcasts to on the layer's `rank`-D output."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return (1, -1) + (1,) * (rank - 2)
    return (1,) * (rank - 1) + (-1,)


def _folding(bn: keras.layers.BatchNormalization) -> tuple[tf.Tensor, tf.Tensor]:
    """`(scale, shift)` of a BatchNormalization at inference: `y = z * scale + shift`."""
    scale = tf.math.rsqrt(tf.convert_to_tensor(bn.moving_variance) + bn.epsilon)
    if bn.scale:
        scale = scale * tf.convert_to_tensor(bn.gamma)
    shift = -tf.convert_to_tensor(bn.moving_mean) * scale
    if bn.center:
        shift = shift + tf.convert_to_tensor(bn.beta)
    return scale, shift


def linear_maps(
    layer: keras.layers.Layer,
    rank: int,
    folded: keras.layers.BatchNormalization | None = None,
    non_negative: bool = False,
    dtype: Any = None,
) -> list[LinearMap]:
    """The linear maps a Dense or convolution layer applies, in order (a separable conv has two).

    A `BatchNormalization` that follows the layer is folded into the last map:
    kernel `W * scale`, bias `b * scale + shift` (the model is not changed).

    Args:
        layer: a Dense, Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D or
            Conv1D/2D/3DTranspose.
        rank: the rank of the layer's inputs (batch axis included).
        folded: the BatchNormalization folded into the layer, or None.
        non_negative: whether the layer's inputs are known to be >= 0.
        dtype: the dtype of the layer's inputs, which kernels and biases are
            cast to (the layer's compute dtype under mixed precision).

    Returns:
        The `LinearMap`s, with the current values of the layer's variables.
    """
    ops = keras.ops
    data_format = getattr(layer, "data_format", "channels_last")
    channels = _channel_shape(layer, rank)
    common = {}
    if not isinstance(layer, keras.layers.Dense):
        common = {
            "strides": layer.strides,
            "padding": layer.padding,
            "dilation_rate": layer.dilation_rate,
            "data_format": data_format,
        }
    maps: list[tuple[Callable, tf.Tensor]] = []
    if isinstance(layer, keras.layers.Dense):
        maps.append((ops.matmul, tf.convert_to_tensor(layer.kernel)))
    elif isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
        pointwise = {"strides": 1, "padding": "valid", "data_format": data_format}
        maps.append((lambda x, k: ops.depthwise_conv(x, k, **common), layer.depthwise_kernel))
        maps.append((lambda x, k: ops.conv(x, k, **pointwise), layer.pointwise_kernel))
    elif isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
        maps.append((lambda x, k: ops.depthwise_conv(x, k, **common), layer.kernel))
    elif _transposed(layer):
        transposed = {**common, "output_padding": layer.output_padding}
        maps.append((lambda x, k: ops.conv_transpose(x, k, **transposed), layer.kernel))
    else:
        if common["padding"] == "causal":
            pads = [[0, 0]] * rank
            axis = 1 if data_format == "channels_last" else 2
            pads[axis] = [layer.dilation_rate[0] * (layer.kernel_size[0] - 1), 0]
            common = {**common, "padding": "valid"}

            def op(x: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
                return ops.conv(ops.pad(x, pads), k, **common)
        else:

            def op(x: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
                return ops.conv(x, k, **common)

        maps.append((op, tf.convert_to_tensor(layer.kernel)))
    bias = tf.convert_to_tensor(layer.bias) if getattr(layer, "use_bias", False) else None

    def cast(value: Any) -> tf.Tensor:
        value = tf.convert_to_tensor(value)
        return value if dtype is None else tf.cast(value, dtype)

    result = [LinearMap(op, cast(kernel)) for op, kernel in maps[:-1]]
    op, kernel = maps[-1]
    kernel = tf.convert_to_tensor(kernel)
    if folded is not None:
        scale, shift = _folding(folded)
        # The kernel's output channels: its last axis (depthwise: the last two,
        # in x multiplier; transposed: the one before the last).
        if _depthwise(layer):
            scale_shape = kernel.shape[-2:]
        else:
            scale_shape = [-1, 1] if _transposed(layer) else [-1]
        kernel = kernel * tf.reshape(scale, scale_shape)
        bias = shift if bias is None else bias * scale + shift
    if bias is not None:
        bias = tf.reshape(bias, channels)
    result.append(LinearMap(op, cast(kernel), None if bias is None else cast(bias)))
    # Only the first map reads the layer's inputs (a separable conv's second does not).
    result[0] = attrs.evolve(result[0], non_negative=non_negative)
    return result


def _depthwise(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D))


def _transposed(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, TRANSPOSED_CONV_LAYERS)


# ------------------------------------------------------ the modified gradients
def ruled_linear(rule: Rule, linear: LinearMap, inputs: tf.Tensor, relevance: bool) -> tf.Tensor:
    """`linear(inputs)`, whose backward pass is `rule`'s.

    Args:
        rule: the rule.
        linear: the layer's map.
        inputs: the layer's inputs `x`.
        relevance: return the input relevance `R_in` as the gradient (a
            first layer whose rule, or whose fellow first layers' rules, are
            of `relevance_form`), rather than `g_in`.

    Returns:
        The layer's outputs `z`.
    """

    @tf.custom_gradient
    def forward(x: tf.Tensor) -> tuple:
        z = linear(x)

        def backward(g: tf.Tensor) -> tf.Tensor:
            if relevance:
                return rule.input_relevance(linear, x, z, g)
            if rule.relevance_form:
                # A hidden layer: relevance travels on as `g_in = R_in / x`.
                # An input at exactly 0 (a ReLU's off unit) passes none on,
                # as its ReLU's gradient would drop it anyway.
                return tf.math.divide_no_nan(rule.input_relevance(linear, x, z, g), x)
            return rule.input_gradient(linear, x, z, g)

        return z, backward

    return forward(inputs)


def pass_through(inputs: tf.Tensor, activation: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """`activation(inputs)`, passing relevance through unchanged (`R_in = R_out`).

    The gradient is `g * y / z`, so that `z * g_in = y * g` (0 where `z` is 0).

    Example:
        >>> pass_through(z, keras.activations.relu6)
    """

    @tf.custom_gradient
    def forward(z: tf.Tensor) -> tuple:
        y = activation(z)

        def backward(g: tf.Tensor) -> tf.Tensor:
            return g * tf.math.divide_no_nan(y, z)

        return y, backward

    return forward(inputs)
