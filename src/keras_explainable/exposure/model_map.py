"""The model map: every layer call of one forward pass, found by tracing it once.

To reach a layer, the library must know which layers a model calls, in what
order, on what, and what each call's output feeds. A functional graph lists
its own nodes, but the models Keras users load (keras-hub's) are graphs of
*composite* layers whose blocks are Python attributes, called from Python
code, and a subclassed model shows no graph at all. So the map is made the
one way that sees them all: the model is traced once with a recording tap
(`keras_explainable.exposure.taps`) on every layer it can reach, a node of a
functional graph or a layer held by another layer at any depth, and each
call is recorded with its path, its inputs and its output.

Each recorded output is passed on through an identity, so every call owns a
tensor of the traced graph, and the graph's own connections answer "does
this output depend on that call?" (`ModelMap.depends_on`). The map is made
with a static batch of `DISCOVERY_BATCH` samples, so a tensor whose first
axis is not the batch (a Swin window partition, `(N * windows, ...)`) is
told apart from a per-sample one (`LayerCall.per_sample`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import keras
import tensorflow as tf

from keras_explainable.errors import ModelStructureError
from keras_explainable.exposure.taps import CallSite, TapSession

__all__ = [
    "INFERENCE_IDENTITY_LAYERS",
    "DISCOVERY_BATCH",
    "LayerCall",
    "ModelMap",
    "is_builtin_layer",
    "map_model",
    "reachable_layers",
]

#: Layers that return their input unchanged at inference (dropout and noise).
INFERENCE_IDENTITY_LAYERS = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
)

#: The batch size a model is traced with to map it.
DISCOVERY_BATCH = 2

_CONTAINERS = (list, tuple, Sequence, Mapping)


def is_builtin_layer(layer: Any) -> bool:
    """Whether `layer` is one of Keras' own layers, or a subclass of one.

    A Keras layer (`Dense`, `MultiHeadAttention`, keras-hub's
    `ReversibleEmbedding(Embedding)`) is mapped as a whole; a layer whose
    nearest Keras ancestor is `Layer` or `Model` (a keras-hub encoder, a
    user's block) is a composite, and the map enters it.
    """
    for cls in type(layer).__mro__:
        if cls.__module__.split(".")[0] == "keras":
            return cls not in (keras.layers.Layer, keras.Model)
    return False


def _child_layers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """The layers `layer` holds: a model's nodes, or a composite layer's attributes."""
    if isinstance(layer, keras.Sequential) or _is_functional(layer):
        # Sequential runs an inner functional copy with `.call`, not through
        # `__call__`: its layers are reached through `layers` only.
        yield from (
            child for child in layer.layers if not isinstance(child, keras.layers.InputLayer)
        )
        return
    if is_builtin_layer(layer):
        return
    stack: list[Any] = list(reversed(list(vars(layer).values())))
    seen: set[int] = set()
    while stack:
        value = stack.pop()
        if id(value) in seen or isinstance(value, (str, bytes)):
            continue
        seen.add(id(value))
        if isinstance(value, keras.layers.Layer):
            yield value
        elif isinstance(value, Mapping):
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, (list, tuple, Sequence)):
            stack.extend(reversed(list(value)))


def _is_functional(layer: Any) -> bool:
    if not isinstance(layer, keras.Model) or isinstance(layer, keras.Sequential):
        return False
    try:
        return bool(layer.inputs) and bool(layer.outputs)
    except (AttributeError, ValueError):
        return False


def reachable_layers(model: Any) -> list[keras.layers.Layer]:
    """Every layer `model` holds, at any depth, in a depth-first order (not `model`)."""
    found: dict[int, keras.layers.Layer] = {}
    stack = [model]
    while stack:
        layer = stack.pop()
        children = [child for child in _child_layers(layer) if id(child) not in found]
        for child in children:
            found[id(child)] = child
        stack.extend(reversed(children))
    return list(found.values())


@attrs.define(eq=False)
class LayerCall:
    """One call of a layer in the traced forward pass.

    Attributes:
        layer: the layer object (the user's own).
        path: names from the mapped model's layers down to this layer.
        index: which call of the layer this is (0 for the first).
        inputs: the traced tensors the call took (positional and keyword
            arguments, flattened).
        outputs: the traced tensors it returned, flattened (each passed on
            through an identity, so it belongs to this call alone).
        parent: the call of the composite layer this call was made from, or
            None for a layer of the mapped model itself.
        children: the calls made from inside this call, in order.
        batch: the batch size the map was traced with.
        main_input: the call's main input tensor: its first positional
            argument, else the keyword argument `inputs`, `query`, `x` or
            `hidden_states` (an attention layer called with `query=`), else
            None.
    """

    layer: keras.layers.Layer
    path: tuple[str, ...]
    index: int
    inputs: tuple
    outputs: tuple
    parent: LayerCall | None = None
    children: list[LayerCall] = attrs.field(factory=list)
    batch: int = DISCOVERY_BATCH
    main_input: Any = None

    @property
    def name(self) -> str:
        """The path joined with '/', as users write it."""
        return "/".join(self.path)

    @property
    def site(self) -> CallSite:
        """The `CallSite` a tap on this call sits on."""
        return CallSite(self.layer, self.index, self.name)

    @property
    def composite(self) -> bool:
        """Whether other recorded calls were made from inside this call."""
        return bool(self.children)

    @property
    def output(self) -> Any:
        """The call's only output tensor, or None when it has several or none."""
        return self.outputs[0] if len(self.outputs) == 1 else None

    def per_sample(self, tensor: Any) -> bool:
        """Whether `tensor`'s first axis is the batch (not, say, `N * windows`)."""
        return len(tensor.shape) > 0 and tensor.shape[0] == self.batch


@attrs.define(eq=False)
class ModelMap:
    """Every layer call of one traced forward pass of a model.

    Attributes:
        inputs: the traced model inputs, flattened in the model's order.
        outputs: the traced outputs, in the model's structure.
        calls: every call, in the order the calls returned (a composite
            after the calls made inside it).
        layers: every layer the map could reach (called or not).
        batch_static: whether the model's inputs fix their batch size (their
            shapes then keep it in messages).
    """

    inputs: tuple
    outputs: Any
    calls: list[LayerCall]
    layers: list[keras.layers.Layer]
    batch_static: bool = False
    _producers: dict[int, LayerCall] = attrs.field(factory=dict, init=False)
    _ancestors: dict[tuple, frozenset] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        for call in self.calls:
            for tensor in call.outputs:
                self._producers[id(tensor)] = call

    @property
    def flat_outputs(self) -> list:
        """The outputs, flattened."""
        return keras.tree.flatten(self.outputs)

    def producer(self, tensor: Any) -> LayerCall | None:
        """The call that returned `tensor` (its outermost), or None."""
        return self._producers.get(id(tensor))

    def innermost(self, call: LayerCall) -> LayerCall:
        """The deepest call whose output a composite call returns as it is.

        A composite that returns the output of its last sublayer unchanged
        (a model whose last layer is a Dense) gives that sublayer's call.
        """
        while call.output is not None:
            outputs = {
                id(child.output): child for child in call.children if child.output is not None
            }
            tensor, inner = call.output, None
            while inner is None and tensor.op.type == "Identity" and len(tensor.op.inputs) == 1:
                tensor = tensor.op.inputs[0]
                inner = outputs.get(id(tensor))
            if inner is None:
                return call
            call = inner
        return call

    def source_call(self, tensor: Any) -> LayerCall | None:
        """The innermost call that returned `tensor` (through identities), or None."""
        while self.producer(tensor) is None:
            if tensor.op.type != "Identity" or len(tensor.op.inputs) != 1:
                return None
            tensor = tensor.op.inputs[0]
        return self.innermost(self.producer(tensor))

    def ancestors(self, tensors: Any) -> frozenset:
        """The ids of every tensor the given tensors are computed from (themselves included)."""
        flat = tuple(keras.tree.flatten(tensors))
        key = tuple(id(tensor) for tensor in flat)
        known = self._ancestors.get(key)
        if known is not None:
            return known
        seen: set[int] = set()
        stack = list(flat)
        while stack:
            tensor = stack.pop()
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            stack.extend(tensor.op.inputs)
        known = frozenset(seen)
        self._ancestors[key] = known
        return known

    def depends_on(self, tensors: Any, source: Any) -> bool:
        """Whether `tensors` (one, or a structure) are computed from `source`."""
        return id(source) in self.ancestors(tensors)

    def feeds_every_output(self, tensor: Any, outputs: Any) -> bool:
        """Whether every tensor of `outputs` is computed from `tensor`."""
        return all(self.depends_on(output, tensor) for output in keras.tree.flatten(outputs))

    def reads_besides(self, tensors: Any, source: Any, avoid: Any) -> bool:
        """Whether `tensors` read `source` on a path that does not pass through `avoid`."""
        seen: set[int] = {id(avoid)}
        stack = list(keras.tree.flatten(tensors))
        while stack:
            tensor = stack.pop()
            if tensor is source:
                return True
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            stack.extend(tensor.op.inputs)
        return False

    def direct_readers(self, source: Any) -> list[LayerCall]:
        """The calls (not composites) that read `source` with no other call in between."""
        readers = []
        for call in self.calls:
            if call.composite:
                continue
            seen: set[int] = set()
            stack = list(call.inputs)
            while stack:
                tensor = stack.pop()
                if tensor is source:
                    readers.append(call)
                    break
                if id(tensor) in seen or self.producer(tensor) is not None:
                    continue
                seen.add(id(tensor))
                stack.extend(tensor.op.inputs)
        return readers

    def calls_of(self, layer: keras.layers.Layer) -> list[LayerCall]:
        """The calls of `layer`, in order."""
        return [call for call in self.calls if call.layer is layer]

    def shape(self, tensor: Any) -> tuple:
        """`tensor`'s shape as users see it: the batch axis None (unless the model fixes it)."""
        shape = tuple(tensor.shape)
        if self.batch_static or not shape or shape[0] != DISCOVERY_BATCH:
            return shape
        return (None, *shape[1:])


class _Recorder(TapSession):
    """A session that records every call of the layers it is given."""

    def __init__(self, layers: Sequence[keras.layers.Layer], batch: int) -> None:
        super().__init__()
        self._layers = {id(layer): layer for layer in layers}
        self.recorded: list[LayerCall] = []
        self._stack: list[LayerCall] = []
        self._batch = batch

    def dispatch(self, layer: keras.layers.Layer, own_call: Callable, args: tuple, kwargs: dict):
        index = self._counts.get(id(layer), 0)
        self._counts[id(layer)] = index + 1
        parent = self._stack[-1] if self._stack else None
        path = (*(parent.path if parent else ()), layer.name)
        inputs = tuple(
            tensor for tensor in keras.tree.flatten((args, kwargs)) if isinstance(tensor, tf.Tensor)
        )
        call = LayerCall(
            layer,
            path,
            index,
            inputs,
            (),
            parent,
            batch=self._batch,
            main_input=_main(args, kwargs),
        )
        self._stack.append(call)
        try:
            outputs = own_call(*args, **kwargs)
        finally:
            self._stack.pop()
        outputs = keras.tree.map_structure(
            lambda value: tf.identity(value) if isinstance(value, tf.Tensor) else value, outputs
        )
        call.outputs = tuple(
            tensor for tensor in keras.tree.flatten(outputs) if isinstance(tensor, tf.Tensor)
        )
        if parent is not None:
            parent.children.append(call)
        self.recorded.append(call)
        return outputs


def _main(args: tuple, kwargs: dict) -> Any:
    """A call's main input tensor (see `LayerCall.main_input`)."""
    if args:
        return args[0] if isinstance(args[0], tf.Tensor) else None
    for name in ("inputs", "query", "x", "hidden_states"):
        if isinstance(kwargs.get(name), tf.Tensor):
            return kwargs[name]
    return None


# One map is made at a time: the recording taps every layer of the model.
_MAPPING = threading.Lock()


def map_model(
    model: Callable,
    input_specs: Any,
    *,
    layers_of: Any = None,
    run: Callable[[Any], Any] | None = None,
    batch_static: bool = False,
) -> ModelMap:
    """Trace one forward pass of `model` in inference mode and record every layer call.

    Args:
        model: the model (a Keras model, or any callable of Keras layers).
        input_specs: `tf.TensorSpec`s of the inputs, in the structure the
            model takes (their batch axis `DISCOVERY_BATCH`, or the model's).
        layers_of: the layers whose calls (and sublayers' calls) are mapped,
            when `model` is not itself a Keras layer (a `SplitModel`'s halves);
            default: `model`'s layers.
        run: how to call the model on inputs (default
            `model(inputs, training=False)`, or `model(inputs)` for a callable
            that is not a layer).
        batch_static: whether the model fixes its batch size.

    Returns:
        The `ModelMap`.

    Raises:
        ModelStructureError: the model cannot run on such inputs.
    """
    if layers_of is None:
        layers = reachable_layers(model)
    else:
        found = {}
        for root in layers_of:
            found.update((id(layer), layer) for layer in [root, *reachable_layers(root)])
        layers = list(found.values())
    if run is None:
        if isinstance(model, keras.layers.Layer):

            def run(inputs: Any) -> Any:
                return model(inputs, training=False)

        else:
            run = model
    traced: dict[str, Any] = {}

    def trace(*flat_inputs: tf.Tensor) -> None:
        structure = tf.nest.pack_sequence_as(input_specs, list(flat_inputs))
        with _Recorder(layers, batch) as recorder:
            outputs = run(structure)
        traced.update(inputs=flat_inputs, outputs=outputs, calls=recorder.recorded)

    flat_specs = tf.nest.flatten(input_specs)
    batch = flat_specs[0].shape[0]
    with _MAPPING:
        try:
            tf.function(trace, autograph=False).get_concrete_function(*flat_specs)
        except ModelStructureError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure means the model cannot run
            shapes = [tuple(spec.shape) for spec in flat_specs]
            raise ModelStructureError(
                f"The model could not be run on inputs of shape {shapes} to find its layers "
                f"({type(error).__name__}: {error})."
            ) from error
    return ModelMap(
        tuple(traced["inputs"]), traced["outputs"], traced["calls"], layers, batch_static
    )
