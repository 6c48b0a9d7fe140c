"""The Segmentation target: a class's logits summed over a region of a segmentation map."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.errors import TargetError
from keras_explainable.targets.target import (
    Target,
    batch_size,
    describe_outputs,
    per_sample_ints,
)

__all__ = ["Segmentation"]


def _as_mask(mask: Any) -> np.ndarray | None:
    if mask is None:
        return None
    if isinstance(mask, (tf.Tensor, tf.Variable)):
        mask = mask.numpy()
    array = np.asarray(mask)
    if array.dtype == bool:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.number) or array.ndim < 1:
        raise TypeError(
            "Segmentation mask must be a boolean or numeric array (H, W) or (N, H, W); "
            f"got {array.dtype} of shape {array.shape}."
        )
    if not np.isfinite(array).all():
        raise TargetError("Segmentation mask holds NaN or Inf values.")
    return array.astype(np.float32)


@attrs.frozen(init=False, eq=False)
class Segmentation(Target):
    """Class `k`'s logits summed over a region of a segmentation output.

    For a model whose output is a per-pixel map of class logits `(N, H, W,
    K)` (any number of spatial axes), the score is
    `sum_{h,w} mask[n, h, w] * outputs[n, h, w, k]`: the evidence for "these
    pixels are class k". The mask selects (or weighs) the pixels; without one
    every pixel counts. As with classifiers, a final softmax or sigmoid is
    stripped (`logits=True`), so the sum is one of logits.

    Args:
        mask: the region, boolean or float weights: `(H, W)` for every
            sample, `(N, H, W)` one per sample, or None (default) for every
            pixel. Its spatial shape is the output's (which may be smaller
            than the input's).
        k: the class: an int, or an integer array `(N,)` of one per sample.

    Raises:
        TargetError: the output is not a map `(N, *spatial, K)`, the mask's
            shape does not match it or the inputs, or `k` is out of range (at
            `explain`, before any work). An empty mask is an error too: its
            score would be 0 and every map blank.
        TypeError: a mask or class of the wrong type.

    Example:
        >>> dog = (model.predict(images).argmax(-1) == 12)   # (N, H, W)
        >>> ke.GradCAM(segmenter).explain(images, ke.targets.Segmentation(dog, 12))
    """

    mask: np.ndarray | None
    k: Any
    _per_sample: list = attrs.field(repr=False)

    def __init__(self, mask: Any = None, k: Any = 0) -> None:
        mask = _as_mask(mask)
        k = per_sample_ints(k, "Segmentation class k")
        if np.any(np.asarray(k) < 0):
            raise TargetError(f"Segmentation class k must be >= 0; got {np.min(k)}.")
        # Whether the mask has one row per sample, decided against the output
        # in `check`; until then (an opaque model), a mask of 3 or more axes is.
        self.__attrs_init__(mask, k, [mask is not None and mask.ndim >= 3])

    def sample_data(self) -> dict[str, np.ndarray]:
        """The per-sample rows of this target (see `Target.sample_data`)."""
        data = {}
        if isinstance(self.k, np.ndarray):
            data["class"] = self.k
        if self.mask is not None and self._mask_per_sample:
            data["mask"] = self.mask
        return data

    @property
    def _mask_per_sample(self) -> bool:
        return self._per_sample[0]

    def check(self, outputs: Any, count: int | None) -> None:
        """Check the outputs and counts before any work (see `Target.check`)."""
        if isinstance(self.k, np.ndarray):
            self._check_count(self.k, count, "classes")
        if outputs is None:
            return
        if not isinstance(outputs, tuple) or len(outputs) < 3:
            raise TargetError(
                "Segmentation needs a segmentation output (N, H, W, K) (one score per "
                f"class at each position); the model outputs {describe_outputs(outputs)}."
                + (
                    " For a classifier pass a class index (or ke.targets.Class(k))."
                    if isinstance(outputs, tuple) and len(outputs) == 2
                    else " Choose one output with output=."
                    if not isinstance(outputs, tuple)
                    else ""
                )
            )
        spatial, units = outputs[1:-1], outputs[-1]
        largest = int(np.max(self.k))
        if units is not None and largest >= units:
            raise TargetError(
                f"Segmentation class {largest} is out of range: the output has {units} classes."
            )
        if self.mask is None:
            return
        shape = self.mask.shape
        if shape == tuple(spatial) or (len(shape) == len(spatial) and None in spatial):
            per_sample = False
        elif len(shape) == len(spatial) + 1 and (shape[1:] == tuple(spatial) or None in spatial):
            per_sample = True
            self._check_count(self.mask, count, "masks")
        else:
            readable = ", ".join("?" if size is None else str(size) for size in spatial)
            raise TargetError(
                f"Segmentation mask of shape {shape} does not fit the output "
                f"{describe_outputs(outputs)}: expected ({readable}) for every sample or "
                f"(N, {readable}) one per sample."
            )
        self._per_sample[0] = per_sample
        sums = self.mask.reshape(len(self.mask), -1).sum(axis=1) if per_sample else None
        if (per_sample and np.any(sums == 0)) or (not per_sample and not self.mask.any()):
            which = "" if not per_sample else f" (sample {int(np.flatnonzero(sums == 0)[0])})"
            raise TargetError(
                f"Segmentation mask is empty{which}: its score would be 0 and its map blank."
            )

    def scores(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, 1)` scores of a batch (see `Target.scores`)."""
        outputs = tf.cast(outputs, tf.float32)
        if outputs.shape.rank is None or outputs.shape.rank < 3:
            raise TargetError(
                "Segmentation needs a segmentation output (N, H, W, K); got shape "
                f"{tuple(outputs.shape)}."
            )
        if "class" in data:
            logits = tf.gather(outputs, data["class"], axis=-1, batch_dims=1)
        else:
            logits = outputs[..., self.k]
        if self.mask is not None:
            mask = data["mask"] if "mask" in data else tf.constant(self.mask)[None]
            logits = logits * tf.cast(mask, logits.dtype)
        return tf.reduce_sum(tf.reshape(logits, [tf.shape(logits)[0], -1]), axis=1)[:, None]

    def units(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, 1)` units of the scores (see `Target.units`)."""
        if "class" in data:
            return tf.cast(data["class"], tf.int64)[:, None]
        return tf.fill(tf.stack([batch_size(outputs), 1]), tf.constant(self.k, tf.int64))
