"""Small tensor operations shared by the methods and the engine.

Each is a pure function on tensors, testable without a model. Maps use the
layout `(N, *spatial, L)`: one map per sample and explained target.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

__all__ = [
    "CHANNEL_REDUCTIONS",
    "reduce_channels",
    "spatial_axes",
    "weighted_feature_sum",
    "normalize_maps",
    "resize_maps",
]


def spatial_axes(tensor: tf.Tensor) -> list[int]:
    """The spatial axes of a `(N, *spatial, C)` tensor: `1 .. rank-2`."""
    return list(range(1, tensor.shape.rank - 1))


#: How input-gradient methods reduce the input's channels at each position.
CHANNEL_REDUCTIONS = {
    "max": tf.reduce_max,
    "mean": tf.reduce_mean,
    "sum": tf.reduce_sum,
    "l2": tf.norm,
}


def reduce_channels(
    gradients: tf.Tensor, reduction: str = "max", absolute: bool = True
) -> tf.Tensor:
    """Reduce per-target input gradients over the input's channels to maps.

    Args:
        gradients: `(N, L, *spatial, C)` gradients, one per target.
        reduction: 'max', 'mean', 'sum' or 'l2' (see `CHANNEL_REDUCTIONS`).
        absolute: take the absolute value before reducing.

    Returns:
        `(N, *spatial, L)` maps.

    Example:
        >>> reduce_channels(tf.constant([[[[1.0, -3.0]]]]))   # (1, 1, 1, 2) -> (1, 1, 1)
        <tf.Tensor: shape=(1, 1, 1), dtype=float32, numpy=array([[[3.]]], dtype=float32)>
    """
    if absolute:
        gradients = tf.abs(gradients)
    maps = CHANNEL_REDUCTIONS[reduction](gradients, axis=-1)
    return tf.experimental.numpy.moveaxis(maps, 1, -1)


def weighted_feature_sum(features: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """Sum feature maps weighted per channel and target.

    Args:
        features: `(N, *spatial, C)` activations.
        weights: `(N, L, C)` channel weights, one row per target.

    Returns:
        `(N, *spatial, L)` maps: `sum_c weights[n, l, c] * features[n, ..., c]`.
    """
    return tf.einsum("n...c,nlc->n...l", features, tf.cast(weights, features.dtype))


def normalize_maps(maps: tf.Tensor) -> tf.Tensor:
    """Min-max normalise each map to [0, 1]; a constant map becomes zeros.

    Args:
        maps: `(N, *spatial, L)` maps.

    Returns:
        The normalised maps, same shape.
    """
    axes = spatial_axes(maps)
    low = tf.reduce_min(maps, axis=axes, keepdims=True)
    high = tf.reduce_max(maps, axis=axes, keepdims=True)
    return tf.math.divide_no_nan(maps - low, high - low)


def _resize_axis(maps: tf.Tensor, axis: int, size: int) -> tf.Tensor:
    """Linearly resize one axis (half-pixel centres, as `tf.image.resize`)."""
    rank = maps.shape.rank
    order = [0, axis] + [a for a in range(1, rank) if a != axis]
    moved = tf.transpose(maps, order)
    shape = tf.shape(moved)
    flat = tf.reshape(moved, [shape[0], shape[1], -1, 1])
    resized = tf.image.resize(flat, [size, tf.shape(flat)[2]], method="bilinear")
    resized = tf.reshape(resized, tf.concat([[shape[0], size], shape[2:]], axis=0))
    inverse = [order.index(a) for a in range(rank)]
    return tf.transpose(resized, inverse)


def resize_maps(maps: tf.Tensor, size: Sequence[int | tf.Tensor]) -> tf.Tensor:
    """Resize `(N, *spatial, L)` maps to `size` with (multi)linear interpolation.

    Two spatial axes use `tf.image.resize` (bilinear); one or three axes are
    resized one axis at a time, which is the same separable interpolation.

    Args:
        maps: `(N, *spatial, L)` maps.
        size: the target spatial size, one entry per spatial axis: ints, or
            scalar int tensors for sizes known only when the step runs.

    Returns:
        `(N, *size, L)` float32 maps.
    """
    maps = tf.cast(maps, tf.float32)
    size = [s if tf.is_tensor(s) else int(s) for s in size]
    current = list(maps.shape[1:-1])
    if current == size:
        return maps
    if len(size) == 2:
        return tf.image.resize(maps, size, method="bilinear")
    for offset, target in enumerate(size):
        if tf.is_tensor(target) or current[offset] != target:
            maps = _resize_axis(maps, offset + 1, target)
    return maps
