"""Metrics: hand-computed values, batching invariance, validation."""

from __future__ import annotations

import math

import attrs
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from keras_explainable.errors import InputError, TargetError
from keras_explainable.metrics.curve import pixel_counts

SIZE = 4  # 4 x 4 images, 16 pixels


def linear_model(channels=1, activation=None, units=1, seed=0):
    """Dense on flattened pixels with fixed weights: score = w . x + b."""
    inputs = keras.Input((SIZE, SIZE, channels))
    flat = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(units, activation=activation, name="dense")(flat)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 1, (SIZE * SIZE * channels, units)).astype("float32")
    bias = rng.normal(0, 1, (units,)).astype("float32")
    model.get_layer("dense").set_weights([kernel, bias])
    return model, kernel, bias


def logits(kernel, bias, images):
    return images.reshape(len(images), -1) @ kernel + bias


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def reference_curve(image, saliency, baseline, steps, deletes, score):
    """The curve, computed one perturbed image at a time."""
    pixels = saliency.size
    order = np.argsort(-saliency.ravel(), kind="stable")
    curve = []
    for k in range(steps + 1):
        count = math.floor(k * pixels / steps + 0.5)
        changed = np.zeros(pixels, bool)
        changed[order[:count]] = True
        changed = changed.reshape(saliency.shape)[..., None]
        if deletes:
            perturbed = np.where(changed, baseline, image)
        else:
            perturbed = np.where(changed, image, baseline)
        curve.append(score(perturbed[None])[0])
    curve = np.array(curve)
    area = (curve.sum() - (curve[0] + curve[-1]) / 2) / steps
    return curve, area


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (5, SIZE, SIZE, 2)).astype("float32")
    # Few distinct values, so the ranking has ties to break.
    maps = rng.integers(0, 4, (5, SIZE, SIZE)).astype("float32")
    return images, maps


# ---------------------------------------------------------------- curves
def test_pixel_counts_round_to_whole_pixels():
    assert pixel_counts(16, 16).tolist() == list(range(17))
    assert pixel_counts(16, 5).tolist() == [0, 3, 6, 10, 13, 16]
    assert pixel_counts(10, 4).tolist() == [0, 3, 5, 8, 10]  # halves round up


@pytest.mark.parametrize("steps", [16, 5])
def test_deletion_matches_linear_model(data, steps):
    images, maps = data
    model, kernel, bias = linear_model(channels=2)
    result = ke.metrics.Deletion(steps=steps, use_probabilities=False)(maps, images, model=model)
    for i in range(len(images)):
        curve, area = reference_curve(
            images[i],
            maps[i],
            0.0,
            steps,
            True,
            lambda x: logits(kernel, bias, x)[:, 0],
        )
        np.testing.assert_allclose(result.curves[i], curve, rtol=1e-5, atol=1e-5)
        assert result.values[i] == pytest.approx(area, abs=1e-5)
    assert result.mean == pytest.approx(result.values.mean())
    np.testing.assert_allclose(result.fractions, np.arange(steps + 1) / steps)
    # Deleting everything leaves the bias; nothing deleted, the full score.
    np.testing.assert_allclose(result.curves[:, -1], bias[0], atol=1e-5)


def test_insertion_matches_sigmoid_model_with_probabilities(data):
    images, maps = data
    model, kernel, bias = linear_model(channels=2, activation="sigmoid")
    result = ke.metrics.Insertion(steps=8, baseline=0.5)(maps[..., None], images, model=model)
    for i in range(len(images)):
        curve, area = reference_curve(
            images[i],
            maps[i],
            0.5,
            8,
            False,
            lambda x: sigmoid(logits(kernel, bias, x))[:, 0],
        )
        np.testing.assert_allclose(result.curves[i], curve, rtol=1e-5)
        assert result.values[i] == pytest.approx(area, rel=1e-5)


