"""TTA against direct computations, symmetry, and decorator nesting."""

from __future__ import annotations

import attrs
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights


@attrs.define(eq=False)
class InputTimesGradient(ke.Explainer):
    """A user-defined explainer: sum over channels of input x gradient."""

    needs_layer = False
    rectify = False

    def _attribute(self, inputs, targets):
        result = self._input_gradients(inputs, targets)
        maps = tf.reduce_sum(result.gradients * inputs[:, None], axis=-1)
        return result.attribution(tf.experimental.numpy.moveaxis(maps, 1, -1))


def _model(stride=2, size=8, symmetric=False, seed=0):
    """Conv "conv" -> conv "features" (stride `stride`) -> GAP -> Dense(3)."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Conv2D(
        4, 3, strides=stride, padding="same", activation="relu", name="features"
    )(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = fix_weights(keras.Model(inputs, keras.layers.Dense(3)(x)), seed)
    if symmetric:  # kernels symmetric left-right: the model is flip-equivariant
        for layer in model.layers[1:3]:
            kernel, bias = layer.get_weights()
            layer.set_weights([(kernel + kernel[:, ::-1]) / 2, bias])
    return model


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(9).uniform(0, 1, (3, 8, 8, 3)).astype("float32")


def _flip(array, flip):
    return array[:, :, ::-1] if flip == "horizontal" else array[:, ::-1]


def test_identity_equals_the_wrapped_explainer(model, x):
    # Raw Grad-CAM maps are 4x4: averaging happens before resize and ReLU.
    gradcam = ke.GradCAM(model, layer="features")
    expected = gradcam.explain(x)
    expl = ke.TTA(gradcam, flips=()).explain(x)
    np.testing.assert_allclose(expl.maps, expected.maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(expl.scores, expected.scores, rtol=1e-6)
    np.testing.assert_array_equal(expl.targets, expected.targets)
    assert expl.method == "TTA(GradCAM)"


def test_flips_average_every_unflipped_pass(model, x):
    gradcam = ke.GradCAM(model, layer="features", postprocess=None, resize=False)
    targets = np.array([0, 1, 2])
    passes = [gradcam.explain(x, targets)] + [
        gradcam.explain(_flip(x, flip).copy(), targets) for flip in ("horizontal", "vertical")
    ]
    expected = (
        passes[0].maps + _flip(passes[1].maps, "horizontal") + _flip(passes[2].maps, "vertical")
    ) / 3
    expl = ke.TTA(gradcam, flips=("horizontal", "vertical")).explain(x, targets)
    np.testing.assert_allclose(expl.maps, expected, rtol=1e-5, atol=1e-6)
    scores = np.mean([p.scores for p in passes], axis=0)
    np.testing.assert_allclose(expl.scores, scores, rtol=1e-5)
    # Not trivially equal to one pass: the stride-2 layer is not flip-equivariant.
    assert np.abs(expl.maps - passes[0].maps).max() > 1e-3


def test_symmetric_input_gives_symmetric_map(model, x):
    half = x[:, :, :4]
    symmetric = np.concatenate([half, half[:, :, ::-1]], axis=2)
    gradcam = ke.GradCAM(model, layer="features", postprocess=None)
    plain = gradcam.explain(symmetric, 0).maps
    assert np.abs(plain - plain[:, :, ::-1]).max() > 1e-2  # the model is not symmetric
    maps = ke.TTA(gradcam).explain(symmetric, 0).maps
    np.testing.assert_allclose(maps, maps[:, :, ::-1], atol=1e-6)
    auto = ke.TTA(ke.GradCAM(model, layer="features")).explain(symmetric, 0).maps
    np.testing.assert_allclose(auto, auto[:, :, ::-1], atol=1e-5)


def test_symmetric_model_is_unchanged_by_flip_averaging(x):
    model = _model(stride=1, symmetric=True)
    gradcam = ke.GradCAM(model, layer="features", postprocess=None)
    expected = gradcam.explain(x, 1).maps
    maps = ke.TTA(gradcam).explain(x, 1).maps
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
    assert np.abs(expected - expected[:, :, ::-1]).max() > 1e-3  # input not symmetric


def _fully_convolutional():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return fix_weights(keras.Model(inputs, keras.layers.Dense(3)(x)), 4)


def test_scales_are_resized_back_and_averaged(x):
    model = _fully_convolutional()
    gradcam = ke.GradCAM(model, layer="features", postprocess=None, resize=False)
    targets = np.array([2, 0, 1])
    expected, scores = [], []
    for size in (8, 16, 4):
        scaled = tf.image.resize(x, (size, size)).numpy() if size != 8 else x
        for flip in (None, "horizontal"):
            inputs = scaled if flip is None else _flip(scaled, flip).copy()
            result = gradcam.explain(inputs, targets)
            maps = result.maps if flip is None else _flip(result.maps, flip)
            expected.append(tf.image.resize(maps, (4, 4)).numpy())
            scores.append(result.scores)
    tta = ke.TTA(gradcam, scales=(2.0, 1.0, 0.5), flips="horizontal")
    expl = tta.explain(x, targets)
    np.testing.assert_allclose(expl.maps, np.mean(expected, axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(expl.scores, np.mean(scores, axis=0), rtol=1e-5)


def test_decorators_nest_in_both_orders_with_a_user_explainer(x):
    model = _model(seed=1)
    inner = InputTimesGradient(model, postprocess=None)
    targets = np.array([1, 0, 2])
    # Without noise, SmoothGrad is the identity, on either side of TTA.
    flipped = ke.TTA(inner).explain(x, targets)
    outside = ke.TTA(ke.SmoothGrad(inner, samples=2, noise=0.0)).explain(x, targets)
    inside = ke.SmoothGrad(ke.TTA(inner), samples=2, noise=0.0).explain(x, targets)
    for expl in (outside, inside):
        np.testing.assert_allclose(expl.maps, flipped.maps, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(expl.scores, flipped.scores, rtol=1e-5)
    assert outside.method == "TTA(SmoothGrad(InputTimesGradient))"
    assert inside.method == "SmoothGrad(TTA(InputTimesGradient))"
    # Without augmentation, TTA is the identity, on either side of SmoothGrad.
    smooth = ke.SmoothGrad(inner, samples=3, noise=0.2, seed=4).explain(x, targets)
    outside = ke.TTA(ke.SmoothGrad(inner, samples=3, noise=0.2, seed=4), flips=())
    inside = ke.SmoothGrad(ke.TTA(inner, flips=()), samples=3, noise=0.2, seed=4)
    for explainer in (outside, inside):
        expl = explainer.explain(x, targets)
        np.testing.assert_allclose(expl.maps, smooth.maps, rtol=1e-5, atol=1e-6)


def test_nested_decorators_keep_the_innermost_postprocessing(model, x):
    gradcam = ke.GradCAM(model, layer="features", resize=False)
    expl = ke.TTA(ke.SmoothGrad(gradcam, samples=2)).explain(x)
    assert expl.maps.shape == (3, 4, 4, 1)  # resize=False holds through both
    assert expl.maps.min() == 0.0 and expl.maps.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(expl.targets, gradcam.explain(x).targets)


@pytest.mark.parametrize(
    "options",
    [
        {"scales": (0.5, 2.0)},
        {"scales": (1.0, -1.0)},
        {"scales": (1.0, 1.0)},
        {"scales": (1.0, 2.0)},  # the model takes a fixed 8x8 size
        {"flips": ("diagonal",)},
        {"flips": ("horizontal", "horizontal")},
    ],
)
def test_bad_options_fail_at_construction(model, options):
    with pytest.raises(ValueError):
        ke.TTA(ke.GradCAM(model), **options)


def test_vertical_flip_needs_two_spatial_axes():
    inputs = keras.Input((8, 2))
    x = keras.layers.Conv1D(3, 3, padding="same", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    ke.TTA(ke.GradCAM(model), flips=("horizontal",))
    with pytest.raises(ValueError, match="vertical"):
        ke.TTA(ke.GradCAM(model), flips=("vertical",))
