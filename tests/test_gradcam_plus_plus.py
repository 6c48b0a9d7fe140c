"""Grad-CAM++ weights and maps against hand computations."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from keras_explainable.methods.gradcam_plus_plus import gradcam_plus_plus_weights

# Activations A (2x2 positions, 2 channels) and gradients g = dS/dA, by channel.
A0 = np.array([[1.0, 2.0], [0.0, 1.0]])  # sum 4
A1 = np.array([[-1.0, -1.0], [0.0, -2.0]])  # sum -4
G0 = np.array([[1.0, -1.0], [0.5, 0.0]])
G1 = np.array([[0.5, 1.0], [0.25, 3.0]])
# alpha = g^2 / (2 g^2 + sum(A) g^3), weight = sum alpha * relu(g):
# channel 0: g=1 -> 1/(2+4) = 1/6; g=-1 -> relu 0; g=0.5 -> 0.25/(0.5+0.5) = 1/4;
#   g=0 -> 0.  w0 = 1/6 * 1 + 1/4 * 0.5 = 7/24.
# channel 1: g=0.5 -> denominator 0.5 - 4 * 0.125 = 0 -> alpha 0 (guard);
#   g=1 -> 1/(2-4) = -1/2; g=0.25 -> 0.0625/(0.125-0.0625) = 1; g=3 -> 9/(18-108)
#   = -1/10.  w1 = 0 - 1/2 * 1 + 1 * 0.25 - 1/10 * 3 = -0.55.
W0, W1 = 7 / 24, -0.55
# A second target whose gradient is 1 everywhere: alpha = 1 / (2 + sum(A)):
# w0 = 4 * 1/6 = 2/3, w1 = 4 * 1/(2-4) = -2.
V0, V1 = 2 / 3, -2.0


def _stack(*channels):
    return np.stack(channels, axis=-1).astype("float32")


def test_weights_match_hand_computation():
    features = _stack(A0, A1)[None]  # (1, 2, 2, 2)
    gradients = np.stack([_stack(G0, G1), np.ones((2, 2, 2), "float32")])[None]
    weights = gradcam_plus_plus_weights(tf.constant(features), tf.constant(gradients))
    np.testing.assert_allclose(weights.numpy(), [[[W0, W1], [V0, V1]]], rtol=1e-6)


def test_zero_denominator_gives_zero_alpha_not_nan():
    # sum(A) = -4 and g = 0.5 everywhere: every denominator is 0.
    features = np.full((1, 2, 2, 1), -1.0, "float32")
    gradients = np.full((1, 1, 2, 2, 1), 0.5, "float32")
    weights = gradcam_plus_plus_weights(tf.constant(features), tf.constant(gradients))
    np.testing.assert_array_equal(weights.numpy(), [[[0.0]]])


def _linear_model():
    # x (2x2x2) -> identity 1x1 conv "features" -> flatten -> Dense(2), no biases:
    # A = x and dS_k/dA = the k-th kernel column reshaped to (2, 2, 2).
    inputs = keras.Input((2, 2, 2))
    features = keras.layers.Conv2D(2, 1, use_bias=False, name="features")(inputs)
    flat = keras.layers.Flatten()(features)
    outputs = keras.layers.Dense(2, use_bias=False)(flat)
    model = keras.Model(inputs, outputs)
    model.layers[1].set_weights([np.eye(2, dtype="float32")[None, None]])
    kernel = np.stack([_stack(G0, G1).reshape(-1), np.ones(8, "float32")], axis=1)
    model.layers[3].set_weights([kernel])
    return model


def test_maps_match_hand_computation():
    model = _linear_model()
    x = _stack(A0, A1)[None]
    expl = ke.GradCAMPlusPlus(model, postprocess=None, resize=False).explain(x, [[0, 1]])
    np.testing.assert_allclose(expl.maps[0, ..., 0], W0 * A0 + W1 * A1, rtol=1e-6)
    np.testing.assert_allclose(expl.maps[0, ..., 1], V0 * A0 + V1 * A1, rtol=1e-6)
    assert expl.layer == "features"
    assert expl.method == "GradCAMPlusPlus"
    # Grad-CAM averages the same gradients instead: w0 = (1 - 1 + 0.5 + 0) / 4.
    gradcam = ke.GradCAM(model, postprocess=None, resize=False).explain(x, 0)
    np.testing.assert_allclose(gradcam.maps[0, ..., 0], 0.125 * A0 + 1.1875 * A1, rtol=1e-6)


def test_postprocessed_maps_are_the_normalised_rectified_hand_maps():
    model = _linear_model()
    x = _stack(A0, A1)[None]
    expl = ke.GradCAMPlusPlus(model, resize=False).explain(x, 0)
    raw = np.maximum(W0 * A0 + W1 * A1, 0.0)
    expected = (raw - raw.min()) / (raw.max() - raw.min())
    np.testing.assert_allclose(expl.maps[0, ..., 0], expected, rtol=1e-5, atol=1e-7)


def test_options_are_the_explainer_options():
    model = _linear_model()
    with pytest.raises(ValueError, match="batch_size"):
        ke.GradCAMPlusPlus(model, batch_size=0)
