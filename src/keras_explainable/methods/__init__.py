"""Explanation methods: one class per file."""

from keras_explainable.methods.cam import CAM
from keras_explainable.methods.gradcam import GradCAM
from keras_explainable.methods.saliency import Saliency

__all__ = ["CAM", "GradCAM", "Saliency"]
