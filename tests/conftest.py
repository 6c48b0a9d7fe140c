"""Shared fixtures: tiny models with fixed weights, and reference computations."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
import tensorflow as tf


def fix_weights(model: keras.Model, seed: int = 0, scale: float = 0.5) -> keras.Model:
    """Give every weight of `model` a fixed pseudo-random value."""
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(0.0, scale, w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


def make_body_head(input_shape=(8, 8, 3), channels=4, classes=3, seed=0, softmax=True):
    """A conv body and a GAP + Dense head as separate models, with fixed weights.

    Returns (body, head, model) where model = head(body(x)) as a flat
    functional model sharing the same layers.
    """
    rank = len(input_shape) - 1
    conv = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
    pool = {
        1: keras.layers.GlobalAveragePooling1D,
        2: keras.layers.GlobalAveragePooling2D,
        3: keras.layers.GlobalAveragePooling3D,
    }[rank]
    inputs = keras.Input(input_shape)
    hidden = conv(5, 3, padding="same", activation="relu", name="conv_a")(inputs)
    features = conv(channels, 3, padding="same", activation="relu", name="features")(hidden)
    body = keras.Model(inputs, features, name="body")
    feature_input = keras.Input(features.shape[1:])
    pooled = pool(name="gap")(feature_input)
    logits = keras.layers.Dense(classes, activation="softmax" if softmax else None, name="dense")(
        pooled
    )
    head = keras.Model(feature_input, logits, name="head")
    fix_weights(body, seed)
    fix_weights(head, seed + 1)
    flat_inputs = keras.Input(input_shape)
    x = body.get_layer("conv_a")(flat_inputs)
    x = body.get_layer("features")(x)
    x = head.get_layer("gap")(x)
    out = head.get_layer("dense")(x)
    model = keras.Model(flat_inputs, out, name="flat")
    return body, head, model


def head_logits(head: keras.Model, features) -> tf.Tensor:
    """The head's pre-softmax logits, computed by hand from its Dense weights."""
    dense = head.get_layer("dense")
    kernel, bias = dense.get_weights()
    axes = tuple(range(1, len(features.shape) - 1))
    pooled = tf.reduce_mean(features, axis=axes)
    return tf.matmul(pooled, kernel) + bias


def reference_feature_gradients(body, head, x, target):
    """Features and d logit[target] / d features, with a GradientTape on the halves."""
    x = tf.convert_to_tensor(x, tf.float32)
    features = body(x, training=False)
    with tf.GradientTape() as tape:
        tape.watch(features)
        logits = head_logits(head, features)
        score = tf.reduce_sum(tf.gather(logits, target, batch_dims=1))
    return features.numpy(), tape.gradient(score, features).numpy(), logits.numpy()


def reference_gradcam(body, head, x, target):
    """Raw Grad-CAM maps `(N, *spatial)` computed directly, per the paper."""
    features, gradients, _ = reference_feature_gradients(body, head, x, target)
    axes = tuple(range(1, features.ndim - 1))
    weights = gradients.mean(axis=axes, keepdims=True)
    return (weights * features).sum(axis=-1)


class ClassToken(keras.layers.Layer):
    """Prepend `count` learned tokens to a token sequence `(N, T, C)`."""

    def __init__(self, count=1, **kwargs):
        super().__init__(**kwargs)
        self.count = count

    def build(self, input_shape):
        self.tokens = self.add_weight(shape=(1, self.count, input_shape[-1]), name="tokens")

    def call(self, inputs):
        batch = keras.ops.shape(inputs)[0]
        tokens = keras.ops.broadcast_to(self.tokens, (batch, self.count, inputs.shape[-1]))
        return keras.ops.concatenate([keras.ops.cast(tokens, inputs.dtype), inputs], axis=1)


class PositionEmbedding(keras.layers.Layer):
    """Add a learned embedding to each position of a token sequence `(N, T, C)`."""

    def build(self, input_shape):
        self.embedding = self.add_weight(shape=tuple(input_shape[1:]), name="embedding")

    def call(self, inputs):
        return inputs + keras.ops.cast(self.embedding, inputs.dtype)


