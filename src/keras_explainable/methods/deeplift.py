"""DeepLIFT (rescale rule): contributions of the input's difference from a baseline.

Shrikumar, Greenside & Kundaje (2017), "Learning Important Features Through
Propagating Activation Differences". https://arxiv.org/abs/1704.02685
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import tensorflow as tf

from keras_explainable.base import Attribution
from keras_explainable.baselines import (
    TokenBaseline,
    as_baseline,
    baseline_validator,
    check_input_baselines,
    input_baselines,
)
from keras_explainable.errors import ModelStructureError
from keras_explainable.exposure import Exposure
from keras_explainable.exposure.rescale_rules import (
    Nonlinearity,
    SharedReferences,
    nonlinearities,
    rescaled_forward,
)
from keras_explainable.methods.input_attribution import InputAttributionExplainer
from keras_explainable.targets import Targets
from keras_explainable.validators import positive_number

__all__ = ["DeepLIFT", "RESCALE_TOLERANCE", "rescale_multiplier"]

#: Where `|u - u0|` is at most this, the rescale multiplier is the derivative `f'(u)`.
RESCALE_TOLERANCE = 1e-6

_BASELINES = ("zeros", "blur")


def rescale_multiplier(
    inputs: tf.Tensor,
    outputs: tf.Tensor,
    reference_inputs: tf.Tensor,
    reference_outputs: tf.Tensor,
    derivative: Callable[[], tf.Tensor],
) -> tf.Tensor:
    """DeepLIFT's rescale rule for a nonlinearity `y = f(u)`: `(y - y0) / (u - u0)`.

    Where `|u - u0| <= RESCALE_TOLERANCE` the difference quotient is
    unreliable (0 / 0 where the input equals the reference), and the
    multiplier is the ordinary derivative `f'(u)`, its limit.

    Args:
        inputs: `u`, the nonlinearity's input on the explained inputs.
        outputs: `y = f(u)`.
        reference_inputs: `u0`, its input on the baselines (broadcastable to `u`).
        reference_outputs: `y0 = f(u0)`.
        derivative: `() -> f'(u)`, the elementwise derivative.

    Returns:
        The multiplier `m`, of `u`'s shape: `m * (u - u0) = y - y0` exactly
        away from the fallback.

    Example:
        >>> u, u0 = tf.constant([2.0, -1.0, 3.0]), tf.constant([-2.0, -3.0, 3.0])
        >>> step = lambda: tf.cast(u > 0, u.dtype)   # relu's derivative
        >>> rescale_multiplier(u, tf.nn.relu(u), u0, tf.nn.relu(u0), step)
        <tf.Tensor: shape=(3,), dtype=float32, numpy=array([0.5, 0. , 1. ], dtype=float32)>
    """
    difference = inputs - tf.cast(reference_inputs, inputs.dtype)
    near = tf.abs(difference) <= RESCALE_TOLERANCE
    quotient = (outputs - reference_outputs) / tf.where(near, tf.ones_like(difference), difference)
    return tf.where(near, derivative(), quotient)


def is_shared_baseline(baseline: Any) -> bool:
    """Whether a validated baseline is the same for every sample (no `blur`, no callable)."""
    if isinstance(baseline, dict):
        return all(is_shared_baseline(part) for part in baseline.values())
    if isinstance(baseline, TokenBaseline):
        return True
    return not callable(baseline) and not (isinstance(baseline, str) and baseline == "blur")


@attrs.define(eq=False)
class DeepLIFT(InputAttributionExplainer):
    """DeepLIFT with the rescale rule: each input element's share of `S(x) - S(x0)`.

    DeepLIFT explains the difference of the score from its value on a
    baseline `x0`. It is a modified gradient: run on the input `x` and on
    the baseline, and in the backward pass replace each elementwise
    nonlinearity `y = f(u)`'s derivative by the *multiplier* `(f(u) -
    f(u0)) / (u - u0)` (`rescale_multiplier`; the ordinary derivative where
    `|u - u0| <= RESCALE_TOLERANCE`), where `u0` is that nonlinearity's input
    on the baseline; linear layers keep their gradients. The attribution of
    input element `x_i` is `(x_i - x0_i) * dS/dx_i` with those multipliers.

    On a network of linear layers (Dense, convolutions, BatchNormalization,
    Add, average pooling) and elementwise nonlinearities, the attributions
    sum to `S(x) - S(x0)` exactly (summation-to-delta; with
    `postprocess=None`, `resize=False` and 'sum'): every layer passes on
    exactly its output's difference. On a linear model they equal gradient
    times (input minus baseline).

    Nonlinearities that get the rule: `ReLU`, `LeakyReLU`, `ELU` and `PReLU`
    layers, `Activation` layers and `activation=` fused into Dense,
    EinsumDense and convolution layers of any elementwise activation
    (relu, sigmoid, tanh, gelu, swish/silu, elu, selu, softplus, ...), at
    any depth. Everything else keeps its ordinary gradient, as in the
    paper's reference implementation for max pooling: where the pooled
    position differs between input and baseline, summation-to-delta then
    holds only approximately. Softmax inside the model (attention) keeps its
    gradient as well; a softmax or sigmoid *output* is stripped, as for every
    method (`logits=True`), so the logits are explained.

    Cost: one forward and one backward pass of the batch per target. A
    baseline that is the same for all samples ('zeros', a number, an array)
    costs one forward pass of one sample per `explain` call, before the
    first batch (its activations are kept for the call's batches); where
    they cannot be kept (inputs whose size is only known batch by batch) it
    rides along as one more sample of each batch's pass (`N + 1`).
    Baselines of their own per sample ('blur', a callable), and a text
    model's, cost a forward pass of the batch first.

    The rule is a tap on each nonlinearity
    (`keras_explainable.exposure.rescale_rules`), present only while the
    compiled step is traced: the model and other explainers on it keep
    their ordinary gradients. The multipliers enter the backward pass
    through `tf.custom_gradient`, fused by XLA: TensorFlow-only (on JAX, a
    `jax.custom_vjp` would take its place).

    'auto' post-processing takes the absolute value before scaling each map
    to [0, 1]; `postprocess=None` keeps the sign.

    Args:
        model: the model to explain (see `Explainer`).
        baseline: the reference input `x0`: 'zeros' (default), 'blur' (the
            input blurred with a Gaussian of `blur_sigma` pixels; 2-D
            images), a number, an array broadcastable to one input, a
            callable `inputs -> baselines` run in the compiled step, or a
            `TokenBaseline` for a text model. For a model with several
            inputs, a dict by input name gives each its own (as
            `IntegratedGradients` takes it).
        channel_reduction: 'sum' (default; keeps summation-to-delta),
            'mean' or 'l2'; None keeps one map per channel.
        blur_sigma: standard deviation in pixels of the 'blur' baseline
            (default 5.0).
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`, `strategy`).

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]
    ('auto'), or the signed attributions reduced over channels (None);
    `(N, *spatial, C, L)` with `channel_reduction=None`.

    Raises:
        ValueError: an unknown baseline name, a baseline with NaN or Inf, or
            an option out of range.
        InputError: an array baseline that does not broadcast to one input,
            or a callable returning baselines of another shape.
        TypeError: a baseline of an unsupported type.
        ModelStructureError: the model's layers cannot be found (a
            subclassed model never built).
        LayerError: `layer=` is given: the input itself is explained.

    Example:
        >>> expl = ke.DeepLIFT(model, baseline="blur").explain(images, labels)
        >>> raw = ke.DeepLIFT(model, postprocess=None, resize=False).explain(images, labels)
        >>> raw.maps.sum(axis=(1, 2))   # S(x) - S(0), up to rounding

    References:
        Shrikumar, Greenside & Kundaje (2017), "Learning Important Features
        Through Propagating Activation Differences".
        <https://arxiv.org/abs/1704.02685>
    """

    baseline: Any = attrs.field(
        default="zeros",
        kw_only=True,
        converter=as_baseline,
        validator=baseline_validator(_BASELINES, callables=True),
    )
    blur_sigma: float = attrs.field(default=5.0, kw_only=True, validator=positive_number)
    _nonlinearities: list[Nonlinearity] = attrs.field(factory=list, init=False, repr=False)
    _references: SharedReferences | None = attrs.field(default=None, init=False, repr=False)

    def _prepare(self, exposure: Exposure) -> None:
        self._find_nonlinearities(exposure)
        check_input_baselines(self.baseline, exposure)

    def _find_nonlinearities(self, exposure: Exposure) -> None:
        if exposure.model_map is None:
            raise ModelStructureError(
                f"{self.method_name} needs the model's layers to find its nonlinearities, "
                "but the model does not say what inputs it takes (a subclassed model never "
                "built, or a plain function). Build it first (call it once on a batch)."
            )
        computed = [tap.site for tap in exposure.taps]
        self._nonlinearities = nonlinearities(exposure.model_map.calls, skip=computed)
        self._references = SharedReferences(self._nonlinearities)

    def _start_run(self, spec: Any) -> None:
        # The shared baselines' reference pass, once for the whole run; a text
        # model's reads each batch's own ids and padding.
        parts = tf.nest.flatten(spec)
        if self.exposure.text or not all(part.shape[1:].is_fully_defined() for part in parts):
            return
        # A zero sample of the run's inputs, as `_attribute` sees them.
        sample = self._method_view([tf.zeros((1, *part.shape[1:]), part.dtype) for part in parts])
        baselines = self._shared_baselines(sample)
        if baselines is not None:
            self._references.update(self.exposure, sample, baselines, self.batch_size)

    def _shared_baselines(self, sample: Any) -> Any:
        """The baselines every sample of a run shares, for inputs like `sample`; else None."""
        if not is_shared_baseline(self.baseline):
            return None
        return input_baselines(self.baseline, sample, self.exposure, blur_sigma=self.blur_sigma)

    def _end_run(self) -> None:
        self._references.release()

    def _deltas(
        self,
        inputs: Any,
        baselines: Any,
        targets: Targets,
        shared: bool,
        references: list[tf.Tensor] | None = None,
    ) -> tuple:
        """`(attributions, scores, explained)` against `baselines` (N samples, or one shared).

        `references`: the nonlinearities' inputs on a shared baseline,
        computed once for the run (`SharedReferences.read`).
        """
        outputs = rescaled_forward(
            self.exposure,
            self._nonlinearities,
            inputs,
            baselines,
            rescale_multiplier,
            shared,
            references,
        )
        scores, explained = targets.select(outputs)
        gradients = self._gradients(scores, inputs, "the input")
        attributions = tf.nest.map_structure(
            lambda g, x, b: tf.cast(g, tf.float32) * tf.cast(x - b, tf.float32)[:, None],
            gradients,
            inputs,
            baselines,
        )
        return attributions, scores, explained

    def _attribute(self, inputs: Any, targets: Targets) -> Attribution:
        # A baseline shared by all samples goes through the model once.
        shared = is_shared_baseline(self.baseline)
        source = tf.nest.map_structure(lambda part: part[:1], inputs) if shared else inputs
        baselines = input_baselines(
            self.baseline, source, self.exposure, blur_sigma=self.blur_sigma
        )
        references = self._references.read(inputs) if shared else None
        attributions, scores, explained = self._deltas(
            inputs, baselines, targets, shared, references
        )
        return Attribution(self._maps(attributions), scores, explained)
