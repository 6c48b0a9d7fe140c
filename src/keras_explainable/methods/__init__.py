"""Explanation methods: one class per file."""

from keras_explainable.methods.ablationcam import AblationCAM
from keras_explainable.methods.cam import CAM
from keras_explainable.methods.deconvnet import Deconvnet
from keras_explainable.methods.deeplift import DeepLIFT
from keras_explainable.methods.deepshap import DeepSHAP
from keras_explainable.methods.eigencam import EigenCAM
from keras_explainable.methods.eigengradcam import EigenGradCAM
from keras_explainable.methods.full_gradient import FullGradient, FullGradientTerms
from keras_explainable.methods.gradcam import GradCAM
from keras_explainable.methods.gradcam_plus_plus import GradCAMPlusPlus
from keras_explainable.methods.gradient_shap import GradientSHAP
from keras_explainable.methods.guided_backprop import GuidedBackprop
from keras_explainable.methods.guided_gradcam import GuidedGradCAM
from keras_explainable.methods.hirescam import HiResCAM
from keras_explainable.methods.input_x_gradient import InputXGradient
from keras_explainable.methods.integrated_gradients import IntegratedGradients
from keras_explainable.methods.kernel_shap import KernelSHAP
from keras_explainable.methods.layercam import LayerCAM
from keras_explainable.methods.lime import LIME
from keras_explainable.methods.lrp import LRP
from keras_explainable.methods.occlusion import Occlusion
from keras_explainable.methods.rise import RISE
from keras_explainable.methods.saliency import Saliency
from keras_explainable.methods.scorecam import ScoreCAM
from keras_explainable.methods.xgradcam import XGradCAM

__all__ = [
    "AblationCAM",
    "CAM",
    "Deconvnet",
    "DeepLIFT",
    "DeepSHAP",
    "EigenCAM",
    "EigenGradCAM",
    "FullGradient",
    "FullGradientTerms",
    "GradCAM",
    "GradCAMPlusPlus",
    "GuidedBackprop",
    "GuidedGradCAM",
    "HiResCAM",
    "LayerCAM",
    "Occlusion",
    "RISE",
    "GradientSHAP",
    "InputXGradient",
    "IntegratedGradients",
    "KernelSHAP",
    "LIME",
    "LRP",
    "Saliency",
    "ScoreCAM",
    "XGradCAM",
]
