"""The HTML report of an `Evaluation`: table, curves, gallery and timings.

The page is one file with inline CSS and no script, so it opens offline and
with no network; its figures are PNG files (drawn with matplotlib) in a
folder beside it, referenced by relative paths.
"""

from __future__ import annotations

import html
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_explainable.metrics.curve import CurveResult
from keras_explainable.metrics.evaluation import bootstrap_interval
from keras_explainable.metrics.road import RoadResult

if TYPE_CHECKING:
    from keras_explainable.metrics.evaluation import Evaluation

__all__ = ["write_report"]

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em;
       padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: .35em .7em; border-bottom: 1px solid #e4e4e4; text-align: right; }
th:first-child, td:first-child, th[scope="row"], th.name { text-align: left; }
thead th { background: #f4f5f7; vertical-align: bottom; }
td.best { font-weight: 700; background: #e6f4ea; }
td.best::after { content: " \\2605"; color: #188038; }
.ci { color: #666; font-size: .85em; white-space: nowrap; }
.direction { color: #555; font-weight: 400; font-size: .85em; }
.curves img { max-width: 32em; margin: .5em 1em .5em 0; }
table.gallery td, table.gallery th { text-align: center; border: none; }
table.gallery img { width: 8em; image-rendering: pixelated; }
.note { color: #555; font-size: .9em; }
"""


def write_report(evaluation: Evaluation, path: Path, *, title: str) -> Path:
    """Write `evaluation` as an HTML page at `path`, figures in `<stem>_files/`.

    Args:
        evaluation: what `evaluate` returned.
        path: the HTML file.
        title: the page's title.

    Returns:
        `path`.

    Raises:
        ImportError: matplotlib is not installed (the `viz` extra).
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
    except ImportError as error:  # pragma: no cover - the viz extra
        raise ImportError(
            "to_html draws its figures with matplotlib: pip install 'keras-explainable[viz]'."
        ) from error
    path = Path(path)
    figures = path.parent / f"{path.stem}_files"
    if figures.exists():
        shutil.rmtree(figures)
    figures.mkdir(parents=True)
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        _intro(evaluation),
        "<h2>Methods by metrics</h2>",
        _table(evaluation),
        *_curves(evaluation, figures),
        *_gallery(evaluation, figures),
        "<h2>Time per image</h2>",
        _timings(evaluation),
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


def _number(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _intro(evaluation: Evaluation) -> str:
    counts = {len(r.values) for cells in evaluation.results.values() for r in cells.values()}
    samples = ", ".join(str(c) for c in sorted(counts)) or "0"
    return (
        f'<p class="note">{len(evaluation.methods)} methods scored on {samples} samples. '
        "Each cell: the mean over samples and its 95% percentile-bootstrap interval "
        "(1000 resamples). &#8593; higher is better, &#8595; lower is better; the best "
        "value of each column is marked &#9733;. Methods are ranked by their mean rank "
        "over the columns that have a better direction.</p>"
    )


def _table(evaluation: Evaluation) -> str:
    ranks = evaluation.column_ranks()
    arrows = {True: "&#8593; higher", False: "&#8595; lower", None: "no direction"}
    head = "".join(
        f'<th scope="col" data-metric="{html.escape(column)}">{html.escape(column)}<br>'
        f'<span class="direction">{arrows[higher]}</span></th>'
        for column, higher in evaluation.higher_is_better.items()
    )
    lines = [
        '<table class="results" id="results">',
        f'<thead><tr><th scope="col">rank</th><th scope="col" class="name">method</th>{head}'
        '<th scope="col">ms / image</th></tr></thead>',
        "<tbody>",
    ]
    for place, method in enumerate(evaluation.ranking(), start=1):
        cells = []
        for column in evaluation.metrics:
            result = evaluation.results[method][column]
            mean = result.mean
            low, high = bootstrap_interval(result.values)
            best = ' class="best"' if ranks[column].get(method) == 1 else ""
            cells.append(
                f'<td{best} data-metric="{html.escape(column)}" '
                f'data-value="{mean!r}">{_number(mean)}<br>'
                f'<span class="ci">[{_number(low)}, {_number(high)}]</span></td>'
            )
        seconds = evaluation.seconds.get(method, math.nan)
        lines.append(
            f'<tr data-method="{html.escape(method)}"><td>{place}</td>'
            f'<th scope="row">{html.escape(method)}</th>{"".join(cells)}'
            f'<td data-seconds="{seconds!r}">{_number(seconds * 1000, 2)}</td></tr>'
        )
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


def _curve_series(result: Any) -> list[tuple[str, np.ndarray, np.ndarray, str]]:
    """`(label suffix, x, mean curve, line style)` of a result with curves."""
    if isinstance(result, CurveResult):
        return [("", np.asarray(result.fractions), np.nanmean(result.curves, axis=0), "-")]
    if isinstance(result, RoadResult):
        x = np.asarray(result.percentages) / 100.0
        series = []
        if result.morf is not None:
            series.append((" MoRF", x, np.nanmean(result.morf, axis=0), "-"))
        if result.lerf is not None:
            series.append((" LeRF", x, np.nanmean(result.lerf, axis=0), "--"))
        return series
    return []


def _curves(evaluation: Evaluation, figures: Path) -> list[str]:
    import matplotlib.pyplot as plt

    images = []
    for index, column in enumerate(evaluation.metrics):
        per_method = {m: _curve_series(evaluation.results[m][column]) for m in evaluation.methods}
        if not any(per_method.values()):
            continue
        figure, axes = plt.subplots(figsize=(6, 3.6), dpi=100)
        for number, (method, series) in enumerate(per_method.items()):
            for suffix, x, y, style in series:
                axes.plot(x, y, style, color=f"C{number % 10}", label=f"{method}{suffix}")
        axes.set_xlabel("fraction of pixels changed")
        axes.set_ylabel("mean score")
        axes.set_title(column)
        axes.legend(fontsize="small")
        figure.tight_layout()
        name = f"curve_{index}.png"
        figure.savefig(figures / name)
        plt.close(figure)
        images.append(f'<img src="{figures.name}/{name}" alt="mean {html.escape(column)} curves">')
    if not images:
        return []
    return [
        "<h2>Curves</h2>",
        '<p class="note">The mean score over samples as pixels are removed (Deletion, '
        "ROAD MoRF), added back (Insertion) or removed least relevant first (ROAD "
        "LeRF).</p>",
        f'<div class="curves">{"".join(images)}</div>',
    ]


def _gallery(evaluation: Evaluation, figures: Path) -> list[str]:
    if evaluation.images is None or not evaluation.maps:
        return []
    from matplotlib import image as mpl_image

    from keras_explainable.plot import overlay
    from keras_explainable.plot.common import as_rgb_float

    inputs = np.asarray(evaluation.images)
    if inputs.ndim != 4 or inputs.shape[-1] not in (1, 3, 4):
        return []  # not images (N, H, W, C): no gallery
    shown = min(len(inputs), *(len(m) for m in evaluation.maps.values()))
    if shown == 0:
        return []
    rows = []
    header = "".join(f"<th>{html.escape(m)}</th>" for m in evaluation.maps)
    rows.append(f"<tr><th>input</th>{header}</tr>")
    for row in range(shown):
        name = f"image_{row}.png"
        mpl_image.imsave(figures / name, as_rgb_float(inputs[row : row + 1])[0])
        cells = [f'<td><img src="{figures.name}/{name}" alt="input {row}"></td>']
        for column, (method, maps) in enumerate(evaluation.maps.items()):
            name = f"map_{row}_{column}.png"
            mpl_image.imsave(figures / name, overlay(inputs[row], maps[row]))
            cells.append(
                f'<td><img src="{figures.name}/{name}" alt="{html.escape(method)} on input '
                f'{row}"></td>'
            )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return [
        "<h2>Gallery</h2>",
        '<p class="note">The same inputs under every method (the first explained '
        "target's map over the input).</p>",
        '<table class="gallery">' + "\n".join(rows) + "</table>",
    ]


def _timings(evaluation: Evaluation) -> str:
    rows = "".join(
        f'<tr><th scope="row">{html.escape(m)}</th>'
        f"<td>{_number(evaluation.seconds.get(m, math.nan) * 1000, 2)}</td></tr>"
        for m in evaluation.methods
    )
    return (
        '<p class="note">Wall time of each method\'s one <code>explain</code> call over '
        "all samples, divided by their number (the first call, so it includes "
        "tracing and compiling the method's steps).</p>"
        f'<table class="timings"><thead><tr><th>method</th><th>ms / image</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )
