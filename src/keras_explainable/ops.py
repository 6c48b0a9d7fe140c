"""Small tensor operations shared by the methods and the engine.

Each is a pure function on tensors, testable without a model. Maps use the
layout `(N, *spatial, L)`: one map per sample and explained target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = [
    "CHANNEL_REDUCTIONS",
    "gaussian_blur",
    "normalize_maps",
    "reduce_channels",
    "resize_maps",
    "spatial_axes",
    "split_copies",
    "weighted_feature_sum",
]


def spatial_axes(tensor: tf.Tensor) -> list[int]:
    """The spatial axes of a `(N, *spatial, C)` tensor: `1 .. rank-2`."""
    return list(range(1, tensor.shape.rank - 1))


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


def gaussian_blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Blur `(N, H, W, C)` images with a Gaussian kernel, zero-padded at the borders.

    The kernel is `2 * ceil(sigma) + 1` pixels wide (11 x 11 for sigma 5, the
    RISE code's blur) and sums to 1; applied separably, rows then columns.

    Args:
        images: `(N, H, W, C)` float images; `C` must be known.
        sigma: the standard deviation in pixels.

    Returns:
        The blurred images, same shape.
    """
    radius = math.ceil(sigma)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights = (weights / weights.sum()).astype(np.float32)
    channels = images.shape[-1]
    column = tf.constant(np.tile(weights[:, None, None, None], (1, 1, channels, 1)))
    row = tf.reshape(column, [1, 2 * radius + 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(images, column, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(blurred, row, [1, 1, 1, 1], "SAME")


#: The names `reduce_channels` takes.
CHANNEL_REDUCTIONS = ("sum", "mean", "max", "l2")


def reduce_channels(values: tf.Tensor, reduction: str) -> tf.Tensor:
    """Reduce the last (channel) axis of `values`.

    Args:
        values: a tensor whose last axis holds the input's channels.
        reduction: 'sum', 'mean', 'max' or 'l2' (the Euclidean norm).

    Returns:
        `values` without its last axis.

    Raises:
        ValueError: an unknown `reduction`.
    """
    if reduction == "sum":
        return tf.reduce_sum(values, axis=-1)
    if reduction == "mean":
        return tf.reduce_mean(values, axis=-1)
    if reduction == "max":
        return tf.reduce_max(values, axis=-1)
    if reduction == "l2":
        return tf.norm(values, axis=-1)
    raise ValueError(f"reduction must be one of {CHANNEL_REDUCTIONS}; got {reduction!r}.")


def split_copies(tensor: tf.Tensor, copies: int) -> tf.Tensor:
    """Reshape `(copies * N, ...)` to `(copies, N, ...)`, keeping known sizes.

    Args:
        tensor: copies of a batch stacked copy-major along the first axis.
        copies: the number of copies.

    Returns:
        The same values, `(copies, N, ...)`.
    """
    dynamic = tf.shape(tensor)
    shape = [dynamic[axis] if size is None else size for axis, size in enumerate(tensor.shape)]
    return tf.reshape(tensor, [copies, -1, *shape[1:]])
