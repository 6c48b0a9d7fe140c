"""Graph replay: a Keras model replayed on fresh inputs, every layer call recorded.

Keras gives no handle on the tensors of a layer inside a nested model: they
are not connected to the outer model's inputs. This module replays the model's
graph on fresh symbolic inputs with the public `keras.models.clone_model` hook
(`call_function`), calling the *same* layer objects (so weights are shared, not
copied) and descending into nested `Functional` and `Sequential` models. The
result is one flat graph in which every layer call, at any depth, is recorded
and can be made an output.

With `split_activations=True` the replay also exposes pre-activation tensors:
a layer that applies its activation last (Dense, EinsumDense and the
convolutions) and has a non-linear activation is replayed as a linear twin
(same config with `activation="linear"`, sharing the layer's variables)
followed by the activation, so methods that need the pre-activation output
(FullGradient's bias-gradients) can read it. The model computes the same
values either way.

With `relu_gradient=rule` the replay changes the backward pass, never the
forward one: every plain ReLU it meets (a `ReLU()` layer, an
`Activation("relu")` layer, or a ReLU fused into a layer that applies its
activation last, which is split off as above) is replayed as a
`ReLUWithGradient` layer (`keras_explainable.relu_rules`), whose gradient is
`rule(outputs, gradients)`. Guided Backprop and Deconvnet are such rules. The
user's model and its layers are not changed: only the replayed graph holds the
new layers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import attrs
import keras

from keras_explainable.errors import ModelStructureError
from keras_explainable.relu_rules import (
    ReLUGradient,
    ReLUWithGradient,
    is_plain_relu,
)
from keras_explainable.split_model import SplitModel
from keras_explainable.twins import (
    LINEAR_MAP_LAYERS,
    has_fused_activation,
    has_fused_relu,
    linear_twin,
)

__all__ = [
    "LINEAR_MAP_LAYERS",
    "LayerCall",
    "ModelGraph",
    "SplitModel",
    "is_replayable",
    "linear_twin",
    "model_input",
    "trace_model",
    "trace_split",
]


@attrs.define(eq=False)
class LayerCall:
    """One call of a layer in a replayed graph.

    Attributes:
        layer: the layer object that was called (the user's own object).
        path: names from the outermost model down to the layer.
        args: positional arguments of the call (symbolic tensors).
        kwargs: keyword arguments of the call.
        inputs: the symbolic tensors the call consumed, flattened.
        outputs: the symbolic tensors the call produced, flattened.
        nested: whether the call is a nested model that was replayed through.
        linear_call: with `split_activations` (or `relu_gradient` for a
            fused ReLU), the call of the layer's linear twin whose output is
            this call's pre-activation output (the call's `outputs` are the
            activation applied to it); else None.
        relu_rule: whether the call's ReLU was replayed as a
            `ReLUWithGradient` layer with the replay's `relu_gradient`.
    """

    layer: keras.layers.Layer
    path: tuple[str, ...]
    args: tuple
    kwargs: dict
    inputs: tuple
    outputs: tuple
    nested: bool = False
    linear_call: LayerCall | None = None
    relu_rule: bool = False

    @property
    def name(self) -> str:
        """The path joined with '/', as users write it."""
        return "/".join(self.path)


def _flat_tensors(structure: Any) -> tuple:
    return tuple(t for t in keras.tree.flatten(structure) if isinstance(t, keras.KerasTensor))


@attrs.define(eq=False)
class ModelGraph:
    """A model replayed on fresh inputs, with every layer call recorded.

    Attributes:
        inputs: the fresh symbolic inputs (same structure as the model's).
        outputs: the symbolic outputs (same structure as the model's).
        calls: every layer call in execution order, nested models included.
    """

    inputs: Any
    outputs: Any
    calls: list[LayerCall]
    _producers: dict[int, LayerCall] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        for call in self.calls:
            self.record(call)

    def record(self, call: LayerCall) -> None:
        """Register a call added after the replay (for example a logits head)."""
        if call not in self.calls:
            self.calls.append(call)
        if not call.nested:
            for tensor in call.outputs:
                self._producers[id(tensor)] = call
        if call.linear_call is not None:
            for tensor in call.linear_call.outputs:
                self._producers[id(tensor)] = call.linear_call

    def producer(self, tensor: Any) -> LayerCall | None:
        """The innermost layer call that produced `tensor`, or None for an input."""
        return self._producers.get(id(tensor))

    def depends_on(self, tensor: Any, source: Any) -> bool:
        """Whether `tensor` (or any tensor of a structure) is computed from `source`."""
        seen: set[int] = set()
        stack = list(keras.tree.flatten(tensor))
        while stack:
            current = stack.pop()
            if current is source:
                return True
            if id(current) in seen:
                continue
            seen.add(id(current))
            call = self.producer(current)
            if call is not None:
                # A split call's outputs are computed from its pre-activation.
                linear = call.linear_call
                stack.extend(call.inputs if linear is None else linear.outputs)
        return False

    def head_inputs(self, source: Any, outputs: Any) -> list:
        """The tensors besides `source` that computing `outputs` from `source` reads.

        Walking back from `outputs`, every tensor computed from `source` is
        followed to the calls that produced it; the first tensors met that do
        not depend on `source` (a skip connection from before it, say) are
        returned, in the order met. With `source` and these tensors given,
        `outputs` can be recomputed without the rest of the model.

        Args:
            source: a tensor of this graph (the explained layer's output).
            outputs: a tensor or structure of tensors computed from `source`.

        Returns:
            The other tensors the computation reads; empty when `outputs`
            depend on `source` alone.

        Example:
            >>> context = graph.head_inputs(features, logits)
            >>> head = keras.Model([features, *context], logits)
        """
        dependent = {id(source)}
        for call in self.calls:
            if any(id(tensor) in dependent for tensor in call.inputs):
                linear = call.linear_call
                produced = call.outputs if linear is None else call.outputs + linear.outputs
                dependent.update(id(tensor) for tensor in produced)
        found: list = []
        seen: set[int] = set()
        stack = list(_flat_tensors(outputs))
        while stack:
            tensor = stack.pop()
            if tensor is source or id(tensor) in seen:
                continue
            seen.add(id(tensor))
            if id(tensor) not in dependent:
                found.append(tensor)
                continue
            call = self.producer(tensor)
            linear = call.linear_call
            stack.extend(reversed(call.inputs if linear is None else linear.outputs))
        return found


def is_replayable(model: Any) -> bool:
    """Sequential models and functional models can be replayed layer by layer."""
    if isinstance(model, keras.Sequential):
        return True
    if not isinstance(model, keras.Model):
        return False
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False


def _replay(
    model: keras.Model,
    inputs: Any,
    prefix: tuple[str, ...],
    calls: list,
    split_activations: bool = False,
    relu_gradient: ReLUGradient | None = None,
) -> Any:
    call_layer = functools.partial(
        _call_layer,
        prefix=prefix,
        calls=calls,
        split_activations=split_activations,
        relu_gradient=relu_gradient,
    )
    if isinstance(model, keras.Sequential):
        outputs = inputs
        for layer in model.layers:
            outputs = call_layer(layer, outputs)
        return outputs
    if isinstance(model_input(model), (list, tuple)) and not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    # `clone_model` rebuilds a Functional from its outputs; when the inputs are
    # intermediate tensors of an outer graph, Keras copies the graph and its
    # `output` is no longer connected to them. So the outputs are located by
    # position (call number, output number) in a first replay on fresh inputs,
    # and picked by the same position from the replay on the real inputs
    # (both replays visit the layers in the same order).
    reference_calls: list[list] = []
    reference = keras.models.clone_model(
        model,
        clone_function=lambda layer: layer,
        call_function=functools.partial(_collect, call=_plain_call, collected=reference_calls),
    )
    positions = {
        id(tensor): (number, index)
        for number, produced in enumerate(reference_calls)
        for index, tensor in enumerate(produced)
    }
    replayed_calls: list[list] = []
    keras.models.clone_model(
        model,
        input_tensors=inputs,
        clone_function=lambda layer: layer,
        call_function=functools.partial(_collect, call=call_layer, collected=replayed_calls),
    )

    def replayed(tensor: Any) -> Any:
        if id(tensor) not in positions:
            raise ModelStructureError(
                f"Model {model.name!r} returns one of its inputs unchanged; "
                "keras-explainable cannot replay it."
            )
        number, index = positions[id(tensor)]
        return replayed_calls[number][index]

    return keras.tree.map_structure(replayed, reference.output)


def _plain_call(layer: Any, *args: Any, **kwargs: Any) -> Any:
    return layer(*args, **kwargs)


def _collect(layer: Any, *args: Any, call: Callable, collected: list, **kwargs: Any) -> Any:
    outputs = call(layer, *args, **kwargs)
    collected.append(keras.tree.flatten(outputs))
    return outputs


def _call_layer(
    layer: Any,
    *args: Any,
    prefix: tuple[str, ...],
    calls: list,
    split_activations: bool = False,
    relu_gradient: ReLUGradient | None = None,
    **kwargs: Any,
) -> Any:
    path = (*prefix, layer.name)
    if is_replayable(layer):
        outputs = _replay(layer, args[0], path, calls, split_activations, relu_gradient)
        calls.append(
            LayerCall(
                layer,
                path,
                args,
                kwargs,
                _flat_tensors(args[0]),
                _flat_tensors(outputs),
                nested=True,
            )
        )
        return outputs
    inputs = _flat_tensors((args, kwargs))
    if relu_gradient is not None and is_plain_relu(layer):
        relu = ReLUWithGradient(relu_gradient, dtype=layer.dtype_policy)
        outputs = relu(*args, **kwargs)
        calls.append(
            LayerCall(layer, path, args, kwargs, inputs, _flat_tensors(outputs), relu_rule=True)
        )
        return outputs
    fused_relu = relu_gradient is not None and has_fused_relu(layer)
    if fused_relu:
        activation = ReLUWithGradient(relu_gradient, dtype=layer.dtype_policy)
        return _call_split(layer, args, kwargs, path, inputs, calls, activation, relu_rule=True)
    if split_activations and has_fused_activation(layer):
        activation = keras.layers.Activation(layer.activation, name=f"{layer.name}_activation")
        return _call_split(layer, args, kwargs, path, inputs, calls, activation)
    outputs = layer(*args, **kwargs)
    calls.append(LayerCall(layer, path, args, kwargs, inputs, _flat_tensors(outputs)))
    return outputs


def _call_split(
    layer: Any,
    args: tuple,
    kwargs: dict,
    path: tuple,
    inputs: tuple,
    calls: list,
    activation: keras.layers.Layer,
    relu_rule: bool = False,
) -> Any:
    """Replay `layer` as its linear twin followed by `activation` (its own, or a ReLU rule)."""
    try:
        twin, pre_activation = linear_twin(layer, f"{layer.name}_linear", *args, **kwargs)
    except Exception as error:  # noqa: BLE001 - any failure means we cannot clone
        raise ModelStructureError(
            f"The layer {layer.name!r} applies its activation inside the layer and "
            f"could not be rebuilt without it ({type(error).__name__}: {error})."
        ) from error
    outputs = activation(pre_activation)
    twin_path = (*path[:-1], twin.name)
    linear = LayerCall(twin, twin_path, args, kwargs, inputs, _flat_tensors(pre_activation))
    call = LayerCall(
        layer,
        path,
        args,
        kwargs,
        inputs,
        _flat_tensors(outputs),
        linear_call=linear,
        relu_rule=relu_rule,
    )
    calls.append(call)
    return outputs


def model_input(model: keras.Model) -> Any:
    """The model's input structure (a Sequential model only lists `inputs`)."""
    if isinstance(model, keras.Sequential):
        inputs = model.inputs
        return inputs[0] if len(inputs) == 1 else inputs
    return model.input


def fresh_inputs(model: keras.Model) -> Any:
    structure = model_input(model)
    if isinstance(structure, dict):
        # Keras matches a dict of inputs to the tensors' names.
        return {
            key: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=key)
            for key, t in structure.items()
        }
    return keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype), structure
    )