@pytest.mark.parametrize("metric", [ke.metrics.Deletion, ke.metrics.Insertion])
def test_curves_return_the_images_they_scored(data, metric):
    images, maps = data
    model, kernel, bias = linear_model(channels=2)
    result = metric(steps=5, use_probabilities=False, baseline=0.25, return_perturbed=2)(
        maps, images, model=model
    )
    assert result.perturbed.shape == (2, 6, SIZE, SIZE, 2)
    for i in range(2):
        # every curve point's image, scored by hand, is the curve
        scores = logits(kernel, bias, result.perturbed[i])[:, 0]
        np.testing.assert_allclose(scores, result.curves[i], rtol=1e-5, atol=1e-5)
        first, last = (images[i], 0.25) if metric is ke.metrics.Deletion else (0.25, images[i])
        np.testing.assert_allclose(result.perturbed[i, 0], np.broadcast_to(first, images[i].shape))
        np.testing.assert_allclose(result.perturbed[i, -1], np.broadcast_to(last, images[i].shape))
    plain = metric(steps=5, use_probabilities=False, baseline=0.25)(maps, images, model=model)
    assert plain.perturbed is None
    np.testing.assert_allclose(plain.curves, result.curves)


def test_softmax_target_and_array_and_mean_baselines(data):
    images, maps = data
    model, kernel, bias = linear_model(channels=2, activation="softmax", units=3)
    baseline = np.linspace(0, 1, SIZE * SIZE * 2, dtype="float32").reshape(SIZE, SIZE, 2)

    def probability(x, unit=2):
        z = logits(kernel, bias, x)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True))[:, unit]

    result = ke.metrics.Deletion(steps=4, baseline=baseline)(maps, images, 2, model=model)
    for i in range(len(images)):
        curve, _ = reference_curve(images[i], maps[i], baseline, 4, True, probability)
        np.testing.assert_allclose(result.curves[i], curve, rtol=1e-5)

    result = ke.metrics.Deletion(steps=4, baseline="mean")(maps, images, 2, model=model)
    for i in range(len(images)):
        mean = images[i].mean(axis=(0, 1))
        curve, _ = reference_curve(images[i], maps[i], mean, 4, True, probability)
        np.testing.assert_allclose(result.curves[i], curve, rtol=1e-5)


def numpy_blur(image, sigma):
    radius = math.ceil(sigma)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    padded = np.pad(image, [(radius, radius), (radius, radius), (0, 0)])
    out = np.zeros_like(image)
    for dy, wy in zip(offsets, weights, strict=True):
        for dx, wx in zip(offsets, weights, strict=True):
            window = padded[radius + dy : radius + dy + SIZE, radius + dx : radius + dx + SIZE]
            out += wy * wx * window
    return out


def test_insertion_starts_from_blur(data):
    images, maps = data
    model, kernel, bias = linear_model(channels=2)
    insertion = ke.metrics.Insertion(steps=4, blur_sigma=1.0, use_probabilities=False)
    assert insertion.baseline == "blur"
    result = insertion(maps, images, model=model)
    for i in range(len(images)):
        blurred = numpy_blur(images[i], 1.0)
        curve, _ = reference_curve(
            images[i],
            maps[i],
            blurred,
            4,
            False,
            lambda x: logits(kernel, bias, x)[:, 0],
        )
        np.testing.assert_allclose(result.curves[i], curve, rtol=1e-4, atol=1e-5)


def test_curves_are_batch_invariant(data):
    images, maps = data
    model, *_ = linear_model(channels=2)
    reference = ke.metrics.Deletion(steps=7, use_probabilities=False)(maps, images, model=model)
    for batch_size, step_batch_size in [(1, 1), (2, 3), (5, 64)]:
        result = ke.metrics.Deletion(
            steps=7,
            use_probabilities=False,
            batch_size=batch_size,
            step_batch_size=step_batch_size,
        )(maps, images, model=model)
        np.testing.assert_allclose(result.curves, reference.curves, rtol=1e-6, atol=1e-6)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(2)
    result = ke.metrics.Deletion(steps=7, use_probabilities=False)(maps, dataset, model=model)
    np.testing.assert_allclose(result.values, reference.values, rtol=1e-6, atol=1e-6)


