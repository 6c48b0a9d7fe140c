"""GradientSHAP (expected gradients): seeding, batching and completeness."""

from __future__ import annotations

import keras
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
    return np.random.default_rng(9).uniform(-1, 1, (5, 6, 6, 2)).astype("float32")


@pytest.fixture(scope="module")
def background():
    return np.random.default_rng(10).uniform(-1, 1, (4, 6, 6, 2)).astype("float32")


def _raw(model, background, **options):
    options.setdefault("verbose", 0)
    return ke.GradientSHAP(model, background, postprocess=None, resize=False, **options)


def _scores(model, images, targets):
    return np.take_along_axis(model(tf.constant(images)).numpy(), targets[:, None], 1)[:, 0]


def test_seeded_and_reproducible(model, x, background):
    first = _raw(model, background, samples=6, noise=0.1, seed=3).explain(x, 1)
    again = _raw(model, background, samples=6, noise=0.1, seed=3).explain(x, 1)
    np.testing.assert_array_equal(first.maps, again.maps)
    other = _raw(model, background, samples=6, noise=0.1, seed=4).explain(x, 1)
    assert not np.allclose(other.maps, first.maps)
    np.testing.assert_allclose(first.scores[:, 0], _scores(model, x, np.ones(5, int)), rtol=1e-5)


@pytest.mark.parametrize("form", ["array", "uniform"])
def test_independent_of_batch_size_and_sample_batch_size(model, x, background, form):
    chosen = background if form == "array" else "uniform"
    reference = _raw(model, chosen, samples=7, noise=0.2, seed=1, batch_size=5).explain(x)
    for options in ({"batch_size": 1}, {"batch_size": 2, "sample_batch_size": 3}):
        other = _raw(model, chosen, samples=7, noise=0.2, seed=1, **options).explain(x)
        np.testing.assert_allclose(other.maps, reference.maps, rtol=1e-5, atol=1e-7)
    # a sample's maps do not depend on its neighbours
    alone = _raw(model, chosen, samples=7, noise=0.2, seed=1).explain(x[3:4])
    np.testing.assert_allclose(alone.maps[0], reference.maps[3], rtol=1e-5, atol=1e-7)


def test_single_baseline_on_a_linear_model_equals_integrated_gradients(x):
    linear = make_smooth_model(linear=True)
    baseline = np.random.default_rng(2).uniform(-1, 1, (6, 6, 2)).astype("float32")
    targets = np.array([0, 1, 2, 0, 1])
    shap = _raw(linear, baseline[None], samples=5, sample_batch_size=2).explain(x, targets)
    ig = ke.IntegratedGradients(linear, steps=3, baseline=baseline, postprocess=None, resize=False)
    expected = ig.explain(x, targets)
    np.testing.assert_allclose(shap.maps, expected.maps, rtol=1e-4, atol=1e-6)
    # and for a linear model both are exactly complete
    totals = shap.maps.sum(axis=(1, 2))[:, 0]
    delta = _scores(linear, x, targets) - _scores(linear, np.repeat(baseline[None], 5, 0), targets)
    np.testing.assert_allclose(totals, delta, rtol=1e-4, atol=1e-6)


def test_complete_on_average_over_the_background(model, x, background):
    targets = np.array([0, 1, 2, 0, 1])
    expl = _raw(model, background, samples=1024, sample_batch_size=128).explain(x, targets)
    totals = expl.maps.sum(axis=(1, 2))[:, 0]
    input_scores = _scores(model, x, targets)
    background_scores = model(background).numpy()[:, targets]  # (B, N)
    expected = input_scores - background_scores.mean(axis=0)
    spread = np.abs(input_scores - background_scores).mean(axis=0)
    assert (np.abs(totals - expected) < 0.15 * spread).all()


def test_baseline_forms_as_background(model, x):
    zeros = _raw(model, "zeros", samples=4).explain(x, 1)
    np.testing.assert_allclose(
        _raw(model, np.zeros((1, 6, 6, 2), "float32"), samples=4).explain(x, 1).maps,
        zeros.maps,
        rtol=1e-5,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        _raw(model, lambda inputs: tf.zeros_like(inputs), samples=4).explain(x, 1).maps,
        zeros.maps,
        rtol=1e-5,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        _raw(model, 0.0, samples=4).explain(x, 1).maps, zeros.maps, rtol=1e-5, atol=1e-7
    )
    assert np.isfinite(_raw(model, "blur", samples=2).explain(x, 1).maps).all()


@pytest.mark.parametrize(
    ("background", "options", "error", "match"),
    [
        (np.zeros((0, 6, 6, 2), "float32"), {}, ValueError, "empty"),
        (np.zeros((3, 5, 6, 2), "float32"), {}, ke.InputError, "broadcast"),
        (np.zeros((6, 6, 2), "float32"), {}, ke.InputError, "set of baselines"),
        (np.full((2, 6, 6, 2), np.nan, "float32"), {}, ValueError, "finite"),
        ("black", {}, ValueError, "background"),
        (object(), {}, TypeError, "background"),
        ("zeros", {"samples": 0}, ValueError, "samples"),
        ("zeros", {"sample_batch_size": 0}, ValueError, "sample_batch_size"),
        ("zeros", {"noise": -0.1}, ValueError, "noise"),
        ("zeros", {"seed": "0"}, TypeError, "seed"),
    ],
)
def test_bad_input_fails_at_construction(model, background, options, error, match):
    with pytest.raises(error, match=match):
        ke.GradientSHAP(model, background, **options)


def test_background_of_the_wrong_shape_fails_before_any_step():
    # Sequences of unknown length: the background is checked when explain starts.
    inputs = keras.Input((None, 3))
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(2, 3)(inputs))
    model = keras.Model(inputs, pooled)
    explainer = ke.GradientSHAP(model, np.zeros((2, 4, 3), "float32"), verbose=0)
    with pytest.raises(ke.InputError, match="broadcast"):
        explainer.explain(np.zeros((2, 5, 3), "float32"), 0)
