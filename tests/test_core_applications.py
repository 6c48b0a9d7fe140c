"""Real architectures from keras.applications (weights=None, small inputs)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_explainable as ke

SIZE = 32


def _with_head(backbone: keras.Model) -> keras.Model:
    inputs = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="classes")(pooled))


ARCHITECTURES = {
    "ResNet50V2": lambda: keras.applications.ResNet50V2(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=5
    ),
    "MobileNetV2": lambda: keras.applications.MobileNetV2(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=5
    ),
    "EfficientNetB0": lambda: keras.applications.EfficientNetB0(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=5
    ),
    "VGG16": lambda: _with_head(
        keras.applications.VGG16(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    ),
    "DenseNet121": lambda: keras.applications.DenseNet121(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=5
    ),
    "ConvNeXtTiny": lambda: keras.applications.ConvNeXtTiny(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=5
    ),
}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_application_models(name):
    keras.utils.set_random_seed(0)
    model = ARCHITECTURES[name]()
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    probabilities = model.predict(x, verbose=0)
    explainer = ke.GradCAM(model, layer=None)
    assert explainer.exposure.stripped_activation == "softmax"
    expl = explainer.explain(x, [[0, 4]] * 2)
    assert expl.maps.shape == (2, SIZE, SIZE, 2)
    assert np.isfinite(expl.maps).all() and expl.maps.min() >= 0 and expl.maps.max() <= 1
    # the explained scores are the logits: their softmax differences match the model's
    np.testing.assert_allclose(
        expl.scores[:, 0] - expl.scores[:, 1],
        np.log(probabilities[:, 0]) - np.log(probabilities[:, 4]),
        rtol=1e-2,
        atol=1e-3,
    )
    if name == "ConvNeXtTiny":  # its head normalises the pooled features: not CAM's structure
        with pytest.raises(ke.ModelStructureError, match="global average pooling"):
            ke.CAM(model)
    elif name in ("ResNet50V2", "MobileNetV2"):
        top = ke.CAM(model).explain(x)
        chosen = np.take_along_axis(probabilities, top.targets, axis=1)[:, 0]
        np.testing.assert_allclose(chosen, probabilities.max(-1), rtol=1e-6)
        saliency = ke.Saliency(model).explain(x, 1)
        assert saliency.maps.shape == (2, SIZE, SIZE, 1) and saliency.maps.max() == pytest.approx(
            1.0
        )
