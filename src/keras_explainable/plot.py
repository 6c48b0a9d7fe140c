"""Visualise explanations: heat maps over images, figure grids, time series and text.

Needs the optional `viz` extra (`pip install keras-explainable[viz]`:
matplotlib and pillow), imported only when a function here is called.
Figures are drawn with matplotlib's non-interactive Agg canvas, so nothing
here opens a window or changes pyplot's global state.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = ["TextHTML", "overlay", "plot_grid", "series", "text"]


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


def _prepare_series(x: Any, index: int) -> np.ndarray:
    """Sample `index` of `(N, T, C)` series, or the one `(T, C)` or `(T,)` series, as `(T, C)`."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x[:, None]
    if x.ndim == 2:
        return x
    if x.ndim == 3:
        if not -len(x) <= index < len(x):
            raise ValueError(f"index={index} is out of range: got {len(x)} series.")
        return x[index]
    raise ValueError(
        f"x must be one series (T,) or (T, C), or a batch (N, T, C); got shape {x.shape}."
    )


def _series_map(maps: Any, x: Any, index: int, target: int) -> tuple[np.ndarray, Any]:
    """The map of sample `index` and `target`: `(T,)` or per channel `(T, C)`.

    Returns the map and the `Explanation` it came from (None for an array).
    """
    explanation = maps if hasattr(maps, "maps") and hasattr(maps, "method") else None
    values = np.asarray(explanation.maps if explanation is not None else maps, np.float32)
    batched = explanation is not None or np.ndim(x) == 3 or values.ndim == 4
    if batched:
        if values.ndim not in (2, 3, 4):
            raise ValueError(
                "maps of a batch must be (N, T), (N, T, L) or per channel (N, T, C, L); "
                f"got shape {values.shape}."
            )
        if np.ndim(x) == 3 and len(values) != len(x):
            raise ValueError(f"Got {len(values)} maps for {len(x)} series.")
        if not -len(values) <= index < len(values):
            raise ValueError(f"index={index} is out of range: got {len(values)} maps.")
        values = values[index]
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim not in (2, 3):
        raise ValueError(
            "maps of one series must be (T,), (T, L) or per channel (T, C, L); got shape "
            f"{values.shape}."
        )
    if not -values.shape[-1] <= target < values.shape[-1]:
        raise ValueError(
            f"target={target} is out of range: the maps have {values.shape[-1]} target(s)."
        )
    return np.nan_to_num(values[..., target]), explanation


