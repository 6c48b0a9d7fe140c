"""KernelSHAP: Shapley values of input segments from a weighted linear regression.

Lundberg & Lee (2017), "A Unified Approach to Interpreting Model
Predictions". NeurIPS 2017. https://arxiv.org/abs/1705.07874
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.methods.surrogate import (
    SegmentSurrogate,
    coalition_uniforms,
    random_subsets,
)
from keras_explainable.noise import COALITION_SIZE

__all__ = ["KernelSHAP", "shapley_kernel"]

#: Up to this many segments, `samples >= 2^M - 2` enumerates every coalition.
MAX_ENUMERATED_SEGMENTS = 20


def shapley_kernel(count: int, sizes: np.ndarray) -> np.ndarray:
    """The Shapley kernel `(M - 1) / (C(M, |z|) |z| (M - |z|))` of coalitions of `sizes`.

    Args:
        count: the number of segments `M`.
        sizes: coalition sizes `|z|`, each in `[1, M - 1]`.

    Returns:
        float64 weights, the shape of `sizes`.
    """
    sizes = np.asarray(sizes)
    binomial = np.array([math.comb(count, int(size)) for size in sizes.ravel()], np.float64)
    return (count - 1) / (binomial.reshape(sizes.shape) * sizes * (count - sizes))


@attrs.define(eq=False)
class KernelSHAP(SegmentSurrogate):
    """KernelSHAP: the Shapley values of input segments, by weighted linear regression.

    The features are `M` input segments (a grid of cells by default). A
    coalition `z` in {0, 1}^M keeps the segments with `z_i = 1` and replaces
    the others by the baseline; `S(z)` is the explained score of that input.
    KernelSHAP fits `S(z) ~ S(baseline) + sum_i phi_i z_i` by least squares
    under the Shapley kernel `pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|))`,
    whose solution is the segments' Shapley values. The constraint
    `sum_i phi_i = S(x) - S(baseline)` holds exactly: the last segment's value
    is eliminated as in the paper, `phi_M = S(x) - S(baseline) - sum_{i<M} phi_i`,
    and the regression solved (in the compiled step, normal equations in
    float64) for the others.

    Coalitions are drawn from the kernel itself (a size `k` in `[1, M - 1]`
    with probability proportional to `(M - 1) / (k (M - k))`, then `k`
    segments uniformly) and weighed equally. They are a function of `seed`
    and the draw's number alone: every input gets the same coalitions, so
    maps do not depend on the batch size, a sample's place in its batch, or
    `sample_batch_size`. When `samples >= 2^M - 2` (and `M <= 20`), every
    coalition is scored once instead, with its exact kernel weight: the maps
    are then the exact Shapley values of the segments. For a model linear in
    its input the sampled values are exact too, as soon as the coalitions
    span the segments.

    Cost: `samples` (or `2^M - 2`) forward passes per input, plus two (the
    input and the baseline); the solve is an `(M - 1) x (M - 1)` system shared
    by every input and target.

    'auto' post-processing keeps the positive values (the segments that
    raise the score), as a heat map in [0, 1]; `postprocess=None` returns
    the signed Shapley values painted on their segments, which (with
    `resize=False`) add up, segment by segment, to `S(x) - S(baseline)`.

    Args:
        model: the model to explain: any model `explain` takes, a subclassed
            `keras.Model` or a plain callable `inputs -> outputs`.
        segments: 'grid' (default), an integer array `(*spatial)` of labels
            shared by every input, or a callable `inputs -> (N, *spatial)`
            labels with `num_segments` (see `SegmentSurrogate`).
        grid: the cells of the 'grid' segments: `(h, w)` over 2-D images,
            `(g,)` runs of positions over a sequence. Default None: (8, 8)
            over images, one cell per token over a text model's tokens.
        num_segments: the label count of a `segments` callable.
        samples: coalitions per input (default 1000), at least `M`.
        baseline: what a segment that is off shows: a number (default 0.0),
            'zeros', 'mean', 'blur', an array, a callable, or for a text model
            a `TokenBaseline` (tokens that are off become that token).
        seed: the integer seed of the coalitions (default 0).
        sample_batch_size: coalitions per forward pass (default 16); results
            do not depend on it.
        blur_sigma: standard deviation in pixels of the 'blur' baseline.
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`, `strategy`).

    Returns from `explain`: maps `(N, *spatial, L)`, each segment's value
    painted on its positions; scores are the explained scores of the inputs.

    Raises:
        ValueError: `samples` smaller than the number of segments, a bad
            `grid`, segments with fewer than 2 labels, or an option out of range.
        InputError: segments that do not fit the inputs, or a grid with more
            cells than the images have pixels.
        TypeError: segments of an unsupported type, or a non-integer seed.
        LayerError: `layer=` is given: the input itself is explained.

    Example:
        >>> shap = ke.KernelSHAP(model, grid=(8, 8), samples=500, baseline="mean")
        >>> expl = shap.explain(images, labels)
        >>> expl.maps.shape   # (N, H, W, 1)

    References:
        Lundberg & Lee (2017), "A Unified Approach to Interpreting Model
        Predictions". NeurIPS 2017. <https://arxiv.org/abs/1705.07874>
    """

    uses_baseline_scores = True

    def _check_segment_count(self, count: int) -> None:
        if self.samples < count:
            raise ValueError(
                f"KernelSHAP needs samples >= the number of segments ({count}) to solve "
                f"for every segment; got samples={self.samples}."
            )

    @property
    def enumerates(self) -> bool:
        """Whether every coalition is scored (`samples >= 2^M - 2`), giving exact values."""
        return self._enumerates(self.segment_count)

    def _enumerates(self, count: int) -> bool:
        return count <= MAX_ENUMERATED_SEGMENTS and self.samples >= 2**count - 2

    def _coalitions(self, count: int) -> tuple[tf.Tensor, tf.Tensor]:
        if self._enumerates(count):
            codes = np.arange(1, 2**count - 1)
            bits = ((codes[:, None] >> np.arange(count)[None]) & 1).astype(np.float32)
            weights = shapley_kernel(count, bits.sum(axis=1))
            return tf.constant(bits), tf.constant(weights / weights.sum(), tf.float32)
        sizes = np.arange(1, count)
        probabilities = shapley_kernel(count, sizes) * np.array(
            [math.comb(count, int(size)) for size in sizes], np.float64
        )
        cumulative = tf.constant(np.cumsum(probabilities / probabilities.sum()), tf.float32)
        draws = tf.range(self.samples, dtype=tf.int64)
        uniform = coalition_uniforms(self.seed, draws, COALITION_SIZE, 1)[:, 0]
        chosen = tf.searchsorted(cumulative, uniform, side="right")
        chosen = 1 + tf.minimum(chosen, count - 2)
        coalitions = random_subsets(self.seed, draws, chosen, count)
        return coalitions, tf.fill([self.samples], 1.0 / self.samples)

    def _solve(self, coalitions, weights, outcomes, scores, baseline_scores) -> tf.Tensor:
        total = scores - baseline_scores  # (K,)
        last = coalitions[:, -1:]
        design = coalitions[:, :-1] - last  # (S, M - 1)
        response = outcomes - baseline_scores[None] - last * total[None]  # (S, K)
        weighted = design * weights[:, None]
        gram = tf.matmul(weighted, design, transpose_a=True)
        # A tiny ridge keeps the solve finite when the coalitions miss a direction.
        ridge = 1e-10 * tf.linalg.trace(gram) / tf.cast(tf.shape(gram)[0], gram.dtype)
        gram += ridge * tf.eye(tf.shape(gram)[0], dtype=gram.dtype)
        values = tf.linalg.solve(gram, tf.matmul(weighted, response, transpose_a=True))
        rest = total[None] - tf.reduce_sum(values, axis=0, keepdims=True)
        return tf.concat([values, rest], axis=0)
