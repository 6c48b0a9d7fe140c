"""`MetricResult`: a metric's values, one per sample."""

from __future__ import annotations

import warnings

import attrs
import numpy as np

__all__ = ["MetricResult"]


@attrs.frozen(eq=False, repr=False)
class MetricResult:
    """The values of a metric, one per sample.

    Attributes:
        metric: the metric's name (its class name).
        values: float64 array `(N,)`: the metric's value for each sample.
        perturbed: for a metric that perturbs its inputs, called with
            `return_perturbed=k`: float32 `(k, count, *input_shape)`, every
            perturbed input of the first `k` samples, in the metric's order
            of perturbations; otherwise None.

    Example:
        >>> result = ke.metrics.Deletion()(ke.GradCAM(model), x, y)
        >>> result.values.shape, result.mean   # ((N,), 0.12)
    """

    metric: str
    values: np.ndarray
    perturbed: np.ndarray | None = attrs.field(default=None, kw_only=True)

    @property
    def mean(self) -> float:
        """The mean over samples, leaving out undefined (NaN) values."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(np.nanmean(self.values))

    def __float__(self) -> float:
        """Return the mean, so `float(result)` is the summary."""
        return self.mean

    def __len__(self) -> int:
        """Return the number of samples."""
        return len(self.values)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(metric={self.metric!r}, mean={self.mean:.4g}, n={len(self)})"
