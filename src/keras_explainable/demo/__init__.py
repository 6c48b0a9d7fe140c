"""A demo that needs no download: synthetic shapes and a small trained CNN.

`make_shapes` draws cluttered images whose ground truth (each object's class,
mask and box) is known exactly; `load_demo_model` loads the CNN bundled with
the package, trained on them (`python -m keras_explainable.demo.train`
rebuilds it); `pointing_game` scores how well maps localise the objects.

Example:
    >>> from keras_explainable import demo
    >>> data = demo.make_shapes(8, seed=7)
    >>> model = demo.load_demo_model()
    >>> expl = ke.GradCAM(model).explain(data.images, data.labels)
    >>> demo.pointing_game(expl.maps, data.masks).mean()
"""

from __future__ import annotations

import importlib.resources
from typing import Any

import numpy as np

from keras_explainable.demo.shapes import CLASS_COLORS, CLASS_NAMES, Shapes, make_shapes

__all__ = [
    "CLASS_COLORS",
    "CLASS_NAMES",
    "MODEL_FILE",
    "Shapes",
    "load_demo_model",
    "make_shapes",
    "pointing_game",
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


def pointing_game(maps: Any, masks: Any, target: int = 0) -> np.ndarray:
    """Whether each map's peak lies inside the object's mask.

    The pointing game (Zhang et al., 2016, https://arxiv.org/abs/1608.00507)
    counts a hit when the location of a map's maximum falls on the object;
    the hit rate is a localisation accuracy. A constant map has no peak and
    is a miss.

    Args:
        maps: `(N, H, W)` maps, or `(N, H, W, L)` (then `target` selects one),
            at the masks' resolution. An `Explanation` works too.
        masks: bool `(N, H, W)`: the pixels of the explained object.
        target: which of the L maps to score (default 0).

    Returns:
        bool `(N,)`: a hit per sample; `.mean()` is the accuracy.

    Raises:
        ValueError: the maps and masks have different shapes.

    Example:
        >>> pointing_game(expl.maps, data.masks).mean()
        0.95
    """
    maps = np.asarray(maps)
    masks = np.asarray(masks, dtype=bool)
    if maps.ndim == masks.ndim + 1:
        maps = maps[..., target]
    if maps.shape != masks.shape:
        raise ValueError(
            f"maps of shape {maps.shape} do not match masks of shape {masks.shape}; "
            "explain with resize=True so maps have the images' size."
        )
    flat_maps = maps.reshape(len(maps), -1)
    peaks = flat_maps.argmax(axis=1)
    hits = masks.reshape(len(masks), -1)[np.arange(len(masks)), peaks]
    constant = flat_maps.max(axis=1) == flat_maps.min(axis=1)
    return hits & ~constant
