"""BlankMapWarning: maps that come back all zero are announced, once per explainer."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

import keras_explainable as ke
from conftest import make_body_head
from keras_explainable import demo

# Class 0 has only negative evidence: its logit weighs every (ReLU, so
# non-negative) feature negatively. Class 1 only positive evidence.
TARGETS = np.array([0, 1, 0, 1, 1, 0, 1])
BLANK = "samples 0, 2, 5"


@pytest.fixture(scope="module")
def negative_model():
    _, _, model = make_body_head(seed=5, softmax=False)
    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()
    kernel[:, 0] = -np.abs(kernel[:, 0]) - 0.1
    kernel[:, 1] = np.abs(kernel[:, 1]) + 0.1
    dense.set_weights([kernel, bias])
    return model


def _blank_warnings(function):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function()
    return result, [w for w in caught if issubclass(w.category, ke.BlankMapWarning)]


def test_negative_evidence_warns_once_naming_the_samples(negative_model, images):
    explainer = ke.GradCAM(negative_model, batch_size=3, verbose=0)
    expl, found = _blank_warnings(lambda: explainer.explain(images, TARGETS))
    assert len(found) == 1
    message = str(found[0].message)
    assert message.startswith(f"GradCAM: the maps of {BLANK} are all zero")
    assert "postprocess=None keeps the signed raw maps" in message
    assert found[0].filename == __file__  # the user's line
    blank = np.all(expl.maps == 0, axis=(1, 2, 3))
    np.testing.assert_array_equal(np.flatnonzero(blank), [0, 2, 5])
    # The raw maps of those samples do hold signal: negative everywhere.
    raw, found = _blank_warnings(
        lambda: ke.GradCAM(negative_model, postprocess=None, verbose=0).explain(images, TARGETS)
    )
    assert not found
    assert (raw.maps[[0, 2, 5]] <= 0).all() and (raw.maps[[0, 2, 5]] < 0).any()
    # Once per explainer.
    _, found = _blank_warnings(lambda: explainer.explain(images, TARGETS))
    assert not found


def test_through_decorators_and_into_the_run_log(negative_model, images, tmp_path):
    for decorator, name in (
        (lambda e: ke.TTA(e), "TTA(GradCAM)"),
        (lambda e: ke.SmoothGrad(e, samples=2, noise=0.05), "SmoothGrad(GradCAM)"),
    ):
        wrapped = decorator(ke.GradCAM(negative_model, verbose=0))
        _, found = _blank_warnings(lambda w=wrapped: w.explain(images, TARGETS))
        assert [str(w.message).split(" are")[0] for w in found] == [f"{name}: the maps of {BLANK}"]

    explainer = ke.TTA(ke.GradCAM(negative_model, verbose=0), batch_size=2)
    _, found = _blank_warnings(lambda: explainer.explain_to_disk(images, tmp_path / "a", TARGETS))
    assert len(found) == 1
    log = (tmp_path / "a" / "run.log").read_text()
    assert f"BlankMapWarning: TTA(GradCAM): the maps of {BLANK} are all zero" in log
    # A second run by the same explainer: no second warning, but its own log.
    _, found = _blank_warnings(lambda: explainer.explain_to_disk(images, tmp_path / "b", TARGETS))
    assert not found
    assert BLANK in (tmp_path / "b" / "run.log").read_text()
    # Read back, not recomputed: nothing logged again.
    explainer.explain_to_disk(images, tmp_path / "b", TARGETS)
    assert (tmp_path / "b" / "run.log").read_text().count("BlankMapWarning") == 1


def _pooled_linear_model(kernel):
    """Global average pooling, then a Dense layer: the input gradient is constant in space."""
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs))
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([kernel, np.zeros(2, "float32")])
    return model


def test_constant_and_zero_raw_maps(images):
    kernel = np.array([[1.0, 0.0], [-2.0, 0.0], [0.5, 0.0]], "float32")  # unit 1 ignores x
    model = _pooled_linear_model(kernel)
    # A constant raw map (the same gradient everywhere) normalises to zeros.
    expl, found = _blank_warnings(lambda: ke.Saliency(model, verbose=0).explain(images, 0))
    assert (
        not expl.maps.any()
        and len(found) == 1
        and "samples 0, 1, 2, 3, 4, 5, 6" in str(found[0].message)
    )
    raw, found = _blank_warnings(
        lambda: ke.Saliency(model, postprocess=None, verbose=0).explain(images, 0)
    )
    np.testing.assert_allclose(raw.maps, 2.0 / 64)  # max |kernel| / positions
    assert not found
    # A raw map that is zero itself: the score ignores the input.
    zero, found = _blank_warnings(
        lambda: ke.Saliency(model, postprocess=None, verbose=0).explain(images, 1)
    )
    assert not zero.maps.any() and len(found) == 1
    assert "raw maps are zero everywhere" in str(found[0].message)
    # A callable post-processing owns its zeros.
    _, found = _blank_warnings(
        lambda: ke.Saliency(model, postprocess=lambda m: 0 * m, verbose=0).explain(images, 0)
    )
    assert not found


# Every method with its default options (fewer samples for RISE, KernelSHAP
# and LIME, to keep this short).
DEMO_METHODS = {
    "GradCAM": ke.GradCAM,
    "CAM": ke.CAM,
    "GradCAMPlusPlus": ke.GradCAMPlusPlus,
    "XGradCAM": ke.XGradCAM,
    "HiResCAM": ke.HiResCAM,
    "LayerCAM": ke.LayerCAM,
    "EigenCAM": ke.EigenCAM,
    "EigenGradCAM": ke.EigenGradCAM,
    "ScoreCAM": ke.ScoreCAM,
    "AblationCAM": ke.AblationCAM,
    "FullGradient": ke.FullGradient,
    "Saliency": ke.Saliency,
    "GuidedBackprop": ke.GuidedBackprop,
    "Deconvnet": ke.Deconvnet,
    "GuidedGradCAM": ke.GuidedGradCAM,
    "InputXGradient": ke.InputXGradient,
    "IntegratedGradients": ke.IntegratedGradients,
    "Occlusion": ke.Occlusion,
    "RISE": lambda model, **kw: ke.RISE(model, masks=500, **kw),
    "KernelSHAP": lambda model, **kw: ke.KernelSHAP(model, samples=200, **kw),
    "LIME": lambda model, **kw: ke.LIME(model, samples=200, **kw),
    "GradientSHAP": lambda model, **kw: ke.GradientSHAP(model, "uniform", **kw),
    "SmoothGrad": lambda model, **kw: ke.SmoothGrad(ke.Saliency(model, **kw), samples=10),
    "TTA": lambda model, **kw: ke.TTA(ke.GradCAM(model, **kw)),
}


def test_never_on_the_demo_models_maps():
    model = demo.load_demo_model()
    data = demo.make_shapes(6, seed=18)
    for name, build in DEMO_METHODS.items():
        explainer = build(model, verbose=0)
        expl, found = _blank_warnings(lambda e=explainer: e.explain(data.images, data.labels))
        assert not found, name
        assert not np.all(expl.maps == 0, axis=(1, 2, 3)).any(), name
