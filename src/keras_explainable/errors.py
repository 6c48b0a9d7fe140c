"""Exceptions and warnings raised by keras-explainable.

Every error the library raises on bad input is a subclass of `ValueError` (or
`TypeError` for an argument of the wrong type), so callers can catch the usual
built-in exceptions, or `ExplainerError` to catch ours only.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "ExplainerError",
    "InputError",
    "BackgroundError",
    "TargetError",
    "LayerError",
    "ModelStructureError",
    "UnsupportedLayerError",
    "LRPRuleError",
    "NonFiniteError",
    "RunMismatchError",
    "CompletenessWarning",
    "BlankMapWarning",
]


class ExplainerError(ValueError):
    """Base class of the errors raised for bad input or an unusable model.

    Example:
        >>> try:
        ...     ke.GradCAM(model, layer="conv_5").explain(x)
        ... except ke.ExplainerError as error:   # or ValueError
        ...     print(error)
        No layer named 'conv_5' in the model. Did you mean 'conv5'?
    """


class InputError(ExplainerError):
    """The inputs to explain are malformed (rank, size, values, emptiness)."""


class BackgroundError(InputError):
    """A background set of baselines (DeepSHAP) is empty, not finite or of another shape.

    Example:
        >>> ke.DeepSHAP(model, background=np.zeros((0, 8, 8, 3)))
        BackgroundError: background must be a non-empty set of baselines ...
    """


class TargetError(ExplainerError):
    """The targets to explain do not fit the inputs or the model's outputs."""


class LayerError(ExplainerError):
    """The layer to explain cannot be found or is not connected to the output."""


class ModelStructureError(ExplainerError):
    """The model cannot be split or lacks the structure a method requires."""


class UnsupportedLayerError(ModelStructureError):
    """A layer has no LRP rule (attention, LayerNormalization, ...).

    The message names the layer and the layers LRP supports. Give the layer a
    rule (`rules={"path/to/layer": "gradient"}`) or pass
    `unsupported="gradient"` to let such layers keep their ordinary gradient.
    """


class LRPRuleError(ExplainerError):
    """An LRP rule or composite is unknown, misses its parameters, or does not fit its layer."""


class NonFiniteError(ExplainerError):
    """A score or gradient the method needs is NaN or Inf, though the inputs are finite.

    Integrated Gradients names the point of the path (its `alpha`) and the
    baseline; other methods name the samples whose maps it would have spoiled.
    No NaN or Inf is ever returned as a map value.
    """


class RunMismatchError(ExplainerError):
    """`explain_to_disk` found a run made with other options, targets or weights.

    The message names what differs. Write to another directory, or pass
    `resume=False` to replace the run there.

    Example:
        >>> try:
        ...     ke.Saliency(model, channel_reduction="l2").explain_to_disk(x, "run", 0)
        ... except ke.RunMismatchError as error:   # or ValueError
        ...     print(error)
    """


class CompletenessWarning(UserWarning):
    """Integrated Gradients' maps miss completeness by more than the tolerance.

    The attributions of a sample should sum to `S(x) - S(baseline)`; the gap
    is the error of the path integral, which depends on the quadrature rule
    (`method`, named in the message) and shrinks as `steps` grows.

    Example:
        >>> import warnings
        >>> warnings.simplefilter("ignore", ke.CompletenessWarning)   # silence it
    """


class BlankMapWarning(UserWarning):
    """Some maps came back all zero: the explanation of those samples is empty.

    With the default `postprocess='auto'` a map is all zero when the method
    found no positive evidence (the ReLU of the CAM family removes every
    value) or when its raw map is constant (min-max normalisation maps a
    constant to 0); `postprocess=None` keeps the signed raw map. With
    `postprocess=None` the raw map itself is zero: the explained score does
    not respond to the input (or layer) at all. Not raised for a callable
    `postprocess`, whose zeros are the caller's to interpret. Warned once per
    explainer, naming the samples; `explain_to_disk` also writes it to the
    run's `run.log`.

    Example:
        >>> import warnings
        >>> warnings.simplefilter("ignore", ke.BlankMapWarning)   # silence it
    """


def did_you_mean(name: str, candidates: Iterable[str], limit: int = 5) -> str:
    """Return a ' Did you mean ...?' hint listing the nearest candidate names."""
    close = difflib.get_close_matches(name, list(candidates), n=limit, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + ", ".join(repr(c) for c in close) + "?"


def warn_user(warning: Warning) -> None:
    """Issue `warning` at the user's line: the first caller outside this package.

    Example:
        >>> warn_user(CompletenessWarning("raise steps"))
    """
    package = Path(__file__).resolve().parent
    level, frame = 1, inspect.currentframe()
    while frame is not None and package in Path(frame.f_code.co_filename).resolve().parents:
        level, frame = level + 1, frame.f_back
    warnings.warn(warning, stacklevel=level)
