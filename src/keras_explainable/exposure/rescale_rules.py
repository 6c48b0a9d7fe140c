"""Elementwise nonlinearities whose backward pass uses reference multipliers (DeepLIFT).

The relatives of `relu_rules`: a tap on each elementwise nonlinearity
`y = f(u)` of a model keeps its forward pass and changes its backward pass.
Here the rule needs a *reference*: the nonlinearity's input `u0` and output
`y0` on the baseline. So a method runs two passes (`rescaled_forward`):

1. the reference pass, on the baselines, with a `ReferenceInput` tap on each
   nonlinearity recording its input `u0`;
2. the explained pass, on the inputs, with a `Multiplied` tap on each
   nonlinearity whose output is `f(u)` and whose local derivative is the
   multiplier `rule(u, y, u0, y0, derivative)` (DeepLIFT's rescale rule:
   `(y - y0) / (u - u0)`).

A baseline shared by every batch of a run has its reference pass once per
run (`SharedReferences`): its `u0` are kept in variables that each batch's
`Multiplied` taps read. Where they cannot be kept (inputs of unknown size,
a text model), a shared baseline is stacked after the inputs, and each
`Multiplied` tap reads `u0` from the batch's last sample.

Linear layers (Dense, convolutions, BatchNormalization in inference, Add,
pooling by averages) keep their ordinary gradients.

Which calls are nonlinearities (`nonlinearities`): `ReLU`, `LeakyReLU`,
`ELU` and `PReLU` layers, `Activation` layers of an elementwise activation
(`ELEMENTWISE_ACTIVATIONS`), and the fused elementwise activation of Dense,
EinsumDense and convolution layers (run as their linear twin then the
activation, as `ReLURule` does). Softmax and other activations that mix
elements keep their ordinary gradient.

The multiplier is evaluated in float64 (`precise_multiplier`): in float32
the difference quotient of a curved function loses its digits where `u` is
close to `u0`.

Backends: this is TensorFlow-only. The multiplier enters the backward pass
through `tf.custom_gradient` (its elementwise maths fused by XLA,
`tf.function(jit_compile=True)`), and the fallback derivative `f'(u)` is
taken with a `tf.GradientTape`. On JAX the same tap would wrap the
nonlinearity in a `jax.custom_vjp` whose backward multiplies by the rule
(under `jax.jit`, fused anyway), with `jax.grad` of the elementwise function
for the derivative; the layer-call substitution of the taps is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import keras
import tensorflow as tf

from keras_explainable.exposure.relu_rules import RELU_FUNCTIONS
from keras_explainable.exposure.taps import CallSite, Tap, TappedCall
from keras_explainable.exposure.twins import LINEAR_MAP_LAYERS, linear_twin

__all__ = [
    "ELEMENTWISE_ACTIVATIONS",
    "ELEMENTWISE_LAYERS",
    "Multiplied",
    "MultiplierRule",
    "Nonlinearity",
    "ReferenceInput",
    "SharedReferences",
    "precise_multiplier",
    "elementwise_function",
    "nonlinearities",
    "rescaled_forward",
]

_activations = keras.activations
#: Activation functions applied element by element (a `Dense`'s `activation`,
#: an `Activation` layer's), which a `Multiplied` tap may rule.
ELEMENTWISE_ACTIVATIONS = (
    *RELU_FUNCTIONS,
    _activations.sigmoid,
    _activations.tanh,
    _activations.gelu,
    _activations.silu,
    _activations.elu,
    _activations.selu,
    _activations.celu,
    _activations.softplus,
    _activations.softsign,
    _activations.exponential,
    _activations.hard_sigmoid,
    _activations.hard_silu,
    _activations.leaky_relu,
    _activations.relu6,
    _activations.mish,
    _activations.log_sigmoid,
    _activations.hard_tanh,
    _activations.hard_shrink,
    _activations.soft_shrink,
    _activations.tanh_shrink,
    _activations.sparse_plus,
    _activations.squareplus,
    tf.nn.sigmoid,
    tf.nn.tanh,
    tf.nn.gelu,
    tf.nn.silu,
    tf.nn.elu,
    tf.nn.selu,
    tf.nn.softplus,
    keras.ops.sigmoid,
    keras.ops.tanh,
    keras.ops.gelu,
    keras.ops.silu,
)

#: Layers that are elementwise nonlinearities themselves.
ELEMENTWISE_LAYERS = (
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
)

#: `rule(u, y, u0, y0, derivative) -> m`: the multiplier that replaces a
#: nonlinearity's local derivative; `derivative()` gives `f'(u)`.
MultiplierRule = Callable[..., tf.Tensor]


def _is_elementwise(function: Any) -> bool:
    return any(function is known for known in ELEMENTWISE_ACTIVATIONS)


def elementwise_function(layer: Any) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """The elementwise nonlinearity `layer` applies last, or None.

    A `ReLU`/`LeakyReLU`/`ELU`/`PReLU` layer is its own function; an
    `Activation` layer, and a Dense or convolution layer with a fused
    activation, give their activation when it is elementwise
    (`ELEMENTWISE_ACTIVATIONS`).
    """
    if isinstance(layer, ELEMENTWISE_LAYERS):
        # The class's own call: the instance's `call` is the tap while a session runs.
        return lambda inputs: type(layer).call(layer, inputs)
    activation = getattr(layer, "activation", None)
    if isinstance(layer, (keras.layers.Activation, *LINEAR_MAP_LAYERS)) and _is_elementwise(
        activation
    ):
        return activation
    return None


@attrs.frozen(eq=False)
class Nonlinearity:
    """One call of an elementwise nonlinearity in a model's forward pass.

    Attributes:
        site: the call.
        function: the elementwise function `u -> f(u)`.
        twin: for a layer with a fused activation, its linear twin (whose
            output is `u`); None when the layer's input is `u`.
    """

    site: CallSite
    function: Callable[[tf.Tensor], tf.Tensor]
    twin: keras.layers.Layer | None = None

    def pre_activation(self, call: TappedCall) -> tf.Tensor:
        """The nonlinearity's input `u` in this call."""
        return call.inputs if self.twin is None else self.twin(*call.args, **call.kwargs)


