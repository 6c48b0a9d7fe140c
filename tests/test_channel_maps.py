"""Per-channel maps: `channel_reduction=None` keeps the input's channel axis.

On a tiny Conv1D model with fixed weights (series of 12 steps, 3 channels),
the per-channel maps are checked against gradients taken with a
GradientTape, their reductions against the reduced maps, and the whole path
(post-processing, resizing, decorators, batching, `explain_to_disk`).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights
from keras_explainable import ops

STEPS, CHANNELS, CLASSES = 12, 3, 2


@pytest.fixture(scope="module")
def series_model() -> keras.Model:
    inputs = keras.Input((STEPS, CHANNELS))
    hidden = keras.layers.Conv1D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling1D(name="gap")(hidden)
    logits = keras.layers.Dense(CLASSES, name="dense")(pooled)
    return fix_weights(keras.Model(inputs, logits))


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(5, STEPS, CHANNELS)).astype("float32")


def tape_gradient(model: keras.Model, x: np.ndarray, target: int) -> np.ndarray:
    """d logit[target] / d x, `(N, T, C)`, with a GradientTape."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(model(x)[:, target])
    return tape.gradient(score, x).numpy()


def raw(method, model, **options):
    return method(model, postprocess=None, **options)


def test_saliency_per_channel_is_the_absolute_input_gradient(series_model, series):
    gradient = tape_gradient(series_model, series, 1)
    expl = raw(ke.Saliency, series_model, channel_reduction=None).explain(series, 1)
    assert expl.maps.shape == (5, STEPS, CHANNELS, 1)
    np.testing.assert_allclose(expl.maps[..., 0], np.abs(gradient), rtol=1e-5, atol=1e-7)
    signed = raw(ke.Saliency, series_model, channel_reduction=None, absolute=False)
    np.testing.assert_allclose(
        signed.explain(series, 1).maps[..., 0], gradient, rtol=1e-5, atol=1e-7
    )


def test_reductions_of_per_channel_maps_are_the_reduced_maps(series_model, series):
    per_channel = raw(ke.Saliency, series_model, channel_reduction=None).explain(series, 0)
    default = raw(ke.Saliency, series_model).explain(series, 0)  # 'max' of |gradient|
    np.testing.assert_allclose(per_channel.maps.max(axis=2), default.maps, rtol=1e-6)
    attributions = raw(ke.InputXGradient, series_model, channel_reduction=None).explain(series, 0)
    summed = raw(ke.InputXGradient, series_model).explain(series, 0)  # 'sum'
    np.testing.assert_allclose(attributions.maps.sum(axis=2), summed.maps, rtol=1e-5, atol=1e-6)
    gradient = tape_gradient(series_model, series, 0)
    np.testing.assert_allclose(attributions.maps[..., 0], series * gradient, rtol=1e-5, atol=1e-7)


def test_integrated_gradients_per_channel_is_complete(series_model, series):
    # A ReLU model with biases: its path gradient is piecewise constant, so the
    # integration error shrinks only as about 1 / steps (with every rule).
    ig = raw(ke.IntegratedGradients, series_model, channel_reduction=None, steps=128)
    expl = ig.explain(series, 1)
    assert expl.maps.shape == (5, STEPS, CHANNELS, 1)
    reference = series_model(np.zeros_like(series)).numpy()[:, 1]
    np.testing.assert_allclose(
        expl.maps.sum(axis=(1, 2, 3)), expl.scores[:, 0] - reference, rtol=0.02, atol=1e-3
    )


def test_guided_gradcam_per_channel_sums_to_the_signed_sum_map(series_model, series):
    options = {"absolute": False, "layer": "conv"}
    per_channel = raw(ke.GuidedGradCAM, series_model, channel_reduction=None, **options)
    summed = raw(ke.GuidedGradCAM, series_model, channel_reduction="sum", **options)
    maps = per_channel.explain(series, 0).maps
    assert maps.shape == (5, STEPS, CHANNELS, 1)
    np.testing.assert_allclose(
        maps.sum(axis=2), summed.explain(series, 0).maps, rtol=1e-5, atol=1e-6
    )


def test_auto_postprocessing_normalises_over_positions_and_channels(series_model, series):
    targets = np.array([[0, 1]] * len(series))
    raw_maps = raw(ke.InputXGradient, series_model, channel_reduction=None).explain(series, targets)
    auto = ke.InputXGradient(series_model, channel_reduction=None).explain(series, targets)
    magnitude = np.abs(raw_maps.maps)
    low = magnitude.min(axis=(1, 2), keepdims=True)
    high = magnitude.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(auto.maps, (magnitude - low) / (high - low), atol=1e-6)
    # One scale per sample and target, not per channel: some channels stay below 1.
    assert np.all(auto.maps.max(axis=(1, 2)) == 1.0)
    assert np.any(auto.maps.max(axis=1) < 1.0)


