"""Ground truth and map shapes for metrics: masks, boxes, one map per sample."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_explainable.errors import InputError, TargetError

__all__ = ["boxes_to_masks", "ground_truth_masks", "single_map"]


def single_map(maps: np.ndarray, has_channel: bool) -> np.ndarray:
    """`(N, *spatial)` from maps with (or without) a trailing target axis."""
    maps = np.asarray(maps, np.float32)
    if not has_channel:
        return maps
    if maps.shape[-1] != 1:
        raise TargetError(
            f"Metrics score one map per sample; got {maps.shape[-1]} maps per sample "
            f"(shape {maps.shape}). Score each target separately: maps[..., [l]] with "
            "y = targets[:, l]."
        )
    return maps[..., 0]


def boxes_to_masks(boxes: Any, spatial: tuple) -> np.ndarray:
    """Bool masks `(N, H, W)` of boxes `(y_min, x_min, y_max, x_max)`, max exclusive.

    Args:
        boxes: integer `(N, 4)` boxes.
        spatial: the image size `(H, W)`.

    Returns:
        Bool masks `(N, H, W)`, True inside each box.

    Raises:
        InputError: boxes of the wrong shape, empty, or outside the image.
        TypeError: boxes that are not integers.
    """
    boxes = np.asarray(boxes)
    if boxes.dtype == bool or not np.issubdtype(boxes.dtype, np.integer):
        raise TypeError(f"Boxes must be integer pixel coordinates; got dtype {boxes.dtype}.")
    if spatial is None or len(spatial) != 2 or any(s is None for s in spatial):
        raise InputError(f"Boxes need 2-D inputs of known size; got spatial size {spatial}.")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(f"Boxes must have shape (N, 4); got {boxes.shape}.")
    height, width = spatial
    y0, x0, y1, x1 = boxes.T
    bad = (y0 < 0) | (x0 < 0) | (y1 > height) | (x1 > width) | (y0 >= y1) | (x0 >= x1)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"Box {index} {tuple(int(v) for v in boxes[index])} is empty or outside "
            f"the {height}x{width} image; boxes are (y_min, x_min, y_max, x_max), "
            "max exclusive."
        )
    rows = np.arange(height)[None, :, None]
    cols = np.arange(width)[None, None, :]
    return (
        (rows >= y0[:, None, None])
        & (rows < y1[:, None, None])
        & (cols >= x0[:, None, None])
        & (cols < x1[:, None, None])
    )


def ground_truth_masks(
    masks: Any, boxes: Any, spatial: tuple | None, count: int | None
) -> np.ndarray:
    """Validate ground truth; return bool masks `(N, *spatial)`."""
    if boxes is not None:
        masks = boxes_to_masks(boxes, spatial)
    else:
        if isinstance(masks, (tf.Tensor, tf.Variable)):
            masks = masks.numpy()
        masks = np.asarray(masks)
        if masks.dtype != bool:
            if not np.issubdtype(masks.dtype, np.number) or not np.isin(masks, (0, 1)).all():
                raise TypeError(f"Masks must be bool (or 0/1) arrays; got dtype {masks.dtype}.")
            masks = masks.astype(bool)
    if spatial is not None and (
        masks.ndim != len(spatial) + 1
        or any(
            want is not None and got != want
            for got, want in zip(masks.shape[1:], spatial, strict=True)
        )
    ):
        raise InputError(
            f"Masks of shape {masks.shape} do not match maps of spatial size "
            f"{spatial}; masks are (N, *spatial)."
        )
    if count is not None and len(masks) != count:
        raise InputError(f"Got {len(masks)} masks for {count} maps.")
    empty = ~masks.reshape(len(masks), -1).any(axis=1)
    if empty.any():
        raise InputError(
            f"{int(empty.sum())} mask(s) are empty (first at index "
            f"{int(np.flatnonzero(empty)[0])}): "
            "the object is absent, so the metric is undefined. Drop those samples."
        )
    return masks
