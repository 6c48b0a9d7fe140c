"""Graph replay: the part of a functional model after a layer, as a model of its own.

Ablation-CAM re-runs the part of a model after its explained layer once per
channel; when that part is a functional graph, only it needs to run. Keras
gives no handle on the tensors of a layer inside a nested model (they are not
connected to the outer model's inputs), so this module replays the model's
graph on fresh symbolic inputs with the public `keras.models.clone_model`
hook (`call_function`), calling the *same* layer objects (weights shared, not
copied) and descending into nested `Functional` and `Sequential` models, and
cuts the flat graph it gets at the layer (`functional_head`). A layer inside
a composite layer, or any layer of a subclassed model, is not a node of a
graph: there `functional_head` finds none and the caller falls back on taps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import attrs
import keras

from keras_explainable.errors import ModelStructureError
from keras_explainable.exposure.twins import linear_twin

__all__ = ["Head", "functional_head", "is_replayable", "model_input"]


@attrs.define(eq=False)
class _Node:
    """One layer call in a replayed graph."""

    layer: keras.layers.Layer
    path: tuple[str, ...]
    args: tuple
    kwargs: dict
    inputs: tuple
    outputs: tuple
    nested: bool = False


def _flat_tensors(structure: Any) -> tuple:
    return tuple(t for t in keras.tree.flatten(structure) if isinstance(t, keras.KerasTensor))


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


def model_input(model: keras.Model) -> Any:
    """The model's input structure (a Sequential model only lists `inputs`)."""
    if isinstance(model, keras.Sequential):
        inputs = model.inputs
        return inputs[0] if len(inputs) == 1 else inputs
    return model.input


def _fresh_inputs(model: keras.Model) -> Any:
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


def _replay(model: keras.Model, inputs: Any, prefix: tuple[str, ...], nodes: list) -> Any:
    call_layer = functools.partial(_call_layer, prefix=prefix, nodes=nodes)
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
    # and picked by the same position from the replay on the real inputs.
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
                f"Model {model.name!r} returns one of its inputs unchanged; it cannot be replayed."
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


def _call_layer(layer: Any, *args: Any, prefix: tuple[str, ...], nodes: list, **kwargs: Any):
    path = (*prefix, layer.name)
    if is_replayable(layer):
        outputs = _replay(layer, args[0], path, nodes)
        flat_in, flat_out = _flat_tensors(args[0]), _flat_tensors(outputs)
        nodes.append(_Node(layer, path, args, kwargs, flat_in, flat_out, nested=True))
        return outputs
    outputs = layer(*args, **kwargs)
    inputs = _flat_tensors((args, kwargs))
    nodes.append(_Node(layer, path, args, kwargs, inputs, _flat_tensors(outputs)))
    return outputs


def _head_inputs(nodes: list[_Node], source: Any, outputs: Any) -> list:
    """The tensors besides `source` that computing `outputs` from `source` reads.

    Walking back from `outputs`, every tensor computed from `source` is
    followed to the node that produced it; the first tensors met that do
    not depend on `source` (a skip connection from before it, say) are
    returned, in the order met.
    """
    producers = {id(t): node for node in nodes if not node.nested for t in node.outputs}
    dependent = {id(source)}
    for node in nodes:
        if not node.nested and any(id(tensor) in dependent for tensor in node.inputs):
            dependent.update(id(tensor) for tensor in node.outputs)
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
        stack.extend(reversed(producers[id(tensor)].inputs))
    return found


