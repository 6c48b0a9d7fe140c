"""Layer selection: which layers an exposure explains, and on which grid.

`expose` (`keras_explainable.exposure`) asks this module for the layers to
explain: named, given by path, index or object, or chosen automatically (the
last layer that keeps the input's spatial axes, or for a vision transformer
the token layer where the patch tokens last reach the output), each checked
to feed the output, and a token layer laid out on its patch grid
(`keras_explainable.tokens`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import keras
import tensorflow as tf

from keras_explainable.errors import LayerError, did_you_mean
from keras_explainable.graph import LayerCall, ModelGraph
from keras_explainable.tokens import TokenGrid, find_token_grid, token_grid_error

__all__ = [
    "ExplainedLayer",
    "LayerSpec",
    "auto_layer",
    "check_layers",
    "explained_layer",
    "has_spatial_axes",
    "resolve_layer",
]

LayerSpec = str | int | keras.layers.Layer | Sequence[str] | None

# Layers that mix the tokens of a sequence: the patch tokens of their input
# reach every token of their output, a class token included.
_ATTENTION = (
    keras.layers.MultiHeadAttention,
    keras.layers.GroupQueryAttention,
    keras.layers.Attention,
    keras.layers.AdditiveAttention,
)


def has_spatial_axes(tensor: Any, input_rank: int) -> bool:
    """Whether `tensor` keeps the input's rank and has a spatial axis longer than 1."""
    shape = tuple(tensor.shape)
    if len(shape) != input_rank or input_rank < 3:
        return False
    spatial = shape[1:-1]
    return any(size is None or size > 1 for size in spatial)


def resolve_layer(model: Any, graph: ModelGraph, layer: LayerSpec) -> LayerCall:
    """The call of the layer the user named (name, path, index or `Layer`).

    Raises:
        LayerError: the layer is unknown, ambiguous or called several times.
        TypeError: `layer` has the wrong type.
    """
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
        return resolve_layer(model, graph, layers[layer])
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


def _token_grid(
    tensor: Any,
    input_shape: tuple,
    token_grid: Sequence[int] | None,
    skip_tokens: int | None,
) -> TokenGrid | None:
    """The patch grid of a token sequence `(N, T, C)` on image inputs, else None."""
    if len(tensor.shape) != 3 or len(input_shape) != 4:
        return None
    return find_token_grid(tensor.shape[1], input_shape[1:3], token_grid, skip_tokens)


def _is_keras_layer(layer: Any) -> bool:
    """Whether `layer` is one of Keras' own layers (not a user's or a library's)."""
    return type(layer).__module__.split(".")[0] == "keras"


def _token_mixers(graph: ModelGraph, input_rank: int) -> dict[int, str]:
    """The token sequences read by layers that may mix tokens, id -> why.

    Attention layers mix tokens; so may a layer from outside Keras that maps
    a token sequence to a token sequence (a transformer block of a library,
    whose attention the replay cannot see). Keras' other layers act on each
    token alone, or pool or select tokens.
    """
    mixed: dict[int, str] = {}
    if input_rank != 4:
        return mixed
    for call in graph.calls:
        if call.nested:
            continue
        if isinstance(call.layer, _ATTENTION):
            reason = "auto: input of the last attention layer"
        elif (
            not _is_keras_layer(call.layer)
            and len(call.outputs) == 1
            and len(call.outputs[0].shape) == 3
        ):
            reason = "auto: input of the last custom token layer"
        else:
            continue
        for tensor in call.inputs:
            if len(tensor.shape) == 3:
                mixed[id(tensor)] = reason
    return mixed


def _feeds_every_output(graph: ModelGraph, outputs: Any, tensor: Any) -> bool:
    """Whether every tensor of `outputs` (one, or a structure) is computed from `tensor`."""
    return all(graph.depends_on(output, tensor) for output in keras.tree.flatten(outputs))


def auto_layer(
    graph: ModelGraph,
    outputs: Any,
    input_shape: tuple,
    token_grid: Sequence[int] | None,
    skip_tokens: int | None,
) -> ExplainedLayer:
    """The layer to explain when none is given.

    Walking back from the output, the first layer that feeds the output (every
    output, when all of a multi-output model's are explained: the shared
    backbone of a detector's boxes and scores) and
    either keeps the input's spatial axes (a CNN's feature map), or outputs
    a token sequence that fits a patch grid and is read by a layer that may
    mix tokens (see `_token_mixers`). In a vision transformer that is the
    input of the last attention layer: there its patch tokens reach the
    class token, and no later, so a later layer's map would be zero for a
    model that classifies the class token. Without either, the last token
    layer that fits a grid.
    """
    input_rank = len(input_shape)
    mixed = _token_mixers(graph, input_rank)
    fallback = None
    for call in reversed(graph.calls):
        if call.nested or len(call.outputs) != 1:
            continue
        tensor = call.outputs[0]
        if has_spatial_axes(tensor, input_rank):
            if _feeds_every_output(graph, outputs, tensor):
                return ExplainedLayer(call, tensor)
            continue
        if id(tensor) not in mixed and fallback is not None:
            continue
        grid = _token_grid(tensor, input_shape, token_grid, skip_tokens)
        if grid is None or not _feeds_every_output(graph, outputs, tensor):
            continue
        if id(tensor) in mixed:
            return ExplainedLayer(call, tensor, grid, mixed[id(tensor)])
        fallback = ExplainedLayer(call, tensor, grid, "auto: last token layer")
    if fallback is not None:
        return fallback
    raise LayerError(
        "Could not find a layer to explain automatically: no layer's output keeps the "
        f"input's {input_rank - 2} spatial dimension(s)"
        + (" or is a token sequence that fits a patch grid" if input_rank == 4 else "")
        + ". Pass layer=<name>."
    )


