"""Score-CAM against a direct, one-mask-at-a-time computation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights


def _logits_model(model):
    """The same layers with the output's softmax taken off (for logits)."""
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    return lambda x: tf.matmul(model.layers[-2](_features(model, x)), kernel) + bias


def _features(model, x):
    return keras.Model(model.inputs[0], model.get_layer("features").output)(x)


def reference_scorecam(
    model,
    x,
    targets,
    use_probabilities=True,
    baseline=True,
    normalize_weights=False,
    channels=None,
):
    """Raw Score-CAM maps `(N, H, W)`: one masked input at a time, in eager TF."""
    logits_of = _logits_model(model)

    def confidence(inputs):
        logits = logits_of(inputs)
        return tf.nn.softmax(logits).numpy() if use_probabilities else logits.numpy()

    features = _features(model, x).numpy()
    maps = []
    for n in range(len(x)):
        keep = range(features.shape[-1]) if channels is None else channels[n]
        weights = []
        for c in keep:
            up = tf.image.resize(features[n, ..., c][None, ..., None], x.shape[1:3])
            up = up.numpy()[0, ..., 0]
            span = up.max() - up.min()
            mask = (up - up.min()) / span if span > 0 else np.zeros_like(up)
            weight = confidence((x[n] * mask[..., None])[None])[0, targets[n]]
            if baseline:
                weight -= confidence(np.zeros_like(x[n : n + 1]))[0, targets[n]]
            weights.append(weight)
        weights = np.array(weights)
        if normalize_weights:
            weights = np.exp(weights - weights.max()) / np.exp(weights - weights.max()).sum()
        maps.append(np.tensordot(features[n][..., list(keep)], weights, axes=[[-1], [0]]))
    return np.stack(maps)


def _model(seed=3):
    # 6x6x2 input -> conv "features" (4 channels, stride 2: 3x3) -> GAP -> softmax.
    inputs = keras.Input((6, 6, 2))
    hidden = keras.layers.Conv2D(3, 3, padding="same", activation="relu")(inputs)
    features = keras.layers.Conv2D(
        4, 3, strides=2, padding="same", activation="relu", name="features"
    )(hidden)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(3, activation="softmax")(pooled)
    return fix_weights(keras.Model(inputs, outputs), seed)


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(7).uniform(0, 1, (3, 6, 6, 2)).astype("float32")


def _raw(model, **kwargs):
    return ke.ScoreCAM(model, postprocess=None, resize=False, **kwargs)


@pytest.mark.parametrize("mask_batch_size", [1, 3, 4])
def test_equals_direct_computation_for_any_mask_batch_size(model, x, mask_batch_size):
    targets = np.array([0, 2, 1])
    expected = reference_scorecam(model, x, targets)
    expl = _raw(model, mask_batch_size=mask_batch_size).explain(x, targets)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-6)
    # Scores are the unmasked input's logits.
    logits = _logits_model(model)(x).numpy()
    np.testing.assert_allclose(expl.scores[:, 0], logits[range(3), targets], rtol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {"use_probabilities": False},
        {"baseline": False},
        {"normalize_weights": True},
    ],
)
def test_options_equal_direct_computation(model, x, options):
    targets = np.array([1, 1, 0])
    expected = reference_scorecam(model, x, targets, **options)
    expl = _raw(model, mask_batch_size=3, **options).explain(x, targets)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-6)


def test_max_channels_keeps_the_most_varying_channels(model, x):
    targets = np.array([2, 0, 1])
    features = _features(model, x).numpy()
    variance = features.reshape(3, -1, 4).var(axis=1)
    top = np.argsort(-variance, axis=1)[:, :2]
    expected = reference_scorecam(model, x, targets, channels=top)
    expl = _raw(model, max_channels=2, mask_batch_size=1).explain(x, targets)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-6)
    # More channels than the layer has: all of them.
    full = _raw(model, max_channels=99).explain(x, targets)
    np.testing.assert_allclose(
        full.maps[..., 0], reference_scorecam(model, x, targets), rtol=1e-4, atol=1e-6
    )


def test_constant_channel_gives_no_nan_and_zero_weight():
    # Channel 1 of "features" is the constant relu(0.7): its mask is all zeros,
    # the masked input equals the baseline, so its weight is exactly 0.
    inputs = keras.Input((4, 4, 1))
    features = keras.layers.Conv2D(2, 3, padding="same", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, activation="softmax")(pooled)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((3, 3, 1, 2), "float32")
    kernel[..., 0, 0] = np.arange(9).reshape(3, 3) / 9.0
    model.layers[1].set_weights([kernel, np.array([0.0, 0.7], "float32")])
    model.layers[3].set_weights(
        [np.array([[1.0, -1.0], [0.5, 2.0]], "float32"), np.zeros(2, "float32")]
    )
    x = np.random.default_rng(0).uniform(0, 1, (2, 4, 4, 1)).astype("float32")
    expl = _raw(model, mask_batch_size=2).explain(x, 0)
    assert np.isfinite(expl.maps).all()
    only_first = reference_scorecam(model, x, [0, 0], channels=[[0], [0]])
    np.testing.assert_allclose(expl.maps[..., 0], only_first, rtol=1e-4, atol=1e-6)
    auto = ke.ScoreCAM(model).explain(x, 0)
    assert np.isfinite(auto.maps).all()


def test_top_class_targets_are_the_clean_argmax(model, x):
    expl = _raw(model).explain(x)
    top = _logits_model(model)(x).numpy().argmax(-1)
    np.testing.assert_array_equal(expl.targets[:, 0], top)
    np.testing.assert_allclose(
        expl.maps[..., 0], reference_scorecam(model, x, top), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"mask_batch_size": 0}, ValueError),
        ({"mask_batch_size": 2.5}, ValueError),
        ({"max_channels": 0}, ValueError),
        ({"use_probabilities": "yes"}, TypeError),
        ({"baseline": None}, TypeError),
        ({"normalize_weights": 1}, TypeError),
    ],
)
def test_bad_options_fail_at_construction(model, options, error):
    with pytest.raises(error):
        ke.ScoreCAM(model, **options)
