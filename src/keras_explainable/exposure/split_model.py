"""`SplitModel`: a model given as a feature extractor and a head."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["SplitModel"]


@attrs.frozen
class SplitModel:
    """A model given as two halves: a feature extractor and a head.

    Use it for models Keras cannot split into layers (subclassed models), or to
    choose the split point yourself. The explained layer is the feature
    extractor's output; the explained scores are the head's output.

    Args:
        feature_extractor: maps inputs `(N, *spatial, C_in)` to features
            `(N, *spatial', C)`. A Keras model or layer.
        head: maps features to scores `(N, K)`. A Keras model or layer.
        input_shape: the shape of one input without the batch axis. Needed
            only when `feature_extractor` does not define its inputs
            (a subclassed model).

    Raises:
        TypeError: a half is not callable.
        ModelStructureError: (when an explainer is built on it) the feature
            extractor does not define its inputs and `input_shape` is None.

    Example:
        >>> split = ke.SplitModel(backbone, classifier_head)
        >>> ke.GradCAM(split).explain(x)
        >>> # the halves of a subclassed model, which defines no inputs:
        >>> split = ke.SplitModel(model.features, model.head, input_shape=(224, 224, 3))
    """

    feature_extractor: Callable = attrs.field()
    head: Callable = attrs.field()
    input_shape: tuple[int | None, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(tuple)
    )

    @feature_extractor.validator
    @head.validator
    def _check_callable(self, attribute: attrs.Attribute, value: Any) -> None:
        if not callable(value):
            raise TypeError(
                f"SplitModel.{attribute.name} must be a Keras model or layer; "
                f"got {type(value).__name__}."
            )
