"""keras-explainable: explain the predictions of Keras models.

Example:
    >>> import keras_explainable as ke
    >>> expl = ke.GradCAM(model).explain(x, y)
    >>> expl.maps.shape   # (N, H, W, L)
"""

from keras_explainable import metrics
from keras_explainable.base import Attribution, Explainer, FeatureGradients, InputGradients
from keras_explainable.decorators import TTA, Decorator, SmoothGrad
from keras_explainable.errors import (
    ExplainerError,
    InputError,
    LayerError,
    ModelStructureError,
    TargetError,
)
from keras_explainable.explanation import Explanation
from keras_explainable.exposure import SplitModel
from keras_explainable.methods import (
    CAM,
    FullGradient,
    FullGradientTerms,
    GradCAM,
    GradCAMPlusPlus,
    Saliency,
    ScoreCAM,
)
from keras_explainable.targets import Targets

__version__ = "0.1.0"

__all__ = [
    "CAM",
    "TTA",
    "Attribution",
    "Decorator",
    "Explainer",
    "ExplainerError",
    "Explanation",
    "FeatureGradients",
    "FullGradient",
    "FullGradientTerms",
    "GradCAM",
    "GradCAMPlusPlus",
    "InputError",
    "InputGradients",
    "LayerError",
    "ModelStructureError",
    "Saliency",
    "ScoreCAM",
    "SmoothGrad",
    "SplitModel",
    "TargetError",
    "Targets",
    "__version__",
    "metrics",
]
