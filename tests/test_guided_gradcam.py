"""Guided Grad-CAM against Grad-CAM and Guided Backprop computed separately."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from keras_explainable import ops
from test_guided_backprop import relu_network


@pytest.fixture(scope="module")
def network():
    return relu_network()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(8).normal(0.0, 1.0, (5, 8, 8, 3)).astype("float32")


TARGETS = np.array([[0, 2], [1, 0], [2, 1], [1, 1], [0, 2]])


def upsampled_gradcam(network, x, layer):
    """ReLU of the raw Grad-CAM map, upsampled bilinearly to the input's 8 x 8."""
    cam = ke.GradCAM(network, layer=layer, postprocess=None, resize=False).explain(x, TARGETS)
    return tf.image.resize(np.maximum(cam.maps, 0.0), (8, 8), method="bilinear").numpy()


# act3 is 4 x 4 (upsampled); block/relu2 is a ReLU layer inside the nested block.
@pytest.mark.parametrize("layer", ["act3", "block/relu2"])
def test_equals_gradcam_times_guided_backprop(network, x, layer):
    guided = ke.GuidedBackprop(network, postprocess=None).explain(x, TARGETS).maps
    expected = upsampled_gradcam(network, x, layer) * guided
    explainer = ke.GuidedGradCAM(network, layer=layer, postprocess=None)
    expl = explainer.explain(x, TARGETS)
    np.testing.assert_allclose(expl.maps, expected, rtol=1e-5, atol=1e-6)
    auto = ke.GuidedGradCAM(network, layer=layer).explain(x, TARGETS)
    np.testing.assert_allclose(auto.maps, ops.normalize_maps(tf.constant(expected)), atol=1e-5)


def test_gradcam_half_uses_ordinary_gradients_through_the_head(network, x):
    # The head's Dense ReLU passes negative gradients in Grad-CAM: with the
    # guided rule there, the channel weights and so the map would differ.
    explainer = ke.GuidedGradCAM(network, layer="act3", postprocess=None)
    inputs = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:  # the guided replay's gradient to the layer
        features, logits = explainer.exposure(inputs)
        score = tf.reduce_sum(tf.gather(logits, TARGETS[:, :1], batch_dims=1))
    guided_weights = tf.reduce_mean(tape.gradient(score, features), axis=[1, 2])
    wrong = tf.nn.relu(tf.einsum("nhwc,nc->nhw", features, guided_weights))
    wrong = tf.image.resize(wrong[..., None], (8, 8)).numpy()[..., 0]
    guided = ke.GuidedBackprop(network, postprocess=None).explain(x, TARGETS[:, 0]).maps[..., 0]
    expl = explainer.explain(x, TARGETS[:, 0])
    assert not np.allclose(expl.maps[..., 0], wrong * guided, atol=1e-4)
    expected = upsampled_gradcam(network, x, "act3")[..., 0] * guided
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-5, atol=1e-6)
