"""The base of signed input attributions: InputXGradient, IntegratedGradients, GradientSHAP.

Their maps are attributions of the input's elements, reduced over its
channels (or kept per channel), and signed. The path methods (Integrated Gradients, GradientSHAP)
average the input gradient over many points between baselines and the input:
`InputAttributionExplainer._integrate` evaluates those points `chunk` at a
time in a `tf.while_loop` inside the compiled step, so a pass holds `chunk`
copies of the batch whatever the number of points. The chunk size is static
(the last chunk's padding points get weight 0), so the loop also compiles
under XLA, and the results do not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import attrs
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Explainer
from keras_explainable.targets import TOP, Targets

__all__ = ["InputAttributionExplainer", "PathIntegral", "ATTRIBUTION_REDUCTIONS"]

#: The channel reductions of signed attributions ('sum' keeps completeness).
ATTRIBUTION_REDUCTIONS = ("sum", "mean", "l2")


class PathIntegral(NamedTuple):
    """What `InputAttributionExplainer._integrate` returns for one batch.

    Attributes:
        gradients: `(N, L, *shape)` float32: the weighted sum over the points
            of each point's (scaled) input gradient; a tuple of them, one per
            input, for a model with several inputs.
        first_scores: `(N, L)` float32 explained scores at point 0.
        last_scores: `(N, L)` float32 explained scores at the last point.
        targets: `(N, L)` int64 explained unit indices.
        nonfinite_points: `(N,)` int32: per sample, the first point whose
            gradient holds NaN or Inf, or the number of points where every
            gradient is finite. The weighted sum of such a sample is not
            finite either.
    """

    gradients: tf.Tensor
    first_scores: tf.Tensor
    last_scores: tf.Tensor
    targets: tf.Tensor
    nonfinite_points: tf.Tensor


@attrs.define(eq=False)
class InputAttributionExplainer(Explainer):
    """Base of methods whose maps are signed attributions of the input.

    A subclass computes `(N, L, *spatial, C)` attributions (a path method
    with `_integrate`, describing its points) and turns them into maps with
    `_maps`: `(N, *spatial, L)`, or `(N, *spatial, C, L)` per channel.
    'auto' post-processing takes the maps' absolute value (`magnitude =
    True`) before scaling them to [0, 1].

    Args:
        model: the model to explain (see `Explainer`).
        channel_reduction: how the attributions of an input position's
            channels become one map value: 'sum' (default; the maps then sum
            to the attributions' total), 'mean' or 'l2' (their Euclidean norm,
            unsigned); None keeps each channel's own signed attributions,
            maps `(N, *spatial, C, L)`.
        **kwargs: the `Explainer` options.
    """

    needs_layer = False
    rectify = False
    magnitude = True

    channel_reduction: str | None = attrs.field(
        default="sum",
        kw_only=True,
        validator=attrs.validators.optional(attrs.validators.in_(ATTRIBUTION_REDUCTIONS)),
    )

    def _integrate(
        self,
        inputs: tf.Tensor,
        targets: Targets,
        points: Callable[[tf.Tensor], tuple],
        count: int,
        chunk: int,
    ) -> PathIntegral:
        """Weighted sum of input gradients over `count` points, `chunk` per pass.

        Args:
            inputs: `(N, *shape)` inputs of the batch (a tuple of them for a
                model with several inputs).
            targets: the batch's targets. Top-class targets are resolved on
                point 0, which must then be the inputs themselves.
            points: `indices -> (images, weights, factors)` for int32 point
                indices `(k,)`: images `(k, N, *shape)`, weights `(k,)` or `(k, N)`, and
                factors `(k, N, *shape)` that multiply each point's gradient
                (or None for 1). With several inputs, images and factors are
                tuples of them, one per input.
            count: the number of points.
            chunk: points that go through the model together (a pass holds
                `chunk * N` inputs).

        Returns:
            The `PathIntegral`.
        """
        chunk = max(1, min(chunk, count))
        chunks = -(-count // chunk)
        size = ops.sample_count(inputs)

        def stacked(images: tf.Tensor) -> tf.Tensor:
            # (k, N, *shape) -> (k * N, *shape), copy-major.
            flat = tf.reshape(images, tf.concat([[-1], tf.shape(images)[2:]], axis=0))
            return tf.ensure_shape(flat, [None, *images.shape[2:]])

        def part(first: tf.Tensor, targets: Targets) -> tuple:
            indices = first + tf.range(chunk)
            images, weights, factors = points(tf.minimum(indices, count - 1))
            valid = tf.cast(indices < count, tf.float32)
            weights = tf.reshape(tf.cast(weights, tf.float32), [chunk, -1]) * valid[:, None]
            flat = tf.nest.map_structure(stacked, images)
            _, outputs = self._forward(flat)
            if targets.kind == TOP:
                targets = targets.fixed(outputs[:size])
            scores, explained = targets.tiled(chunk).select(outputs)

            def weighted_sum(gradients: tf.Tensor, factors: tf.Tensor | None) -> tf.Tensor:
                gradients = ops.split_copies(tf.cast(gradients, tf.float32), chunk)
                if factors is not None:  # (k, N, L, *shape)
                    gradients = gradients * tf.cast(factors, tf.float32)[:, :, None]
                shaped = tf.reshape(weights, [chunk, -1] + [1] * (gradients.shape.rank - 2))
                return tf.reduce_sum(shaped * gradients, axis=0)

            gradients = self._gradients(scores, flat, "the input")
            # The first point (per sample) whose gradient is not finite: named
            # in the error rather than spread as NaN through the sum.
            finite = tf.reduce_all(
                [
                    tf.reduce_all(tf.reshape(tf.math.is_finite(part), [chunk, size, -1]), axis=2)
                    for part in tf.nest.flatten(gradients)
                ],
                axis=0,
            )
            bad = tf.logical_and(tf.logical_not(finite), indices[:, None] < count)
            first_bad = tf.reduce_min(tf.where(bad, indices[:, None], count), axis=0)
            if factors is None:
                factors = tf.nest.map_structure(lambda _: None, gradients)
            total = tuple(
                weighted_sum(*pair)
                for pair in zip(tf.nest.flatten(gradients), tf.nest.flatten(factors), strict=True)
            )
            total = tf.nest.pack_sequence_as(gradients, total)
            scores = ops.split_copies(tf.cast(scores, tf.float32), chunk)  # (k, N, L)
            is_last = tf.cast(indices == count - 1, tf.float32)[:, None, None]
            last = tf.reduce_sum(is_last * scores, axis=0)
            return total, scores[0], last, explained[:size], targets, first_bad

        total, first_scores, last_scores, explained, targets, bad = part(tf.constant(0), targets)

        def body(index: tf.Tensor, total: Any, last: tf.Tensor, bad: tf.Tensor) -> tuple:
            part_total, _, part_last, _, _, part_bad = part(index * chunk, targets)
            # Each loop variable keeps the shape it entered with (a step traced
            # for a fixed batch size knows more of it than a chunk's results).
            total = tf.nest.map_structure(
                lambda old, new: tf.ensure_shape(old + new, old.shape), total, part_total
            )
            last = tf.ensure_shape(last + part_last, last.shape)
            return index + 1, total, last, tf.ensure_shape(tf.minimum(bad, part_bad), bad.shape)

        if chunks > 1:
            # One chunk at a time: parallel iterations would hold several
            # chunks' activations at once.
            _, total, last_scores, bad = tf.while_loop(
                lambda index, *_: index < chunks,
                body,
                (tf.constant(1), total, last_scores, bad),
                parallel_iterations=1,
            )
        return PathIntegral(total, first_scores, last_scores, explained, bad)

    def _maps(self, attributions: Any) -> Any:
        """`(N, *spatial, L)` (or per-channel `(N, *spatial, C, L)`) maps, each input's.

        Args:
            attributions: `(N, L, *spatial, C)` attributions of the input's
                elements, or a tuple of them (one per input).
        """
        return tf.nest.map_structure(
            lambda part: ops.channel_maps(part, self.channel_reduction), attributions
        )
