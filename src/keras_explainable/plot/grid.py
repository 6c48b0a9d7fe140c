"""A figure grid: images in rows, explanations in columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from keras_explainable.plot.common import (
    as_rgb_float,
    class_label,
    prepare_images,
    refuse_per_input,
    require,
)
from keras_explainable.plot.images import overlay

__all__ = ["plot_grid"]


def _columns(explanations: Any, target: int) -> list[tuple[str, Any, int]]:
    """(title, explanation, target index) for each column of the grid."""
    # Any object with `maps` and `method` (an `Explanation`) is one explanation.
    if hasattr(explanations, "maps") and hasattr(explanations, "method"):
        refuse_per_input(explanations.maps)
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
    require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    batch, _ = prepare_images(images)
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
    shown = (as_rgb_float(batch) * 255).round().astype(np.uint8)
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
            label = class_label(int(explanation.targets[row, unit]), class_names)
            score = float(explanation.scores[row, unit])
            axes[row, column].set_title(f"{title}\n{label} {score:.2f}", fontsize=8)
    for axis in axes.flat:
        axis.set_axis_off()
    figure.tight_layout(pad=0.3)
    if path is not None:
        figure.savefig(path, dpi=dpi, format="png")
    return figure
