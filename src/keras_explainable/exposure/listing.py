"""`ke.list_layers`: every layer a model calls, with the path to pass as `layer=`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_explainable.errors import ModelStructureError
from keras_explainable.exposure.addressing import LayerTable, describe_layers
from keras_explainable.exposure.core import input_specs, map_of
from keras_explainable.exposure.model_map import DISCOVERY_BATCH

__all__ = ["list_layers"]


def list_layers(model: Any, input_shape: Sequence[int | None] | None = None) -> LayerTable:
    """List every layer call of a model's forward pass: path, class, output shape and kind.

    The model is traced once in inference mode, and every layer it calls is
    listed in the order the calls return: the nodes of functional and
    `Sequential` models (nested ones included), the sublayers of composite
    layers at any depth (a keras-hub encoder's blocks and their layers), and
    the layers a subclassed model holds. Each entry's `path` is what
    `layer=` takes. `kind` says what the CAM-family methods can read there:
    'spatial' (a feature map on the input's spatial axes), 'tokens' (a
    token sequence `(N, T, C)` that fits a patch grid of the image, read on
    that grid), or 'other'. A layer called more than once (shared weights)
    has one entry per call, with its `call_index`. Printing the table shows
    it as columns.

    Args:
        model: a Keras model (functional, `Sequential`, nested, keras-hub,
            or subclassed), or a `SplitModel`.
        input_shape: the shape of one input without the batch axis, for a
            subclassed model that was never built (default: the model's).

    Returns:
        A `LayerTable`: a list of `LayerInfo`, printable as a table.

    Raises:
        ModelStructureError: the model's input shape is not known and
            `input_shape` is not given, or the model cannot run on it.

    Example:
        >>> table = ke.list_layers(model)
        >>> print(table)                  # path, class, output shape, kind
        >>> table.paths("spatial")[-1]    # the last feature map
        >>> ke.GradCAM(model, layer=table.paths("tokens")[-1])
    """
    if input_shape is not None:
        specs = tf.TensorSpec((DISCOVERY_BATCH, *input_shape), tf.float32)
        graph = map_of(model, specs, False)
    else:
        found = input_specs(model)
        if found is None:
            raise ModelStructureError(
                f"The model {getattr(model, 'name', model)!r} does not say what inputs it "
                "takes (a subclassed model that was never built); pass input_shape=(...) "
                "without the batch axis, or call the model once on a batch."
            )
        _, specs, batch_static = found
        graph = map_of(model, specs, batch_static)
    shapes = [graph.shape(tensor) for tensor in graph.inputs]
    image = next((shape for shape in shapes if len(shape) >= 3), None)
    if image is not None and keras.backend.is_int_dtype(
        graph.inputs[shapes.index(image)].dtype.name
    ):
        image = None
    return describe_layers(graph, image)
