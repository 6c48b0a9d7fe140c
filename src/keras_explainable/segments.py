"""Segments: the input regions that KernelSHAP and LIME switch on and off.

A segmentation gives every spatial position of an input an integer label in
`[0, M)`; the `M` segments are the features of the surrogate models. It takes
six forms, validated here once: 'grid' (a regular grid of cells over 2-D
images, or runs of positions over a sequence such as a text model's tokens),
'slic' (SLIC superpixels of each image, with scikit-image), an integer array
of labels shared by every input, an integer array of one segmentation per
input, or a callable `inputs -> labels` run inside the compiled step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from keras_explainable.errors import InputError

__all__ = [
    "as_segments",
    "check_grid",
    "default_grid",
    "grid_labels",
    "paint_segments",
    "per_input_labels",
    "require_slic",
    "segment_masks",
    "slic_labels",
]


def as_segments(value: Any) -> Any:
    """Keep names and callables; turn arrays of labels into int32 arrays of `0..M-1`.

    The labels of an array are renumbered in increasing order, so any integers
    may name the segments.

    Raises:
        TypeError: `value` is neither a name, a callable nor an integer array.
    """
    if isinstance(value, str) or callable(value):
        return value
    if isinstance(value, (tf.Tensor, tf.Variable)):
        value = value.numpy()
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            "segments must be 'grid', 'slic', an integer array of segment labels or a callable "
            f"inputs -> labels; got {type(value).__name__} of dtype {array.dtype}."
        )
    _, labels = np.unique(array, return_inverse=True)
    return labels.reshape(array.shape).astype(np.int32)


def check_grid(value: Any) -> tuple[int, ...] | None:
    """Return None, `(g,)` or `(h, w)` of positive integers making at least 2 cells.

    Raises:
        ValueError: `value` is none of these.
    """
    if value is None:
        return None
    if (
        not isinstance(value, (tuple, list))
        or len(value) not in (1, 2)
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value)
        or any(v < 1 for v in value)
        or int(np.prod(value)) < 2
    ):
        raise ValueError(
            "grid must be (h, w) for 2-D images or (g,) for sequences, positive integers "
            f"making at least 2 cells; got {value!r}."
        )
    return tuple(int(v) for v in value)


def default_grid(spatial: Sequence[int | None]) -> tuple[int, ...]:
    """The grid of `segments='grid'` when none is given.

    `(8, 8)` cells over 2-D images; over a sequence `(N, T, C)` (a text
    model's tokens) one cell per position, `(T,)`.

    Raises:
        InputError: a sequence of unknown length.
    """
    if len(spatial) != 1:
        return (8, 8)
    if spatial[0] is None:
        raise InputError(
            "segments='grid' over sequences of unknown length needs grid=(g,): the "
            "number of groups of positions (tokens)."
        )
    return (int(spatial[0]),)


def grid_labels(spatial: Sequence[int], grid: tuple[int, ...]) -> np.ndarray:
    """`(*spatial)` int32 labels of a grid of cells, numbered row by row.

    A 2-D grid `(h, w)` splits images `(H, W)` into `h x w` cells; a 1-D grid
    `(g,)` splits a sequence of `T` positions (tokens) into `g` runs. Cells
    split each axis as evenly as the sizes allow.

    Raises:
        InputError: the inputs are neither 2-D images nor sequences matching
            the grid, their size is unknown, or smaller than the grid.
    """
    if len(spatial) != len(grid) or any(size is None for size in spatial):
        raise InputError(
            f"segments='grid' with grid={grid} needs inputs with {len(grid)} spatial "
            f"ax{'is' if len(grid) == 1 else 'es'} of a known size ((h, w) for 2-D images, "
            f"(g,) for sequences); got spatial shape {tuple(spatial)}. Pass a matching "
            "grid, or segments as an array or a callable."
        )
    if any(size < cells for size, cells in zip(spatial, grid, strict=True)):
        raise InputError(
            f"grid {grid} has more cells than the inputs of spatial size {tuple(spatial)} "
            "have positions."
        )
    labels = np.zeros((), np.int32)
    for size, cells in zip(spatial, grid, strict=True):
        # Row-major numbering: earlier axes vary slowest.
        labels = labels[..., None] * cells + (np.arange(size) * cells // size)
    return labels.astype(np.int32)


def per_input_labels(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber one segmentation per input `(N, *spatial)` to `0..M_n-1` each.

    Returns:
        The int32 labels and `M`, the most segments of an input.

    Raises:
        ValueError: an input has a single segment (nothing to compare).
    """
    renumbered = np.empty(labels.shape, np.int32)
    counts = []
    for index, row in enumerate(labels):
        values, inverse = np.unique(row, return_inverse=True)
        if values.size < 2:
            raise ValueError(
                f"segments of input {index} have a single segment; each input needs at least 2."
            )
        renumbered[index] = inverse.reshape(row.shape)
        counts.append(values.size)
    return renumbered, int(max(counts))


def require_slic() -> Any:
    """Return scikit-image's `slic`, or raise `ImportError` saying how to install it."""
    try:
        from skimage.segmentation import slic
    except ImportError as error:
        raise ImportError(
            "segments='slic' needs scikit-image, which is not installed. Install the "
            "extra: pip install 'keras-explainable[segmentation]' (or pip install "
            "scikit-image), or pass segments='grid', an array of labels or a callable."
        ) from error
    return slic


def slic_labels(images: np.ndarray, count: int, compactness: float) -> np.ndarray:
    """SLIC superpixels of each image: `(N, H, W)` int32 labels in `[0, count)`.

    Each image is scaled to [0, 1] first (SLIC's colour distances assume it,
    whatever the model's preprocessing). SLIC's `n_segments` is a target, not
    a bound: when an image gets more than `count` superpixels, it is segmented
    again with fewer, until it fits.

    Args:
        images: `(N, H, W, C)` float images.
        count: the most superpixels per image.
        compactness: SLIC's balance of colour and space (higher: squarer).
    """
    slic = require_slic()
    labels = np.empty(images.shape[:-1], np.int32)
    for index, image in enumerate(np.asarray(images, np.float64)):
        low, high = image.min(), image.max()
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
        wanted = count
        while True:
            segmented = slic(
                image,
                n_segments=wanted,
                compactness=compactness,
                channel_axis=-1,
                start_label=0,
                convert2lab=image.shape[-1] == 3,
            )
            _, segmented = np.unique(segmented, return_inverse=True)
            if segmented.max() < count or wanted <= 2:
                break
            wanted -= max(1, wanted // 10)
        labels[index] = np.minimum(segmented.reshape(image.shape[:-1]), count - 1)
    return labels


def segment_masks(labels: tf.Tensor, count: int, dtype: tf.DType) -> tf.Tensor:
    """`(n, *spatial, M)` one-hot masks of `(n, *spatial)` labels (out-of-range: none)."""
    return tf.one_hot(tf.cast(labels, tf.int32), count, dtype=dtype)


def paint_segments(masks: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """Paint each segment's values on its positions.

    Args:
        masks: `(n, *spatial, M)` one-hot segment masks, `n` 1 or N.
        values: `(N, L, M)` values per sample, target and segment.

    Returns:
        `(N, *spatial, L)` maps.
    """
    spatial = tf.shape(masks)[1:-1]
    count = tf.shape(values)[0]
    flat = tf.reshape(masks, [tf.shape(masks)[0], -1, masks.shape[-1]])
    flat = tf.broadcast_to(flat, tf.concat([[count], tf.shape(flat)[1:]], axis=0))
    maps = tf.matmul(flat, tf.cast(values, flat.dtype), transpose_b=True)  # (N, P, L)
    return tf.reshape(maps, tf.concat([[count], spatial, [values.shape[1]]], axis=0))
