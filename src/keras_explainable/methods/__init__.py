"""Explanation methods: one class per file."""

from keras_explainable.methods.cam import CAM
from keras_explainable.methods.deconvnet import Deconvnet
from keras_explainable.methods.full_gradient import FullGradient, FullGradientTerms
from keras_explainable.methods.gradcam import GradCAM
from keras_explainable.methods.gradcam_plus_plus import GradCAMPlusPlus
from keras_explainable.methods.guided_backprop import GuidedBackprop
from keras_explainable.methods.guided_gradcam import GuidedGradCAM
from keras_explainable.methods.saliency import Saliency
from keras_explainable.methods.scorecam import ScoreCAM

__all__ = [
    "CAM",
    "Deconvnet",
    "FullGradient",
    "FullGradientTerms",
    "GradCAM",
    "GradCAMPlusPlus",
    "GuidedBackprop",
    "GuidedGradCAM",
    "Saliency",
    "ScoreCAM",
]