def nonlinearities(calls: Any, skip: Sequence[CallSite] = ()) -> list[Nonlinearity]:
    """The elementwise nonlinearities among `calls` (`LayerCall`s of a model map).

    Args:
        calls: the map's calls, at any depth.
        skip: call sites another tap computes already (the logits tap on an
            output layer with a fused sigmoid).

    Returns:
        One `Nonlinearity` per call, in the map's order.
    """
    found = []
    twins: dict[int, keras.layers.Layer] = {}
    skipped = set(skip)
    for call in calls:
        if call.composite or call.site in skipped:
            continue
        function = elementwise_function(call.layer)
        if function is None:
            continue
        twin = None
        if isinstance(call.layer, LINEAR_MAP_LAYERS):
            twin = twins.get(id(call.layer))
            if twin is None:
                twin = twins[id(call.layer)] = linear_twin(call.layer, *call.inputs[:1])
        found.append(Nonlinearity(call.site, function, twin))
    return found


@attrs.define(eq=False)
class ReferenceInput(Tap):
    """Record a nonlinearity's input `u0` on the reference pass."""

    nonlinearity: Nonlinearity = attrs.field(kw_only=True)

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """The call's output, unchanged; its input `u` recorded."""
        inputs = self.nonlinearity.pre_activation(call)
        call.session.record(self, tf.stop_gradient(inputs))
        return self.nonlinearity.function(inputs)


@attrs.define(eq=False)
class Multiplied(Tap):
    """A nonlinearity whose local derivative is a multiplier relative to a reference.

    Attributes:
        nonlinearity: the nonlinearity.
        rule: the `MultiplierRule`.
        reference: `u0` recorded by a `ReferenceInput` (batch 1 or N);
            None when the batch's last sample is the reference (a baseline
            stacked after the inputs).
    """

    nonlinearity: Nonlinearity = attrs.field(kw_only=True)
    rule: MultiplierRule = attrs.field(kw_only=True)
    reference: tf.Tensor | None = attrs.field(default=None, kw_only=True)

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """`f(u)`, whose gradient with respect to `u` is `rule(...)` times the incoming one."""
        function = self.nonlinearity.function
        inputs = self.nonlinearity.pre_activation(call)
        # Computed outside the custom gradient: a PReLU reads its variable here.
        outputs = function(inputs)
        reference, rule = self.reference, self.rule

        # One fused kernel (XLA) for the multiplier's dozen elementwise
        # operations: unfused they cost a fifth of a ResNet's backward pass.
        @tf.function(jit_compile=True, autograph=False)
        def scaled(gradients: tf.Tensor, u: tf.Tensor, u0: tf.Tensor) -> tf.Tensor:
            return gradients * tf.cast(precise_multiplier(function, rule, u, u0), u.dtype)

        @tf.custom_gradient
        def rescaled(u: tf.Tensor) -> tuple:
            def backward(gradients: tf.Tensor) -> tf.Tensor:
                u0 = u[-1:] if reference is None else tf.cast(reference, u.dtype)
                return scaled(gradients, u, u0)

            return tf.identity(outputs), backward

        return rescaled(inputs)


