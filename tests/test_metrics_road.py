"""ROAD and the Symmetric Relevance Gain: the imputer and the curves, by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from keras_explainable.errors import InputError
from keras_explainable.metrics.road import noisy_linear_imputation

sparse = pytest.importorskip("scipy.sparse")
linalg = pytest.importorskip("scipy.sparse.linalg")


def reference_imputation(image, removed):
    """ROAD's system solved directly: each removed pixel is its neighbours' weighted mean."""
    height, width, channels = image.shape
    unknown = -np.ones((height, width), int)
    positions = np.argwhere(removed)
    unknown[tuple(positions.T)] = np.arange(len(positions))
    rows, cols, values = [], [], []
    rhs = np.zeros((len(positions), channels))
    for row, (i, j) in enumerate(positions):
        total = 0.0
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                a, b = i + di, j + dj
                if (di, dj) == (0, 0) or not (0 <= a < height and 0 <= b < width):
                    continue
                weight = 1 / 12 if di and dj else 1 / 6
                total += weight
                if removed[a, b]:
                    rows.append(row), cols.append(unknown[a, b]), values.append(-weight)
                else:
                    rhs[row] += weight * image[a, b]
        rows.append(row), cols.append(row), values.append(total)
    matrix = sparse.csc_matrix((values, (rows, cols)), shape=(len(positions),) * 2)
    filled = image.astype(np.float64).copy()
    filled[removed] = linalg.spsolve(matrix, rhs).reshape(len(positions), channels)
    return filled


def impute(images, removed):
    return noisy_linear_imputation(images, removed, noise=0.0, tolerance=1e-7).numpy()


@pytest.mark.parametrize("size", [12, 40])  # 40: started from the half-resolution solution
def test_imputation_of_a_constant_image_and_a_hole_in_a_ramp(size):
    rng = np.random.default_rng(0)
    removed = rng.uniform(size=(1, size, size)) < 0.6  # borders included
    constant = np.full((1, size, size, 2), 0.37, "float32")
    np.testing.assert_allclose(impute(constant, removed), constant, atol=1e-6)
    rows, cols = np.mgrid[0:size, 0:size]
    ramp = (0.02 * rows + 0.01 * cols + 0.1)[None, ..., None].astype("float32")
    hole = np.zeros((1, size, size), bool)
    hole[0, 2 : size - 3, 3 : size - 2] = True  # interior: every neighbour in the image
    np.testing.assert_allclose(impute(ramp, hole), ramp, atol=1e-5)


def test_imputation_matches_a_direct_sparse_solve():
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(2, 20, 18, 3)).astype("float32")
    removed = rng.uniform(size=(2, 20, 18)) < 0.7
    filled = impute(images, removed)
    for image, mask, result in zip(images, removed, filled, strict=True):
        np.testing.assert_allclose(result, reference_imputation(image, mask), atol=1e-5)
    # Noise goes on the imputed pixels only.
    keys = tf.constant([3, 4], tf.int64)
    noisy = noisy_linear_imputation(images, removed, 0.01, keys, tolerance=1e-7).numpy()
    np.testing.assert_array_equal(noisy[~removed], images[~removed])
    assert 0.005 < np.std(noisy[removed] - filled[removed]) < 0.015


SIZE = 16


def region_model():
    """sigmoid(sum over a 6x6 region - 10): the model reads the region only."""
    region = np.zeros((SIZE, SIZE), bool)
    region[4:10, 5:11] = True
    inputs = keras.Input((SIZE, SIZE, 1))
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([region.reshape(-1, 1).astype("float32"), np.array([-10.0], "float32")])
    return model, region


def region_data(count=3):
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 0.1, (count, SIZE, SIZE, 1)).astype("float32")
    model, region = region_model()
    x[:, region] += 0.8  # a bright object where the model looks
    on = np.where(region, 1.0, 0.0) + rng.uniform(0, 0.01, (count, SIZE, SIZE))
    off = np.where(region, 0.0, 1.0) + rng.uniform(0, 0.01, (count, SIZE, SIZE))
    return model, region, x, on.astype("float32"), off.astype("float32")


def reference_curve(model, x, saliency, percentages, lerf):
    order = np.argsort(-saliency.ravel(), kind="stable")
    curve = []
    for p in percentages:
        count = int(np.floor(p / 100 * saliency.size + 0.5))
        chosen = order[saliency.size - count :] if lerf else order[:count]
        removed = np.zeros(saliency.size, bool)
        removed[chosen] = True
        filled = reference_imputation(x, removed.reshape(saliency.shape))
        curve.append(model.predict(filled[None].astype("float32"), verbose=0)[0, 0])
    return np.array(curve)


def test_road_curves_by_hand_and_the_region_ranks_first():
    model, _, x, on, off = region_data()
    percentages = [10, 25, 50, 75]
    options = {"percentages": percentages, "noise": 0.0, "tolerance": 1e-7}
    srg = ke.metrics.SymmetricRelevanceGain(**options)
    result = srg(on, x, model=model)
    for i in range(len(x)):
        for lerf, curve in ((False, result.morf[i]), (True, result.lerf[i])):
            expected = reference_curve(model, x[i], on[i], percentages, lerf)
            np.testing.assert_allclose(curve, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        result.values, result.lerf.mean(1) - result.morf.mean(1), rtol=1e-6, atol=1e-7
    )
    morf = ke.metrics.ROAD(**options)
    lerf = ke.metrics.ROAD(order="lerf", **options)
    np.testing.assert_allclose(morf(on, x, model=model).morf, result.morf, rtol=1e-6)
    np.testing.assert_allclose(lerf(on, x, model=model).lerf, result.lerf, rtol=1e-6)
    # A map of the region the model reads ranks first on every metric.
    assert (morf(on, x, model=model).values < morf(off, x, model=model).values).all()
    assert (lerf(on, x, model=model).values > lerf(off, x, model=model).values).all()
    assert (result.values > srg(off, x, model=model).values).all()
    assert (morf.higher_is_better, lerf.higher_is_better, srg.higher_is_better) == (
        False,
        True,
        True,
    )


def test_road_noise_is_seeded_and_batch_invariant():
    model, _, x, on, _ = region_data(5)
    metric = ke.metrics.SymmetricRelevanceGain(percentages=[20, 60])
    reference = metric(on, x, model=model)
    quiet = ke.metrics.SymmetricRelevanceGain(percentages=[20, 60], noise=0.0)(on, x, model=model)
    assert not np.allclose(reference.morf, quiet.morf)
    small = ke.metrics.SymmetricRelevanceGain(
        percentages=[20, 60], batch_size=2, step_batch_size=3
    )  # a last batch of one sample
    np.testing.assert_allclose(small(on, x, model=model).morf, reference.morf, rtol=1e-4)
    dataset = tf.data.Dataset.from_tensor_slices(x).filter(lambda _: True).batch(2)
    streamed = metric(on, dataset, model=model)
    np.testing.assert_allclose(streamed.values, reference.values, rtol=1e-4, atol=1e-6)


def test_road_errors():
    with pytest.raises(ValueError, match=r"each in \(0, 100\)"):
        ke.metrics.ROAD(percentages=[10, 100])
    with pytest.raises(ValueError, match="order"):
        ke.metrics.ROAD(order="random")
    inputs = keras.Input((8, 1))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    with pytest.raises(InputError, match="2-D images"):
        ke.metrics.ROAD()(np.zeros((2, 8), "float32"), np.zeros((2, 8, 1), "float32"), model=model)
    with pytest.raises(ValueError, match="needs keys"):
        noisy_linear_imputation(np.zeros((1, 4, 4, 1)), np.ones((1, 4, 4), bool))


def test_return_perturbed_road():
    model, _, x, on, _ = region_data(2)
    srg = ke.metrics.SymmetricRelevanceGain(
        percentages=[30], noise=0.0, tolerance=1e-7, return_perturbed=1
    )
    perturbed = srg(on, x, model=model).perturbed
    assert perturbed.shape == (1, 2, SIZE, SIZE, 1)
    order = np.argsort(-on[0].ravel(), kind="stable")
    count = int(np.floor(0.3 * SIZE * SIZE + 0.5))
    for column, chosen in ((0, order[:count]), (1, order[SIZE * SIZE - count :])):
        removed = np.zeros(SIZE * SIZE, bool)
        removed[chosen] = True
        expected = reference_imputation(x[0], removed.reshape(SIZE, SIZE))
        np.testing.assert_allclose(perturbed[0, column], expected, atol=1e-5)


def test_road_with_another_imputation():
    model, _, x, on, _ = region_data(2)

    def zeros(images, removed):
        return tf.where(removed[..., None], 0.0, images)

    result = ke.metrics.ROAD(percentages=[25, 50], imputation=zeros)(on, x, model=model)
    order = np.argsort(-on.reshape(2, -1), axis=1, kind="stable")
    for i in range(2):
        for column, p in enumerate((25, 50)):
            removed = np.zeros(SIZE * SIZE, bool)
            removed[order[i, : int(p / 100 * SIZE * SIZE + 0.5)]] = True
            image = np.where(removed.reshape(SIZE, SIZE, 1), 0.0, x[i])[None]
            expected = model.predict(image.astype("float32"), verbose=0)[0, 0]
            assert result.morf[i, column] == pytest.approx(expected, rel=1e-5)
