"""Model exposure: choose the layer and output to explain, and wire them out.

An explainer needs two kinds of tensors from one forward pass: the
activations of the layers it explains (the *features*) and the scores it
explains (the *outputs*, pre-softmax when the model ends in a softmax or
sigmoid). `expose` replays the model (`keras_explainable.graph`), selects the
layers (by name, path, index, object, or automatically) and the output,
strips a final softmax or sigmoid, checks that each layer feeds the output,
finds the patch grid of a transformer's token layer (`keras_explainable.tokens`),
and builds one Keras model that returns them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import keras
import tensorflow as tf

from keras_explainable.errors import LayerError, ModelStructureError, did_you_mean
from keras_explainable.graph import (
    LayerCall,
    ModelGraph,
    SplitModel,
    is_replayable,
    linear_twin,
    trace_model,
    trace_split,
)
from keras_explainable.relu_rules import ReLUGradient
from keras_explainable.tokens import TokenGrid, find_token_grid, token_grid_error

__all__ = ["SplitModel", "ExplainedLayer", "Exposure", "Head", "expose"]

LayerSpec = str | int | keras.layers.Layer | Sequence[str] | None
OutputSpec = str | int | None

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")
# Layers that mix the tokens of a sequence: the patch tokens of their input
# reach every token of their output, a class token included.
_ATTENTION = (
    keras.layers.MultiHeadAttention,
    keras.layers.GroupQueryAttention,
    keras.layers.Attention,
    keras.layers.AdditiveAttention,
)


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
        linear, logits = linear_twin(layer, f"{layer.name}_logits", *call.args, **call.kwargs)
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


def _auto_layer(
    graph: ModelGraph,
    outputs: Any,
    input_shape: tuple,
    token_grid: Sequence[int] | None,
    skip_tokens: int | None,
) -> ExplainedLayer:
    """The layer to explain when none is given.

    Walking back from the output, the first layer that feeds the output and
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
        if _has_spatial_axes(tensor, input_rank):
            if graph.depends_on(outputs, tensor):
                return ExplainedLayer(call, tensor)
            continue
        if id(tensor) not in mixed and fallback is not None:
            continue
        grid = _token_grid(tensor, input_shape, token_grid, skip_tokens)
        if grid is None or not graph.depends_on(outputs, tensor):
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