def series(
    x: Any,
    maps: Any,
    path: str | Path | None = None,
    *,
    index: int = 0,
    target: int = 0,
    channel_names: Sequence[str] | None = None,
    title: str | None = None,
    cmap: Any = "Reds",
    alpha: float = 0.8,
    panel_size: tuple[float, float] = (8.0, 1.3),
    dpi: int = 100,
) -> Figure:
    """Draw a time series with its attribution as a coloured band behind the line.

    One panel (a row of axes, sharing the time axis) per channel: the
    channel's values as a line, over a band whose colour at each time step is
    the map's value there. A map `(T,)` (one value per time step, as most
    methods give) colours every panel alike; a per-channel map `(T, C)`
    (input attributions with `channel_reduction=None`) gives each channel its
    own band. Maps already in [0, 1] (the library's default output) are
    coloured as they are; maps with other values (raw, signed attributions)
    are min-max scaled, over all channels together so that they stay
    comparable.

    Args:
        x: a batch of series `(N, T, C)`, or one series `(T, C)` or `(T,)`.
        maps: an `Explanation` or an array: for a batch `(N, T)`, `(N, T, L)`
            or per channel `(N, T, C, L)`; for one series `(T,)`, `(T, L)` or
            `(T, C, L)`. With one series, an `Explanation` or per-channel maps
            `(N, T, C, L)` give sample `index`'s map. A 2-D map of one series
            is `(T, L)`, the library's layout: give a per-channel map its
            target axis, `(T, C, 1)`.
        path: where to save the figure as PNG; None to only return it.
        index: which sample of the batch to draw (default 0).
        target: which of the L targets to show (default 0).
        channel_names: one name per channel, for the panels' labels
            (default "channel 0", "channel 1", ...).
        title: the figure's title. Default: for an `Explanation`, its method,
            the explained unit and its score; none for an array.
        cmap: the band's colormap or its name (default "Reds": white where
            the map is 0, so the line stays readable).
        alpha: the band's opacity in [0, 1] (default 0.8).
        panel_size: `(width, height)` of one panel in inches (default `(8, 1.3)`).
        dpi: the resolution of the saved PNG (default 100).

    Returns:
        The matplotlib `Figure` (not attached to pyplot), one axes per channel.

    Raises:
        ValueError: maps whose time steps or channels do not match the
            series, maps of another number of series, `index` or `target`
            out of range, `alpha` outside [0, 1], too few or too many channel
            names, an unknown colormap.
        ImportError: matplotlib is not installed.

    Example:
        >>> expl = ke.Saliency(model, channel_reduction=None).explain(x)
        >>> figure = ke.plot.series(x, expl, index=3)   # (N, T, C) series, a band each
        >>> figure.savefig("series.png")
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}.")
    _require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = _prepare_series(x, index)
    steps, channels = values.shape
    heat, explanation = _series_map(maps, x, index, target)
    if heat.shape[0] != steps:
        raise ValueError(
            f"The maps have {heat.shape[0]} time steps and the series {steps}; explain "
            "with resize=True (the default) to get maps at the series' length."
        )
    if heat.ndim == 2 and heat.shape[1] != channels:
        raise ValueError(
            f"The per-channel maps have {heat.shape[1]} channels and the series {channels}."
        )
    if channel_names is not None and len(channel_names) != channels:
        raise ValueError(f"Got {len(channel_names)} channel names for {channels} channels.")
    colors = _colormap(cmap)
    heat = _normalise(heat)
    if title is None and explanation is not None:
        sample = index if index >= 0 else len(explanation.maps) + index
        unit = int(explanation.targets[sample, target])
        score = float(explanation.scores[sample, target])
        title = f"{explanation.method or 'map'}: {_class_label(unit, None)} {score:.2f}"

    width, height = panel_size
    figure = Figure(figsize=(width, height * channels + (0.4 if title else 0.0)))
    FigureCanvasAgg(figure)
    axes = figure.subplots(channels, 1, sharex=True, squeeze=False)[:, 0]
    times = np.arange(steps)
    for channel, axis in enumerate(axes):
        line = values[:, channel]
        band = heat[:, channel] if heat.ndim == 2 else heat
        low, high = float(line.min()), float(line.max())
        margin = 0.1 * (high - low) or 0.5
        # The band spans the panel's height behind the line, one cell per step.
        axis.imshow(
            band[None, :],
            cmap=colors,
            vmin=0.0,
            vmax=1.0,
            alpha=alpha,
            aspect="auto",
            interpolation="nearest",
            extent=(-0.5, steps - 0.5, low - margin, high + margin),
            zorder=0,
        )
        axis.plot(times, line, color="black", linewidth=1.0, zorder=1)
        axis.set_xlim(-0.5, steps - 0.5)
        axis.set_ylim(low - margin, high + margin)
        name = channel_names[channel] if channel_names is not None else f"channel {channel}"
        axis.set_ylabel(name, fontsize=8)
        axis.tick_params(labelsize=7)
    axes[-1].set_xlabel("time step", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout(pad=0.3)
    if path is not None:
        figure.savefig(path, dpi=dpi, format="png")
    return figure


class TextHTML:
    """Tokens coloured by attribution, as HTML: shown by notebooks, printable as markup.

    Returned by `text(..., kind="html")`. Jupyter (and IPython's display)
    renders it through `_repr_html_`; `str()` gives the markup (to write to
    a file, say).

    Attributes:
        markup: the HTML markup.
    """

    def __init__(self, markup: str) -> None:
        """Wrap HTML `markup`."""
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return f"TextHTML({self.markup[:60]!r}...)"


def _token_values(tokens: Any, maps: Any, index: int, target: int) -> tuple[list[str], np.ndarray]:
    """One sample's tokens and its `(T,)` attributions, checked against each other."""
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise TypeError(
            "tokens must be a list of strings (one sentence) or a list of such lists "
            f"(a batch, with index=); got {type(tokens).__name__}."
        )
    batch = bool(tokens) and not isinstance(tokens[0], str)
    values = np.asarray(getattr(maps, "maps", maps), dtype=np.float64)
    if batch:
        if not 0 <= index < len(tokens):
            raise ValueError(f"index={index} is out of range for {len(tokens)} sentences.")
        tokens = tokens[index]
        if values.ndim not in (2, 3):
            raise ValueError(
                f"maps of a batch must be (N, T) or (N, T, L); got shape {values.shape}."
            )
        values = values[index]
    elif values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    if values.ndim == 2:
        if not 0 <= target < values.shape[-1]:
            raise ValueError(f"target={target} is out of range for {values.shape[-1]} maps.")
        values = values[:, target]
    if values.ndim != 1:
        raise ValueError(f"maps of one sentence must be (T,) or (T, L); got shape {values.shape}.")
    tokens = [str(token) for token in tokens]
    if len(tokens) != len(values):
        raise ValueError(f"Got {len(tokens)} tokens for {len(values)} attributions.")
    return tokens, values


def _token_colors(values: np.ndarray, cmap: Any) -> tuple[np.ndarray, bool]:
    """RGBA colours of the values and whether the scale is signed (diverging)."""
    signed = bool(values.min(initial=0.0) < 0.0)
    if signed:
        # Centred on zero: white is no effect, the two hues the two signs.
        scale = max(float(np.abs(values).max()), 1e-12)
        positions = 0.5 + 0.5 * values / scale
    else:
        scale = max(float(values.max(initial=0.0)), 1e-12)
        positions = values / scale
    colormap = _colormap(cmap if cmap is not None else ("RdBu_r" if signed else "Reds"))
    return np.asarray(colormap(np.clip(positions, 0.0, 1.0))), signed


def _ink(rgba: np.ndarray) -> str:
    """Black or white text, whichever reads better on the colour."""
    luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
    return "#000000" if luminance > 0.5 else "#ffffff"


def _hex(rgba: np.ndarray) -> str:
    return "#" + "".join(f"{int(round(channel * 255)):02x}" for channel in rgba[:3])


def text(
    tokens: Sequence[str] | Sequence[Sequence[str]],
    maps: Any,
    *,
    index: int = 0,
    target: int = 0,
    kind: str = "html",
    cmap: Any = None,
    title: str | None = None,
    width: float = 8.0,
) -> TextHTML | Figure:
    """Show a sentence's tokens coloured by their attributions.

    The colour scale is centred on zero for signed attributions (a
    diverging colormap, default "RdBu_r": red raises the score, blue lowers
    it) and starts at zero for non-negative ones (a sequential colormap,
    default "Reds"); the strongest token gets the full colour.

    Args:
        tokens: the sentence's tokens as strings, or a list of such lists
            (a batch; `index` picks the sentence).
        maps: the attributions: `(T,)` or `(T, L)` for one sentence,
            `(N, T)` or `(N, T, L)` for a batch; an `Explanation` works too
            (its maps are `(N, T, L)` for a text model).
        index: which sentence of a batch to show (default 0).
        target: which of the L maps to show (default 0).
        kind: "html" (default): a `TextHTML` that notebooks display, with
            the tokens escaped; "figure": a matplotlib `Figure` (to save as
            PNG), drawn with the Agg canvas.
        cmap: a matplotlib colormap or its name; default by the sign of the
            attributions as above.
        title: a title above the tokens (the figure's, or a heading line).
        width: the figure's width in inches (default 8.0); tokens wrap onto
            new lines to fit.

    Returns:
        A `TextHTML` (kind "html") or a matplotlib `Figure` (kind "figure").

    Raises:
        ValueError: tokens and attributions of different lengths, maps of a
            wrong shape, `index` or `target` out of range, an unknown `kind`
            or colormap.
        TypeError: `tokens` is not a list of strings or of lists of strings.
        ImportError: matplotlib is not installed.

    Example:
        >>> expl = ke.IntegratedGradients(model, postprocess=None).explain(ids)
        >>> ke.plot.text([vocabulary[i] for i in ids[0]], expl.maps[0])   # in a notebook
        >>> ke.plot.text(sentences, expl.maps, index=3, kind="figure").savefig("ig.png")
    """
    if kind not in ("html", "figure"):
        raise ValueError(f'kind must be "html" or "figure"; got {kind!r}.')
    tokens, values = _token_values(tokens, maps, index, target)
    colors, _ = _token_colors(values, cmap)
    if kind == "figure":
        return _text_figure(tokens, colors, title, width)
    spans = [
        f'<span style="background-color: {_hex(color)}; color: {_ink(color)}; '
        f'padding: 1px 3px; margin: 1px; border-radius: 3px; display: inline-block" '
        f'title="{value:.4g}">{html.escape(token)}</span>'
        for token, value, color in zip(tokens, values, colors, strict=True)
    ]
    heading = "" if title is None else f"<div><b>{html.escape(title)}</b></div>"
    style = "line-height: 1.8; font-family: monospace"
    return TextHTML(f'<div style="{style}">{heading}{" ".join(spans)}</div>')


def _text_figure(tokens: list[str], colors: np.ndarray, title: str | None, width: float) -> Figure:
    """The tokens drawn as coloured boxes, wrapped into lines of `width` inches."""
    _require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Lay the tokens out in character units: a monospace character is about
    # 0.6 of the font size wide.
    font_size = 12.0
    char_inches = 0.6 * font_size / 72.0
    per_line = max(int(width / char_inches), 1)
    lines: list[list[int]] = [[]]
    used = 0
    for position, token in enumerate(tokens):
        length = len(token) + 1
        if lines[-1] and used + length > per_line:
            lines.append([])
            used = 0
        lines[-1].append(position)
        used += length
    line_inches = 0.4
    height = line_inches * len(lines) + (0.4 if title else 0.1)
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    axis = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axis.set_xlim(0, per_line)
    axis.set_ylim(height / line_inches, 0)
    axis.set_axis_off()
    top = 0.9 if title else 0.2
    if title:
        axis.text(0.5, 0.5, title, fontsize=font_size, fontweight="bold", va="center")
    for row, positions in enumerate(lines):
        column = 0.5
        for position in positions:
            token = tokens[position]
            axis.text(
                column,
                top + row + 0.5,
                token,
                fontsize=font_size,
                family="monospace",
                va="center",
                color=_ink(colors[position]),
                bbox={
                    "boxstyle": "round,pad=0.2",
                    "facecolor": colors[position],
                    "edgecolor": "none",
                },
            )
            column += len(token) + 1
    return figure
