"""Model exposure: nested, multi-output, subclassed models, layer choice, ranks."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights, make_body_head, reference_gradcam


def _gradcam_raw(model, x, target, **kwargs):
    return (
        ke.GradCAM(model, postprocess=None, resize=False, **kwargs).explain(x, target).maps[..., 0]
    )


def test_sequential_with_nested_backbone(image_model, images):
    body, head, _ = image_model
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Sequential([body, keras.layers.GlobalAveragePooling2D(), dense])
    dense.set_weights(head.get_layer("dense").get_weights())
    expected = reference_gradcam(body, head, images, np.ones((7, 1), int))
    explainer = ke.GradCAM(model, postprocess=None, resize=False)
    assert explainer.layer_name == "body/features"
    np.testing.assert_allclose(
        explainer.explain(images, 1).maps[..., 0], expected, rtol=1e-4, atol=1e-6
    )


def test_functional_with_nested_models_and_layer_specs(image_model, images):
    body, head, _ = image_model
    inputs = keras.Input((8, 8, 3))
    outputs = head(body(inputs, training=False))
    model = keras.Model(inputs, outputs)
    expected = reference_gradcam(body, head, images, np.zeros((7, 1), int))
    for layer in ("features", "body/features", ["body", "features"], body.get_layer("features")):
        np.testing.assert_allclose(
            _gradcam_raw(model, images, 0, layer=layer), expected, rtol=1e-4, atol=1e-6
        )
    # the nested model itself, by name or index, is its output: the same tensor.
    np.testing.assert_allclose(
        _gradcam_raw(model, images, 0, layer="body"), expected, rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        _gradcam_raw(model, images, 0, layer=1), expected, rtol=1e-4, atol=1e-6
    )


def test_doubly_nested_model(image_model, images):
    body, head, _ = image_model
    wrapper_inputs = keras.Input((8, 8, 3))
    wrapper = keras.Model(wrapper_inputs, body(wrapper_inputs), name="wrapper")
    model = keras.Sequential([wrapper, head])
    expected = reference_gradcam(body, head, images, np.full((7, 1), 2))
    explainer = ke.GradCAM(model, postprocess=None, resize=False)
    assert explainer.layer_name == "wrapper/body/features"
    np.testing.assert_allclose(
        explainer.explain(images, 2).maps[..., 0], expected, rtol=1e-4, atol=1e-6
    )


def test_exposure_shares_weights_and_leaves_model_usable(image_model, images):
    body, head, model = image_model
    before = model.predict(images, verbose=0)
    ke.GradCAM(keras.Sequential([body, head])).explain(images)
    np.testing.assert_allclose(model.predict(images, verbose=0), before, rtol=1e-6)
    assert model.get_layer("features").output is not None


def test_multi_output_model_choice():
    inputs = keras.Input((6, 6, 2))
    features = keras.layers.Conv2D(3, 3, padding="same", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    first = keras.layers.Dense(4, activation="softmax", name="species")(pooled)
    second = keras.layers.Dense(2, name="age")(pooled)
    model = fix_weights(keras.Model(inputs, [first, second]))
    x = np.random.default_rng(0).normal(size=(3, 6, 6, 2)).astype("float32")
    _, age = model.predict(x, verbose=0)
    # Without output=, every output is kept for targets that read them all;
    # a unit target then asks for a choice, before any work.
    both = ke.GradCAM(model)
    for y in (None, 1, np.ones(3, int), ke.targets.Class(1), ke.targets.Regression(1)):
        with pytest.raises(ke.ModelStructureError, match=r"2 outputs \['species', 'age'\]"):
            both.explain(x, y)
    summed = both.explain(x, lambda outputs: outputs[0][:, 3] + outputs[1][:, 1])
    np.testing.assert_allclose(
        summed.scores[:, 0], model.predict(x, verbose=0)[0][:, 3] + age[:, 1], rtol=1e-5
    )
    by_name = ke.GradCAM(model, output="age").explain(x, 1)
    by_index = ke.GradCAM(model, output=1).explain(x, 1)
    np.testing.assert_allclose(by_name.scores[:, 0], age[:, 1], rtol=1e-5)
    np.testing.assert_allclose(by_index.maps, by_name.maps)
    species = ke.GradCAM(model, output="species").explain(x, 3)
    kernel, bias = model.get_layer("species").get_weights()
    pooled_values = model.get_layer("features")(x).numpy().mean(axis=(1, 2))
    np.testing.assert_allclose(
        species.scores[:, 0], (pooled_values @ kernel + bias)[:, 3], rtol=1e-4
    )


@pytest.mark.parametrize("shape", [(12, 2), (4, 6, 6, 1)], ids=["sequence", "volume"])
def test_sequence_and_volume_models(shape):
    body, head, model = make_body_head(input_shape=shape, seed=3)
    x = np.random.default_rng(5).uniform(size=(3, *shape)).astype("float32")
    expected = reference_gradcam(body, head, x, np.ones((3, 1), int))
    np.testing.assert_allclose(_gradcam_raw(model, x, 1), expected, rtol=1e-4, atol=1e-6)
    cam = ke.CAM(model).explain(x, 1)
    assert cam.maps.shape == (3, *shape[:-1], 1)
    np.testing.assert_allclose(cam.maps, ke.GradCAM(model).explain(x, 1).maps, atol=1e-5)
    saliency = ke.Saliency(model).explain(x, 1)
    assert saliency.maps.shape == (3, *shape[:-1], 1)
    assert saliency.maps.max() == pytest.approx(1.0)


def test_resize_one_and_three_spatial_axes():
    # Linear interpolation per axis, checked against numpy's interp with half-pixel centres.
    from keras_explainable import ops

    signal = np.array([0.0, 1.0, 3.0], "float32")[None, :, None]
    resized = ops.resize_maps(signal, [6]).numpy()[0, :, 0]
    centres = (np.arange(6) + 0.5) / 2 - 0.5
    np.testing.assert_allclose(
        resized, np.interp(centres, np.arange(3), signal[0, :, 0]), atol=1e-6
    )
    volume = np.random.default_rng(0).uniform(size=(1, 2, 3, 4, 1)).astype("float32")
    out = ops.resize_maps(volume, [4, 6, 8]).numpy()
    assert out.shape == (1, 4, 6, 8, 1)
    # separable: resizing a volume constant along depth equals resizing its slices in 2D
    flat = np.repeat(volume[:, :1], 2, axis=1)
    import tensorflow as tf

    expected = tf.image.resize(flat[:, 0], (6, 8)).numpy()
    np.testing.assert_allclose(ops.resize_maps(flat, [4, 6, 8]).numpy()[:, 2], expected, atol=1e-6)


class Subclassed(keras.Model):
    def __init__(self, body, head):
        super().__init__()
        self.body = body
        self.head = head

    def call(self, inputs):
        return self.head(self.body(inputs))


def test_subclassed_model_errors_and_split_model(image_model, images):
    body, head, model = image_model
    subclassed = Subclassed(body, head)
    subclassed(images[:1])
    # A built subclassed model is mapped through its layers: Grad-CAM reaches them.
    assert ke.GradCAM(subclassed).layer_name.endswith("features")
    np.testing.assert_allclose(
        ke.GradCAM(subclassed).explain(images, 1).maps,
        ke.GradCAM(model).explain(images, 1).maps,
        atol=1e-5,
    )
    with pytest.raises(ke.ModelStructureError, match="SplitModel"):
        ke.GradCAM(Subclassed(body, head))  # never built: its inputs are not known
    # Saliency needs no hidden layer: it runs on the subclassed model as is.
    saliency = ke.Saliency(subclassed, logits=False).explain(images, 1)
    reference = ke.Saliency(model, logits=False).explain(images, 1)
    np.testing.assert_allclose(saliency.maps, reference.maps, atol=1e-5)
    split = ke.SplitModel(body, head)
    expected = reference_gradcam(body, head, images, np.ones((7, 1), int))
    np.testing.assert_allclose(_gradcam_raw(split, images, 1), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        ke.CAM(split).explain(images, 1).maps, ke.GradCAM(split).explain(images, 1).maps, atol=1e-5
    )


def test_split_model_with_subclassed_halves(image_model, images):
    body, head, _ = image_model

    class Body(keras.Model):
        def __init__(self):
            super().__init__()
            self.inner = body

        def call(self, inputs):
            return self.inner(inputs)

    with pytest.raises(ke.ModelStructureError, match="input_shape"):
        ke.GradCAM(ke.SplitModel(Body(), head))
    split = ke.SplitModel(Body(), head, input_shape=(8, 8, 3))
    expected = reference_gradcam(body, head, images, np.zeros((7, 1), int))
    np.testing.assert_allclose(_gradcam_raw(split, images, 0), expected, rtol=1e-4, atol=1e-6)


def test_auto_layer_skips_one_by_one_maps():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", name="spatial")(inputs)
    x = keras.layers.Conv2D(2, 8, name="collapsed")(x)  # 1x1 output
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    assert ke.GradCAM(model).layer_name == "spatial"


def test_plain_callable_is_explained_end_to_end():
    # A plain function `f(x) -> outputs` takes no `training` argument.
    weights = tf.constant(np.random.default_rng(0).normal(size=(8 * 8 * 3, 3)), tf.float32)

    def model(x):
        return tf.matmul(tf.reshape(x, [tf.shape(x)[0], -1]), weights)

    x = np.random.default_rng(1).uniform(size=(4, 8, 8, 3)).astype("float32")
    expl = ke.Saliency(model).explain(x, 1)
    assert expl.maps.shape == (4, 8, 8, 1)
    np.testing.assert_allclose(expl.scores[:, 0], model(x).numpy()[:, 1], rtol=1e-5)