@attrs.define(eq=False)
class Head:
    """The part of a model after its explained layer, as a function of that layer.

    Methods that change the explained layer's activations and need the new
    outputs (ablating channels, say) re-run only this part, not the model.
    Built by `functional_head`; both models share the user's layers and weights.

    Attributes:
        forward: inputs -> `[features, *context, outputs]`: one pass of the
            model, returning the layer's activations, the *context* (the
            tensors the head reads that do not depend on the layer, such as a
            skip connection from before it) and the explained outputs.
        model: `[features, *context] -> outputs`: the head.
        context_count: how many context tensors there are (often none).
        model_inputs: turns the inputs a step holds into what `forward`
            takes (`Exposure.model_inputs`).
    """

    forward: keras.Model
    model: keras.Model
    context_count: int
    model_inputs: Callable[[Any], Any] = lambda inputs: inputs

    def split(self, inputs: Any) -> tuple[Any, list, Any]:
        """Run the model once in inference mode; returns `(features, context, outputs)`."""
        features, *context, outputs = self.forward(self.model_inputs(inputs), training=False)
        return features, context, outputs

    def __call__(self, features: Any, context: list) -> Any:
        """The explained outputs recomputed from `features` and the `context` in inference mode.

        Args:
            features: `(M, *spatial, C)` activations of the explained layer.
            context: the context tensors of the same `M` samples.

        Returns:
            The `(M, K)` outputs.
        """
        return self.model([features, *context], training=False)


def _logits(nodes: list[_Node], tensor: Any) -> Any:
    """The pre-activation tensor behind `tensor` (a softmax or sigmoid output).

    A layer with the activation fused into it is called again as its linear
    twin, whose call joins `nodes`.
    """
    node = next(
        node for node in nodes if not node.nested and any(tensor is t for t in node.outputs)
    )
    if isinstance(node.layer, (keras.layers.Softmax, keras.layers.Activation)):
        return node.inputs[0]
    twin = linear_twin(node.layer, *node.args, name=f"{node.layer.name}_head_logits")
    logits = twin(*node.args, **node.kwargs)
    nodes.append(_Node(twin, node.path, node.args, node.kwargs, node.inputs, (logits,)))
    return logits


def functional_head(
    model: Any,
    path: tuple[str, ...],
    call_index: int,
    output_index: int | None,
    strip_activation: bool,
    start: tuple[str, ...] | None = None,
    model_inputs: Callable[[Any], Any] = lambda inputs: inputs,
) -> Head | None:
    """The part of a functional model after the call `path` (`call_index`), or None.

    Args:
        model: the model (functional or `Sequential`, nested models allowed).
        path: the explained layer's path (a node of the graph at any depth
            of nested models).
        call_index: which call of that layer.
        output_index: the explained output's position among the flattened
            outputs, or None for all of them.
        strip_activation: the explained output is the logits behind the
            softmax or sigmoid of the layer that returns it.
        start: the path of the layer whose output `forward` starts from (a
            text model's embedding), or None for the model's inputs.
        model_inputs: see `Head.model_inputs`.

    Returns:
        The `Head`, or None when the layer is not a node of a functional
        graph (a layer inside a composite layer), or the model is not
        functional.

    Raises:
        ModelStructureError: Keras cannot build the head as a model.
    """
    if not is_replayable(model):
        return None
    nodes: list[_Node] = []
    inputs = _fresh_inputs(model)
    outputs = _replay(model, inputs, (), nodes)
    matches = [node for node in nodes if node.path == path and not node.nested]
    if len(matches) <= call_index or len(matches[call_index].outputs) != 1:
        return None
    features = matches[call_index].outputs[0]
    if output_index is not None:
        outputs = keras.tree.flatten(outputs)[output_index]
        if strip_activation:
            outputs = _logits(nodes, outputs)
    if start is not None:
        inputs = next(node.outputs[0] for node in nodes if node.path == start)
    context = _head_inputs(nodes, features, outputs)
    try:
        head = keras.Model([features, *context], outputs)
        forward = keras.Model(inputs, [features, *context, outputs])
    except Exception as error:  # noqa: BLE001 - any failure means we cannot split here
        raise ModelStructureError(
            f"The part of the model after layer {'/'.join(path)!r} could not be built as a "
            f"model of its own ({type(error).__name__}: {error})."
        ) from error
    return Head(forward, head, len(context), model_inputs)
