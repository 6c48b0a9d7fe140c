"""The Box target: the score of the detection that best overlaps a box."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.errors import TargetError
from keras_explainable.targets.target import Target, describe_outputs, per_sample_ints

__all__ = ["Box", "NoDetectionWarning"]

#: Names a detector's dict output may give its per-class scores `(N, D, K)`.
SCORE_KEYS = ("scores", "classes", "class_scores", "logits")

LAYOUTS = (
    "a dict {'boxes': (N, D, 4), 'scores' (or 'classes', 'class_scores', 'logits'): "
    "(N, D, K)}, a list or tuple (boxes (N, D, 4), scores (N, D, K)), or one output "
    "(N, D, 4 + K) of boxes followed by class scores"
)


class NoDetectionWarning(UserWarning):
    """Some samples have no detection of the class overlapping the target box."""


def _split_detections(outputs: Any) -> tuple[Any, Any] | None:
    """`(boxes, scores)` of a supported detector output layout, else None."""
    if isinstance(outputs, dict):
        key = next((name for name in SCORE_KEYS if name in outputs), None)
        if "boxes" not in outputs or key is None:
            return None
        return outputs["boxes"], outputs[key]
    if isinstance(outputs, (list, tuple)) and len(outputs) == 2:
        return outputs[0], outputs[1]
    return None


def _as_boxes(box: Any) -> np.ndarray:
    if isinstance(box, (tf.Tensor, tf.Variable)):
        box = box.numpy()
    array = np.asarray(box)
    if not np.issubdtype(array.dtype, np.number) or array.shape[-1:] != (4,) or array.ndim > 2:
        raise TargetError(
            f"Box needs a box (4,) for every sample or (N, 4), one per sample, in the "
            f"detector's corner format; got shape {array.shape}."
        )
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise TargetError("Box coordinates hold NaN or Inf values.")
    rows = array.reshape(-1, 4)
    flat = (rows[:, 2] <= rows[:, 0]) | (rows[:, 3] <= rows[:, 1])
    if flat.any():
        raise TargetError(
            "Box corners must be (a1, b1, a2, b2) with a2 > a1 and b2 > b1 (for example "
            f"(y1, x1, y2, x2) or (x1, y1, x2, y2)); got {rows[np.argmax(flat)].tolist()}."
        )
    return array


def box_iou(box: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """Intersection over union of `box` `(n, 4)` with each of `boxes` `(n, D, 4)`: `(n, D)`.

    Corners `(a1, b1, a2, b2)`; the order of the two axes does not matter.
    """
    box = box[:, None, :]
    low = tf.maximum(box[..., :2], boxes[..., :2])
    high = tf.minimum(box[..., 2:], boxes[..., 2:])
    overlap = tf.reduce_prod(tf.maximum(high - low, 0.0), axis=-1)
    area = tf.reduce_prod(tf.maximum(box[..., 2:] - box[..., :2], 0.0), axis=-1)
    areas = tf.reduce_prod(tf.maximum(boxes[..., 2:] - boxes[..., :2], 0.0), axis=-1)
    return overlap / tf.maximum(area + areas - overlap, 1e-12)


def _check_decoded(split: Any) -> None:
    """Check what a `detections` function returned (while the step is traced)."""
    if not isinstance(split, (list, tuple)) or len(split) != 2:
        raise TargetError(
            "Box(detections=...) must return (boxes (N, D, 4), scores (N, D, K)); got "
            f"{type(split).__name__}."
        )
    boxes, scores = (tuple(tf.convert_to_tensor(value).shape) for value in split)
    if len(boxes) != 3 or boxes[-1] != 4 or len(scores) != 3 or boxes[1] != scores[1]:
        raise TargetError(
            "Box(detections=...) must return boxes (N, D, 4) and class scores (N, D, K) "
            f"with the same D; got shapes {boxes} and {scores}."
        )


@attrs.frozen(init=False, eq=False)
class Box(Target):
    """The score for class `k` of the detection that best overlaps a box.

    For a detector that outputs `D` candidate boxes and their class scores,
    the target is the detection of class `k` (its highest class score is
    `k`'s) with the largest intersection over union with `box`, among those
    overlapping it by at least `iou_threshold`; the score is that
    detection's score for `k`. The choice of detection is made on the
    explained input (and again on each perturbed one, for perturbation
    methods); the gradient flows through its score. `Explanation.targets`
    records the chosen detection's index, -1 where no detection qualifies:
    there the score is 0 and the map blank, and `explain` warns
    (`NoDetectionWarning`).

    Supported output layouts: a dict `{"boxes": (N, D, 4), "scores": (N, D,
    K)}` (the scores may be named "classes", "class_scores" or "logits"), a
    list or tuple `(boxes, scores)`, or one output `(N, D, 4 + K)` of boxes
    followed by class scores. A multi-output model is explained on all its
    outputs, so the detector needs no `output=`. Outputs are used as the
    model returns them (a structured output has no softmax stripped). A
    detector whose raw outputs are in another form (anchor offsets, as
    keras-hub's RetinaNet returns before decoding and non-max suppression)
    is read through `detections`, a function of the outputs that returns
    the boxes and the class scores.

    Args:
        box: `(4,)` for every sample, or `(N, 4)` one per sample, corners in
            the detector's own format and units (`(y1, x1, y2, x2)` or `(x1,
            y1, x2, y2)`: intersection over union does not depend on which).
        k: the class: an int, or an integer array `(N,)` of one per sample.
        iou_threshold: the least overlap of a qualifying detection (default
            0.5), in [0, 1].
        detections: `outputs -> (boxes (N, D, 4), scores (N, D, K))`, run
            in the compiled step on the model's raw outputs (the structure
            it returns), for outputs in none of the layouts above; default
            None reads the layouts above.

    Raises:
        TargetError: the model's outputs have none of the layouts above, a
            box is malformed, `k` is out of range, or the counts do not
            match the inputs (at `explain`, before any work).

    Example:
        >>> person = ke.targets.Box([40, 60, 200, 180], k=0)
        >>> ke.GradCAM(detector, layer="backbone_out").explain(images, person)

        keras-hub's RetinaNet, on its raw outputs (anchor offsets), decoded
        with its own anchors and Keras' public box utilities:

        >>> anchors = keras.ops.concatenate(list(detector.anchor_generator(images).values()), 0)
        >>> def decoded(outputs):
        ...     boxes = keras.utils.bounding_boxes.decode_deltas_to_boxes(
        ...         anchors, outputs["bbox_regression"], anchor_format="yxyx",
        ...         box_format="yxyx", encoded_format="center_xywh", image_shape=(64, 64, 3))
        ...     return boxes, outputs["cls_logits"]
        >>> ke.GradCAM(detector).explain(images, ke.targets.Box(box, k=1, detections=decoded))
    """

    reads_all_outputs: ClassVar[bool] = True

    box: np.ndarray
    k: Any
    iou_threshold: float
    detections: Callable[[Any], tuple[Any, Any]] | None

    def __init__(
        self,
        box: Any,
        k: Any = 0,
        iou_threshold: float = 0.5,
        detections: Callable[[Any], tuple[Any, Any]] | None = None,
    ) -> None:
        boxes = _as_boxes(box)
        k = per_sample_ints(k, "Box class k")
        if np.any(np.asarray(k) < 0):
            raise TargetError(f"Box class k must be >= 0; got {np.min(k)}.")
        if isinstance(iou_threshold, bool) or not 0.0 <= float(iou_threshold) <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1]; got {iou_threshold!r}.")
        if detections is not None and not callable(detections):
            raise TypeError(
                "detections must be a function outputs -> (boxes, scores); got "
                f"{type(detections).__name__}."
            )
        self.__attrs_init__(boxes, k, float(iou_threshold), detections)

    def sample_data(self) -> dict[str, np.ndarray]:
        """The per-sample rows of this target (see `Target.sample_data`)."""
        data = {}
        if self.box.ndim == 2:
            data["box"] = self.box
        if isinstance(self.k, np.ndarray):
            data["class"] = self.k
        return data

    def check(self, outputs: Any, count: int | None) -> None:
        """Check the outputs and counts before any work (see `Target.check`)."""
        if self.box.ndim == 2:
            self._check_count(self.box, count, "boxes")
        if isinstance(self.k, np.ndarray):
            self._check_count(self.k, count, "classes")
        if outputs is None or self.detections is not None:
            return
        split = _split_detections(outputs)
        if split is None and isinstance(outputs, tuple) and len(outputs) == 3:
            packed = outputs[-1]
            if packed is not None and packed < 5:
                split = None
            else:
                split = (
                    outputs[:-1] + (4,),
                    outputs[:-1] + (None if packed is None else packed - 4,),
                )
        if split is None or not all(isinstance(shape, tuple) for shape in split):
            raise TargetError(
                f"Box needs a detector's outputs: {LAYOUTS}; the model outputs "
                f"{describe_outputs(outputs)}."
            )
        boxes, scores = split
        if len(boxes) != 3 or boxes[-1] != 4 or len(scores) != 3 or boxes[1] != scores[1]:
            raise TargetError(
                f"Box needs boxes (N, D, 4) and class scores (N, D, K) with the same D; "
                f"the model outputs {describe_outputs(outputs)} (expected {LAYOUTS})."
            )
        largest = int(np.max(self.k))
        if scores[-1] is not None and largest >= scores[-1]:
            raise TargetError(
                f"Box class {largest} is out of range: the detector scores {scores[-1]} classes."
            )

    def _match(self, outputs: Any, data: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """The `(n,)` class-k scores of the matched detections and their indices (-1: none)."""
        if self.detections is not None:
            split = self.detections(outputs)
            _check_decoded(split)
        else:
            split = _split_detections(outputs)
        if split is None:
            packed = tf.convert_to_tensor(outputs)
            split = (packed[..., :4], packed[..., 4:])
        boxes, scores = (tf.cast(value, tf.float32) for value in split)
        size = tf.shape(scores)[0]
        box = data["box"] if "box" in data else tf.tile(tf.constant(self.box)[None], [size, 1])
        k = data["class"] if "class" in data else tf.fill([size], tf.constant(self.k, tf.int64))
        overlaps = box_iou(tf.cast(box, tf.float32), boxes)  # (n, D)
        of_class = tf.argmax(scores, axis=-1) == tf.cast(k, tf.int64)[:, None]
        qualifies = of_class & (overlaps >= self.iou_threshold)
        best = tf.argmax(tf.where(qualifies, overlaps, -1.0), axis=-1)  # (n,)
        found = tf.reduce_any(qualifies, axis=-1)
        class_scores = tf.gather(scores, tf.cast(k, tf.int64), axis=-1, batch_dims=1)  # (n, D)
        chosen = tf.gather(class_scores, best, axis=1, batch_dims=1)
        return tf.where(found, chosen, 0.0), tf.where(found, best, -1)

    def scores(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, 1)` scores of a batch (see `Target.scores`)."""
        return self.select(outputs, data)[0]

    def units(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, 1)` units of the scores (see `Target.units`)."""
        return self.select(outputs, data)[1]

    def select(self, outputs: Any, data: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """The matched detections' scores and indices, matched once (see `Target.select`)."""
        scores, indices = self._match(outputs, data)
        return scores[:, None], tf.cast(indices, tf.int64)[:, None]

    def finished(self, units: np.ndarray) -> None:
        """Warn about samples without a qualifying detection."""
        missing = np.flatnonzero(np.asarray(units)[:, 0] < 0)
        if missing.size:
            warnings.warn(
                f"{missing.size} sample(s) (first: {int(missing[0])}) have no detection of "
                f"the class overlapping the box by IoU >= {self.iou_threshold}: their score "
                "is 0 and their maps are blank. Check the box's format and units, or lower "
                "iou_threshold.",
                NoDetectionWarning,
                stacklevel=4,
            )
