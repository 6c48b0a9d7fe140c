"""LIME: ranking on a linear model, the kernel, seeding, batching, segments, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from keras_explainable.errors import InputError
from keras_explainable.methods.lime import lime_kernel

WEIGHTS = np.random.default_rng(5).normal(size=(8, 8, 3, 3)).astype("float32")
LABELS = (np.arange(8)[:, None] // 2) * 4 + np.arange(8)[None] // 2  # a 4x4 grid


def linear(x):
    """A linear classifier, 3 classes, as a plain callable."""
    return tf.matmul(tf.reshape(x, [tf.shape(x)[0], -1]), WEIGHTS.reshape(-1, 3))


@pytest.fixture(scope="module")
def model():
    inputs = keras.Input((8, 8, 3))
    dense = keras.layers.Dense(3, use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([WEIGHTS.reshape(-1, 3)])
    return model


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(6).uniform(0, 1, (4, 8, 8, 3)).astype("float32")


def contributions(x, target):
    parts = (WEIGHTS[..., target] * x).sum(-1)
    return np.stack([parts[:, LABELS == s].sum(-1) for s in range(16)], 1)


def segment_values(maps):
    return np.stack([maps[:, LABELS == s].mean(-1) for s in range(16)], 1)


def raw(model, **options):
    return ke.LIME(model, grid=(4, 4), postprocess=None, resize=False, verbose=0, **options)


def test_ranks_segments_in_the_order_of_their_true_contributions(model, x):
    expl = raw(model, samples=300, ridge=0.0).explain(x, 1)
    got = segment_values(expl.maps[..., 0])
    true = contributions(x, 1)
    for n in range(len(x)):
        np.testing.assert_array_equal(np.argsort(got[n]), np.argsort(true[n]))
    # Without a penalty a linear model's coefficients are its contributions.
    np.testing.assert_allclose(got, true, atol=1e-3)
    ridged = segment_values(raw(model, samples=300).explain(x, 1).maps[..., 0])
    for n in range(len(x)):
        assert np.corrcoef(ridged[n], true[n])[0, 1] > 0.99
        assert np.argmax(ridged[n]) == np.argmax(true[n])


def test_kernel_is_limes_exponential_kernel_on_the_cosine_distance():
    coalitions = tf.constant([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], tf.float32)
    distances = np.array([0.0, 1 - np.sqrt(1 / 4), 1.0])
    expected = np.sqrt(np.exp(-(distances**2) / 0.25**2))
    np.testing.assert_allclose(lime_kernel(coalitions, 0.25).numpy(), expected, rtol=1e-6)


def test_seeded_and_independent_of_batch_and_sample_batch_size(x):
    def model(v):
        return tf.nn.softplus(linear(v))

    reference = raw(model, samples=50, seed=2, batch_size=4).explain(x, 0)
    again = raw(model, samples=50, seed=2, batch_size=3, sample_batch_size=5).explain(x, 0)
    np.testing.assert_allclose(again.maps, reference.maps, atol=1e-5)
    other = raw(model, samples=50, seed=3).explain(x, 0)
    assert not np.allclose(other.maps, reference.maps, atol=1e-4)


class Linear(keras.Model):
    def call(self, inputs):
        return linear(inputs)


@pytest.mark.parametrize("kind", ["subclassed", "callable"])
def test_subclassed_models_and_plain_callables_match_the_functional_model(model, x, kind):
    other = Linear() if kind == "subclassed" else linear
    expected = raw(model, samples=40).explain(x, [[0, 1]] * 4)
    got = raw(other, samples=40).explain(x, [[0, 1]] * 4)
    np.testing.assert_allclose(got.maps, expected.maps, atol=1e-4)


def test_every_target_form_and_user_segments(model, x):
    explainer = ke.LIME(model, segments=LABELS * 3 + 1, samples=60, postprocess=None)
    pairs = np.array([[0, 2], [1, 0], [2, 1], [0, 1]])
    together = explainer.explain(x, pairs)
    for column in range(2):
        alone = explainer.explain(x, pairs[:, column])
        np.testing.assert_allclose(together.maps[..., column], alone.maps[..., 0], atol=1e-4)
    top = explainer.explain(x)
    np.testing.assert_array_equal(top.targets[:, 0], model(x).numpy().argmax(1))
    custom = explainer.explain(x, lambda outputs: outputs[:, 0] - outputs[:, 1])
    difference = explainer.explain(x, 0).maps - explainer.explain(x, 1).maps
    np.testing.assert_allclose(custom.maps, difference, atol=1e-4)
    grid = ke.LIME(model, grid=(4, 4), samples=60, postprocess=None).explain(x, 0)
    np.testing.assert_allclose(grid.maps, explainer.explain(x, 0).maps, atol=1e-5)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"kernel_width": 0}, ValueError, "kernel_width"),
        ({"kernel_width": -1.0}, ValueError, "kernel_width"),
        ({"ridge": -1.0}, ValueError, "ridge"),
        ({"grid": (1, 1)}, ValueError, "grid must be"),
        ({"segments": np.arange(16).reshape(4, 4)}, InputError, "do not label"),
        ({"segments": np.full((8, 8), 3)}, ValueError, "at least 2 segments"),
    ],
)
def test_bad_options_are_refused_at_construction(model, options, error, match):
    with pytest.raises(error, match=match):
        ke.LIME(model, **options)