def trace_model(
    model: keras.Model,
    *,
    split_activations: bool = False,
    relu_gradient: ReLUGradient | None = None,
) -> ModelGraph:
    """Replay a functional or Sequential model, recording every layer call.

    Args:
        model: a functional or `Sequential` Keras model with defined inputs.
        split_activations: replay layers that apply a non-linear activation
            last (Dense, EinsumDense, convolutions) as a linear twin followed
            by the activation, recording the twin's call as the call's
            `linear_call` (default False).
        relu_gradient: a backward rule for every plain ReLU (`is_plain_relu`
            layers, and a ReLU fused into a layer of `LINEAR_MAP_LAYERS`,
            which is split off as with `split_activations`): each is replayed
            as a `ReLUWithGradient(relu_gradient)` layer, and its call gets
            `relu_rule=True`. Other activations, and ReLUs inside layers the
            replay does not enter (subclassed layers), keep their gradient.
            Default None: every gradient is ordinary.

    Returns:
        The replayed `ModelGraph`.

    Example:
        >>> graph = trace_model(model, relu_gradient=lambda y, g: tf.nn.relu(g))
        >>> sum(call.relu_rule for call in graph.calls)   # the ReLUs replaced
    """
    calls: list[LayerCall] = []
    inputs = fresh_inputs(model)
    outputs = _replay(model, inputs, (), calls, split_activations, relu_gradient)
    return ModelGraph(inputs, outputs, calls)


def trace_split(
    split: SplitModel,
    split_activations: bool = False,
    relu_gradient: ReLUGradient | None = None,
) -> tuple[ModelGraph, Any]:
    """Replay a SplitModel; returns the graph and the feature tensor."""
    extractor = split.feature_extractor
    if is_replayable(extractor):
        inputs = fresh_inputs(extractor)
    elif split.input_shape is not None:
        inputs = keras.Input(shape=split.input_shape)
    else:
        raise ModelStructureError(
            "SplitModel: the feature extractor does not define its inputs (it is "
            "a subclassed model or a bare layer); pass input_shape=(...) without "
            "the batch axis, e.g. SplitModel(extractor, head, input_shape=(224, 224, 3))."
        )
    calls: list[LayerCall] = []
    call_layer = functools.partial(
        _call_layer,
        prefix=(),
        calls=calls,
        split_activations=split_activations,
        relu_gradient=relu_gradient,
    )
    features = call_layer(extractor, inputs)
    outputs = call_layer(split.head, features)
    return ModelGraph(inputs, outputs, calls), features
