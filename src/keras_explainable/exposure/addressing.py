"""Addressing: find the layer call a user names, and list every layer a model calls.

A layer is named by its path through the model's layers and sublayers, as
`ke.list_layers` prints it (`"vit_backbone/vit_encoder/transformer_block_2/ln_1"`,
or any tail of it that is unique, such as `"transformer_block_2/ln_1"`), by
a list of those names, by its index in `model.layers`, or by the layer
object itself. A layer called more than once in a forward pass (shared
weights) needs `call_index=`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import attrs
import keras

from keras_explainable.errors import LayerError
from keras_explainable.exposure.model_map import LayerCall, ModelMap
from keras_explainable.exposure.tokens import find_token_grid

__all__ = ["LayerInfo", "LayerSpec", "LayerTable", "describe_layers", "resolve_layer"]

LayerSpec = str | int | keras.layers.Layer | Sequence[str] | None


def _closest(wanted: str, graph: ModelMap, limit: int = 5) -> str:
    """A ' Did you mean ...?' hint: the full paths nearest `wanted` (or whose name is)."""
    paths = list(dict.fromkeys(call.name for call in graph.calls))
    names = {call.path[-1]: call.name for call in graph.calls}
    close = difflib.get_close_matches(wanted, paths, n=limit, cutoff=0.5)
    last = wanted.split("/")[-1]
    close += [
        names[name]
        for name in difflib.get_close_matches(last, list(names), n=limit, cutoff=0.6)
        if names[name] not in close
    ]
    if not close:
        return " ke.list_layers(model) lists the model's layers."
    return " Did you mean " + ", ".join(repr(path) for path in close[:limit]) + "?"


def resolve_layer(
    model: Any, graph: ModelMap, layer: LayerSpec, call_index: int | None = None
) -> LayerCall:
    """The call of the layer the user named (path, name, index or `Layer`).

    Args:
        model: the model (its `layers` for an index).
        graph: the model's map.
        layer: the layer, as `Explainer`'s `layer=` takes it.
        call_index: which call of a layer called several times (from 0).

    Returns:
        The `LayerCall`.

    Raises:
        LayerError: no layer of the model matches, several do, the layer is
            never called in inference, or it is called several times and
            `call_index` does not choose one (or is out of range).
        TypeError: `layer` has the wrong type.
    """
    if isinstance(layer, keras.layers.Layer):
        matches = graph.calls_of(layer)
        if not matches:
            if any(known is layer for known in graph.layers):
                raise LayerError(_never_called(layer.name, layer))
            raise LayerError(
                f"Layer {layer.name!r} is not part of the model (it belongs to another "
                "model, or is not held by any of its layers)." + _closest(layer.name, graph)
            )
        wanted = matches[0].name
    elif isinstance(layer, bool):
        raise TypeError("layer must be a path, an index, a Layer or a list of names; got a bool.")
    elif isinstance(layer, int):
        layers = getattr(model, "layers", None) or []
        if not -len(layers) <= layer < len(layers):
            raise LayerError(
                f"layer={layer} is out of range: the model has {len(layers)} top-level layers."
            )
        return resolve_layer(model, graph, layers[layer], call_index)
    elif isinstance(layer, str) or (
        isinstance(layer, Sequence) and all(isinstance(part, str) for part in layer)
    ):
        parts = tuple(part for part in (layer.split("/") if isinstance(layer, str) else layer))
        wanted = "/".join(parts)
        matches = [call for call in graph.calls if call.path[-len(parts) :] == parts]
        if not matches:
            held = [known for known in graph.layers if known.name == parts[-1]]
            if held:
                raise LayerError(_never_called(wanted, held[0]))
            raise LayerError(f"No layer named {wanted!r} in the model." + _closest(wanted, graph))
    else:
        raise TypeError(
            "layer must be a path such as 'backbone/encoder/block_2/ln_1', a layer name, an "
            f"index, or a keras Layer; got {type(layer).__name__}."
        )
    distinct = {id(call.layer) for call in matches}
    if len(distinct) > 1:
        paths = sorted({call.name for call in matches})
        raise LayerError(
            f"The layer {wanted!r} is ambiguous; it matches {paths}. Pass more of the path."
        )
    if call_index is None:
        if len(matches) > 1:
            raise LayerError(
                f"The layer {matches[0].name!r} is called {len(matches)} times in a forward "
                "pass (shared weights), so its output is ambiguous; choose one call with "
                f"call_index=0 to {len(matches) - 1}."
            )
        return matches[0]
    if not 0 <= call_index < len(matches):
        raise LayerError(
            f"call_index={call_index} is out of range: the layer {matches[0].name!r} is called "
            f"{len(matches)} time(s) in a forward pass (call_index=0"
            + (f" to {len(matches) - 1})." if len(matches) > 1 else ").")
        )
    return matches[call_index]


def _never_called(wanted: str, layer: keras.layers.Layer) -> str:
    quantized = getattr(layer, "quantization_mode", None)
    why = (
        f" It is quantized ({quantized}), and a quantized layer runs without its `call`."
        if quantized
        else " It may be used only in training, by an output that is not explained, or "
        "by code that does not run in inference."
    )
    return f"The layer {wanted!r} is part of the model, but a forward pass never calls it.{why}"


@attrs.frozen
class LayerInfo:
    """One layer call of a model, as `ke.list_layers` describes it.

    Attributes:
        path: the path to pass as `layer=`.
        class_name: the layer's class.
        output_shape: the call's output shape (the batch axis None), or a
            tuple of shapes for a layer with several outputs.
        kind: 'spatial' (a feature map on the input's spatial axes, as CAM
            methods explain), 'tokens' (a token sequence `(N, T, C)` that
            fits a patch grid of the image), or 'other'.
        call_index: which call of a layer called several times (else 0).
        composite: whether the layer calls other layers (a block).
        feeds_output: whether the model's output depends on it.
        grid: for 'tokens', the grid it is read on (`"4x4 token grid, 1
            skipped token"`); else None.
    """

    path: str
    class_name: str
    output_shape: Any
    kind: str
    call_index: int = 0
    composite: bool = False
    feeds_output: bool = True
    grid: str | None = None


def _describe_shape(shape: Any) -> str:
    """`(N, 4, 4, 16)` for a shape with a free batch axis; several shapes joined by ', '."""
    if shape and isinstance(shape[0], tuple):
        return ", ".join(_describe_shape(part) for part in shape)
    shown = ["N" if axis == 0 and size is None else str(size) for axis, size in enumerate(shape)]
    return "(" + ", ".join(shown) + ("," if len(shown) == 1 else "") + ")"


class LayerTable(list):
    """The list of `LayerInfo` that `ke.list_layers` returns; prints as a table."""

    def __str__(self) -> str:
        rows = [("path", "class", "output shape", "kind")]
        for info in self:
            path = info.path + (f"  [call_index={info.call_index}]" if info.call_index else "")
            kind = info.kind + (f" ({info.grid})" if info.grid else "")
            if not info.feeds_output:
                kind += ", does not feed the output"
            shape = _describe_shape(info.output_shape)
            rows.append((path, info.class_name, shape, kind))
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
            + "  "
            + row[3]
            for row in rows
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def paths(self, kind: str | None = None) -> list[str]:
        """The paths of the layers (of one `kind`, if given), in call order."""
        return [info.path for info in self if kind is None or info.kind == kind]


def describe_layers(graph: ModelMap, input_shape: tuple | None) -> LayerTable:
    """Describe every call of the map, in the order the calls return (see `LayerInfo`)."""
    from keras_explainable.exposure.selection import has_spatial_axes

    table = LayerTable()
    feeding = graph.ancestors(graph.outputs)
    for call in graph.calls:
        shapes = tuple(graph.shape(tensor) for tensor in call.outputs)
        kind, grid = "other", None
        tensor = call.output
        if tensor is not None and input_shape is not None and call.per_sample(tensor):
            if has_spatial_axes(tensor, input_shape):
                kind = "spatial"
            elif len(tensor.shape) == 3 and len(input_shape) == 4:
                found = find_token_grid(tensor.shape[1], input_shape[1:3])
                if found is not None:
                    kind, grid = "tokens", found.describe()
        table.append(
            LayerInfo(
                call.name,
                type(call.layer).__name__,
                shapes[0] if len(shapes) == 1 else shapes,
                kind,
                call.index,
                call.composite,
                any(id(output) in feeding for output in call.outputs),
                grid,
            )
        )
    return table
