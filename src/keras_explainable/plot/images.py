"""Heat maps over images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

from keras_explainable.plot.common import (
    as_rgb_float,
    colormap,
    normalise,
    prepare_images,
    prepare_maps,
    resize_heat,
)

__all__ = ["overlay"]


def overlay(
    images: Any,
    maps: Any,
    *,
    target: int = 0,
    cmap: Any = "jet",
    alpha: float = 0.4,
) -> np.ndarray:
    """Blend heat maps over images.

    Each map is resized (bilinearly) to its image, coloured with `cmap` and
    blended: `(1 - alpha) * image + alpha * cmap(map)`. Maps already in
    [0, 1] (the library's default output) are coloured as they are, so weak
    maps stay dim; maps with other values are min-max scaled first.

    Images may be uint8 (0-255), float in [0, 1] or in [0, 255] (detected by
    a maximum above 1), or centred floats with negative values (min-max
    scaled for display); grayscale images are shown in gray and the alpha
    channel of RGBA images is dropped.

    Args:
        images: one image `(H, W)`, `(H, W, C)` or a batch `(N, H, W, C)`,
            with C in 1, 3, 4.
        maps: for one image `(h, w)` or `(h, w, L)`; for a batch `(N, h, w)` or
            `(N, h, w, L)`, any spatial size. An `Explanation` works too.
        target: which of the L maps to show (default 0).
        cmap: a matplotlib colormap or its name (default "jet").
        alpha: the heat map's weight in [0, 1] (default 0.4; 0 returns the
            image, 1 the coloured map).

    Returns:
        uint8 RGB `(H, W, 3)` for one image, `(N, H, W, 3)` for a batch.

    Raises:
        ValueError: shapes that do not match, `alpha` outside [0, 1], an
            unknown colormap.
        ImportError: matplotlib or pillow is not installed.

    Example:
        >>> expl = ke.GradCAM(model).explain(images)
        >>> blended = overlay(images, expl.maps)   # (N, H, W, 3) uint8
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}.")
    batch, single = prepare_images(images)
    heat_maps = prepare_maps(maps, len(batch), single, target)
    colors = colormap(cmap)
    rgb = as_rgb_float(batch)
    height, width = rgb.shape[1:3]
    out = np.empty(rgb.shape, np.uint8)
    for index, (image, heat) in enumerate(zip(rgb, heat_maps, strict=True)):
        heat = normalise(resize_heat(heat, height, width))
        colored = np.asarray(colors(heat), dtype=np.float32)[..., :3]
        blended = (1.0 - alpha) * image + alpha * colored
        out[index] = np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)
    return out[0] if single else out
