"""Integrated Gradients against a direct trapezoid-rule computation."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import make_smooth_model
from keras_explainable.baselines import baseline_images

# Few steps keep these tests fast; the warning itself is tested below.
pytestmark = pytest.mark.filterwarnings("ignore::keras_explainable.errors.CompletenessWarning")


@pytest.fixture(scope="module")
def model():
    return make_smooth_model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(7).uniform(-1, 1, (5, 6, 6, 2)).astype("float32")


def _raw(model, **options):
    options.setdefault("verbose", 0)
    return ke.IntegratedGradients(model, postprocess=None, resize=False, **options)


def reference_ig(model, x, baseline, targets, steps):
    """`(N, H, W)` IG maps by the trapezoid rule over `steps` intervals, directly."""
    x = tf.constant(x)
    baseline = tf.broadcast_to(tf.constant(baseline, tf.float32), x.shape)
    total = tf.zeros_like(x)
    for k in range(steps + 1):
        point = baseline + (k / steps) * (x - baseline)
        with tf.GradientTape() as tape:
            tape.watch(point)
            score = tf.reduce_sum(tf.gather(model(point), targets, batch_dims=1))
        weight = (0.5 if k in (0, steps) else 1.0) / steps
        total += weight * tape.gradient(score, point)
    return tf.reduce_sum((x - baseline) * total, axis=-1).numpy()


def scores(model, images, targets):
    return np.take_along_axis(model(tf.constant(images)).numpy(), targets[:, None], 1)[:, 0]


def _no_warnings(function):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function()
    assert not [w for w in caught if issubclass(w.category, ke.CompletenessWarning)]
    return result


def test_completeness_within_one_percent_at_128_steps(model, x):
    targets = np.array([0, 1, 2, 0, 1])
    for baseline in ("zeros", 0.3):
        explainer = _raw(model, steps=128, baseline=baseline)
        expl = _no_warnings(lambda e=explainer: e.explain(x, targets))
        expected = scores(model, x, targets) - scores(
            model, np.full_like(x, 0.0 if baseline == "zeros" else baseline), targets
        )
        totals = expl.maps.sum(axis=(1, 2))[:, 0]
        np.testing.assert_allclose(totals, expected, rtol=0.01)
        np.testing.assert_allclose(expl.scores[:, 0], scores(model, x, targets), rtol=1e-5)


def test_equals_the_trapezoid_rule_computed_directly(model, x):
    baseline = np.random.default_rng(1).uniform(-0.5, 0.5, (6, 6, 2)).astype("float32")
    targets = np.array([2, 1, 0, 0, 2])
    expected = reference_ig(model, x, baseline, targets, steps=6)
    expl = _raw(model, steps=6, baseline=baseline).explain(x, targets)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-6)
    # top-class targets: resolved once on the input, as the direct computation does
    top = model(x).numpy().argmax(-1)
    expl = _raw(model, steps=6, baseline=baseline).explain(x)
    np.testing.assert_array_equal(expl.targets[:, 0], top)
    np.testing.assert_allclose(
        expl.maps[..., 0], reference_ig(model, x, baseline, top, 6), rtol=1e-4, atol=1e-6
    )


def test_step_batch_size_does_not_change_the_maps(model, x):
    steps = 10
    reference = _raw(model, steps=steps, step_batch_size=1).explain(x, [[0, 2]] * 5)
    for step_batch_size in (7, steps, steps + 1, 64):
        expl = _raw(model, steps=steps, step_batch_size=step_batch_size).explain(x, [[0, 2]] * 5)
        np.testing.assert_allclose(expl.maps, reference.maps, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(expl.scores, reference.scores, rtol=1e-6)


def test_warns_once_when_steps_are_too_few_and_not_when_enough(x):
    curved = make_smooth_model(seed=11, scale=1.5)
    explainer = _raw(curved, steps=1, batch_size=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explainer.explain(x, 0)
        explainer.explain(x, 1)
    found = [w for w in caught if issubclass(w.category, ke.CompletenessWarning)]
    assert len(found) == 1
    assert "steps" in str(found[0].message) and "now 1" in str(found[0].message)
    assert found[0].filename == __file__  # the user's line, not the library's
    _no_warnings(lambda: _raw(curved, steps=256, step_batch_size=32).explain(x, 0))
    # the tolerance is the user's
    _no_warnings(lambda: _raw(curved, steps=1, completeness_tolerance=1e9).explain(x, 0))


def _gaussian_blur(images, sigma):
    """Zero-padded separable Gaussian blur with a 2 ceil(sigma) + 1 kernel, directly."""
    radius = math.ceil(sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(images, [(0, 0), (radius, radius), (radius, radius), (0, 0)])
    height, width = images.shape[1:3]
    rows = sum(kernel[i] * padded[:, i : i + height] for i in range(2 * radius + 1))
    return sum(kernel[i] * rows[:, :, i : i + width] for i in range(2 * radius + 1))


def test_every_baseline_form(model, x):
    targets = np.array([0, 1, 2, 1, 0])

    def check(baseline, reference_baseline):
        expl = _raw(model, steps=4, baseline=baseline).explain(x, targets)
        expected = reference_ig(model, x, reference_baseline, targets, 4)
        np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-6)

    check("zeros", np.zeros_like(x))
    check(0.25, np.full_like(x, 0.25))
    array = np.random.default_rng(3).normal(size=(6, 6, 2)).astype("float32")
    check(array, array)
    check(np.array([0.1, -0.2], "float32"), np.array([0.1, -0.2], "float32"))  # per channel
    check(lambda inputs: 0.5 * inputs, 0.5 * x)
    check("blur", _gaussian_blur(x, 5.0))
    blurred = _raw(model, steps=4, baseline="blur", blur_sigma=1.0).explain(x, targets)
    np.testing.assert_allclose(
        blurred.maps[..., 0],
        reference_ig(model, x, _gaussian_blur(x, 1.0), targets, 4),
        rtol=1e-4,
        atol=1e-6,
    )


def test_uniform_baseline_is_seeded_in_range_and_independent_of_batching(model, x):
    uniform = baseline_images("uniform", tf.constant(x), seed=5).numpy()
    assert (uniform >= x.min(axis=(1, 2, 3), keepdims=True)).all()
    assert (uniform <= x.max(axis=(1, 2, 3), keepdims=True)).all()
    assert uniform.std() > 0.3  # noise, not a constant
    alone = baseline_images("uniform", tf.constant(x[2:3]), seed=5).numpy()
    np.testing.assert_array_equal(alone[0], uniform[2])
    other = baseline_images("uniform", tf.constant(x), seed=6).numpy()
    assert not np.allclose(other, uniform)

    targets = np.array([0, 1, 2, 1, 0])
    expl = _raw(model, steps=4, baseline="uniform", seed=5).explain(x, targets)
    np.testing.assert_allclose(
        expl.maps[..., 0], reference_ig(model, x, uniform, targets, 4), rtol=1e-4, atol=1e-6
    )
    for batch_size in (1, 2):
        other = _raw(model, steps=4, baseline="uniform", seed=5, batch_size=batch_size)
        np.testing.assert_allclose(other.explain(x, targets).maps, expl.maps, atol=1e-6)


def test_auto_postprocessing_is_the_normalised_absolute_value(model, x):
    raw = _raw(model, steps=4).explain(x, 1).maps
    auto = ke.IntegratedGradients(model, steps=4, verbose=0).explain(x, 1).maps
    magnitude = np.abs(raw)
    low = magnitude.min(axis=(1, 2), keepdims=True)
    high = magnitude.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(auto, (magnitude - low) / (high - low), atol=1e-5)
    assert raw.min() < 0  # the raw maps keep the sign


def test_channel_reductions(model, x):
    summed = _raw(model, steps=4).explain(x, 1).maps
    mean = _raw(model, steps=4, channel_reduction="mean").explain(x, 1).maps
    np.testing.assert_allclose(mean, summed / 2, rtol=1e-5, atol=1e-7)
    norm = _raw(model, steps=4, channel_reduction="l2").explain(x, 1).maps
    assert (norm >= np.abs(summed) / np.sqrt(2) - 1e-6).all()


def test_composes_with_smoothgrad(model, x):
    ig = _raw(model, steps=4)
    zero_noise = ke.SmoothGrad(ig, samples=2, noise=0.0).explain(x, 1)
    np.testing.assert_allclose(zero_noise.maps, ig.explain(x, 1).maps, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"steps": 0}, ValueError, "steps"),
        ({"step_batch_size": 0}, ValueError, "step_batch_size"),
        ({"baseline": "black"}, ValueError, "baseline"),
        ({"baseline": np.full((6, 6, 2), np.nan, "float32")}, ValueError, "finite"),
        ({"baseline": float("inf")}, ValueError, "finite"),
        ({"baseline": np.zeros((5, 5, 2), "float32")}, ke.InputError, "broadcast"),
        ({"baseline": np.zeros((4, 6, 6, 2), "float32")}, ke.InputError, "broadcast"),
        ({"baseline": object()}, TypeError, "baseline"),
        ({"completeness_tolerance": 0}, ValueError, "completeness_tolerance"),
        ({"channel_reduction": "max"}, ValueError, "channel_reduction"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_bad_options_fail_at_construction(model, options, error, match):
    with pytest.raises(error, match=match):
        ke.IntegratedGradients(model, **options)


def test_bad_baselines_for_the_inputs_fail_before_any_step():
    # Sequences of unknown length: an array baseline is checked when explain starts.
    inputs = keras.Input((None, 3))
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(2, 3)(inputs))
    model = keras.Model(inputs, pooled)
    sequences = np.zeros((2, 5, 3), "float32")
    with pytest.raises(ke.InputError, match="blur"):
        ke.IntegratedGradients(model, baseline="blur", verbose=0).explain(sequences, 0)
    explainer = ke.IntegratedGradients(model, baseline=np.zeros((4, 3), "float32"), verbose=0)
    with pytest.raises(ke.InputError, match="broadcast"):
        explainer.explain(sequences, 0)
    wrong = ke.IntegratedGradients(model, baseline=lambda x: x[:, :2], verbose=0)
    with pytest.raises(ke.InputError, match="callable"):
        wrong.explain(sequences, 0)
