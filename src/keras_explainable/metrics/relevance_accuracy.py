"""Relevance Mass Accuracy and Relevance Rank Accuracy: maps against ground truth.

Arras, Osman & Samek (2022), "CLEVR-XAI: A benchmark dataset for the ground
truth evaluation of neural network explanations". Information Fusion 81.
https://arxiv.org/abs/2003.07258
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import tensorflow as tf

from keras_explainable.metrics.base import Batch, Metric

__all__ = ["RelevanceMassAccuracy", "RelevanceRankAccuracy"]

_RELEVANCE = ("positive", "absolute", "signed")


def relevance_of(maps: tf.Tensor, relevance: str) -> tf.Tensor:
    """The relevance a metric counts: the positive part, magnitude or signed map."""
    if relevance == "positive":
        return tf.nn.relu(maps)
    if relevance == "absolute":
        return tf.abs(maps)
    return maps


@attrs.define(eq=False)
class _GroundTruthRelevance(Metric):
    """Base of the two CLEVR-XAI metrics: maps against masks, no model."""

    higher_is_better: ClassVar[bool] = True
    needs_inputs: ClassVar[bool] = False
    needs_masks: ClassVar[bool] = True

    relevance: str = attrs.field(
        default="positive", kw_only=True, validator=attrs.validators.in_(_RELEVANCE)
    )

    def _flat(self, batch: Batch) -> tuple[tf.Tensor, tf.Tensor]:
        """`(N, P)` relevance and ground truth (1 inside, 0 outside) of a batch."""
        size = tf.shape(batch.maps)[0]
        relevance = tf.reshape(relevance_of(batch.maps, self.relevance), [size, -1])
        inside = tf.reshape(tf.cast(batch.masks, tf.float32), [size, -1])
        return relevance, inside


@attrs.define(eq=False)
class RelevanceMassAccuracy(_GroundTruthRelevance):
    """Relevance Mass Accuracy: the share of the map's relevance on the object.

    With `R` the map's relevance (its positive part by default) and `G` the
    ground truth, each sample's value is

        R_within / R_total = sum(R * G) / sum(R)

    1.0 when all relevance lies on the object, 0.0 when none does; a map
    with no relevance scores 0. **Higher is better.** With the default
    `relevance='positive'` it equals the `EnergyPointingGame` on masks.

    Conventions: Arras et al. count positive relevance (the default here);
    Quantus (`quantus.RelevanceMassAccuracy`) sums the signed values unless
    `abs=True`: pass `relevance='signed'` (or 'absolute') to match it.

    Args:
        relevance: what counts as relevance: 'positive' (default: negative
            values count 0), 'absolute' (`|R|`) or 'signed' (the raw map).
        batch_size: maps per compiled step (default 32).
        verbose: progress display.

    Call with ground truth as `masks=` (bool `(N, *spatial)`) or `boxes=`
    (`(N, 4)` `(y_min, x_min, y_max, x_max)`, max exclusive); maps must have
    the inputs' size. An empty mask is an error.

    Returns from a call: a `MetricResult` with per-sample shares.

    Raises:
        ValueError: `relevance` is not one of the three (at construction).

    Example:
        >>> ke.metrics.RelevanceMassAccuracy()(expl, masks=data.masks).mean
        0.64

    References:
        Arras, Osman & Samek (2022), "CLEVR-XAI: A benchmark dataset for the
        ground truth evaluation of neural network explanations".
        <https://arxiv.org/abs/2003.07258>
    """

    def _measure(self, batch: Batch) -> tf.Tensor:
        relevance, inside = self._flat(batch)
        return tf.math.divide_no_nan(
            tf.reduce_sum(relevance * inside, axis=1), tf.reduce_sum(relevance, axis=1)
        )


@attrs.define(eq=False)
class RelevanceRankAccuracy(_GroundTruthRelevance):
    """Relevance Rank Accuracy: the share of the top-K positions on the object.

    With `K` the number of ground-truth positions of a sample, the value is
    the fraction of the map's `K` most relevant positions that lie on the
    object: 1.0 when the top `K` are exactly the object. Ties are broken by
    position (row-major, first first), as in Deletion. **Higher is better.**

    Conventions: Arras et al. rank positive relevance (the default here);
    Quantus (`quantus.RelevanceRankAccuracy`) ranks the signed values unless
    `abs=True` (ranking the signed map and its positive part differs only
    among negative values); ties follow numpy's sort there.

    Args:
        relevance: what is ranked: 'positive' (default), 'absolute' or
            'signed'; see `RelevanceMassAccuracy`.
        batch_size: maps per compiled step (default 32).
        verbose: progress display.

    Call with `masks=` or `boxes=`, as for `RelevanceMassAccuracy`.

    Returns from a call: a `MetricResult` with per-sample fractions in [0, 1].

    Raises:
        ValueError: `relevance` is not one of the three (at construction).

    Example:
        >>> ke.metrics.RelevanceRankAccuracy()(expl, boxes=data.boxes).mean
        0.58

    References:
        Arras, Osman & Samek (2022), "CLEVR-XAI: A benchmark dataset for the
        ground truth evaluation of neural network explanations".
        <https://arxiv.org/abs/2003.07258>
    """

    def _measure(self, batch: Batch) -> tf.Tensor:
        relevance, inside = self._flat(batch)
        order = tf.argsort(relevance, axis=1, direction="DESCENDING", stable=True)
        ranks = tf.argsort(order, axis=1, stable=True)
        known = tf.reduce_sum(inside, axis=1)
        top = tf.cast(ranks, tf.float32) < known[:, None]
        return tf.reduce_sum(tf.where(top, inside, 0.0), axis=1) / known
