"""keras-explainable: explain the predictions of Keras models.

Example:
    >>> import keras_explainable as ke
    >>> expl = ke.GradCAM(model).explain(x, y)
    >>> expl.maps.shape   # (N, H, W, L)

The public names are imported on first use, so `import keras_explainable`
does not import TensorFlow by itself: the command line quiets TensorFlow's
start-up logging before anything imports it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "Attribution": "keras_explainable.base",
    "Explainer": "keras_explainable.base",
    "FeatureGradients": "keras_explainable.base",
    "InputGradients": "keras_explainable.base",
    "Decorator": "keras_explainable.decorators",
    "SmoothGrad": "keras_explainable.decorators",
    "TTA": "keras_explainable.decorators",
    "BlankMapWarning": "keras_explainable.errors",
    "CompletenessWarning": "keras_explainable.errors",
    "ExplainerError": "keras_explainable.errors",
    "InputError": "keras_explainable.errors",
    "BackgroundError": "keras_explainable.errors",
    "LayerError": "keras_explainable.errors",
    "ModelStructureError": "keras_explainable.errors",
    "NonFiniteError": "keras_explainable.errors",
    "RunMismatchError": "keras_explainable.errors",
    "TargetError": "keras_explainable.errors",
    "Explanation": "keras_explainable.explanation",
    "SplitModel": "keras_explainable.exposure",
    "list_layers": "keras_explainable.exposure",
    "LayerInfo": "keras_explainable.exposure",
    "TokenBaseline": "keras_explainable.baselines",
    "AblationCAM": "keras_explainable.methods",
    "CAM": "keras_explainable.methods",
    "Deconvnet": "keras_explainable.methods",
    "DeepLIFT": "keras_explainable.methods",
    "DeepSHAP": "keras_explainable.methods",
    "EigenCAM": "keras_explainable.methods",
    "EigenGradCAM": "keras_explainable.methods",
    "FullGradient": "keras_explainable.methods",
    "FullGradientTerms": "keras_explainable.methods",
    "GradCAM": "keras_explainable.methods",
    "GradCAMPlusPlus": "keras_explainable.methods",
    "GuidedBackprop": "keras_explainable.methods",
    "GuidedGradCAM": "keras_explainable.methods",
    "HiResCAM": "keras_explainable.methods",
    "LayerCAM": "keras_explainable.methods",
    "GradientSHAP": "keras_explainable.methods",
    "InputXGradient": "keras_explainable.methods",
    "IntegratedGradients": "keras_explainable.methods",
    "KernelSHAP": "keras_explainable.methods",
    "LIME": "keras_explainable.methods",
    "LRP": "keras_explainable.methods",
    "LRPRuleError": "keras_explainable.errors",
    "UnsupportedLayerError": "keras_explainable.errors",
    "Occlusion": "keras_explainable.methods",
    "RISE": "keras_explainable.methods",
    "Saliency": "keras_explainable.methods",
    "ScoreCAM": "keras_explainable.methods",
    "XGradCAM": "keras_explainable.methods",
    "Targets": "keras_explainable.targets",
}
# Public submodules reached as attributes (`ke.metrics.Deletion`, `ke.plot.series`,
# `ke.targets.Box`, `ke.callbacks.ExplainCallback`).
_SUBMODULES = ("callbacks", "metrics", "plot", "targets")

__all__ = [
    "CAM",
    "TTA",
    "AblationCAM",
    "Attribution",
    "BackgroundError",
    "BlankMapWarning",
    "CompletenessWarning",
    "Decorator",
    "Deconvnet",
    "DeepLIFT",
    "DeepSHAP",
    "EigenCAM",
    "EigenGradCAM",
    "Explainer",
    "ExplainerError",
    "Explanation",
    "FeatureGradients",
    "FullGradient",
    "FullGradientTerms",
    "GradCAM",
    "GradCAMPlusPlus",
    "GuidedBackprop",
    "GuidedGradCAM",
    "HiResCAM",
    "InputError",
    "InputGradients",
    "LayerCAM",
    "GradientSHAP",
    "InputXGradient",
    "IntegratedGradients",
    "KernelSHAP",
    "LIME",
    "LRP",
    "LRPRuleError",
    "LayerError",
    "LayerInfo",
    "ModelStructureError",
    "NonFiniteError",
    "Occlusion",
    "RISE",
    "RunMismatchError",
    "Saliency",
    "ScoreCAM",
    "SmoothGrad",
    "SplitModel",
    "TokenBaseline",
    "TargetError",
    "Targets",
    "UnsupportedLayerError",
    "XGradCAM",
    "__version__",
    "callbacks",
    "list_layers",
    "metrics",
    "plot",
    "targets",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from keras_explainable import callbacks, metrics, plot, targets
    from keras_explainable.base import Attribution, Explainer, FeatureGradients, InputGradients
    from keras_explainable.baselines import TokenBaseline
    from keras_explainable.decorators import TTA, Decorator, SmoothGrad
    from keras_explainable.errors import (
        BackgroundError,
        BlankMapWarning,
        CompletenessWarning,
        ExplainerError,
        InputError,
        LayerError,
        LRPRuleError,
        ModelStructureError,
        NonFiniteError,
        RunMismatchError,
        TargetError,
        UnsupportedLayerError,
    )
    from keras_explainable.explanation import Explanation
    from keras_explainable.exposure import LayerInfo, SplitModel, list_layers
    from keras_explainable.methods import (
        CAM,
        LIME,
        LRP,
        RISE,
        AblationCAM,
        Deconvnet,
        DeepLIFT,
        DeepSHAP,
        EigenCAM,
        EigenGradCAM,
        FullGradient,
        FullGradientTerms,
        GradCAM,
        GradCAMPlusPlus,
        GradientSHAP,
        GuidedBackprop,
        GuidedGradCAM,
        HiResCAM,
        InputXGradient,
        IntegratedGradients,
        KernelSHAP,
        LayerCAM,
        Occlusion,
        Saliency,
        ScoreCAM,
        XGradCAM,
    )
    from keras_explainable.targets import Targets
