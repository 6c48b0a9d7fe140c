"""Time series with their attributions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from keras_explainable.plot.common import class_label, colormap, normalise, require

__all__ = ["series"]


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
    require("matplotlib")
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
    colors = colormap(cmap)
    heat = normalise(heat)
    if title is None and explanation is not None:
        sample = index if index >= 0 else len(explanation.maps) + index
        unit = int(explanation.targets[sample, target])
        score = float(explanation.scores[sample, target])
        title = f"{explanation.method or 'map'}: {class_label(unit, None)} {score:.2f}"

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