# -------------------------------------------------------- confidence change
def test_average_drop_is_zero_for_an_all_ones_map(data):
    images, _ = data
    model, *_ = linear_model(channels=2, activation="softmax", units=3)
    ones = np.ones(images.shape[:-1], "float32")
    result = ke.metrics.AverageDrop()(ones, images, model=model)
    np.testing.assert_array_equal(result.values, 0.0)
    assert result.mean == 0.0
    assert ke.metrics.IncreaseInConfidence()(ones, images, model=model).mean == 0.0


def test_confidence_change_by_hand(data):
    images, maps = data
    model, kernel, bias = linear_model(channels=2, activation="sigmoid")
    weights = maps / maps.max(axis=(1, 2), keepdims=True)
    original = sigmoid(logits(kernel, bias, images))[:, 0]
    explained = sigmoid(logits(kernel, bias, images * weights[..., None]))[:, 0]
    assert 0 < (original < explained).sum() < len(images)  # a mixed case

    increase = ke.metrics.IncreaseInConfidence()(maps, images, model=model)
    np.testing.assert_array_equal(increase.values, 100.0 * (original < explained))
    assert increase.mean == pytest.approx(100.0 * (original < explained).mean())

    drop = ke.metrics.AverageDrop()(maps, images, model=model)
    expected = 100 * np.maximum(0, original - explained) / original
    # Percentages of a float32 difference of nearby probabilities.
    np.testing.assert_allclose(drop.values, expected, rtol=1e-4, atol=1e-4)


