"""Integrated Gradients against direct quadratures of tape gradients, rule by rule."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights, make_smooth_model, quadrature_nodes
from keras_explainable.baselines import baseline_images
from keras_explainable.methods.integrated_gradients import path_quadrature

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


RULES = ("gausslegendre", "riemann_middle", "riemann_left", "riemann_right", "riemann_trapezoid")


def reference_ig(model, x, baseline, targets, steps, rule="gausslegendre"):
    """`(N, H, W)` IG maps by the rule's quadrature of tape gradients, directly."""
    x = tf.constant(x)
    baseline = tf.broadcast_to(tf.constant(baseline, tf.float32), x.shape)
    total = tf.zeros_like(x)
    for alpha, weight in zip(*quadrature_nodes(rule, steps), strict=True):
        point = baseline + float(alpha) * (x - baseline)
        with tf.GradientTape() as tape:
            tape.watch(point)
            score = tf.reduce_sum(tf.gather(model(point), targets, batch_dims=1))
        total += float(weight) * tape.gradient(score, point)
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


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_equals_its_quadrature_computed_directly(model, x, rule):
    baseline = np.random.default_rng(1).uniform(-0.5, 0.5, (6, 6, 2)).astype("float32")
    targets = np.array([2, 1, 0, 0, 2])
    expected = reference_ig(model, x, baseline, targets, 6, rule)
    expl = _raw(model, steps=6, method=rule, baseline=baseline).explain(x, targets)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(expl.scores[:, 0], scores(model, x, targets), rtol=1e-5)
    # top-class targets: resolved once on the input, as the direct computation does
    top = model(x).numpy().argmax(-1)
    expl = _raw(model, steps=6, method=rule, baseline=baseline).explain(x)
    np.testing.assert_array_equal(expl.targets[:, 0], top)
    np.testing.assert_allclose(
        expl.maps[..., 0], reference_ig(model, x, baseline, top, 6, rule), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_right", "riemann_trapezoid"])
def test_step_batch_size_does_not_change_the_maps(model, x, rule):
    steps = 10
    explain = lambda size: _raw(  # noqa: E731
        model, steps=steps, method=rule, step_batch_size=size
    ).explain(x, [[0, 2]] * 5)
    reference = explain(1)
    for step_batch_size in (7, steps, steps + 1, 64):
        expl = explain(step_batch_size)
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
    message = str(found[0].message)
    assert "method='gausslegendre', steps=1" in message and "Raise steps (now 1)" in message
    assert found[0].filename == __file__  # the user's line, not the library's
    # Another rule: the advice names the default rule before more steps.
    trapezoid = _raw(curved, steps=1, method="riemann_trapezoid")
    with pytest.warns(ke.CompletenessWarning, match="riemann_trapezoid") as caught:
        trapezoid.explain(x, 0)
    message = str(caught[0].message)
    assert message.index("method='gausslegendre'") < message.index("raise steps (now 1)")
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
        ({"method": "simpson"}, ValueError, "method"),
        ({"method": "trapezoid"}, ValueError, "riemann_trapezoid"),
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


@pytest.mark.parametrize("rule", RULES)
def test_path_quadrature_weights_and_exactness(rule):
    # Hand-computed: integral_0^1 alpha^k d alpha = 1 / (k + 1).
    steps = 5
    alphas, weights = path_quadrature(rule, steps)
    assert len(alphas) == (steps + 1 if rule == "riemann_trapezoid" else steps)
    assert np.all(np.diff(alphas) < 0)  # the input's end first
    assert math.isclose(weights.sum(), 1.0, rel_tol=1e-12)
    exact_degree = {"gausslegendre": 2 * steps - 1, "riemann_middle": 1, "riemann_trapezoid": 1}
    for degree in range(exact_degree.get(rule, 0) + 1):
        assert math.isclose(weights @ alphas**degree, 1 / (degree + 1), rel_tol=1e-12)
    with pytest.raises(ValueError, match="rule"):
        path_quadrature("simpson", 4)


def bias_free_relu_cnn():
    """A ReLU CNN without biases: S(alpha x) = alpha S(x), and S(0) = 0."""
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", use_bias=False)(inputs)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", use_bias=False)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, use_bias=False)(x)
    return fix_weights(keras.Model(inputs, outputs), seed=4)


