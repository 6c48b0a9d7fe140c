"""Visualise explanations: heat maps blended over images, and figure grids.

Needs the optional `viz` extra (`pip install keras-explainable[viz]`:
matplotlib and pillow), imported only when a function here is called.
Figures are drawn with matplotlib's non-interactive Agg canvas, so nothing
here opens a window or changes pyplot's global state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = ["overlay", "plot_grid"]


def _require(module: str) -> Any:
    """Import an optional dependency, or explain how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"Plotting needs matplotlib and pillow ({module} is missing); install "
            "them with: pip install keras-explainable[viz]"
        ) from error


def _as_rgb_float(images: np.ndarray) -> np.ndarray:
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


def _prepare_images(images: Any) -> tuple[np.ndarray, bool]:
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


def _prepare_maps(maps: Any, count: int, single: bool, target: int) -> np.ndarray:
    """Return maps as `(N, h, w)` floats, selecting `target` on a target axis."""
    _refuse_per_input(maps)
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


def _normalise(heat: np.ndarray) -> np.ndarray:
    """Keep a map in [0, 1] as it is; min-max scale any other map."""
    low, high = float(heat.min()), float(heat.max())
    if low >= 0.0 and high <= 1.0:
        return heat
    if high == low:
        return np.zeros_like(heat)
    return (heat - low) / (high - low)


def _resize(heat: np.ndarray, height: int, width: int) -> np.ndarray:
    if heat.shape == (height, width):
        return heat
    image_module = _require("PIL.Image")
    # a 2-D float32 array becomes a 32-bit float ("F") image: no quantisation
    resized = image_module.fromarray(heat.astype(np.float32)).resize(
        (width, height), image_module.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float32)


def _colormap(cmap: Any) -> Any:
    matplotlib = _require("matplotlib")
    if isinstance(cmap, str):
        try:
            return matplotlib.colormaps[cmap]
        except KeyError as error:
            raise ValueError(f"Unknown matplotlib colormap {cmap!r}.") from error
    return cmap


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
    batch, single = _prepare_images(images)
    heat_maps = _prepare_maps(maps, len(batch), single, target)
    colors = _colormap(cmap)
    rgb = _as_rgb_float(batch)
    height, width = rgb.shape[1:3]
    out = np.empty(rgb.shape, np.uint8)
    for index, (image, heat) in enumerate(zip(rgb, heat_maps, strict=True)):
        heat = _normalise(_resize(heat, height, width))
        colored = np.asarray(colors(heat), dtype=np.float32)[..., :3]
        blended = (1.0 - alpha) * image + alpha * colored
        out[index] = np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)
    return out[0] if single else out


def _refuse_per_input(maps: Any) -> None:
    """Reject the per-input maps (a tuple or dict) of a model with several inputs."""
    if isinstance(maps, (tuple, dict)):
        raise ValueError(
            "These maps are one array per input of a model with several inputs; plot one "
            "input's maps: explanation.for_input(<input name>) (or explanation.maps[<name>])."
        )


def _columns(explanations: Any, target: int) -> list[tuple[str, Any, int]]:
    """(title, explanation, target index) for each column of the grid."""
    # Any object with `maps` and `method` (an `Explanation`) is one explanation.
    if hasattr(explanations, "maps") and hasattr(explanations, "method"):
        _refuse_per_input(explanations.maps)
        count = explanations.maps.shape[-1]
        name = explanations.method or "map"
        return [(name, explanations, index) for index in range(count)]
    if isinstance(explanations, Mapping):
        return [(str(key), value, target) for key, value in explanations.items()]
    if isinstance(explanations, Sequence) and not isinstance(explanations, str):
        return [(e.method or f"map {i}", e, target) for i, e in enumerate(explanations)]
    raise TypeError(
        "explanations must be an Explanation, a list of them or a dict "
        f"{{title: Explanation}}; got {type(explanations).__name__}."
    )


def _class_label(unit: int, class_names: Sequence[str] | None) -> str:
    if unit < 0:
        return "custom"
    if class_names is not None and unit < len(class_names):
        return str(class_names[unit])
    return f"class {unit}"


def plot_grid(
    images: Any,
    explanations: Any,
    path: str | Path | None = None,
    *,
    target: int = 0,
    class_names: Sequence[str] | None = None,
    image_titles: Sequence[str] | None = None,
    cmap: Any = "jet",
    alpha: float = 0.5,
    cell_size: float = 1.8,
    dpi: int = 100,
    interpolation: str = "nearest",
) -> Figure:
    """Draw a grid of heat-map overlays: one row per image.

    The first column shows the images; each further column shows one
    explanation. Every cell is titled with the column's name, the explained
    class and its score.

    Args:
        images: `(N, H, W, C)` images (see `overlay` for the accepted ranges).
        explanations: a dict `{column title: Explanation}` (one column per
            method), a list of `Explanation` (titled by their method), or one
            `Explanation` (one column per explained target). Each explains
            the N images.
        path: where to save the figure as PNG; None to only return it.
        target: which target of each explanation to show, for a dict or a
            list (default 0).
        class_names: names of the output units, used in the titles.
        image_titles: one title per image for the first column.
        cmap: the heat map's colormap (default "jet").
        alpha: the heat map's weight in the blend (default 0.5).
        cell_size: the size of one cell in inches (default 1.8).
        dpi: the resolution of the saved PNG (default 100).
        interpolation: how matplotlib scales the images to the cells
            (default "nearest": crisp pixels and small files; "antialiased"
            suits large photos in small cells).

    Returns:
        The matplotlib `Figure` (not attached to pyplot).

    Raises:
        ValueError: the explanations do not match the images.
        TypeError: `explanations` has the wrong type.
        ImportError: matplotlib or pillow is not installed.

    Example:
        >>> methods = {"Grad-CAM": ke.GradCAM(model), "CAM": ke.CAM(model)}
        >>> grid = {name: m.explain(x) for name, m in methods.items()}
        >>> plot_grid(x, grid, "gallery.png", class_names=["cat", "dog"])
    """
    _require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    batch, _ = _prepare_images(images)
    columns = _columns(explanations, target)
    if not columns:
        raise ValueError("Nothing to plot: no explanations given.")
    rows = len(batch)
    if image_titles is not None and len(image_titles) != rows:
        raise ValueError(f"Got {len(image_titles)} image titles for {rows} images.")
    for title, explanation, _ in columns:
        if len(explanation) != rows:
            raise ValueError(
                f"Explanation {title!r} has {len(explanation)} maps for {rows} images."
            )
    shown = (_as_rgb_float(batch) * 255).round().astype(np.uint8)
    blends = [overlay(batch, e.maps, target=t, cmap=cmap, alpha=alpha) for _, e, t in columns]

    figure = Figure(figsize=(cell_size * (len(columns) + 1), cell_size * rows * 1.2))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, len(columns) + 1, squeeze=False)
    for row in range(rows):
        axes[row, 0].imshow(shown[row], interpolation=interpolation)
        axes[row, 0].set_title(
            image_titles[row] if image_titles is not None else "image", fontsize=8
        )
        for column, (title, explanation, unit) in enumerate(columns, start=1):
            axes[row, column].imshow(blends[column - 1][row], interpolation=interpolation)
            label = _class_label(int(explanation.targets[row, unit]), class_names)
            score = float(explanation.scores[row, unit])
            axes[row, column].set_title(f"{title}\n{label} {score:.2f}", fontsize=8)
    for axis in axes.flat:
        axis.set_axis_off()
    figure.tight_layout(pad=0.3)
    if path is not None:
        figure.savefig(path, dpi=dpi, format="png")
    return figure
