"""Taps: reach any call of any layer a model runs, while a step is traced.

A *tap* sits on one call of one layer (a `CallSite`: the layer object and
which of its calls in a forward pass) and changes what that call does:

- `Observe` records the call's output, so that a method reads the layer's
  activations and differentiates the scores with respect to them (the
  output is returned plus an explicit zero, so its gradient is the layer's
  gradient, and no other use of the same tensor is counted);
- `Replace` substitutes the call's output (a given tensor, or a function of
  the output), so the rest of the model runs on other activations;
- `PreActivation` runs a layer with a fused activation as its linear twin
  followed by the activation (or without it), to read or keep the output
  before the activation;
- `ReLURule` gives a ReLU another backward rule (Guided Backprop,
  Deconvnet), its forward pass unchanged.

Taps exist only inside a `TapSession`, a context manager that opens around
one call of the model while a compiled step is traced:

    with TapSession([observe, logits]) as session:
        outputs = model(inputs, training=False)
    features = session.observed(observe)

While a session is open, each tapped layer's `call` is an instance
attribute that hands the call to the session of the calling thread (the
innermost that taps the layer) and otherwise calls the layer's own `call`.
Installs are counted under a lock, so replicas of a `tf.distribute`
strategy that trace in threads share them safely; the last session to close
restores the attribute exactly as it was. A traced step holds the taps'
effects as ordinary graph operations: nothing of them runs in Python later,
and the model is untouched between traces. Only public Keras and TensorFlow
APIs are used; `Layer.__call__` looks `call` up on the instance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import attrs
import keras
import tensorflow as tf

from keras_explainable.errors import LayerError

__all__ = [
    "CallSite",
    "Observe",
    "PreActivation",
    "Replace",
    "Tap",
    "TapSession",
    "TappedCall",
    "installed_layers",
]


@attrs.frozen(eq=False)
class CallSite:
    """One call of one layer in a forward pass of a model.

    Attributes:
        layer: the layer object (the user's own).
        index: which call of the layer, counting from 0 in the order the
            forward pass makes them (a layer with shared weights is called
            several times).
        path: the call's path, as users write it (for messages).
    """

    layer: keras.layers.Layer
    index: int = 0
    path: str = ""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CallSite) and other.layer is self.layer and other.index == self.index
        )

    def __hash__(self) -> int:
        return hash((id(self.layer), self.index))


@attrs.define(eq=False)
class TappedCall:
    """A call of a tapped layer, as the taps on it see it.

    Attributes:
        layer: the layer called.
        args: the call's positional arguments.
        kwargs: the call's keyword arguments.
        session: the session the call belongs to.
    """

    layer: keras.layers.Layer
    args: tuple
    kwargs: dict
    session: TapSession

    @property
    def inputs(self) -> Any:
        """The call's first positional argument (its main input)."""
        return self.args[0] if self.args else next(iter(self.kwargs.values()))


@attrs.define(eq=False)
class Tap:
    """What happens at one call of one layer (subclasses say what).

    A tap's `apply` receives the call and `proceed`, which runs the call as
    it would run without this tap (the taps inside it, then the layer), and
    returns the call's outputs. Taps that change the computation run inside
    taps that read it (`order`), so an `Observe` reads what a `ReLURule` or
    `Replace` on the same call made.

    Attributes:
        site: the call the tap sits on.
    """

    site: CallSite
    order: ClassVar[int] = 0
    """0 for taps that compute the call's outputs, 1 for taps that read them."""

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """The call's outputs (default: unchanged)."""
        return proceed()


def _single(outputs: Any, site: CallSite) -> tf.Tensor:
    flat = keras.tree.flatten(outputs)
    if len(flat) != 1:
        raise LayerError(
            f"Layer {site.path or site.layer.name!r} returns {len(flat)} tensors; only a "
            "layer with one output can be observed or replaced."
        )
    return flat[0]


@attrs.define(eq=False)
class Observe(Tap):
    """Record a call's output; read it with `TapSession.observed(tap)`.

    The call returns `output + zeros`: the zero is an explicit input of the
    tapped output, so the gradient of a score with respect to the recorded
    tensor is the gradient with respect to this call's output alone (a layer
    that returns its input unchanged, as Dropout at inference, does not add
    the other uses of that tensor).
    """

    order: ClassVar[int] = 1

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """The call's output plus an explicit zero, recorded."""
        output = _single(proceed(), self.site)
        observed = output + tf.zeros_like(output)
        call.session.record(self, observed)
        return observed


@attrs.define(eq=False)
class Replace(Tap):
    """Substitute a call's output.

    Attributes:
        value: the output to return instead (the layer is not run), or None.
        function: `(output, call) -> new output` (the layer runs first), used
            when `value` is None.
    """

    value: Any = None
    function: Callable[[Any, TappedCall], Any] | None = None

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """`value`, or `function` of the call's output."""
        if self.value is not None:
            return self.value
        return self.function(proceed(), call)


@attrs.define(eq=False)
class PreActivation(Tap):
    """Run a layer with a fused activation as its linear twin, then (maybe) the activation.

    Attributes:
        twin: the layer's linear twin (`twins.linear_twin`), sharing its
            variables; None for a layer that is itself the activation (a
            `Softmax` or `Activation` layer), whose input is then the
            pre-activation output.
        activation: the activation applied after the twin, or None to return
            the pre-activation output itself (the logits behind a softmax).
        observe: record the pre-activation output (`TapSession.observed`).
    """

    twin: keras.layers.Layer | None = None
    activation: Callable[[tf.Tensor], tf.Tensor] | None = None
    observe: bool = False

    def apply(self, call: TappedCall, proceed: Callable[[], Any]) -> Any:
        """The twin's output (or the layer's input), then the activation if any."""
        if self.twin is None:
            pre_activation = call.inputs
        else:
            pre_activation = self.twin(*call.args, **call.kwargs)
        if self.observe:
            pre_activation = pre_activation + tf.zeros_like(pre_activation)
            call.session.record(self, pre_activation)
        return pre_activation if self.activation is None else self.activation(pre_activation)


# ----------------------------------------------------------------- installing
_LOCK = threading.Lock()
_MISSING = object()
# id(layer) -> [layer, number of open sessions tapping it, the instance's own `call`]
_INSTALLED: dict[int, list] = {}
_THREAD = threading.local()


def _sessions() -> list[TapSession]:
    sessions = getattr(_THREAD, "sessions", None)
    if sessions is None:
        sessions = _THREAD.sessions = []
    return sessions


def _tapped_call(layer: keras.layers.Layer, own_call: Callable) -> Callable:
    """The `call` a tapped layer has while sessions tap it."""

    @tf.autograph.experimental.do_not_convert
    def call(*args: Any, **kwargs: Any) -> Any:
        for session in reversed(_sessions()):
            if session.taps_layer(layer):
                return session.dispatch(layer, own_call, args, kwargs)
        return own_call(*args, **kwargs)

    return call


def _install(layers: Iterable[keras.layers.Layer]) -> None:
    with _LOCK:
        for layer in layers:
            entry = _INSTALLED.get(id(layer))
            if entry is not None:
                entry[1] += 1
                continue
            saved = vars(layer).get("call", _MISSING)
            # Set on the instance directly: Keras' attribute tracking has nothing to track.
            object.__setattr__(layer, "call", _tapped_call(layer, layer.call))
            _INSTALLED[id(layer)] = [layer, 1, saved]


def _uninstall(layers: Iterable[keras.layers.Layer]) -> None:
    with _LOCK:
        for layer in layers:
            entry = _INSTALLED[id(layer)]
            entry[1] -= 1
            if entry[1]:
                continue
            del _INSTALLED[id(layer)]
            if entry[2] is _MISSING:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", entry[2])


def installed_layers() -> list[keras.layers.Layer]:
    """The layers whose `call` a session replaces now (empty when no session is open).

    Example:
        >>> assert not installed_layers()   # after every explanation
    """
    with _LOCK:
        return [entry[0] for entry in _INSTALLED.values()]


class TapSession:
    """The taps of one forward pass of a model, in the thread that traces it.

    Use it as a context manager around one call of the model; the taps'
    layers are installed on entry and restored on exit, even when the call
    fails. Each layer's calls are counted from 0 in this session, so a tap
    on call `k` of a shared layer fires on the `k`-th call.

    Args:
        taps: the taps to apply.

    Example:
        >>> tap = Observe(CallSite(block.layer_norm_1))
        >>> with TapSession([tap]) as session:
        ...     outputs = model(images, training=False)
        >>> tokens = session.observed(tap)
    """

    def __init__(self, taps: Iterable[Tap] = ()) -> None:
        self._taps: dict[int, dict[int, list[Tap]]] = {}
        self._layers: dict[int, keras.layers.Layer] = {}
        for tap in taps:
            layer = tap.site.layer
            self._layers[id(layer)] = layer
            self._taps.setdefault(id(layer), {}).setdefault(tap.site.index, []).append(tap)
        self._counts: dict[int, int] = {}
        self._observed: dict[int, Any] = {}
        self._fired: set[int] = set()

    @property
    def layers(self) -> list[keras.layers.Layer]:
        """The layers this session taps."""
        return list(self._layers.values())

    def __enter__(self) -> TapSession:
        _install(self._layers.values())
        _sessions().append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        sessions = _sessions()
        if self in sessions:
            sessions.remove(self)
        _uninstall(self._layers.values())

    def taps_layer(self, layer: keras.layers.Layer) -> bool:
        """Whether this session has taps on `layer`."""
        return id(layer) in self._layers

    def dispatch(self, layer: keras.layers.Layer, own_call: Callable, args: tuple, kwargs: dict):
        """Run one call of a tapped layer through the taps on it."""
        index = self._counts.get(id(layer), 0)
        self._counts[id(layer)] = index + 1
        taps = sorted(self._taps[id(layer)].get(index, ()), key=lambda tap: tap.order)
        call = TappedCall(layer, args, kwargs, self)

        def run(position: int) -> Any:
            if position < 0:
                return own_call(*args, **kwargs)
            tap = taps[position]
            self._fired.add(id(tap))
            return tap.apply(call, lambda: run(position - 1))

        # The last tap is the outermost: it runs first and calls those inside it.
        return run(len(taps) - 1)

    def record(self, tap: Tap, tensor: Any) -> None:
        """Keep what `tap` observed (called by the taps)."""
        self._observed[id(tap)] = tensor

    def observed(self, tap: Tap) -> Any:
        """What `tap` recorded in this session's forward pass.

        Raises:
            LayerError: the forward pass never made the tapped call.
        """
        if id(tap) not in self._observed:
            raise LayerError(
                f"The forward pass never called layer {tap.site.path or tap.site.layer.name!r}"
                + (f" a {tap.site.index + 1}th time" if tap.site.index else "")
                + ", so its output cannot be read."
            )
        return self._observed[id(tap)]

    def calls(self, layer: keras.layers.Layer) -> int:
        """How many times `layer` was called in this session so far."""
        return self._counts.get(id(layer), 0)

    def unfired(self) -> Iterator[Tap]:
        """The taps whose call never happened in this session."""
        for by_index in self._taps.values():
            for taps in by_index.values():
                yield from (tap for tap in taps if id(tap) not in self._fired)