def test_resize_maps_resizes_spatial_axes_only():
    maps = np.random.default_rng(0).normal(size=(2, 4, 5, 3, 2)).astype("float32")
    resized = ops.resize_maps(maps, [8, 10]).numpy()
    assert resized.shape == (2, 8, 10, 3, 2)
    for channel in range(3):
        expected = ops.resize_maps(maps[:, :, :, channel], [8, 10]).numpy()
        np.testing.assert_allclose(resized[:, :, :, channel], expected, atol=1e-6)
    series = maps[:, :, 0]  # (N, T, C, L)
    stretched = ops.resize_maps(series, [8]).numpy()
    assert stretched.shape == (2, 8, 3, 2)
    np.testing.assert_allclose(
        stretched[:, :, 1], ops.resize_maps(series[:, :, 1], [8]).numpy(), atol=1e-6
    )


def test_resize_maps_with_sizes_known_at_run_time():
    maps = tf.ones([2, 4, 3, 1])

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3, 1])])
    def resize(values):
        return ops.resize_maps(values, [2 * tf.shape(values)[1]])

    assert resize(maps).shape == (2, 8, 3, 1)


def test_per_channel_maps_of_a_model_of_any_length(series_model, series):
    inputs = keras.Input((None, CHANNELS))
    # The fixture's layers on sequences of any length (the fixture itself takes STEPS).
    outputs = inputs
    for name in ("conv", "gap", "dense"):
        outputs = series_model.get_layer(name)(outputs)
    model = keras.Model(inputs, outputs)
    explainer = ke.Saliency(model, channel_reduction=None)
    short = np.random.default_rng(2).normal(size=(3, 7, CHANNELS)).astype("float32")
    assert explainer.explain(short).maps.shape == (3, 7, CHANNELS, 1)
    fixed = ke.Saliency(series_model, channel_reduction=None).explain(series).maps
    np.testing.assert_allclose(explainer.explain(series).maps, fixed, rtol=1e-6)


def test_per_channel_maps_do_not_depend_on_the_batch_size(series_model, series):
    # Few steps keep it fast; the completeness of so short a path is not the point.
    options = {"channel_reduction": None, "steps": 8, "completeness_tolerance": 10.0}
    one = ke.IntegratedGradients(series_model, batch_size=1, **options)
    all_at_once = ke.IntegratedGradients(series_model, **options)
    np.testing.assert_allclose(
        one.explain(series).maps, all_at_once.explain(series).maps, rtol=1e-5, atol=1e-6
    )


def test_explain_to_disk_equals_explain(series_model, series, tmp_path):
    explainer = ke.Saliency(series_model, channel_reduction=None, batch_size=2)
    on_disk = explainer.explain_to_disk(series, tmp_path / "run", 1)
    in_memory = explainer.explain(series, 1)
    assert on_disk.maps.shape == (5, STEPS, CHANNELS, 1)
    np.testing.assert_array_equal(on_disk.maps, in_memory.maps)
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "maps.npy"), in_memory.maps)


def test_decorators_keep_the_channel_axis(series_model, series):
    # The maps are linear in the attributions, so summing the channels of the
    # decorated per-channel maps gives the decorated 'sum' maps.
    for decorate in (
        lambda explainer: ke.SmoothGrad(explainer, samples=3, noise_batch_size=2),
        lambda explainer: ke.TTA(explainer, flips=("horizontal",)),
    ):
        per_channel = decorate(raw(ke.InputXGradient, series_model, channel_reduction=None))
        summed = decorate(raw(ke.InputXGradient, series_model))
        maps = per_channel.explain(series, 1).maps
        assert maps.shape == (5, STEPS, CHANNELS, 1)
        np.testing.assert_allclose(
            maps.sum(axis=2), summed.explain(series, 1).maps, rtol=1e-5, atol=1e-6
        )


def test_tta_flips_per_channel_maps_back(series_model, series):
    saliency = raw(ke.Saliency, series_model, channel_reduction=None, absolute=False)
    plain = saliency.explain(series, 0).maps
    flipped = saliency.explain(series[:, ::-1], 0).maps[:, ::-1]
    tta = ke.TTA(saliency, flips=("horizontal",)).explain(series, 0)
    np.testing.assert_allclose(tta.maps, (plain + flipped) / 2, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "method", [ke.Saliency, ke.GuidedBackprop, ke.Deconvnet, ke.GuidedGradCAM, ke.InputXGradient]
)
def test_channel_reduction_accepts_none_and_rejects_unknown_names(series_model, method):
    assert method(series_model, channel_reduction=None).channel_reduction is None
    with pytest.raises(ValueError, match="channel_reduction"):
        method(series_model, channel_reduction="median")


def test_reduce_channels_with_none_keeps_the_values():
    values = tf.constant([[1.0, -2.0]])
    assert ops.reduce_channels(values, None) is values
    with pytest.raises(ValueError, match="or None"):
        ops.reduce_channels(values, "median")


def test_metrics_refuse_an_explainer_of_per_channel_maps_before_any_work():
    inputs = keras.Input((16, 3))
    hidden = keras.layers.Conv1D(4, 3, padding="same", activation="relu")(inputs)
    model = keras.Model(
        inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(hidden))
    )
    x = np.random.default_rng(0).normal(size=(4, 16, 3)).astype("float32")
    for explainer in (
        ke.Saliency(model, channel_reduction=None),
        ke.SmoothGrad(ke.InputXGradient(model, channel_reduction=None), samples=2),
    ):
        with pytest.raises(ValueError, match="channel_reduction=None gives one map per channel"):
            ke.metrics.Deletion(steps=4)(explainer, x)
