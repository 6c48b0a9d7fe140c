"""FullGrad: input-gradients and bias-gradients of every layer, combined.

Srinivas & Fleuret (2019), "Full-Gradient Representation for Neural Network
Visualization". https://arxiv.org/abs/1905.00780
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import attrs
import keras
import numpy as np
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Attribution, Explainer
from keras_explainable.engine import ArrayWriter, local_batches, run_steps
from keras_explainable.errors import InputError, ModelStructureError
from keras_explainable.exposure import Exposure, Observe, PreActivation, Tap, expose
from keras_explainable.exposure.model_map import LayerCall, ModelMap
from keras_explainable.exposure.twins import LINEAR_MAP_LAYERS, has_fused_activation, linear_twin
from keras_explainable.inputs import make_source
from keras_explainable.targets import Targets

__all__ = ["FullGradient", "FullGradientTerms"]

# Layers with an explicit bias added to their (pre-activation) output: the
# linear maps, except EinsumDense, whose bias need not match its output axes.
_BIASED_LAYERS = tuple(
    layer for layer in LINEAR_MAP_LAYERS if layer is not keras.layers.EinsumDense
)


@attrs.frozen(eq=False)
class _Bias:
    """A layer call's bias, and the tap that reads the pre-activation output it is added to."""

    name: str
    layer: keras.layers.Layer
    tap: Tap
    rank: int
    axis: int

    def value(self) -> tf.Tensor:
        """Read the bias at run time, shaped to broadcast against the pre-activation output."""
        layer = self.layer
        if isinstance(layer, keras.layers.BatchNormalization):
            # y = gamma (x - mean) / sqrt(var + eps) + beta: the part that does
            # not scale with x is beta - gamma * mean / sqrt(var + eps).
            mean = tf.cast(layer.moving_mean, tf.float32)
            scale = tf.math.rsqrt(tf.cast(layer.moving_variance, tf.float32) + layer.epsilon)
            if layer.scale:
                scale = scale * tf.cast(layer.gamma, tf.float32)
            bias = -scale * mean
            if layer.center:
                bias = bias + tf.cast(layer.beta, tf.float32)
        else:
            bias = tf.cast(layer.bias, tf.float32)
        shape = [1] * self.rank
        shape[self.axis] = -1
        return tf.reshape(bias, shape)


def _bias_of(call: LayerCall, computed: set) -> _Bias | None:
    """The bias of one layer call, or None when it adds none.

    `computed` holds the calls whose output another tap already computes
    (the logits behind a fused softmax): their output is read as it is.
    """
    layer = call.layer
    tensor = call.output
    name = call.name if not call.index else f"{call.name}#{call.index + 1}"
    if isinstance(layer, keras.layers.BatchNormalization):
        if not isinstance(layer.axis, int):
            return None
        rank = len(tensor.shape)
        return _Bias(name, layer, Observe(call.site), rank, layer.axis % rank)
    if not isinstance(layer, _BIASED_LAYERS) or getattr(layer, "bias", None) is None:
        return None
    if has_fused_activation(layer) and call.site not in computed:
        # The gradient is taken before the activation: the layer runs as its twin.
        twin = linear_twin(layer, *call.inputs[:1])
        tap: Tap = PreActivation(call.site, twin, layer.activation, observe=True)
    else:
        tap = Observe(call.site)
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
    rank = len(tensor.shape)
    return _Bias(name, layer, tap, rank, 1 if channels_first else rank - 1)


def _biases(graph: ModelMap, outputs: Any, computed: set) -> list[_Bias]:
    """Every bias that feeds `outputs`, in call order, at any depth.

    A layer whose output holds several rows per sample (a Swin block's
    windows) is left out: its terms have no per-sample layout.
    """
    biases = []
    for call in graph.calls:
        if (
            call.composite
            or call.output is None
            or not call.per_sample(call.output)
            or not graph.depends_on(outputs, call.output)
        ):
            continue
        bias = _bias_of(call, computed)
        if bias is not None:
            biases.append(bias)
    return biases


def _normalized(terms: tf.Tensor) -> tf.Tensor:
    """Min-max normalise `(N, L, ...)` terms over everything but `N` and `L`."""
    axes = list(range(2, terms.shape.rank))
    low = tf.reduce_min(terms, axis=axes, keepdims=True)
    high = tf.reduce_max(terms, axis=axes, keepdims=True)
    return tf.math.divide_no_nan(terms - low, high - low)