def precise_multiplier(
    function: Callable[[tf.Tensor], tf.Tensor],
    rule: MultiplierRule,
    inputs: tf.Tensor,
    reference_inputs: tf.Tensor,
) -> tf.Tensor:
    """`rule(u, f(u), u0, f(u0), derivative)` evaluated in float64 (in float32 if `f` cannot).

    In float32 a difference quotient `(f(u) - f(u0)) / (u - u0)` of a curved
    `f` (tanh, GELU) loses its digits when `u` is close to `u0`: the
    rounding of `f`, about 1e-7 of its value, is divided by the small
    difference, so a multiplier of a few-ulp difference is off by percents,
    and a rounding change in `u` (another batch size, another device)
    changes it by as much. In float64 the difference of two float32 values
    is exact and `f` keeps 16 digits, so the multiplier is the exact secant
    to float32 precision: a smooth function of `u` and `u0`. A function that
    only runs in float32 (a PReLU layer's, whose slope is a float32 weight)
    is evaluated in its own dtype.

    Args:
        function: the elementwise nonlinearity `f`.
        rule: the `MultiplierRule`.
        inputs: `u`.
        reference_inputs: `u0`, broadcastable to `u`.

    Returns:
        The multiplier, float64 (or `u`'s dtype when `f` only runs in it).
    """

    def evaluate(u: tf.Tensor, u0: tf.Tensor) -> tf.Tensor:
        def derivative() -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(u)
                values = function(u)
            return tape.gradient(values, u)

        return rule(u, function(u), u0, function(u0), derivative)

    try:
        return evaluate(tf.cast(inputs, tf.float64), tf.cast(reference_inputs, tf.float64))
    except (TypeError, ValueError, tf.errors.InvalidArgumentError):
        return evaluate(inputs, tf.cast(reference_inputs, inputs.dtype))


#: The most memory `SharedReferences` keeps for one input shape (bytes);
#: beyond it each batch computes its references again.
SHARED_REFERENCE_BYTES = 1 << 30


def _sample_key(inputs: Any) -> tuple | None:
    """The static shapes and dtypes of one sample of `inputs`; None if not all known."""
    parts = tf.nest.flatten(inputs)
    if not all(part.shape[1:].is_fully_defined() for part in parts):
        return None
    return tuple((tuple(part.shape[1:]), part.dtype.name) for part in parts)


