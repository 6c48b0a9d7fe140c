"""Model exposure: the explained layers' activations and the scores, from one forward pass.

An explainer needs two kinds of tensors from one forward pass: the
activations of the layers it explains (the *features*) and the scores it
explains (the *outputs*, pre-softmax when the model ends in a softmax or
sigmoid). `expose` maps the model once (`keras_explainable.exposure.model_map`),
selects the layers (by path, name, index, object, or automatically:
`selection`, `addressing`) and the output (`outputs`), and returns an
`Exposure`: the user's own model, run inside a `TapSession` that observes
the explained layers and applies the method's other taps (the logits behind
a softmax, ReLU rules). A text model (token ids into an `Embedding`) is
explained on its embeddings (`text`): the model runs with the embedding's
output replaced by them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import attrs
import keras
import tensorflow as tf

from keras_explainable.errors import LayerError, ModelStructureError
from keras_explainable.exposure.addressing import LayerSpec, resolve_layer
from keras_explainable.exposure.graph import Head, functional_head, is_replayable, model_input
from keras_explainable.exposure.input_layout import InputLayout
from keras_explainable.exposure.model_map import (
    DISCOVERY_BATCH,
    ModelMap,
    map_model,
    reachable_layers,
)
from keras_explainable.exposure.outputs import (
    ALL_OUTPUTS,
    OutputSpec,
    logits_tap,
    output_names,
    pick_output,
    select_output,
)
from keras_explainable.exposure.relu_rules import ReLUGradient, relu_rule_taps
from keras_explainable.exposure.selection import (
    ExplainedLayer,
    auto_layer,
    check_layers,
    explained_layer,
)
from keras_explainable.exposure.several_inputs import input_layout, several_inputs_layers
from keras_explainable.exposure.split_model import SplitModel
from keras_explainable.exposure.taps import Observe, Replace, Tap, TapSession
from keras_explainable.exposure.text import TokenEmbedding, find_token_embedding

__all__ = [
    "ALL_OUTPUTS",
    "Exposure",
    "Forward",
    "Head",
    "ReplacingHead",
    "expose",
    "input_specs",
    "map_of",
]


class Forward(NamedTuple):
    """One forward pass of an exposure: what the methods read, and the session's records.

    Attributes:
        features: the explained layers' outputs as they return them (one
            tensor per layer, in order), or None without a layer.
        outputs: the explained outputs.
        session: the `TapSession` of the pass (`session.observed(tap)` for
            the extra taps a method gave).
    """

    features: tuple | None
    outputs: Any
    session: TapSession


@attrs.define(eq=False)
class Exposure:
    """A model, run so that it returns the explained features and scores together.

    Attributes:
        model: what runs: the user's model (or a `SplitModel`, or a plain
            callable), never changed.
        model_map: the model's `ModelMap`, or None for an opaque model (a
            plain callable, or a subclassed model whose input shape is not
            known).
        layers: the explained layers, in the order given (empty for methods
            that explain the input).
        output_name: the name of the explained output.
        stripped_activation: 'softmax' or 'sigmoid' when the scores are the
            logits behind that activation, else None.
        input_shape: the shape of the inputs the methods explain, batch axis
            None: the model's input shape, or for a text model the
            embeddings' `(N, T, E)`; None for an opaque model, or a model
            with several inputs (see `input_layout`).
        input_dtype: the dtype of those inputs, or None as `input_shape`.
        outputs: the traced explained output (or the structure of all of a
            multi-output model's), for its shape; None for an opaque model.
        embedding: for a text model, the `TokenEmbedding` that turns its token
            ids into the embeddings the methods explain; else None.
        output_names: the outputs' names when all outputs of a multi-output
            model are explained (no `output=` given), else None.
        input_layout: the model's inputs (names, shapes, dtypes), or None
            for an opaque model.
        map_input: the input whose spatial size the explained layers' maps
            are resized to (its index in `input_layout`), or None to keep
            them at the layer's size; 0 for a single-input model.
        taps: the taps every pass applies (the logits, ReLU rules).
        output_key: picks the explained output from the model's outputs.
    """

    model: Callable
    model_map: ModelMap | None
    layers: tuple[ExplainedLayer, ...]
    output_name: str
    stripped_activation: str | None
    input_shape: tuple | None
    input_dtype: str | None
    outputs: Any = None
    embedding: TokenEmbedding | None = None
    output_names: list[str] | None = None
    input_layout: InputLayout | None = None
    map_input: int | None = 0
    taps: tuple[Tap, ...] = ()
    output_key: Any = None
    _observers: tuple[Observe, ...] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._observers = tuple(Observe(layer.call.site) for layer in self.layers)

    @property
    def all_outputs(self) -> bool:
        """Whether every output of a multi-output model is explained (a structure)."""
        return self.output_names is not None

    @property
    def data_shape(self) -> tuple | None:
        """The shape of the data users pass, batch axis included (a text model's ids), or None."""
        if self.embedding is not None:
            return self.embedding.ids_shape
        return self.input_shape

    @property
    def several_inputs(self) -> bool:
        """Whether the methods explain several inputs (a tuple of them inside steps).

        A text model's methods explain one input (the token ids' embeddings)
        whatever else it reads; see `data_layout`.
        """
        return self.input_layout is not None and len(self.input_layout) > 1 and not self.text

    @property
    def text(self) -> bool:
        """Whether the model is a text model, explained on its token embeddings."""
        return self.embedding is not None

    @property
    def data_inputs(self) -> int:
        """How many inputs the data users pass holds (a text model's mask and ids count)."""
        return 1 if self.input_layout is None else len(self.input_layout)

    @property
    def output_units(self) -> int | None:
        """Number of units of a `(N, K)` output, else None."""
        if self.outputs is None or self.all_outputs or len(self.outputs.shape) != 2:
            return None
        return self.outputs.shape[-1]

    @property
    def output_shape(self) -> tuple | None:
        """Shape of the explained output, batch axis None, or None for an opaque model.

        A dict or list of shapes when all outputs of a multi-output model are
        explained.
        """
        if self.outputs is None:
            return None
        return keras.tree.map_structure(self.model_map.shape, self.outputs)

    @property
    def layer_name(self) -> str | tuple[str, ...] | None:
        """Path of the explained layer; a tuple of paths for several; None for none."""
        names = tuple(layer.name for layer in self.layers)
        if len(names) > 1:
            return names
        return names[0] if names else None

    @property
    def compute_dtype(self) -> tf.DType:
        """The float dtype inputs are cast to before the model runs (float32 for integers)."""
        dtype = self.input_dtype
        if dtype is None or not tf.as_dtype(dtype).is_floating:
            return tf.float32
        return tf.as_dtype(dtype)

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

    def model_inputs(self, inputs: Any) -> Any:
        """What the model takes, from the inputs a step holds (see `InputLayout.model_inputs`)."""
        if not self.several_inputs:
            return inputs
        return self.input_layout.model_inputs(inputs)

    def confidence(
        self, outputs: tf.Tensor, probabilities: bool = True, targets: Any = None
    ) -> tf.Tensor:
        """The explained outputs as float32 probabilities (or logits).

        Args:
            outputs: `(N, K)` explained outputs, as the exposure returns them.
            probabilities: turn logits into probabilities (default True): the
                sigmoid when the model's output ends in a sigmoid or has a
                single unit, else the softmax. False returns the outputs.
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

    # The exposure's Python runs as it is when a step is traced: autograph
    # (which the metrics' steps use) has no control flow to convert in it.
    @tf.autograph.experimental.do_not_convert
    def forward(self, inputs: Any, taps: Sequence[Tap] = ()) -> Forward:
        """Run the model once in inference mode with the exposure's taps and `taps`.

        Args:
            inputs: the inputs a step holds (a text model's embeddings; a
                tuple of inputs in the methods' view for several inputs).
            taps: more taps for this pass (FullGradient's pre-activations,
                a replaced layer output).

        Returns:
            The `Forward`: the explained features, outputs and the session.
        """
        model_inputs = self.model_inputs(inputs)
        extra = list(taps)
        if self.embedding is not None:
            model_inputs, replace = self.embedding.replaced(inputs)
            extra.append(replace)
        with TapSession([*self.taps, *self._observers, *extra]) as session:
            outputs = self._run(model_inputs)
        features = None
        if self._observers:
            features = tuple(session.observed(tap) for tap in self._observers)
        return Forward(features, pick_output(outputs, self.output_key), session)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, inputs: Any) -> tuple[Any, Any]:
        """Run the model in inference mode; returns `(features, outputs)`.

        `features` is the explained layer's output as the layer returns it (a
        token layer's `(N, T, C)`; `ExplainedLayer.on_grid` lays it out), a
        tuple of them with several layers, or None without a layer.
        """
        features, outputs, _ = self.forward(inputs)
        if features is not None and len(features) == 1:
            features = features[0]
        return features, outputs

    def _run(self, inputs: Any) -> Any:
        model = self.model
        if isinstance(model, SplitModel):
            return _call(model.head, _call(model.feature_extractor, inputs))
        return _call(model, inputs)

    @tf.autograph.experimental.do_not_convert
    def replaced(self, inputs: Any, features: tf.Tensor) -> Any:
        """The explained outputs with the (first) explained layer's output replaced by `features`.

        Args:
            inputs: the inputs, as `forward` takes them, of as many samples
                as `features` has.
            features: the layer's activations to use instead of its own.

        Returns:
            The explained outputs of the model run on `inputs` with the
            layer's output replaced.
        """
        layer = self.layers[0]
        replace = Replace(layer.call.site, value=features)
        model_inputs = self.model_inputs(inputs)
        taps = [*self.taps, replace]
        if self.embedding is not None:
            model_inputs, embedded = self.embedding.replaced(inputs)
            taps.append(embedded)
        with TapSession(taps):
            outputs = self._run(model_inputs)
        return pick_output(outputs, self.output_key)

    def head(self) -> Head | ReplacingHead:
        """The part of the model after the explained layer, to re-run it on other activations.

        Returns:
            A functional `Head` (one pass of the model that also returns
            what the head needs, and the head alone as a function of the
            layer's output) when the layer is a node of a functional graph;
            else a `ReplacingHead`, whose passes run the model with the
            layer's output replaced (a `SplitModel`'s head alone; the whole
            model for a layer inside a composite layer or a subclassed
            model). Both are used alike: `split(inputs)`, then
            `head(features, context)`.

        Raises:
            ModelStructureError: no layer is exposed, or Keras cannot build a
                model from the layer's output.
        """
        if not self.layers:
            raise ModelStructureError("Re-running the part of a model after a layer needs a layer.")
        head = None
        # A text model's passes read the batch's other inputs: they replace.
        if not isinstance(self.model, SplitModel) and self.embedding is None:
            call = self.layers[0].call
            flat = keras.tree.flatten(self.model_map.outputs)
            index = None
            if not self.all_outputs:
                index = next(i for i, tensor in enumerate(flat) if tensor is self.outputs)
            start = None if self.embedding is None else self.embedding.call.path
            stripped = self.stripped_activation is not None
            head = functional_head(
                self.model, call.path, call.index, index, stripped, start, self.model_inputs
            )
        return head or ReplacingHead(self)


@attrs.define(eq=False)
class ReplacingHead:
    """The part of a model after its explained layer, run by replacing the layer's output.

    Where that part is not a functional graph, `Exposure.head` gives this:
    the *context* of a pass is the inputs themselves, and a pass runs the
    model on them with the layer's output replaced (`Exposure.replaced`).
    The layers before the explained one run too, except in a `SplitModel`,
    whose feature extractor is skipped.

    Attributes:
        exposure: the exposure whose first layer is replaced.
    """

    exposure: Exposure

    @property
    def full_passes(self) -> bool:
        """Whether each pass runs the layers before the explained one too."""
        return not isinstance(self.exposure.model, SplitModel)

    def split(self, inputs: Any) -> tuple[Any, list, Any]:
        """Run the model once; returns `(features, context, outputs)`, the context the inputs."""
        features, outputs = self.exposure(inputs)
        return features, list(tf.nest.flatten(inputs)), outputs

    def __call__(self, features: Any, context: list) -> Any:
        """The explained outputs with the layer's output replaced by `features`.

        Args:
            features: `(M, ...)` activations of the explained layer.
            context: the inputs (flattened) of the same `M` samples.
        """
        inputs = context[0] if len(context) == 1 else tuple(context)
        return self.exposure.replaced(inputs, features)


def _call(layer: Callable, inputs: Any) -> Any:
    # A plain callable `f(x) -> outputs` takes no `training` argument.
    if isinstance(layer, keras.layers.Layer):
        return layer(inputs, training=False)
    return layer(inputs)


def input_specs(model: Any) -> tuple[Any, Any, bool] | None:
    """The model's input structure, its `TensorSpec`s for mapping, and whether its batch is fixed.

    None when the input shape is not known (a plain callable, or a
    subclassed model that was never built).
    """
    if isinstance(model, SplitModel):
        extractor = model.feature_extractor
        if is_replayable(extractor):
            structure = model_input(extractor)
        elif model.input_shape is not None:
            structure = keras.KerasTensor((None, *model.input_shape))
        else:
            raise ModelStructureError(
                "SplitModel: the feature extractor does not define its inputs (it is "
                "a subclassed model or a bare layer); pass input_shape=(...) without "
                "the batch axis, e.g. SplitModel(extractor, head, input_shape=(224, 224, 3))."
            )
    elif is_replayable(model):
        structure = model_input(model)
    elif isinstance(model, keras.Model) and model.built:
        shape = (model.get_build_config() or {}).get("input_shape")
        if shape is None or not isinstance(shape, (list, tuple)) or not shape:
            return None
        if isinstance(shape[0], (list, tuple)):
            return None
        # The batch of the first call that built the model is not the model's.
        structure = keras.KerasTensor((None, *shape[1:]))
    else:
        return None
    batches = {tensor.shape[0] for tensor in keras.tree.flatten(structure)}
    batch = batches.pop() if len(batches) == 1 and None not in batches else None

    def spec(tensor: Any) -> tf.TensorSpec:
        return tf.TensorSpec((batch or DISCOVERY_BATCH, *tensor.shape[1:]), tensor.dtype)

    return structure, keras.tree.map_structure(spec, structure), batch is not None


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
    relu_gradient: ReLUGradient | None = None,
    resize_to: str | int | None = None,
    call_index: int | None = None,
    pad_token_id: int | None = None,
) -> Exposure:
    """Map `model` and choose what an explainer reads from its forward pass.

    Args:
        model: a Keras model (functional, `Sequential`, nested, built from
            composite layers such as keras-hub's, or subclassed and built),
            a `SplitModel`, or (when `needs_layer` is False) any callable.
        layer: the layer to expose: a path through layers and sublayers
            (`"backbone/encoder/block_2/ln_1"`, or a unique tail of it), a
            list of names, an index into `model.layers`, or a `Layer`. None
            chooses one (see `selection.auto_layer`).
        layers: several layers to expose together, each given as `layer` is.
        needs_layer: whether the caller needs a hidden layer's output.
        output: the output to explain for multi-output models (name or index).
            None with several outputs keeps them all, as a structure.
        logits: explain the pre-activation logits when the output ends in a
            softmax or sigmoid.
        token_grid: `(h, w)`: the patch grid of token layers `(N, T, C)`.
        skip_tokens: the leading extra tokens of token layers.
        relu_gradient: a backward rule for every plain ReLU the model calls,
            `(outputs, gradients) -> gradients` (default None).
        resize_to: for a model with several inputs, the input (name or
            index) whose spatial size the layers' maps are resized to.
        call_index: which call of a layer called several times (shared
            weights) the layers are read at.
        pad_token_id: for a text model, the token id that marks padding
            (besides a padding mask input).

    Returns:
        The `Exposure`.

    Raises:
        ModelStructureError: the model cannot be mapped, the output is
            unknown, a layer or rule needs a model whose layers are not
            visible, or a text model's ids feed more than one Embedding.
        LayerError: a layer is unknown, ambiguous, never called, called
            several times without `call_index`, has no spatial axes, is a
            token sequence that fits no grid, or does not feed the output.
        InputError: `resize_to` names no input.
        TypeError: an argument has the wrong type.
    """
    if layer is not None and layers is not None:
        raise LayerError("Pass layer= (one layer) or layers= (several), not both.")
    split = isinstance(model, SplitModel)
    if split and (layer is not None or layers is not None):
        raise LayerError(
            "With a SplitModel the explained layer is the feature extractor's "
            "output; do not pass layer= or layers=."
        )
    if not split and not callable(model):
        raise TypeError(f"model must be a Keras model or a SplitModel; got {type(model).__name__}.")
    found = input_specs(model)
    if found is None:
        return _opaque(model, needs_layer, output, relu_gradient)
    structure, specs, batch_static = found
    graph = map_of(model, specs, batch_static)
    output_key, output_name = select_output(model, graph.outputs, output)
    outputs = pick_output(graph.outputs, output_key)
    taps: list[Tap] = []
    stripped = None
    names = None
    if output_name == ALL_OUTPUTS:
        names = output_names(model, graph.outputs)
    elif logits:
        tap, stripped = logits_tap(graph, outputs)
        taps += [tap] if tap is not None else []
    if relu_gradient is not None:
        taps += relu_rule_taps(graph.calls, relu_gradient)

    layout = input_layout(structure, graph)
    embedding = find_token_embedding(graph, model, layout, outputs, pad_token_id)
    # A text model's methods read one input, the embeddings of its token ids.
    several = len(graph.inputs) > 1 and embedding is None
    input_tensor = graph.inputs[0] if embedding is None else embedding.call.output
    input_shape = graph.shape(input_tensor)

    selection = (layer, layers, resize_to, token_grid, skip_tokens, call_index)
    explained: tuple[ExplainedLayer, ...] = ()
    map_input: int | None = 0 if embedding is None else embedding.ids_index
    if needs_layer and several:
        explained, map_input = several_inputs_layers(
            model, graph, outputs, output_name, layout, selection
        )
    elif needs_layer:
        explained = _layers(model, graph, outputs, output_name, input_shape, selection, split)
        if resize_to is not None:
            layout.index(resize_to, "resize_to")
    return Exposure(
        model,
        graph,
        explained,
        output_name,
        stripped,
        None if several else input_shape,
        None if several else input_tensor.dtype.name,
        outputs,
        embedding,
        names,
        layout,
        map_input if needs_layer or embedding is not None else None,
        tuple(taps),
        output_key,
    )


# Maps of the models explained so far: explainers of one model share its map
# (a trace of the model). Entries go with their model.
_MAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MAPS_LOCK = threading.Lock()


def map_of(model: Any, specs: Any, batch_static: bool) -> ModelMap:
    """The `ModelMap` of a model (or of both halves of a `SplitModel`) on inputs of `specs`.

    A Keras model's map is kept with the model and reused by the next
    explainer of the same model and input specs, as long as the model holds
    the same layers.
    """
    if isinstance(model, keras.layers.Layer):
        key = (repr(specs), batch_static, tuple(id(layer) for layer in reachable_layers(model)))
        with _MAPS_LOCK:
            known = _MAPS.get(model, {}).get(key)
        if known is None:
            known = map_model(model, specs, batch_static=batch_static)
            with _MAPS_LOCK:
                _MAPS.setdefault(model, {})[key] = known
        return known
    if isinstance(model, SplitModel):
        halves = [model.feature_extractor, model.head]
        return map_model(
            lambda inputs: _call(model.head, _call(model.feature_extractor, inputs)),
            specs,
            layers_of=[half for half in halves if isinstance(half, keras.layers.Layer)],
            batch_static=batch_static,
        )
    return map_model(model, specs, batch_static=batch_static)


def _layers(
    model: Any,
    graph: ModelMap,
    outputs: Any,
    output_name: str,
    input_shape: tuple,
    selection: tuple,
    split: bool,
) -> tuple[ExplainedLayer, ...]:
    """The explained layers of a single-input model (see `expose`)."""
    layer, layers, _, token_grid, skip_tokens, call_index = selection
    reading = {
        "graph": graph,
        "outputs": outputs,
        "output_name": output_name,
        "input_shape": input_shape,
        "token_grid": token_grid,
        "skip_tokens": skip_tokens,
    }
    if split:
        extractor = model.feature_extractor
        if not isinstance(extractor, keras.layers.Layer):
            raise ModelStructureError(
                "SplitModel: the feature extractor must be a Keras model or layer to be "
                f"explained at its output; got {type(extractor).__name__}."
            )
        call = resolve_layer(model, graph, extractor, 0)
        explained = (explained_layer(call, **reading),)
    elif layers is not None:
        calls = [resolve_layer(model, graph, spec, call_index) for spec in layers]
        explained = tuple(explained_layer(call, **reading) for call in calls)
    elif layer is None:
        explained = (auto_layer(graph, outputs, input_shape, token_grid, skip_tokens),)
    else:
        explained = (explained_layer(resolve_layer(model, graph, layer, call_index), **reading),)
    check_layers(explained, token_grid, skip_tokens)
    return explained


def _opaque(
    model: Any, needs_layer: bool, output: OutputSpec, relu_gradient: ReLUGradient | None
) -> Exposure:
    """The exposure of a model whose layers cannot be mapped (its input shape is unknown)."""
    name = getattr(model, "name", model)
    if needs_layer:
        raise ModelStructureError(
            f"The model {name!r} does not say what inputs it takes (a subclassed model "
            "never built, or a plain function), so its layers cannot be found. Build it "
            "(call it once on a batch, or model.build(input_shape)), or pass the two "
            "halves: SplitModel(feature_extractor, head)."
        )
    if output is not None:
        raise ModelStructureError(
            f"output= needs a model whose outputs can be found; build the model {name!r} "
            "first (call it once on a batch)."
        )
    if relu_gradient is not None:
        raise ModelStructureError(
            f"The ReLUs of the model {name!r} cannot be found: it does not say what inputs "
            "it takes (a subclassed model never built, or a plain function). Build it "
            "first (call it once on a batch, or model.build(input_shape))."
        )
    return Exposure(model, None, (), "output", None, None, None)
