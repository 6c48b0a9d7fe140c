"""Score several explainers with several metrics in one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keras_explainable.base import Explainer
from keras_explainable.metrics.average_gain import AverageGain
from keras_explainable.metrics.base import Metric
from keras_explainable.metrics.complexity import Complexity
from keras_explainable.metrics.deletion import Deletion
from keras_explainable.metrics.energy_pointing_game import EnergyPointingGame
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

__all__ = ["default_metrics", "evaluate", "format_table"]


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
) -> list[dict[str, Any]]:
    """Score each explainer with each metric: one row per explainer.

    Each explainer explains `x` once; every metric then scores that
    `Explanation` (model metrics with the explainer's own model and output),
    except the metrics that re-run the explainer (`MaxSensitivity`,
    `AvgSensitivity`, `RandomLogit`), which are given the explainer.
    By default the metrics are Deletion AUC (lower is better), Insertion AUC
    (higher is better) and, given `masks` or `boxes`, the pointing game and
    the energy-based pointing game (higher is better); see `default_metrics`.

    Args:
        explainers: explainers by display name, e.g. `{'gradcam': GradCAM(m)}`.
        x: the inputs, as for `Explainer.explain`.
        y: the targets, as for `Explainer.explain`.
        masks: bool `(N, *spatial)` ground truth for the localisation metrics.
        boxes: `(N, 4)` boxes `(y_min, x_min, y_max, x_max)`, max exclusive,
            instead of `masks`.
        metrics: metrics by column name; default `default_metrics(...)`.

    Returns:
        A list of rows, one per explainer in order: `{'method': name,
        <metric name>: mean value, ...}`. `format_table(rows)` prints them.

    Raises:
        TypeError: an explainer or a metric of the wrong type.
        InputError, TargetError: as the explainers and metrics raise them.

    Example:
        >>> from keras_explainable import demo
        >>> data = demo.make_shapes(32, seed=1)
        >>> model = demo.load_demo_model()
        >>> rows = ke.metrics.evaluate(
        ...     {"gradcam": ke.GradCAM(model), "saliency": ke.Saliency(model)},
        ...     data.images, data.labels, masks=data.masks)
        >>> print(ke.metrics.format_table(rows))
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
    rows = []
    for name, explainer in explainers.items():
        explanation = explainer.explain(x, y)
        row = score_explanation(
            explanation, x, y, explainer=explainer, masks=masks, boxes=boxes, metrics=metrics
        )
        rows.append({"method": name, **row})
    return rows


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
    row: dict[str, float] = {}
    for column, metric in metrics.items():
        if metric.needs_explainer:
            row[column] = metric(explainer, x, y).mean
            continue
        options: dict[str, Any] = {}
        if metric.needs_model:
            options.update(model=explainer.model, output=explainer.output)
            if callable(y):
                options["y"] = y
        if metric.needs_masks:
            options.update(masks=masks, boxes=boxes)
        inputs = x if metric.needs_inputs or metric.needs_model else None
        row[column] = metric(explanation, inputs, **options).mean
    return row


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
