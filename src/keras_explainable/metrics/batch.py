"""`Batch`: one batch of maps, as a metric's `_measure` hook sees it."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import tensorflow as tf

from keras_explainable.targets import Targets

__all__ = ["Batch"]


@attrs.define(eq=False)
class Batch:
    """One batch of maps, as a metric's `_measure` hook sees it.

    All tensors have the batch size `n` first. Maps have one channel per
    sample: the metric scores one map (one target) per sample.

    Attributes:
        inputs: `(n, *spatial, C)` float32 inputs, or None when the metric
            does not read its inputs (`needs_inputs` is False).
        maps: `(n, *spatial)` float32 maps.
        masks: `(n, *spatial)` bool ground-truth masks, or None when the
            metric takes none (`needs_masks` is False).
        targets: the explained units; 'top' targets are already resolved on
            `inputs`, so perturbed inputs are scored on the same units.

    Example:
        A metric's `_measure` maps a batch to per-sample values:

        >>> def _measure(self, batch):   # the score left after blacking out the map
        ...     kept = batch.inputs * (1.0 - batch.maps[..., None])
        ...     return batch.score(kept)
    """

    inputs: tf.Tensor | None
    maps: tf.Tensor
    masks: tf.Tensor | None
    targets: Targets | None
    _scorer: Callable[[tf.Tensor, Targets], tf.Tensor] | None = None

    def score(self, images: tf.Tensor, copies: int = 1) -> tf.Tensor:
        """Score images on each sample's explained unit (metrics with a model).

        Args:
            images: `(copies * n, *spatial, C)` images: `copies` variants of
                the batch stacked copy-major (all samples of copy 0, then all
                samples of copy 1, ...), as `tf.concat(variants, axis=0)` gives.
            copies: how many variants of the batch `images` holds.

        Returns:
            `(copies * n,)` float32 scores: the probability (or logit, see
            `ModelMetric.use_probabilities`) of row `i`'s sample's target.

        Raises:
            TypeError: the metric runs no model.
        """
        if self._scorer is None:
            raise TypeError("This metric runs no model (needs_model is False).")
        return self._scorer(images, self.targets.tiled(copies))