def test_average_drop_two_samples_exactly():
    # score = sigmoid(x . w) with w = 1 on the left half, -1 on the right half.
    inputs = keras.Input((2, 2, 1))
    dense = keras.layers.Dense(1, activation="sigmoid", use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([np.array([[1.0], [-1.0], [1.0], [-1.0]], "float32")])
    images = np.ones((2, 2, 2, 1), "float32")  # logit 0, Y = 0.5
    maps = np.array([[[0, 1], [0, 1]], [[1, 0], [1, 0]]], "float32")
    # Sample 0 keeps the right half: logit -2. Sample 1 the left: logit +2.
    drop = ke.metrics.AverageDrop()(maps, images, model=model)
    np.testing.assert_allclose(drop.values, [100 * (0.5 - sigmoid(-2)) / 0.5, 0.0], rtol=1e-5)
    increase = ke.metrics.IncreaseInConfidence()(maps, images, model=model)
    np.testing.assert_array_equal(increase.values, [0.0, 100.0])


# ------------------------------------------------------------ localisation
def square_masks():
    masks = np.zeros((3, 8, 8), bool)
    masks[:, 2:5, 2:5] = True
    return masks


def test_pointing_games_inside_and_outside():
    masks = square_masks()
    inside = np.where(masks, np.random.default_rng(0).uniform(0.1, 1, masks.shape), 0)
    outside = np.where(masks, 0.0, np.random.default_rng(1).uniform(0.1, 1, masks.shape))
    for metric in (ke.metrics.PointingGame(), ke.metrics.EnergyPointingGame()):
        assert metric(inside, masks=masks).mean == 1.0
        np.testing.assert_allclose(metric(inside, masks=masks).values, 1.0)
        assert metric(outside, masks=masks).mean == 0.0
    boxes = np.array([[2, 2, 5, 5]] * 3)
    assert ke.metrics.PointingGame()(inside, boxes=boxes).mean == 1.0
    assert ke.metrics.EnergyPointingGame()(inside, boxes=boxes).mean == 1.0


def test_energy_share_by_hand():
    masks = square_masks()[:1]
    maps = np.zeros((1, 8, 8), "float32")
    maps[0, 3, 3] = 3.0  # inside
    maps[0, 7, 7] = 1.0  # outside
    maps[0, 0, 0] = -5.0  # negative values carry no energy
    assert ke.metrics.EnergyPointingGame()(maps, masks=masks).values[0] == pytest.approx(0.75)
    zero = np.zeros((1, 8, 8), "float32")
    assert ke.metrics.EnergyPointingGame()(zero, masks=masks).values[0] == 0.0


def test_pointing_game_tolerance():
    masks = np.zeros((1, 8, 8), bool)
    masks[0, 2, 2] = True

    def peak_at(row, col):
        maps = np.zeros((1, 8, 8), "float32")
        maps[0, row, col] = 1.0
        return maps

    def hit(maps, tolerance):
        return ke.metrics.PointingGame(tolerance=tolerance)(maps, masks=masks).values[0]

    assert hit(peak_at(2, 5), 2) == 0.0  # 3 pixels to the right
    assert hit(peak_at(2, 5), 3) == 1.0
    assert hit(peak_at(4, 4), 2.8) == 0.0  # diagonal: sqrt(8) = 2.83
    assert hit(peak_at(4, 4), 2.9) == 1.0
    assert hit(peak_at(2, 2), 0) == 1.0
    constant = np.full((1, 8, 8), 0.5, "float32")
    assert hit(constant, 100) == 0.0  # no peak, no hit


def test_pointing_game_picks_the_first_maximum_and_is_batch_invariant():
    rng = np.random.default_rng(3)
    masks = rng.uniform(size=(9, 6, 6)) < 0.3
    masks[:, 0, 0] = True
    maps = rng.integers(0, 3, (9, 6, 6)).astype("float32")
    flat = maps.reshape(9, -1)
    expected = masks.reshape(9, -1)[np.arange(9), flat.argmax(axis=1)]
    expected &= flat.max(axis=1) > flat.min(axis=1)
    for batch_size in (1, 4, 32):
        for tolerance in (0, 1.5):
            result = ke.metrics.PointingGame(batch_size=batch_size, tolerance=tolerance)(
                maps, masks=masks
            )
            if tolerance == 0:
                np.testing.assert_array_equal(result.values, expected)
            else:
                assert (result.values >= expected).all()
        energy = ke.metrics.EnergyPointingGame(batch_size=batch_size)(maps, masks=masks)
        share = (maps * masks).sum(axis=(1, 2)) / maps.sum(axis=(1, 2))
        np.testing.assert_allclose(energy.values, share, rtol=1e-6)


# ------------------------------------------------- explainers and datasets
def test_explainer_explanation_and_maps_agree(image_model, images):
    _, _, model = image_model
    explainer = ke.GradCAM(model, batch_size=2)
    explanation = explainer.explain(images)
    deletion = ke.metrics.Deletion(steps=8, batch_size=3)
    from_explainer = deletion(explainer, images)
    from_explanation = deletion(explanation, images, model=model)
    from_maps = deletion(explanation.maps, images, explanation.targets[:, 0], model=model)
    top = deletion(explanation.maps, images, model=model)  # y=None: the top class
    for result in (from_explanation, from_maps, top):
        np.testing.assert_allclose(result.values, from_explainer.values, rtol=1e-6)

    dataset = tf.data.Dataset.from_tensor_slices((images, explanation.targets[:, 0]))
    from_dataset = deletion(explainer, dataset)
    np.testing.assert_allclose(from_dataset.values, from_explainer.values, rtol=1e-6)

    masks = np.zeros(images.shape[:-1], bool)
    masks[:, 2:6, 2:6] = True
    pointing = ke.metrics.PointingGame(batch_size=2)
    np.testing.assert_array_equal(
        pointing(explainer, images, masks=masks).values,
        pointing(explanation, masks=masks).values,
    )


def test_evaluate_rows(image_model, images):
    _, _, model = image_model
    explainers = {"gradcam": ke.GradCAM(model), "saliency": ke.Saliency(model)}
    masks = np.zeros(images.shape[:-1], bool)
    masks[:, :4] = True
    metrics = ke.metrics.default_metrics(steps=4)
    rows = ke.metrics.evaluate(explainers, images, masks=masks, metrics=metrics)
    assert [row["method"] for row in rows] == ["gradcam", "saliency"]
    assert list(rows[0]) == [
        "method",
        "deletion",
        "insertion",
        "pointing_game",
        "energy_pointing_game",
    ]
    saliency = explainers["saliency"].explain(images)
    expected = ke.metrics.Insertion(steps=4)(saliency, images, model=model).mean
    assert rows[1]["insertion"] == pytest.approx(expected)
    table = ke.metrics.format_table(rows)
    assert table.splitlines()[0].split() == list(rows[0])
    assert len(table.splitlines()) == 3


# ------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: ke.metrics.Deletion(steps=0), ValueError),
        (lambda: ke.metrics.Deletion(baseline="black"), ValueError),
        (lambda: ke.metrics.Deletion(baseline=float("nan")), ValueError),
        (lambda: ke.metrics.Deletion(baseline=object()), TypeError),
        (lambda: ke.metrics.Insertion(blur_sigma=0), ValueError),
        (lambda: ke.metrics.Insertion(step_batch_size=-1), ValueError),
        (lambda: ke.metrics.AverageDrop(use_probabilities="yes"), TypeError),
        (lambda: ke.metrics.PointingGame(tolerance=-1), ValueError),
        (lambda: ke.metrics.PointingGame(batch_size=0), ValueError),
        (lambda: ke.metrics.EnergyPointingGame(verbose=3), ValueError),
        (lambda: ke.metrics.ModelRandomization(seed=1.5), TypeError),
        (lambda: ke.metrics.ModelRandomization(max_layers=0), ValueError),
    ],
)
def test_bad_options_fail_at_construction(make, error):
    with pytest.raises(error):
        make()


