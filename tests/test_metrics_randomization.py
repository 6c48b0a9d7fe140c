"""The model randomisation sanity check: copies, rebuilt explainers, correlations."""

from __future__ import annotations

import importlib.resources

import keras
import numpy as np
import pytest

import keras_explainable as ke
from conftest import make_body_head
from keras_explainable.metrics.randomization import (
    copy_model,
    rebuild,
    spearman,
    weighted_layers,
)


@pytest.fixture(scope="module")
def tiny():
    """(body, head, flat model) on 16x16x3 images, and six images."""
    body, head, flat = make_body_head(input_shape=(16, 16, 3), channels=8, classes=3)
    images = np.random.default_rng(42).uniform(0, 1, (6, 16, 16, 3)).astype("float32")
    return body, head, flat, images


def test_spearman_by_hand():
    base = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert spearman(base, base)[0] == pytest.approx(1.0)
    assert spearman(base, -base)[0] == pytest.approx(-1.0)
    assert spearman(base, base**3)[0] == pytest.approx(1.0)  # ranks only
    # Ties get their average rank: [0, 0, 1, 2] ranks as [0.5, 0.5, 2, 3].
    tied = np.array([[0.0, 0.0, 1.0, 2.0]])
    expected = np.corrcoef([0.5, 0.5, 2, 3], [0, 1, 2, 3])[0, 1]
    assert spearman(tied, base)[0] == pytest.approx(expected)
    assert spearman(np.zeros((1, 4)), base)[0] == 0.0  # a constant map ranks nothing
    maps = np.random.default_rng(0).uniform(size=(3, 5, 5, 1))
    assert spearman(maps, maps).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_gradcam_correlation_falls_and_model_is_untouched(tiny):
    _, _, model, images = tiny
    weights = [w.copy() for w in model.get_weights()]
    predictions = model.predict(images, verbose=0)
    explainer = ke.GradCAM(model)
    before = explainer.explain(images).maps

    result = ke.metrics.ModelRandomization()(explainer, images)

    assert result.layers == ("dense", "features", "conv_a")
    assert result.values.shape == (6, 3)
    assert result.mean[0] > 0.9  # shuffling the 3-class head barely moves the map
    assert result.mean[-1] < 0.3  # with every layer random, nothing is left
    assert result.mean[-1] < result.mean[0] - 0.6
    for now, then in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(now, then)
    np.testing.assert_array_equal(model.predict(images, verbose=0), predictions)
    np.testing.assert_array_equal(explainer.explain(images).maps, before)


def test_independent_randomisation_and_max_layers(tiny):
    _, _, model, images = tiny
    explainer = ke.GradCAM(model)
    cascading = ke.metrics.ModelRandomization(seed=3)(explainer, images)
    independent = ke.metrics.ModelRandomization(seed=3, cascading=False, max_layers=2)(
        explainer, images
    )
    assert independent.layers == ("dense", "features")
    # The first step randomises the same layer with the same shuffle.
    np.testing.assert_allclose(independent.values[:, 0], cascading.values[:, 0])
    assert not np.allclose(independent.values[:, 1], cascading.values[:, 1])


def test_nested_model_copy_and_rebuilt_decorator(tiny):
    body, head, _, images = tiny
    inputs = keras.Input((16, 16, 3))
    nested = keras.Model(inputs, head(body(inputs)), name="nested")
    copy = copy_model(nested)
    assert [path for path, _ in weighted_layers(copy)] == [
        "head/dense",
        "body/features",
        "body/conv_a",
    ]
    copied = {id(v) for v in copy.weights}
    assert not copied & {id(v) for v in nested.weights}

    # The layer given as an object of the original is found in the copy by path.
    inner = ke.GradCAM(nested, layer=body.get_layer("features"))
    smooth = ke.SmoothGrad(inner, samples=3, noise=0.1, batch_size=4)
    rebuilt = rebuild(smooth, copy)
    assert isinstance(rebuilt, ke.SmoothGrad)
    assert (rebuilt.samples, rebuilt.noise, rebuilt.batch_size) == (3, 0.1, 4)
    assert rebuilt.explainer.model is copy
    assert rebuilt.explainer.layer_name == "body/features"
    np.testing.assert_allclose(rebuilt.explain(images).maps, smooth.explain(images).maps, atol=1e-6)

    result = ke.metrics.ModelRandomization(max_layers=1)(smooth, images)
    assert result.layers == ("head/dense",)


def test_split_model(tiny):
    body, head, model, images = tiny
    split = ke.SplitModel(body, head)
    result = ke.metrics.ModelRandomization(max_layers=2)(ke.GradCAM(split), images)
    assert result.layers == ("head/dense", "body/features")
    flat = ke.metrics.ModelRandomization(max_layers=2)(ke.GradCAM(model), images)
    np.testing.assert_allclose(result.values, flat.values, atol=1e-6)


def test_randomisation_needs_an_explainer(tiny):
    _, _, model, images = tiny
    maps = ke.GradCAM(model).explain(images)
    with pytest.raises(TypeError, match="Explainer"):
        ke.metrics.ModelRandomization()(maps, images)


def _demo_model_file_exists() -> bool:
    try:
        from keras_explainable import demo
    except ImportError:
        return False
    resource = importlib.resources.files(demo) / getattr(demo, "MODEL_FILE", "")
    return hasattr(demo, "load_demo_model") and resource.is_file()


@pytest.mark.skipif(not _demo_model_file_exists(), reason="the bundled demo model is absent")
def test_randomisation_on_the_demo_model():
    from keras_explainable import demo

    model = demo.load_demo_model()
    data = demo.make_shapes(4, seed=11)
    weights = [w.copy() for w in model.get_weights()]
    explainer = ke.GradCAM(model)
    result = ke.metrics.ModelRandomization()(explainer, data.images, data.labels)
    assert result.layers == ("predictions", "conv4", "conv3", "conv2", "conv1")
    # The trained model's maps do not survive randomisation: far from the
    # correlation of 1 the unchanged copy gives.
    assert result.mean[-1] < 0.5
    assert result.mean.max() < 0.9
    for now, then in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(now, then)
