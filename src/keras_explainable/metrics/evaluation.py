"""`Evaluation`: what `evaluate` returns, the rows with everything behind them."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keras_explainable.metrics.result import MetricResult

__all__ = ["Evaluation", "bootstrap_interval"]


def bootstrap_interval(
    values: np.ndarray, level: float = 0.95, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (NaNs left out).

    Efron & Tibshirani (1993), "An Introduction to the Bootstrap", ch. 13.

    Args:
        values: per-sample values `(N,)`.
        level: the interval's coverage (default 0.95).
        resamples: bootstrap resamples (default 1000).
        seed: the resampling seed (default 0), so reports are reproducible.

    Returns:
        `(low, high)`; `(nan, nan)` when no value is defined.

    Example:
        >>> result = ke.metrics.Deletion()(ke.GradCAM(model), x, y)
        >>> low, high = bootstrap_interval(result.values)
    """
    finite = np.asarray(values, np.float64)
    finite = finite[~np.isnan(finite)]
    if finite.size == 0:
        return math.nan, math.nan
    draws = np.random.default_rng(seed).integers(0, finite.size, (resamples, finite.size))
    means = finite[draws].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


class Evaluation(list):
    """The result of `evaluate`: its rows, with the per-sample results behind them.

    It is the list of rows `evaluate` always returned (`{'method': name,
    <metric>: mean, ...}` per explainer, so `format_table(evaluation)` and
    `evaluation[0]['deletion']` work as before), and it keeps what a report
    needs: every cell's `MetricResult` (per-sample values, curves), each
    method's time per image, and the first images with each method's maps.

    Attributes:
        results: `{method: {metric column: MetricResult}}`.
        seconds: `{method: seconds per image}` of the method's `explain` call.
        higher_is_better: `{metric column: True, False or None}`.
        images: the gallery's inputs `(k, *spatial, C)`, or None.
        maps: `{method: (k, *spatial, L) maps of the gallery's inputs}`.

    Example:
        >>> evaluation = ke.metrics.evaluate(explainers, x, y)
        >>> evaluation.to_html("report/index.html")   # table, curves, gallery
        >>> evaluation.to_csv("report/results.csv")
    """

    def __init__(
        self,
        rows: list[dict[str, Any]],
        *,
        results: Mapping[str, Mapping[str, MetricResult]],
        seconds: Mapping[str, float],
        higher_is_better: Mapping[str, bool | None],
        images: np.ndarray | None = None,
        maps: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__(rows)
        self.results = {method: dict(cells) for method, cells in results.items()}
        self.seconds = dict(seconds)
        self.higher_is_better = dict(higher_is_better)
        self.images = images
        self.maps = dict(maps or {})

    @property
    def methods(self) -> list[str]:
        """The methods, in the order they were given."""
        return [row["method"] for row in self]

    @property
    def metrics(self) -> list[str]:
        """The metric columns, in the order they were given."""
        return list(self.higher_is_better)

    def summary(self, level: float = 0.95) -> list[dict[str, Any]]:
        """One record per (method, metric): mean, bootstrap interval, direction.

        Args:
            level: the bootstrap interval's coverage (default 0.95).

        Returns:
            Records `{'method', 'metric', 'mean', 'ci_low', 'ci_high', 'n',
            'higher_is_better', 'rank', 'seconds_per_image'}` in table order,
            methods ranked best first (`ranking`); `rank` is the method's
            rank in that metric's column (1 = best; None when the metric has
            no better direction or no value).
        """
        ranks = self.column_ranks()
        records = []
        for method in self.ranking():
            for column in self.metrics:
                result = self.results[method][column]
                low, high = bootstrap_interval(result.values, level)
                records.append(
                    {
                        "method": method,
                        "metric": column,
                        "mean": result.mean,
                        "ci_low": low,
                        "ci_high": high,
                        "n": int(np.count_nonzero(~np.isnan(result.values))),
                        "higher_is_better": self.higher_is_better[column],
                        "rank": ranks[column].get(method),
                        "seconds_per_image": self.seconds.get(method, math.nan),
                    }
                )
        return records

    def column_ranks(self) -> dict[str, dict[str, int]]:
        """Each method's rank per metric column (1 = best), for directed metrics.

        Ties share the better rank; methods whose mean is undefined are left out.
        """
        ranks: dict[str, dict[str, int]] = {}
        for column, higher in self.higher_is_better.items():
            means = {m: self.results[m][column].mean for m in self.methods}
            defined = {m: v for m, v in means.items() if not math.isnan(v)}
            if higher is None:
                ranks[column] = {}
                continue
            sign = -1.0 if higher else 1.0
            ranks[column] = {
                m: 1 + sum(sign * other < sign * v for other in defined.values())
                for m, v in defined.items()
            }
        return ranks

    def ranking(self) -> list[str]:
        """The methods, best first: by mean rank over the directed metric columns.

        Ties (and methods without ranks) keep the order the methods were given.
        """
        ranks = self.column_ranks()

        def mean_rank(method: str) -> float:
            values = [r[method] for r in ranks.values() if method in r]
            return float(np.mean(values)) if values else math.inf

        return sorted(self.methods, key=mean_rank)

    def to_csv(self, path: str | Path, level: float = 0.95) -> None:
        """Write `summary(level)` as CSV, one line per (method, metric)."""
        records = self.summary(level)
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(records[0]) if records else ["method"])
            writer.writeheader()
            for record in records:
                writer.writerow({k: _csv_value(v) for k, v in record.items()})

    def to_npz(self, path: str | Path) -> None:
        """Write each cell's per-sample values as `'<method>/<metric>'` arrays."""
        arrays = {
            f"{method}/{column}": np.asarray(result.values)
            for method, cells in self.results.items()
            for column, result in cells.items()
        }
        with open(path, "wb") as file:
            np.savez(file, **arrays)

    def to_html(self, path: str | Path, *, title: str = "keras-explainable evaluation") -> Path:
        """Write a self-contained HTML report, with its figures next to it.

        The report holds the table of methods by metrics (mean, 95% bootstrap
        interval, the better direction, the best value of each column marked,
        methods ranked by mean rank), the Deletion / Insertion / ROAD curves
        of the metrics that have them, a gallery of the first images under
        every method, and each method's time per image. It opens offline: the
        CSS is inline and the figures are PNG files in `<name>_files/` beside
        it (that folder is replaced; needs matplotlib, the `viz` extra).

        Args:
            path: the HTML file to write (its folder is created).
            title: the page's title.

        Returns:
            The path written.

        Example:
            >>> ke.metrics.evaluate(explainers, x, y).to_html("report/index.html")
        """
        from keras_explainable.metrics.report import write_report

        return write_report(self, Path(path), title=title)


def _csv_value(value: Any) -> Any:
    # repr keeps every digit of a float, so the CSV reads back exactly.
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else value
