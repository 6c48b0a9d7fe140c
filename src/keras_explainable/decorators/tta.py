"""TTA: test-time augmentation of explanations (scales and flips).

Each augmented input is explained, its map is mapped back to the original
geometry (un-flipped, resized back), and the maps are averaged, as the
`aug_smooth` option of pytorch-grad-cam does
(https://github.com/jacobgil/pytorch-grad-cam). On test-time augmentation:
Wang, Li, Aertsen, Deprest, Ourselin & Vercauteren (2019), "Aleatoric
uncertainty estimation with test-time augmentation for medical image
segmentation". https://arxiv.org/abs/1807.07356
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.attribution import Attribution
from keras_explainable.decorators.base import Decorator
from keras_explainable.errors import InputError, ModelStructureError, TargetError
from keras_explainable.exposure import Exposure
from keras_explainable.targets import INDEX, OBJECT, TOP, TargetPlan, Targets

__all__ = ["TTA"]

_FLIPS = ("horizontal", "vertical")


def _check_scales(instance: Any, attribute: attrs.Attribute, value: tuple) -> None:
    for scale in value:
        if (
            isinstance(scale, bool)
            or not isinstance(scale, (int, float, np.integer, np.floating))
            or not math.isfinite(scale)
            or scale <= 0
        ):
            raise ValueError(f"scales must be positive numbers; got {value!r}.")
    if 1.0 not in value:
        raise ValueError(
            f"scales must include 1.0: the unscaled pass sets the geometry the other "
            f"passes are mapped back to; got {value!r}."
        )
    if len(set(value)) != len(value):
        raise ValueError(f"scales has repeated values: {value!r}.")


def _check_flips(instance: Any, attribute: attrs.Attribute, value: tuple) -> None:
    for flip in value:
        if flip not in _FLIPS:
            raise ValueError(
                f"flips must name flips from {_FLIPS}; got {value!r}. Pass flips=() for no flip."
            )
    if len(set(value)) != len(value):
        raise ValueError(f"flips has repeated values: {value!r}.")


def _unflipped(targets: Targets, axis: int) -> Any:
    """An outputs view that reverses `axis`, then applies the targets' own view."""
    previous = targets.outputs_view

    def view(outputs: Any) -> Any:
        outputs = tf.reverse(outputs, [axis])
        return outputs if previous is None else previous(outputs)

    return view


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(value)
    except TypeError:
        return (value,)


