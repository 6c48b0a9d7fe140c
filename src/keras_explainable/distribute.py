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

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from keras_explainable.inputs import InputSource
from keras_explainable.targets import INDEX, TargetPlan, as_index_array

__all__ = ["distributed_batches", "replicated"]


def _target_columns(
    source: InputSource, plan: TargetPlan, units: int | None
) -> tuple[np.ndarray | None, int]:
    """The `(N, L)` targets of `y` given as an array (or None) and L."""
    if plan.kind != INDEX:
        return None, 0
    if source.has_targets:
        _, _, first = next(iter(source.iterate()))
        first = as_index_array(first, None, units)
        return None, first.shape[1]
    if plan.indices is not None:
        return plan.indices, plan.indices.shape[1]
    # One unit for every sample (`y` an int): `as_dataset` fills it in, also
    # for a dataset, whose length is unknown here.
    return None, 1


def _replica_slices(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset) -> Any:
    """Distribute global batches of `(positions, x, feed)` as one slice per replica.

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
                # A part is one tensor, or a tuple of them (several inputs).
                return (kept, *tf.nest.map_structure(lambda part: part[begin:end], batch))

            return tf.data.Dataset.from_tensor_slices((starts, stops)).map(replica_slice)

        # A global batch without samples (a dataset may yield one) has nothing
        # to copy to its replicas; it is skipped on every worker alike.
        return dataset.filter(lambda positions, *_: tf.size(positions) > 0).flat_map(slices)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
    return strategy.distribute_datasets_from_function(dataset_fn, options)


def replicated(step: Callable, strategy: tf.distribute.Strategy) -> Callable:
    """The global step: `step` on every replica's slice, results gathered.

    Args:
        step: the uncompiled step `(inputs, feed) -> (maps, scores,
            targets, notes, finite)` that every replica runs on its slice
            (`inputs` and `maps` may be tuples: a model with several inputs).
        strategy: the distribution strategy.

    Returns:
        An uncompiled function of one distributed batch `(positions, inputs,
        feed)` returning `(maps, scores, targets, notes, positions,
        finite)` gathered from all replicas.
    """

    def replica_step(positions: tf.Tensor, inputs: tf.Tensor, feed: dict) -> tuple:
        maps, scores, explained, notes, finite = step(inputs, feed)
        return maps, scores, explained, notes, positions, tf.cast(finite, tf.int32)[None]

    def global_step(batch: tuple) -> tuple:
        per_replica = strategy.run(replica_step, args=batch)
        return tf.nest.map_structure(lambda value: strategy.gather(value, axis=0), per_replica)

    return global_step


def distributed_batches(
    compiled_for: Callable[[Any], Callable],
    strategy: tf.distribute.Strategy,
    source: InputSource,
    plan: TargetPlan,
    units: int | None,
    skip_batches: int = 0,
) -> Iterator[tuple[int, tuple]]:
    """Run the global step on every batch; yield its results in input order.

    Args:
        compiled_for: returns the compiled `replicated` step for the
            distributed batches' element spec (the caller caches it, so a
            later call does not trace the model on every replica again).
        strategy: the distribution strategy.
        source: the validated inputs.
        plan: the validated targets.
        units: the explained output's number of units, to check targets.
        skip_batches: global batches already done (a resumed run).

    Yields:
        `(start, (maps, scores, targets, notes, finite))` per global batch,
        numpy arrays in the input's order (`notes` a dict of them); `finite`
        is False when any replica's slice held NaN or Inf.
    """
    indices, count = _target_columns(source, plan, units)
    dataset = source.as_dataset(indices, count, plan.constant, plan.data).skip(skip_batches)
    distributed = _replica_slices(strategy, dataset)
    global_step = compiled_for(distributed.element_spec)
    for batch in distributed:
        if plan.kind == INDEX and source.has_targets:
            for targets in strategy.experimental_local_results(batch[2]["indices"]):
                as_index_array(targets.numpy(), None, units)
        results = tf.nest.map_structure(lambda value: value.numpy(), global_step(batch))
        maps, scores, targets, notes, positions, finite = results
        # Rows of position -1 are the copies given to replicas without samples.
        order = np.argsort(positions, kind="stable")
        order = order[positions[order] >= 0]
        start = int(positions[order[0]])
        notes = {name: note[order] for name, note in notes.items()}
        maps = tf.nest.map_structure(lambda part, order=order: part[order], maps)
        yield start, (maps, scores[order], targets[order], notes, bool(finite.all()))
