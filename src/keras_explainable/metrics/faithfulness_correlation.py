"""Faithfulness Correlation: attribution sums against score drops on random subsets.

Bhatt, Weller & Moura (2020), "Evaluating and Aggregating Feature-based Model
Explanations". https://arxiv.org/abs/2005.00631
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
)
from keras_explainable.validators import positive_int

__all__ = ["FaithfulnessCorrelation"]


@attrs.define(eq=False)
class FaithfulnessCorrelation(RemovalCorrelation):
    """Faithfulness Correlation: whether removing what the map values hurts the score.

    In each of `runs` runs a random subset `S` of `subset_size` positions
    (spatial positions, all channels together) is set to the baseline. Each
    sample's value is the Pearson correlation, over the runs, between the
    map's sum over the subset and the explained score's drop:

        corr_r( sum_{i in S_r} phi_i ,  f(x) - f(x_{S_r = baseline}) )

    1 for a map whose sums predict the drops linearly (`phi = w * x` on a
    linear model `f(x) = w . x`), -1 for its negative. **Higher is
    better.** A sample whose sums or drops do not vary has no correlation:
    NaN, left out of the mean.

    Each run's subset is a function of the seed, the run's number and the
    sample's values, so a sample gets the same subsets in any batch. The
    perturbed inputs are scored `step_batch_size` runs per forward pass: a
    pass holds at most `batch_size * step_batch_size` inputs.

    Conventions: the defaults are Quantus's (`quantus.FaithfulnessCorrelation`:
    100 runs, subsets of 224, a black (zero) baseline, Pearson, logits, signed
    attributions). Quantus draws subsets over input features (each channel
    apart) and normalises the maps first (which leaves Pearson unchanged);
    here a position's channels are removed together and its attribution is
    the map's value there. An explainer's default `postprocess='auto'` takes
    absolute values and rescales; pass `postprocess=None` to score signed
    attributions as Quantus does.

    Args:
        runs: the random subsets per sample (default 100).
        subset_size: positions removed per run (default 224); at most the
            number of positions.
        baseline: what removed positions become: 'zeros' (default), 'blur',
            'mean', a number, an array broadcastable to one input, or a
            perturbation function `inputs -> replacements` of the inputs'
            shape (called in the compiled step).
        blur_sigma: the standard deviation of 'blur' in pixels (default 5.0).
        seed: the integer seed of the subsets (default 0).
        step_batch_size: runs per forward pass (default 16); results do not
            depend on it.
        use_probabilities: score logits (default False, as Quantus) or
            probabilities (True).
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `CorrelationResult`: per-sample correlations,
    their `mean`, and the `sums` and `drops` `(N, runs)` they correlate.

    Raises:
        ValueError, TypeError: an option is invalid (at construction).
        InputError: (from a call) `subset_size` exceeds the positions.

    Example:
        >>> metric = ke.metrics.FaithfulnessCorrelation(runs=50, subset_size=196)
        >>> metric(ke.IntegratedGradients(model, postprocess=None), images, labels).mean
        0.31

    References:
        Bhatt, Weller & Moura (2020), "Evaluating and Aggregating
        Feature-based Model Explanations". IJCAI 2020.
        <https://arxiv.org/abs/2005.00631>
    """

    runs: int = attrs.field(default=100, kw_only=True, validator=positive_int)
    subset_size: int = attrs.field(default=224, kw_only=True, validator=positive_int)

    @property
    def _runs_count(self) -> int:
        return self.runs

    def _check_spatial(self, spatial: tuple[int | None, ...]) -> None:
        if any(size is None for size in spatial):
            return
        positions = int(np.prod(spatial))
        if self.subset_size > positions:
            raise InputError(
                f"{self.name}(subset_size={self.subset_size}) removes more positions than "
                f"the inputs' {positions} ({'x'.join(map(str, spatial))}); choose "
                f"subset_size <= {positions}."
            )

    def _removed(self, keys: tf.Tensor, spatial: tuple[int, ...]) -> tf.Tensor:
        positions = int(np.prod(spatial))
        uniform = tf.reshape(keyed_uniform(keys, positions), [-1, positions])
        chosen = tf.math.top_k(uniform, self.subset_size).indices
        rows = tf.broadcast_to(tf.range(tf.shape(chosen)[0])[:, None], tf.shape(chosen))
        removed = tf.scatter_nd(
            tf.stack([rows, chosen], axis=-1),
            tf.ones(tf.shape(chosen), tf.float32),
            tf.stack([tf.shape(chosen)[0], positions]),
        )
        return tf.reshape(removed, tf.concat([tf.shape(keys), spatial], 0))

    def _correlation(self, sums: tf.Tensor, drops: tf.Tensor) -> tf.Tensor:
        return pearson(sums, drops)
