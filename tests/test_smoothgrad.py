"""SmoothGrad / SmoothGrad-squared / VarGrad against direct computations."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from keras_explainable.base import Attribution
from keras_explainable.decorators.smoothgrad import noisy_copy


@attrs.define(eq=False)
class InputMap(ke.Explainer):
    """A user-defined explainer whose map is the input's channel mean."""

    needs_layer = False
    rectify = False

    def _attribute(self, inputs, targets):
        _, outputs = self._forward(inputs)
        scores, indices = targets.select(outputs)
        maps = tf.reduce_mean(inputs, axis=-1, keepdims=True)
        return Attribution(tf.repeat(maps, scores.shape[1], axis=-1), scores, indices)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(5).uniform(0, 1, (3, 8, 8, 3)).astype("float32")


def _noisy(x, noise, seed, index):
    """Copy `index` of the batch, per SmoothGrad's documented noise."""
    return noisy_copy(tf.constant(x), noise, seed, index).numpy()


def test_noise_is_a_function_of_the_sample_and_seed(x):
    batch = noisy_copy(tf.constant(x), 0.2, 7, 1).numpy()
    for row in range(3):
        alone = noisy_copy(tf.constant(x[row : row + 1]), 0.2, 7, 1).numpy()
        np.testing.assert_allclose(alone[0], batch[row], rtol=1e-6)
    reordered = noisy_copy(tf.constant(x[::-1]), 0.2, 7, 1).numpy()
    np.testing.assert_allclose(reordered[::-1], batch, rtol=1e-6)
    assert not np.allclose(noisy_copy(tf.constant(x), 0.2, 7, 2).numpy(), batch)
    assert not np.allclose(noisy_copy(tf.constant(x), 0.2, 8, 1).numpy(), batch)
    # the noise's standard deviation is the fraction of each sample's range
    big = np.random.default_rng(0).uniform(0, 4, (2, 64, 64, 3)).astype("float32")
    deviation = (noisy_copy(tf.constant(big), 0.1, 0, 0).numpy() - big).std(axis=(1, 2, 3))
    np.testing.assert_allclose(
        deviation, 0.1 * (big.max(axis=(1, 2, 3)) - big.min(axis=(1, 2, 3))), rtol=0.02
    )


def test_zero_noise_equals_the_wrapped_explainer(image_model, x):
    _, _, model = image_model
    gradcam = ke.GradCAM(model)
    expected = gradcam.explain(x)
    expl = ke.SmoothGrad(gradcam, samples=3, noise=0.0, noise_batch_size=2).explain(x)
    np.testing.assert_allclose(expl.maps, expected.maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(expl.scores, expected.scores, rtol=1e-6)
    np.testing.assert_array_equal(expl.targets, expected.targets)
    assert expl.method == "SmoothGrad(GradCAM)"
    assert expl.layer == expected.layer


@pytest.mark.parametrize("variant", ["mean", "squared", "variance"])
def test_variants_equal_direct_computation(image_model, x, variant):
    _, _, model = image_model
    targets = np.array([[0, 2], [1, 1], [2, 0]])
    saliency = ke.Saliency(model, postprocess=None)
    maps = np.stack([saliency.explain(_noisy(x, 0.2, 7, i), targets).maps for i in range(4)])
    expected = {
        "mean": maps.mean(axis=0),
        "squared": (maps**2).mean(axis=0),
        "variance": maps.var(axis=0),
    }[variant]
    smooth = ke.SmoothGrad(saliency, samples=4, noise=0.2, seed=7, variant=variant)
    expl = smooth.explain(x, targets)
    np.testing.assert_allclose(expl.maps, expected, rtol=1e-4, atol=1e-6)
    scores = np.mean(
        [saliency.explain(_noisy(x, 0.2, 7, i), targets).scores for i in range(4)],
        axis=0,
    )
    np.testing.assert_allclose(expl.scores, scores, rtol=1e-5)


def test_results_do_not_depend_on_noise_batch_size(image_model, x):
    _, _, model = image_model
    gradcam = ke.GradCAM(model, postprocess=None)
    results = [
        ke.SmoothGrad(gradcam, samples=5, seed=3, noise_batch_size=size, variant="variance")
        .explain(x, 1)
        .maps
        for size in (1, 3, 5)
    ]
    np.testing.assert_allclose(results[1], results[0], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(results[2], results[0], rtol=1e-4, atol=1e-7)


def test_same_seed_same_maps_different_seeds_differ(x):
    model = _tiny_model()
    first = ke.SmoothGrad(InputMap(model, postprocess=None), samples=3, seed=1)
    again = ke.SmoothGrad(InputMap(model, postprocess=None), samples=3, seed=1)
    other = ke.SmoothGrad(InputMap(model, postprocess=None), samples=3, seed=2)
    np.testing.assert_array_equal(first.explain(x).maps, first.explain(x).maps)
    np.testing.assert_array_equal(first.explain(x).maps, again.explain(x).maps)
    assert np.abs(first.explain(x).maps - other.explain(x).maps).max() > 1e-3


def test_noise_is_a_fraction_of_each_samples_range():
    # VarGrad of the input itself is the noise variance: (noise * range)^2 / 3
    # after the mean over 3 identical-noise-scale channels of independent noise.
    model = _tiny_model()
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    x[1] *= 10.0
    value_range = x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))
    vargrad = ke.SmoothGrad(
        InputMap(model, postprocess=None),
        samples=64,
        noise=0.1,
        variant="variance",
        noise_batch_size=16,
    )
    variance = vargrad.explain(x).maps.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(variance, (0.1 * value_range) ** 2 / 3, rtol=0.15)


def test_top_class_targets_are_resolved_on_the_clean_input(image_model, x):
    _, _, model = image_model
    top = ke.GradCAM(model).explain(x).targets
    # Large noise: the noisy copies' own top classes would differ.
    smooth = ke.SmoothGrad(ke.GradCAM(model, postprocess=None), samples=3, noise=2.0)
    expl = smooth.explain(x)
    np.testing.assert_array_equal(expl.targets, top)
    np.testing.assert_array_equal(expl.maps, smooth.explain(x, top).maps)


def test_options_default_to_the_wrapped_explainer(image_model):
    _, _, model = image_model
    inner = ke.GradCAM(model, batch_size=4, verbose=0, postprocess=None, resize=False)
    smooth = ke.SmoothGrad(inner)
    assert (smooth.batch_size, smooth.verbose) == (4, 0)
    assert (smooth.postprocess, smooth.resize, smooth.layer_name) == (
        None,
        False,
        inner.layer_name,
    )
    assert smooth.exposure is inner.exposure
    assert ke.SmoothGrad(inner, batch_size=2).batch_size == 2


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"samples": 0}, ValueError),
        ({"noise": -0.1}, ValueError),
        ({"noise": float("nan")}, ValueError),
        ({"noise": "0.1"}, ValueError),
        ({"seed": 1.5}, TypeError),
        ({"variant": "median"}, ValueError),
        ({"noise_batch_size": 0}, ValueError),
        ({"batch_size": 0}, ValueError),
    ],
)
def test_bad_options_fail_at_construction(image_model, options, error):
    _, _, model = image_model
    with pytest.raises(error):
        ke.SmoothGrad(ke.GradCAM(model), **options)


def test_wraps_only_explainers(image_model):
    _, _, model = image_model
    with pytest.raises(TypeError, match="explainer"):
        ke.SmoothGrad(model)


def _tiny_model():
    import keras

    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(pooled))
