"""Small tensor operations shared by the methods and the engine.

Each is a pure function on tensors, testable without a model. Maps use the
layout `(N, *spatial, L)`: one map per sample and explained target; per-channel
maps (input attributions with `channel_reduction=None`) keep the input's
channel axis before the target axis, `(N, *spatial, C, L)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = [
    "CHANNEL_REDUCTIONS",
    "blank_maps",
    "finite_samples",
    "gradient_reduction",
    "gaussian_blur",
    "normalize_maps",
    "reduce_channels",
    "channel_maps",
    "gradient_maps",
    "principal_projection",
    "resize_maps",
    "sample_count",
    "spatial_axes",
    "split_copies",
    "weighted_feature_sum",
]


#: Squarings of the normalised Gram matrix in `principal_projection`: its
#: eigenvalue ratios are raised to the power 2**16, so a second eigenvalue up
#: to 0.9998 times the first leaves an error below 1e-5.
PRINCIPAL_SQUARINGS = 16


def spatial_axes(tensor: tf.Tensor) -> list[int]:
    """The spatial axes of a `(N, *spatial, C)` tensor: `1 .. rank-2`."""
    return list(range(1, tensor.shape.rank - 1))


def sample_count(inputs: tf.Tensor | Sequence[tf.Tensor]) -> tf.Tensor:
    """The number of samples `N` of a batch: one tensor, or a tuple of them (several inputs)."""
    return tf.shape(tf.nest.flatten(inputs)[0])[0]


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

    Each sample and target is scaled on its own, over all the axes between
    the first and the last: every position and, for per-channel maps, every
    channel, so the channels of one map stay comparable.

    Args:
        maps: `(N, *spatial, L)` maps, or per-channel maps `(N, *spatial, C, L)`.

    Returns:
        The normalised maps, same shape.
    """
    axes = spatial_axes(maps)
    low = tf.reduce_min(maps, axis=axes, keepdims=True)
    high = tf.reduce_max(maps, axis=axes, keepdims=True)
    return tf.math.divide_no_nan(maps - low, high - low)


def blank_maps(maps: tf.Tensor) -> tf.Tensor:
    """Which maps are all zero: `(N, L)` bool, over every position (and channel).

    Args:
        maps: `(N, *spatial, L)` maps, or per-channel maps `(N, *spatial, C, L)`.

    Returns:
        True where the map of a sample and target is zero everywhere (a map
        holding NaN is not blank).
    """
    return tf.reduce_all(tf.equal(maps, 0), axis=spatial_axes(maps))


