"""Model exposure: choose the layer and output to explain, and wire them out.

An explainer needs two kinds of tensors from one forward pass: the
activations of the layers it explains (the *features*) and the scores it
explains (the *outputs*, pre-softmax when the model ends in a softmax or
sigmoid). `expose` replays the model (`keras_explainable.graph`), selects the
layers (by name, path, index, object, or automatically) and the output,
strips a final softmax or sigmoid, checks that each layer feeds the output,
finds the patch grid of a transformer's token layer (`keras_explainable.tokens`),
and builds one Keras model that returns them all. A text model (token ids into
an `Embedding`) is split at the embedding (`keras_explainable.text`): the
exposed model starts from the embeddings, and `Exposure.embed` looks the ids up.
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
    model_input,
    trace_model,
    trace_split,
)
from keras_explainable.inputs import InputLayout
from keras_explainable.relu_rules import ReLUGradient
from keras_explainable.selection import (
    ExplainedLayer,
    LayerSpec,
    auto_layer,
    check_layers,
    explained_layer,
    resolve_layer,
)
from keras_explainable.text import TokenEmbedding, find_token_embedding

__all__ = ["SplitModel", "ExplainedLayer", "Exposure", "Head", "expose"]

OutputSpec = str | int | None

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


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


#: The `output_name` of an exposure that explains all of a model's outputs.
ALL_OUTPUTS = "all outputs"


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
            # Every output is kept: a target reading them all (a detector's
            # boxes and scores) needs no choice; unit targets ask for one.
            return outputs, ALL_OUTPUTS
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
        input_shape: the shape of the inputs the methods explain, batch axis
            included, or None: the model's input shape, or for a text model
            the embeddings' `(N, T, E)`; None for an opaque model, or a model
            with several inputs (see `input_layout`).
        input_dtype: the dtype of those inputs, or None as `input_shape`.
        outputs: the explained output tensor, or the model's output structure
            when all its outputs are explained; None for an opaque model.
        embedding: for a text model, the `TokenEmbedding` that turns its token
            ids into the embeddings the methods explain; else None.
        output_names: the outputs' names when all outputs of a multi-output
            model are explained (no `output=` given), else None.
        input_layout: the model's inputs (names, shapes, dtypes), or None
            for an opaque model. With several inputs, the exposure is
            called on a tuple of them in the methods' view (see
            `InputLayout.method_view`).
        map_input: the input whose spatial size the explained layers' maps
            are resized to (its index in `input_layout`), or None to keep
            them at the layer's size; 0 for a single-input model.
    """

    model: Callable
    graph: ModelGraph | None
    layers: tuple[ExplainedLayer, ...]
    output_name: str
    stripped_activation: str | None
    input_shape: tuple | None
    input_dtype: str | None
    outputs: Any = None
    embedding: TokenEmbedding | None = None
    output_names: list[str] | None = None

    @property
    def all_outputs(self) -> bool:
        """Whether every output of a multi-output model is explained (a structure)."""
        return self.output_names is not None

    @property
    def inputs(self) -> Any:
        """The symbolic inputs of the exposed model: the graph's, or a text model's embeddings."""
        if self.embedding is not None:
            return self.embedding.tensor
        return None if self.graph is None else self.graph.inputs

    @property
    def data_shape(self) -> tuple | None:
        """The shape of the data users pass, batch axis included (a text model's ids), or None."""
        if self.embedding is not None:
            return self.embedding.ids_shape
        return self.input_shape

    def embed(self, data: tf.Tensor) -> tf.Tensor:
        """The inputs the methods explain, from the data users pass, inside the step.

        A text model's token ids `(N, T)` are looked up in its embedding,
        `(N, T, E)`; other inputs are cast to `compute_dtype`.

        Example:
            >>> attribution = method.attribute(exposure.embed(batch), targets)
        """
        if self.embedding is not None:
            return self.embedding.embed(data)
        return tf.cast(data, self.compute_dtype)

    input_layout: InputLayout | None = None
    map_input: int | None = 0

    @property
    def several_inputs(self) -> bool:
        """Whether the model takes several inputs (a tuple of them inside steps)."""
        return self.input_layout is not None and len(self.input_layout) > 1

    def model_inputs(self, inputs: Any) -> Any:
        """What the model takes, from the inputs a step holds (see `InputLayout.model_inputs`)."""
        if not self.several_inputs:
            return inputs
        return self.input_layout.model_inputs(inputs)

    @property
    def feature_call(self) -> LayerCall | None:
        """The call of the (first) explained layer, or None."""
        return self.layers[0].call if self.layers else None

    @property
    def output_units(self) -> int | None:
        """Number of units of a `(N, K)` output, else None."""
        if self.outputs is None or self.all_outputs or len(self.outputs.shape) != 2:
            return None
        return self.outputs.shape[-1]

    @property
    def output_shape(self) -> tuple | None:
        """Shape of the explained output, batch axis included, or None.

        A dict or list of shapes when all outputs of a multi-output model are
        explained.
        """
        if self.outputs is None:
            return None
        return keras.tree.map_structure(lambda tensor: tuple(tensor.shape), self.outputs)

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

    def confidence(
        self, outputs: tf.Tensor, probabilities: bool = True, targets: Any = None
    ) -> tf.Tensor:
        """The explained outputs as float32 probabilities (or logits).

        Args:
            outputs: `(N, K)` explained outputs, as the exposure returns them.
            probabilities: turn logits into probabilities (default True): the
                sigmoid when the model's output ends in a sigmoid or has a
                single unit, else the softmax (a model that ends in neither
                is taken to output logits). False returns the outputs as they
                are.
            targets: the `Targets` the outputs are read for, or None. A
                target of values that are not class scores (a `Regression`)
                reads the outputs as they are, whatever `probabilities` says.

        Returns:
            float32 `(N, K)` probabilities (or the outputs).

        Example:
            >>> _, outputs = exposure(images)
            >>> exposure.confidence(outputs)[:, k]   # probability of class k
        """
        if self.all_outputs:
            # A structure (a detector's boxes and scores) is read as it is.
            return keras.tree.map_structure(lambda value: tf.cast(value, tf.float32), outputs)
        outputs = tf.cast(outputs, tf.float32)
        if not probabilities or (targets is not None and not targets.reads_probabilities):
            return outputs
        # One logit is a binary classifier's: a softmax of it would be 1 always.
        if self.stripped_activation == "sigmoid" or outputs.shape[-1] == 1:
            return tf.sigmoid(outputs)
        return tf.nn.softmax(outputs, axis=-1)

    def __call__(self, inputs: Any) -> tuple[Any, Any]:
        """Run the exposed model in inference mode; returns `(features, outputs)`.

        `features` is the explained layer's output as the layer returns it (a
        token layer's `(N, T, C)`; `ExplainedLayer.on_grid` lays it out), a
        tuple of them with several layers, or None without a layer.
        """
        inputs = self.model_inputs(inputs)
        if not self.layers:
            # A plain callable `f(x) -> outputs` takes no `training` argument.
            if not isinstance(self.model, keras.Layer):
                return None, self.model(inputs)
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
        forward = keras.Model(self.inputs, [features, *context, self.outputs])
        return Head(forward, head, len(context), self.model_inputs)


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
    resize_to: str | int | None = None,
) -> Exposure:
    """Re-wire `model` to return the explained layers' outputs and the scores.

    Args:
        model: a functional or `Sequential` Keras model (nested models allowed),
            a subclassed model (only when `needs_layer` is False), or a
            `SplitModel`. A text model (integer token ids into one
            `Embedding`) is exposed from its embeddings (`Exposure.embedding`).
        layer: the layer to expose: a name, a path into nested models
            (`"backbone/conv5_block3_out"` or a list of names), an index into
            `model.layers`, or a `Layer`. None picks the last layer whose output
            keeps the input's spatial dimensions or, in a vision transformer,
            the token input of the last attention layer.
        layers: several layers to expose together, each given as `layer` is
            (exclusive with `layer`).
        needs_layer: whether the caller needs a hidden layer's output.
        output: the output to explain for multi-output models (name or index).
            None with several outputs keeps them all, as a structure, for
            targets that read them all (`ke.targets.Box`, callables); unit
            targets then ask for a choice.
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
        resize_to: for a model with several inputs, the input (name or
            index) whose spatial size the layers' maps are resized to.
            Default: the one input of the layer's rank that the layer is
            computed from; none such keeps the maps at the layer's size.

    Returns:
        The `Exposure`.

    Raises:
        ModelStructureError: the model cannot be split, the output is unknown,
            `relu_gradient` is given for a subclassed model, or a text model's
            ids feed more than one Embedding or it masks padding.
        LayerError: a layer is unknown, ambiguous, has no spatial axes, is a
            token sequence that fits no patch grid, or is not connected to the
            output; `layer` and `layers` are both given, or the token options
            are given without a token layer; with several inputs, the
            layers' maps could be resized to several inputs and `resize_to`
            does not choose one, or the layers come from different inputs.
        InputError: `resize_to` names no input.
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
    output_names = None
    if output_name == ALL_OUTPUTS:
        output_names = _output_names(owner, graph.outputs)
    elif logits:
        outputs, stripped = _strip_probability(graph, outputs)

    flat_inputs = keras.tree.flatten(graph.inputs)
    layout = input_layout(model, graph)
    if len(flat_inputs) > 1:
        for index, tensor in enumerate(flat_inputs):
            if find_token_embedding(graph, tensor, outputs) is not None:
                raise ModelStructureError(
                    f"Input {layout.names[index]!r} of this model with {len(flat_inputs)} "
                    "inputs takes token ids into an Embedding: text inputs are explained "
                    "in single-input models only, for now."
                )
    input_tensor = flat_inputs[0]
    embedding = None if len(flat_inputs) > 1 else find_token_embedding(graph, input_tensor, outputs)
    if embedding is not None:
        # A text model is explained on its embeddings, as if they were its input.
        input_tensor = embedding.tensor
    model_inputs = graph.inputs if embedding is None else input_tensor
    input_shape = tuple(input_tensor.shape)

    explained: tuple[ExplainedLayer, ...] = ()
    map_input: int | None = 0
    if needs_layer and len(flat_inputs) > 1:
        selection = (layer, layers, resize_to, token_grid, skip_tokens)
        explained, map_input = _several_inputs_layers(
            model, graph, outputs, output_name, layout, selection
        )
        exposed = keras.Model(graph.inputs, [*(entry.tensor for entry in explained), outputs])
    elif needs_layer:
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
            explained = (explained_layer(call, split_features, **reading),)
        elif layers is not None:
            calls = [resolve_layer(model, graph, spec) for spec in layers]
            explained = tuple(explained_layer(call, call.outputs[0], **reading) for call in calls)
        elif layer is None:
            explained = (auto_layer(graph, outputs, input_shape, token_grid, skip_tokens),)
        else:
            call = resolve_layer(model, graph, layer)
            explained = (explained_layer(call, call.outputs[0], **reading),)
        check_layers(explained, token_grid, skip_tokens)
        exposed = keras.Model(model_inputs, [*(entry.tensor for entry in explained), outputs])
        if resize_to is not None:
            layout.index(resize_to, "resize_to")
    else:
        exposed = keras.Model(model_inputs, outputs)
    several = len(flat_inputs) > 1
    return Exposure(
        exposed,
        graph,
        explained,
        output_name,
        stripped,
        None if several else input_shape,
        None if several else str(input_tensor.dtype),
        outputs,
        embedding,
        output_names,
        layout,
        map_input if needs_layer else None,
    )


def input_layout(model: Any, graph: ModelGraph) -> InputLayout:
    """The names, shapes and dtypes of the inputs of a replayed model, in flattened order."""
    source = model.feature_extractor if isinstance(model, SplitModel) else model
    flat = keras.tree.flatten(graph.inputs)
    structure = graph.inputs
    if isinstance(structure, dict):
        names = tuple(sorted(structure))
    else:
        original = model_input(source) if is_replayable(source) else None
        names = tuple(
            tensor.name if original is not None else f"input_{index}"
            for index, tensor in enumerate(
                keras.tree.flatten(flat if original is None else original)
            )
        )
    return InputLayout(
        names,
        tuple(tuple(tensor.shape) for tensor in flat),
        tuple(str(tensor.dtype) for tensor in flat),
        keyed=isinstance(structure, dict),
    )


def _several_inputs_layers(
    model: Any,
    graph: ModelGraph,
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
    layer, layers, resize_to, token_grid, skip_tokens = selection
    flat_inputs = keras.tree.flatten(graph.inputs)
    if layers is not None:
        calls = [resolve_layer(model, graph, spec) for spec in layers]
    elif layer is not None:
        calls = [resolve_layer(model, graph, layer)]
    else:
        calls = [_auto_call(graph, outputs, layout, token_grid, skip_tokens)]
    chosen = [_map_input(graph, call, layout, flat_inputs, resize_to) for call in calls]
    if len(set(chosen)) > 1:
        described = {
            call.name: _input_name(layout, index) for call, index in zip(calls, chosen, strict=True)
        }
        raise LayerError(
            f"The layers' maps fit different inputs ({described}); explain layers of one "
            "input together, or choose the input with resize_to=<input name>."
        )
    map_input = chosen[0]
    explained = tuple(
        explained_layer(
            call,
            call.outputs[0],
            graph=graph,
            outputs=outputs,
            output_name=output_name,
            input_shape=layout.shapes[map_input]
            if map_input is not None
            else tuple(call.outputs[0].shape),
            token_grid=token_grid,
            skip_tokens=skip_tokens,
        )
        for call in calls
    )
    check_layers(explained, token_grid, skip_tokens)
    return explained, map_input


def _input_name(layout: InputLayout, index: int | None) -> str | None:
    return None if index is None else layout.names[index]


def _auto_call(
    graph: ModelGraph,
    outputs: Any,
    layout: InputLayout,
    token_grid: Sequence[int] | None,
    skip_tokens: int | None,
) -> LayerCall:
    """The layer `auto_layer` finds for any spatial input, the latest in the graph."""
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
    graph: ModelGraph,
    call: LayerCall,
    layout: InputLayout,
    flat_inputs: list,
    resize_to: str | int | None,
) -> int | None:
    """The input a layer's maps are resized to (see `expose`'s `resize_to`)."""
    tensor = call.outputs[0]
    if resize_to is not None:
        index = layout.index(resize_to, "resize_to")
        if len(layout.shapes[index]) != len(tensor.shape):
            raise LayerError(
                f"resize_to={resize_to!r}: input {layout.names[index]!r} has shape "
                f"{layout.shapes[index]}, but layer {call.name!r} outputs shape "
                f"{tuple(tensor.shape)}, of another rank; its maps cannot take that "
                "input's spatial size."
            )
        return index
    candidates = [
        index
        for index, source in enumerate(flat_inputs)
        if len(source.shape) == len(tensor.shape) and graph.depends_on(tensor, source)
    ]
    if len(candidates) > 1:
        names = [layout.names[index] for index in candidates]
        raise LayerError(
            f"Layer {call.name!r} is computed from several inputs of its rank {names}; "
            "choose the one whose spatial size its maps take with resize_to=<input name>."
        )
    return candidates[0] if candidates else None
