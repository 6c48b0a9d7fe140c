"""The methods the command line offers, by command-line name."""

from __future__ import annotations

from typing import Any

import attrs

from keras_explainable import (
    CAM,
    LIME,
    LRP,
    RISE,
    TTA,
    AblationCAM,
    Deconvnet,
    DeepLIFT,
    EigenCAM,
    EigenGradCAM,
    FullGradient,
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
    SmoothGrad,
    XGradCAM,
)
from keras_explainable.cli.errors import CommandError
from keras_explainable.errors import did_you_mean

__all__ = ["METHODS", "MethodSpec", "available_methods", "build_method", "find_method"]


@attrs.frozen
class MethodSpec:
    """How the command line builds one method.

    Attributes:
        explainer: the explainer class.
        wraps: for a decorator (`SmoothGrad`, `TTA`), the explainer class it
            wraps, built with the model and the options; None otherwise.
        defaults: constructor arguments the command line passes unless its
            options give them (a GradientSHAP background, say).

    Example:
        >>> MethodSpec(SmoothGrad, wraps=Saliency).build(model, batch_size=8)
    """

    explainer: type
    wraps: type | None = None
    defaults: dict[str, Any] = attrs.field(factory=dict, hash=False)

    @property
    def needs_layer(self) -> bool:
        """Whether the method explains a hidden layer (and takes `--layer`)."""
        return bool((self.wraps or self.explainer).needs_layer)

    def build(self, model: Any, **options: Any) -> Any:
        """Construct the explainer for `model` with `options`."""
        if self.wraps is None:
            return self.explainer(model, **{**self.defaults, **options})
        return self.explainer(self.wraps(model, **options), **self.defaults)


#: The methods the command line offers, by command-line name. Adding a method
#: is one line here.
METHODS: dict[str, MethodSpec] = {
    "cam": MethodSpec(CAM),
    "gradcam": MethodSpec(GradCAM),
    "gradcam++": MethodSpec(GradCAMPlusPlus),
    "xgradcam": MethodSpec(XGradCAM),
    "hirescam": MethodSpec(HiResCAM),
    "layercam": MethodSpec(LayerCAM),
    "eigencam": MethodSpec(EigenCAM),
    "eigengradcam": MethodSpec(EigenGradCAM),
    "scorecam": MethodSpec(ScoreCAM),
    "ablationcam": MethodSpec(AblationCAM),
    "fullgrad": MethodSpec(FullGradient),
    "saliency": MethodSpec(Saliency),
    "guidedbackprop": MethodSpec(GuidedBackprop),
    "deconvnet": MethodSpec(Deconvnet),
    "guidedgradcam": MethodSpec(GuidedGradCAM),
    "smoothgrad": MethodSpec(SmoothGrad, wraps=Saliency),
    "tta": MethodSpec(TTA, wraps=GradCAM),
    "ig": MethodSpec(IntegratedGradients),
    "inputxgradient": MethodSpec(InputXGradient),
    "lrp": MethodSpec(LRP, defaults={"composite": "epsilon_plus_flat"}),
    # Against the zero baseline; DeepSHAP needs a background set, which the
    # command line does not take.
    "deeplift": MethodSpec(DeepLIFT),
    # No background set on the command line: a fresh uniform-noise baseline
    # in each image's value range for each draw.
    "gradientshap": MethodSpec(GradientSHAP, defaults={"background": "uniform"}),
    # A modest cost on the command line: 500 masked passes of an 8x8 grid per image.
    "kernelshap": MethodSpec(KernelSHAP, defaults={"samples": 500, "grid": (8, 8)}),
    "lime": MethodSpec(LIME, defaults={"samples": 500, "grid": (8, 8)}),
    # Half-overlapping 8x8 windows (225 positions on the demo's 64x64 images).
    "occlusion": MethodSpec(Occlusion, defaults={"window": 8, "stride": 4}),
    "rise": MethodSpec(RISE, defaults={"masks": 1000}),
}


def available_methods() -> dict[str, MethodSpec]:
    """Return the methods the command line offers, by name (a copy of `METHODS`)."""
    return dict(METHODS)


def find_method(name: str) -> MethodSpec:
    """Return the method registered as `name`.

    Raises:
        CommandError: no method has that name (the message suggests the
            nearest names).
    """
    if name not in METHODS:
        raise CommandError(
            f"unknown method {name!r}; choose from: {', '.join(METHODS)}."
            + did_you_mean(name, METHODS)
        )
    return METHODS[name]


def build_method(name: str, model: Any, *, layer: str | None = None, **options: Any) -> Any:
    """Construct the explainer registered as `name` for `model`.

    Args:
        name: the method's command-line name.
        model: the Keras model to explain.
        layer: the layer to explain (`--layer`), or None for the default.
        **options: the explainer's options (`batch_size`, `verbose`).

    Raises:
        CommandError: an unknown method, or a layer given to a method that
            explains the input.
    """
    spec = find_method(name)
    if layer is not None:
        if not spec.needs_layer:
            raise CommandError(
                f"the method {name!r} explains the input directly and takes no --layer."
            )
        options["layer"] = layer
    return spec.build(model, **options)
