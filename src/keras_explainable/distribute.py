"""Explaining under a `tf.distribute.Strategy`.

Every global batch of `batch_size` samples is cut into one contiguous slice
per replica (the last, uneven batch included: a replica that would get an
empty slice explains a stand-in sample, whose result is dropped). Each
replica runs the explainer's ordinary step on its slice, and the results of
all replicas, on all workers, are gathered with `strategy.gather` together
with the samples' positions, so they are written back in the input's order.
Every worker walks through the same global batches, so the collective gathers
stay in step even when the data does not divide evenly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from keras_explainable.errors import InputError
from keras_explainable.targets import INDEX, TargetPlan, as_index_array

if TYPE_CHECKING:
    from keras_explainable.base import Explainer
    from keras_explainable.inputs import InputSource

__all__ = ["distributed_batches"]


def _target_columns(
    explainer: Explainer, source: InputSource, plan: TargetPlan
) -> tuple[np.ndarray | None, int]:
    """The `(N, L)` targets of `y` given as an array (or None) and L."""
    if plan.kind != INDEX:
        return None, 0
    if source.has_targets:
        _, _, first = next(iter(source.iterate()))
        first = as_index_array(first, None, explainer.exposure.output_units)
        return None, first.shape[1]
    if plan.indices is not None:
        return plan.indices, plan.indices.shape[1]
    # One unit for every sample (`y` an int): `as_dataset` fills it in, also
    # for a dataset, whose length is unknown here.
    return None, 1


def _replica_slices(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset) -> Any:
    """Distribute global batches of `(positions, x, y)` as one slice per replica.

    Every replica gets a non-empty slice. When a batch has fewer samples than
    there are replicas (the last, uneven batch), a replica left without
    samples gets a copy of the batch's first sample with position -1, which
    `distributed_batches` drops after the gather. The model never sees an
    empty batch: TensorFlow's oneDNN CPU convolutions return a zero-size input
    unchanged instead of computing its output shape (a `(0, 32, 32, 3)` image
    batch comes out of `Conv2D(8, 3)` as `(0, 32, 32, 3)`), so the next
    layer fails, and other kernels may mishandle empty batches too.
    """
    replicas = strategy.num_replicas_in_sync

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def slices(positions: tf.Tensor, *batch: tf.Tensor) -> tf.data.Dataset:
            size = tf.shape(positions)[0]
            per_replica = (size + replicas - 1) // replicas
            starts = tf.minimum(tf.range(first, first + local) * per_replica, size)
            stops = tf.minimum(starts + per_replica, size)

            def replica_slice(start: tf.Tensor, stop: tf.Tensor) -> tuple:
                empty = stop <= start
                begin = tf.where(empty, 0, start)
                end = tf.where(empty, 1, stop)
                kept = tf.where(empty, tf.constant(-1, positions.dtype), positions[begin:end])
                return (kept, *(part[begin:end] for part in batch))

            return tf.data.Dataset.from_tensor_slices((starts, stops)).map(replica_slice)

        # A global batch without samples (a dataset may yield one) has nothing
        # to copy to its replicas; it is skipped on every worker alike.
        return dataset.filter(lambda positions, *_: tf.size(positions) > 0).flat_map(slices)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
    return strategy.distribute_datasets_from_function(dataset_fn, options)


def _global_step(
    explainer: Explainer,
    strategy: tf.distribute.Strategy,
    source: InputSource,
    plan: TargetPlan,
    count: int,
    element_spec: Any,
) -> Any:
    """The compiled global step for this input signature and target form (cached).

    Cached with the explainer's local steps, so that explaining again (the
    metrics explain batch by batch) does not trace the model once more per
    replica. The step holds `strategy`, so its id in the key stays unique.
    """
    spec = source.spec
    key = ("distributed", id(strategy), tuple(spec.shape), spec.dtype, plan.kind, count)
    key += (id(plan.function),)
    if key not in explainer._steps:
        step = explainer._step_function(spec, plan)

        def replica_step(positions: tf.Tensor, inputs: tf.Tensor, targets: tf.Tensor) -> tuple:
            maps, scores, explained, finite = step(inputs, targets)
            return maps, scores, explained, positions, tf.cast(finite, tf.int32)[None]

        @tf.function(input_signature=[element_spec], autograph=False)
        def global_step(batch: tuple) -> tuple:
            per_replica = strategy.run(replica_step, args=batch)
            return tuple(strategy.gather(value, axis=0) for value in per_replica)

        explainer._steps[key] = global_step
    return explainer._steps[key]


def distributed_batches(
    explainer: Explainer,
    strategy: tf.distribute.Strategy,
    source: InputSource,
    plan: TargetPlan,
    skip_batches: int = 0,
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield `(start, maps, scores, targets)` per global batch, in input order.

    Args:
        explainer: the explainer whose step every replica runs.
        strategy: the distribution strategy.
        source: the validated inputs.
        plan: the validated targets.
        skip_batches: global batches already done (a resumed run).

    Yields:
        The start position and numpy results of each global batch.

    Raises:
        InputError: a batch holds NaN or Inf values.
    """
    indices, count = _target_columns(explainer, source, plan)
    dataset = source.as_dataset(indices, count, plan.constant).skip(skip_batches)
    distributed = _replica_slices(strategy, dataset)
    units = explainer.exposure.output_units
    global_step = _global_step(explainer, strategy, source, plan, count, distributed.element_spec)
    for batch in distributed:
        if plan.kind == INDEX and source.has_targets:
            for targets in strategy.experimental_local_results(batch[2]):
                as_index_array(targets.numpy(), None, units)
        maps, scores, targets, positions, finite = (t.numpy() for t in global_step(batch))
        if not finite.all():
            start = int(positions[positions >= 0].min())
            raise InputError(
                f"Inputs contain NaN or Inf values in the batch starting at sample "
                f"{start}; clean or drop them before explaining."
            )
        # Rows of position -1 are the copies given to replicas without samples.
        order = np.argsort(positions, kind="stable")
        order = order[positions[order] >= 0]
        yield int(positions[order[0]]), maps[order], scores[order], targets[order]
