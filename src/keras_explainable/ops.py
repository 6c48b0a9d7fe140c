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
    "principal_projection",
    "resize_maps",
]

#: Squarings of the normalised Gram matrix in `principal_projection`: its
#: eigenvalue ratios are raised to the power 2**16, so a second eigenvalue up
#: to 0.9998 times the first leaves an error below 1e-5.
PRINCIPAL_SQUARINGS = 16


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
    project higher. The direction is computed from the smaller Gram matrix,
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
    agreement = tf.reduce_sum(projection * tf.reduce_sum(centred, axis=2), axis=1)
    sign = tf.where(agreement < 0.0, -1.0, 1.0)[:, None]
    return projection * sign * scale[:, :, 0]
