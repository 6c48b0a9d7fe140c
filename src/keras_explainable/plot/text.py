"""Tokens coloured by attribution: HTML or a figure."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from keras_explainable.plot.common import colormap, require
from keras_explainable.plot.word_pieces import merge_word_pieces, word_pieces

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


_TOKENS_EXPECTED = (
    "tokens must be a list of strings (one sentence) or a list of such lists "
    "(a batch, with index=), or token ids with tokenizer= or vocabulary="
)


def _is_text(tokens: Any) -> bool:
    """Whether `tokens` are strings (one sentence or a batch) rather than ids."""
    if isinstance(tokens, str):
        return True
    if isinstance(tokens, Sequence) and not isinstance(tokens, np.ndarray) and tokens:
        first = tokens[0]
        if isinstance(first, str):
            return True
        if isinstance(first, Sequence) and not isinstance(first, np.ndarray) and first:
            return isinstance(first[0], str)
    return False


def _sample_tokens(
    tokens: Any, index: int, tokenizer: Any, vocabulary: Any
) -> tuple[list[str], np.ndarray | None, bool]:
    """One sample's tokens as strings, its `(T,)` padding mask (or None), and batch-ness."""
    if _is_text(tokens):
        if isinstance(tokens, str):
            raise TypeError(f"{_TOKENS_EXPECTED}; got a str.")
        batch = not isinstance(tokens[0], str)
        if batch:
            if not 0 <= index < len(tokens):
                raise ValueError(f"index={index} is out of range for {len(tokens)} sentences.")
            tokens = tokens[index]
        return [str(token) for token in tokens], None, batch
    mask = None
    if isinstance(tokens, Mapping):
        if "token_ids" not in tokens:
            raise ValueError(
                f"A dict of inputs needs 'token_ids' to be shown; got keys {sorted(tokens)}."
            )
        mask = tokens.get("padding_mask")
        tokens = tokens["token_ids"]
    if not isinstance(tokens, Sequence | np.ndarray) and not hasattr(tokens, "numpy"):
        raise TypeError(f"{_TOKENS_EXPECTED}; got {type(tokens).__name__}.")
    ids = np.asarray(tokens)
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"Token ids must be integers; got dtype {ids.dtype}.")
    batch = ids.ndim == 2
    if ids.ndim not in (1, 2):
        raise ValueError(f"Token ids must be (T,) or (N, T); got shape {ids.shape}.")
    if batch:
        if not 0 <= index < len(ids):
            raise ValueError(f"index={index} is out of range for {len(ids)} sentences.")
        ids = ids[index]
        mask = None if mask is None else np.asarray(mask)[index]
    if mask is not None:
        mask = np.asarray(mask).reshape(-1).astype(bool)
        if mask.shape != ids.shape:
            raise ValueError(f"The padding mask has {mask.size} values for {ids.size} token ids.")
    return word_pieces(ids, tokenizer=tokenizer, vocabulary=vocabulary), mask, batch


def _sample_values(maps: Any, index: int, batch: bool) -> np.ndarray:
    """One sample's attributions, `(T, L)`."""
    values = np.asarray(getattr(maps, "maps", maps), dtype=np.float64)
    if batch:
        if values.ndim not in (2, 3):
            raise ValueError(
                f"maps of a batch must be (N, T) or (N, T, L); got shape {values.shape}."
            )
        if not 0 <= index < len(values):
            raise ValueError(f"index={index} is out of range for {len(values)} maps.")
        values = values[index]
    elif values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"maps of one sentence must be (T,) or (T, L); got shape {values.shape}.")
    return values


