"""FullGrad: input-gradients and bias-gradients of every layer, combined.

Srinivas & Fleuret (2019), "Full-Gradient Representation for Neural Network
Visualization". https://arxiv.org/abs/1905.00780
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import keras
import numpy as np
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Attribution, Explainer
from keras_explainable.engine import ArrayWriter, local_batches, run_steps
from keras_explainable.errors import InputError, ModelStructureError
from keras_explainable.exposure import Exposure, expose
from keras_explainable.graph import LINEAR_MAP_LAYERS, LayerCall, ModelGraph
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
    """A layer call's bias and the pre-activation output it is added to."""

    name: str
    layer: keras.layers.Layer
    tensor: Any
    axis: int

    def value(self) -> tf.Tensor:
        """Read the bias at run time, shaped to broadcast against `tensor`."""
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
        shape = [1] * len(self.tensor.shape)
        shape[self.axis] = -1
        return tf.reshape(bias, shape)


def _bias_of(call: LayerCall) -> _Bias | None:
    """Return the bias of one layer call, or None when it adds none."""
    layer = call.layer
    if isinstance(layer, keras.layers.BatchNormalization):
        tensor = call.outputs[0]
        axis = layer.axis if isinstance(layer.axis, int) else None
        if axis is None:
            return None
        return _Bias(call.name, layer, tensor, axis % len(tensor.shape))
    if not isinstance(layer, _BIASED_LAYERS) or getattr(layer, "bias", None) is None:
        return None
    # With split activations, the linear twin computed the pre-activation output.
    source = call.linear_call or call
    tensor = source.outputs[0]
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
    axis = 1 if channels_first else len(tensor.shape) - 1
    return _Bias(call.name, source.layer, tensor, axis)


def _biases(graph: ModelGraph, outputs: Any) -> list[_Bias]:
    """Every bias that feeds `outputs`, in call order, with unique names."""
    biases = []
    seen: dict[str, int] = {}
    for call in graph.calls:
        if call.nested or len(call.outputs) != 1:
            continue
        bias = _bias_of(call)
        if bias is None or not graph.depends_on(outputs, bias.tensor):
            continue
        seen[bias.name] = seen.get(bias.name, 0) + 1
        if seen[bias.name] > 1:
            bias = attrs.evolve(bias, name=f"{bias.name}#{seen[bias.name]}")
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
    moving statistics. A layer's fused activation (`Conv2D(...,
    activation="relu")`) is split off so the gradient is taken before it.
    Dense biases have no spatial layout: they enter `terms` but not the map.
    Cost: one forward pass and one backward pass to the input per target.

    Args:
        model: a functional or `Sequential` model (nested models allowed) or
            a `SplitModel`; it takes no `layer=`.
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`). Maps are
            built at the input's size, so `resize` has no effect.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1].

    Raises:
        ModelStructureError: the model is subclassed (its layers and biases
            are not visible), or a layer with a fused activation cannot be
            rebuilt without it.

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
    _terms_model: keras.Model | None = attrs.field(default=None, init=False, repr=False)
    _bias_positions: list[int] = attrs.field(factory=list, init=False, repr=False)

    def _expose(self) -> Exposure:
        return expose(
            self.model,
            needs_layer=False,
            output=self.output,
            logits=self.logits,
            split_activations=True,
        )

    def _prepare(self, exposure: Exposure) -> None:
        if exposure.graph is None:
            raise ModelStructureError(
                "FullGradient needs the model's layers to find their biases; the "
                "model is subclassed. Rebuild it with the functional API, or pass a "
                "SplitModel of functional halves."
            )
        self._bias_list = _biases(exposure.graph, exposure.outputs)
        # Each tensor once: Keras cannot build a model that returns one tensor
        # twice (a last Dense's output is also its pre-activation) when it
        # starts from an intermediate tensor (a text model's embeddings).
        tensors = {id(exposure.outputs): exposure.outputs}
        for bias in self._bias_list:
            tensors.setdefault(id(bias.tensor), bias.tensor)
        order = list(tensors)
        self._bias_positions = [order.index(id(bias.tensor)) for bias in self._bias_list]
        self._terms_model = keras.Model(exposure.inputs, list(tensors.values()))

    def _terms(self, inputs: tf.Tensor, targets: Targets) -> tuple:
        """Unreduced terms: `(scores, indices, [(name, term, channel_axis)])`.

        Each term is `(N, L, *shape)`: the input term first, then one per bias.
        """
        computed = self._terms_model(inputs, training=False)
        outputs = computed[0]
        pre_activations = [computed[position] for position in self._bias_positions]
        scores, indices = targets.select(outputs)
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
        source = make_source(x, self.exposure.data_shape, self.batch_size, y)
        plan = self._plan(source, y)
        names = ["input", *(bias.name for bias in self._bias_list)]
        exposure = self.exposure

        def build() -> Callable:
            def summed(inputs: tf.Tensor, feed: dict) -> tuple:
                finite = tf.reduce_all(tf.math.is_finite(tf.cast(inputs, tf.float32)))
                scores, indices, terms = self._terms(exposure.embed(inputs), plan.targets(feed))
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
            key = ("terms", tuple(spec.shape), spec.dtype, plan.kind, repr(feed_spec))
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
