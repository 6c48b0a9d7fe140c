"""Perturbation faithfulness metrics: values computed in the test."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from keras_explainable.errors import CompletenessWarning, InputError


def linear(size=9, channels=2, bias=False, seed=0):
    """f(x) = w . x (+ b): a Dense on flattened pixels with fixed weights."""
    inputs = keras.Input((size, size, channels))
    dense = keras.layers.Dense(1, use_bias=bias, name="dense")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 1, (size * size * channels, 1)).astype("float32")]
    if bias:
        weights.append(np.array([0.7], "float32"))
    dense.set_weights(weights)
    return model, weights[0][:, 0].reshape(size, size, channels)


def nonlinear(size=9, channels=1, seed=0):
    """tanh(Dense(tanh(Dense(x)))) with fixed weights: no metric is exact on it."""
    inputs = keras.Input((size, size, channels))
    hidden = keras.layers.Dense(5, activation="tanh")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.weights])
    return model


def images(count=4, size=9, channels=2, seed=1):
    return (
        np.random.default_rng(seed).uniform(0.1, 1, (count, size, size, channels)).astype("float32")
    )


# ------------------------------------------------- correlation metrics
@pytest.mark.parametrize(
    "metric",
    [
        ke.metrics.FaithfulnessCorrelation(runs=20, subset_size=12),
        ke.metrics.MuFidelity(samples=30),
        ke.metrics.MuFidelity(samples=30, correlation="pearson"),
    ],
    ids=["faithfulness_correlation", "mu_fidelity", "mu_fidelity_pearson"],
)
def test_correlation_is_one_for_input_times_weights_on_a_linear_model(metric):
    model, w = linear()
    x = images()
    phi = (x * w).sum(-1)  # w * x, summed over channels per position
    result = metric(phi, x, model=model)
    np.testing.assert_allclose(result.values, 1.0, atol=1e-5)
    np.testing.assert_allclose(metric(-phi, x, model=model).values, -1.0, atol=1e-5)
    # The drops are the sums over the removed positions (baseline 0).
    np.testing.assert_allclose(result.drops, result.sums, rtol=1e-4, atol=1e-4)
    assert metric.higher_is_better is True
    # The explainer path: Gradient x Input of a linear model is w * x.
    explainer = ke.InputXGradient(model, postprocess=None)
    np.testing.assert_allclose(metric(explainer, x, 0).values, 1.0, atol=1e-5)


def test_faithfulness_correlation_subsets_have_the_size_and_a_baseline():
    model, w = linear()
    x = images(2)
    metric = ke.metrics.FaithfulnessCorrelation(runs=6, subset_size=10, baseline=0.5)
    ones = np.ones(x.shape[:-1], "float32")
    result = metric(ones, x, model=model)
    # A map of ones: each sum is the subset's size.
    np.testing.assert_allclose(result.sums, 10.0)
    # f(x) - f(x with S at 0.5) = sum_S w . (x - 0.5) : phi = w . (x - 0.5) is exact.
    phi = ((x - 0.5) * w).sum(-1)
    np.testing.assert_allclose(metric(phi, x, model=model).values, 1.0, atol=1e-5)


def test_correlation_metrics_are_batch_invariant_on_a_dataset_of_unknown_length():
    model = nonlinear(channels=2)
    x = images(5)
    maps = np.random.default_rng(3).normal(size=x.shape[:-1]).astype("float32")
    for make in (
        lambda **o: ke.metrics.FaithfulnessCorrelation(runs=10, subset_size=20, **o),
        lambda **o: ke.metrics.MuFidelity(samples=12, **o),
    ):
        reference = make()(maps, x, y=1, model=model)
        assert np.isfinite(reference.values).all() and np.ptp(reference.values) > 0
        # A last batch of one sample, and chunks of 3 runs.
        small = make(batch_size=2, step_batch_size=3)(maps, x, y=1, model=model)
        np.testing.assert_allclose(small.values, reference.values, rtol=1e-5, atol=1e-5)
        dataset = tf.data.Dataset.from_tensor_slices(x).filter(lambda _: True).batch(4)
        assert dataset.cardinality() == tf.data.UNKNOWN_CARDINALITY
        streamed = make()(maps, dataset, y=1, model=model)
        np.testing.assert_allclose(streamed.values, reference.values, rtol=1e-5, atol=1e-5)
        # Another seed draws other subsets.
        other = make(seed=5)(maps, x, y=1, model=model)
        assert not np.allclose(other.sums, reference.sums)


def test_spearman_by_hand():
    model = nonlinear(channels=2)
    x = images(3)
    maps = np.random.default_rng(4).normal(size=x.shape[:-1]).astype("float32")
    result = ke.metrics.MuFidelity(samples=15, grid_size=3)(maps, x, y=0, model=model)

    def ranks(v):
        return np.array([(v < a).sum() + ((v == a).sum() - 1) / 2 for a in v])

    for i in range(len(x)):
        expected = np.corrcoef(ranks(result.sums[i]), ranks(result.drops[i]))[0, 1]
        assert result.values[i] == pytest.approx(expected, abs=1e-5)


def test_correlation_metric_errors():
    model, _ = linear(size=4)
    x = images(2, size=4)
    maps = np.ones(x.shape[:-1], "float32")
    with pytest.raises(InputError, match="subset_size <= 16"):
        ke.metrics.FaithfulnessCorrelation(subset_size=17)(maps, x, model=model)
    with pytest.raises(InputError, match="9x9 grid"):
        ke.metrics.MuFidelity()(maps, x, model=model)
    with pytest.raises(ValueError, match=r"subset_percent must be a number in \(0, 1\)"):
        ke.metrics.MuFidelity(subset_percent=1.5)
    with pytest.raises(ValueError, match="correlation"):
        ke.metrics.MuFidelity(correlation="kendall")


# ------------------------------------------------------------ infidelity
def test_infidelity_is_zero_for_the_gradient_of_a_linear_model():
    model, w = linear(channels=1, bias=True)
    x = images(3, channels=1)
    phi = np.broadcast_to(w[..., 0], x.shape[:-1]).copy()

    def uniform(copies):
        return tf.random.uniform(tf.shape(copies), -0.3, 0.3)

    def pair(copies):
        noise = tf.random.normal(tf.shape(copies))
        return noise, copies - noise

    for options in ({}, {"perturbation": uniform}, {"perturbation": pair, "normalize": False}):
        result = ke.metrics.Infidelity(**options)(phi, x, model=model)
        np.testing.assert_allclose(result.values, 0.0, atol=1e-8)
    # A wrong map is not.
    assert (ke.metrics.Infidelity(normalize=False)(-phi, x, model=model).values > 0).all()
    assert ke.metrics.Infidelity.higher_is_better is False


def test_infidelity_of_integrated_gradients_is_its_squared_completeness_gap():
    model = nonlinear()
    x = images(5, channels=1)
    with pytest.warns(CompletenessWarning):  # two steps are not complete
        explanation = ke.IntegratedGradients(model, steps=2, postprocess=None).explain(x, 1)
    maps = explanation.maps[..., 0]
    logits = model.predict(x, verbose=0)[:, 1]
    at_zero = model.predict(np.zeros_like(x), verbose=0)[:, 1]
    gap = maps.reshape(len(x), -1).sum(1) - (logits - at_zero)
    assert np.abs(gap).min() > 1e-3
    metric = ke.metrics.Infidelity(
        perturbation=lambda copies: copies,  # I = x - baseline
        multiply_by_inputs=True,
        normalize=False,
        n_perturb_samples=3,
        batch_size=2,  # a last batch of one sample
    )
    result = metric(explanation, x, model=model)
    np.testing.assert_allclose(result.values, gap**2, rtol=1e-4, atol=1e-7)


def test_infidelity_by_hand_and_normalisation():
    model = nonlinear(channels=2)
    x = images(3)
    maps = np.random.default_rng(5).normal(size=x.shape[:-1]).astype("float32")
    shifts = np.array([0.05, -0.1, 0.2], "float32")

    def steps(copies):  # deterministic: copy k of the batch moves by shifts[k]
        count = tf.shape(copies)[0] // 3
        column = tf.repeat(tf.constant(shifts), 3)[: count * 3]
        column = tf.concat([column, tf.zeros([count * 3 - tf.size(column)])], 0)
        return tf.ones_like(copies) * column[:, None, None, None]

    metric = ke.metrics.Infidelity(
        perturbation=steps, n_perturb_samples=3, normalize=False, step_batch_size=3
    )
    result = metric(maps, x, y=0, model=model)
    f = model.predict(x, verbose=0)[:, 0]
    dots = np.array([maps.reshape(3, -1).sum(1) * s for s in shifts])  # (3 runs, 3 samples)
    drops = np.array([f - model.predict(x - s, verbose=0)[:, 0] for s in shifts])
    np.testing.assert_allclose(result.values, ((dots - drops) ** 2).mean(0), rtol=1e-4)
    beta = (dots * drops).mean(0) / (dots**2).mean(0)
    normalized = ke.metrics.Infidelity(perturbation=steps, n_perturb_samples=3, step_batch_size=3)
    values = normalized(maps, x, y=0, model=model).values
    np.testing.assert_allclose(values, ((beta * dots - drops) ** 2).mean(0), rtol=1e-4)
    scaled = normalized(7.5 * maps, x, y=0, model=model).values
    np.testing.assert_allclose(scaled, values, rtol=1e-4)


def test_infidelity_default_noise_is_seeded_and_batch_invariant():
    model = nonlinear(channels=2)
    x = images(5)
    maps = np.random.default_rng(6).normal(size=x.shape[:-1]).astype("float32")
    metric = ke.metrics.Infidelity(noise_std=0.1, seed=3)
    reference = metric(maps, x, y=0, model=model).values
    assert (reference > 0).all()
    small = ke.metrics.Infidelity(noise_std=0.1, seed=3, batch_size=2, step_batch_size=4)
    np.testing.assert_allclose(small(maps, x, y=0, model=model).values, reference, rtol=1e-5)
    other = ke.metrics.Infidelity(noise_std=0.1, seed=4)(maps, x, y=0, model=model).values
    assert not np.allclose(other, reference)
    with pytest.raises(TypeError, match="perturbation"):
        ke.metrics.Infidelity(perturbation="gaussian")


# ---------------------------------------------------------- completeness
def test_completeness_of_integrated_gradients_on_a_linear_model():
    model, _ = linear(channels=2, bias=True)
    x = images(3)
    ig = ke.IntegratedGradients(model, steps=4, postprocess=None)
    result = ke.metrics.Completeness()(ig, x, 0)
    np.testing.assert_allclose(result.values, 0.0, atol=1e-5)
    assert result.complete.all()
    assert ke.metrics.Completeness.higher_is_better is False


def test_completeness_by_hand():
    model = nonlinear(channels=2)
    x = images(4)
    maps = np.random.default_rng(7).normal(0, 0.1, size=x.shape[:-1]).astype("float32")
    result = ke.metrics.Completeness(baseline=0.5, tolerance=0.5)(maps, x, y=1, model=model)
    delta = model.predict(x, verbose=0)[:, 1] - model.predict(x * 0 + 0.5, verbose=0)[:, 1]
    gap = np.abs(maps.reshape(4, -1).sum(1) - delta) / np.abs(delta)
    np.testing.assert_allclose(result.values, gap, rtol=1e-4)
    np.testing.assert_allclose(result.deltas, delta, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.complete, gap <= 0.5)


def test_return_perturbed_gives_the_inputs_the_run_scored():
    model, w = linear()
    x = images(3)
    maps = np.random.default_rng(9).normal(size=x.shape[:-1]).astype("float32")
    metric = ke.metrics.FaithfulnessCorrelation(runs=5, subset_size=7, return_perturbed=2)
    result = metric(maps, x, model=model)
    assert result.perturbed.shape == (2, 5, 9, 9, 2)
    for i in range(2):
        for r in range(5):
            removed = (result.perturbed[i, r] != x[i]).all(-1)
            assert removed.sum() == 7
            np.testing.assert_array_equal(result.perturbed[i, r][removed], 0.0)
            assert maps[i][removed].sum() == pytest.approx(result.sums[i, r], abs=1e-5)
    assert (
        ke.metrics.FaithfulnessCorrelation(runs=5, subset_size=7)(maps, x, model=model).perturbed
        is None
    )
    # Through an explainer, and Infidelity's noise: one value per position.
    infidelity = ke.metrics.Infidelity(noise_std=0.1, n_perturb_samples=4, return_perturbed=1)
    noisy = infidelity(ke.InputXGradient(model, postprocess=None), x, 0).perturbed
    assert noisy.shape == (1, 4, 9, 9, 2)
    noise = x[0] - noisy[0]
    np.testing.assert_allclose(noise[..., 0], noise[..., 1], atol=1e-6)
    assert 0.07 < noise.std() < 0.13


def test_a_perturbation_function_as_baseline_and_tensor_inputs():
    model = nonlinear(channels=2)
    x = images(3)
    maps = np.random.default_rng(10).normal(size=x.shape[:-1]).astype("float32")
    metric = ke.metrics.FaithfulnessCorrelation(runs=6, subset_size=9, baseline=0.5)
    reference = metric(maps, x, y=0, model=model).values
    function = ke.metrics.FaithfulnessCorrelation(
        runs=6, subset_size=9, baseline=lambda inputs: tf.fill(tf.shape(inputs), 0.5)
    )
    tensors = function(tf.constant(maps), tf.constant(x), y=tf.constant([0, 0, 0]), model=model)
    np.testing.assert_allclose(tensors.values, reference, rtol=1e-6)
    completeness = ke.metrics.Completeness(baseline=lambda inputs: inputs * 0.0)
    np.testing.assert_allclose(
        completeness(maps, x, y=0, model=model).values,
        ke.metrics.Completeness()(maps, x, y=0, model=model).values,
        rtol=1e-6,
    )
