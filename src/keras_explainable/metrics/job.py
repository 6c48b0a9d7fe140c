"""A metric call, validated: where maps, targets and ground truth come from.

`Metric.__call__` validates everything here before any batch is scored.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.base import Explainer
from keras_explainable.errors import InputError, TargetError
from keras_explainable.explanation import Explanation
from keras_explainable.exposure import Exposure
from keras_explainable.inputs import InputSource, make_source
from keras_explainable.metrics.truth import ground_truth_masks, single_map
from keras_explainable.targets import (
    FUNCTION,
    INDEX,
    Target,
    TargetPlan,
    as_index_array,
    plan_targets,
)

__all__ = ["Job", "make_job", "ready_maps", "score_targets", "spatial_size"]


@attrs.frozen
class Job:
    """One validated call of a metric: where maps, targets and truth come from."""

    explainer: Explainer | None
    explainer_y: Any
    maps: np.ndarray | None
    plan: TargetPlan | None
    source: InputSource | None
    masks: np.ndarray | None
    exposure: Exposure | None
    count: int | None


def ready_maps(subject: Any, source: InputSource | None, masks: Any) -> np.ndarray:
    """Validate ready-made maps; return them as float32 `(N, *spatial)`.

    Raises:
        InputError: maps of the wrong shape or with NaN/Inf values.
        TypeError: something that is not an array of maps.
        TargetError: several maps per sample.
    """
    if isinstance(subject, Explanation):
        maps = subject.maps
        return single_map(np.asarray(maps, np.float32), has_channel=True)
    if isinstance(subject, (tf.Tensor, tf.Variable)):
        subject = subject.numpy()
    try:
        maps = np.asarray(subject)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"Maps must be an explainer, an Explanation or an array: {error}"
        ) from error
    if maps.dtype == object or not np.issubdtype(maps.dtype, np.number) or maps.dtype == bool:
        raise TypeError(
            "The first argument must be an Explainer, an Explanation or a numeric "
            f"array of maps; got {type(subject).__name__}."
        )
    maps = maps.astype(np.float32)
    if source is not None:
        spatial_rank = len(source.spec.shape) - 2
    elif masks is not None:
        spatial_rank = np.ndim(masks) - 1
    else:
        spatial_rank = 2
    if maps.ndim not in (spatial_rank + 1, spatial_rank + 2):
        raise InputError(
            f"Maps of shape {maps.shape} do not fit {spatial_rank}-D inputs: "
            "expected (N, *spatial) or (N, *spatial, 1)."
        )
    maps = single_map(maps, has_channel=maps.ndim == spatial_rank + 2)
    if not np.isfinite(maps).all():
        raise InputError("The maps contain NaN or Inf values.")
    return maps


def spatial_size(maps: np.ndarray | None, source: InputSource | None) -> tuple:
    """Return the spatial size; check maps against inputs where both are known.

    Raises:
        InputError: the maps' spatial size does not match the inputs'.
    """
    inputs = None if source is None else tuple(source.spec.shape[1:-1])
    if maps is None:
        return inputs
    spatial = maps.shape[1:]
    if inputs is not None and len(spatial) != len(inputs):
        raise InputError(
            f"Maps of spatial size {spatial} do not fit inputs of spatial size {inputs}."
        )
    if inputs is not None and any(
        want is not None and got != want for got, want in zip(spatial, inputs, strict=True)
    ):
        raise InputError(
            f"Maps of spatial size {spatial} do not match the inputs' {inputs}; "
            "explain with resize=True so maps have the inputs' size."
        )
    return spatial


def score_targets(
    metric_name: str,
    explainer: Explainer | None,
    explanation: Explanation | None,
    source: InputSource | None,
    y: Any,
    reference: Exposure | None,
) -> TargetPlan:
    """Return the targets to score: validated up front, one per sample.

    Raises:
        TargetError: targets that do not fit, or more than one per sample.
        TypeError: targets the explainer cannot take.
    """
    if explanation is not None:
        if isinstance(y, Target):
            return plan_targets(
                y,
                len(explanation.scores),
                reference.output_units,
                reference.output_shape,
                reference.output_names if reference.all_outputs else None,
            )
        if callable(y):
            return TargetPlan(FUNCTION, count=None, function=y)
        if y is not None:
            raise TargetError(
                "An Explanation records its targets; pass y only as the target "
                "callable or target object it was made with."
            )
        if (explanation.targets < 0).any():
            raise TargetError(
                "This Explanation was made with a target callable or target object; pass it "
                "again as y."
            )
        indices = as_index_array(explanation.targets, None, reference.output_units)
        return TargetPlan(INDEX, indices=indices, count=1)
    if source is not None and source.has_targets:
        plan = TargetPlan(INDEX, count=None)
    else:
        plan = plan_targets(
            y,
            None if source is None else source.count,
            reference.output_units,
            reference.output_shape,
            reference.output_names if reference.all_outputs else None,
        )
    if plan.count is not None and plan.count > 1:
        raise TargetError(
            f"{metric_name} scores one target per sample; got {plan.count} per "
            "sample. Score each target column separately."
        )
    if explainer is not None:
        explainer.check_targets(plan)
    return plan


def make_job(
    metric: Any,
    subject: Any,
    x: Any,
    y: Any,
    model: Any,
    output: Any,
    masks: Any,
    boxes: Any,
) -> Job:
    """Validate a call of `metric` before any heavy work.

    Args:
        metric: the `Metric` called.
        subject: an explainer, an `Explanation` or an array of maps.
        x: the explained inputs, or None.
        y: the targets, as for `Metric.__call__`.
        model: the model that scores ready-made maps, or None.
        output: the output of `model` to score, or None.
        masks: ground-truth masks, or None.
        boxes: ground-truth boxes, or None.

    Returns:
        The validated `Job`.

    Raises:
        InputError: malformed inputs, maps or masks, or counts that differ.
        TargetError: targets that do not fit, or more than one per sample.
        TypeError: an argument of the wrong type, a missing one, or one the
            metric does not use.
    """
    name = metric.name
    explainer = subject if isinstance(subject, Explainer) else None
    explanation = subject if isinstance(subject, Explanation) else None
    if not metric.needs_model and (model is not None or output is not None):
        raise TypeError(f"{name} runs no model; it takes no model= or output=.")
    if not metric.needs_masks and (masks is not None or boxes is not None):
        raise TypeError(f"{name} takes no ground truth (masks= or boxes=).")
    if metric.needs_masks and (masks is None) == (boxes is None):
        raise TypeError(f"{name} compares maps with ground truth: pass masks= or boxes=.")
    if explainer is not None and (model is not None or output is not None):
        raise TypeError(
            "With an explainer the explainer's model is scored; do not pass model= or output=."
        )
    if output is not None and model is None:
        raise TypeError("output= selects an output of model=; pass model= too.")
    wrapped = explainer
    while wrapped is not None:
        if getattr(wrapped, "channel_reduction", "") is None:
            raise ValueError(
                f"{name} scores one map per position; {wrapped.method_name} with "
                "channel_reduction=None gives one map per channel. Choose a reduction "
                "(for example 'sum') for metrics."
            )
        wrapped = getattr(wrapped, "explainer", None)

    exposure = None
    if metric.needs_model:
        if explainer is not None:
            model, output = explainer.model, explainer.output
        elif model is None:
            raise TypeError(
                f"{name} scores the maps with the model: pass model=, or pass "
                "the explainer instead of its maps."
            )
        exposure = metric.exposure_of(model, output)

    reference = exposure or (explainer.exposure if explainer is not None else None)
    if x is None and (metric.needs_inputs or explainer is not None):
        raise TypeError(f"{name} needs the explained inputs x.")
    source = None
    if x is not None:
        expected = None if reference is None else reference.input_shape
        source = make_source(x, expected, metric.batch_size, None if callable(y) else y)

    maps = None
    if explainer is None:
        maps = ready_maps(explanation if explanation is not None else subject, source, masks)
    spatial = spatial_size(maps, source)
    if masks is not None or boxes is not None:
        masks = ground_truth_masks(masks, boxes, spatial, None if maps is None else len(maps))

    plan = None
    if explainer is not None or metric.needs_model:
        plan = score_targets(metric.name, explainer, explanation, source, y, reference)
    elif y is not None:
        raise TypeError(f"{name} with ready-made maps uses no targets; do not pass y.")

    counts = {len(a) for a in (maps, masks) if a is not None}
    if source is not None and source.count is not None:
        counts.add(source.count)
    if len(counts) > 1:
        raise InputError(
            f"The maps, inputs and masks have different numbers of samples: {sorted(counts)}."
        )
    count = counts.pop() if counts else None
    return Job(explainer, y, maps, plan, source, masks, exposure, count)
