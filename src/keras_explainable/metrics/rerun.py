"""The base of the metrics that re-run the explainer: sensitivity, random logit.

These metrics explain other inputs (perturbed copies) or other targets (a
random class) than the ones scored, so they take the explainer itself. Each
batch of inputs is explained once, then the metric asks the explainer for
the other maps, a bounded number of copies per call, and compares them with
the batch's maps.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.base import Explainer
from keras_explainable.explanation import Explanation
from keras_explainable.metrics.base import Batch, Metric, MetricResult, batch_targets
from keras_explainable.metrics.job import Job
from keras_explainable.metrics.truth import single_map

__all__ = ["ExplainerRerun"]


@attrs.define(eq=False)
class ExplainerRerun(Metric, abc.ABC):
    """Base of metrics that call the explainer again on each batch.

    A subclass implements `_compare(explainer, inputs, y, explanation)`:
    the `(n,)` values of one batch (and optional per-sample extras), from
    the batch's inputs, its targets as the explainer takes them, and its
    `Explanation`.
    """

    needs_explainer: ClassVar[bool] = True

    def __call__(self, explainer_or_maps: Any, x: Any = None, y: Any = None, **kwargs: Any):
        """Score an explainer on inputs `x` (see `Metric.__call__`).

        Raises:
            TypeError: ready-made maps instead of an explainer, or options
                this metric does not take (`model=`, `masks=`, `boxes=`).
        """
        if not isinstance(explainer_or_maps, Explainer):
            raise TypeError(
                f"{self.name} explains other inputs or targets than the maps show: pass "
                f"the explainer, not {type(explainer_or_maps).__name__}."
            )
        return super().__call__(explainer_or_maps, x, y, **kwargs)

    @abc.abstractmethod
    def _compare(
        self, explainer: Explainer, inputs: tf.Tensor, y: Any, explanation: Explanation
    ) -> tuple[np.ndarray, ...]:
        """`(values, *extras)` of one batch, each with the batch's samples first."""

    def _measure(self, batch: Batch) -> tf.Tensor:  # pragma: no cover - not compiled
        raise NotImplementedError("Metrics that re-run the explainer compare maps eagerly.")

    def _scored_batches(self, job: Job) -> Iterator[tuple[int, tuple]]:
        for start, size, x_batch, y_batch in self._batches(job):
            y = batch_targets(job.explainer_y, start, start + size, y_batch)
            inputs = tf.cast(x_batch, tf.float32)
            explanation = job.explainer.explain(inputs, y)
            if not callable(y) and (explanation.targets >= 0).all():
                y = explanation.targets[:, 0]
            finite = bool(tf.reduce_all(tf.math.is_finite(inputs)))
            yield start, (*self._compare(job.explainer, inputs, y, explanation), finite)

    def _result(self, values: np.ndarray, *extras: np.ndarray) -> MetricResult:
        return MetricResult(self.name, values.astype(np.float64))


def maps_of(explanation: Explanation) -> np.ndarray:
    """`(n, *spatial)` float32 maps of an explanation of one target per sample."""
    return single_map(explanation.maps, has_channel=True)