@attrs.frozen(eq=False)
class FullGradientTerms:
    """The raw FullGrad decomposition of the explained scores.

    For a network built from linear layers, biases, batch normalisation in
    inference mode and piecewise-linear activations (ReLU, max pooling), the
    terms add up exactly to the score:
    `scores == input + sum(biases.values())`.

    Attributes:
        input: `(N, L)` sum of input-gradient times input.
        biases: layer path -> `(N, L)` sum of bias-gradient times bias, where
            the gradient is taken w.r.t. the layer's pre-activation output
            (a repeated call of a shared layer gets the suffix `#2`, ...).
        scores: `(N, L)` the explained scores.
        targets: `(N, L)` the explained unit indices.

    Example:
        >>> terms = ke.FullGradient(model).terms(images, labels)
        >>> total = terms.input + sum(terms.biases.values())
        >>> np.allclose(total, terms.scores, atol=1e-3)   # a complete decomposition
        True
    """

    input: np.ndarray
    biases: dict[str, np.ndarray]
    scores: np.ndarray
    targets: np.ndarray


@attrs.define(eq=False)
class FullGradient(Explainer):
    """Full-gradient saliency maps (FullGrad).

    A score `S` of a ReLU network with biases decomposes exactly into
    `x . dS/dx + sum_l b_l . dS/dz_l`, with `z_l` the pre-activation output
    of layer `l` (see `terms`). The map sums, over the input term and every
    bias term with spatial axes, `psi(term)`: the absolute value, min-max
    normalised over the positions and channels of each sample, summed over
    channels and resized to the input size. Biased layers are Dense and the
    convolutions with `use_bias`, and BatchNormalization, whose implicit bias
    `beta - gamma * moving_mean / sqrt(moving_var + eps)` is folded from its
    moving statistics, at any depth (inside composite layers too). A layer's
    fused activation (`Conv2D(..., activation="relu")`) is split off, by a
    tap that runs the layer as its linear twin, so the gradient is taken
    before it.
    Dense biases have no spatial layout: they enter `terms` but not the map.
    Cost: one forward pass and one backward pass to the input per target.

    Args:
        model: a Keras model (functional, `Sequential`, nested, keras-hub or
            built subclassed), or a `SplitModel`; it takes no `layer=`.
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`). Maps are
            built at the input's size, so `resize` has no effect.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1].

    Raises:
        ModelStructureError: the model does not say what inputs it takes (a
            subclassed model never built), or a layer with a fused activation
            cannot be rebuilt without it.

    Example:
        >>> expl = ke.FullGradient(model).explain(images, labels)
        >>> terms = ke.FullGradient(model).terms(images[:2], labels[:2])

    References:
        Srinivas & Fleuret (2019), "Full-Gradient Representation for Neural
        Network Visualization". <https://arxiv.org/abs/1905.00780>
    """

    needs_layer = False
    rectify = False
    several_inputs_refusal = (
        "it sums the input-gradient and bias-gradient terms of every layer on one input's grid."
    )

    _bias_list: list[_Bias] = attrs.field(factory=list, init=False, repr=False)

    def _expose(self) -> Exposure:
        return expose(self.model, needs_layer=False, output=self.output, logits=self.logits)

    def _prepare(self, exposure: Exposure) -> None:
        if exposure.model_map is None:
            raise ModelStructureError(
                "FullGradient needs the model's layers to find their biases; the model "
                "does not say what inputs it takes (a subclassed model never built, or a "
                "plain function). Build it first (call it once on a batch, or "
                "model.build(input_shape))."
            )
        computed = {tap.site for tap in exposure.taps}
        self._bias_list = _biases(exposure.model_map, exposure.outputs, computed)

    def _terms(self, inputs: tf.Tensor, targets: Targets) -> tuple:
        """Unreduced terms: `(scores, indices, [(name, term, channel_axis)])`.

        Each term is `(N, L, *shape)`: the input term first, then one per bias.
        """
        forward = self.exposure.forward(inputs, [bias.tap for bias in self._bias_list])
        pre_activations = [forward.session.observed(bias.tap) for bias in self._bias_list]
        scores, indices = targets.select(forward.outputs)
        sources = [inputs, *pre_activations]
        per_target = [
            tf.gradients(tf.reduce_sum(scores[:, column]), sources)
            for column in range(scores.shape[1])
        ]
        values = [(None, inputs, inputs.shape.rank - 1)] + [
            (bias, bias.value(), bias.axis) for bias in self._bias_list
        ]
        terms = []
        for position, (bias, value, axis) in enumerate(values):
            gradients = [column[position] for column in per_target]
            if any(gradient is None for gradient in gradients):
                continue
            gradients = tf.cast(tf.stack(gradients, axis=1), tf.float32)
            term = gradients * tf.expand_dims(tf.cast(value, tf.float32), 1)
            terms.append(("input" if bias is None else bias.name, term, axis + 1))
        return scores, indices, terms

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        size = inputs.shape[1:-1]
        if any(axis is None for axis in size):
            raise InputError(
                "FullGradient resizes every layer's term to the input size, which must "
                f"be known: got inputs of shape {tuple(inputs.shape)}."
            )
        scores, indices, terms = self._terms(inputs, targets)
        # Resizing is linear, so the terms of one spatial size are summed first
        # and resized once: a handful of resizes instead of one per layer.
        by_size: dict[tuple, tf.Tensor] = {}
        for _, term, axis in terms:
            if term.shape.rank != inputs.shape.rank + 1:
                continue  # no spatial layout (Dense biases)
            term = tf.experimental.numpy.moveaxis(term, axis, -1)
            term = _normalized(tf.abs(term))
            # (N, L, *spatial) -> (N, *spatial, L)
            term = tf.experimental.numpy.moveaxis(tf.reduce_sum(term, axis=-1), 1, -1)
            key = tuple(term.shape[1:-1])
            by_size[key] = term if key not in by_size else by_size[key] + term
        maps = tf.add_n([ops.resize_maps(term, size) for term in by_size.values()])
        return Attribution(maps, scores, indices)

    def terms(self, x: Any, y: Any = None) -> FullGradientTerms:
        """Return the raw decomposition of the scores, before post-processing.

        Args:
            x: inputs `(N, *spatial, C)`, an array or a tensor.
            y: targets, as for `explain`.

        Returns:
            The `FullGradientTerms`; for piecewise-linear networks
            `terms.input + sum(terms.biases.values())` equals `terms.scores`.

        Raises:
            InputError, TargetError, TypeError: as `explain`.

        Example:
            >>> t = ke.FullGradient(model).terms(x[:4])
            >>> np.allclose(t.input + sum(t.biases.values()), t.scores, atol=1e-4)
            True
        """
        if isinstance(x, tf.data.Dataset):
            raise TypeError("terms() takes an array or a tensor of inputs, not a dataset.")
        exposure = self.exposure
        source = make_source(x, exposure.data_shape, self.batch_size, y, exposure.input_layout)
        plan = self._plan(source, y)
        names = ["input", *(bias.name for bias in self._bias_list)]

        def build() -> Callable:
            def summed(inputs: Any, feed: dict) -> tuple:
                flat = tf.nest.flatten(inputs)
                finite = tf.reduce_all(
                    [tf.reduce_all(tf.math.is_finite(tf.cast(part, tf.float32))) for part in flat]
                )
                data = tuple(flat) if len(flat) > 1 else flat[0]
                # A text model's other inputs (its padding mask) go with each pass.
                reading = exposure.embedding.reading(data) if exposure.text else nullcontext()
                with reading:
                    scores, indices, terms = self._terms(exposure.embed(data), plan.targets(feed))
                sums = {
                    name: tf.reduce_sum(term, axis=list(range(2, term.shape.rank)))
                    for name, term, _ in terms
                }
                # A bias the score does not depend on contributes zeros.
                columns = [sums.get(name, tf.zeros_like(scores)) for name in names]
                return (scores, indices, *columns, finite)

            return summed

        def step_for(count: int) -> Callable:
            spec = source.spec
            feed_spec = plan.feed_spec(count)
            shapes = tuple((tuple(part.shape), part.dtype) for part in tf.nest.flatten(spec))
            key = ("terms", shapes, plan.kind, repr(feed_spec))
            key += (id(plan.function), id(plan.target))
            signature = [spec, feed_spec]
            return self._steps.get(key, build, signature)

        writer = ArrayWriter(source.count)
        run_steps(local_batches(source, plan, self.exposure.output_units, step_for), writer)
        scores, targets, *columns = writer.arrays()
        joined = dict(zip(names, columns, strict=True))
        return FullGradientTerms(
            input=joined.pop("input"), biases=joined, scores=scores, targets=targets
        )
