"""LIME: a local weighted linear model over input segments.

Ribeiro, Singh & Guestrin (2016), "Why Should I Trust You?": Explaining the
Predictions of Any Classifier". KDD 2016. https://arxiv.org/abs/1602.04938
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable.methods.surrogate import (
    SegmentSurrogate,
    coalition_uniforms,
    random_subsets,
)
from keras_explainable.noise import COALITION_SIZE
from keras_explainable.validators import non_negative_number, positive_number

__all__ = ["LIME", "lime_kernel"]


def lime_kernel(coalitions: tf.Tensor, kernel_width: float) -> tf.Tensor:
    """LIME's image kernel: `sqrt(exp(-d^2 / width^2))` of the cosine distance to all-on.

    The cosine distance between a coalition `z` and the all-ones vector is
    `d = 1 - sqrt(|z| / M)`; the empty coalition is at distance 1.

    Args:
        coalitions: `(S, M)` float coalitions in {0, 1}.
        kernel_width: the kernel width.

    Returns:
        `(S,)` weights in (0, 1].
    """
    count = tf.cast(tf.shape(coalitions)[-1], coalitions.dtype)
    distance = 1.0 - tf.sqrt(tf.reduce_sum(coalitions, axis=-1) / count)
    return tf.sqrt(tf.exp(-(distance**2) / kernel_width**2))


@attrs.define(eq=False)
class LIME(SegmentSurrogate):
    """LIME: the coefficients of a weighted ridge regression over input segments.

    The features are `M` input segments (a grid of cells by default). As the
    LIME image explainer does, each coalition `z` turns off a number of
    segments drawn uniformly in `[1, M]`, chosen uniformly (the first
    coalition keeps them all); segments that are off show the baseline, and
    `S(z)` is the explained score of that input. Each coalition is weighed by
    the exponential kernel `sqrt(exp(-d^2 / kernel_width^2))` of its cosine
    distance `d` to the all-on coalition, and a ridge regression with
    intercept (penalty `ridge`, the intercept free) of `S(z)` on `z` is solved
    in the compiled step; a segment's attribution is its coefficient.

    Coalitions are a function of `seed` and the draw's number alone: every
    input gets the same coalitions, so maps do not depend on the batch size,
    a sample's place in its batch, or `sample_batch_size`. The LIME package
    scores probabilities; pass `logits=False` to fit a softmax model's
    probabilities instead of its logits.

    Cost: `samples` forward passes per input, plus one; the solve is an
    `M x M` system shared by every input and target.

    'auto' post-processing keeps the positive coefficients (the segments
    that raise the score), as a heat map in [0, 1]; `postprocess=None`
    returns the signed coefficients painted on their segments.

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
        samples: coalitions per input (default 1000).
        kernel_width: the width of the exponential kernel on the cosine
            distance (default 0.25, the LIME image explainer's).
        ridge: the ridge penalty on the coefficients (default 1.0, as the
            LIME package's `Ridge(alpha=1)`).
        baseline: what a segment that is off shows: a number (default 0.0),
            'zeros', 'mean' (LIME's `hide_color=None` shows each superpixel's
            mean instead), 'blur', an array, a callable, or for a text model
            a `TokenBaseline` (tokens that are off become that token).
        seed: the integer seed of the coalitions (default 0).
        sample_batch_size: coalitions per forward pass (default 16); results
            do not depend on it.
        blur_sigma: standard deviation in pixels of the 'blur' baseline.
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`, `strategy`).

    Returns from `explain`: maps `(N, *spatial, L)`, each segment's
    coefficient painted on its positions; scores are the explained scores
    of the inputs.

    Raises:
        ValueError: `kernel_width <= 0`, a negative `ridge`, a bad `grid`,
            segments with fewer than 2 labels, or an option out of range.
        InputError: segments that do not fit the inputs, or a grid with more
            cells than the images have pixels.
        TypeError: segments of an unsupported type, or a non-integer seed.
        LayerError: `layer=` is given: the input itself is explained.

    Example:
        >>> lime = ke.LIME(model, grid=(8, 8), samples=500, logits=False)
        >>> expl = lime.explain(images, labels)
        >>> expl.maps.shape   # (N, H, W, 1)

    References:
        Ribeiro, Singh & Guestrin (2016), "Why Should I Trust You?":
        Explaining the Predictions of Any Classifier". KDD 2016.
        <https://arxiv.org/abs/1602.04938>
    """

    kernel_width: float = attrs.field(default=0.25, kw_only=True, validator=positive_number)
    ridge: float = attrs.field(default=1.0, kw_only=True, validator=non_negative_number)

    def _coalitions(self, count: int) -> tuple[tf.Tensor, tf.Tensor]:
        draws = tf.range(self.samples, dtype=tf.int64)
        uniform = coalition_uniforms(self.seed, draws, COALITION_SIZE, 1)[:, 0]
        off = 1 + tf.minimum(tf.cast(uniform * count, tf.int32), count - 1)
        # The first coalition keeps every segment, as in the LIME package.
        off = tf.where(draws == 0, 0, off)
        coalitions = 1.0 - random_subsets(self.seed, draws, off, count)
        return coalitions, lime_kernel(coalitions, self.kernel_width)

    def _solve(self, coalitions, weights, outcomes, scores, baseline_scores) -> tf.Tensor:
        total = tf.reduce_sum(weights)
        mean_design = tf.reduce_sum(weights[:, None] * coalitions, axis=0) / total
        mean_response = tf.reduce_sum(weights[:, None] * outcomes, axis=0) / total
        design = coalitions - mean_design[None]
        weighted = design * weights[:, None]
        gram = tf.matmul(weighted, design, transpose_a=True)
        size = tf.shape(gram)[0]
        # The ridge, plus a tiny one that keeps the solve finite with ridge=0.
        jitter = 1e-10 * tf.linalg.trace(gram) / tf.cast(size, gram.dtype)
        gram += (tf.constant(self.ridge, gram.dtype) + jitter) * tf.eye(size, dtype=gram.dtype)
        response = outcomes - mean_response[None]
        return tf.linalg.solve(gram, tf.matmul(weighted, response, transpose_a=True))
