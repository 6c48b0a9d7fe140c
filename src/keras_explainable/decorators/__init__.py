"""Decorators: explainers that wrap another explainer (one class per file)."""

from keras_explainable.decorators.base import Decorator
from keras_explainable.decorators.smoothgrad import SmoothGrad
from keras_explainable.decorators.tta import TTA

__all__ = ["Decorator", "SmoothGrad", "TTA"]
