"""Invariances every explainer keeps, decorators included."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import make_body_head

# Few integration steps keep these tests fast (and inexact: that is not tested here).
pytestmark = pytest.mark.filterwarnings("ignore::keras_explainable.errors.CompletenessWarning")

BACKGROUND = np.random.default_rng(3).uniform(0, 1, (3, 8, 8, 3)).astype("float32")

BUILDERS = {
    "Saliency": lambda model, **kw: ke.Saliency(model, **kw),
    "CAM": lambda model, **kw: ke.CAM(model, **kw),
    "GradCAM": lambda model, **kw: ke.GradCAM(model, **kw),
    "GradCAMPlusPlus": lambda model, **kw: ke.GradCAMPlusPlus(model, **kw),
    "GradCAM(layers)": lambda model, **kw: ke.GradCAM(model, layers=["conv_a", "features"], **kw),
    "ScoreCAM": lambda model, **kw: ke.ScoreCAM(model, mask_batch_size=3, **kw),
    "FullGradient": lambda model, **kw: ke.FullGradient(model, **kw),
    "GuidedBackprop": lambda model, **kw: ke.GuidedBackprop(model, **kw),
    "Deconvnet": lambda model, **kw: ke.Deconvnet(model, **kw),
    "GuidedGradCAM": lambda model, **kw: ke.GuidedGradCAM(model, **kw),
    "LayerCAM": lambda model, **kw: ke.LayerCAM(model, **kw),
    "XGradCAM": lambda model, **kw: ke.XGradCAM(model, **kw),
    "HiResCAM": lambda model, **kw: ke.HiResCAM(model, **kw),
    "EigenCAM": lambda model, **kw: ke.EigenCAM(model, **kw),
    "EigenGradCAM": lambda model, **kw: ke.EigenGradCAM(model, **kw),
    "AblationCAM": lambda model, **kw: ke.AblationCAM(model, channel_batch_size=3, **kw),
    "SmoothGrad": lambda model, **kw: ke.SmoothGrad(ke.Saliency(model, **kw), samples=3, seed=4),
    "TTA": lambda model, **kw: ke.TTA(ke.GradCAM(model, **kw), flips=("horizontal", "vertical")),
    "IntegratedGradients": lambda model, **kw: ke.IntegratedGradients(
        model, steps=6, step_batch_size=4, baseline="uniform", seed=2, **kw
    ),
    "InputXGradient": lambda model, **kw: ke.InputXGradient(model, **kw),
    "LRP": lambda model, **kw: ke.LRP(model, composite="epsilon_plus_flat", **kw),
    "GradientSHAP": lambda model, **kw: ke.GradientSHAP(
        model, BACKGROUND, samples=5, sample_batch_size=2, noise=0.1, seed=3, **kw
    ),
    "KernelSHAP": lambda model, **kw: ke.KernelSHAP(
        model, grid=(2, 4), samples=12, sample_batch_size=5, seed=1, **kw
    ),
    "LIME": lambda model, **kw: ke.LIME(
        model, grid=(4, 2), samples=12, sample_batch_size=5, seed=1, **kw
    ),
    "Occlusion": lambda model, **kw: ke.Occlusion(
        model, window=3, stride=2, window_batch_size=4, **kw
    ),
    "RISE": lambda model, **kw: ke.RISE(
        model, masks=20, cell_size=3, mask_batch_size=6, seed=1, **kw
    ),
    "DeepLIFT": lambda model, **kw: ke.DeepLIFT(model, baseline=BACKGROUND[0], **kw),
    "DeepSHAP": lambda model, **kw: ke.DeepSHAP(model, BACKGROUND[:2], **kw),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_batch_size_and_input_type_invariance(image_model, images, name):
    _, _, model = image_model
    labels = np.array([0, 1, 2, 2, 1, 0, 1])
    reference = BUILDERS[name](model, batch_size=7).explain(images, labels)
    assert np.isfinite(reference.maps).all()
    assert reference.maps.max() == pytest.approx(1.0)
    for batch_size in (1, 3):
        other = BUILDERS[name](model, batch_size=batch_size).explain(images, labels)
        np.testing.assert_allclose(other.maps, reference.maps, atol=1e-5)
        np.testing.assert_allclose(other.scores, reference.scores, rtol=1e-5, atol=1e-6)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    from_dataset = BUILDERS[name](model).explain(dataset)
    np.testing.assert_allclose(from_dataset.maps, reference.maps, atol=1e-5)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_xla_equals_default(image_model, images, name):
    _, _, model = image_model
    default = BUILDERS[name](model).explain(images, 2)
    compiled = BUILDERS[name](model, jit_compile=True).explain(images, 2)
    np.testing.assert_allclose(compiled.maps, default.maps, atol=1e-4)
    np.testing.assert_allclose(compiled.scores, default.scores, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_multi_target_equals_separate_calls(image_model, images, name):
    _, _, model = image_model
    explainer = BUILDERS[name](model)
    targets = np.array([[0, 2], [1, 0], [2, 1], [0, 1], [2, 2], [1, 1], [0, 0]])
    together = explainer.explain(images, targets)
    for column in range(2):
        alone = explainer.explain(images, targets[:, column])
        np.testing.assert_allclose(together.maps[..., column], alone.maps[..., 0], atol=1e-5)
        np.testing.assert_allclose(
            together.scores[:, column], alone.scores[:, 0], rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("name", list(BUILDERS))
def test_target_objects_equal_the_forms_they_stand_for(image_model, images, name):
    """`Class(k)` and `Regression(k)` explain unit k; `Regression(k, sign=-1)` its negation."""
    _, _, model = image_model
    explainer = BUILDERS[name](model, batch_size=3)
    labels = np.array([0, 1, 2, 2, 1, 0, 1])
    by_index = explainer.explain(images, labels)
    if name == "CAM":
        # CAM reads the class weights of the last Dense layer: class units only.
        np.testing.assert_array_equal(
            explainer.explain(images, ke.targets.Class(labels)).maps, by_index.maps
        )
        with pytest.raises(TypeError, match="cannot take Regression"):
            explainer.explain(images, ke.targets.Regression(2))
        return
    # Score-CAM and RISE score classes by probability, but a regression's values
    # as they are: its reference is the method scoring the outputs themselves.
    on_values = {"use_probabilities": False} if name in ("ScoreCAM", "RISE") else {}
    values_explainer = BUILDERS[name](model, batch_size=3, **on_values)
    for target, expected in (
        (ke.targets.Class(labels), by_index),
        (ke.targets.Regression(2), values_explainer.explain(images, 2)),
    ):
        result = explainer.explain(images, target)
        np.testing.assert_allclose(result.maps, expected.maps, atol=1e-6)
        np.testing.assert_allclose(result.scores, expected.scores, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(result.targets, expected.targets)
    decrease = explainer.explain(images, ke.targets.Regression(1, sign=-1))
    negated = values_explainer.explain(images, lambda outputs: -outputs[:, 1])
    np.testing.assert_allclose(decrease.maps, negated.maps, atol=1e-6)
    np.testing.assert_allclose(decrease.scores, negated.scores, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_explainer_follows_weight_changes_without_retracing(images, name):
    # A model of its own: the test changes its weights. The softmax output
    # makes the exposure build a logits head, which must share the weights.
    _, _, model = make_body_head(seed=5)
    labels = np.array([0, 1, 2, 2, 1, 0, 1])
    explainer = BUILDERS[name](model)
    before = explainer.explain(images, labels)
    traces = explainer.trace_count

    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()
    dense.set_weights([-kernel, bias])
    after_set = explainer.explain(images, labels)
    fresh = BUILDERS[name](model).explain(images, labels)
    assert not np.allclose(after_set.scores, before.scores)
    np.testing.assert_allclose(after_set.scores, fresh.scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after_set.maps, fresh.maps, atol=1e-5)

    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="sparse_categorical_crossentropy")
    model.fit(images, labels, batch_size=7, epochs=1, verbose=0)
    after_fit = explainer.explain(images, labels)
    fresh = BUILDERS[name](model).explain(images, labels)
    assert not np.allclose(after_fit.scores, after_set.scores)
    np.testing.assert_allclose(after_fit.scores, fresh.scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after_fit.maps, fresh.maps, atol=1e-5)
    assert explainer.trace_count == traces
