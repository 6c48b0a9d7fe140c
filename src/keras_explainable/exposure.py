"""Model exposure: re-wire a Keras model so its hidden layers can be explained.

An explainer needs two tensors from one forward pass: the activations of the
layer it explains (the *features*) and the scores it explains (the *outputs*,
pre-softmax when the model ends in a softmax or sigmoid). Keras gives neither
directly when the layer sits inside a nested model, whose tensors are not
connected to the outer model's inputs. This module replays the model's graph on
fresh symbolic inputs with the public `keras.models.clone_model` hook
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
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import keras

from keras_explainable.errors import LayerError, ModelStructureError, did_you_mean

__all__ = ["SplitModel", "LayerCall", "ModelGraph", "Exposure", "expose"]

LayerSpec = str | int | keras.layers.Layer | Sequence[str] | None
OutputSpec = str | int | None

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")
# Layers whose `activation` is applied last, to the output of a linear map: the
# only ones `split_activations` may rebuild as linear twin + activation.
LINEAR_MAP_LAYERS = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)


@attrs.frozen
class SplitModel:
    """A model given as two halves: a feature extractor and a head.

    Use it for models Keras cannot split into layers (subclassed models), or to
    choose the split point yourself. The explained layer is the feature
    extractor's output; the explained scores are the head's output.

    Args:
        feature_extractor: maps inputs `(N, *spatial, C_in)` to features
            `(N, *spatial', C)`. A Keras model or layer.
        head: maps features to scores `(N, K)`. A Keras model or layer.
        input_shape: the shape of one input without the batch axis. Needed
            only when `feature_extractor` does not define its inputs
            (a subclassed model).

    Raises:
        TypeError: a half is not callable.
        ModelStructureError: (when an explainer is built on it) the feature
            extractor does not define its inputs and `input_shape` is None.

    Example:
        >>> split = ke.SplitModel(backbone, classifier_head)
        >>> ke.GradCAM(split).explain(x)
        >>> # the halves of a subclassed model, which defines no inputs:
        >>> split = ke.SplitModel(model.features, model.head, input_shape=(224, 224, 3))
    """

    feature_extractor: Callable = attrs.field()
    head: Callable = attrs.field()
    input_shape: tuple[int | None, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(tuple)
    )

    @feature_extractor.validator
    @head.validator
    def _check_callable(self, attribute: attrs.Attribute, value: Any) -> None:
        if not callable(value):
            raise TypeError(
                f"SplitModel.{attribute.name} must be a Keras model or layer; "
                f"got {type(value).__name__}."
            )


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
        linear_call: with `split_activations`, the call of the layer's linear
            twin whose output is this call's pre-activation output (the
            call's `outputs` are the activation applied to it); else None.
    """

    layer: keras.layers.Layer
    path: tuple[str, ...]
    args: tuple
    kwargs: dict
    inputs: tuple
    outputs: tuple
    nested: bool = False
    linear_call: LayerCall | None = None

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
        """Whether `tensor` is computed from `source` in this graph."""
        seen: set[int] = set()
        stack = [tensor]
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


def _is_replayable(model: Any) -> bool:
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
) -> Any:
    call_layer = functools.partial(
        _call_layer, prefix=prefix, calls=calls, split_activations=split_activations
    )
    if isinstance(model, keras.Sequential):
        outputs = inputs
        for layer in model.layers:
            outputs = call_layer(layer, outputs)
        return outputs
    if isinstance(_model_input(model), (list, tuple)) and not isinstance(inputs, (list, tuple)):
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
    **kwargs: Any,
) -> Any:
    path = (*prefix, layer.name)
    if _is_replayable(layer):
        outputs = _replay(layer, args[0], path, calls, split_activations)
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
    if split_activations and _has_fused_activation(layer):
        return _call_split(layer, args, kwargs, path, inputs, calls)
    outputs = layer(*args, **kwargs)
    calls.append(LayerCall(layer, path, args, kwargs, inputs, _flat_tensors(outputs)))
    return outputs


def _has_fused_activation(layer: Any) -> bool:
    activation = getattr(layer, "activation", None)
    return (
        isinstance(layer, LINEAR_MAP_LAYERS)
        and activation is not None
        and activation is not keras.activations.linear
    )


