"""ROAD: Remove And Debias, and the Symmetric Relevance Gain built on it.

Rong, Leemann, Borisov, Kasneci & Kasneci (2022), "A Consistent and Efficient
Evaluation Strategy for Attribution Methods". ICML 2022.
https://arxiv.org/abs/2202.00449

Blücher, Vielhaben & Strodthoff (2024), "Decoupling Pixel Flipping and
Occlusion Strategy for Consistent XAI Benchmarks". https://arxiv.org/abs/2401.06654
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.errors import InputError
from keras_explainable.metrics.base import Batch, ModelMetric
from keras_explainable.metrics.perturbs import PerturbsInputs, sample_major
from keras_explainable.metrics.removal import run_keys
from keras_explainable.metrics.result import MetricResult
from keras_explainable.noise import METRIC_NOISE, hashed_normal_by_inverse_cdf
from keras_explainable.perturbation import evaluate_perturbations
from keras_explainable.validators import (
    check_seed,
    non_negative_number,
    positive_int,
    positive_number,
)

__all__ = ["ROAD", "RoadResult", "SymmetricRelevanceGain", "noisy_linear_imputation"]


def noisy_linear_imputation(
    images: tf.Tensor,
    removed: tf.Tensor,
    noise: float = 0.01,
    keys: tf.Tensor | None = None,
    tolerance: float = 1e-3,
    max_iterations: int = 1000,
) -> tf.Tensor:
    """ROAD's noisy linear imputation: removed pixels become their neighbours' mean.

    Each removed pixel takes the weighted mean of its in-image neighbours
    (weights 1/6 for edges, 1/12 for diagonals), removed neighbours
    included: a sparse linear system per image and channel, whose matrix is
    symmetric positive definite whenever some pixel is kept. It is solved
    inside the compiled step by conjugate gradients preconditioned by a
    multigrid V-cycle (the matrix product is a 3 x 3 stencil; Jacobi sweeps,
    bilinear transfers between grids); Gaussian noise of standard deviation
    `noise` is then added to the imputed pixels.

    The solve is compiled with XLA and runs `IMPUTATION_CHUNK` images at a
    time: the arithmetic is small (a few dozen operations per pixel and
    iteration), so its cost is memory traffic, and a few images' vectors stay
    in the processor's cache where a whole batch's would not.

    Args:
        images: `(m, H, W, C)` float images, of a known spatial size.
        removed: `(m, H, W)` bool (or 0/1): the pixels to impute.
        noise: the standard deviation of the noise on imputed pixels (default
            0.01, as ROAD); 0 for none.
        keys: `(m,)` int64 random keys of the noise (one stream per image);
            required when `noise > 0`.
        tolerance: the solve of an image and channel stops when its residual is below
            `tolerance` times its right-hand side (default 1e-3: imputed
            values within about 1e-3 of the exact solution on average, a
            tenth of ROAD's noise; 1e-7 solves to float32 precision).
        max_iterations: the most conjugate-gradient iterations (default 1000).

    Returns:
        `(m, H, W, C)` float32 images: kept pixels unchanged, removed ones
        imputed.

    Raises:
        ValueError: `noise > 0` without `keys`, or images of unknown spatial size.

    Example:
        >>> filled = noisy_linear_imputation(images, holes, noise=0.0)
    """
    if noise > 0 and keys is None:
        raise ValueError("noisy_linear_imputation needs keys for its noise; or pass noise=0.")
    images = tf.cast(images, tf.float32)
    if images.shape.rank != 4 or any(size is None for size in images.shape[1:]):
        raise ValueError(
            "noisy_linear_imputation needs (m, H, W, C) images of a known size; "
            f"got shape {tuple(images.shape)}."
        )
    mask = tf.cast(removed, tf.float32)[..., None]
    keys = tf.zeros(tf.shape(images)[:1], tf.int64) if keys is None else tf.reshape(keys, [-1])
    count = tf.shape(images)[0]
    padded = -(-count // IMPUTATION_CHUNK) * IMPUTATION_CHUNK
    # Padding images have nothing removed: their solve ends at once.
    chunks = [
        tf.reshape(
            tf.pad(tensor, [[0, padded - count]] + [[0, 0]] * (tensor.shape.rank - 1)),
            [-1, IMPUTATION_CHUNK, *tensor.shape[1:]],
        )
        for tensor in (images, mask, tf.cast(keys, tf.int64))
    ]
    filled = tf.map_fn(
        lambda chunk: _impute(*chunk, float(noise), float(tolerance), int(max_iterations)),
        tuple(chunks),
        fn_output_signature=tf.TensorSpec([IMPUTATION_CHUNK, *images.shape[1:]], tf.float32),
        parallel_iterations=1,
    )
    return tf.reshape(filled, [-1, *images.shape[1:]])[:count]


#: Images imputed together: few enough that the solve's vectors stay in cache.
IMPUTATION_CHUNK = 4


@tf.function(jit_compile=True)
def _impute(
    images: tf.Tensor,
    mask: tf.Tensor,
    keys: tf.Tensor,
    noise: float,
    tolerance: float,
    max_iterations: int,
) -> tf.Tensor:
    """`noisy_linear_imputation` of one chunk, compiled with XLA (fused stencils)."""
    known = images * (1.0 - mask)
    # Solved channels-first, `(m, C, H, W)`: the stencils then run along rows
    # of contiguous pixels (vectorised), not along the few channels.
    planar = _solve(
        tf.transpose(known, [0, 3, 1, 2]),
        tf.transpose(mask, [0, 3, 1, 2]),
        tolerance,
        max_iterations,
    )
    filled = known + mask * tf.transpose(planar, [0, 2, 3, 1])
    if noise > 0:
        filled += mask * noise * hashed_normal_by_inverse_cdf(tf.shape(images), keys)
    return filled


def _shifted_sum(values: tf.Tensor, axis: int, weights: tuple[float, float, float]) -> tf.Tensor:
    """`w0 * v[i - 1] + w1 * v[i] + w2 * v[i + 1]` along `axis`, zero outside the image."""
    size = values.shape[axis]
    padding = [[0, 0]] * values.shape.rank
    padding[axis] = [1, 1]
    padded = tf.pad(values, padding)

    def shifted(offset: int) -> tf.Tensor:
        begin = [0] * values.shape.rank
        begin[axis] = offset
        extent = [-1] * values.shape.rank
        extent[axis] = size
        return tf.slice(padded, begin, extent)

    return weights[0] * shifted(0) + weights[1] * shifted(1) + weights[2] * shifted(2)


def _neighbours(values: tf.Tensor) -> tf.Tensor:
    """The weighted sum of each pixel's in-image neighbours, per channel.

    ROAD's 3 x 3 weights are the separable [1, 2, 1] x [1, 2, 1] / 12 less
    its centre, 4 / 12.
    """
    rows, columns = values.shape.rank - 2, values.shape.rank - 1
    blurred = _shifted_sum(_shifted_sum(values, rows, (1.0, 2.0, 1.0)), columns, (1.0, 2.0, 1.0))
    return (blurred - 4.0 * values) / 12.0


def _restrict_axis(values: tf.Tensor, axis: int) -> tf.Tensor:
    """Stride-2 sums with weights (1/2, 1, 1/2) along `axis` ('SAME' padding)."""
    size = values.shape[axis]
    coarse = -(-size // 2)
    before = size % 2
    padding = [[0, 0]] * values.shape.rank
    padding[axis] = [before, 2 * coarse + 1 - size - before]
    padded = tf.pad(values, padding)

    # Every axis but `axis` is taken whole (its bit set in the begin and end masks).
    whole = sum(1 << other for other in range(values.shape.rank) if other != axis)

    def every_other(offset: int) -> tf.Tensor:
        begin = [0] * values.shape.rank
        end = [0] * values.shape.rank
        strides = [1] * values.shape.rank
        begin[axis], end[axis], strides[axis] = offset, offset + 2 * coarse - 1, 2
        return tf.strided_slice(padded, begin, end, strides, begin_mask=whole, end_mask=whole)

    return 0.5 * every_other(0) + every_other(1) + 0.5 * every_other(2)


def _prolong_axis(values: tf.Tensor, axis: int, size: int) -> tf.Tensor:
    """The transpose of `_restrict_axis` to length `size`: linear interpolation."""
    coarse = values.shape[axis]
    padding = [[0, 0]] * values.shape.rank
    padding[axis] = [1, 1]
    padded = tf.pad(values, padding)

    def window(offset: int, length: int) -> tf.Tensor:
        begin = [0] * values.shape.rank
        begin[axis] = offset
        extent = [-1] * values.shape.rank
        extent[axis] = length
        return tf.slice(padded, begin, extent)

    # Even positions average two coarse values, odd ones copy one.
    between = 0.5 * (window(0, coarse) + window(1, coarse))
    shape = tf.unstack(tf.shape(values))
    shape[axis] = 2 * coarse
    interleaved = tf.reshape(tf.stack([between, values], axis=axis + 1), shape)
    full = tf.concat([interleaved, 0.5 * window(coarse, 1)], axis=axis)
    begin = [0] * values.shape.rank
    begin[axis] = size % 2
    extent = [-1] * values.shape.rank
    extent[axis] = size
    return tf.slice(full, begin, extent)


def _restrict(values: tf.Tensor) -> tf.Tensor:
    """Half-resolution sums of `values` (bilinear weights), the transpose of `_prolong`."""
    rank = values.shape.rank
    return _restrict_axis(_restrict_axis(values, rank - 2), rank - 1)


def _prolong(values: tf.Tensor, fine: tf.Tensor) -> tf.Tensor:
    """Bilinear interpolation of `values` to the grid of `fine`, the transpose of `_restrict`."""
    rank = values.shape.rank
    rows = _prolong_axis(values, rank - 2, fine.shape[-2])
    return _prolong_axis(rows, rank - 1, fine.shape[-1])


def _levels(mask: tf.Tensor) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """`(mask, degree)` of each grid, fine to coarse.

    A coarse pixel is unknown when all the fine pixels its restriction reaches are.
    """
    levels = []
    while True:
        levels.append((mask, _neighbours(tf.ones_like(mask))))
        if min(mask.shape[-2:]) <= 8:
            return levels
        mask = tf.cast(_restrict(1.0 - mask) == 0, tf.float32)


def _apply(values: tf.Tensor, mask: tf.Tensor, degree: tf.Tensor) -> tf.Tensor:
    """The imputation's matrix times `values`: each unknown pixel minus its neighbours' mean."""
    return mask * (degree * values - _neighbours(values))


#: Jacobi sweeps before and after the coarse-grid correction, on the finest
#: grid and on the coarser ones (a quarter of the pixels or fewer: cheap
#: sweeps that cut iterations on large holes).
FINE_SWEEPS, COARSE_SWEEPS = 2, 3


def _vcycle(residual: tf.Tensor, levels: list, level: int = 0) -> tf.Tensor:
    """One multigrid V-cycle from zero: a symmetric preconditioner of the solve.

    Jacobi sweeps (`FINE_SWEEPS` on the finest grid, `COARSE_SWEEPS` on the
    others, the same number before and after), the residual restricted to the
    coarser grid and its correction interpolated back; on the coarsest grid,
    `COARSE_SWEEPS` sweeps alone.
    """
    mask, degree = levels[level]
    sweeps = FINE_SWEEPS if level == 0 else COARSE_SWEEPS

    def sweep(correction: tf.Tensor) -> tf.Tensor:
        return correction + mask * (residual - _apply(correction, mask, degree)) / degree

    def smooth(correction: tf.Tensor, count: int) -> tf.Tensor:
        if count <= 1:
            return sweep(correction) if count else correction
        # Sweeps in a loop: XLA writes each one out, where it would fuse
        # unrolled sweeps into one another and recompute their stencils (a
        # cost that grows faster than their number).
        return tf.while_loop(
            lambda i, _: i < count, lambda i, c: (i + 1, sweep(c)), (0, correction)
        )[1]

    # The first sweep from zero needs no product with the matrix.
    start = mask * residual / degree
    if level == len(levels) - 1:
        return smooth(start, sweeps - 1)
    correction = smooth(start, sweeps - 1)
    coarse_mask, _ = levels[level + 1]
    coarse = coarse_mask * _restrict(residual - _apply(correction, mask, degree))
    correction += mask * _prolong(_vcycle(coarse, levels, level + 1), residual)
    return smooth(correction, sweeps)


def _dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """`(m, C, 1, 1)` inner products of each image and channel's planes.

    Summed over the flattened plane: XLA reduces a `(m * C, H * W)` array
    about twice as fast as the same sum over two axes.
    """
    shape = a.shape
    flat = tf.reshape(a * b, [-1, shape[-2] * shape[-1]])
    return tf.reshape(tf.reduce_sum(flat, axis=-1), [*shape[:-2], 1, 1])


def _solve(known: tf.Tensor, mask: tf.Tensor, tolerance: float, max_iterations: int) -> tf.Tensor:
    """The imputed values (zero where kept) of images with `known` pixels kept.

    Conjugate gradients preconditioned by a multigrid V-cycle: a few
    iterations whatever the image size (2 to 7 on 224 x 224 images at
    tolerance 1e-3), where plain conjugate gradients need hundreds on large
    holes.
    """
    levels = _levels(mask)
    degree = levels[0][1]
    rhs = mask * _neighbours(known)
    squared = _dot(rhs, rhs)
    threshold = tolerance**2 * squared

    def unfinished(i, solution, residual, direction, product, squared):
        return (i < max_iterations) & tf.reduce_any(squared > threshold)

    def iterate(i, solution, residual, direction, product, squared):
        # Each iteration starts with the V-cycle, of the residual the loop
        # carries: XLA would otherwise fuse the right-hand side's stencil into
        # the first V-cycle's stencils, recomputing it, and the last V-cycle
        # would go unused.
        # A converged system stops moving, so each image's result does not
        # depend on the images solved with it.
        active = squared > threshold
        preconditioned = _vcycle(residual, levels)
        new_product = _dot(residual, preconditioned)
        # The first direction is zero: its coefficient does not matter.
        beta = tf.math.divide_no_nan(new_product, product)
        direction = tf.where(active, preconditioned + beta * direction, direction)
        product = tf.where(active, new_product, product)
        applied = _apply(direction, mask, degree)
        alpha = tf.where(active, tf.math.divide_no_nan(product, _dot(direction, applied)), 0.0)
        solution += alpha * direction
        residual -= alpha * applied
        # The residual's squared norm, carried to the next test: a frozen
        # system's residual does not move, so its norm is kept.
        squared = tf.where(active, _dot(residual, residual), squared)
        return i + 1, solution, residual, direction, product, squared

    zeros = tf.zeros_like(known)
    _, solution, *_ = tf.while_loop(
        unfinished,
        iterate,
        (tf.constant(0), zeros, rhs, zeros, tf.ones_like(squared), squared),
    )
    return solution


def _percentages(value: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.atleast_1d(np.asarray(value, np.float64)))


def _check_percentages(instance: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if not value or not all(0 < v < 100 for v in value):
        raise ValueError(
            f"{attribute.name} must be percentages of pixels removed, each in (0, 100) "
            f"(a fully removed image has nothing to impute from); got {value}."
        )


@attrs.frozen(eq=False, repr=False)
class RoadResult(MetricResult):
    """ROAD's values, with the score curves they summarise.

    Attributes:
        metric: the metric's name.
        values: float64 `(N,)`: the metric's value per sample.
        percentages: float64 `(P,)`: the percentages of pixels removed.
        morf: float32 `(N, P)`: the score with the most relevant pixels
            removed and imputed, per percentage (None if not computed).
        lerf: float32 `(N, P)`: the same, least relevant pixels first (None
            if not computed).

    Example:
        >>> result = ke.metrics.SymmetricRelevanceGain()(explainer, x, y)
        >>> plt.plot(result.percentages, result.morf.mean(0), result.percentages,
        ...          result.lerf.mean(0))
    """

    percentages: np.ndarray = attrs.field(kw_only=True)
    morf: np.ndarray | None = attrs.field(kw_only=True)
    lerf: np.ndarray | None = attrs.field(kw_only=True)


@attrs.define(eq=False)
class _RemoveAndDebias(PerturbsInputs, ModelMetric):
    """The shared machinery of ROAD and the Symmetric Relevance Gain."""

    #: The orders scored, in their perturbation order: 'morf', 'lerf'.
    orders: ClassVar[tuple[str, ...]] = ("morf",)

    percentages: Sequence[float] = attrs.field(
        default=(10, 20, 30, 40, 50, 60, 70, 80, 90),
        kw_only=True,
        converter=_percentages,
        validator=_check_percentages,
    )
    noise: float = attrs.field(default=0.01, kw_only=True, validator=non_negative_number)
    imputation: Callable | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(attrs.validators.is_callable()),
    )
    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    tolerance: float = attrs.field(default=1e-3, kw_only=True, validator=positive_number)
    max_iterations: int = attrs.field(default=1000, kw_only=True, validator=positive_int)
    step_batch_size: int = attrs.field(default=16, kw_only=True, validator=positive_int)

    def _check_spatial(self, spatial: tuple[int | None, ...]) -> None:
        if len(spatial) != 2:
            raise InputError(
                f"{self.name} imputes pixels of 2-D images; got inputs of spatial size {spatial}."
            )

    def _orders(self) -> tuple[str, ...]:
        return self.orders

    def _imputed(self, inputs: tf.Tensor, maps: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
        """`(k, N, ...)` images with perturbations `indices` (order-major) imputed."""
        spatial = inputs.shape[1:-1]
        pixels = int(np.prod(spatial))
        size = tf.shape(inputs)[0]
        # One ordering for every order: rank 0 is the most relevant pixel.
        order = tf.argsort(
            tf.reshape(maps, [size, pixels]), axis=1, direction="DESCENDING", stable=True
        )
        ranks = tf.reshape(tf.argsort(order, axis=1, stable=True), [1, size, *spatial])
        fractions = np.asarray(self.percentages) / 100.0
        counts = tf.constant(np.floor(fractions * pixels + 0.5).astype(np.int32))
        steps = len(self.percentages)
        lerf_flags = tf.constant([name == "lerf" for name in self._orders()])
        count = tf.reshape(tf.gather(counts, indices % steps), [-1, 1, 1, 1])
        lerf = tf.reshape(tf.gather(lerf_flags, indices // steps), [-1, 1, 1, 1])
        removed = tf.where(lerf, ranks >= pixels - count, ranks < count)
        copies = tf.shape(indices)[0]
        images = tf.reshape(tf.tile(inputs[None], [copies, 1, 1, 1, 1]), [-1, *inputs.shape[1:]])
        removed = tf.reshape(removed, [-1, *spatial])
        if self.imputation is not None:
            filled = tf.cast(self.imputation(images, removed), tf.float32)
        else:
            keys = tf.reshape(run_keys(inputs, self.seed, indices, METRIC_NOISE), [-1])
            filled = noisy_linear_imputation(
                images, removed, self.noise, keys, self.tolerance, self.max_iterations
            )
        return tf.reshape(filled, [copies, size, *inputs.shape[1:]])

    def _perturbed_inputs(self, inputs: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
        count = len(self.percentages) * len(self._orders())
        return sample_major(self._imputed(inputs, maps, tf.range(count)))

    def _measure(self, batch: Batch) -> tuple[tf.Tensor, ...]:
        inputs = batch.inputs
        if any(size is None for size in inputs.shape[1:-1]):
            raise InputError(
                f"{self.name} needs inputs of a known spatial size; got shape "
                f"{tuple(inputs.shape)}. Batch images of one size."
            )

        def perturb(indices: tf.Tensor) -> tf.Tensor:
            return self._imputed(inputs, batch.maps, indices)

        orders = len(self._orders())
        scores = evaluate_perturbations(
            perturb, batch.score, len(self.percentages) * orders, self.step_batch_size
        )
        curves = tf.split(tf.transpose(scores), orders, axis=1)
        return (self._value(*[tf.reduce_mean(c, axis=1) for c in curves]), *curves)

    def _value(self, *areas: tf.Tensor) -> tf.Tensor:
        return areas[0]

    def _result(self, values: np.ndarray, *curves: np.ndarray) -> RoadResult:
        named = dict(zip(self._orders(), curves, strict=True))
        return RoadResult(
            self.name,
            values.astype(np.float64),
            percentages=np.asarray(self.percentages),
            morf=named.get("morf"),
            lerf=named.get("lerf"),
        )


@attrs.define(eq=False)
class ROAD(_RemoveAndDebias):
    """ROAD (Remove And Debias): the score as relevant pixels are imputed away.

    For each percentage `p` of `percentages`, the `p`% most relevant pixels
    (`order='morf'`, Most Relevant First) or least relevant pixels
    (`order='lerf'`) of each image are removed and filled by ROAD's noisy
    linear imputation (`noisy_linear_imputation`): each removed pixel is the
    weighted mean of its neighbours (1/6 for edges, 1/12 for diagonals), a
    sparse linear system solved for every image and channel at once, plus
    Gaussian noise of standard deviation `noise` (0.01). Imputing from the
    neighbours, instead of a constant, keeps the removal's shape from
    telling the model what was removed (the "class information leakage" the
    paper debiases). The curve is the explained unit's score at each
    percentage; the value is its mean over the percentages (the area under
    the curve, on evenly spaced percentages). With MoRF a faithful map makes
    the score fall fast: **lower is better**; with LeRF **higher is
    better** (`higher_is_better` follows `order`).

    Pixels are ranked once by decreasing relevance, ties broken by position
    (row-major, first first), as in Deletion. The imputed images are built
    and scored inside the compiled step, `step_batch_size` percentages per
    forward pass: memory is bounded by `batch_size * step_batch_size` images.

    Conventions: Rong et al. report the model's accuracy on the imputed
    images, over the samples (Quantus's `ROAD` too: whether the predicted
    class is unchanged, with percentages 1, 3, ..., 99 by default); here
    each sample's score of its explained unit (probability by default),
    over the paper's percentages 10, 20, ..., 90. Quantus imputes with the
    same weights and noise. An explainer's default `postprocess='auto'` only
    rescales the map or takes its absolute value, which for signed
    attributions changes the ranking: pass `postprocess=None` to rank signed
    values.

    Args:
        order: 'morf' (default) or 'lerf'.
        percentages: the percentages of pixels removed, each in (0, 100)
            (default 10, 20, ..., 90).
        noise: the imputation noise's standard deviation (default 0.01).
        seed: the integer seed of the noise (default 0); a sample's noise
            is the same in any batch.
        imputation: None (ROAD's noisy linear imputation) or another
            perturbation: a function `(images, removed) -> filled images` of
            `(m, H, W, C)` images and `(m, H, W)` bool removed pixels,
            called in the compiled step (`noise`, `tolerance` and
            `max_iterations` are then unused).
        tolerance: the relative residual at which the imputation's solve
            stops (default 1e-3).
        max_iterations: the most iterations of the solve (default 1000).
        step_batch_size: percentages per forward pass (default 16).
        return_perturbed: keep the imputed images of the first `k` samples
            in the result (default 0), `(k, P, *input_shape)`.
        use_probabilities: score probabilities (default True) or logits.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `RoadResult`: per-sample mean scores, and the
    curve `(N, P)` as `morf` or `lerf`.

    Raises:
        ValueError, TypeError: an option is invalid (at construction).
        InputError: (from a call) inputs that are not 2-D images.

    Example:
        >>> road = ke.metrics.ROAD(order="morf", percentages=[10, 30, 50, 70, 90])
        >>> road(ke.GradCAM(model), images, labels).mean
        0.21

    References:
        Rong, Leemann, Borisov, Kasneci & Kasneci (2022), "A Consistent and
        Efficient Evaluation Strategy for Attribution Methods". ICML 2022.
        <https://arxiv.org/abs/2202.00449>
    """

    order: str = attrs.field(
        default="morf", kw_only=True, validator=attrs.validators.in_(("morf", "lerf"))
    )

    @property
    def higher_is_better(self) -> bool:  # type: ignore[override]
        """False for MoRF (the score should fall fast), True for LeRF."""
        return self.order == "lerf"

    def _orders(self) -> tuple[str, ...]:
        return (self.order,)


@attrs.define(eq=False)
class SymmetricRelevanceGain(_RemoveAndDebias):
    """Symmetric Relevance Gain: ROAD's LeRF area minus its MoRF area.

    Both ROAD curves (see `ROAD`) on one shared ordering of the pixels: each
    sample's value is `mean(LeRF curve) - mean(MoRF curve)`. A faithful map
    keeps the score when its least relevant pixels go and loses it when its
    most relevant go: **higher is better**; a random map scores about 0. Both
    curves are scored in the same passes (`2 * len(percentages)` imputed
    images per sample).

    Conventions: Blücher et al. define it on areas under the curves with any
    occlusion strategy; here the strategy is ROAD's noisy linear imputation
    and the areas are the curves' means over the percentages.

    Args:
        percentages: the percentages of pixels removed, each in (0, 100)
            (default 10, 20, ..., 90).
        noise: the imputation noise's standard deviation (default 0.01).
        seed: the integer seed of the noise (default 0).
        imputation: None (ROAD's noisy linear imputation) or another
            perturbation: a function `(images, removed) -> filled images` of
            `(m, H, W, C)` images and `(m, H, W)` bool removed pixels,
            called in the compiled step (`noise`, `tolerance` and
            `max_iterations` are then unused).
        tolerance: the imputation solve's relative residual (default 1e-3).
        max_iterations: the most iterations of the solve (default 1000).
        step_batch_size: imputed images per sample in one forward pass
            (default 16).
        return_perturbed: keep the imputed images of the first `k` samples
            in the result (default 0), `(k, 2P, *input_shape)`: MoRF's, then
            LeRF's.
        use_probabilities: score probabilities (default True) or logits.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `RoadResult` with per-sample gains and both
    curves, `morf` and `lerf`.

    Raises:
        ValueError, TypeError: an option is invalid (at construction).
        InputError: (from a call) inputs that are not 2-D images.

    Example:
        >>> ke.metrics.SymmetricRelevanceGain()(ke.GradCAM(model), images, labels).mean
        0.43

    References:
        Blücher, Vielhaben & Strodthoff (2024), "Decoupling Pixel Flipping
        and Occlusion Strategy for Consistent XAI Benchmarks".
        <https://arxiv.org/abs/2401.06654>; Rong et al. (2022), ROAD.
        <https://arxiv.org/abs/2202.00449>
    """

    higher_is_better: ClassVar[bool] = True
    orders: ClassVar[tuple[str, ...]] = ("morf", "lerf")

    def _value(self, *areas: tf.Tensor) -> tf.Tensor:
        morf, lerf = areas
        return lerf - morf
