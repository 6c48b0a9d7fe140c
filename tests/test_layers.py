"""Several layers in one explanation: `layers=[...]` on CAM-family methods."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights, make_body_head
from keras_explainable.metrics.randomization import rebuild

LAYERS = ["conv_a", "features"]
TARGETS = np.array([[0, 2], [1, 0], [2, 1], [0, 1], [2, 2], [1, 1], [0, 0]])


def _normalized(maps):
    """Min-max normalise each `(N, *spatial, L)` map, as 'auto' post-processing does."""
    axes = tuple(range(1, maps.ndim - 1))
    low, high = maps.min(axis=axes, keepdims=True), maps.max(axis=axes, keepdims=True)
    return np.where(high > low, (maps - low) / np.where(high > low, high - low, 1), 0.0)


METHODS = {
    "GradCAM": ke.GradCAM,
    "GradCAMPlusPlus": ke.GradCAMPlusPlus,
    "ScoreCAM": lambda model, **kw: ke.ScoreCAM(model, mask_batch_size=3, **kw),
    "GuidedGradCAM": ke.GuidedGradCAM,
    "XGradCAM": ke.XGradCAM,
    "HiResCAM": ke.HiResCAM,
    "LayerCAM": ke.LayerCAM,
    "EigenCAM": ke.EigenCAM,
    "EigenGradCAM": ke.EigenGradCAM,
}


@pytest.mark.parametrize("name", list(METHODS))
def test_one_listed_layer_equals_layer(image_model, images, name):
    _, _, model = image_model
    single = METHODS[name](model, layer="features").explain(images, TARGETS)
    listed = METHODS[name](model, layers=["features"]).explain(images, TARGETS)
    np.testing.assert_allclose(listed.maps, single.maps, atol=1e-6)
    assert single.layer == "features"
    assert listed.layer == ("features",)


@pytest.mark.parametrize("name", list(METHODS))
def test_two_layers_average_their_normalised_maps(image_model, images, name):
    _, _, model = image_model
    alone = [METHODS[name](model, layer=layer).explain(images, TARGETS) for layer in LAYERS]
    together = METHODS[name](model, layers=LAYERS).explain(images, TARGETS)
    # Each layer's map is rectified, resized and normalised; the mean is normalised again.
    expected = _normalized((alone[0].maps + alone[1].maps) / 2)
    np.testing.assert_allclose(together.maps, expected, atol=1e-5)
    np.testing.assert_allclose(together.scores, alone[0].scores, rtol=1e-6)
    np.testing.assert_array_equal(together.targets, alone[0].targets)
    assert together.layer == tuple(LAYERS)


def test_raw_maps_are_averaged_at_the_input_or_finest_size(image_model, images):
    _, _, model = image_model
    raw = {"postprocess": None}
    alone = [ke.GradCAM(model, layer=layer, **raw).explain(images, 1).maps for layer in LAYERS]
    together = ke.GradCAM(model, layers=LAYERS, **raw).explain(images, 1).maps
    np.testing.assert_allclose(together, (alone[0] + alone[1]) / 2, rtol=1e-5, atol=1e-6)
    # resize=False: at the finest layer's size (here both are 8x8, so the input's)
    unresized = ke.GradCAM(model, layers=LAYERS, resize=False, **raw).explain(images, 1)
    np.testing.assert_allclose(unresized.maps, together, rtol=1e-5, atol=1e-6)


def test_layers_of_different_sizes_resize_to_the_finest_without_resize():
    inputs = keras.Input((8, 8, 3))
    fine = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="fine")(inputs)
    coarse = keras.layers.Conv2D(4, 2, strides=2, activation="relu", name="coarse")(fine)
    pooled = keras.layers.GlobalAveragePooling2D()(coarse)
    model = fix_weights(keras.Model(inputs, keras.layers.Dense(3)(pooled)))
    x = np.random.default_rng(1).uniform(size=(3, 8, 8, 3)).astype("float32")
    maps = ke.GradCAM(model, layers=["coarse", "fine"], resize=False).explain(x, 0).maps
    assert maps.shape == (3, 8, 8, 1)
    resized = ke.GradCAM(model, layers=["coarse", "fine"]).explain(x, 0).maps
    np.testing.assert_allclose(maps, resized, atol=1e-6)
    coarse_only = ke.GradCAM(model, layer="coarse", resize=False).explain(x, 0).maps
    assert coarse_only.shape == (3, 4, 4, 1)


class CountedIdentity(keras.layers.Layer):
    """The identity, counting how often its `call` is traced."""

    calls = 0

    def call(self, inputs):
        CountedIdentity.calls += 1
        return inputs


def test_the_model_runs_once_and_the_backward_pass_is_shared(images, monkeypatch):
    inputs = keras.Input((8, 8, 3))
    counted = CountedIdentity(name="counted")(inputs)
    hidden = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv_a")(counted)
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(hidden)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    model = fix_weights(keras.Model(inputs, keras.layers.Dense(3)(pooled)))
    gradient_calls = []
    gradients = tf.gradients

    def counted_gradients(ys, xs, *args, **kwargs):
        gradient_calls.append(len(xs) if isinstance(xs, list) else 1)
        return gradients(ys, xs, *args, **kwargs)

    monkeypatch.setattr(tf, "gradients", counted_gradients)
    for method in (ke.GradCAM, ke.GradCAMPlusPlus):
        explainer = method(model, layers=LAYERS)
        CountedIdentity.calls = 0
        gradient_calls.clear()
        explainer.explain(images, TARGETS)
        assert explainer.trace_count == 1
        assert CountedIdentity.calls == 1  # one forward pass in the traced step
        # one backward pass per target, each to both layers
        assert gradient_calls == [2, 2]


def test_decorators_and_multi_target(image_model, images):
    _, _, model = image_model
    gradcam = ke.GradCAM(model, layers=LAYERS)
    for decorated in (
        ke.SmoothGrad(gradcam, samples=3, seed=2),
        ke.TTA(gradcam, flips=("horizontal", "vertical")),
    ):
        together = decorated.explain(images, TARGETS)
        assert together.layer == tuple(LAYERS)
        assert together.maps.shape == (7, 8, 8, 2)
        for column in range(2):
            alone = decorated.explain(images, TARGETS[:, column])
            np.testing.assert_allclose(together.maps[..., column], alone.maps[..., 0], atol=1e-5)
    # TTA with a flip of a layer-averaged map: the average of the two passes' combined maps
    flipped = images[:, :, ::-1]
    raw = ke.GradCAM(model, layers=LAYERS, postprocess=None)
    tta = ke.TTA(raw, flips=("horizontal",)).explain(images, 0).maps
    plain = raw.explain(images, 0).maps
    mirrored = raw.explain(flipped, 0).maps[:, :, ::-1]
    np.testing.assert_allclose(tta, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)


def test_layers_are_rebuilt_and_streamed(image_model, images, tmp_path):
    _, _, model = image_model
    explainer = ke.GradCAM(model, layers=[1, model.get_layer("features")])
    assert explainer.layer_name == ("conv_a", "features")
    copy = rebuild(explainer, model)
    assert copy.layers == ("conv_a", "features")
    expected = explainer.explain(images, 1)
    np.testing.assert_allclose(copy.explain(images, 1).maps, expected.maps, atol=1e-6)
    on_disk = explainer.explain_to_disk(images, tmp_path / "maps", 1)
    np.testing.assert_allclose(on_disk.maps, expected.maps, atol=1e-6)
    again = explainer.explain_to_disk(images, tmp_path / "maps", 1)  # the finished run
    np.testing.assert_allclose(again.maps, expected.maps, atol=1e-6)


def test_layer_option_errors(image_model):
    _, _, model = image_model
    with pytest.raises(ke.LayerError, match="layer= .*or layers=.*not both"):
        ke.GradCAM(model, layer="features", layers=LAYERS)
    for method in (ke.Saliency, ke.FullGradient, ke.GuidedBackprop):
        with pytest.raises(ke.LayerError, match="takes no layers="):
            method(model, layers=LAYERS)
    with pytest.raises(ke.LayerError, match="CAM .*no layers=.*GradCAM"):
        ke.CAM(model, layers=LAYERS)
    with pytest.raises(TypeError, match="layers must be a list"):
        ke.GradCAM(model, layers="features")
    with pytest.raises(ValueError, match="at least one layer"):
        ke.GradCAM(model, layers=[])
    with pytest.raises(ke.LayerError, match="'features' 2 times"):
        ke.GradCAM(model, layers=["features", "features"])
    with pytest.raises(ke.LayerError, match="No layer named 'featurs'.*'features'"):
        ke.GradCAM(model, layers=["conv_a", "featurs"])
    with pytest.raises(ke.LayerError, match="no spatial axes"):
        ke.GradCAM(model, layers=["conv_a", "gap"])
    body, head, _ = make_body_head()
    with pytest.raises(ke.LayerError, match="SplitModel.*layers="):
        ke.GradCAM(ke.SplitModel(body, head), layers=LAYERS)
