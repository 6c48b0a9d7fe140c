"""Models with several inputs: their layout, and which input a layer's maps fit."""

from __future__ import annotations

from typing import Any

import keras

from keras_explainable.errors import LayerError
from keras_explainable.exposure.addressing import resolve_layer
from keras_explainable.exposure.input_layout import InputLayout
from keras_explainable.exposure.model_map import LayerCall, ModelMap
from keras_explainable.exposure.selection import (
    ExplainedLayer,
    auto_layer,
    check_layers,
    explained_layer,
)

__all__ = ["input_layout", "several_inputs_layers"]


def input_layout(structure: Any, graph: ModelMap) -> InputLayout:
    """The names, shapes and dtypes of a model's inputs, in flattened order.

    Args:
        structure: the model's input structure (symbolic tensors, or specs).
        graph: the model's map (the inputs' shapes as users see them).
    """
    flat = keras.tree.flatten(structure)
    if isinstance(structure, dict):
        names = tuple(sorted(structure))
    else:
        names = tuple(
            getattr(tensor, "name", None) or f"input_{index}" for index, tensor in enumerate(flat)
        )
    return InputLayout(
        names,
        tuple(graph.shape(tensor) for tensor in graph.inputs),
        tuple(tensor.dtype.name for tensor in graph.inputs),
        keyed=isinstance(structure, dict),
    )


def several_inputs_layers(
    model: Any,
    graph: ModelMap,
    outputs: Any,
    output_name: str,
    layout: InputLayout,
    selection: tuple,
) -> tuple[tuple[ExplainedLayer, ...], int | None]:
    """The explained layers of a model with several inputs, and the input their maps fit.

    Chosen automatically, a layer is the last one that keeps the spatial
    axes of one of the inputs of rank 3 or more (an image branch's feature
    map). Its maps are resized to the input it is computed from that has its
    rank (see `expose`'s `resize_to`).
    """
    layer, layers, resize_to, token_grid, skip_tokens, call_index = selection
    if layers is not None:
        calls = [resolve_layer(model, graph, spec, call_index) for spec in layers]
    elif layer is not None:
        calls = [resolve_layer(model, graph, layer, call_index)]
    else:
        calls = [_auto_call(graph, outputs, layout, token_grid, skip_tokens)]
    chosen = [_map_input(graph, call, layout, resize_to) for call in calls]
    if len(set(chosen)) > 1:
        described = {
            call.name: None if index is None else layout.names[index]
            for call, index in zip(calls, chosen, strict=True)
        }
        raise LayerError(
            f"The layers' maps fit different inputs ({described}); explain layers of one "
            "input together, or choose the input with resize_to=<input name>."
        )
    map_input = chosen[0]
    explained = tuple(
        explained_layer(
            call,
            graph=graph,
            outputs=outputs,
            output_name=output_name,
            input_shape=layout.shapes[map_input]
            if map_input is not None
            else graph.shape(call.output),
            token_grid=token_grid,
            skip_tokens=skip_tokens,
        )
        for call in calls
    )
    check_layers(explained, token_grid, skip_tokens)
    return explained, map_input


def _auto_call(
    graph: ModelMap,
    outputs: Any,
    layout: InputLayout,
    token_grid: Any,
    skip_tokens: int | None,
) -> LayerCall:
    """The layer `auto_layer` finds for any spatial input, the latest in the forward pass."""
    found: list[ExplainedLayer] = []
    failure: LayerError | None = None
    for shape in dict.fromkeys(shape for shape in layout.shapes if len(shape) >= 3):
        try:
            found.append(auto_layer(graph, outputs, shape, token_grid, skip_tokens))
        except LayerError as error:
            failure = error
    if not found:
        raise failure or LayerError(
            f"Could not find a layer to explain automatically: none of the inputs "
            f"{list(layout.names)} has spatial axes (N, *spatial, C). Pass layer=<name>."
        )
    return max(found, key=lambda entry: graph.calls.index(entry.call)).call


def _map_input(
    graph: ModelMap, call: LayerCall, layout: InputLayout, resize_to: str | int | None
) -> int | None:
    """The input a layer's maps are resized to (see `expose`'s `resize_to`)."""
    tensor = call.output
    rank = len(tensor.shape) if tensor is not None else 0
    if resize_to is not None:
        index = layout.index(resize_to, "resize_to")
        if len(layout.shapes[index]) != rank:
            raise LayerError(
                f"resize_to={resize_to!r}: input {layout.names[index]!r} has shape "
                f"{layout.shapes[index]}, but layer {call.name!r} outputs shape "
                f"{graph.shape(tensor)}, of another rank; its maps cannot take that "
                "input's spatial size."
            )
        return index
    candidates = [
        index
        for index, source in enumerate(graph.inputs)
        if len(source.shape) == rank and tensor is not None and graph.depends_on(tensor, source)
    ]
    if len(candidates) > 1:
        names = [layout.names[index] for index in candidates]
        raise LayerError(
            f"Layer {call.name!r} is computed from several inputs of its rank {names}; "
            "choose the one whose spatial size its maps take with resize_to=<input name>."
        )
    return candidates[0] if candidates else None