def _continuation_pieces(
    continuation: Any, maps: Any, index: int, tokenizer: Any, vocabulary: Any
) -> list[str] | None:
    """The continuation's tokens as strings (ids decoded), or None."""
    if continuation is None or continuation is False:
        return None
    if continuation is True:
        targets = getattr(maps, "targets", None)
        if targets is None:
            raise ValueError(
                "continuation=True takes the continuation from an Explanation's targets; "
                "pass the continuation's ids (or strings) with plain maps."
            )
        continuation = np.asarray(targets)[index]
    if _is_text(continuation):
        return [str(token) for token in continuation]
    ids = np.asarray(continuation)
    if ids.ndim == 2:
        ids = ids[index]
    return word_pieces(ids, tokenizer=tokenizer, vocabulary=vocabulary)


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
    tokens: Any,
    maps: Any,
    *,
    index: int = 0,
    target: int = 0,
    kind: str = "html",
    cmap: Any = None,
    title: str | None = None,
    width: float = 8.0,
    tokenizer: Any = None,
    vocabulary: Any = None,
    merge: bool | str = False,
    continuation: Any = None,
) -> TextHTML | Figure:
    """Show a sentence's tokens coloured by their attributions.

    The colour scale is centred on zero for signed attributions (a
    diverging colormap, default "RdBu_r": red raises the score, blue lowers
    it) and starts at zero for non-negative ones (a sequential colormap,
    default "Reds"); the strongest token gets the full colour.

    Token ids (an array, or the inputs dict of a keras-hub model) are turned
    into word pieces by `tokenizer=` or `vocabulary=`; padding (the dict's
    `padding_mask`) is left out. `merge=` joins word pieces into words and
    sums their attributions. For a language model, `continuation=` shows the
    prompt followed by the continuation; with one map per continuation token
    (`targets.Continuation(..., per_token=True)`) it shows the prompt x
    continuation matrix as a heat map, a row per prompt word and a column per
    continuation token.

    Args:
        tokens: the sentence's tokens as strings, or a list of such lists
            (a batch; `index` picks the sentence); or token ids `(T,)` or
            `(N, T)`, or a dict with "token_ids" (and "padding_mask"), with
            `tokenizer` or `vocabulary`.
        maps: the attributions: `(T,)` or `(T, L)` for one sentence,
            `(N, T)` or `(N, T, L)` for a batch; an `Explanation` works too
            (its maps are `(N, T, L)` for a text model).
        index: which sentence of a batch to show (default 0).
        target: which of the L maps to show (default 0; not used for a
            continuation's matrix, which shows them all).
        kind: "html" (default): a `TextHTML` that notebooks display, with
            the tokens escaped; "figure": a matplotlib `Figure` (to save as
            PNG), drawn with the Agg canvas.
        cmap: a matplotlib colormap or its name; default by the sign of the
            attributions as above.
        title: a title above the tokens (the figure's, or a heading line).
        width: the figure's width in inches (default 8.0); tokens wrap onto
            new lines to fit.
        tokenizer: a keras-hub tokenizer, to turn ids into word pieces.
        vocabulary: a list of tokens (index = id) or a dict `{token: id}`,
            in place of a tokenizer.
        merge: False (default): one box per token; True: merge word pieces
            into words, the scheme told from the pieces' marks ("##",
            "▁" or "Ġ"); or "wordpiece", "sentencepiece" or "bpe".
        continuation: a language model's continuation after the prompt: its
            ids (decoded as `tokens`) or strings, `(T_cont,)` or `(N,
            T_cont)`; or True to take it from an `Explanation`'s targets
            (`Continuation(..., per_token=True)`).

    Returns:
        A `TextHTML` (kind "html") or a matplotlib `Figure` (kind "figure").

    Raises:
        ValueError: tokens and attributions of different lengths, maps of a
            wrong shape, `index` or `target` out of range, an id outside the
            vocabulary, an unknown `kind`, merge scheme or colormap.
        TypeError: `tokens` is not strings or integer ids, or ids come
            without a tokenizer or a vocabulary.
        ImportError: matplotlib is not installed.

    Example:
        >>> expl = ke.IntegratedGradients(model, postprocess=None).explain(inputs, 1)
        >>> ke.plot.text(inputs, expl, tokenizer=tokenizer, merge=True)  # in a notebook
        >>> per_token = ke.targets.Continuation(answer_ids, per_token=True)
        >>> expl = ke.Saliency(causal_lm).explain(prompts, per_token)
        >>> ke.plot.text(prompts, expl, tokenizer=tokenizer, continuation=True,
        ...              kind="figure").savefig("continuation.png")
    """
    if kind not in ("html", "figure"):
        raise ValueError(f'kind must be "html" or "figure"; got {kind!r}.')
    pieces, mask, batch = _sample_tokens(tokens, index, tokenizer, vocabulary)
    values = _sample_values(maps, index, batch)
    if len(pieces) != len(values):
        raise ValueError(f"Got {len(pieces)} tokens for {len(values)} attributions.")
    if mask is not None:
        pieces = [piece for piece, real in zip(pieces, mask, strict=True) if real]
        values = values[mask]
    following = _continuation_pieces(continuation, maps, index, tokenizer, vocabulary)
    if merge is not False:
        pieces, values, _ = merge_word_pieces(pieces, values, merge)
        if following is not None:  # the marks that begin a word go; a column stays a token
            following = [token.lstrip("▁Ġ") or token for token in following]
    if following is not None and values.shape[1] > 1:
        if len(following) != values.shape[1]:
            raise ValueError(
                f"The continuation has {len(following)} tokens for {values.shape[1]} maps "
                "per prompt token; per-token maps come from Continuation(..., per_token=True)."
            )
        return _matrix(pieces, following, values, kind, cmap, title, width)
    if not 0 <= target < values.shape[1]:
        raise ValueError(f"target={target} is out of range for {values.shape[1]} maps.")
    values = values[:, target]
    colors, _ = _token_colors(values, cmap)
    if kind == "figure":
        return _text_figure(pieces, colors, title, width, following or [])
    spans = [
        f'<span style="background-color: {_hex(color)}; color: {_ink(color)}; '
        f'padding: 1px 3px; margin: 1px; border-radius: 3px; display: inline-block" '
        f'title="{value:.4g}">{html.escape(token)}</span>'
        for token, value, color in zip(pieces, values, colors, strict=True)
    ]
    spans += [
        '<span style="border: 1px dashed #888888; padding: 1px 3px; margin: 1px; '
        'border-radius: 3px; display: inline-block" title="continuation">'
        f"{html.escape(token)}</span>"
        for token in following or []
    ]
    heading = "" if title is None else f"<div><b>{html.escape(title)}</b></div>"
    style = "line-height: 1.8; font-family: monospace"
    return TextHTML(f'<div style="{style}">{heading}{" ".join(spans)}</div>')


