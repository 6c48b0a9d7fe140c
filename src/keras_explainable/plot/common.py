"""What the plotting modules share: optional imports, images and maps made ready."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

__all__ = [
    "class_label",
    "as_rgb_float",
    "colormap",
    "normalise",
    "prepare_images",
    "prepare_maps",
    "refuse_per_input",
    "require",
    "resize_heat",
]


def require(module: str) -> Any:
    """Import an optional dependency, or explain how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"Plotting needs matplotlib and pillow ({module} is missing); install "
            "them with: pip install keras-explainable[viz]"
        ) from error


def as_rgb_float(images: np.ndarray) -> np.ndarray:
    """`(N, H, W, C)` images of any usual range as float RGB in [0, 1]."""
    if images.shape[-1] == 4:
        images = images[..., :3]
    if np.issubdtype(images.dtype, np.integer) or images.dtype == bool:
        images = images.astype(np.float32) / (1.0 if images.dtype == bool else 255.0)
    else:
        images = np.nan_to_num(images.astype(np.float32))
        low, high = float(images.min(initial=0.0)), float(images.max(initial=0.0))
        if low < 0:
            # preprocessed inputs (e.g. centred): show them min-max scaled
            images = (images - low) / max(high - low, 1e-12)
        elif high > 1:
            images = images / 255.0
    images = np.clip(images, 0.0, 1.0)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images


def prepare_images(images: Any) -> tuple[np.ndarray, bool]:
    """Return images as `(N, H, W, C)` and whether one image was given."""
    images = np.asarray(images)
    if images.ndim == 2:
        return images[None, ..., None], True
    if images.ndim == 3:
        if images.shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"A single image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
                f"got shape {images.shape}. Pass a batch as (N, H, W, C)."
            )
        return images[None], True
    if images.ndim == 4 and images.shape[-1] in (1, 3, 4):
        return images, False
    raise ValueError(
        f"images must be (H, W), (H, W, C) or (N, H, W, C) with C in 1, 3, 4; got "
        f"shape {images.shape}."
    )


def prepare_maps(maps: Any, count: int, single: bool, target: int) -> np.ndarray:
    """Return maps as `(N, h, w)` floats, selecting `target` on a target axis."""
    refuse_per_input(maps)
    maps = np.asarray(maps, dtype=np.float32)
    if single and maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if single:
        maps = maps[None]
    if maps.ndim == 4:
        if not -maps.shape[-1] <= target < maps.shape[-1]:
            raise ValueError(
                f"target={target} is out of range: the maps have {maps.shape[-1]} target(s)."
            )
        maps = maps[..., target]
    if maps.ndim != 3:
        raise ValueError(
            "maps must be (h, w) or (h, w, L) for one image, (N, h, w) or "
            f"(N, h, w, L) for a batch; got {maps.shape[1:] if single else maps.shape}."
        )
    if maps.shape[0] != count:
        raise ValueError(f"Got {maps.shape[0]} maps for {count} images.")
    return np.nan_to_num(maps)


def normalise(heat: np.ndarray) -> np.ndarray:
    """Keep a map in [0, 1] as it is; min-max scale any other map."""
    low, high = float(heat.min()), float(heat.max())
    if low >= 0.0 and high <= 1.0:
        return heat
    if high == low:
        return np.zeros_like(heat)
    return (heat - low) / (high - low)


def resize_heat(heat: np.ndarray, height: int, width: int) -> np.ndarray:
    """A `(h, w)` map resized bilinearly to `(height, width)` (unchanged when it fits)."""
    if heat.shape == (height, width):
        return heat
    image_module = require("PIL.Image")
    # a 2-D float32 array becomes a 32-bit float ("F") image: no quantisation
    resized = image_module.fromarray(heat.astype(np.float32)).resize(
        (width, height), image_module.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float32)


def colormap(cmap: Any) -> Any:
    """A matplotlib colormap from its name (or the colormap itself)."""
    matplotlib = require("matplotlib")
    if isinstance(cmap, str):
        try:
            return matplotlib.colormaps[cmap]
        except KeyError as error:
            raise ValueError(f"Unknown matplotlib colormap {cmap!r}.") from error
    return cmap


def refuse_per_input(maps: Any) -> None:
    """Reject the per-input maps (a tuple or dict) of a model with several inputs."""
    if isinstance(maps, (tuple, dict)):
        raise ValueError(
            "These maps are one array per input of a model with several inputs; plot one "
            "input's maps: explanation.for_input(<input name>) (or explanation.maps[<name>])."
        )


def class_label(unit: int, class_names: Sequence[str] | None) -> str:
    """A target's label: its class name, "class k", or "custom" for a target callable."""
    if unit < 0:
        return "custom"
    if class_names is not None and unit < len(class_names):
        return str(class_names[unit])
    return f"class {unit}"
