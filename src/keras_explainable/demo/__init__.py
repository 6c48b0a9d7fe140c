"""A demo that needs no download: synthetic shapes and a small trained CNN.

`make_shapes` draws cluttered images whose ground truth (each object's class,
mask and box) is known exactly; `load_demo_model` loads the CNN bundled with
the package, trained on them (`python -m keras_explainable.demo.train`
rebuilds it). Localisation metrics such as `ke.metrics.PointingGame` score
maps against the masks.

Example:
    >>> from keras_explainable import demo
    >>> data = demo.make_shapes(8, seed=7)
    >>> model = demo.load_demo_model()
    >>> expl = ke.GradCAM(model).explain(data.images, data.labels)
    >>> ke.metrics.PointingGame()(expl, masks=data.masks).mean
"""

from __future__ import annotations

import importlib.resources
from typing import Any

from keras_explainable.demo.shapes import CLASS_COLORS, CLASS_NAMES, Shapes, make_shapes

__all__ = [
    "CLASS_COLORS",
    "CLASS_NAMES",
    "MODEL_FILE",
    "Shapes",
    "load_demo_model",
    "make_shapes",
]

#: The bundled model's file name inside this package.
MODEL_FILE = "shapes_cnn.keras"


def load_demo_model() -> Any:
    """Load the bundled shapes classifier (safe mode, no download).

    The model maps `(N, 64, 64, 3)` images in [0, 1] to `(N, 4)` softmax
    probabilities over `CLASS_NAMES`: four 3x3 convolutions (`conv1` ..
    `conv4`, the last at 16 x 16), global average pooling and a Dense layer,
    about 60 k parameters. It classifies the largest object of
    `make_shapes` images with over 99% accuracy.

    Returns:
        The uncompiled `keras.Model`.

    Raises:
        FileNotFoundError: the model file is missing from the installation.

    Example:
        >>> model = load_demo_model()
        >>> model.predict(make_shapes(4, seed=3).images).argmax(-1)
    """
    import keras

    resource = importlib.resources.files(__name__) / MODEL_FILE
    if not resource.is_file():
        raise FileNotFoundError(
            f"The demo model {MODEL_FILE} is missing from {resource}; rebuild it "
            "with: python -m keras_explainable.demo.train"
        )
    with importlib.resources.as_file(resource) as path:
        return keras.models.load_model(path, compile=False, safe_mode=True)
