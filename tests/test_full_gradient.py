"""FullGrad: completeness, the map against a direct computation, pre-activation taps."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights
from keras_explainable.exposure import PreActivation, expose
from keras_explainable.exposure.twins import linear_twin


def _set_batch_norm(layer, rng):
    channels = layer.moving_mean.shape[0]
    values = {
        "gamma": rng.uniform(0.5, 2.0, channels),
        "beta": rng.normal(0.0, 0.5, channels),
        "moving_mean": rng.normal(0.0, 0.5, channels),
        "moving_variance": rng.uniform(0.5, 2.0, channels),
    }
    layer.set_weights([values[w.name].astype("float32") for w in layer.weights if w.name in values])


def _relu_network():
    """Piecewise-linear: fused and separate ReLUs, BN (one center-only), max
    pooling, a conv without bias, a nested Sequential block, Dense layers."""
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(scale=False, name="bn2")(x)
    x = keras.layers.ReLU()(x)
    block = keras.Sequential(
        [
            keras.Input((3, 3, 3)),
            keras.layers.Conv2D(3, 1, use_bias=False, activation="relu", name="conv3"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5, activation="relu", name="hidden"),
        ],
        name="block",
    )
    x = block(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="dense")(x)
    model = fix_weights(keras.Model(inputs, outputs), seed=5)
    rng = np.random.default_rng(11)
    _set_batch_norm(model.get_layer("bn1"), rng)
    _set_batch_norm(model.get_layer("bn2"), rng)
    return model


@pytest.fixture(scope="module")
def network():
    return _relu_network()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(3).normal(0, 1, (4, 6, 6, 2)).astype("float32")


def _logits(model, x):
    dense = model.get_layer("dense")
    hidden = keras.Model(model.inputs[0], dense.input)(x)
    kernel, bias = dense.get_weights()
    return hidden.numpy() @ kernel + bias


def test_terms_add_up_to_the_logit(network, x):
    targets = np.array([[0, 1, 2]] * len(x))
    terms = ke.FullGradient(network).terms(x, targets)
    assert list(terms.biases) == [
        "conv1",
        "bn1",
        "conv2",
        "bn2",
        "block/hidden",
        "dense",
    ]
    total = terms.input + sum(terms.biases.values())
    np.testing.assert_allclose(total, terms.scores, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms.scores, _logits(network, x), rtol=1e-5, atol=1e-6)
    # d logit_k / d logits = e_k: the output layer's term is its own bias.
    bias = network.get_layer("dense").get_weights()[1]
    np.testing.assert_allclose(terms.biases["dense"], np.tile(bias, (len(x), 1)), rtol=1e-6)
    # The batch-norm terms are not trivially zero.
    assert np.abs(terms.biases["bn1"]).max() > 1e-3
    assert np.abs(terms.biases["bn2"]).max() > 1e-3


def test_terms_with_top_class_targets(network, x):
    terms = ke.FullGradient(network).terms(x)
    np.testing.assert_array_equal(terms.targets[:, 0], _logits(network, x).argmax(-1))
    total = terms.input + sum(terms.biases.values())
    np.testing.assert_allclose(total, terms.scores, rtol=1e-4, atol=1e-4)


def _small_model():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, name="dense")(x)
    return fix_weights(keras.Model(inputs, outputs), seed=2)


def _psi(term):
    """abs, min-max over (H, W, C) per sample, sum over C, resize to 6x6."""
    term = np.abs(term)
    low = term.min(axis=(1, 2, 3), keepdims=True)
    high = term.max(axis=(1, 2, 3), keepdims=True)
    summed = ((term - low) / (high - low)).sum(axis=-1, keepdims=True)
    return tf.image.resize(summed, (6, 6)).numpy()[..., 0]


def test_map_equals_direct_computation():
    model = _small_model()
    (k1, b1), (k2, b2), (w, b) = (
        model.get_layer(name).get_weights() for name in ("c1", "c2", "dense")
    )
    x = tf.constant(np.random.default_rng(1).normal(0, 1, (3, 6, 6, 2)), tf.float32)
    targets = np.array([1, 0, 1])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        z1 = tf.nn.conv2d(x, k1, 1, "SAME") + b1
        z2 = tf.nn.conv2d(tf.nn.relu(z1), k2, 2, "SAME") + b2
        logits = tf.reduce_mean(tf.nn.relu(z2), axis=(1, 2)) @ w + b
        score = tf.reduce_sum(tf.gather(logits, targets, batch_dims=1))
    gx, g1, g2 = (tape.gradient(score, t).numpy() for t in (x, z1, z2))
    expected = _psi(gx * x.numpy()) + _psi(g1 * b1) + _psi(g2 * b2)

    explainer = ke.FullGradient(model, postprocess=None)
    expl = explainer.explain(x.numpy(), targets)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-5)
    assert expl.layer is None

    terms = explainer.terms(x.numpy(), targets)
    np.testing.assert_allclose(
        terms.input[:, 0], (gx * x.numpy()).sum(axis=(1, 2, 3)), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        terms.biases["c2"][:, 0], (g2 * b2).sum(axis=(1, 2, 3)), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(terms.biases["dense"][:, 0], b[targets], rtol=1e-6)

    auto = ke.FullGradient(model).explain(x.numpy(), targets)
    low = expected.min(axis=(1, 2), keepdims=True)
    high = expected.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(
        auto.maps[..., 0], (expected - low) / (high - low), rtol=1e-4, atol=1e-5
    )


def test_a_pre_activation_tap_reads_before_the_activation_and_keeps_outputs():
    model = _small_model()
    x = np.random.default_rng(4).normal(0, 1, (2, 6, 6, 2)).astype("float32")
    k1, b1 = model.get_layer("c1").get_weights()
    z1 = tf.nn.conv2d(x, k1, 1, "SAME").numpy() + b1
    exposure = expose(model, needs_layer=False)
    (c1,) = [call for call in exposure.model_map.calls if call.name == "c1"]
    assert c1.layer is model.get_layer("c1")
    twin = linear_twin(c1.layer, *c1.inputs)
    tap = PreActivation(c1.site, twin, c1.layer.activation, observe=True)
    forward = tf.function(lambda inputs: exposure.forward(inputs, [tap]).outputs)
    features, outputs, session = exposure.forward(tf.constant(x), [tap])
    np.testing.assert_allclose(session.observed(tap), z1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs, model(x), rtol=1e-6)
    assert features is None
    np.testing.assert_allclose(forward(x), model(x), rtol=1e-6)
    # A named layer is still the layer's real (post-activation) output.
    features, _ = expose(model, layer="c1")(tf.constant(x))
    np.testing.assert_allclose(features, np.maximum(z1, 0.0), rtol=1e-5, atol=1e-6)


def test_a_built_subclassed_model_is_mapped_and_an_unbuilt_one_refused():
    class Net(keras.Model):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def call(self, inputs):
            return self.inner(inputs)

    with pytest.raises(ke.ModelStructureError, match="never built"):
        ke.FullGradient(Net(_small_model()))
    model = _small_model()
    net = Net(model)
    x = np.random.default_rng(5).normal(0, 1, (3, 6, 6, 2)).astype("float32")
    net(x[:1])
    # Its biases are reached through the subclassed model's attribute.
    expected = ke.FullGradient(model).terms(x, 1)
    terms = ke.FullGradient(net).terms(x, 1)
    assert sorted(terms.biases) == sorted(f"{model.name}/{name}" for name in expected.biases)
    np.testing.assert_allclose(terms.input, expected.input, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        ke.FullGradient(net).explain(x, 1).maps,
        ke.FullGradient(model).explain(x, 1).maps,
        atol=1e-5,
    )


def test_terms_reject_datasets():
    explainer = ke.FullGradient(_small_model())
    dataset = tf.data.Dataset.from_tensor_slices(np.zeros((2, 6, 6, 2), "float32"))
    with pytest.raises(TypeError, match="dataset"):
        explainer.terms(dataset)
