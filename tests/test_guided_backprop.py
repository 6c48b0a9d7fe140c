"""Guided Backprop and Deconvnet against a hand-built copy of the model with custom ReLUs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights, make_body_head
from keras_explainable.methods.deconvnet import deconvnet_relu_gradient
from keras_explainable.methods.guided_backprop import guided_relu_gradient


def relu_network():
    """Every kind of ReLU the rule covers, and one it leaves alone.

    Fused (Conv2D and Dense with activation="relu"), a `ReLU()` layer and a
    fused ReLU inside a nested Sequential block, an `Activation("relu")`
    layer, and a capped `ReLU(max_value=1)` that keeps its ordinary gradient.
    """
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    block = keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            keras.layers.Conv2D(4, 3, padding="same", name="conv2"),
            keras.layers.ReLU(name="relu2"),
            keras.layers.Conv2D(4, 1, activation="relu", name="conv2b"),
        ],
        name="block",
    )
    x = block(x)
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="conv3")(x)
    x = keras.layers.Activation("relu", name="act3")(x)
    x = keras.layers.ReLU(max_value=1.0, name="capped")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(6, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="dense")(x)
    return fix_weights(keras.Model(inputs, outputs), seed=3)


# The backward rules, written out independently of the library.
RULES = {
    "ordinary": lambda x, g: g * tf.cast(x > 0, g.dtype),
    "guided": lambda x, g: tf.where((x > 0) & (g > 0), g, tf.zeros_like(g)),
    "deconvnet": lambda x, g: tf.maximum(g, 0.0),
}


def reference_gradients(model, x, targets, rule):
    """d logit[target] / dx of a hand-built copy of `relu_network` whose ReLUs use `rule`."""

    @tf.custom_gradient
    def relu(z):
        return tf.maximum(z, 0.0), lambda g: RULES[rule](z, g)

    def conv(layer, h, strides=1):
        return tf.nn.conv2d(h, layer.kernel, strides, "SAME") + layer.bias

    def dense(layer, h):
        return tf.matmul(h, layer.kernel) + layer.bias

    block = model.get_layer("block")
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        h = relu(conv(model.get_layer("conv1"), x))
        h = relu(conv(block.get_layer("conv2"), h))
        h = relu(conv(block.get_layer("conv2b"), h))
        h = relu(conv(model.get_layer("conv3"), h, strides=2))
        h = tf.minimum(tf.nn.relu(h), 1.0)  # the capped ReLU: ordinary gradient
        h = relu(dense(model.get_layer("hidden"), tf.reduce_mean(h, axis=[1, 2])))
        logits = dense(model.get_layer("dense"), h)
        score = tf.reduce_sum(tf.gather(logits, targets, batch_dims=1))
    return tape.gradient(score, x).numpy()


@pytest.fixture(scope="module")
def network():
    return relu_network()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(7).normal(0.0, 1.0, (5, 8, 8, 3)).astype("float32")


TARGETS = np.array([0, 1, 2, 1, 0])


def test_rules_on_small_tensors():
    outputs = tf.constant([0.0, 0.0, 2.0, 3.0])
    gradients = tf.constant([1.0, -1.0, -2.0, 5.0])
    np.testing.assert_array_equal(guided_relu_gradient(outputs, gradients), [0, 0, 0, 5])
    np.testing.assert_array_equal(deconvnet_relu_gradient(outputs, gradients), [1, 0, 0, 5])


def test_reference_is_sensitive_to_the_rule(network, x):
    ordinary, guided, deconvnet = (
        reference_gradients(network, x, TARGETS[:, None], rule) for rule in RULES
    )
    assert not np.allclose(ordinary, guided, atol=1e-3)
    assert not np.allclose(guided, deconvnet, atol=1e-3)
    # the hand-built copy computes what the model computes
    saliency = ke.Saliency(network, postprocess=None, channel_reduction="sum", absolute=False)
    expected = ordinary.sum(axis=-1)
    np.testing.assert_allclose(saliency.explain(x, TARGETS).maps[..., 0], expected, atol=1e-5)


@pytest.mark.parametrize(
    ("method", "rule"), [(ke.GuidedBackprop, "guided"), (ke.Deconvnet, "deconvnet")]
)
def test_gradients_equal_hand_built_reference(network, x, method, rule):
    targets = np.array([[0, 2], [1, 0], [2, 1], [1, 1], [0, 2]])
    expected = np.stack(
        [reference_gradients(network, x, targets[:, [k]], rule) for k in range(2)], axis=-1
    )
    explainer = method(network, postprocess=None)
    # The per-channel gradient of the exposed (rule-replayed) model ...
    inputs = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        _, logits = explainer.exposure(inputs)
        score = tf.reduce_sum(tf.gather(logits, targets[:, :1], batch_dims=1))
    np.testing.assert_allclose(tape.gradient(score, inputs), expected[..., 0], atol=1e-5)
    # ... and the maps: largest absolute value over the channels, per target.
    expl = explainer.explain(x, targets)
    np.testing.assert_allclose(expl.maps, np.abs(expected).max(axis=-2), atol=1e-5)
    signed = method(network, postprocess=None, channel_reduction="sum", absolute=False)
    np.testing.assert_allclose(signed.explain(x, targets).maps, expected.sum(axis=-2), atol=1e-5)


def test_model_and_other_explainers_keep_ordinary_gradients(network, x):
    inputs = tf.convert_to_tensor(x)

    def model_gradient():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            score = tf.reduce_sum(network(inputs)[:, 1])
        return tape.gradient(score, inputs).numpy()

    saliency = ke.Saliency(network, postprocess=None)
    before = saliency.explain(x, TARGETS).maps
    before_gradient = model_gradient()
    guided = ke.GuidedBackprop(network, postprocess=None).explain(x, TARGETS).maps
    ke.Deconvnet(network).explain(x, TARGETS)
    ke.GuidedGradCAM(network).explain(x, TARGETS)
    assert not np.allclose(guided, before, atol=1e-4)
    np.testing.assert_array_equal(saliency.explain(x, TARGETS).maps, before)
    fresh = ke.Saliency(network, postprocess=None).explain(x, TARGETS).maps
    np.testing.assert_allclose(fresh, before, atol=1e-6)
    np.testing.assert_array_equal(model_gradient(), before_gradient)
    assert network.get_layer("conv1").activation is keras.activations.relu
    assert isinstance(network.get_layer("act3"), keras.layers.Activation)


@pytest.mark.parametrize("method", [ke.GuidedBackprop, ke.Deconvnet, ke.GuidedGradCAM])
def test_model_without_relu_warns_and_equals_saliency(method):
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="tanh", name="conv")(inputs)
    x = keras.layers.ReLU(max_value=6.0)(x)  # capped: not a plain ReLU
    x = keras.layers.LeakyReLU(negative_slope=0.1)(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    model = fix_weights(keras.Model(inputs, outputs), seed=1)
    with pytest.warns(UserWarning, match=r"no plain ReLU.*equals Saliency's"):
        explainer = method(model, postprocess=None)
    if method is ke.GuidedGradCAM:
        return
    images = np.random.default_rng(0).normal(size=(3, 6, 6, 2)).astype("float32")
    saliency = ke.Saliency(model, postprocess=None).explain(images, 1)
    np.testing.assert_allclose(explainer.explain(images, 1).maps, saliency.maps, atol=1e-6)


def test_split_model_equals_flat_model(images):
    body, head, model = make_body_head(seed=2)
    flat = ke.GuidedBackprop(model).explain(images, 1)
    split = ke.GuidedBackprop(ke.SplitModel(body, head)).explain(images, 1)
    np.testing.assert_allclose(split.maps, flat.maps, atol=1e-6)


def test_a_built_subclassed_model_gets_the_rule_and_an_unbuilt_one_is_refused(images):
    class Net(keras.Model):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def call(self, inputs):
            return self.inner(inputs)

    model = relu_network()
    with pytest.raises(ke.ModelStructureError, match="never built.*ReLUs|ReLUs.*never built"):
        ke.GuidedBackprop(Net(model))
    net = Net(model)
    net(images[:1])
    np.testing.assert_allclose(
        ke.GuidedBackprop(net, postprocess=None).explain(images, 1).maps,
        ke.GuidedBackprop(model, postprocess=None).explain(images, 1).maps,
        rtol=1e-5,
        atol=1e-7,
    )