def _linear_twin(layer: keras.layers.Layer, name: str, *args: Any, **kwargs: Any) -> tuple:
    """Call a twin of `layer` without its activation; returns `(twin, outputs)`.

    The twin has `layer`'s config with a linear activation, and it *shares*
    `layer`'s variables instead of copying them: while the twin builds, each
    weight it asks for is answered with `layer`'s weight of the same name. So
    the exposure follows the model's weights after `fit` or `set_weights`, and
    a compiled step never reads stale values.
    """
    config = dict(layer.get_config())
    config["activation"] = "linear"
    config["name"] = name
    twin = layer.__class__.from_config(config)
    variables = {variable.name: variable for variable in layer.weights}

    def shared_weight(*_: Any, name: str | None = None, shape: Any = None, **__: Any) -> Any:
        variable = variables.get(name)
        if variable is None or tuple(variable.shape) != tuple(shape):
            raise ValueError(
                f"the twin asks for weight {name!r} of shape {shape}; the layer has "
                f"{[(v.name, tuple(v.shape)) for v in layer.weights]}"
            )
        return variable

    twin.add_weight = shared_weight
    try:
        outputs = twin(*args, **kwargs)
    finally:
        del twin.add_weight
    return twin, outputs


def _call_split(
    layer: Any, args: tuple, kwargs: dict, path: tuple, inputs: tuple, calls: list
) -> Any:
    """Replay `layer` as its linear twin followed by its activation."""
    try:
        twin, pre_activation = _linear_twin(layer, f"{layer.name}_linear", *args, **kwargs)
    except Exception as error:  # noqa: BLE001 - any failure means we cannot clone
        raise ModelStructureError(
            f"The layer {layer.name!r} applies its activation inside the layer and "
            f"could not be rebuilt without it ({type(error).__name__}: {error})."
        ) from error
    activation = keras.layers.Activation(layer.activation, name=f"{layer.name}_activation")
    outputs = activation(pre_activation)
    twin_path = (*path[:-1], twin.name)
    linear = LayerCall(twin, twin_path, args, kwargs, inputs, _flat_tensors(pre_activation))
    call = LayerCall(layer, path, args, kwargs, inputs, _flat_tensors(outputs), linear_call=linear)
    calls.append(call)
    return outputs


def _model_input(model: keras.Model) -> Any:
    """The model's input structure (a Sequential model only lists `inputs`)."""
    if isinstance(model, keras.Sequential):
        inputs = model.inputs
        return inputs[0] if len(inputs) == 1 else inputs
    return model.input


def _fresh_inputs(model: keras.Model) -> Any:
    return keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype), _model_input(model)
    )


def trace_model(model: keras.Model, *, split_activations: bool = False) -> ModelGraph:
    """Replay a functional or Sequential model, recording every layer call.

    Args:
        model: a functional or `Sequential` Keras model with defined inputs.
        split_activations: replay layers that apply a non-linear activation
            last (Dense, EinsumDense, convolutions) as a linear twin followed
            by the activation, recording the twin's call as the call's
            `linear_call` (default False).

    Returns:
        The replayed `ModelGraph`.
    """
    calls: list[LayerCall] = []
    inputs = _fresh_inputs(model)
    outputs = _replay(model, inputs, (), calls, split_activations)
    return ModelGraph(inputs, outputs, calls)


def _trace_split(split: SplitModel, split_activations: bool = False) -> tuple[ModelGraph, Any]:
    """Replay a SplitModel; returns the graph and the feature tensor."""
    extractor = split.feature_extractor
    if _is_replayable(extractor):
        inputs = _fresh_inputs(extractor)
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
        _call_layer, prefix=(), calls=calls, split_activations=split_activations
    )
    features = call_layer(extractor, inputs)
    outputs = call_layer(split.head, features)
    return ModelGraph(inputs, outputs, calls), features


