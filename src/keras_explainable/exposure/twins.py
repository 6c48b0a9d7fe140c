"""Linear twins: a layer without its fused activation, sharing its variables.

Dense, EinsumDense and the convolutions apply their activation last, to the
output of a linear map. A *linear twin* is the same layer with a linear
activation that shares the layer's variables, so a tap
(`keras_explainable.exposure.taps.PreActivation`) can read the
pre-activation output (FullGradient's bias-gradients, the logits behind a
fused softmax) or put a different activation after it (Guided Backprop's
ReLUs), and still follow the model's weights.
"""

from __future__ import annotations

from typing import Any

import keras

__all__ = ["LINEAR_MAP_LAYERS", "has_fused_activation", "linear_twin"]

# Layers whose `activation` is applied last, to the output of a linear map: the
# only ones a tap may run as linear twin + activation.
LINEAR_MAP_LAYERS = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)


def has_fused_activation(layer: Any) -> bool:
    """Whether `layer` applies a non-linear activation last, to a linear map."""
    activation = getattr(layer, "activation", None)
    return (
        isinstance(layer, LINEAR_MAP_LAYERS)
        and activation is not None
        and activation is not keras.activations.linear
    )


def linear_twin(layer: keras.layers.Layer, *inputs: Any, name: str | None = None) -> Any:
    """A twin of `layer` without its activation, built for `inputs`; shares its variables.

    The twin has `layer`'s config with a linear activation, and it *shares*
    `layer`'s variables instead of copying them: while the twin builds, each
    weight it asks for is answered with `layer`'s weight of the same name. So
    an explanation follows the model's weights after `fit` or `set_weights`,
    and a compiled step never reads stale values.

    Args:
        layer: a layer of `LINEAR_MAP_LAYERS`.
        *inputs: tensors of the shapes the layer is called on (their
            shapes and dtypes build the twin; symbolic `keras.KerasTensor`s
            or traced tensors).
        name: the twin's name (default `<layer name>_linear`).

    Returns:
        The built twin layer.

    Raises:
        ValueError: the twin asks for a weight the layer does not have.
    """
    config = dict(layer.get_config())
    config["activation"] = "linear"
    config["name"] = name or f"{layer.name}_linear"
    twin = layer.__class__.from_config(config)
    variables = {variable.name: variable for variable in layer.weights}

    def shared_weight(*_: Any, name: str | None = None, shape: Any = None, **__: Any) -> Any:
        variable = variables.get(name)
        if variable is None or tuple(variable.shape) != tuple(shape):
            raise ValueError(
                f"the twin asks for weight {name!r} of shape {shape}; the layer has "
                f"{[(v.name, tuple(v.shape)) for v in layer.weights]}"
            )
        return variable

    twin.add_weight = shared_weight
    try:
        twin(*(keras.KerasTensor(tuple(t.shape), dtype=t.dtype) for t in inputs))
    finally:
        del twin.add_weight
    return twin
