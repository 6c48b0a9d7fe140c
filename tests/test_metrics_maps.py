"""Map-only and confidence metrics: Sparseness, Complexity, CLEVR-XAI's, Average Gain."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_explainable as ke


def test_sparseness_and_complexity_one_hot_and_uniform():
    n = 6 * 5
    one_hot = np.zeros((2, 6, 5), "float32")
    one_hot[0, 2, 3] = 4.0
    one_hot[1, 0, 0] = -0.5  # absolute values
    uniform = np.full((2, 6, 5), 0.3, "float32")
    uniform[1] *= -2
    sparseness, complexity = ke.metrics.Sparseness(), ke.metrics.Complexity()
    np.testing.assert_allclose(sparseness(one_hot).values, (n - 1) / n, rtol=1e-6)
    np.testing.assert_allclose(complexity(one_hot).values, 0.0, atol=1e-7)
    np.testing.assert_allclose(sparseness(uniform).values, 0.0, atol=1e-6)
    np.testing.assert_allclose(complexity(uniform).values, np.log(n), rtol=1e-6)
    assert sparseness.higher_is_better is True and complexity.higher_is_better is False


def test_sparseness_and_complexity_by_hand_and_batch_invariant():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(5, 4, 3)).astype("float32")
    flat = np.sort(np.abs(maps.reshape(5, -1)).astype(np.float64), axis=1)
    n = flat.shape[1]
    k = np.arange(1, n + 1)
    gini = ((2 * k - n - 1) * flat).sum(1) / (n * flat.sum(1))
    shares = flat / flat.sum(1, keepdims=True)
    entropy = -(shares * np.log(shares)).sum(1)
    for batch_size in (32, 2):
        np.testing.assert_allclose(
            ke.metrics.Sparseness(batch_size=batch_size)(maps).values, gini, rtol=1e-5
        )
        np.testing.assert_allclose(
            ke.metrics.Complexity(batch_size=batch_size)(maps).values, entropy, rtol=1e-5
        )
    zero = np.zeros((1, 4, 3), "float32")
    assert np.isnan(ke.metrics.Sparseness()(zero).values[0])
    assert np.isnan(ke.metrics.Complexity()(zero).values[0])


def region_maps_and_masks():
    """A map relevant on 8 positions; masks all-in, none-in and half-in."""
    maps = np.zeros((3, 6, 6), "float32")
    maps[:, 1:3, 1:5] = np.linspace(1, 2, 8).reshape(2, 4)  # region A, 8 positions
    maps[:, 5, :] = -3.0  # negative relevance, outside every mask
    masks = np.zeros((3, 6, 6), bool)
    masks[0, 1:3, 1:5] = True  # all in: exactly A
    masks[1, 3:5, 0:4] = True  # none in: 8 positions off A
    masks[2, 1:2, 1:5] = True  # half in: A's first row ...
    masks[2, 3, 0:4] = True  # ... and 4 positions off A
    return maps, masks


def test_relevance_mass_and_rank_accuracy_all_none_half():
    maps, masks = region_maps_and_masks()
    mass = ke.metrics.RelevanceMassAccuracy()(maps, masks=masks).values
    first_row = np.linspace(1, 2, 8)[:4].sum() / np.linspace(1, 2, 8).sum()
    np.testing.assert_allclose(mass, [1.0, 0.0, first_row], rtol=1e-6)
    rank = ke.metrics.RelevanceRankAccuracy()(maps, masks=masks).values
    np.testing.assert_allclose(rank, [1.0, 0.0, 0.5])
    # A flat region: half the mass is half in.
    flat = np.where(maps > 0, 1.0, maps).astype("float32")
    np.testing.assert_allclose(
        ke.metrics.RelevanceMassAccuracy()(flat, masks=masks).values, [1.0, 0.0, 0.5]
    )
    # Absolute relevance ranks the -3 row first; the signed mass counts it negatively.
    absolute = ke.metrics.RelevanceRankAccuracy(relevance="absolute")(maps, masks=masks)
    np.testing.assert_allclose(absolute.values, [2 / 8, 0.0, 0.0])
    signed = ke.metrics.RelevanceMassAccuracy(relevance="signed")(maps, masks=masks)
    total = np.linspace(1, 2, 8).sum() - 18.0
    np.testing.assert_allclose(signed.values[0], np.linspace(1, 2, 8).sum() / total, rtol=1e-6)
    # Boxes are masks.
    boxes = np.array([[1, 1, 3, 5]])
    assert ke.metrics.RelevanceRankAccuracy()(maps[:1], boxes=boxes).values[0] == 1.0


def test_relevance_accuracy_options_fail_at_construction():
    with pytest.raises(ValueError, match="relevance"):
        ke.metrics.RelevanceMassAccuracy(relevance="abs")
    with pytest.raises(TypeError, match="masks= or boxes="):
        ke.metrics.RelevanceRankAccuracy()(np.zeros((1, 4, 4), "float32"))


def test_average_gain_by_hand():
    # score = sigmoid(x . w), w = 1 on the left column, -1 on the right.
    inputs = keras.Input((2, 2, 1))
    dense = keras.layers.Dense(1, activation="sigmoid", use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([np.array([[1.0], [-1.0], [1.0], [-1.0]], "float32")])
    images = np.ones((2, 2, 2, 1), "float32")  # logit 0, Y = 0.5
    maps = np.array([[[0, 1], [0, 1]], [[1, 0], [1, 0]]], "float32")
    # Sample 0 keeps the right column (logit -2), sample 1 the left (+2).
    gain = ke.metrics.AverageGain()(maps, images, model=model)
    expected = [0.0, 100 * (1 / (1 + np.exp(-2)) - 0.5) / 0.5]
    np.testing.assert_allclose(gain.values, expected, rtol=1e-5)
    assert gain.mean == pytest.approx(np.mean(expected), rel=1e-5)
    assert ke.metrics.AverageGain.higher_is_better is True
    assert ke.metrics.AverageDrop.higher_is_better is False


def test_return_perturbed_of_the_two_image_metrics():
    inputs = keras.Input((2, 2, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    images = np.arange(8, dtype="float32").reshape(2, 2, 2, 1) + 1
    maps = np.array([[[0, 2], [1, 0]], [[1, 1], [1, 1]]], "float32")
    gain = ke.metrics.AverageGain(return_perturbed=2)(maps, images, y=0, model=model)
    expected = images * (maps / maps.max(axis=(1, 2), keepdims=True))[..., None]
    np.testing.assert_allclose(gain.perturbed[:, 0], expected)
    completeness = ke.metrics.Completeness(baseline=0.25, return_perturbed=1)
    result = completeness(maps, images, y=0, model=model)
    np.testing.assert_array_equal(result.perturbed, np.full((1, 1, 2, 2, 1), 0.25))