@attrs.frozen(eq=False)
class ExplainedLayer:
    """A layer whose activations an exposure returns.

    Attributes:
        call: the layer's call in the replayed graph.
        tensor: its output, as the exposure returns it: `(N, *spatial, C)`,
            or `(N, T, C)` for a token layer.
        grid: for a token sequence on image inputs, the `TokenGrid` its
            tokens are read on; else None.
        reason: why the layer was chosen, when a token layer was chosen
            automatically; else None.
    """

    call: LayerCall
    tensor: Any
    grid: TokenGrid | None = None
    reason: str | None = None

    @property
    def name(self) -> str:
        """The layer's path, as users write it."""
        return self.call.name

    @property
    def description(self) -> str:
        """The path; for a token layer chosen automatically, also why and on which grid.

        Example: `"block1_norm1 (auto: input of the last attention layer, 4x4
        token grid, 1 skipped token)"`.
        """
        if self.reason is None or self.grid is None:
            return self.name
        return f"{self.name} ({self.reason}, {self.grid.describe()})"

    def on_grid(self, tensor: tf.Tensor) -> tf.Tensor:
        """Lay a token layer's `(..., T, C)` tensor out as `(..., h, w, C)`.

        Features `(N, T, C)` and per-target gradients `(N, L, T, C)` alike; a
        spatial layer's tensors are returned unchanged.
        """
        return tensor if self.grid is None else self.grid.to_grid(tensor)


def explained_layer(
    call: LayerCall,
    tensor: Any,
    *,
    graph: ModelGraph,
    outputs: Any,
    output_name: str,
    input_shape: tuple,
    token_grid: Sequence[int] | None,
    skip_tokens: int | None,
) -> ExplainedLayer:
    """Check that `call`'s output `tensor` can be explained; read a token layer on its grid."""
    if len(call.outputs) != 1:
        raise LayerError(
            f"Layer {call.name!r} has {len(call.outputs)} outputs; choose a layer with one."
        )
    shape = tuple(tensor.shape)
    input_rank = len(input_shape)
    if len(shape) < 3:
        raise LayerError(
            f"Layer {call.name!r} outputs shape {shape}, which has no spatial "
            "axes to explain; choose a convolutional (or other spatial) layer."
        )
    grid = None
    if len(shape) == 3 and input_rank == 4:
        grid = _token_grid(tensor, input_shape, token_grid, skip_tokens)
        if grid is None:
            raise token_grid_error(call.name, shape, input_shape[1:3], token_grid, skip_tokens)
    elif len(shape) != input_rank:
        raise LayerError(
            f"Layer {call.name!r} outputs shape {shape}, which does not keep "
            f"the input's {input_rank - 2} spatial axes (expected a layer output of rank "
            f"{input_rank}: (N, *spatial, C), or a token sequence (N, T, C) on images); "
            "choose a convolutional layer, or a layer whose output has the input's "
            "spatial axes."
        )
    if not graph.depends_on(outputs, tensor):
        raise LayerError(
            f"Layer {call.name!r} is not connected to the output {output_name!r}: the "
            "gradient would be zero everywhere. Choose a layer that feeds this output."
        )
    return ExplainedLayer(call, tensor, grid)


def check_layers(
    explained: tuple[ExplainedLayer, ...],
    token_grid: Sequence[int] | None,
    skip_tokens: int | None,
) -> None:
    """Reject a layer listed twice, and token options without a token layer."""
    names = [entry.name for entry in explained]
    for name in names:
        if names.count(name) > 1:
            raise LayerError(f"layers= lists the layer {name!r} {names.count(name)} times.")
    if (token_grid is not None or skip_tokens is not None) and all(
        entry.grid is None for entry in explained
    ):
        shapes = ", ".join(f"{entry.name!r} {tuple(entry.tensor.shape)}" for entry in explained)
        raise LayerError(
            "token_grid= and skip_tokens= read a token-sequence layer (N, T, C) of a model "
            f"on images (N, H, W, C) on its patch grid, but the explained layer outputs "
            f"no token sequence ({shapes}). Leave them unset."
        )