def make_vit(size=16, patch=4, dim=8, blocks=2, classes=3, extra_tokens=1, seed=0, softmax=True):
    """A tiny vision transformer with fixed weights, from Keras layers.

    A strided Conv2D cuts `size x size` images into `patch x patch` patches,
    the patch grid is reshaped to tokens, `extra_tokens` learned tokens are
    prepended (a class token; 0 for none), a positional embedding is added,
    and `blocks` pre-norm blocks (`block{i}_norm1`, `block{i}_attention`,
    `block{i}_add1`, ..., `block{i}_add2`) follow. The head reads the first
    token after a final `norm`, or the mean of the tokens without extra ones.
    """
    grid = size // patch
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(dim, patch, strides=patch, name="patches")(inputs)
    x = keras.layers.Reshape((grid * grid, dim), name="tokens")(x)
    if extra_tokens:
        x = ClassToken(extra_tokens, name="class_token")(x)
    x = PositionEmbedding(name="positions")(x)
    for i in range(blocks):
        h = keras.layers.LayerNormalization(name=f"block{i}_norm1")(x)
        h = keras.layers.MultiHeadAttention(2, dim // 2, name=f"block{i}_attention")(h, h)
        x = keras.layers.Add(name=f"block{i}_add1")([x, h])
        h = keras.layers.LayerNormalization(name=f"block{i}_norm2")(x)
        h = keras.layers.Dense(2 * dim, activation="gelu", name=f"block{i}_mlp1")(h)
        h = keras.layers.Dense(dim, name=f"block{i}_mlp2")(h)
        x = keras.layers.Add(name=f"block{i}_add2")([x, h])
    x = keras.layers.LayerNormalization(name="norm")(x)
    if extra_tokens:
        x = keras.layers.Lambda(lambda tokens: tokens[:, 0], name="class_output")(x)
    else:
        x = keras.layers.GlobalAveragePooling1D(name="gap")(x)
    outputs = keras.layers.Dense(classes, activation="softmax" if softmax else None, name="dense")(
        x
    )
    return fix_weights(keras.Model(inputs, outputs, name="vit"), seed)


@pytest.fixture(scope="session")
def image_model():
    """(body, head, model) for 8x8x3 images, 3 classes, softmax output."""
    return make_body_head()


@pytest.fixture(scope="session")
def images():
    return np.random.default_rng(42).uniform(0, 1, (7, 8, 8, 3)).astype("float32")


def quadrature_nodes(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """A path rule's `(alphas, weights)` on [0, 1], written out here (Captum's definitions).

    The trapezoid takes `steps` intervals (`steps + 1` points), as
    keras-explainable's 'riemann_trapezoid' does.
    """
    if rule == "gausslegendre":
        roots, weights = np.polynomial.legendre.leggauss(steps)
        return (roots + 1) / 2, weights / 2
    if rule == "riemann_trapezoid":
        weights = np.full(steps + 1, 1 / steps)
        weights[0] = weights[-1] = 0.5 / steps
        return np.linspace(0, 1, steps + 1), weights
    offset = {"riemann_left": 0, "riemann_middle": 0.5, "riemann_right": 1}[rule]
    return (np.arange(steps) + offset) / steps, np.full(steps, 1 / steps)


def make_smooth_model(input_shape=(6, 6, 2), classes=3, seed=3, scale=0.5, linear=False):
    """A small smooth classifier (tanh and softplus convolutions, logits out).

    With `linear=True` the convolutions have no activation: the logits are an
    affine function of the input, so path integrals are exact at any steps.
    """
    inputs = keras.Input(input_shape)
    first, second = (None, None) if linear else ("tanh", "softplus")
    x = keras.layers.Conv2D(4, 3, padding="same", activation=first, name="conv_a")(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", activation=second, name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(classes, name="dense")(x)
    return fix_weights(keras.Model(inputs, outputs), seed, scale)


class Opaque(keras.Model):
    """A subclassed model around another: its graph is not visible to Keras."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def call(self, inputs):
        return self.inner(inputs)


def opaque_model(model, form):
    """`model` as a subclassed model ("subclassed") or a plain callable ("callable")."""
    return Opaque(model) if form == "subclassed" else (lambda x: model(x))


def target_forms():
    """Every form of y for the 7-sample `images` fixture and 3 outputs, by name."""
    return {
        "top": None,
        "int": 2,
        "per sample": np.array([0, 1, 2, 2, 1, 0, 1]),
        "several": np.array([[0, 2], [1, 0], [2, 1], [0, 1], [2, 2], [1, 1], [0, 0]]),
        "callable": lambda outputs: outputs[:, 1] - outputs[:, 0],
    }
