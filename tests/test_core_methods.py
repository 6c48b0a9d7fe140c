"""Values of Saliency, CAM and Grad-CAM against hand and direct computations."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import (
    fix_weights,
    make_body_head,
    reference_feature_gradients,
    reference_gradcam,
)


def _raw(cls, model, **kwargs):
    return cls(model, postprocess=None, resize=False, **kwargs)


def test_cam_matches_hand_computation():
    # x -> 1x1 conv (2 channels, fixed) -> GAP -> Dense(2, fixed): every number by hand.
    inputs = keras.Input((2, 2, 1))
    features = keras.layers.Conv2D(2, 1, name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, activation="softmax")(pooled)
    model = keras.Model(inputs, outputs)
    model.layers[1].set_weights([np.array([[[[1.0, -2.0]]]]), np.array([0.5, 0.0])])
    model.layers[3].set_weights([np.array([[2.0, 0.0], [1.0, 3.0]]), np.array([0.1, -0.1])])
    x = np.array([[[1.0], [2.0]], [[3.0], [4.0]]], "float32")[None]
    # channel 0: x + 0.5 ; channel 1: -2x
    a0 = x[0, ..., 0] + 0.5
    a1 = -2 * x[0, ..., 0]
    cam_class0 = 2.0 * a0 + 1.0 * a1
    cam_class1 = 0.0 * a0 + 3.0 * a1
    expl = _raw(ke.CAM, model).explain(x, [[0, 1]])
    np.testing.assert_allclose(expl.maps[0, ..., 0], cam_class0, rtol=1e-6)
    np.testing.assert_allclose(expl.maps[0, ..., 1], cam_class1, rtol=1e-6)
    # scores are the pre-softmax logits: GAP(a) @ W + b
    pooled_by_hand = np.array([a0.mean(), a1.mean()])
    logits = pooled_by_hand @ np.array([[2.0, 0.0], [1.0, 3.0]]) + np.array([0.1, -0.1])
    np.testing.assert_allclose(expl.scores[0], logits, rtol=1e-6)
    np.testing.assert_array_equal(expl.targets, [[0, 1]])
    # Grad-CAM on a GAP + Dense head is CAM divided by the number of positions.
    gradcam = _raw(ke.GradCAM, model).explain(x, [[0, 1]])
    np.testing.assert_allclose(gradcam.maps, expl.maps / 4.0, rtol=1e-5)


def test_gradcam_equals_direct_computation(image_model, images):
    body, head, model = image_model
    targets = np.array([0, 2, 1, 1, 0, 2, 2])
    expected = reference_gradcam(body, head, images, targets[:, None])
    expl = _raw(ke.GradCAM, model, layer="features").explain(images, targets)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-6)


def test_gradcam_is_cam_up_to_positive_factor_after_postprocessing(image_model, images):
    _, _, model = image_model
    gradcam = ke.GradCAM(model).explain(images, 1)
    cam = ke.CAM(model).explain(images, 1)
    np.testing.assert_allclose(gradcam.maps, cam.maps, atol=1e-5)
    assert gradcam.maps.max() == pytest.approx(1.0)
    assert gradcam.maps.min() >= 0.0


def test_postprocessing_relu_resize_normalise(image_model, images):
    body, head, model = image_model
    raw = reference_gradcam(body, head, images, np.zeros((7, 1), int))
    rectified = np.maximum(raw, 0)[..., None]
    expl = ke.GradCAM(model, layer="features", resize=False).explain(images, 0)
    low = rectified.min(axis=(1, 2), keepdims=True)
    high = rectified.max(axis=(1, 2), keepdims=True)
    expected = np.where(high > low, (rectified - low) / np.where(high > low, high - low, 1), 0)
    np.testing.assert_allclose(expl.maps, expected, atol=1e-5)


def test_resize_to_input_size():
    body, head, model = make_body_head(input_shape=(16, 16, 3))
    dense = keras.layers.Dense(3)
    pooled_model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            body,
            keras.layers.MaxPooling2D(4, name="pool"),
            keras.layers.GlobalAveragePooling2D(),
            dense,
        ]
    )
    dense.set_weights(head.get_layer("dense").get_weights())
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    small = ke.GradCAM(pooled_model, layer="pool", postprocess=None, resize=False).explain(x, 0)
    big = ke.GradCAM(pooled_model, layer="pool", postprocess=None).explain(x, 0)
    assert small.maps.shape == (2, 4, 4, 1)
    expected = tf.image.resize(small.maps, (16, 16), method="bilinear").numpy()
    np.testing.assert_allclose(big.maps, expected, atol=1e-6)


def test_saliency_equals_input_gradient(image_model, images):
    _, _, model = image_model
    x = tf.convert_to_tensor(images)
    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()
    with tf.GradientTape() as tape:
        tape.watch(x)
        hidden = model.get_layer("features")(model.get_layer("conv_a")(x))
        logits = tf.matmul(tf.reduce_mean(hidden, axis=(1, 2)), kernel) + bias
        score = tf.reduce_sum(logits[:, 2])
    gradient = tape.gradient(score, x).numpy()
    expl = _raw(ke.Saliency, model).explain(images, 2)
    np.testing.assert_allclose(expl.maps[..., 0], np.abs(gradient).max(-1), rtol=1e-4, atol=1e-7)
    signed = _raw(ke.Saliency, model, absolute=False, channel_reduction="sum").explain(images, 2)
    np.testing.assert_allclose(signed.maps[..., 0], gradient.sum(-1), rtol=1e-4, atol=1e-7)


def test_saliency_of_linear_model_is_its_weights():
    inputs = keras.Input((3, 2))
    logits = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
    model = fix_weights(keras.Model(inputs, logits))
    kernel = model.get_weights()[0]  # (6, 2)
    x = np.ones((2, 3, 2), "float32")
    expl = _raw(ke.Saliency, model).explain(x, [0, 1])
    np.testing.assert_allclose(
        expl.maps[0, :, 0], np.abs(kernel[:, 0]).reshape(3, 2).max(-1), rtol=1e-6
    )
    np.testing.assert_allclose(
        expl.maps[1, :, 0], np.abs(kernel[:, 1]).reshape(3, 2).max(-1), rtol=1e-6
    )


def test_scores_are_logits_behind_softmax(image_model, images):
    body, head, model = image_model
    _, _, logits = reference_feature_gradients(body, head, images, np.zeros((7, 1), int))
    expl = ke.GradCAM(model).explain(images)
    np.testing.assert_array_equal(expl.targets[:, 0], logits.argmax(-1))
    np.testing.assert_allclose(expl.scores[:, 0], logits.max(-1), rtol=1e-5)
    probabilities = ke.GradCAM(model, logits=False).explain(images)
    np.testing.assert_allclose(
        probabilities.scores[:, 0], tf.nn.softmax(logits).numpy().max(-1), rtol=1e-5
    )


def test_separate_softmax_activation_layer_is_stripped(image_model, images):
    body, head, _ = image_model
    inputs = keras.Input((8, 8, 3))
    features = body(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    dense = keras.layers.Dense(3)
    logits = dense(pooled)
    probabilities = keras.layers.Activation("softmax")(logits)
    model = keras.Model(inputs, probabilities)
    dense.set_weights(head.get_layer("dense").get_weights())
    _, _, expected = reference_feature_gradients(body, head, images, np.zeros((7, 1), int))
    explainer = ke.GradCAM(model)
    assert explainer.exposure.stripped_activation == "softmax"
    np.testing.assert_allclose(explainer.explain(images, 1).scores[:, 0], expected[:, 1], rtol=1e-5)


def test_sigmoid_output_explains_logit():
    inputs = keras.Input((4, 4, 2))
    features = keras.layers.Conv2D(3, 3, padding="same", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, activation="sigmoid", name="dense")(pooled)
    model = fix_weights(keras.Model(inputs, outputs))
    x = np.random.default_rng(1).normal(size=(3, 4, 4, 2)).astype("float32")
    probabilities = model.predict(x, verbose=0)
    expl = ke.GradCAM(model).explain(x, 1)
    np.testing.assert_allclose(
        expl.scores[:, 0], np.log(probabilities[:, 1] / (1 - probabilities[:, 1])), rtol=1e-3
    )


def test_callable_target_equals_index_target(image_model, images):
    _, _, model = image_model
    explainer = ke.GradCAM(model)
    by_index = explainer.explain(images, 2)
    by_callable = explainer.explain(images, lambda outputs: outputs[:, 2])
    np.testing.assert_allclose(by_callable.maps, by_index.maps, atol=1e-6)
    np.testing.assert_allclose(by_callable.scores, by_index.scores, rtol=1e-6)
    np.testing.assert_array_equal(by_callable.targets, -1)


def test_callable_target_for_regression():
    inputs = keras.Input((6, 6, 1))
    features = keras.layers.Conv2D(2, 3, padding="same", name="features")(inputs)
    value = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(features))
    model = fix_weights(keras.Model(inputs, value))
    x = np.random.default_rng(3).normal(size=(2, 6, 6, 1)).astype("float32")
    expl = ke.GradCAM(model, postprocess=None).explain(x, lambda outputs: 2.0 * outputs[:, 0])
    np.testing.assert_allclose(
        expl.scores[:, 0], 2.0 * model.predict(x, verbose=0)[:, 0], rtol=1e-5
    )
