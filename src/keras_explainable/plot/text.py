"""Tokens coloured by attribution: HTML or a figure."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from keras_explainable.plot.common import colormap, require

__all__ = ["TextHTML", "text"]


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
    colors = colormap(cmap if cmap is not None else ("RdBu_r" if signed else "Reds"))
    return np.asarray(colors(np.clip(positions, 0.0, 1.0))), signed


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
    require("matplotlib")
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
