"""The mixin of the metrics that perturb their inputs: seeds and `return_perturbed`."""

from __future__ import annotations

import abc
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.metrics.base import batch_targets
from keras_explainable.metrics.job import Job
from keras_explainable.metrics.result import MetricResult
from keras_explainable.metrics.truth import single_map
from keras_explainable.validators import non_negative_int

__all__ = ["PerturbsInputs"]


# Not slotted: a slotted mixin and a slotted metric base cannot both lay out fields.
@attrs.define(eq=False, slots=False)
class PerturbsInputs(abc.ABC):
    """Mixin of the metrics that perturb inputs: return the perturbed inputs of a few samples.

    A metric implements `_perturbed_inputs(inputs, maps)`: every perturbed
    input of a few samples, exactly as its run builds them (its random
    draws are functions of the seed and the sample, not of the batch).

    Args:
        return_perturbed: the number of samples, the first ones, whose
            perturbed inputs the result holds as `perturbed`
            `(k, count, *input_shape)` (default 0: none). They are rebuilt
            after the run, `k * count` inputs at once: keep `k` small.
    """

    return_perturbed: int = attrs.field(default=0, kw_only=True, validator=non_negative_int)

    @abc.abstractmethod
    def _perturbed_inputs(self, inputs: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
        """`(n, count, *input_shape)`: the perturbed inputs of `(n, ...)` inputs and maps."""

    def _finish(self, job: Job, result: MetricResult) -> MetricResult:
        if not self.return_perturbed:
            return result
        inputs, maps = [], []
        taken = 0
        for start, size, x_batch, y_batch in self._batches(job):
            take = min(size, self.return_perturbed - taken)
            inputs.append(tf.cast(x_batch[:take], tf.float32))
            if job.explainer is not None:
                y = batch_targets(
                    job.explainer_y,
                    start,
                    start + take,
                    None if y_batch is None else y_batch[:take],
                )
                explanation = job.explainer.explain(inputs[-1], y)
                maps.append(single_map(explanation.maps, has_channel=True))
            else:
                maps.append(job.maps[start : start + take])
            taken += take
            if taken >= self.return_perturbed:
                break
        perturbed = self._perturbed_inputs(
            tf.concat(inputs, 0), tf.constant(np.concatenate(maps, 0), tf.float32)
        )
        return attrs.evolve(result, perturbed=np.asarray(perturbed, np.float32))


def sample_major(images: Any) -> tf.Tensor:
    """`(count, n, ...)` perturbation-major images as `(n, count, ...)`."""
    images = tf.convert_to_tensor(images)
    return tf.transpose(images, [1, 0, *range(2, images.shape.rank)])
