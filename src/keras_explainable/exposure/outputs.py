"""The explained output: which of a model's outputs, and the logits behind its softmax.

A model with several outputs is explained on one (`output=`, a name or an
index) or, by default, on all of them as a structure (for targets that read
them all, such as a detector's boxes and scores). When the explained output
ends in a softmax or sigmoid (a `Softmax` or `Activation` layer, or a Dense
or convolution with the activation fused into it), the explained scores are
the logits behind it: a `PreActivation` tap on that call returns them.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_explainable.errors import ModelStructureError, did_you_mean
from keras_explainable.exposure.model_map import ModelMap
from keras_explainable.exposure.taps import PreActivation
from keras_explainable.exposure.twins import LINEAR_MAP_LAYERS, linear_twin

__all__ = ["ALL_OUTPUTS", "OutputSpec", "logits_tap", "output_names", "select_output"]

OutputSpec = str | int | None

#: The `output_name` of an exposure that explains all of a model's outputs.
ALL_OUTPUTS = "all outputs"

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def output_names(model: Any, outputs: Any) -> list[str]:
    """The names of a model's outputs, in the order of `outputs` (a structure)."""
    if isinstance(outputs, dict):
        return list(outputs)
    names = getattr(model, "output_names", None)
    count = len(outputs) if isinstance(outputs, (list, tuple)) else 1
    if names and len(names) == count:
        return list(names)
    return [f"output_{i}" for i in range(count)]


def select_output(model: Any, outputs: Any, output: OutputSpec) -> tuple[Any, str]:
    """The key that picks the explained output from the model's outputs, and its name.

    Returns:
        `(key, name)`: `key` is a dict key or a list position (see
        `pick_output`), or None for the only output, or for all outputs
        (`name` is then `ALL_OUTPUTS`).

    Raises:
        ModelStructureError: `output` names no output.
        TypeError: `output` is neither a name nor an index.
    """
    names = output_names(model, outputs)
    several = isinstance(outputs, (dict, list, tuple)) and len(outputs) > 1
    if output is None:
        return (None, ALL_OUTPUTS) if several else (None, names[0])
    if isinstance(output, bool) or not isinstance(output, (int, str)):
        raise TypeError(f"output must be an output name or index; got {type(output).__name__}.")
    if isinstance(output, int):
        if not -len(names) <= output < len(names):
            raise ModelStructureError(
                f"output={output} is out of range: the model has {len(names)} output(s) {names}."
            )
        position = output % len(names)
        key = list(outputs)[position] if isinstance(outputs, dict) else position
        return (key if several or isinstance(outputs, dict) else None), names[position]
    if output not in names:
        raise ModelStructureError(
            f"Unknown output {output!r}; the model's outputs are {names}."
            + did_you_mean(output, names)
        )
    position = names.index(output)
    key = output if isinstance(outputs, dict) else position
    return (key if several or isinstance(outputs, dict) else None), output


def pick_output(outputs: Any, key: Any) -> Any:
    """The explained output among a model's outputs (`key` from `select_output`)."""
    if key is None:
        if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
            return outputs[0]
        if isinstance(outputs, dict) and len(outputs) == 1:
            return next(iter(outputs.values()))
        return outputs
    return outputs[key]


def _activation_name(layer: keras.layers.Layer) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    try:
        name = keras.activations.serialize(activation)
    except (ValueError, TypeError):
        return None
    return name if isinstance(name, str) else None


def logits_tap(graph: ModelMap, tensor: Any) -> tuple[PreActivation | None, str | None]:
    """The tap that makes the model return the logits behind `tensor`'s softmax or sigmoid.

    Args:
        graph: the model's map.
        tensor: the traced explained output.

    Returns:
        `(tap, activation)`: the tap and 'softmax' or 'sigmoid', or
        `(None, None)` when the output is not a layer's softmax or sigmoid.

    Raises:
        ModelStructureError: the activation is fused into a layer that
            cannot be rebuilt without it.
    """
    call = graph.source_call(tensor)
    if call is None:
        return None, None
    layer = call.layer
    if isinstance(layer, keras.layers.Softmax):
        return PreActivation(call.site), "softmax"
    activation = _activation_name(layer)
    if activation not in _PROBABILITY_ACTIVATIONS:
        return None, None
    if isinstance(layer, keras.layers.Activation):
        return PreActivation(call.site), activation
    if not isinstance(layer, LINEAR_MAP_LAYERS):
        raise ModelStructureError(
            f"The output layer {call.name!r} applies {activation} inside the layer and "
            "could not be rebuilt without it. Pass logits=False to explain the "
            "probabilities instead."
        )
    twin = linear_twin(layer, *call.inputs[:1], name=f"{layer.name}_logits")
    return PreActivation(call.site, twin), activation
