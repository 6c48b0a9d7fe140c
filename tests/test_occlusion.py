"""Occlusion against a numpy loop over window positions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import keras_explainable as ke
from conftest import make_body_head, opaque_model, target_forms
from keras_explainable.methods.occlusion import window_starts


def reference_starts(size, window, stride):
    """Window starts: every `stride`, the last one aligned to the end."""
    starts, start = [], 0
    while True:
        starts.append(min(start, size - window))
        if start + window >= size:
            return starts
        start += stride


def reference_occlusion(model, x, targets, window, stride, baseline=0.0):
    """Mean drop of the target logit over the windows covering each position."""
    size = x.shape[1:-1]
    rows = np.arange(len(x))
    base = np.asarray(model(x))[rows, targets]
    total = np.zeros(x.shape[:-1])
    counts = np.zeros(size)
    axes = [reference_starts(*axis) for axis in zip(size, window, stride, strict=True)]
    for corner in itertools.product(*axes):
        where = tuple(slice(c, c + w) for c, w in zip(corner, window, strict=True))
        occluded = x.copy()
        occluded[(slice(None), *where)] = baseline
        drop = base - np.asarray(model(occluded))[rows, targets]
        total[(slice(None), *where)] += drop.reshape((-1,) + (1,) * len(size))
        counts[where] += 1
    return np.where(counts > 0, total / np.maximum(counts, 1), 0.0)


def test_window_starts_cover_the_axis():
    assert window_starts(10, 4, 4).tolist() == [0, 4, 6]
    assert window_starts(8, 4, 4).tolist() == [0, 4]
    assert window_starts(8, 8, 3).tolist() == [0]
    assert window_starts(11, 3, 2).tolist() == reference_starts(11, 3, 2)


@pytest.mark.parametrize(
    ("shape", "window", "stride"),
    [
        ((8, 8, 3), (3, 3), (2, 2)),  # overlapping, 2 does not divide 8 - 3
        ((8, 8, 3), (4, 3), (4, 3)),  # non-overlapping, 3 does not divide 8 - 3
        ((8, 8, 3), (2, 2), (3, 3)),  # gaps between windows
        ((11, 2), (3,), (2,)),
        ((11, 2), (4,), (3,)),
        ((5, 6, 4, 2), (2, 3, 2), (2, 2, 3)),
    ],
)
def test_occlusion_matches_numpy_loop(shape, window, stride):
    _, _, model = make_body_head(input_shape=shape, softmax=False, seed=2)
    x = np.random.default_rng(1).uniform(0, 1, (5, *shape)).astype("float32")
    targets = np.array([0, 1, 2, 1, 0])
    expl = ke.Occlusion(
        model, window=window, stride=stride, window_batch_size=4, postprocess=None
    ).explain(x, targets)
    expected = reference_occlusion(model, x, targets, window, stride)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        expl.scores[:, 0], np.asarray(model(x))[np.arange(5), targets], rtol=1e-5
    )


def test_baseline_value_and_int_window():
    _, _, model = make_body_head(softmax=False, seed=3)
    x = np.random.default_rng(2).uniform(0, 1, (3, 8, 8, 3)).astype("float32")
    targets = np.array([2, 0, 1])
    expl = ke.Occlusion(model, window=3, stride=2, baseline=0.5, postprocess=None).explain(
        x, targets
    )
    expected = reference_occlusion(model, x, targets, (3, 3), (2, 2), baseline=0.5)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-5)


def test_auto_keeps_the_positive_part():
    _, _, model = make_body_head(softmax=False, seed=2)
    x = np.random.default_rng(1).uniform(0, 1, (4, 8, 8, 3)).astype("float32")
    raw = ke.Occlusion(model, window=2, postprocess=None).explain(x, 1).maps
    auto = ke.Occlusion(model, window=2).explain(x, 1).maps
    positive = np.maximum(raw, 0)
    low, high = positive.min((1, 2), keepdims=True), positive.max((1, 2), keepdims=True)
    expected = np.divide(positive - low, high - low, out=np.zeros_like(raw), where=high > low)
    np.testing.assert_allclose(auto, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window": 0}, "window must be a positive integer"),
        ({"window": (4, -1)}, "window must be a positive integer"),
        ({"stride": 0}, "stride must be a positive integer"),
        ({"stride": (2, 0)}, "stride must be a positive integer"),
        ({"window_batch_size": 0}, "window_batch_size"),
        ({"baseline": "nope"}, "baseline must be one of"),
    ],
)
def test_bad_options_are_refused_at_construction(options, message):
    _, _, model = make_body_head()
    with pytest.raises(ValueError, match=message):
        ke.Occlusion(model, **options)


def test_window_larger_than_the_input_is_refused_before_running():
    _, _, model = make_body_head()
    with pytest.raises(ke.InputError, match="larger than the input"):
        ke.Occlusion(model, window=(9, 2))
    with pytest.raises(ke.InputError, match="2 sizes but the input has 1 spatial"):
        ke.Occlusion(make_body_head(input_shape=(11, 2))[2], window=(2, 2))
    calls = []

    def counted(x):
        calls.append(1)
        return model(x)

    occlusion = ke.Occlusion(counted, window=(9, 9))  # input size unknown until explained
    with pytest.raises(ke.InputError, match="larger than the input"):
        occlusion.explain(np.zeros((2, 8, 8, 3), "float32"))
    assert not calls


def test_layer_options_are_refused():
    _, _, model = make_body_head()
    with pytest.raises(ke.LayerError):
        ke.Occlusion(model, layer="features")


@pytest.mark.parametrize("form", ["subclassed", "callable"])
def test_any_model_and_every_target_form(form, images):
    _, _, model = make_body_head(softmax=False, seed=4)
    opaque = opaque_model(model, form)
    for name, y in target_forms().items():
        expected = ke.Occlusion(model, window=3, stride=2).explain(images, y)
        got = ke.Occlusion(opaque, window=3, stride=2, batch_size=3).explain(images, y)
        np.testing.assert_allclose(got.maps, expected.maps, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5, err_msg=name)