@attrs.define(eq=False)
class Exposure:
    """A model re-wired to return the explained features and scores together.

    Attributes:
        model: a Keras model mapping inputs to `[*features, outputs]` (one
            features tensor per explained layer; `outputs` alone when no layer
            is exposed); shares the user's weights.
        graph: the replayed graph, or None for an opaque (subclassed) model.
        layers: the explained layers, in the order given (empty for methods
            that explain the input).
        output_name: the name of the explained output.
        stripped_activation: 'softmax' or 'sigmoid' when the scores are the
            logits behind that activation, else None.
        input_shape: the model's input shape including the batch axis, or None.
    """

    model: Callable
    graph: ModelGraph | None
    layers: tuple[ExplainedLayer, ...]
    output_name: str
    stripped_activation: str | None
    input_shape: tuple | None
    input_dtype: str | None
    outputs: Any = None

    @property
    def feature_call(self) -> LayerCall | None:
        """The call of the (first) explained layer, or None."""
        return self.layers[0].call if self.layers else None

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
    def layer_name(self) -> str | tuple[str, ...] | None:
        """Path of the explained layer; a tuple of paths for several; None for none."""
        names = tuple(layer.name for layer in self.layers)
        if len(names) > 1:
            return names
        return names[0] if names else None

    @property
    def compute_dtype(self) -> tf.DType:
        """The float dtype inputs are cast to before the model runs.

        The model's input dtype when it is a float, else float32 (integer
        images are cast; the model casts them back where it needs to).
        """
        dtype = self.input_dtype
        if dtype is None or not tf.as_dtype(dtype).is_floating:
            return tf.float32
        return tf.as_dtype(dtype)

    def confidence(self, outputs: tf.Tensor, probabilities: bool = True) -> tf.Tensor:
        """The explained outputs as float32 probabilities (or logits).

        Args:
            outputs: `(N, K)` explained outputs, as the exposure returns them.
            probabilities: turn logits into probabilities (default True): the
                sigmoid when the model's output ends in a sigmoid, else the
                softmax (a model that ends in neither is taken to output
                logits). False returns the outputs as they are.

        Returns:
            float32 `(N, K)` probabilities (or the outputs).

        Example:
            >>> _, outputs = exposure(images)
            >>> exposure.confidence(outputs)[:, k]   # probability of class k
        """
        outputs = tf.cast(outputs, tf.float32)
        if not probabilities:
            return outputs
        if self.stripped_activation == "sigmoid":
            return tf.sigmoid(outputs)
        return tf.nn.softmax(outputs, axis=-1)

    def __call__(self, inputs: Any) -> tuple[Any, Any]:
        """Run the exposed model in inference mode; returns `(features, outputs)`.

        `features` is the explained layer's output as the layer returns it (a
        token layer's `(N, T, C)`; `ExplainedLayer.on_grid` lays it out), a
        tuple of them with several layers, or None without a layer.
        """
        if not self.layers:
            return None, self.model(inputs, training=False)
        *features, outputs = self.model(inputs, training=False)
        return (features[0] if len(features) == 1 else tuple(features)), outputs

    def head(self) -> Head:
        """Split the model at the explained layer, to re-run the part after it.

        Returns:
            A `Head`: one pass of the model that also returns what the head
            needs, and the head alone as a function of the layer's output.

        Raises:
            ModelStructureError: no layer is exposed, the model is opaque, or
                Keras cannot build a model from the layer's output.

        Example:
            >>> head = explainer.exposure.head()
            >>> features, context, outputs = head.split(images)
            >>> head(tf.zeros_like(features), context)   # outputs with the layer zeroed
        """
        if self.feature_call is None or self.graph is None:
            raise ModelStructureError(
                "Re-running the part of the model after a layer needs an exposed "
                "layer of a functional, Sequential or split model."
            )
        features = self.feature_call.outputs[0]
        context = self.graph.head_inputs(features, self.outputs)
        try:
            head = keras.Model([features, *context], self.outputs)
        except Exception as error:  # noqa: BLE001 - any failure means we cannot split here
            raise ModelStructureError(
                f"The part of the model after layer {self.layer_name!r} could not be "
                f"built as a model of its own ({type(error).__name__}: {error})."
            ) from error
        forward = keras.Model(self.graph.inputs, [features, *context, self.outputs])
        return Head(forward, head, len(context))


@attrs.define(eq=False)
class Head:
    """The part of a model after its explained layer, as a function of that layer.

    Methods that change the explained layer's activations and need the new
    outputs (ablating channels, say) re-run only this part, not the model.
    Built by `Exposure.head`; both models share the user's layers and weights.

    Attributes:
        forward: inputs -> `[features, *context, outputs]`: one pass of the
            model, returning the layer's activations, the *context* (the
            tensors the head reads that do not depend on the layer, such as a
            skip connection from before it) and the explained outputs.
        model: `[features, *context] -> outputs`: the head.
        context_count: how many context tensors there are (often none).
    """

    forward: keras.Model
    model: keras.Model
    context_count: int

    def split(self, inputs: Any) -> tuple[Any, list, Any]:
        """Run the model once in inference mode; returns `(features, context, outputs)`."""
        features, *context, outputs = self.forward(inputs, training=False)
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