def finite_samples(tensor: tf.Tensor) -> tf.Tensor:
    """Which samples of a `(N, ...)` tensor hold no NaN or Inf: `(N,)` bool."""
    finite = tf.math.is_finite(tf.cast(tensor, tf.float32))
    return tf.reduce_all(tf.reshape(finite, [tf.shape(finite)[0], -1]), axis=1)


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
    Only the `len(size)` axes after the first are resized: axes between them
    and the last (the channel axis of per-channel maps `(N, *spatial, C, L)`)
    are kept as they are.

    Args:
        maps: `(N, *spatial, L)` maps, or per-channel maps `(N, *spatial, C, L)`.
        size: the target spatial size, one entry per spatial axis: ints, or
            scalar int tensors for sizes known only when the step runs.

    Returns:
        `(N, *size, L)` (or `(N, *size, C, L)`) float32 maps.

    Example:
        >>> resize_maps(tf.ones([2, 4, 3, 1]), [8]).shape   # 4 steps -> 8, 3 channels kept
        TensorShape([2, 8, 3, 1])
    """
    maps = tf.cast(maps, tf.float32)
    size = [s if tf.is_tensor(s) else int(s) for s in size]
    spatial_rank = len(size)
    current = list(maps.shape[1 : spatial_rank + 1])
    if current == size:
        return maps
    if maps.shape.rank > spatial_rank + 2:
        # Fold the kept axes into the last, resize, and unfold them.
        dynamic = tf.shape(maps)
        lengths = [dynamic[axis] if n is None else n for axis, n in enumerate(maps.shape)]
        folded = tf.reshape(maps, lengths[: spatial_rank + 1] + [-1])
        resized = resize_maps(folded, size)
        return tf.reshape(resized, [lengths[0], *size, *lengths[spatial_rank + 1 :]])
    if spatial_rank == 2:
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


#: The names `reduce_channels` takes (and None, which keeps the channels).
CHANNEL_REDUCTIONS = ("sum", "mean", "max", "l2")


def gradient_reduction(reduction: str | None, on_embeddings: bool) -> str | None:
    """A gradient method's channel reduction, with 'auto' resolved.

    'auto' is 'max' over an image's channels (Simonyan et al.) and 'l2' over
    a text model's embedding axis (the gradient's norm per token).
    """
    if reduction != "auto":
        return reduction
    return "l2" if on_embeddings else "max"


def reduce_channels(values: tf.Tensor, reduction: str | None) -> tf.Tensor:
    """Reduce the last (channel) axis of `values`.

    Args:
        values: a tensor whose last axis holds the input's channels.
        reduction: 'sum', 'mean', 'max' or 'l2' (the Euclidean norm); None
            keeps every channel.

    Returns:
        `values` without its last axis; with None, `values` unchanged.

    Raises:
        ValueError: an unknown `reduction`.
    """
    if reduction is None:
        return values
    if reduction == "sum":
        return tf.reduce_sum(values, axis=-1)
    if reduction == "mean":
        return tf.reduce_mean(values, axis=-1)
    if reduction == "max":
        return tf.reduce_max(values, axis=-1)
    if reduction == "l2":
        return tf.norm(values, axis=-1)
    raise ValueError(f"reduction must be one of {CHANNEL_REDUCTIONS} or None; got {reduction!r}.")


def channel_maps(values: tf.Tensor, reduction: str | None) -> tf.Tensor:
    """Maps from per-target values of the input's elements.

    Args:
        values: `(N, L, *spatial, C)` per-target gradients or attributions.
        reduction: how to reduce the channels (see `reduce_channels`); None
            keeps them.

    Returns:
        `(N, *spatial, L)` maps; with None, per-channel maps `(N, *spatial, C, L)`.
    """
    return tf.experimental.numpy.moveaxis(reduce_channels(values, reduction), 1, -1)


def gradient_maps(
    gradients: tf.Tensor, reduction: str | None = "max", absolute: bool = True
) -> tf.Tensor:
    """Reduce per-target input gradients over the input's channels to maps.

    Args:
        gradients: `(N, L, *spatial, C)` gradients, one per target.
        reduction: 'max', 'mean', 'sum' or 'l2' (see `reduce_channels`); None
            keeps one map per channel.
        absolute: take the absolute value before reducing.

    Returns:
        `(N, *spatial, L)` maps; with None, per-channel maps `(N, *spatial, C, L)`.

    Example:
        >>> gradient_maps(tf.constant([[[[1.0, -3.0]]]]))   # (1, 1, 1, 2) -> (1, 1, 1)
        <tf.Tensor: shape=(1, 1, 1), dtype=float32, numpy=array([[[3.]]], dtype=float32)>
        >>> gradient_maps(tf.constant([[[[1.0, -3.0]]]]), None).shape   # per channel
        TensorShape([1, 1, 2, 1])
    """
    if absolute:
        gradients = tf.abs(gradients)
    return channel_maps(gradients, reduction)


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


def _top_eigenvector(gram: tf.Tensor) -> tf.Tensor:
    """`(B, K)` unit eigenvectors of the largest eigenvalue of `(B, K, K)` PSD matrices.

    Repeated squaring of the trace-normalised matrix converges to the
    projector `u u^T` on the top eigenvector (one batched matmul per step,
    so it compiles under XLA and stays on the device); its column of
    largest diagonal is `u` up to sign and scale, which two power steps on
    `gram` then polish. A zero matrix gives a zero vector.
    """

    def normalized(matrix: tf.Tensor) -> tf.Tensor:
        trace = tf.linalg.trace(matrix)[:, None, None]
        return tf.math.divide_no_nan(matrix, trace)

    projector = normalized(gram)
    for _ in range(PRINCIPAL_SQUARINGS):
        projector = normalized(tf.matmul(projector, projector))
    column = tf.argmax(tf.linalg.diag_part(projector), axis=-1)
    vector = tf.gather(projector, column, axis=2, batch_dims=1)
    for _ in range(2):
        vector = tf.linalg.matvec(gram, vector)
        vector = tf.math.divide_no_nan(vector, tf.norm(vector, axis=-1, keepdims=True))
    return vector


def principal_projection(matrix: tf.Tensor) -> tf.Tensor:
    """Project the centred rows of each matrix on their first principal direction.

    With `X` the matrix with each column's mean removed and `v` the first
    right singular vector of `X` (its first principal direction), returns the
    projections `p = X v`, one per row. The sign of `v` is chosen so that
    `p` correlates positively with the rows' sums `X 1` (an SVD leaves it
    arbitrary): for activations, positions with more total activation
    project higher. Where the rows' sums carry no sign (layer-normalised
    tokens, whose channels sum to about 0), the sign makes the largest
    projection positive instead. The direction is computed from the smaller Gram matrix,
    `X X^T` or `X^T X`, by repeated squaring (see `PRINCIPAL_SQUARINGS`), so
    the function also compiles under XLA. A constant matrix gives zeros.

    Args:
        matrix: `(B, Z, C)` float matrices: for EigenCAM, Z positions by C
            channels of activations.

    Returns:
        `(B, Z)` float32 projections.

    Example:
        >>> x = tf.constant([[[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]]])
        >>> principal_projection(x)   # (1, 3): (x - mean) @ v, v the top principal direction
    """
    matrix = tf.cast(matrix, tf.float32)
    centred = matrix - tf.reduce_mean(matrix, axis=1, keepdims=True)
    # Unit scale keeps the squared Gram entries in float32 range.
    scale = tf.reduce_max(tf.abs(centred), axis=[1, 2], keepdims=True)
    centred = tf.math.divide_no_nan(centred, scale)

    def by_rows() -> tf.Tensor:  # p = sigma u, u the top eigenvector of X X^T
        gram = tf.matmul(centred, centred, transpose_b=True)
        vector = _top_eigenvector(gram)
        variance = tf.reduce_sum(vector * tf.linalg.matvec(gram, vector), axis=-1)
        return vector * tf.sqrt(tf.maximum(variance, 0.0))[:, None]

    def by_columns() -> tf.Tensor:  # p = X v, v the top eigenvector of X^T X
        gram = tf.matmul(centred, centred, transpose_a=True)
        return tf.linalg.matvec(centred, _top_eigenvector(gram))

    rows, columns = matrix.shape[1], matrix.shape[2]
    if rows is not None and columns is not None:
        projection = by_rows() if rows <= columns else by_columns()
    else:
        shape = tf.shape(matrix)
        projection = tf.cond(shape[1] <= shape[2], by_rows, by_columns)
    sums = tf.reduce_sum(centred, axis=2)
    agreement = tf.reduce_sum(projection * sums, axis=1)
    # Rows whose sums carry no sign (layer-normalised tokens sum to about 0)
    # leave the correlation to rounding: then the largest projection is positive.
    weak = tf.abs(agreement) <= 1e-4 * tf.norm(projection, axis=1) * tf.norm(centred, axis=[1, 2])
    largest = tf.gather(projection, tf.argmax(tf.abs(projection), axis=1), axis=1, batch_dims=1)
    agreement = tf.where(weak, largest, agreement)
    sign = tf.where(agreement < 0.0, -1.0, 1.0)[:, None]
    return projection * sign * scale[:, :, 0]
