"""CAM: class activation maps of a global-average-pooling classifier.

Zhou et al. (2016), "Learning Deep Features for Discriminative Localization".
https://arxiv.org/abs/1512.04150
"""

from __future__ import annotations

import attrs
import keras
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Attribution, Explainer
from keras_explainable.errors import LayerError, ModelStructureError
from keras_explainable.exposure import Exposure, expose
from keras_explainable.exposure.model_map import INFERENCE_IDENTITY_LAYERS, LayerCall
from keras_explainable.targets import FUNCTION, OBJECT, TargetPlan, Targets

__all__ = ["CAM"]

_POOLING = (
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
)
# Layers that are the identity on a pooled (N, C) vector at inference time.
_PASS_THROUGH = INFERENCE_IDENTITY_LAYERS + (keras.layers.Flatten, keras.layers.Identity)


def _global_pooling_head(exposure: Exposure) -> tuple[LayerCall, LayerCall, LayerCall]:
    """The Dense output call, the global average pooling call feeding it, and the pooled call."""
    graph = exposure.model_map
    dense = None if graph is None else graph.source_call(exposure.outputs)
    if dense is None or not isinstance(dense.layer, keras.layers.Dense):
        name = (
            "the output"
            if dense is None
            else (f"{dense.layer.name!r} ({type(dense.layer).__name__})")
        )
        raise ModelStructureError(
            f"CAM needs a Dense output layer fed by global average pooling; {name} "
            "is not Dense. Use GradCAM, which works with any head."
        )
    call = graph.source_call(dense.inputs[0])
    while call is not None and isinstance(call.layer, _PASS_THROUGH):
        call = graph.source_call(call.inputs[0])
    pooled = None if call is None or not call.inputs else graph.source_call(call.inputs[0])
    if (
        call is None
        or not isinstance(call.layer, _POOLING)
        or call.layer.data_format != "channels_last"
        or pooled is None
    ):
        raise ModelStructureError(
            f"CAM needs the Dense layer {dense.layer.name!r} to be fed by "
            "channels-last global average pooling of a layer (dropout and flatten "
            "allowed in between). Use GradCAM, which works with any head."
        )
    return dense, call, pooled


@attrs.define(eq=False)
class CAM(Explainer):
    """Class activation maps (no gradients).

    For a model whose head is `features -> GlobalAveragePooling -> Dense`,
    the map of class `k` is `sum_c W[c, k] A_c`, with `W` the dense kernel and
    `A` the pooled layer's activations. Cost: one forward pass.

    Args:
        model: a model whose explained output is a Dense layer fed (through
            dropout or flatten layers only) by global average pooling of the
            explained layer. The layer is found automatically.
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1].

    Raises:
        ModelStructureError: the head is not global average pooling + Dense,
            or `layer=` names another layer than the one pooled.
        LayerError: `layers=` is given: CAM explains one layer.
        TypeError: (from `explain`) a target callable: CAM explains units.

    Example:
        >>> expl = ke.CAM(model).explain(x)
        >>> expl.layer   # the layer that feeds the global average pooling

    References:
        Zhou, Khosla, Lapedriza, Oliva & Torralba (2016), "Learning Deep
        Features for Discriminative Localization".
        <https://arxiv.org/abs/1512.04150>
    """

    _kernel: keras.Variable | None = attrs.field(default=None, init=False, repr=False)

    def _expose(self) -> Exposure:
        if self.layers is not None:
            raise LayerError(
                "CAM explains the one layer its global average pooling reads; it takes "
                f"no layers= (got layers={list(self.layers)!r}). Use GradCAM(model, "
                "layers=[...]) to explain several layers."
            )
        exposure = super()._expose()
        dense, pooling, pooled = _global_pooling_head(exposure)
        if pooled is not exposure.model_map.innermost(exposure.layers[0].call):
            if self.layer is not None:
                raise ModelStructureError(
                    f"CAM explains the layer that feeds {pooling.layer.name!r}; got layer "
                    f"{exposure.layer_name!r}. Leave layer= unset, or use GradCAM for "
                    "other layers."
                )
            options = {
                **self._exposure_options(),
                "layer": pooled.layer,
                "call_index": pooled.index,
            }
            exposure = expose(self.model, **options)
        self._kernel = dense.layer.kernel
        return exposure

    def _check_targets(self, plan: TargetPlan) -> None:
        if plan.kind in (FUNCTION, OBJECT):
            what = "a target callable" if plan.kind == FUNCTION else type(plan.target).__name__
            raise TypeError(
                f"CAM explains class units (the weights of its last Dense layer) and cannot "
                f"take {what}; use GradCAM for other objectives."
            )

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        features, outputs = self._forward(inputs)
        scores, indices = targets.select(outputs)
        weights = tf.gather(tf.transpose(self._kernel), indices)
        maps = ops.weighted_feature_sum(features, weights)
        return Attribution(maps, scores, indices)