def _matrix(
    prompt: list[str],
    following: list[str],
    values: np.ndarray,
    kind: str,
    cmap: Any,
    title: str | None,
    width: float,
) -> TextHTML | Figure:
    """The prompt x continuation heat map: a row per prompt token, a column per new token."""
    colors, signed = _token_colors(values.reshape(-1), cmap)
    colors = colors.reshape(*values.shape, -1)
    if kind == "figure":
        require("matplotlib")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        height = max(2.0, 0.3 * len(prompt) + 1.2 + (0.3 if title else 0.0))
        figure = Figure(figsize=(width, height))
        FigureCanvasAgg(figure)
        axis = figure.add_subplot(1, 1, 1)
        axis.imshow(colors, aspect="auto", interpolation="nearest")
        axis.set_yticks(range(len(prompt)), prompt, family="monospace")
        axis.set_xticks(range(len(following)), following, family="monospace", rotation=45)
        axis.xaxis.tick_top()
        axis.set_xlabel("continuation")
        axis.set_ylabel("prompt")
        scale = float(np.abs(values).max(initial=0.0))
        for row in range(values.shape[0]):
            for column in range(values.shape[1]):
                axis.text(
                    column,
                    row,
                    f"{values[row, column]:.2g}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=_ink(colors[row, column]),
                )
        legend = "signed (red raises, blue lowers)" if signed else "non-negative"
        axis.set_title(
            (title + "\n" if title else "") + f"{legend}; largest |value| {scale:.3g}",
            fontsize=9,
        )
        figure.tight_layout()
        return figure
    cell = "padding: 2px 6px; text-align: center; font-family: monospace"
    header = "".join(f'<th style="{cell}">{html.escape(token)}</th>' for token in following)
    rows = []
    for row, token in enumerate(prompt):
        cells = "".join(
            f'<td style="{cell}; background-color: {_hex(colors[row, column])}; '
            f'color: {_ink(colors[row, column])}" title="{values[row, column]:.4g}">'
            f"{values[row, column]:.2g}</td>"
            for column in range(values.shape[1])
        )
        rows.append(
            f'<tr><th style="{cell}; text-align: right">{html.escape(token)}</th>{cells}</tr>'
        )
    heading = "" if title is None else f"<div><b>{html.escape(title)}</b></div>"
    table = (
        '<table style="border-collapse: collapse">'
        f"<tr><th></th>{header}</tr>{''.join(rows)}</table>"
    )
    return TextHTML(f"<div>{heading}{table}</div>")


def _text_figure(
    tokens: list[str],
    colors: np.ndarray,
    title: str | None,
    width: float,
    following: list[str],
) -> Figure:
    """The tokens drawn as coloured boxes, wrapped into lines of `width` inches.

    A continuation's tokens follow in dashed, uncoloured boxes.
    """
    require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Lay the tokens out in character units: a monospace character is about
    # 0.6 of the font size wide.
    font_size = 12.0
    char_inches = 0.6 * font_size / 72.0
    per_line = max(int(width / char_inches), 1)
    shown = tokens + following
    lines: list[list[int]] = [[]]
    used = 0
    for position, token in enumerate(shown):
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
            token = shown[position]
            prompt = position < len(tokens)
            face = colors[position] if prompt else (1.0, 1.0, 1.0, 1.0)
            axis.text(
                column,
                top + row + 0.5,
                token,
                fontsize=font_size,
                family="monospace",
                va="center",
                color=_ink(np.asarray(face)),
                bbox={
                    "boxstyle": "round,pad=0.2",
                    "facecolor": face,
                    "edgecolor": "none" if prompt else "#888888",
                    "linestyle": "-" if prompt else "--",
                },
            )
            column += len(token) + 1
    return figure