def test_bad_calls_fail_before_any_work(data):
    images, maps = data
    model, *_ = linear_model(channels=2)
    masks = np.ones(maps.shape, bool)
    deletion = ke.metrics.Deletion()
    with pytest.raises(TypeError, match="model="):
        deletion(maps, images)
    with pytest.raises(TypeError, match="ground truth"):
        deletion(maps, images, model=model, masks=masks)
    with pytest.raises(TypeError, match="masks= or boxes="):
        ke.metrics.PointingGame()(maps)
    with pytest.raises(TypeError, match="no model"):
        ke.metrics.PointingGame()(maps, masks=masks, model=model)
    with pytest.raises(TargetError, match="one map per sample"):
        deletion(np.stack([maps, maps], -1), images, model=model)
    with pytest.raises(InputError, match="different numbers"):
        deletion(maps[:3], images, model=model)
    with pytest.raises(InputError, match="spatial size"):
        deletion(maps[:, :2], images, model=model)
    with pytest.raises(TargetError, match="one target per sample"):
        deletion(maps, images, np.zeros((5, 2), int), model=model)
    empty = masks.copy()
    empty[2] = False
    with pytest.raises(InputError, match="empty"):
        ke.metrics.PointingGame()(maps, masks=empty)
    with pytest.raises(InputError, match="outside"):
        ke.metrics.PointingGame()(maps, boxes=np.array([[0, 0, 9, 2]] * 5))
    bad = maps.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        ke.metrics.PointingGame()(bad, masks=masks)


# ------------------------------------------------------------ custom metrics
@attrs.define(eq=False)
class PeakValue(ke.metrics.Metric):
    """The largest value of each map (the documented example)."""

    needs_inputs = False

    def _measure(self, batch):
        return tf.reduce_max(batch.maps, axis=[1, 2])


@attrs.define(eq=False)
class HalfImageScore(ke.metrics.ModelMetric):
    """The score of the image at half intensity minus the score of the image."""

    def _measure(self, batch):
        images = tf.concat([batch.inputs, 0.5 * batch.inputs], axis=0)
        full, half = tf.split(batch.score(images, copies=2), 2)
        return half - full


def test_subclass_hooks(data):
    images, maps = data
    np.testing.assert_array_equal(PeakValue(batch_size=2)(maps).values, maps.max(axis=(1, 2)))
    model, kernel, bias = linear_model(channels=2)
    result = HalfImageScore(use_probabilities=False)(maps, images, model=model)
    expected = -0.5 * images.reshape(len(images), -1) @ kernel[:, 0]
    np.testing.assert_allclose(result.values, expected, rtol=1e-5)
