"""Layer selection: which layer calls an exposure explains, and on which grid.

`expose` asks this module for the layers to explain. Given ones are found
by `keras_explainable.exposure.addressing`; this module checks each (one
per-sample output with spatial axes, or a token sequence that fits a patch
grid, that feeds the explained output) and chooses one when none is given
(`auto_layer`), walking back from the output through the model map, inside
composite layers too:

- in a CNN, the last layer whose output keeps the input's spatial axes;
- in a segmenter, the last such layer *before* the classifier convolution
  (whose output is the model's logits, not evidence for them);
- in a detector explained on all its outputs, the last such layer that
  feeds every output (the shared backbone or pyramid level);
- in a vision transformer, the token input of the last attention layer,
  inside the composite encoder, read on its patch grid
  (`keras_explainable.exposure.tokens`): later tokens no longer reach a
  class token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import keras
import tensorflow as tf

from keras_explainable.errors import LayerError
from keras_explainable.exposure.model_map import LayerCall, ModelMap, is_builtin_layer
from keras_explainable.exposure.tokens import TokenGrid, find_token_grid, token_grid_error

__all__ = [
    "ExplainedLayer",
    "auto_layer",
    "check_layers",
    "explained_layer",
    "has_spatial_axes",
]

# Layers that mix the tokens of a sequence: the patch tokens of their input
# reach every token of their output, a class token included.
_ATTENTION = (
    keras.layers.MultiHeadAttention,
    keras.layers.GroupQueryAttention,
    keras.layers.Attention,
    keras.layers.AdditiveAttention,
)


def has_spatial_axes(tensor: Any, input_shape: tuple) -> bool:
    """Whether `tensor` lies on the input's spatial axes, as a feature map does.

    It keeps the input's rank, has a spatial axis longer than 1, no spatial
    axis longer than the input's, and the input's axes are divided by about
    the same factor (a stride): an attention layer's `(N, heads, T, T)` is
    not a feature map of a `(N, H, W, C)` image.
    """
    shape = tuple(tensor.shape)
    if len(shape) != len(input_shape) or len(input_shape) < 3:
        return False
    spatial = shape[1:-1]
    if not any(size is None or size > 1 for size in spatial):
        return False
    factors = []
    for size, full in zip(spatial, input_shape[1:-1], strict=True):
        if size is None or full is None:
            continue
        if size > full:
            return False
        factors.append(full / size)
    return not factors or max(factors) <= 2.5 * min(factors)


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


def _is_attention(layer: Any) -> bool:
    return isinstance(layer, _ATTENTION) or "attention" in type(layer).__name__.lower()


def _token_mixers(graph: ModelMap, input_rank: int) -> dict[int, str]:
    """The token sequences read by calls that may mix tokens, id -> why.

    Attention layers (Keras' own, or a library's layer named so) mix tokens.
    Where the map sees none, so may a layer from outside Keras that maps a
    token sequence to a token sequence and calls no other layer (its code is
    all the map sees of it).
    Keras' other layers act on each token alone, or pool or select tokens;
    a composite layer's own sublayers say whether it mixes them. An
    attention that reads windows of the tokens (Swin's, `(N * windows, w *
    w, C)`) reads the per-sample sequence they were cut from: the windows
    laid back on the image grid.
    """
    attention: dict[int, str] = {}
    custom: dict[int, str] = {}
    if input_rank not in (3, 4):
        return attention
    for call in graph.calls:
        if _is_attention(call.layer):
            found, reason = attention, "auto: input of the last attention layer"
        elif (
            not is_builtin_layer(call.layer)
            and not call.composite
            and call.output is not None
            and len(call.output.shape) == 3
        ):
            found, reason = custom, "auto: input of the last custom token layer"
        else:
            continue
        for tensor in _token_sources(graph, call):
            # and the tensors it passes on unchanged (a block's last layer's output)
            while True:
                found.setdefault(id(tensor), reason)
                if tensor.op.type != "Identity" or len(tensor.op.inputs) != 1:
                    break
                tensor = tensor.op.inputs[0]
    # Custom token layers stand in for attention only where none is visible
    # (a norm layer of a library is one, and mixes nothing).
    return attention or custom


def _token_sources(graph: ModelMap, call: LayerCall) -> list:
    """The per-sample token sequences a call's main input is made from, without a layer."""
    first = call.main_input
    if first is None:
        return []
    if call.per_sample(first):
        return [first] if len(first.shape) == 3 else []
    found, seen, stack = [], set(), [first]
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        if graph.producer(tensor) is not None and tensor is not first:
            if call.per_sample(tensor) and len(tensor.shape) == 3:
                found.append(tensor)
            continue
        stack.extend(tensor.op.inputs)
    return found


def _classifier(graph: ModelMap, outputs: Any) -> tuple[set[int], LayerCall | None]:
    """The calls from each output back to its first layer with weights, and that layer.

    A segmenter's last convolution maps features to class logits (resized,
    maybe, by layers without weights): its output is the prediction, not
    evidence for it, so the automatic choice starts before it.
    """
    excluded: set[int] = set()
    classifier = None
    for tensor in keras.tree.flatten(outputs):
        call = graph.source_call(tensor)
        while call is not None:
            excluded.add(id(call))
            if call.layer.weights or not call.inputs:
                classifier = classifier or call
                break
            call = graph.source_call(call.inputs[0])
    return excluded, classifier


def auto_layer(
    graph: ModelMap,
    outputs: Any,
    input_shape: tuple,
    token_grid: Sequence[int] | None,
    skip_tokens: int | None,
) -> ExplainedLayer:
    """The layer call to explain when none is given (see the module's docstring).

    Walking back from the output, the first call that feeds the output (every
    output, when all of a multi-output model's are explained) and either
    keeps the input's spatial axes or outputs a token sequence that fits a
    patch grid and is read by a layer that may mix tokens (see
    `_token_mixers`). Without either, the last token layer that fits a grid.
    The classifier (the output's last layer with weights, and what follows
    it) is never chosen.

    Raises:
        LayerError: no call qualifies.
    """
    input_rank = len(input_shape)
    mixed = _token_mixers(graph, input_rank)
    excluded, classifier = _classifier(graph, outputs)
    spatial_output = any(
        has_spatial_axes(tensor, input_shape) for tensor in keras.tree.flatten(outputs)
    )
    several = len(keras.tree.flatten(outputs)) > 1
    fallback = None
    for call in reversed(graph.calls):
        tensor = call.output
        if (
            tensor is None
            or id(call) in excluded
            or graph.innermost(call) is not call
            or not call.per_sample(tensor)
        ):
            continue
        if has_spatial_axes(tensor, input_shape):
            # A text model with attention is explained where its tokens are
            # last mixed, as a vision transformer is (its tokens are "spatial").
            text_tokens = input_rank == 3 and mixed
            if text_tokens and id(tensor) not in mixed:
                continue
            if text_tokens and graph.feeds_every_output(tensor, outputs):
                return ExplainedLayer(call, tensor, reason=mixed[id(tensor)])
            if graph.feeds_every_output(tensor, outputs):
                reason = None
                if several:
                    reason = "auto: last spatial layer feeding every output"
                elif spatial_output and classifier is not None:
                    reason = f"auto: last feature map before the classifier {classifier.name!r}"
                return ExplainedLayer(call, tensor, reason=reason)
            continue
        if id(tensor) not in mixed and fallback is not None:
            continue
        grid = _token_grid(tensor, input_shape, token_grid, skip_tokens)
        if grid is None or not graph.feeds_every_output(tensor, outputs):
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
        + " and feeds the output. Pass layer=<path>; ke.list_layers(model) lists them."
    )


@attrs.frozen(eq=False)
class ExplainedLayer:
    """A layer call whose activations an exposure returns.

    Attributes:
        call: the layer's call in the model map.
        tensor: its traced output: `(N, *spatial, C)`, or `(N, T, C)` for a
            token layer.
        grid: for a token sequence on image inputs, the `TokenGrid` its
            tokens are read on; else None.
        reason: why the layer was chosen, when it was chosen automatically
            and the reason is worth telling; else None.
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
        """The path, with its call for a shared layer, and why and on which grid it was chosen.

        Example: `"block1_norm1 (auto: input of the last attention layer, 4x4
        token grid, 1 skipped token)"`.
        """
        notes = []
        if self.call.index:
            notes.append(f"call {self.call.index}")
        if self.reason is not None:
            notes.append(self.reason)
            if self.grid is not None:
                notes.append(self.grid.describe())
        return f"{self.name} ({', '.join(notes)})" if notes else self.name

    def on_grid(self, tensor: tf.Tensor) -> tf.Tensor:
        """Lay a token layer's `(..., T, C)` tensor out as `(..., h, w, C)`.

        Features `(N, T, C)` and per-target gradients `(N, L, T, C)` alike; a
        spatial layer's tensors are returned unchanged.
        """
        return tensor if self.grid is None else self.grid.to_grid(tensor)


def explained_layer(
    call: LayerCall,
    *,
    graph: ModelMap,
    outputs: Any,
    output_name: str,
    input_shape: tuple,
    token_grid: Sequence[int] | None,
    skip_tokens: int | None,
) -> ExplainedLayer:
    """Check that `call`'s output can be explained; read a token layer on its grid.

    Raises:
        LayerError: the call has several outputs, no spatial axes, an output
            whose first axis is not the batch, a token sequence that fits
            no grid, or does not feed the output.
    """
    if call.output is None:
        raise LayerError(
            f"Layer {call.name!r} returns {len(call.outputs)} tensors; choose a layer with one."
        )
    tensor = call.output
    shape = graph.shape(tensor)
    input_rank = len(input_shape)
    if len(shape) < 3:
        raise LayerError(
            f"Layer {call.name!r} outputs shape {shape}, which has no spatial "
            "axes to explain; choose a convolutional (or other spatial) layer."
        )
    if not call.per_sample(tensor):
        raise LayerError(
            f"Layer {call.name!r} outputs shape {shape}, whose first axis is not the batch "
            "(it holds several rows per sample, such as a Swin block's windows); choose a "
            "layer with one row per sample. ke.list_layers(model) lists them."
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
    names = [entry.description for entry in explained]
    for name in names:
        if names.count(name) > 1:
            raise LayerError(f"layers= lists the layer {name!r} {names.count(name)} times.")
    if (token_grid is not None or skip_tokens is not None) and all(
        entry.grid is None for entry in explained
    ):
        shapes = ", ".join(f"{entry.name!r} {tuple(entry.tensor.shape)[1:]}" for entry in explained)
        raise LayerError(
            "token_grid= and skip_tokens= read a token-sequence layer (N, T, C) of a model "
            f"on images (N, H, W, C) on its patch grid, but the explained layer outputs "
            f"no token sequence ({shapes}). Leave them unset."
        )
