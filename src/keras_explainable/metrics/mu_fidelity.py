"""MuFidelity: attribution sums against score drops, cells of a grid removed.

Bhatt, Weller & Moura (2020), "Evaluating and Aggregating Feature-based Model
Explanations" (mu-fidelity), as implemented by Xplique (Fel et al., 2022).
https://arxiv.org/abs/2005.00631
"""

from __future__ import annotations

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.errors import InputError
from keras_explainable.metrics.removal import (
    RemovalCorrelation,
    keyed_uniform,
    pearson,
    spearman_ranks,
)
from keras_explainable.validators import open_fraction, positive_int

__all__ = ["MuFidelity"]


@attrs.define(eq=False)
class MuFidelity(RemovalCorrelation):
    """MuFidelity: Faithfulness Correlation over cells of a grid, rank-correlated.

    The image is cut into a `grid_size x grid_size` grid of cells. In each
    of `samples` runs every cell is removed (set to the baseline) with
    probability `subset_percent`. Each sample's value is the Spearman rank
    correlation, over the runs, between the map's sum over the removed
    positions and the explained score's drop
    `f(x) - f(x with the cells at the baseline)`. 1 for a map whose sums
    rank the drops exactly, -1 for the reverse. **Higher is better.** A
    sample whose sums or drops do not vary has no correlation: NaN, left
    out of the mean.

    Cell `(i, j)` covers rows `floor(r * grid_size / H) == i` and columns
    likewise (2-D inputs). Removals are a function of the seed, the run's
    number and the sample's values: the same in any batch.

    Conventions: Xplique's defaults (`xplique.metrics.MuFidelity`: a 9 x 9
    grid, 20% of the cells, 200 samples, baseline 0); Xplique removes each
    cell with probability 0.2, as here, resizes the grid with nearest
    neighbours (cells of equal size up to one pixel, as here), scores the
    model's outputs as they are (logits here by default: pass
    `use_probabilities=True` for a model whose outputs are probabilities)
    and correlates with Pearson unless told otherwise; this metric uses
    Spearman, as the benchmark it is compared with (`correlation='pearson'`
    gives Xplique's). An explainer's default `postprocess='auto'` takes
    absolute values and rescales; pass `postprocess=None` for signed maps.

    Args:
        grid_size: cells per side (default 9).
        subset_percent: the probability that a run removes a cell (default 0.2).
        samples: runs per sample (default 200).
        correlation: 'spearman' (default) or 'pearson'.
        baseline: what removed cells become: 'zeros' (default), 'blur',
            'mean', a number, an array broadcastable to one input, or a
            perturbation function `inputs -> replacements` of the inputs'
            shape (called in the compiled step).
        blur_sigma: the standard deviation of 'blur' in pixels (default 5.0).
        seed: the integer seed of the removals (default 0).
        step_batch_size: runs per forward pass (default 16).
        use_probabilities: score logits (default False) or probabilities.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `CorrelationResult`: per-sample correlations,
    their `mean`, and the `sums` and `drops` `(N, samples)`.

    Raises:
        ValueError, TypeError: an option is invalid (at construction).
        InputError: (from a call) inputs that are not 2-D images, or smaller
            than the grid.

    Example:
        >>> ke.metrics.MuFidelity(samples=100)(ke.Saliency(model), images, labels).mean
        0.22

    References:
        Bhatt, Weller & Moura (2020), "Evaluating and Aggregating
        Feature-based Model Explanations". <https://arxiv.org/abs/2005.00631>;
        Fel, Hervier, Vigouroux, Poche, Plakoo, Cadene, Chalvidal, Colin,
        Boissin, Béthune, Picard, Nicodeme, Gardes, Flandin & Serre (2022),
        "Xplique: A Deep Learning Explainability Toolbox".
        <https://arxiv.org/abs/2206.04394>
    """

    grid_size: int = attrs.field(default=9, kw_only=True, validator=positive_int)
    subset_percent: float = attrs.field(default=0.2, kw_only=True, validator=open_fraction)
    samples: int = attrs.field(default=200, kw_only=True, validator=positive_int)
    correlation: str = attrs.field(
        default="spearman", kw_only=True, validator=attrs.validators.in_(("spearman", "pearson"))
    )

    @property
    def _runs_count(self) -> int:
        return self.samples

    def _check_spatial(self, spatial: tuple[int | None, ...]) -> None:
        if len(spatial) != 2 or any(s is not None and s < self.grid_size for s in spatial):
            raise InputError(
                f"{self.name} removes cells of a {self.grid_size}x{self.grid_size} grid of "
                f"2-D images at least that large; got spatial size {spatial}."
            )

    def _removed(self, keys: tf.Tensor, spatial: tuple[int, ...]) -> tf.Tensor:
        height, width = spatial
        cells = self.grid_size * self.grid_size
        removed = tf.cast(keyed_uniform(keys, cells) < self.subset_percent, tf.float32)
        rows = np.arange(height) * self.grid_size // height
        cols = np.arange(width) * self.grid_size // width
        cell_of = tf.constant((rows[:, None] * self.grid_size + cols[None]).reshape(-1))
        positions = tf.gather(removed, cell_of, axis=-1)
        return tf.reshape(positions, tf.concat([tf.shape(keys), spatial], 0))

    def _correlation(self, sums: tf.Tensor, drops: tf.Tensor) -> tf.Tensor:
        if self.correlation == "pearson":
            return pearson(sums, drops)
        return pearson(spearman_ranks(sums), spearman_ranks(drops))
