"""KernelSHAP: exact Shapley values of a linear model, seeding, batching, segments, errors."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from keras_explainable.errors import InputError

WEIGHTS = np.random.default_rng(0).normal(size=(8, 8, 3, 3)).astype("float32")
BIAS = np.array([0.3, -0.2, 0.1], "float32")
# The 2x2 grid's cells on 8x8 images, numbered row by row.
CELLS = (np.arange(8)[:, None] // 4) * 2 + np.arange(8)[None] // 4


def linear(x):
    """A linear classifier `x -> x . W + b`, 3 classes, as a plain callable."""
    return tf.matmul(tf.reshape(x, [tf.shape(x)[0], -1]), WEIGHTS.reshape(-1, 3)) + BIAS


@pytest.fixture(scope="module")
def model():
    inputs = keras.Input((8, 8, 3))
    dense = keras.layers.Dense(3)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([WEIGHTS.reshape(-1, 3), BIAS])
    return model


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).uniform(0, 1, (5, 8, 8, 3)).astype("float32")


def true_values(x, target, baseline=0.0, labels=CELLS):
    """Exact Shapley values of a linear model: w_seg . (x - baseline) per segment."""
    contributions = (WEIGHTS[..., target] * (x - baseline)).sum(-1)  # (N, 8, 8)
    return np.stack([contributions[:, labels == s].sum(-1) for s in range(labels.max() + 1)], 1)


def segment_values(maps, labels=CELLS):
    """`(N, M)` the value painted on each segment of `(N, H, W)` maps."""
    return np.stack([maps[:, labels == s].mean(-1) for s in range(labels.max() + 1)], 1)


def raw(model, **options):
    return ke.KernelSHAP(model, postprocess=None, resize=False, verbose=0, **options)


def brute_force_shapley(value, count):
    """Shapley values of the set function `value` by the definition."""
    result = np.zeros(count)
    for i in range(count):
        others = [j for j in range(count) if j != i]
        for size in range(count):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(count - size - 1)
                weight /= math.factorial(count)
                on = np.zeros(count)
                on[list(subset)] = 1
                with_i = on.copy()
                with_i[i] = 1
                result[i] += weight * (value(with_i) - value(on))
    return result


@pytest.mark.parametrize("samples", [8, 200])
def test_linear_model_gets_exact_shapley_values_that_sum_to_the_score_difference(model, x, samples):
    # 8 samples draw coalitions; 200 >= 2^4 - 2 enumerates them all.
    expl = raw(model, grid=(2, 2), samples=samples, baseline=0.25).explain(x, 1)
    values = segment_values(expl.maps[..., 0])
    np.testing.assert_allclose(values, true_values(x, 1, 0.25), atol=1e-4)
    baseline_scores = model(np.full_like(x, 0.25)).numpy()[:, 1]
    np.testing.assert_allclose(values.sum(1), expl.scores[:, 0] - baseline_scores, atol=1e-4)


def test_enumerated_coalitions_give_exact_shapley_values_of_a_nonlinear_model(x):
    def squared(images):
        return linear(images) ** 2 / 100.0

    expl = raw(squared, grid=(2, 2), samples=14).explain(x[:2], 0)
    values = segment_values(expl.maps[..., 0])
    contributions = (WEIGHTS[..., 0] * x[:2]).sum(-1)
    for n in range(2):
        parts = np.array([contributions[n][CELLS == s].sum() for s in range(4)])
        expected = brute_force_shapley(
            lambda on, parts=parts: (on @ parts + BIAS[0]) ** 2 / 100.0, 4
        )
        np.testing.assert_allclose(values[n], expected, rtol=1e-4, atol=1e-5)


def test_sampled_values_sum_exactly_to_the_score_difference_on_a_nonlinear_model(x):
    def squared(images):
        return tf.nn.softplus(linear(images))

    expl = raw(squared, grid=(4, 4), samples=40).explain(x, 2)
    cells = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 2, 0), 2, 1)
    total = segment_values(expl.maps[..., 0], cells)
    difference = expl.scores[:, 0] - squared(np.zeros_like(x)).numpy()[:, 2]
    np.testing.assert_allclose(total.sum(1), difference, rtol=1e-4, atol=1e-4)


def test_seeded_and_independent_of_batch_and_sample_batch_size(model, x):
    reference = raw(model, grid=(4, 4), samples=40, seed=3, batch_size=5).explain(x)
    again = raw(model, grid=(4, 4), samples=40, seed=3, batch_size=2, sample_batch_size=7)
    np.testing.assert_allclose(again.explain(x).maps, reference.maps, atol=1e-5)
    other = raw(lambda v: tf.nn.softplus(linear(v)), grid=(4, 4), samples=40, seed=4)
    first = raw(lambda v: tf.nn.softplus(linear(v)), grid=(4, 4), samples=40, seed=3)
    assert not np.allclose(other.explain(x, 0).maps, first.explain(x, 0).maps, atol=1e-4)


class Linear(keras.Model):
    def call(self, inputs):
        return linear(inputs)


@pytest.mark.parametrize("kind", ["subclassed", "callable"])
def test_subclassed_models_and_plain_callables_match_the_functional_model(model, x, kind):
    other = Linear() if kind == "subclassed" else linear
    expected = raw(model, grid=(2, 2), samples=8).explain(x, 2)
    got = raw(other, grid=(2, 2), samples=8).explain(x, 2)
    np.testing.assert_allclose(got.maps, expected.maps, atol=1e-4)
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5, atol=1e-5)


def test_every_target_form_in_one_pass(model, x):
    explainer = raw(model, grid=(2, 2), samples=8)
    pairs = np.array([[0, 2], [1, 0], [2, 1], [0, 1], [2, 2]])
    together = explainer.explain(x, pairs)
    for column in range(2):
        alone = explainer.explain(x, pairs[:, column])
        np.testing.assert_allclose(together.maps[..., column], alone.maps[..., 0], atol=1e-4)
    top = explainer.explain(x)
    np.testing.assert_array_equal(top.targets[:, 0], model(x).numpy().argmax(1))
    constant = explainer.explain(x, 1)
    np.testing.assert_allclose(segment_values(constant.maps[..., 0]), true_values(x, 1), atol=1e-4)
    custom = explainer.explain(x, lambda outputs: outputs[:, 0] - outputs[:, 1])
    np.testing.assert_allclose(
        segment_values(custom.maps[..., 0]), true_values(x, 0) - true_values(x, 1), atol=1e-4
    )


def test_user_segments_as_an_array_and_as_a_callable(model, x):
    halves = np.where(np.arange(8)[None] < 3, 7, 9).repeat(8, 0)  # any integer labels
    labels = (halves == 9).astype(int)
    expl = raw(model, segments=halves, samples=2).explain(x, 0)
    np.testing.assert_allclose(
        segment_values(expl.maps[..., 0], labels), true_values(x, 0, labels=labels), atol=1e-4
    )

    def per_input(images):
        # Labels that differ between inputs: the top half of bright images is one segment.
        bright = tf.reduce_mean(images, axis=[1, 2, 3]) > 0.5
        rows = tf.constant(np.arange(8)[:, None] // 4 * np.ones((1, 8), int))
        return tf.where(bright[:, None, None], rows, 1 - rows)

    expl = raw(model, segments=per_input, num_segments=2, samples=2).explain(x, 0)
    rows = np.arange(8)[:, None] // 4 * np.ones((1, 8), int)
    for n in range(len(x)):
        sample_labels = rows if x[n].mean() > 0.5 else 1 - rows
        values = segment_values(expl.maps[n : n + 1, ..., 0], sample_labels)
        np.testing.assert_allclose(
            values, true_values(x[n : n + 1], 0, labels=sample_labels), atol=1e-4
        )


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"segments": np.arange(36).reshape(6, 6) // 9}, InputError, "do not label"),
        ({"segments": np.zeros((8, 8), int)}, ValueError, "at least 2 segments"),
        ({"segments": np.ones((8, 8))}, TypeError, "integer array"),
        ({"segments": "superpixels"}, ValueError, "'grid', 'slic'"),
        ({"compactness": 5.0}, ValueError, "slic"),
        (
            {"segments": np.zeros((3, 7, 8), int) + np.arange(8) % 2},
            InputError,
            r"\(N, \*spatial\)",
        ),
        (
            {"segments": np.stack([np.arange(64).reshape(8, 8) % 2, np.zeros((8, 8), int)])},
            ValueError,
            "input 1 have a single segment",
        ),
        ({"grid": (2, 2), "samples": 3}, ValueError, "samples >= the number of segments"),
        ({"grid": (0, 4)}, ValueError, "grid must be"),
        ({"grid": (1,)}, ValueError, "grid must be"),
        ({"grid": (3,)}, InputError, "spatial axis"),
        ({"grid": (16, 16)}, InputError, "more cells"),
        ({"segments": lambda v: v[..., 0]}, ValueError, "num_segments"),
        ({"num_segments": 4}, ValueError, "callable only"),
        ({"baseline": "uniform"}, ValueError, "baseline"),
        ({"layer": "dense"}, ke.LayerError, "explains the input"),
    ],
)
def test_bad_options_are_refused_at_construction(model, options, error, match):
    with pytest.raises(error, match=match):
        ke.KernelSHAP(model, **options)


def test_segments_that_do_not_fit_are_refused_before_any_forward_pass(x):
    calls = []

    def counted(images):
        calls.append(1)
        return linear(images)

    with pytest.raises(InputError, match="do not label"):
        ke.KernelSHAP(counted, segments=np.arange(36).reshape(6, 6) // 9).explain(x, 0)
    assert not calls


def test_one_segmentation_per_input_gives_each_input_its_exact_values(model, x):
    rng = np.random.default_rng(6)
    # Any integers name the segments; input 2 has fewer segments than the others.
    labels = rng.integers(0, 4, (5, 8, 8)) * 7 + 3
    labels[2] = np.where(labels[2] > 10, 20, 3)
    target = np.array([0, 1, 2, 1, 0])
    explanation = raw(model, segments=labels, samples=300, batch_size=2).explain(x, target)
    for n in range(5):
        own = np.unique(labels[n], return_inverse=True)[1].reshape(8, 8)
        expected = true_values(x[n : n + 1], target[n], labels=own)[0]
        got = segment_values(explanation.maps[n : n + 1, ..., 0], own)[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        alone = raw(model, segments=labels[n], samples=300).explain(x[n : n + 1], target[n])
        np.testing.assert_allclose(explanation.maps[n], alone.maps[0], atol=1e-5)
    dataset = tf.data.Dataset.from_tensor_slices((x, target)).batch(3)
    from_dataset = raw(model, segments=labels, samples=300).explain(dataset)
    np.testing.assert_allclose(from_dataset.maps, explanation.maps, atol=1e-6)
    with pytest.raises(InputError, match="3 rows for 5 inputs"):
        raw(model, segments=labels[:3], samples=300).explain(x, target)


def test_slic_superpixels_equal_scikit_image_slic_given_as_labels(model):
    from skimage.segmentation import slic

    # Images with regions for SLIC to find: four coloured quadrants, noise on top.
    rng = np.random.default_rng(8)
    x = np.repeat(rng.uniform(0, 1, (5, 2, 2, 3)), 4, axis=1).repeat(4, axis=2)
    x = (x + rng.normal(0, 0.02, x.shape)).astype("float32")
    references = []
    for image in x.astype(np.float64):
        scaled = (image - image.min()) / (image.max() - image.min())
        segmented = slic(scaled, n_segments=8, compactness=10.0, channel_axis=-1, start_label=0)
        references.append(segmented)
    references = np.stack(references)
    assert all(2 <= len(np.unique(row)) <= 8 for row in references)
    by_slic = raw(model, segments="slic", num_segments=8, samples=100).explain(x, 1)
    by_labels = raw(model, segments=references, samples=100).explain(x, 1)
    np.testing.assert_allclose(by_slic.maps, by_labels.maps, atol=1e-5)
    own = np.unique(references[0], return_inverse=True)[1].reshape(8, 8)
    np.testing.assert_allclose(
        segment_values(by_slic.maps[:1, ..., 0], own)[0],
        true_values(x[:1], 1, labels=own)[0],
        rtol=1e-4,
        atol=1e-5,
    )


def test_slic_without_scikit_image_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "skimage.segmentation", None)
    with pytest.raises(ImportError, match=r"pip install 'keras-explainable\[segmentation\]'"):
        ke.KernelSHAP(linear, segments="slic")


def test_slic_refuses_inputs_that_are_not_images():
    inputs = keras.Input((12, 2))
    sequence_model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    with pytest.raises(InputError, match="2-D images"):
        ke.LIME(sequence_model, segments="slic")
