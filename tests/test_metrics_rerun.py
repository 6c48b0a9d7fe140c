"""Metrics that re-run the explainer: Max/Avg-Sensitivity and Random Logit."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from keras_explainable.errors import TargetError
from keras_explainable.metrics.random_logit import ssim


def linear(shape=(6, 6, 2), units=1, seed=0, same=False):
    """Dense on flattened inputs with fixed weights (`same`: every unit alike)."""
    inputs = keras.Input(shape)
    dense = keras.layers.Dense(units, use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 1, (int(np.prod(shape)), 1 if same else units)).astype("float32")
    dense.set_weights([np.repeat(kernel, units, axis=1) if same else kernel])
    return model, kernel[:, 0].reshape(shape)


def nonlinear(shape=(8, 8, 1), units=3, seed=0):
    inputs = keras.Input(shape)
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="tanh")(inputs)
    outputs = keras.layers.Dense(units)(keras.layers.Flatten()(conv))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.weights])
    return model


def images(count=5, shape=(6, 6, 2), seed=1):
    return np.random.default_rng(seed).uniform(0.1, 1, (count, *shape)).astype("float32")


# ------------------------------------------------------------ sensitivity
def test_saliency_of_a_linear_model_does_not_move():
    model, _ = linear()
    x = images()
    for metric in (ke.metrics.MaxSensitivity(radius=0.2), ke.metrics.AvgSensitivity()):
        result = metric(ke.Saliency(model), x, 0)
        np.testing.assert_allclose(result.values, 0.0, atol=1e-6)
        assert result.ratios.shape == (5, 10)
        assert metric.higher_is_better is False


def test_gradient_x_input_of_a_linear_model_with_a_fixed_shift():
    model, w = linear()
    x = images(3)
    delta = np.random.default_rng(2).normal(0, 0.1, x.shape[1:]).astype("float32")
    metric = ke.metrics.MaxSensitivity(
        perturbation=lambda copies: copies + delta, n_perturb_samples=3, step_batch_size=2
    )
    result = metric(ke.InputXGradient(model, postprocess=None), x, 0)
    moved = np.linalg.norm((w * delta).sum(-1))  # the map moves by sum_c w * delta
    expected = moved / np.linalg.norm((w * x).sum(-1).reshape(3, -1), axis=1)
    np.testing.assert_allclose(result.values, expected, rtol=1e-5)
    np.testing.assert_allclose(result.ratios, np.repeat(expected[:, None], 3, 1), rtol=1e-5)


def test_captums_deterministic_perturbation():
    # Captum's test perturbation: x + arange(-d/2, d/2) / 100 along the features.
    d = 10
    model, w = linear(shape=(d, 1))
    x = images(4, shape=(d, 1))
    shift = (np.arange(-d / 2, d / 2) / 100).astype("float32").reshape(1, d, 1)
    metric = ke.metrics.AvgSensitivity(perturbation=lambda copies: copies + shift)
    result = metric(ke.InputXGradient(model, postprocess=None), x, 0)
    expected = np.linalg.norm((w * shift)[0, :, 0]) / np.linalg.norm((w * x)[..., 0], axis=1)
    np.testing.assert_allclose(result.values, expected, rtol=1e-5)


def test_default_noise_is_seeded_and_batch_invariant():
    model = nonlinear()
    x = images(5, shape=(8, 8, 1))
    explainer = ke.Saliency(model, postprocess=None, verbose=0)
    metric = ke.metrics.MaxSensitivity(radius=0.1, n_perturb_samples=4)
    reference = metric(explainer, x, 1)
    assert (reference.values > 0).all()
    np.testing.assert_allclose(reference.values, reference.ratios.max(1))
    # A last batch of one sample, perturbations one call at a time, a dataset
    # of unknown length.
    small = ke.metrics.MaxSensitivity(
        radius=0.1, n_perturb_samples=4, batch_size=2, step_batch_size=1
    )
    np.testing.assert_allclose(small(explainer, x, 1).ratios, reference.ratios, rtol=1e-4)
    dataset = tf.data.Dataset.from_tensor_slices(x).filter(lambda _: True).batch(3)
    streamed = metric(explainer, dataset, 1)
    np.testing.assert_allclose(streamed.ratios, reference.ratios, rtol=1e-4)
    average = ke.metrics.AvgSensitivity(radius=0.1, n_perturb_samples=4)(explainer, x, 1)
    np.testing.assert_allclose(average.values, reference.ratios.mean(1), rtol=1e-5)
    other = ke.metrics.MaxSensitivity(radius=0.1, n_perturb_samples=4, seed=1)
    assert not np.allclose(other(explainer, x, 1).ratios, reference.ratios)


def test_rerun_metrics_need_the_explainer():
    maps = np.zeros((2, 6, 6), "float32")
    for metric in (ke.metrics.MaxSensitivity(), ke.metrics.RandomLogit()):
        with pytest.raises(TypeError, match="pass the explainer"):
            metric(maps, images(2))
    with pytest.raises(ValueError, match="win_size must be odd"):
        ke.metrics.RandomLogit(win_size=4)


# ----------------------------------------------------------- random logit
def test_random_logit_is_one_when_the_classes_are_alike():
    model, _ = linear(shape=(8, 8, 1), units=2, same=True)
    x = images(3, shape=(8, 8, 1))
    result = ke.metrics.RandomLogit()(ke.InputXGradient(model, postprocess=None), x, 0)
    np.testing.assert_allclose(result.values, 1.0, atol=1e-9)
    assert ke.metrics.RandomLogit.higher_is_better is False


def test_random_logit_by_hand():
    model = nonlinear(units=2)  # two classes: the other one is certain
    x = images(4, shape=(8, 8, 1))
    explainer = ke.Saliency(model, postprocess=None, verbose=0)
    result = ke.metrics.RandomLogit()(explainer, x, 0)
    first = explainer.explain(x, 0).maps[..., 0]
    second = explainer.explain(x, 1).maps[..., 0]
    np.testing.assert_allclose(result.values, ssim(first, second), rtol=1e-9)
    assert (result.values < 0.99).all()
    with pytest.raises(TargetError, match="two output units"):
        ke.metrics.RandomLogit()(ke.Saliency(linear((8, 8, 1))[0]), x, 0)


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(8)
    first = rng.normal(size=(2, 12, 10))
    second = first + rng.normal(0, 0.5, size=first.shape)
    for a, b, value in zip(first, second, ssim(first, second), strict=True):
        spread = max(a.max(), b.max()) - min(a.min(), b.min())
        expected = metrics.structural_similarity(a, b, data_range=spread)
        assert value == pytest.approx(expected, rel=1e-9)


def test_return_perturbed_sensitivity():
    model, _ = linear()
    x = images(3)
    metric = ke.metrics.AvgSensitivity(radius=0.05, n_perturb_samples=4, return_perturbed=2)
    result = metric(ke.Saliency(model), x, 0)
    assert result.perturbed.shape == (2, 4, 6, 6, 2)
    shift = result.perturbed - x[:2, None]
    assert np.abs(shift).max() <= 0.05 + 1e-6 and np.abs(shift).max() > 0.04
    fixed = ke.metrics.MaxSensitivity(
        perturbation=lambda copies: copies + 1.0, n_perturb_samples=2, return_perturbed=1
    )
    np.testing.assert_allclose(fixed(ke.Saliency(model), x, 0).perturbed[0], x[[0, 0]] + 1.0)


# --------------------------------------------------------------- evaluate
def test_evaluate_with_the_new_metrics():
    model = nonlinear()
    x = images(4, shape=(8, 8, 1))
    explainers = {"saliency": ke.Saliency(model, verbose=0)}
    metrics = {
        "max_sensitivity": ke.metrics.MaxSensitivity(n_perturb_samples=3, radius=0.1),
        "random_logit": ke.metrics.RandomLogit(),
        "faithfulness_correlation": ke.metrics.FaithfulnessCorrelation(runs=8, subset_size=6),
        "sparseness": ke.metrics.Sparseness(),
    }
    (row,) = ke.metrics.evaluate(explainers, x, 1, metrics=metrics)
    explainer = explainers["saliency"]
    expl = explainer.explain(x, 1)
    assert row["max_sensitivity"] == pytest.approx(metrics["max_sensitivity"](explainer, x, 1).mean)
    assert row["random_logit"] == pytest.approx(metrics["random_logit"](explainer, x, 1).mean)
    expected = metrics["faithfulness_correlation"](expl, x, model=model).mean
    assert row["faithfulness_correlation"] == pytest.approx(expected)
    assert row["sparseness"] == pytest.approx(metrics["sparseness"](expl).mean)
    extended = ke.metrics.default_metrics(extended=True)
    assert list(extended)[4:] == [
        "average_gain",
        "faithfulness_correlation",
        "mu_fidelity",
        "infidelity",
        "symmetric_relevance_gain",
        "max_sensitivity",
        "random_logit",
        "sparseness",
        "complexity",
        "relevance_mass_accuracy",
        "relevance_rank_accuracy",
    ]
    assert all(metric.higher_is_better is not None for metric in extended.values())