def expose(
    model: Any,
    *,
    layer: LayerSpec = None,
    layers: Sequence[LayerSpec] | None = None,
    needs_layer: bool = True,
    output: OutputSpec = None,
    logits: bool = True,
    token_grid: Sequence[int] | None = None,
    skip_tokens: int | None = None,
    split_activations: bool = False,
    relu_gradient: ReLUGradient | None = None,
) -> Exposure:
    """Re-wire `model` to return the explained layers' outputs and the scores.

    Args:
        model: a functional or `Sequential` Keras model (nested models allowed),
            a subclassed model (only when `needs_layer` is False), or a
            `SplitModel`.
        layer: the layer to expose: a name, a path into nested models
            (`"backbone/conv5_block3_out"` or a list of names), an index into
            `model.layers`, or a `Layer`. None picks the last layer whose output
            keeps the input's spatial dimensions or, in a vision transformer,
            the token input of the last attention layer.
        layers: several layers to expose together, each given as `layer` is
            (exclusive with `layer`).
        needs_layer: whether the caller needs a hidden layer's output.
        output: the output to explain for multi-output models (name or index).
        logits: explain the pre-activation logits when the output ends in a
            softmax or sigmoid.
        token_grid: `(h, w)`: the patch grid of token layers `(N, T, C)` on
            images, instead of the one the input's size implies.
        skip_tokens: the leading extra tokens of token layers (class,
            distillation, register tokens), instead of the fewest that fit.
        split_activations: replay layers with a fused non-linear activation
            as linear twin + activation so their pre-activation outputs are in
            the graph (see `trace_model`; default False). Not available for
            an opaque (subclassed) model.
        relu_gradient: replay every plain ReLU with this backward rule,
            `(outputs, gradients) -> gradients` (see `trace_model`; default
            None). The forward pass is unchanged. Not available for an
            opaque (subclassed) model.

    Returns:
        The `Exposure`.

    Raises:
        ModelStructureError: the model cannot be split, the output is unknown,
            or `relu_gradient` is given for a subclassed model.
        LayerError: a layer is unknown, ambiguous, has no spatial axes, is a
            token sequence that fits no patch grid, or is not connected to the
            output; `layer` and `layers` are both given, or the token options
            are given without a token layer.
        TypeError: an argument has the wrong type.
    """
    if layer is not None and layers is not None:
        raise LayerError("Pass layer= (one layer) or layers= (several), not both.")
    replay = {"split_activations": split_activations, "relu_gradient": relu_gradient}
    if isinstance(model, SplitModel):
        if layer is not None or layers is not None:
            raise LayerError(
                "With a SplitModel the explained layer is the feature extractor's "
                "output; do not pass layer= or layers=."
            )
        graph, split_features = trace_split(model, **replay)
        owner: Any = model.head
    elif is_replayable(model):
        graph = trace_model(model, **replay)
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
        if relu_gradient is not None:
            raise ModelStructureError(
                f"The model {getattr(model, 'name', model)!r} is subclassed, so its ReLUs "
                "are not visible and their gradients cannot be replaced. Rebuild it with "
                "the functional API, or pass SplitModel(feature_extractor, head) of "
                "functional halves."
            )
        return Exposure(model, None, (), "output", None, None, None)
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
    input_shape = tuple(input_tensor.shape)
    _refuse_token_ids(graph, input_tensor)

    explained: tuple[ExplainedLayer, ...] = ()
    if needs_layer:
        reading = {
            "graph": graph,
            "outputs": outputs,
            "output_name": output_name,
            "input_shape": input_shape,
            "token_grid": token_grid,
            "skip_tokens": skip_tokens,
        }
        if split_features is not None:
            call = graph.producer(split_features) or LayerCall(
                model.feature_extractor, ("features",), (), {}, (), (split_features,)
            )
            explained = (_explained_layer(call, split_features, **reading),)
        elif layers is not None:
            calls = [_resolve_layer(model, graph, spec) for spec in layers]
            explained = tuple(_explained_layer(call, call.outputs[0], **reading) for call in calls)
        elif layer is None:
            explained = (_auto_layer(graph, outputs, input_shape, token_grid, skip_tokens),)
        else:
            call = _resolve_layer(model, graph, layer)
            explained = (_explained_layer(call, call.outputs[0], **reading),)
        _check_layers(explained, token_grid, skip_tokens)
        exposed = keras.Model(graph.inputs, [*(entry.tensor for entry in explained), outputs])
    else:
        exposed = keras.Model(graph.inputs, outputs)
    return Exposure(
        exposed,
        graph,
        explained,
        output_name,
        stripped,
        input_shape,
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


def _explained_layer(
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


def _check_layers(
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
