"""Score several explainers with several metrics in one call."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_explainable.base import Explainer
from keras_explainable.engine import progress_bar
from keras_explainable.metrics.average_gain import AverageGain
from keras_explainable.metrics.base import Metric, MetricResult
from keras_explainable.metrics.cells import CellStore, data_digest
from keras_explainable.metrics.complexity import Complexity
from keras_explainable.metrics.deletion import Deletion
from keras_explainable.metrics.energy_pointing_game import EnergyPointingGame
from keras_explainable.metrics.evaluation import Evaluation
from keras_explainable.metrics.faithfulness_correlation import FaithfulnessCorrelation
from keras_explainable.metrics.infidelity import Infidelity
from keras_explainable.metrics.insertion import Insertion
from keras_explainable.metrics.mu_fidelity import MuFidelity
from keras_explainable.metrics.pointing_game import PointingGame
from keras_explainable.metrics.random_logit import RandomLogit
from keras_explainable.metrics.relevance_accuracy import (
    RelevanceMassAccuracy,
    RelevanceRankAccuracy,
)
from keras_explainable.metrics.road import SymmetricRelevanceGain
from keras_explainable.metrics.sensitivity import MaxSensitivity
from keras_explainable.metrics.sparseness import Sparseness
from keras_explainable.validators import check_verbose

__all__ = ["default_metrics", "evaluate", "format_table", "score_explanation"]


def default_metrics(
    *, localization: bool = True, steps: int = 100, extended: bool = False
) -> dict[str, Metric]:
    """Return the metrics `evaluate` uses by default, by column name.

    Args:
        localization: include the localisation metrics (they need ground truth).
        steps: steps of the Deletion and Insertion curves (default 100).
        extended: add the metrics researchers compare methods with, at their
            default settings (default False): 'average_gain',
            'faithfulness_correlation', 'mu_fidelity', 'infidelity',
            'symmetric_relevance_gain' (ROAD), 'max_sensitivity',
            'random_logit', 'sparseness', 'complexity' and, with
            `localization`, 'relevance_mass_accuracy' and
            'relevance_rank_accuracy'. They cost hundreds of forward passes
            per sample (and `MaxSensitivity` ten explanations): see each
            metric's cost on the Evaluating page.

    Returns:
        `{'deletion': Deletion, 'insertion': Insertion, 'pointing_game':
        PointingGame, 'energy_pointing_game': EnergyPointingGame}` (the last
        two only with `localization`), and the extended metrics when asked,
        all silent. Each metric's `higher_is_better` says how to read its
        column.

    Raises:
        ValueError: `steps` is not a positive integer.

    Example:
        >>> metrics = ke.metrics.default_metrics(localization=False, steps=50)
        >>> rows = ke.metrics.evaluate(explainers, x, y, metrics=metrics)
    """
    metrics: dict[str, Metric] = {
        "deletion": Deletion(steps=steps, verbose=0),
        "insertion": Insertion(steps=steps, verbose=0),
    }
    if localization:
        metrics["pointing_game"] = PointingGame(verbose=0)
        metrics["energy_pointing_game"] = EnergyPointingGame(verbose=0)
    if extended:
        metrics.update(
            average_gain=AverageGain(verbose=0),
            faithfulness_correlation=FaithfulnessCorrelation(verbose=0),
            mu_fidelity=MuFidelity(verbose=0),
            infidelity=Infidelity(verbose=0),
            symmetric_relevance_gain=SymmetricRelevanceGain(verbose=0),
            max_sensitivity=MaxSensitivity(verbose=0),
            random_logit=RandomLogit(verbose=0),
            sparseness=Sparseness(verbose=0),
            complexity=Complexity(verbose=0),
        )
        if localization:
            metrics["relevance_mass_accuracy"] = RelevanceMassAccuracy(verbose=0)
            metrics["relevance_rank_accuracy"] = RelevanceRankAccuracy(verbose=0)
    return metrics


def evaluate(
    explainers: Mapping[str, Explainer],
    x: Any,
    y: Any = None,
    *,
    masks: Any = None,
    boxes: Any = None,
    metrics: Mapping[str, Metric] | None = None,
    cache: str | Path | None = None,
    gallery: int = 4,
    verbose: str | int = 0,
) -> Evaluation:
    """Score each explainer with each metric: one row per explainer.

    Each explainer explains `x` once; every metric then scores that
    `Explanation` (model metrics with the explainer's own model and output),
    except the metrics that re-run the explainer (`MaxSensitivity`,
    `AvgSensitivity`, `RandomLogit`), which are given the explainer.
    By default the metrics are Deletion AUC (lower is better), Insertion AUC
    (higher is better) and, given `masks` or `boxes`, the pointing game and
    the energy-based pointing game (higher is better); see `default_metrics`.

    With `cache`, each finished (method, metric) cell is written to its own
    file in that folder (atomically: a temporary file, then `os.replace`), and
    a later call with the same inputs, targets, ground truth, model weights,
    method and metric settings reuses it instead of computing it again, so a
    run stopped part-way loses nothing it finished.

    Args:
        explainers: explainers by display name, e.g. `{'gradcam': GradCAM(m)}`.
        x: the inputs, as for `Explainer.explain` (an array with `cache`).
        y: the targets, as for `Explainer.explain`.
        masks: bool `(N, *spatial)` ground truth for the localisation metrics.
        boxes: `(N, 4)` boxes `(y_min, x_min, y_max, x_max)`, max exclusive,
            instead of `masks`.
        metrics: metrics by column name; default `default_metrics(...)`.
        cache: a folder for the finished cells, to resume from (default None:
            nothing written).
        gallery: how many of the first inputs keep each method's maps, for
            the report's gallery (default 4; 0 for none; arrays only).
        verbose: 'auto' (a progress bar over the cells on a terminal), 0
            (silent, default) or 1 (a bar).

    Returns:
        An `Evaluation`: the list of rows, one per explainer in order,
        `{'method': name, <metric name>: mean value, ...}` (`format_table`
        prints them), which also holds each cell's per-sample `results`, the
        `seconds` per image of each method and the gallery's maps, and writes
        them with `to_html`, `to_csv` and `to_npz`.

    Raises:
        TypeError: an explainer or a metric of the wrong type, or `cache`
            with inputs that are not an array.
        ValueError: `gallery` is negative.
        InputError, TargetError: as the explainers and metrics raise them.

    Example:
        >>> from keras_explainable import demo
        >>> data = demo.make_shapes(32, seed=1)
        >>> model = demo.load_demo_model()
        >>> evaluation = ke.metrics.evaluate(
        ...     {"gradcam": ke.GradCAM(model), "saliency": ke.Saliency(model)},
        ...     data.images, data.labels, masks=data.masks, cache="report/cells")
        >>> print(ke.metrics.format_table(evaluation))
        >>> evaluation.to_html("report/index.html")
    """
    truth = masks is not None or boxes is not None
    if metrics is None:
        metrics = default_metrics(localization=truth)
    for name, metric in metrics.items():
        if not isinstance(metric, Metric):
            raise TypeError(f"metrics[{name!r}] must be a Metric; got {type(metric).__name__}.")
    for name, explainer in explainers.items():
        if not isinstance(explainer, Explainer):
            raise TypeError(
                f"explainers[{name!r}] must be an Explainer; got {type(explainer).__name__}."
            )
    if isinstance(gallery, bool) or not isinstance(gallery, int) or gallery < 0:
        raise ValueError(f"gallery must be an integer >= 0; got {gallery!r}.")
    check_verbose(None, None, verbose)
    arrays = _is_array(x)
    store = None
    if cache is not None:
        if not arrays or not (y is None or isinstance(y, int) or _is_array(y)):
            raise TypeError(
                "cache= identifies the data by its values: give x (and y) as arrays, "
                f"not {type(x).__name__}."
            )
        store = CellStore(cache, data_digest(x, y, masks, boxes))
    images = np.asarray(x[:gallery]) if arrays and gallery else None
    progress = progress_bar(verbose, len(explainers) * len(metrics), unit="cell")
    rows, results, seconds, maps = [], {}, {}, {}
    for name, explainer in explainers.items():
        key = store.explanation_key(name, explainer) if store is not None else ""
        done = _finished_cells(store, name, key, metrics)
        stored = store.load_explanation(name, key) if store is not None else None
        explanation, cells = None, {}
        if stored is None or len(done) < len(metrics):
            start = time.perf_counter()
            explanation = explainer.explain(x, y)
            elapsed = (time.perf_counter() - start) / max(len(explanation.maps), 1)
            gallery_maps = np.asarray(explanation.maps[:gallery])
            if store is not None and stored is None:
                store.save_explanation(name, key, gallery_maps, elapsed)
        if stored is not None:  # the first run's maps and time stay
            gallery_maps, elapsed = stored
        for column, metric in metrics.items():
            if column in done:
                cells[column] = done[column]
            else:
                cells[column] = _score_one(
                    metric, explanation, x, y, explainer=explainer, masks=masks, boxes=boxes
                )
                if store is not None:
                    store.save_cell(name, column, store.cell_key(key, metric), cells[column])
            if progress is not None:
                progress.add(1)
        results[name], seconds[name] = cells, elapsed
        if images is not None:
            maps[name] = gallery_maps
        rows.append({"method": name, **{c: r.mean for c, r in cells.items()}})
    return Evaluation(
        rows,
        results=results,
        seconds=seconds,
        higher_is_better={c: m.higher_is_better for c, m in metrics.items()},
        images=images,
        maps=maps,
    )


def _finished_cells(
    store: CellStore | None, method: str, key: str, metrics: Mapping[str, Metric]
) -> dict[str, MetricResult]:
    """The cells of `method` a cache holds, by metric column (none without a cache)."""
    if store is None:
        return {}
    found = {c: store.load_cell(method, c, store.cell_key(key, m)) for c, m in metrics.items()}
    return {column: result for column, result in found.items() if result is not None}


def _is_array(value: Any) -> bool:
    return isinstance(value, (np.ndarray, tf.Tensor)) or hasattr(value, "__array__")


def _score_one(
    metric: Metric,
    explanation: Any,
    x: Any,
    y: Any,
    *,
    explainer: Explainer,
    masks: Any,
    boxes: Any,
) -> MetricResult:
    """Score one explanation with one metric (see `score_explanation`)."""
    if metric.needs_explainer:
        return metric(explainer, x, y)
    options: dict[str, Any] = {}
    if metric.needs_model:
        options.update(model=explainer.model, output=explainer.output)
        if callable(y):
            options["y"] = y
    if metric.needs_masks:
        options.update(masks=masks, boxes=boxes)
    inputs = x if metric.needs_inputs or metric.needs_model else None
    return metric(explanation, inputs, **options)


def score_explanation(
    explanation: Any,
    x: Any,
    y: Any = None,
    *,
    explainer: Explainer,
    masks: Any = None,
    boxes: Any = None,
    metrics: Mapping[str, Metric],
) -> dict[str, float]:
    """Score one explanation with several metrics: `{metric name: mean value}`.

    Args:
        explanation: the `Explanation` of `x` made by `explainer`.
        x: the explained inputs.
        y: the targets given to `explain` (only a callable is passed on: the
            metrics score the units the explanation explained).
        explainer: the explainer that made it (its model and output are
            used; metrics that re-run the explainer are given it, with `x`
            and `y`).
        masks: ground-truth masks for the localisation metrics.
        boxes: ground-truth boxes instead of `masks`.
        metrics: metrics by name.

    Returns:
        The mean value of each metric, by name.

    Raises:
        InputError, TargetError, TypeError: as the metrics raise them.

    Example:
        >>> explainer = ke.GradCAM(model)
        >>> expl = explainer.explain(data.images, data.labels)
        >>> ke.metrics.score_explanation(
        ...     expl, data.images, explainer=explainer, masks=data.masks,
        ...     metrics=ke.metrics.default_metrics())
        {'deletion': 0.23, 'insertion': 0.99, 'pointing_game': 1.0, ...}
    """
    return {
        column: _score_one(
            metric, explanation, x, y, explainer=explainer, masks=masks, boxes=boxes
        ).mean
        for column, metric in metrics.items()
    }


def format_table(rows: list[dict[str, Any]], digits: int = 3) -> str:
    """Format `evaluate` rows as a plain-text table, one line per method.

    Args:
        rows: the rows `evaluate` returns.
        digits: decimals shown for numbers (default 3).

    Returns:
        The table, with a header line; no trailing newline.

    Raises:
        KeyError: a row lacks a column of the first row.

    Example:
        >>> print(ke.metrics.format_table(rows))
        method    deletion  insertion  pointing_game  energy_pointing_game
        gradcam      0.286      1.000          1.000                 0.591
        saliency     0.289      1.000          0.625                 0.566
    """
    if not rows:
        return ""
    columns = list(rows[0])
    cells = [
        [f"{row[c]:.{digits}f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        for row in rows
    ]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(columns, widths, strict=True))
        )
    ]
    for line in cells:
        lines.append(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    return "\n".join(lines)
