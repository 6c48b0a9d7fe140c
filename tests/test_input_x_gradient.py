"""Gradient times input against a direct GradientTape computation."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import make_smooth_model


@pytest.fixture(scope="module")
def model():
    return make_smooth_model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(8).uniform(-1, 1, (5, 6, 6, 2)).astype("float32")


def reference_attributions(model, x, targets):
    """`(N, H, W, C)`: x * d logit[target] / dx, with a GradientTape."""
    images = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(images)
        score = tf.reduce_sum(tf.gather(model(images), targets, batch_dims=1))
    return (x * tape.gradient(score, images)).numpy()


def test_equals_input_times_gradient_summed_over_channels(model, x):
    targets = np.array([0, 2, 1, 1, 0])
    expl = ke.InputXGradient(model, postprocess=None, verbose=0).explain(x, targets)
    expected = reference_attributions(model, x, targets)
    np.testing.assert_allclose(expl.maps[..., 0], expected.sum(-1), rtol=1e-5, atol=1e-7)
    l2 = ke.InputXGradient(model, postprocess=None, channel_reduction="l2", verbose=0)
    np.testing.assert_allclose(
        l2.explain(x, targets).maps[..., 0],
        np.linalg.norm(expected, axis=-1),
        rtol=1e-5,
        atol=1e-7,
    )


def test_sums_to_the_score_of_a_linear_model_without_bias(x):
    linear = make_smooth_model(linear=True)
    for layer in linear.layers:
        if layer.weights:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.zeros_like(bias)])
    expl = ke.InputXGradient(linear, postprocess=None, verbose=0).explain(x, 1)
    np.testing.assert_allclose(expl.maps.sum(axis=(1, 2, 3)), expl.scores[:, 0], rtol=1e-4)


def test_auto_postprocessing_is_the_normalised_absolute_value(model, x):
    raw = ke.InputXGradient(model, postprocess=None, verbose=0).explain(x, 2).maps
    auto = ke.InputXGradient(model, verbose=0).explain(x, 2).maps
    magnitude = np.abs(raw)
    low = magnitude.min(axis=(1, 2), keepdims=True)
    high = magnitude.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(auto, (magnitude - low) / (high - low), atol=1e-5)
    assert raw.min() < 0 < raw.max()


def test_bad_options(model):
    with pytest.raises(ValueError, match="channel_reduction"):
        ke.InputXGradient(model, channel_reduction="max")
    with pytest.raises(ke.LayerError, match="layer"):
        ke.InputXGradient(model, layer="conv_a")