@attrs.define(eq=False)
class TTA(Decorator):
    """Average the wrapped explainer's maps over augmented copies of the input.

    The passes are every scale combined with no flip and with each flip:
    `len(scales) * (1 + len(flips))` runs of the wrapped explainer. A pass
    resizes the input by its scale (bilinear), flips it, explains it, then
    un-flips the raw map and resizes it to the raw maps' size of the unscaled
    input; the average counts every pass equally. The averaged raw maps then
    go through the wrapped explainer's post-processing (ReLU, resize to the
    input, normalisation), exactly as the wrapped explainer's own maps do.
    Scores are the mean explained score over the passes; top-class targets
    are resolved on the original input. A target callable receives the
    outputs of each augmented input.

    'horizontal' flips the last spatial axis (width; time for 1-D inputs),
    'vertical' the one before it (height).

    Args:
        explainer: the explainer to wrap (any `Explainer`, decorators too).
            Its raw maps must keep the input's spatial axes (per-channel
            maps `(N, *spatial, C, L)` too).
        scales: input scale factors (default `(1.0,)`); must include 1.0.
            Scales other than 1 need a model that accepts any spatial size
            (`keras.Input((None, None, 3))`).
        flips: flips to add to each scale: a tuple of 'horizontal' and
            'vertical' (default `("horizontal",)`), or `()` for none.
        batch_size, verbose, strategy: as for `Explainer`; default the
            wrapped explainer's (see `Decorator`).

    Raises:
        TypeError: `explainer` is not an `Explainer`.
        ValueError: bad scales or flips, a flip the input has no axis for, or
            scales other than 1 for a fixed-size model.
        ModelStructureError: the model is a text model (token ids into an
            `Embedding`): flipping a sentence does not keep its meaning.

    Example:
        >>> tta = ke.TTA(ke.GradCAM(model), flips=("horizontal",))
        >>> expl = tta.explain(images)
        >>> both = ke.TTA(ke.SmoothGrad(ke.GradCAM(model), samples=8))

    References:
        The `aug_smooth` option of pytorch-grad-cam
        (<https://github.com/jacobgil/pytorch-grad-cam>). On test-time
        augmentation: Wang, Li, Aertsen, Deprest, Ourselin & Vercauteren
        (2019), "Aleatoric uncertainty estimation with test-time augmentation
        for medical image segmentation". <https://arxiv.org/abs/1807.07356>
    """

    scales: tuple[float, ...] = attrs.field(
        default=(1.0,), kw_only=True, converter=_as_tuple, validator=_check_scales
    )
    flips: tuple[str, ...] = attrs.field(
        default=("horizontal",),
        kw_only=True,
        converter=_as_tuple,
        validator=_check_flips,
    )

    several_inputs_refusal = (
        "its flips and scales transform one image, and the other inputs have no such geometry."
    )

    def _prepare(self, exposure: Exposure) -> None:
        if exposure.embedding is not None:
            raise ModelStructureError(
                "TTA flips and rescales images; on a text model (token ids into an "
                "Embedding) it would reverse or stretch the sentences. Explain text "
                "models without TTA."
            )
        shape = exposure.input_shape
        if shape is None:
            return
        spatial = shape[1:-1]
        for flip in self.flips:
            if len(spatial) < _FLIPS.index(flip) + 1:
                raise ValueError(
                    f"A {flip} flip needs {_FLIPS.index(flip) + 1} spatial axes; "
                    f"the model takes inputs of shape {shape}."
                )
        if any(scale != 1.0 for scale in self.scales) and any(size is not None for size in spatial):
            raise ValueError(
                f"scales={self.scales} resize the input, but the model takes a fixed "
                f"size {shape}. Use a model built on keras.Input((None, ..., C)), or "
                "scales=(1.0,)."
            )

    def _spatial_output(self) -> bool:
        """Whether the explained output is a map over the input's axes (segmentation)."""
        output, input_shape = self._exposure.output_shape, self._exposure.input_shape
        return (
            isinstance(output, tuple)
            and input_shape is not None
            and len(output) == len(input_shape)
            and len(output) > 2
        )

    def _check_targets(self, plan: TargetPlan) -> None:
        super()._check_targets(plan)
        target = plan.target
        if plan.kind == OBJECT and getattr(target, "reads_all_outputs", False):
            # A detector's boxes move with the flipped or scaled image; the
            # target's box stays in the input's coordinates, so it would pick
            # the mirror-image detection.
            raise TargetError(
                f"TTA flips and rescales the image, and with it the detector's boxes, "
                f"which {type(target).__name__} reads in the input's coordinates: each "
                "augmented pass would explain another detection. Explain detections "
                "without TTA."
            )
        if any(scale != 1.0 for scale in self.scales) and self._spatial_output():
            raise ValueError(
                f"TTA scales={self.scales} resize the input, and so the model's output map "
                f"{self._exposure.output_shape}, which a target over that map (a "
                "Segmentation mask) would then misread. Use scales=(1.0,) with flips."
            )

    def _passes(self) -> list[tuple[float, str | None]]:
        """`(scale, flip)` of every pass, unscaled passes first."""
        scales = sorted(self.scales, key=lambda scale: scale != 1.0)
        return [(scale, flip) for scale in scales for flip in (None, *self.flips)]

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        # The first pass is the unaugmented input: it resolves top-class
        # targets for the other passes, so no extra forward pass is needed.
        rank = inputs.shape.rank
        size = inputs.shape[1:-1]
        reference = None
        maps_sum = scores_sum = indices = None
        for scale, flip in self._passes():
            augmented = inputs
            if scale != 1.0:
                if any(axis is None for axis in size):
                    raise InputError(
                        "TTA scales resize the input, whose spatial size must be "
                        f"known: got inputs of shape {tuple(inputs.shape)}."
                    )
                scaled = [max(1, round(scale * axis)) for axis in size]
                augmented = tf.cast(ops.resize_maps(inputs, scaled), inputs.dtype)
            axis = None if flip is None else rank - 2 - _FLIPS.index(flip)
            if axis is not None:
                augmented = tf.reverse(augmented, [axis])
            pass_targets = targets
            if axis is not None and self._spatial_output():
                # The output map is flipped with the input: flip it back before
                # a target reads it (a Segmentation mask covers the same pixels).
                pass_targets = attrs.evolve(targets, outputs_view=_unflipped(targets, axis))
            attribution = self.explainer.attribute(augmented, pass_targets)
            maps = tf.cast(attribution.maps, tf.float32)
            # Per-channel maps (N, *spatial, C, L) have one axis more.
            if maps.shape.rank not in (rank, rank + 1):
                raise ModelStructureError(
                    f"TTA needs maps with the input's spatial axes; "
                    f"{self.explainer.method_name} returned maps of shape "
                    f"{tuple(maps.shape)} for inputs of shape {tuple(inputs.shape)}."
                )
            if axis is not None:
                maps = tf.reverse(maps, [axis])
            if reference is None:
                reference = maps.shape[1 : rank - 1]
            elif scale != 1.0:
                maps = ops.resize_maps(maps, reference)
            scores = tf.cast(attribution.scores, tf.float32)
            if maps_sum is None:
                maps_sum, scores_sum, indices = maps, scores, attribution.targets
                if targets.kind == TOP:
                    targets = attrs.evolve(targets, kind=INDEX, indices=indices)
            else:
                maps_sum, scores_sum = maps_sum + maps, scores_sum + scores
        count = len(self._passes())
        return Attribution(maps_sum / count, scores_sum / count, indices)