def _activation_name(layer: keras.layers.Layer) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    try:
        name = keras.activations.serialize(activation)
    except (ValueError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _strip_probability(graph: ModelGraph, tensor: Any) -> tuple[Any, str | None]:
    """Return the pre-activation logits behind a softmax/sigmoid output."""
    call = graph.producer(tensor)
    if call is None:
        return tensor, None
    layer = call.layer
    if isinstance(layer, keras.layers.Softmax):
        return call.inputs[0], "softmax"
    activation = _activation_name(layer)
    if activation not in _PROBABILITY_ACTIVATIONS:
        return tensor, None
    if isinstance(layer, keras.layers.Activation):
        return call.inputs[0], activation
    if call.linear_call is not None:
        return call.linear_call.outputs[0], activation
    try:
        linear, logits = _linear_twin(layer, f"{layer.name}_logits", *call.args, **call.kwargs)
    except Exception as error:  # noqa: BLE001 - any failure means we cannot clone
        raise ModelStructureError(
            f"The output layer {layer.name!r} applies {activation} inside the layer "
            f"and could not be rebuilt without it ({type(error).__name__}: {error}). "
            "Pass logits=False to explain the probabilities instead."
        ) from error
    graph.record(
        LayerCall(
            linear, (*call.path[:-1], linear.name), call.args, call.kwargs, call.inputs, (logits,)
        )
    )
    return logits, activation


def _output_names(model: Any, outputs: Any) -> list[str]:
    if isinstance(outputs, dict):
        return list(outputs)
    names = getattr(model, "output_names", None)
    count = len(outputs) if isinstance(outputs, (list, tuple)) else 1
    if names and len(names) == count:
        return list(names)
    return [f"output_{i}" for i in range(count)]


def _select_output(model: Any, outputs: Any, output: OutputSpec) -> tuple[Any, str]:
    names = _output_names(model, outputs)
    flat = (
        list(outputs.values())
        if isinstance(outputs, dict)
        else (list(outputs) if isinstance(outputs, (list, tuple)) else [outputs])
    )
    if output is None:
        if len(flat) > 1:
            raise ModelStructureError(
                f"The model has {len(flat)} outputs {names}; choose the one to explain "
                "with output=<name or index>."
            )
        return flat[0], names[0]
    if isinstance(output, bool) or not isinstance(output, (int, str)):
        raise TypeError(f"output must be an output name or index; got {type(output).__name__}.")
    if isinstance(output, int):
        if not -len(flat) <= output < len(flat):
            raise ModelStructureError(
                f"output={output} is out of range: the model has {len(flat)} output(s) {names}."
            )
        return flat[output], names[output]
    if output not in names:
        raise ModelStructureError(
            f"Unknown output {output!r}; the model's outputs are {names}."
            + did_you_mean(output, names)
        )
    return flat[names.index(output)], output


def _has_spatial_axes(tensor: Any, input_rank: int) -> bool:
    shape = tuple(tensor.shape)
    if len(shape) != input_rank or input_rank < 3:
        return False
    spatial = shape[1:-1]
    return any(size is None or size > 1 for size in spatial)


def _resolve_layer(model: Any, graph: ModelGraph, layer: LayerSpec) -> LayerCall:
    calls = graph.calls
    names = sorted({call.name for call in calls} | {call.path[-1] for call in calls})
    if isinstance(layer, keras.layers.Layer):
        matches = [call for call in calls if call.layer is layer]
        if not matches:
            raise LayerError(
                f"Layer {layer.name!r} is not part of the model." + did_you_mean(layer.name, names)
            )
    elif isinstance(layer, bool):
        raise TypeError("layer must be a name, an index, a Layer or a path; got a bool.")
    elif isinstance(layer, int):
        layers = getattr(model, "layers", None) or []
        if not -len(layers) <= layer < len(layers):
            raise LayerError(
                f"layer={layer} is out of range: the model has {len(layers)} top-level layers."
            )
        return _resolve_layer(model, graph, layers[layer])
    elif isinstance(layer, str) or (
        isinstance(layer, Sequence) and all(isinstance(part, str) for part in layer)
    ):
        parts = tuple(layer.split("/")) if isinstance(layer, str) else tuple(layer)
        matches = [call for call in calls if call.path[-len(parts) :] == parts]
        if not matches:
            wanted = "/".join(parts)
            raise LayerError(
                f"No layer named {wanted!r} in the model." + did_you_mean(wanted, names)
            )
    else:
        raise TypeError(
            "layer must be a layer name, a path such as 'backbone/conv5_block3_out', an "
            f"index, or a keras Layer; got {type(layer).__name__}."
        )
    distinct = {id(call.layer) for call in matches}
    paths = sorted({call.name for call in matches})
    if len(distinct) > 1:
        raise LayerError(
            f"The layer {layer!r} is ambiguous; it matches {paths}. Pass the full path."
        )
    if len(matches) > 1:
        raise LayerError(
            f"The layer {paths[0]!r} is called {len(matches)} times in the model, so its "
            "output is ambiguous; choose a layer that is called once."
        )
    return matches[0]


def _auto_layer(graph: ModelGraph, outputs: Any, input_rank: int) -> LayerCall:
    for call in reversed(graph.calls):
        if call.nested or len(call.outputs) != 1:
            continue
        tensor = call.outputs[0]
        if _has_spatial_axes(tensor, input_rank) and graph.depends_on(outputs, tensor):
            return call
    raise LayerError(
        "Could not find a layer to explain automatically: no layer's output keeps the "
        f"input's {input_rank - 2} spatial dimension(s). Pass layer=<name>."
    )


@attrs.define(eq=False)
class Exposure:
    """A model re-wired to return the explained features and scores together.

    Attributes:
        model: a Keras model mapping inputs to `[features, outputs]` (or to
            `outputs` alone when no layer is exposed); shares the user's weights.
        graph: the replayed graph, or None for an opaque (subclassed) model.
        feature_call: the call of the explained layer, or None.
        output_name: the name of the explained output.
        stripped_activation: 'softmax' or 'sigmoid' when the scores are the
            logits behind that activation, else None.
        input_shape: the model's input shape including the batch axis, or None.
    """

    model: Callable
    graph: ModelGraph | None
    feature_call: LayerCall | None
    output_name: str
    stripped_activation: str | None
    input_shape: tuple | None
    input_dtype: str | None
    outputs: Any = None

    @property
    def output_units(self) -> int | None:
        """Number of units of a `(N, K)` output, else None."""
        if self.outputs is None or len(self.outputs.shape) != 2:
            return None
        return self.outputs.shape[-1]

    @property
    def output_shape(self) -> tuple | None:
        """Shape of the explained output, batch axis included, or None."""
        return None if self.outputs is None else tuple(self.outputs.shape)

    @property
    def layer_name(self) -> str | None:
        """Path of the explained layer, or None."""
        return None if self.feature_call is None else self.feature_call.name

    def __call__(self, inputs: Any) -> tuple[Any, Any]:
        """Run the exposed model in inference mode; returns (features, outputs)."""
        if self.feature_call is None:
            return None, self.model(inputs, training=False)
        features, outputs = self.model(inputs, training=False)
        return features, outputs


def expose(
    model: Any,
    *,
    layer: LayerSpec = None,
    needs_layer: bool = True,
    output: OutputSpec = None,
    logits: bool = True,
    split_activations: bool = False,
) -> Exposure:
    """Re-wire `model` to return the explained layer's output and the scores.

    Args:
        model: a functional or `Sequential` Keras model (nested models allowed),
            a subclassed model (only when `needs_layer` is False), or a
            `SplitModel`.
        layer: the layer to expose: a name, a path into nested models
            (`"backbone/conv5_block3_out"` or a list of names), an index into
            `model.layers`, or a `Layer`. None picks the last layer whose output
            keeps the input's spatial dimensions.
        needs_layer: whether the caller needs a hidden layer's output.
        output: the output to explain for multi-output models (name or index).
        logits: explain the pre-activation logits when the output ends in a
            softmax or sigmoid.
        split_activations: replay layers with a fused non-linear activation
            as linear twin + activation so their pre-activation outputs are in
            the graph (see `trace_model`; default False). Not available for
            an opaque (subclassed) model.

    Returns:
        The `Exposure`.

    Raises:
        ModelStructureError: the model cannot be split, or the output is unknown.
        LayerError: the layer is unknown, ambiguous, has no spatial axes, or is
            not connected to the output.
        TypeError: an argument has the wrong type.
    """
    if isinstance(model, SplitModel):
        if layer is not None:
            raise LayerError(
                "With a SplitModel the explained layer is the feature extractor's "
                "output; do not pass layer=."
            )
        graph, split_features = _trace_split(model, split_activations)
        owner: Any = model.head
    elif _is_replayable(model):
        graph = trace_model(model, split_activations=split_activations)
        split_features = None
        owner = model
    elif isinstance(model, keras.Model) or callable(model):
        if needs_layer:
            raise ModelStructureError(
                f"Keras cannot split the model {getattr(model, 'name', model)!r} into "
                "layers (it is a subclassed model, so its graph is not visible). Pass "
                "the two halves instead: SplitModel(feature_extractor, head), or rebuild "
                "it with the functional API."
            )
        if output is not None:
            raise ModelStructureError("output= needs a functional or Sequential model.")
        return Exposure(model, None, None, "output", None, None, None)
    else:
        raise TypeError(f"model must be a Keras model or a SplitModel; got {type(model).__name__}.")

    outputs, output_name = _select_output(owner, graph.outputs, output)
    stripped = None
    if logits:
        outputs, stripped = _strip_probability(graph, outputs)

    flat_inputs = keras.tree.flatten(graph.inputs)
    if len(flat_inputs) != 1:
        raise ModelStructureError(
            f"The model has {len(flat_inputs)} inputs; keras-explainable explains "
            "single-input models."
        )
    input_tensor = flat_inputs[0]
    input_rank = len(input_tensor.shape)
    _refuse_token_ids(graph, input_tensor)

    feature_call = None
    if needs_layer:
        if split_features is not None:
            feature_call = graph.producer(split_features) or LayerCall(
                model.feature_extractor, ("features",), (), {}, (), (split_features,)
            )
        elif layer is None:
            feature_call = _auto_layer(graph, outputs, input_rank)
        else:
            feature_call = _resolve_layer(model, graph, layer)
        _check_feature_call(graph, feature_call, outputs, output_name, input_rank)
        features = split_features if split_features is not None else feature_call.outputs[0]
        exposed = keras.Model(graph.inputs, [features, outputs])
    else:
        exposed = keras.Model(graph.inputs, outputs)
    return Exposure(
        exposed,
        graph,
        feature_call,
        output_name,
        stripped,
        tuple(input_tensor.shape),
        str(input_tensor.dtype),
        outputs,
    )


def _refuse_token_ids(graph: ModelGraph, input_tensor: Any) -> None:
    """Reject text models (integer token ids into an Embedding) with a clear error."""
    if not keras.backend.is_int_dtype(input_tensor.dtype):
        return
    for call in graph.calls:
        if isinstance(call.layer, keras.layers.Embedding) and any(
            tensor is input_tensor for tensor in call.inputs
        ):
            raise ModelStructureError(
                f"The model takes integer token ids (input shape {tuple(input_tensor.shape)}, "
                f"dtype {input_tensor.dtype}) into the Embedding layer {call.name!r}: a text "
                "model. keras-explainable explains models whose input is a float array "
                "(N, *spatial, C): images (N, H, W, C), sequences such as time series "
                "(N, T, C), and volumes (N, D, H, W, C). Text models are not supported yet."
            )


def _check_feature_call(
    graph: ModelGraph, call: LayerCall, outputs: Any, output_name: str, input_rank: int
) -> None:
    if len(call.outputs) != 1:
        raise LayerError(
            f"Layer {call.name!r} has {len(call.outputs)} outputs; choose a layer with one."
        )
    tensor = call.outputs[0]
    if len(tensor.shape) < 3:
        raise LayerError(
            f"Layer {call.name!r} outputs shape {tuple(tensor.shape)}, which has no spatial "
            "axes to explain; choose a convolutional (or other spatial) layer."
        )
    if len(tensor.shape) != input_rank:
        raise LayerError(
            f"Layer {call.name!r} outputs shape {tuple(tensor.shape)}, which does not keep "
            f"the input's {input_rank - 2} spatial axes (expected a layer output of rank "
            f"{input_rank}: (N, *spatial, C)). A token sequence (N, T, C) from a transformer "
            "block on image inputs is not supported yet; choose a convolutional layer, or "
            "a layer whose output has the input's spatial axes."
        )
    if not graph.depends_on(outputs, tensor):
        raise LayerError(
            f"Layer {call.name!r} is not connected to the output {output_name!r}: the "
            "gradient would be zero everywhere. Choose a layer that feeds this output."
        )
