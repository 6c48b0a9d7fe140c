"""LRP on a model's layer calls: which rule each call gets, and the taps that apply them.

`lrp_plan` walks a model map's leaf calls (inside nested models and
composite layers too) and decides, per call:

- a Dense or convolution (`RULED_LAYERS`) gets a rule (`LinearRuleTap`);
  a BatchNormalization that directly follows one, on its channel axis and
  as the only reader of its output, is folded into it (canonisation: the
  layer's map uses `W * scale`, `b * scale + shift`) and itself becomes the
  identity (`FoldedTap`); the model's variables are not changed;
- ReLU-family activations that are not positively homogeneous (ReLU6, ELU,
  GELU, SiLU, ...) pass relevance through unchanged (`PassThroughTap`);
- layers whose ordinary gradient is already the LRP rule (plain ReLU,
  pooling, Add, Concatenate, Flatten, Reshape, padding, dropout, a
  BatchNormalization that is not folded: LRP-0 on a diagonal map) keep it;
- any other layer raises `UnsupportedLayerError`, unless the rules or
  `unsupported="gradient"` say it keeps its ordinary gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import keras
import tensorflow as tf

from keras_explainable.errors import LRPRuleError, UnsupportedLayerError
from keras_explainable.exposure.lrp_rules import (
    COMPOSITES,
    TRANSPOSED_CONV_LAYERS,
    Rule,
    ZBox,
    linear_maps,
    make_rule,
    pass_through,
    ruled_linear,
)
from keras_explainable.exposure.model_map import INFERENCE_IDENTITY_LAYERS, LayerCall, ModelMap
from keras_explainable.exposure.taps import PreActivation, Tap, TappedCall

__all__ = ["GRADIENT", "LRPPlan", "RULED_LAYERS", "lrp_plan"]

#: The rule name that keeps a layer's ordinary gradient.
GRADIENT = "gradient"

DENSE_LAYERS = (keras.layers.Dense,)
CONV_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    *TRANSPOSED_CONV_LAYERS,
)
#: The layers that take an LRP rule.
RULED_LAYERS = DENSE_LAYERS + CONV_LAYERS
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)

#: Layers whose ordinary gradient routes relevance unchanged (between the input and first layers).
ROUTING_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
    keras.layers.Reshape,
    keras.layers.Flatten,
    keras.layers.Permute,
    keras.layers.Concatenate,
    keras.layers.ActivityRegularization,
    keras.layers.Identity,
) + INFERENCE_IDENTITY_LAYERS
#: Pooling and upsampling: each output a maximum or a positive average of its inputs.
_POOLING_LAYERS = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.UpSampling1D,
    keras.layers.UpSampling2D,
    keras.layers.UpSampling3D,
)
#: Layers whose ordinary gradient times input is their LRP relevance.
GRADIENT_LAYERS = (
    ROUTING_LAYERS
    + _POOLING_LAYERS
    + (
        keras.layers.Add,
        keras.layers.Subtract,
        keras.layers.Average,
        keras.layers.BatchNormalization,
        keras.layers.Rescaling,
        keras.layers.Normalization,
        keras.layers.LeakyReLU,
        # A text model's embedding: its output is replaced by the explained embeddings.
        keras.layers.Embedding,
    )
)
#: Positively homogeneous activations: their gradient passes relevance unchanged.
_HOMOGENEOUS = ("relu", "leaky_relu", "linear")
#: Other ReLU-family activations, given a pass-through backward pass.
_RELU_FAMILY = ("relu6", "elu", "selu", "gelu", "silu", "swish", "softplus", "mish")

_SUPPORTED = (
    "Dense, Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D, Conv1D/2D/3DTranspose "
    "(rules); BatchNormalization "
    "(folded, or LRP-0); pooling, Add, Subtract, Average, Concatenate, Flatten, Reshape, "
    "Permute, padding, cropping, upsampling, dropout, Rescaling, Normalization; ReLU-family "
    "activations (pass-through)"
)


def _activation_name(function: Any) -> str | None:
    if function is None:
        return "linear"
    try:
        name = keras.activations.serialize(function)
    except (ValueError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _layer_activation(layer: keras.layers.Layer) -> str | None:
    """The activation a standalone activation layer applies (by name), or None."""
    if isinstance(layer, keras.layers.ReLU):
        if layer.max_value is None and not layer.threshold:
            return "leaky_relu" if layer.negative_slope else "relu"
        return "relu6"  # capped or thresholded: not homogeneous, passed through
    if isinstance(layer, keras.layers.ELU):
        return "elu"
    if isinstance(layer, keras.layers.Activation):
        return _activation_name(layer.activation)
    return None


@attrs.define(eq=False)
class LinearRuleTap(Tap):
    """A Dense or convolution call whose backward pass is an LRP rule.

    Attributes:
        rule: the rule.
        folded: a BatchNormalization folded into the layer, or None.
        activation: the fused activation applied after the map: None
            (linear, or logits stripped), a function with its ordinary
            gradient (ReLU), or passed through (`pass_activation`).
        pass_activation: whether `activation` passes relevance through.
        relevance: the call's backward pass returns the input relevance
            itself (a first layer, when the first layers' rules need it).
    """

    rule: Rule = attrs.field(kw_only=True)
    folded: keras.layers.BatchNormalization | None = attrs.field(default=None, kw_only=True)
    activation: Callable | None = attrs.field(default=None, kw_only=True)
    pass_activation: bool = attrs.field(default=False, kw_only=True)
    relevance: bool = attrs.field(default=False, kw_only=True)
    non_negative: bool = attrs.field(default=False, kw_only=True)

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """The layer's (folded) linear maps with the rule's backward pass, then its activation."""
        outputs = call.inputs
        maps = linear_maps(
            call.layer, outputs.shape.rank, self.folded, self.non_negative, outputs.dtype
        )
        for index, linear in enumerate(maps):
            outputs = ruled_linear(self.rule, linear, outputs, self.relevance and index == 0)
        if self.activation is None:
            return outputs
        if self.pass_activation:
            return pass_through(outputs, self.activation)
        return self.activation(outputs)


@attrs.define(eq=False)
class FoldedTap(Tap):
    """A BatchNormalization folded into the layer before it: its input is already normalised."""

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """The call's input, unchanged."""
        return call.inputs


@attrs.define(eq=False)
class PassThroughTap(Tap):
    """An activation layer that passes relevance through unchanged (`R_in = R_out`)."""

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """The activation of the input, with the pass-through gradient."""
        return pass_through(call.inputs, lambda _: proceed())


@attrs.define(eq=False)
class IdentityGradientTap(Tap):
    """An elementwise layer before the first layers: relevance passes it unchanged."""

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """The layer's output, with the identity as its gradient."""
        inputs = call.inputs
        return inputs + tf.stop_gradient(proceed() - inputs)


@attrs.define(eq=False)
class LRPPlan:
    """What LRP does at each leaf call of a model.

    Attributes:
        taps: the taps that apply it.
        assignment: `{call path: rule}` for every leaf call, in call order:
            a rule's description ("epsilon(epsilon=1e-06)", "zplus" rules are
            `alphabeta(alpha=1.0, beta=0.0)`), "folded into '<path>'" for a
            folded BatchNormalization, "pass-through" or "gradient".
        relevance_at_input: whether the first layers return the input
            relevance itself (a flat, w² or z^B rule among them); else the
            relevance is the input times its modified gradient.
        dropped: the output taps this plan replaces (a logits tap on a
            ruled layer).
    """

    taps: list[Tap]
    assignment: dict[str, str]
    relevance_at_input: bool
    dropped: list[Tap]


def _rule_for(
    call: LayerCall,
    first: bool,
    rule: Any,
    composite: str | None,
    rules: Mapping,
) -> Any:
    """The rule (a name, a `Rule` or GRADIENT) `call` gets; None when nothing assigns one."""
    for key in (call.name, call.layer.name):
        if key in rules:
            return rules[key]
    ruled = isinstance(call.layer, RULED_LAYERS)
    for key, value in rules.items():
        # A composite layer's path: its Dense and convolution layers (any layer for "gradient").
        if (
            isinstance(key, str)
            and call.name.startswith(f"{key}/")
            and (ruled or value == GRADIENT)
        ):
            return value
    if first and "first" in rules and isinstance(call.layer, RULED_LAYERS):
        return rules["first"]
    for key, value in rules.items():
        if isinstance(key, type) and isinstance(call.layer, key):
            return value
    if not isinstance(call.layer, RULED_LAYERS):
        return None
    if rule is not None:
        return rule
    spec = COMPOSITES[composite]
    if first and spec["first"] is not None:
        return spec["first"]
    return spec["dense"] if isinstance(call.layer, DENSE_LAYERS) else spec["conv"]


def _check_rule_keys(rules: Mapping, graph: ModelMap) -> None:
    names = {name for call in graph.calls for name in (call.name, call.layer.name)}
    for key in rules:
        if key == "first" or isinstance(key, type):
            continue
        if not isinstance(key, str) or key not in names:
            raise LRPRuleError(
                f"rules= key {key!r} is not 'first', a layer class, or the path or name of "
                "a layer the model calls; see ke.list_layers(model) for the paths."
            )


def _foldable(bn_call: LayerCall, graph: ModelMap, ruled: dict[int, LayerCall]) -> LayerCall | None:
    """The ruled call a BatchNormalization call folds into, or None."""
    source = bn_call.main_input
    producer = None if source is None else graph.source_call(source)
    if producer is None or id(producer) not in ruled:
        return None
    layer = producer.layer
    if _activation_name(getattr(layer, "activation", None)) != "linear":
        return None
    output = producer.output
    rank = output.shape.rank
    axis = bn_call.layer.axis
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if not isinstance(axis, int):
        return None
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
    if axis % rank != (1 if channels_first else rank - 1):
        return None
    readers = graph.direct_readers(output)
    if [reader.layer for reader in readers] != [bn_call.layer]:
        return None
    return producer


def lrp_plan(
    graph: ModelMap,
    output_taps: tuple[Tap, ...],
    *,
    rule: Any = None,
    composite: str | None = None,
    rules: Mapping | None = None,
    unsupported: str | None = None,
    make: Callable[[Any], Rule] = make_rule,
) -> LRPPlan:
    """Decide the rule of every leaf call of a mapped model, and build the taps.

    Args:
        graph: the model's map.
        output_taps: the exposure's taps (a logits tap on a ruled layer is
            taken over by its rule tap).
        rule: one rule (name or `Rule`) for every Dense and convolution.
        composite: a name of `COMPOSITES` (when `rule` is None).
        rules: overrides: `{"first" | layer class | path or name: rule}`; a
            rule is a name, a `Rule`, or "gradient" (the layer's ordinary
            gradient, for any layer).
        unsupported: "gradient" to let layers without a rule keep their
            ordinary gradient; None raises for them.
        make: turns a rule name into a `Rule`.

    Returns:
        The `LRPPlan`.

    Raises:
        UnsupportedLayerError: a layer has no rule.
        LRPRuleError: a rule does not fit its layer, or a rules= key names no layer.
    """
    rules = dict(rules or {})
    _check_rule_keys(rules, graph)
    leaves = [call for call in graph.calls if not call.composite]
    logits = {
        tap.site: tap
        for tap in output_taps
        if isinstance(tap, PreActivation) and tap.activation is None
    }
    ruled = {id(call): call for call in leaves if isinstance(call.layer, RULED_LAYERS)}
    ruled_outputs = {id(call.output) for call in ruled.values()}
    first = {
        id(call)
        for call in ruled.values()
        if call.main_input is not None and not ruled_outputs & graph.ancestors(call.main_input)
    }
    chosen = {
        id(call): _rule_for(call, id(call) in first, rule, composite, rules) for call in leaves
    }
    built: dict[int, Rule] = {}
    for call in leaves:
        value = chosen[id(call)]
        if value is None or value == GRADIENT:
            continue
        if not isinstance(call.layer, RULED_LAYERS):
            raise LRPRuleError(
                f"Layer {call.name!r} ({type(call.layer).__name__}) cannot take the LRP rule "
                f"{value!r}: only Dense and convolution layers take rules; other layers take "
                "'gradient'."
            )
        built[id(call)] = make(value)
    relevance_at_input = any(built[key].relevance_form for key in first if key in built)
    for key, made in built.items():
        call = ruled[key]
        if isinstance(made, ZBox) and key not in first:
            raise LRPRuleError(
                f"The zbox rule is for inputs bounded by low= and high= (pixels), so it "
                f"applies to the first linear layers only; layer {call.name!r} is not one. "
                "Use it with rules={'first': 'zbox'} or composite='epsilon_gamma_box'."
            )
        if made.relevance_form and isinstance(call.layer, _SEPARABLE):
            raise LRPRuleError(
                f"The {made.name} rule is not defined for the separable convolution "
                f"{call.name!r}; give it another rule."
            )
    if relevance_at_input:
        for key in first:
            if chosen[key] == GRADIENT:
                raise LRPRuleError(
                    f"First layer {ruled[key].name!r} keeps its gradient, while other first "
                    "layers take flat, w² or z^B rules; give it a rule."
                )
            built.setdefault(key, make("zero"))

    taps: list[Tap] = []
    dropped: list[Tap] = []
    assignment: dict[str, str] = {}
    folded: dict[int, LayerCall] = {}
    for call in leaves:
        if isinstance(call.layer, keras.layers.BatchNormalization) and chosen[id(call)] is None:
            target = _foldable(call, graph, {key: ruled[key] for key in built})
            if target is not None:
                folded[id(target)] = call
    folded_bns = {id(bn): target for target, bn in folded.items()}
    before_first = set()
    if relevance_at_input:
        before_first = _before_first(graph, [ruled[key] for key in first])

    for call in leaves:
        layer = call.layer
        key = id(call)
        if key in built:
            activation, passing = _fused(call, logits, unsupported)
            if call.site in logits:
                dropped.append(logits[call.site])
            bn = folded.get(key)
            taps.append(
                LinearRuleTap(
                    call.site,
                    rule=built[key],
                    folded=None if bn is None else bn.layer,
                    activation=activation,
                    pass_activation=passing,
                    relevance=relevance_at_input and key in first,
                    non_negative=_non_negative(graph, call.main_input, {}),
                )
            )
            assignment[call.name] = str(built[key])
            continue
        if key in folded_bns:
            taps.append(FoldedTap(call.site))
            assignment[call.name] = f"folded into {ruled[folded_bns[key]].name!r}"
            continue
        if chosen[key] == GRADIENT or isinstance(layer, RULED_LAYERS):
            assignment[call.name] = GRADIENT
            continue
        if key in before_first and not isinstance(layer, ROUTING_LAYERS):
            if (
                call.output is None
                or call.main_input is None
                or (tuple(call.output.shape) != tuple(call.main_input.shape))
            ):
                raise UnsupportedLayerError(
                    f"Layer {call.name!r} ({type(layer).__name__}) comes before the first "
                    "linear layers, whose flat, w² or z^B rules give the input relevance "
                    "itself; only routing (padding, reshaping, dropout) and elementwise "
                    "layers can pass it on."
                )
            taps.append(IdentityGradientTap(call.site))
            assignment[call.name] = "pass-through"
            continue
        if call.site in logits:
            assignment[call.name] = "logits"
            continue
        name = _layer_activation(layer)
        if name in _HOMOGENEOUS or (name is None and isinstance(layer, GRADIENT_LAYERS)):
            assignment[call.name] = GRADIENT
        elif name in _RELU_FAMILY:
            taps.append(PassThroughTap(call.site))
            assignment[call.name] = "pass-through"
        elif unsupported == GRADIENT:
            assignment[call.name] = GRADIENT
        else:
            raise UnsupportedLayerError(
                f"LRP has no rule for layer {call.name!r} ({type(layer).__name__}). Supported: "
                f"{_SUPPORTED}. Give it a rule (rules={{{call.name!r}: 'gradient'}}) or pass "
                "unsupported='gradient' to keep its ordinary gradient."
            )
    return LRPPlan(taps, assignment, relevance_at_input, dropped)


def _fused(call: LayerCall, logits: dict, unsupported: str | None) -> tuple[Callable | None, bool]:
    """`(activation, pass-through?)` of a ruled layer's fused activation."""
    activation = getattr(call.layer, "activation", None)
    name = _activation_name(activation)
    if name == "linear" or call.site in logits:
        return None, False
    if name in _HOMOGENEOUS:
        return activation, False
    if name in _RELU_FAMILY:
        return activation, True
    if unsupported == GRADIENT:
        return activation, False
    raise UnsupportedLayerError(
        f"LRP has no rule for the activation {name or activation!r} fused into layer "
        f"{call.name!r}; supported are ReLU-family activations (and a softmax or sigmoid "
        "on the explained output, whose logits are explained); pass "
        "unsupported='gradient' to keep its ordinary gradient."
    )


#: Layers whose outputs are >= 0 when all their inputs are.
_KEEPS_SIGN = ROUTING_LAYERS + _POOLING_LAYERS


def _non_negative(graph: ModelMap, tensor: Any, memo: dict) -> bool:
    """Whether `tensor` is >= 0 by construction: a ReLU's output, or routed from ReLUs."""
    if tensor is None:
        return False
    if id(tensor) in memo:
        return memo[id(tensor)]
    call = graph.source_call(tensor)
    result = False
    if call is not None:
        layer = call.layer
        if isinstance(layer, keras.layers.ReLU):
            result = not layer.negative_slope and (layer.threshold or 0) >= 0
        elif isinstance(layer, keras.layers.Activation) or isinstance(layer, RULED_LAYERS):
            result = _activation_name(getattr(layer, "activation", None)) in ("relu", "relu6")
        elif isinstance(layer, _KEEPS_SIGN) and not call.composite:
            result = bool(call.inputs) and all(
                _non_negative(graph, inner, memo) for inner in call.inputs
            )
    memo[id(tensor)] = result
    return result


def _before_first(graph: ModelMap, firsts: list[LayerCall]) -> set[int]:
    """The leaf calls the first layers' inputs are computed from."""
    ancestors: set[int] = set()
    for call in firsts:
        ancestors |= graph.ancestors(call.main_input)
    return {
        id(call)
        for call in graph.calls
        if not call.composite and call.output is not None and id(call.output) in ancestors
    }
