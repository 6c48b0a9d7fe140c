"""Integrated Gradients: input gradients integrated from a baseline to the input.

Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep Networks".
https://arxiv.org/abs/1703.01365
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.base import Attribution
from keras_explainable.baselines import (
    as_baseline,
    baseline_validator,
    check_input_baselines,
    input_baselines,
)
from keras_explainable.errors import CompletenessWarning, warn_user
from keras_explainable.exposure import Exposure
from keras_explainable.methods.input_attribution import InputAttributionExplainer
from keras_explainable.targets import Targets
from keras_explainable.validators import check_seed, positive_int, positive_number

__all__ = ["IntegratedGradients"]

_BASELINES = ("zeros", "blur", "uniform")


@attrs.define(eq=False)
class IntegratedGradients(InputAttributionExplainer):
    """Integrated Gradients: gradients averaged along the path from a baseline.

    With baseline `x'` and explained score `S`, the attribution of input
    element `x_i` is `(x_i - x'_i) * integral_0^1 dS/dx_i(x' + a (x - x')) da`,
    the integral taken by the trapezoidal rule over `steps` intervals
    (`steps + 1` points, the two end points weighted `1 / (2 steps)`, the
    others `1 / steps`). The map at each position reduces the attributions of
    the input's channels ('sum' by default). The attributions are *complete*:
    with `postprocess=None` and `resize=False` each map (of 'sum') adds up to
    `S(x) - S(x')` up to the integration error, which shrinks as `steps`
    grows (about as `1 / steps^2` for a smooth model).

    Each batch's relative completeness error,
    `|sum(map) - (S(x) - S(x'))| / max(|S(x) - S(x')|, 1e-3 max(|S(x)|, |S(x')|), 1e-6)`
    (the largest over the targets), is checked after the batch: the first
    time it exceeds `completeness_tolerance` the explainer warns (a
    `CompletenessWarning`, once per explainer) to raise `steps`. `S(x)` and
    `S(x')` come from the path's end points: no extra pass. The check runs
    when the explainer is used directly, not inside a decorator.

    The points go through the model `step_batch_size` at a time in a loop
    inside the compiled step, so a pass holds `batch_size * step_batch_size`
    inputs whatever `steps` is; the maps do not depend on it. Top-class
    targets (`y=None`) are resolved once, on the input itself, so every point
    explains the same class. Cost: `steps + 1` forward and backward passes to
    the input per target.

    'auto' post-processing takes the absolute value of the summed
    attributions before scaling each map to [0, 1] (how Captum's and
    Xplique's visualisations show them by default): positions that raise and
    that lower the score both stand out. `postprocess=None` keeps the signed
    attributions.

    Args:
        model: the model to explain (see `Explainer`).
        steps: intervals of the path (default 50); `steps + 1` gradient
            evaluations.
        baseline: the path's start: 'zeros' (default), 'blur' (the input
            blurred with a Gaussian of `blur_sigma` pixels; 2-D images),
            'uniform' (noise drawn uniformly between each input's minimum and
            maximum, a function of `seed` and the input's values, so
            independent of batching), a number, an array broadcastable to one
            input `(*spatial, C)`, or a callable `inputs -> baselines` run in
            the compiled step on each `(n, *spatial, C)` batch. For a model
            with several inputs, a name or number is every input's baseline,
            and a dict by input name gives each its own (an input it leaves
            out starts from zeros; a feature vector's array is `(D,)`).
        step_batch_size: path points that go through the model together
            (default 1, so a pass holds one ordinary batch). Larger values
            trade memory for fewer, larger passes; results do not depend on it.
        channel_reduction: 'sum' (default; complete), 'mean' or 'l2' (the
            norm of the channels' attributions, unsigned); None keeps one map
            per channel (complete too), maps `(N, *spatial, C, L)`.
        completeness_tolerance: the relative completeness error above which
            `explain` warns (default 0.05).
        blur_sigma: standard deviation in pixels of the 'blur' baseline
            (default 5.0).
        seed: the integer seed of the 'uniform' baseline (default 0).
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`, `strategy`).

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]
    ('auto'), or the signed attributions reduced over channels (None);
    `(N, *spatial, C, L)` with `channel_reduction=None`.

    Raises:
        ValueError: `steps`, `step_batch_size`, `completeness_tolerance` or
            `blur_sigma` out of range, an unknown baseline name, a baseline
            with NaN or Inf, or an unknown `channel_reduction`.
        InputError: an array baseline that does not broadcast to one input
            (at construction when the model's input shape is known, else when
            `explain` starts), 'blur' on inputs that are not 2-D images, or a
            callable returning baselines of another shape.
        TypeError: a baseline of an unsupported type.
        LayerError: `layer=` is given: the input itself is explained.

    Example:
        >>> ig = ke.IntegratedGradients(model, steps=64, baseline="blur")
        >>> expl = ig.explain(images, labels)
        >>> raw = ke.IntegratedGradients(model, postprocess=None, resize=False)
        >>> raw.explain(images, labels).maps.sum(axis=(1, 2))   # ~ S(x) - S(0)

    References:
        Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep
        Networks". <https://arxiv.org/abs/1703.01365>
    """

    steps: int = attrs.field(default=50, kw_only=True, validator=positive_int)
    baseline: Any = attrs.field(
        default="zeros",
        kw_only=True,
        converter=as_baseline,
        validator=baseline_validator(_BASELINES, callables=True),
    )
    step_batch_size: int = attrs.field(default=1, kw_only=True, validator=positive_int)
    completeness_tolerance: float = attrs.field(
        default=0.05, kw_only=True, validator=positive_number
    )
    blur_sigma: float = attrs.field(default=5.0, kw_only=True, validator=positive_number)
    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    _warned: bool = attrs.field(default=False, init=False, repr=False)

    def _prepare(self, exposure: Exposure) -> None:
        check_input_baselines(self.baseline, exposure)

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        baselines = input_baselines(
            self.baseline, inputs, self.exposure, blur_sigma=self.blur_sigma, seed=self.seed
        )
        steps = self.steps
        ends = np.zeros(steps + 1, np.float32)
        ends[[0, -1]] = 1.0
        # Point p is alpha = 1 - p / steps: point 0 is the input itself, where
        # top-class targets are resolved.
        weights = tf.constant((1.0 - 0.5 * ends) / steps)

        def points(indices: tf.Tensor) -> tuple:
            def point(x: tf.Tensor, baseline: tf.Tensor) -> tf.Tensor:
                alphas = 1.0 - tf.cast(indices, x.dtype) / steps
                alphas = tf.reshape(alphas, [-1] + [1] * x.shape.rank)
                # Exact at both ends: alpha = 1 gives x, alpha = 0 gives x'.
                return alphas * x[None] + (1.0 - alphas) * baseline[None]

            images = tf.nest.map_structure(point, inputs, baselines)
            return images, tf.gather(weights, indices), None

        integral = self._integrate(inputs, targets, points, steps + 1, self.step_batch_size)
        # (N, L, *spatial, C) per input: the gradients times x - x'.
        attributions = tf.nest.map_structure(
            lambda g, x, b: g * (tf.cast(x, tf.float32) - tf.cast(b, tf.float32))[:, None],
            integral.gradients,
            inputs,
            baselines,
        )
        # Completeness holds for all the inputs' attributions together.
        totals = tf.add_n(
            [
                tf.reduce_sum(part, axis=list(range(2, part.shape.rank)))
                for part in tf.nest.flatten(attributions)
            ]
        )
        error = _completeness_error(totals, integral.first_scores, integral.last_scores)
        return Attribution(
            self._maps(attributions),
            integral.first_scores,
            integral.targets,
            notes={"completeness_error": error},
        )

    def _report(self, notes: dict[str, np.ndarray], start: int) -> None:
        errors = notes["completeness_error"]
        if self._warned or errors.size == 0 or not errors.max() > self.completeness_tolerance:
            return
        self._warned = True
        worst = int(np.argmax(errors))
        missed = int((errors > self.completeness_tolerance).sum())
        warn_user(
            CompletenessWarning(
                f"IntegratedGradients: the attributions of sample {start + worst} sum to "
                f"S(x) - S(baseline) only within {errors[worst]:.1%}, over the "
                f"completeness_tolerance of {self.completeness_tolerance:.1%} ({missed} of "
                f"the batch's {errors.size} samples miss it). Raise steps (now {self.steps}) "
                "for a more accurate path integral. (Warned once per explainer.)"
            )
        )


def _completeness_error(
    totals: tf.Tensor, input_scores: tf.Tensor, baseline_scores: tf.Tensor
) -> tf.Tensor:
    """`(N,)` relative completeness error, the largest over the `(N, L)` targets."""
    difference = input_scores - baseline_scores
    largest = tf.maximum(tf.abs(input_scores), tf.abs(baseline_scores))
    scale = tf.maximum(tf.maximum(tf.abs(difference), 1e-3 * largest), 1e-6)
    return tf.reduce_max(tf.abs(totals - difference) / scale, axis=1)
