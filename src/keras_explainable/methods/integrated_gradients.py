"""Integrated Gradients: input gradients integrated from a baseline to the input.

Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep Networks".
https://arxiv.org/abs/1703.01365
"""

from __future__ import annotations

import functools
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Attribution
from keras_explainable.baselines import (
    as_baseline,
    baseline_validator,
    check_input_baselines,
    input_baselines,
)
from keras_explainable.errors import CompletenessWarning, NonFiniteError
from keras_explainable.exposure import Exposure
from keras_explainable.methods.input_attribution import InputAttributionExplainer
from keras_explainable.signature import RESULT_NEUTRAL
from keras_explainable.targets import INDEX, TOP, Targets
from keras_explainable.validators import check_seed, positive_int, positive_number

__all__ = ["IntegratedGradients", "QUADRATURE_RULES", "path_quadrature"]

_BASELINES = ("zeros", "blur", "uniform")

#: The rules of the path integral, as Captum names them.
QUADRATURE_RULES = (
    "gausslegendre",
    "riemann_middle",
    "riemann_left",
    "riemann_right",
    "riemann_trapezoid",
)


@functools.lru_cache(maxsize=64)
def path_quadrature(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of `integral_0^1 f(alpha) d alpha ~ sum_p w_p f(alpha_p)`.

    - 'gausslegendre': the `steps`-point Gauss-Legendre rule mapped to
      [0, 1] (`numpy.polynomial.legendre.leggauss`): exact for polynomials
      of degree `2 steps - 1`; no end point.
    - 'riemann_middle': `alpha = (p + 1/2) / steps`, weights `1 / steps`;
      no end point.
    - 'riemann_left': `alpha = p / steps` (from 0), weights `1 / steps`.
    - 'riemann_right': `alpha = (p + 1) / steps` (up to 1), weights `1 / steps`.
    - 'riemann_trapezoid': `steps` intervals, `steps + 1` points from 0 to 1,
      the end points weighted `1 / (2 steps)` and the others `1 / steps`.
      (Captum's trapezoid takes `steps` points, `steps - 1` intervals.)

    Computed once per rule and `steps` (the result is cached and read-only).

    Args:
        rule: one of `QUADRATURE_RULES`.
        steps: the number of nodes (of intervals for the trapezoid), >= 1.

    Returns:
        `(alphas, weights)`, float64 arrays in decreasing `alpha` (so an end
        point at the input, `alpha = 1`, comes first); the weights sum to 1.

    Raises:
        ValueError: an unknown rule, or `steps < 1`.

    Example:
        >>> alphas, weights = path_quadrature("riemann_middle", 4)
        >>> alphas
        array([0.875, 0.625, 0.375, 0.125])
    """
    if rule not in QUADRATURE_RULES:
        raise ValueError(f"Unknown quadrature rule {rule!r}; expected one of {QUADRATURE_RULES}.")
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}.")
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        alphas, weights = (1.0 + nodes) / 2.0, weights / 2.0
    elif rule == "riemann_trapezoid":
        alphas = np.arange(steps + 1) / steps
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2.0
    else:
        offset = {"riemann_left": 0.0, "riemann_middle": 0.5, "riemann_right": 1.0}[rule]
        alphas = (np.arange(steps) + offset) / steps
        weights = np.full(steps, 1.0 / steps)
    order = np.argsort(-alphas, kind="stable")
    alphas, weights = alphas[order], weights[order]
    alphas.flags.writeable = weights.flags.writeable = False
    return alphas, weights


@attrs.define(eq=False)
class IntegratedGradients(InputAttributionExplainer):
    """Integrated Gradients: gradients averaged along the path from a baseline.

    With baseline `x'` and explained score `S`, the attribution of input
    element `x_i` is `(x_i - x'_i) * integral_0^1 dS/dx_i(x' + a (x - x')) da`,
    the integral taken by the quadrature rule `method` (Captum's rules and
    names, see `path_quadrature`): by default 'gausslegendre', `steps` nodes
    of the Gauss-Legendre rule, none of them at an end of the path. The map
    at each position reduces the attributions of the input's channels
    ('sum' by default). The attributions are *complete*: with
    `postprocess=None` and `resize=False` each map (of 'sum') adds up to
    `S(x) - S(x')` up to the integration error.

    How fast that error shrinks depends on the model along the path. For a
    smooth model (GELU, tanh, softplus) Gauss-Legendre converges fastest:
    16 nodes are often exact to float32 precision, where the trapezoid needs
    hundreds. A ReLU network makes the path's gradient piecewise constant,
    and every rule then converges as about `1 / steps`. The rules differ at
    the end points: a bias-free ReLU network has a zero gradient at the zero
    baseline (every ReLU sits at 0), so rules that evaluate the baseline
    lose its weight: the trapezoid sums to exactly `1 - 1 / (2 steps)` of
    `S(x) - S(0)` on such a model (and 'riemann_left' to `1 - 1 / steps`),
    where 'gausslegendre' and 'riemann_middle' are exact. And where the
    gradient at the baseline is infinite (a LayerNorm of a constant input
    divides by `sqrt(epsilon)`; a square root at 0), only the rules without
    end points give finite attributions.

    Each batch's relative completeness error,
    `|sum(map) - (S(x) - S(x'))| / max(|S(x) - S(x')|, 1e-3 max(|S(x)|, |S(x')|), 1e-6)`
    (the largest over the targets), is checked after the batch: the first
    time it exceeds `completeness_tolerance` the explainer warns (a
    `CompletenessWarning`, once per explainer, naming the rule); the check
    runs when the explainer is used directly, not inside a decorator. A
    gradient that is NaN or Inf anywhere on the path raises `NonFiniteError`
    naming the point (`alpha`) and the baseline: it never becomes a map value.

    `S(x)` and `S(x')` come from the path's end points where the rule
    evaluates them. Otherwise one forward pass (no backward) computes them:
    the input and the baseline together for 'gausslegendre' and
    'riemann_middle', the input for 'riemann_left', the baseline for
    'riemann_right'. The input's forward pass also resolves top-class
    targets (`y=None`), once, so every point explains the same class.

    The points go through the model `step_batch_size` at a time in a loop
    inside the compiled step, so a pass holds `batch_size * step_batch_size`
    inputs whatever `steps` is; the maps do not depend on it.

    Cost per batch: `steps` forward and backward passes to the input per
    target (`steps + 1` for 'riemann_trapezoid'), plus the forward pass of
    the missing end points: for 'gausslegendre', one forward pass of the
    input and the baseline stacked, two forward passes of the batch (from
    two thirds of a forward and backward pass on a GPU to about one on a
    CPU), so it costs at most what the trapezoid costs at the same `steps`.

    'auto' post-processing takes the absolute value of the summed
    attributions before scaling each map to [0, 1] (how Captum's and
    Xplique's visualisations show them by default): positions that raise and
    that lower the score both stand out. `postprocess=None` keeps the signed
    attributions.

    Args:
        model: the model to explain (see `Explainer`).
        steps: the number of gradient evaluations along the path (default
            50); for 'riemann_trapezoid', the number of intervals (`steps +
            1` evaluations).
        method: the quadrature rule: 'gausslegendre' (default),
            'riemann_middle', 'riemann_left', 'riemann_right' or
            'riemann_trapezoid' (the only rule before `method` existed).
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
            `blur_sigma` out of range, an unknown `method`, an unknown
            baseline name, a baseline with NaN or Inf, or an unknown
            `channel_reduction`.
        InputError: an array baseline that does not broadcast to one input
            (at construction when the model's input shape is known, else when
            `explain` starts), 'blur' on inputs that are not 2-D images, or a
            callable returning baselines of another shape.
        NonFiniteError: (from `explain`) the gradient is NaN or Inf at a
            point of the path.
        TypeError: a baseline of an unsupported type.
        LayerError: `layer=` is given: the input itself is explained.

    Example:
        >>> ig = ke.IntegratedGradients(model, steps=64, baseline="blur")
        >>> expl = ig.explain(images, labels)
        >>> raw = ke.IntegratedGradients(model, postprocess=None, resize=False)
        >>> raw.explain(images, labels).maps.sum(axis=(1, 2))   # ~ S(x) - S(0)
        >>> old = ke.IntegratedGradients(model, method="riemann_trapezoid")

    References:
        Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep
        Networks". <https://arxiv.org/abs/1703.01365>
    """

    steps: int = attrs.field(default=50, kw_only=True, validator=positive_int)
    method: str = attrs.field(
        default="gausslegendre", kw_only=True, validator=attrs.validators.in_(QUADRATURE_RULES)
    )
    baseline: Any = attrs.field(
        default="zeros",
        kw_only=True,
        converter=as_baseline,
        validator=baseline_validator(_BASELINES, callables=True),
    )
    step_batch_size: int = attrs.field(
        default=1, kw_only=True, validator=positive_int, metadata=RESULT_NEUTRAL
    )
    completeness_tolerance: float = attrs.field(
        default=0.05, kw_only=True, validator=positive_number, metadata=RESULT_NEUTRAL
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
        alphas, weights = path_quadrature(self.method, self.steps)
        at_input, at_baseline = alphas[0] == 1.0, alphas[-1] == 0.0
        input_scores = explained = None
        if not at_input:
            # The input is not a point of the path: one forward pass resolves
            # top-class targets and gives S(x), with S(x') stacked in when the
            # baseline is not a point either.
            ends = (inputs,) if at_baseline else (inputs, baselines)
            scores, explained, targets = self._end_scores(ends, targets)
            input_scores = scores[0]
            baseline_scores = None if at_baseline else scores[1]

        def points(indices: tf.Tensor) -> tuple:
            def point(x: tf.Tensor, baseline: tf.Tensor) -> tf.Tensor:
                path = tf.gather(tf.constant(alphas, x.dtype), indices)
                path = tf.reshape(path, [-1] + [1] * x.shape.rank)
                # Exact at both ends: alpha = 1 gives x, alpha = 0 gives x'.
                return path * x[None] + (1.0 - path) * baseline[None]

            images = tf.nest.map_structure(point, inputs, baselines)
            return images, tf.gather(tf.constant(weights, tf.float32), indices), None

        integral = self._integrate(inputs, targets, points, len(alphas), self.step_batch_size)
        if at_input:
            # Point 0 is the input itself, where `_integrate` resolved the targets.
            input_scores, explained = integral.first_scores, integral.targets
            if at_baseline:
                baseline_scores = integral.last_scores
            else:
                if targets.kind == TOP:
                    targets = attrs.evolve(targets, kind=INDEX, indices=explained)
                baseline_scores = self._end_scores((baselines,), targets)[0][0]
        elif at_baseline:
            baseline_scores = integral.last_scores
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
        error = _completeness_error(totals, input_scores, baseline_scores)
        return Attribution(
            self._maps(attributions),
            input_scores,
            explained,
            notes={
                "completeness_error": error,
                "nonfinite_point": integral.nonfinite_points,
            },
        )

    def _end_scores(self, ends: tuple, targets: Targets) -> tuple[list, tf.Tensor, Targets]:
        """Scores of the path's ends that are not among its points, in one forward pass.

        Args:
            ends: the batches to score, stacked for one pass: the inputs
                first when they are among them (top-class targets are then
                resolved on them).
            targets: the batch's targets.

        Returns:
            `(scores, explained, targets)`: one `(N, L)` float32 scores per
            end, the `(N, L)` units explained on the first end, and the
            targets with top-class ones resolved.
        """
        size = ops.sample_count(ends[0])
        stacked = tf.nest.map_structure(lambda *parts: tf.concat(parts, axis=0), *ends)
        _, outputs = self._forward(stacked)
        if targets.kind == TOP:
            first = tf.nest.map_structure(lambda output: output[:size], outputs)
            targets = targets.fixed(first)
        scores, units = targets.tiled(len(ends)).select(outputs)
        scores = ops.split_copies(tf.cast(scores, tf.float32), len(ends))
        return [scores[index] for index in range(len(ends))], units[:size], targets

    def _report(self, notes: dict[str, np.ndarray], start: int) -> None:
        alphas, _ = path_quadrature(self.method, self.steps)
        points = notes["nonfinite_point"].astype(np.int64)
        failed = np.flatnonzero(points < len(alphas))
        if failed.size:
            raise self._nonfinite_error(start, failed, points, alphas)
        errors = notes["completeness_error"]
        rule = f"IntegratedGradients (method={self.method!r}, steps={self.steps})"
        if self._warned or errors.size == 0:
            return
        if not np.isfinite(errors).all():
            self._warned = True
            worst = int(np.flatnonzero(~np.isfinite(errors))[0])
            self._warn(
                CompletenessWarning(
                    f"{rule}: the score of sample {start + worst} or of its baseline "
                    f"{_baseline_text(self.baseline)} is NaN or Inf, so completeness cannot "
                    "be checked: the model is not finite at the path's ends. The attributions "
                    "themselves are finite. (Warned once per explainer.)"
                )
            )
            return
        if not errors.max() > self.completeness_tolerance:
            return
        self._warned = True
        worst = int(np.argmax(errors))
        missed = int((errors > self.completeness_tolerance).sum())
        if self.method == "gausslegendre":
            advice = f"Raise steps (now {self.steps}) for a more accurate path integral."
        else:
            advice = (
                "Try method='gausslegendre' first (the default: it evaluates neither end "
                "point and converges fastest on smooth models), then raise steps (now "
                f"{self.steps})."
            )
        self._warn(
            CompletenessWarning(
                f"{rule}: the attributions of sample {start + worst} sum to "
                f"S(x) - S(baseline) only within {errors[worst]:.1%}, over the "
                f"completeness_tolerance of {self.completeness_tolerance:.1%} ({missed} of "
                f"the batch's {errors.size} samples miss it). {advice} "
                "(Warned once per explainer.)"
            )
        )

    def _nonfinite_error(
        self, start: int, failed: np.ndarray, points: np.ndarray, alphas: np.ndarray
    ) -> NonFiniteError:
        """The error naming the first sample's failed point (its alpha) and the baseline."""
        sample = int(failed[0])
        point = int(points[sample])
        alpha = float(alphas[point])
        if alpha == 0.0:
            where = "alpha=0, the baseline itself"
        elif alpha == 1.0:
            where = "alpha=1, the input itself"
        else:
            where = f"alpha={alpha:.6g}, point {point + 1} of {len(alphas)}"
        others = f" (and {failed.size - 1} more of its batch)" if failed.size > 1 else ""
        if alpha in (0.0, 1.0):
            advice = (
                "The rules 'gausslegendre' (the default) and 'riemann_middle' do not "
                "evaluate the path's end points: use one of them, or a baseline where the "
                "model's gradient is finite (a LayerNorm of a constant input divides by "
                "sqrt(epsilon); a square root has an infinite slope at 0)."
            )
        else:
            advice = (
                "The model's gradient is not finite inside the path (a square root or a "
                "division reaching 0 there, say): check the model, or try another baseline."
            )
        return NonFiniteError(
            f"IntegratedGradients (method={self.method!r}, steps={self.steps}): the gradient "
            f"of the explained score is NaN or Inf at {where}, on the path from the "
            f"baseline {_baseline_text(self.baseline)} to sample {start + sample}{others}. "
            f"It would make the sample's attributions NaN or Inf, so none are returned. "
            f"{advice}"
        )

    def _nonfinite_hint(self) -> str:
        alphas, _ = path_quadrature(self.method, self.steps)
        hint = (
            f"Integrated Gradients (method={self.method!r}) takes gradients on the path from "
            f"the baseline {_baseline_text(self.baseline)}, where one may be NaN or Inf"
        )
        if alphas[0] == 1.0 or alphas[-1] == 0.0:
            hint += (
                "; this rule evaluates an end point of the path, and the gradient at the "
                "baseline is infinite for some models (a LayerNorm of a constant input): "
                "'gausslegendre' (the default) and 'riemann_middle' evaluate neither end"
            )
        return hint


def _baseline_text(baseline: Any) -> str:
    """A short description of a baseline option for messages."""
    if isinstance(baseline, np.ndarray):
        return f"(an array of shape {baseline.shape})"
    if isinstance(baseline, dict):
        return "{" + ", ".join(f"{k!r}: {_baseline_text(v)}" for k, v in baseline.items()) + "}"
    if callable(baseline) and not attrs.has(type(baseline)):
        return f"(the callable {getattr(baseline, '__qualname__', type(baseline).__name__)})"
    return repr(baseline)


def _completeness_error(
    totals: tf.Tensor, input_scores: tf.Tensor, baseline_scores: tf.Tensor
) -> tf.Tensor:
    """`(N,)` relative completeness error, the largest over the `(N, L)` targets.

    NaN where a score is not finite (completeness cannot be checked there).
    """
    difference = input_scores - baseline_scores
    largest = tf.maximum(tf.abs(input_scores), tf.abs(baseline_scores))
    scale = tf.maximum(tf.maximum(tf.abs(difference), 1e-3 * largest), 1e-6)
    errors = tf.reduce_max(tf.abs(totals - difference) / scale, axis=1)
    finite = tf.math.is_finite(input_scores) & tf.math.is_finite(baseline_scores)
    return tf.where(tf.reduce_all(finite, axis=1), errors, np.nan)