@attrs.define(eq=False)
class SharedReferences:
    """The nonlinearities' inputs `u0` on baselines shared by every batch of a run.

    DeepLIFT's reference does not depend on the explained inputs when the
    baseline is shared ('zeros', a number, an array; DeepSHAP's background):
    its pass runs once per run (`update`, eagerly, before the first batch)
    instead of once per batch, and the compiled steps read its `u0` from
    variables (`read`). `update` runs again at every run, so the references
    follow the model's weights; outside a run (`release`) no step traced
    from then on reads them.

    One set of variables is kept per sample shape of the inputs (a step is
    traced for one shape, and reads that shape's variables). References that
    would take more than `SHARED_REFERENCE_BYTES` are not kept: the steps
    then compute them (`rescaled_forward`).

    Attributes:
        found: the model's nonlinearities (`nonlinearities`).
    """

    found: Sequence[Nonlinearity]
    _variables: dict[tuple, list[tf.Variable]] = attrs.field(factory=dict, init=False)
    _functions: dict[tuple, Callable] = attrs.field(factory=dict, init=False)
    _current: tuple | None = attrs.field(default=None, init=False)

    def update(self, exposure: Any, sample: Any, baselines: Any, batch_size: int) -> bool:
        """Run the reference pass on `baselines`, for inputs shaped like `sample`.

        Args:
            exposure: the method's `Exposure`.
            sample: one input sample `(1, ...)` in the methods' view (its
                shape keys the references).
            baselines: the baselines `(B, ...)`, of `sample`'s structure.
            batch_size: how many baselines one reference pass holds.

        Returns:
            Whether the references are kept (the steps of this run read them).
        """
        key = _sample_key(sample)
        if key is None:
            return False
        function = self._functions.get(key)
        if function is None:
            function = self._functions[key] = self._reference_function(exposure)
        count = tf.nest.flatten(baselines)[0].shape[0]

        def chunk(start: int) -> list[tf.Tensor]:
            rows = slice(start, start + batch_size)
            return function(tf.nest.map_structure(lambda part: part[rows], baselines))

        first = chunk(0)
        size = sum(part.shape[1:].num_elements() * part.dtype.size for part in first)
        if size * count > SHARED_REFERENCE_BYTES:
            return False
        chunks = [first, *(chunk(start) for start in range(batch_size, count, batch_size))]
        values = [tf.concat(parts, axis=0) for parts in zip(*chunks, strict=True)]
        variables = self._variables.get(key)
        if variables is None:
            self._variables[key] = [
                tf.Variable(value, trainable=False, name="deeplift_reference") for value in values
            ]
        else:
            # The steps traced for this shape read these variables: assigned, never replaced.
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)
        self._current = key
        return True

    def _reference_function(self, exposure: Any) -> Callable:
        found = self.found

        @tf.function(autograph=False, reduce_retracing=True)
        def reference(baselines: Any) -> list[tf.Tensor]:
            recorders = [ReferenceInput(item.site, nonlinearity=item) for item in found]
            session = exposure.forward(baselines, recorders).session
            return [session.observed(recorder) for recorder in recorders]

        return reference

    def read(self, inputs: Any) -> list[tf.Tensor] | None:
        """The references for a batch like `inputs`, while a step is traced in a run; else None."""
        key = _sample_key(inputs)
        if key is None or key != self._current:
            return None
        return [variable.read_value() for variable in self._variables[key]]

    def release(self) -> None:
        """End the run: steps traced from now on compute their references."""
        self._current = None


def rescaled_forward(
    exposure: Any,
    found: Sequence[Nonlinearity],
    inputs: Any,
    baselines: Any,
    rule: MultiplierRule,
    shared: bool = False,
    references: Sequence[tf.Tensor] | None = None,
) -> Any:
    """The explained outputs on `inputs`, with each nonlinearity's multiplier against `baselines`.

    With `references` (`SharedReferences.read`, one `u0` per nonlinearity),
    the pass is of the inputs alone. Else a baseline shared by the batch
    (`shared`) is stacked after the inputs, so one pass of `N + 1` samples
    gives both the inputs' activations and the reference's. Baselines of
    their own per sample (or a text model, whose padding belongs to the
    batch) run in a reference pass of their own first.

    Args:
        exposure: the method's `Exposure`.
        found: the model's nonlinearities (`nonlinearities`).
        inputs: the batch, as `Exposure.forward` takes it.
        baselines: the reference batch, of the inputs' structure: one
            baseline per input, or a batch of one shared by all.
        rule: the `MultiplierRule`.
        shared: whether `baselines` is one sample, the reference of every input.
        references: the nonlinearities' inputs on the shared baseline,
            computed already (batch 1).

    Returns:
        The explained outputs on the inputs, whose gradients follow the rule.
    """
    if references is not None:
        taps = [
            Multiplied(item.site, nonlinearity=item, rule=rule, reference=reference)
            for item, reference in zip(found, references, strict=True)
        ]
        return exposure.forward(inputs, taps).outputs
    if shared and exposure.embedding is None:
        stacked = tf.nest.map_structure(
            lambda part, baseline: tf.concat([part, tf.cast(baseline, part.dtype)], axis=0),
            inputs,
            baselines,
        )
        taps = [Multiplied(item.site, nonlinearity=item, rule=rule) for item in found]
        outputs = exposure.forward(stacked, taps).outputs
        return tf.nest.map_structure(lambda output: output[:-1], outputs)
    if shared:
        # A text model's pass reads the batch's own ids and padding: N copies.
        baselines = tf.nest.map_structure(
            lambda baseline, part: tf.broadcast_to(tf.cast(baseline, part.dtype), tf.shape(part)),
            baselines,
            inputs,
        )
    recorders = [ReferenceInput(item.site, nonlinearity=item) for item in found]
    reference = exposure.forward(baselines, recorders)
    taps = [
        Multiplied(
            item.site,
            nonlinearity=item,
            rule=rule,
            reference=reference.session.observed(recorder),
        )
        for item, recorder in zip(found, recorders, strict=True)
    ]
    return exposure.forward(inputs, taps).outputs