def test_bias_free_relu_cnn_rules_without_end_points_are_exact_and_trapezoid_loses_half_a_step():
    model = bias_free_relu_cnn()
    images = np.random.default_rng(5).uniform(-1, 1, (4, 8, 8, 2)).astype("float32")
    targets = np.array([0, 1, 2, 0])
    score = scores(model, images, targets)
    assert np.all(scores(model, np.zeros_like(images), targets) == 0)  # S(0) = 0
    assert np.abs(score).min() > 1e-3
    for rule in ("gausslegendre", "riemann_middle"):
        totals = _raw(model, steps=8, method=rule).explain(images, targets).maps.sum(axis=(1, 2))
        np.testing.assert_allclose(totals[:, 0], score, rtol=1e-5)
    # Every ReLU sits at 0 at the baseline, whose gradient is then 0: the
    # trapezoid's weight 1 / (2 steps) there is lost, exactly.
    for steps in (8, 32, 128):
        explainer = _raw(model, steps=steps, method="riemann_trapezoid", step_batch_size=32)
        totals = explainer.explain(images, targets).maps.sum(axis=(1, 2))[:, 0]
        np.testing.assert_allclose(totals, (1 - 1 / (2 * steps)) * score, rtol=1e-5)


def smooth_model_with_batch_norm():
    """GELU convolutions with biases and BatchNormalization (inference statistics)."""
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for channels in (6, 6):
        x = keras.layers.Conv2D(channels, 3, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("gelu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    rng = np.random.default_rng(0)
    model.set_weights(
        [
            rng.uniform(0.5, 2.0, w.shape).astype("float32")  # positive variances
            if "moving_variance" in v.path
            else rng.normal(0, 0.5, w.shape).astype("float32")
            for w, v in zip(model.get_weights(), model.weights, strict=True)
        ]
    )
    return model


def test_gauss_legendre_at_16_steps_beats_the_trapezoid_at_64_with_biases_and_batch_norm():
    model = smooth_model_with_batch_norm()
    images = np.random.default_rng(1).uniform(-1, 1, (6, 8, 8, 3)).astype("float32")
    targets = np.zeros(6, np.int64)
    difference = scores(model, images, targets) - scores(model, 0 * images, targets)

    def error(**options):
        totals = _raw(model, step_batch_size=16, **options).explain(images, targets).maps
        return np.abs(totals.sum(axis=(1, 2))[:, 0] - difference) / np.abs(difference)

    gauss = error(steps=16)
    trapezoid = error(steps=64, method="riemann_trapezoid")
    assert gauss.max() < 1e-4 and trapezoid.max() > 1e-4  # a smooth path: orders apart
    assert gauss.max() < trapezoid.max() / 10


class Norm(keras.layers.Layer):
    """The Euclidean norm of each position's channels: an infinite slope at 0."""

    def call(self, inputs):
        return keras.ops.sqrt(keras.ops.sum(keras.ops.square(inputs), axis=-1, keepdims=True))


def norm_model():
    """Linear, then a norm, then linear: S(alpha x) = alpha S(x), no gradient at x = 0."""
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(Norm()(x))
    outputs = keras.layers.Dense(2, use_bias=False)(x)
    return fix_weights(keras.Model(inputs, outputs), seed=2)


def test_an_infinite_gradient_at_the_baseline_is_an_error_but_not_for_gauss_legendre(x, tmp_path):
    model = norm_model()
    targets = np.array([0, 1, 1, 0, 1])
    with tf.GradientTape() as tape:  # the premise: the gradient at the baseline is NaN
        zero = tf.zeros((1, 6, 6, 2))
        tape.watch(zero)
        score_at_zero = model(zero)[0, 0]
    assert not np.isfinite(tape.gradient(score_at_zero, zero).numpy()).any()

    for rule in ("riemann_trapezoid", "riemann_left"):
        with pytest.raises(ke.NonFiniteError, match=r"alpha=0, the baseline itself.*'zeros'"):
            _raw(model, steps=8, method=rule).explain(x, targets)
    # Not written to disk either.
    trapezoid = _raw(model, steps=8, method="riemann_trapezoid")
    with pytest.raises(ke.NonFiniteError, match="gausslegendre"):
        trapezoid.explain_to_disk(x, tmp_path / "run", targets)
    assert not (tmp_path / "run" / "maps.npy").exists()
    # Inside a decorator (no notes reach the host): the maps are still checked.
    with pytest.raises(ke.NonFiniteError, match=r"SmoothGrad\(IntegratedGradients\).*NaN or Inf"):
        ke.SmoothGrad(trapezoid, samples=2, noise=0.0, verbose=0).explain(x, targets)

    expl = _no_warnings(lambda: _raw(model, steps=8).explain(x, targets))
    assert np.isfinite(expl.maps).all()
    np.testing.assert_allclose(
        expl.maps.sum(axis=(1, 2))[:, 0], scores(model, x, targets), rtol=1e-5, atol=1e-6
    )
