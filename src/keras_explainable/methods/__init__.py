"""Explanation methods: one class per file."""

from keras_explainable.methods.cam import CAM
from keras_explainable.methods.full_gradient import FullGradient, FullGradientTerms
from keras_explainable.methods.gradcam import GradCAM
from keras_explainable.methods.gradcam_plus_plus import GradCAMPlusPlus
from keras_explainable.methods.gradient_shap import GradientSHAP
from keras_explainable.methods.input_x_gradient import InputXGradient
from keras_explainable.methods.integrated_gradients import IntegratedGradients
from keras_explainable.methods.saliency import Saliency
from keras_explainable.methods.scorecam import ScoreCAM

__all__ = [
    "CAM",
    "FullGradient",
    "FullGradientTerms",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientSHAP",
    "InputXGradient",
    "IntegratedGradients",
    "Saliency",
    "ScoreCAM",
]
