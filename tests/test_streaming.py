"""Re-opening streamed runs: finished runs are read back, other runs are refused.

A run's signature covers every option that changes its results (the
method's, its decorators', the targets, the model's weights); re-opening a
run with any of them changed is refused before any work, and the files stay
as they were.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import make_body_head

pytestmark = pytest.mark.filterwarnings("ignore::keras_explainable.errors.CompletenessWarning")

LABELS = np.arange(7) % 3
OTHER_LABELS = (np.arange(7) + 1) % 3


def _model():
    return make_body_head(seed=9)[2]


def _state(directory):
    """Every file's bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def _square(maps):
    return maps**2


def _cube(maps):
    return maps**3


def _ig(model, **options):
    options.setdefault("steps", 4)
    return ke.IntegratedGradients(model, verbose=0, **options)


def _smooth(model, inner=None, **options):
    inner = inner or {}
    return ke.SmoothGrad(ke.Saliency(model, verbose=0, **inner), samples=2, **options)


# (first explainer, second explainer, what the error must name); y is LABELS.
CHANGED_OPTIONS = {
    "channel_reduction": (
        lambda m: ke.Saliency(m, channel_reduction="max"),
        lambda m: ke.Saliency(m, channel_reduction="l2"),
        "channel_reduction",
    ),
    "postprocess=None": (
        lambda m: ke.Saliency(m),
        lambda m: ke.Saliency(m, postprocess=None),
        "postprocess",
    ),
    "postprocess callable": (
        lambda m: ke.Saliency(m, postprocess=_square),
        lambda m: ke.Saliency(m, postprocess=_cube),
        "postprocess",
    ),
    "postprocess lambda": (
        lambda m: ke.Saliency(m, postprocess=lambda maps: maps * 2),
        lambda m: ke.Saliency(m, postprocess=lambda maps: maps * 3),
        "postprocess",
    ),
    "absolute": (
        lambda m: ke.Saliency(m),
        lambda m: ke.Saliency(m, absolute=False),
        "absolute",
    ),
    "resize": (lambda m: ke.GradCAM(m), lambda m: ke.GradCAM(m, resize=False), "resize"),
    "layer": (
        lambda m: ke.GradCAM(m, layer="features"),
        lambda m: ke.GradCAM(m, layer="conv_a"),
        "layer",
    ),
    "logits": (lambda m: ke.GradCAM(m), lambda m: ke.GradCAM(m, logits=False), "logits"),
    "steps": (lambda m: _ig(m), lambda m: _ig(m, steps=5), "steps"),
    "method": (lambda m: _ig(m), lambda m: _ig(m, method="riemann_trapezoid"), "method"),
    "baseline": (lambda m: _ig(m), lambda m: _ig(m, baseline=0.5), "baseline"),
    "baseline array": (
        lambda m: _ig(m, baseline=np.zeros((8, 8, 3), "float32")),
        lambda m: _ig(m, baseline=np.full((8, 8, 3), 1e-3, "float32")),
        "baseline: an array",
    ),
    "seed": (
        lambda m: _ig(m, baseline="uniform", seed=0),
        lambda m: _ig(m, baseline="uniform", seed=1),
        "seed",
    ),
    "SmoothGrad samples": (
        lambda m: _smooth(m),
        lambda m: ke.SmoothGrad(ke.Saliency(m, verbose=0), samples=3),
        "samples",
    ),
    "SmoothGrad noise": (lambda m: _smooth(m), lambda m: _smooth(m, noise=0.2), "noise"),
    "SmoothGrad variant": (
        lambda m: _smooth(m),
        lambda m: _smooth(m, variant="squared"),
        "variant",
    ),
    "wrapped explainer's option": (
        lambda m: _smooth(m),
        lambda m: _smooth(m, inner={"channel_reduction": "mean"}),
        "explainer.channel_reduction",
    ),
    "TTA flips": (
        lambda m: ke.TTA(ke.GradCAM(m)),
        lambda m: ke.TTA(ke.GradCAM(m), flips=("horizontal", "vertical")),
        "flips",
    ),
    "Occlusion window": (
        lambda m: ke.Occlusion(m, window=3),
        lambda m: ke.Occlusion(m, window=4),
        "window",
    ),
    "RISE seed": (
        lambda m: ke.RISE(m, masks=8, seed=0),
        lambda m: ke.RISE(m, masks=8, seed=1),
        "seed",
    ),
}


@pytest.mark.parametrize("case", list(CHANGED_OPTIONS))
def test_a_changed_option_is_refused_before_any_work(tmp_path, images, case):
    first, second, named = CHANGED_OPTIONS[case]
    model = _model()
    first(model).explain_to_disk(images, tmp_path, LABELS)
    before = _state(tmp_path)
    explainer = second(model)
    with pytest.raises(ke.RunMismatchError, match=rf"{named}.*another directory.*resume=False"):
        explainer.explain_to_disk(images, tmp_path, LABELS)
    assert explainer.trace_count == 0  # nothing was computed
    assert _state(tmp_path) == before
    # The way out: resume=False replaces the run with this one's results.
    replaced = explainer.explain_to_disk(images, tmp_path, LABELS, resume=False)
    np.testing.assert_array_equal(np.asarray(replaced.maps), explainer.explain(images, LABELS).maps)


CHANGED_TARGETS = {
    "an int": (0, 1),
    "an array": (LABELS, OTHER_LABELS),
    "top class or not": (None, 0),
    "a callable": (lambda out: out[:, 0], lambda out: out[:, 1]),
    "a target object": (ke.targets.Class(0), ke.targets.Class(1)),
}


@pytest.mark.parametrize("case", list(CHANGED_TARGETS))
def test_changed_targets_are_refused(tmp_path, images, case):
    first, second = CHANGED_TARGETS[case]
    explainer = ke.GradCAM(_model())
    explainer.explain_to_disk(images, tmp_path, first)
    before = _state(tmp_path)
    with pytest.raises(ke.RunMismatchError, match="the targets"):
        ke.GradCAM(explainer.model).explain_to_disk(images, tmp_path, second)
    assert _state(tmp_path) == before


def test_finished_run_is_read_back_and_refused_after_set_weights(tmp_path, images):
    model = _model()
    explainer = ke.GradCAM(model, batch_size=3)
    first = explainer.explain_to_disk(images, tmp_path / "run", LABELS)
    before = _state(tmp_path / "run")
    stored = {name: np.array(getattr(first, name)) for name in ("maps", "scores", "targets")}

    # The same options in a new explainer, and options that do not change the
    # maps (batch size, verbosity): read back, not recomputed.
    for again in (
        ke.GradCAM(model, batch_size=3).explain_to_disk(images, tmp_path / "run", LABELS),
        ke.GradCAM(model, batch_size=5, verbose=0).explain_to_disk(
            images, tmp_path / "run", LABELS
        ),
    ):
        for name, values in stored.items():
            np.testing.assert_array_equal(np.asarray(getattr(again, name)), values)
    assert _state(tmp_path / "run") == before

    # New weights: the run no longer answers for this model.
    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 2.0, bias])
    with pytest.raises(ke.RunMismatchError, match="the model's weights.*resume=False"):
        explainer.explain_to_disk(images, tmp_path / "run", LABELS)
    assert _state(tmp_path / "run") == before
    dense.set_weights([kernel, bias])  # the run's weights again: read back
    explainer.explain_to_disk(images, tmp_path / "run", LABELS)
    assert _state(tmp_path / "run") == before


def test_a_plain_callable_model_is_fingerprinted_by_the_weights_it_holds(tmp_path, images):
    model = _model()
    occlusion = ke.Occlusion(lambda x: model(x), window=4, verbose=0)
    occlusion.explain_to_disk(images, tmp_path, LABELS)
    before = _state(tmp_path)
    occlusion.explain_to_disk(images, tmp_path, LABELS)  # read back
    assert _state(tmp_path) == before
    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()
    dense.set_weights([-kernel, bias])
    with pytest.raises(ke.RunMismatchError, match="the model's weights"):
        occlusion.explain_to_disk(images, tmp_path, LABELS)
    assert _state(tmp_path) == before


def test_neutral_options_read_the_run_back(tmp_path, images):
    model = _model()
    ke.Occlusion(model, window=3, window_batch_size=4).explain_to_disk(images, tmp_path, LABELS)
    before = _state(tmp_path)
    same = ke.Occlusion(model, window=3, window_batch_size=9, jit_compile=True, verbose=0)
    same.explain_to_disk(images, tmp_path, LABELS)
    assert same.trace_count == 0 and _state(tmp_path) == before
    _ig(model, step_batch_size=1).explain_to_disk(images, tmp_path / "ig", LABELS)
    before = _state(tmp_path / "ig")
    same = _ig(model, step_batch_size=3, completeness_tolerance=0.5)
    same.explain_to_disk(images, tmp_path / "ig", LABELS)
    assert same.trace_count == 0 and _state(tmp_path / "ig") == before
    smooth = _smooth(model, noise_batch_size=1)
    smooth.explain_to_disk(images, tmp_path / "smooth", LABELS)
    before = _state(tmp_path / "smooth")
    _smooth(model, noise_batch_size=2).explain_to_disk(images, tmp_path / "smooth", LABELS)
    assert _state(tmp_path / "smooth") == before


def test_a_run_without_the_new_signature_fields_is_refused(tmp_path, images):
    explainer = ke.GradCAM(_model())
    explainer.explain_to_disk(images, tmp_path, LABELS)
    progress = json.loads((tmp_path / "progress.json").read_text())
    for key in ("options", "targets", "weights"):
        del progress["signature"][key]
    (tmp_path / "progress.json").write_text(json.dumps(progress))
    before = _state(tmp_path)
    with pytest.raises(ke.RunMismatchError, match="older keras-explainable.*resume=False"):
        explainer.explain_to_disk(images, tmp_path, LABELS)
    assert _state(tmp_path) == before
    explainer.explain_to_disk(images, tmp_path, LABELS, resume=False)
    assert "options" in json.loads((tmp_path / "progress.json").read_text())["signature"]


def test_an_unfinished_run_resumes_only_with_the_same_batches(tmp_path, images):
    explainer = ke.GradCAM(_model(), batch_size=2)

    def failing(batch_index, batch):
        tf.debugging.assert_less(batch_index, tf.constant(2, tf.int64), message="crash")
        return batch

    dataset = tf.data.Dataset.from_tensor_slices(images).batch(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="crash"):
        explainer.explain_to_disk(dataset.enumerate().map(failing), tmp_path, 1)
    before = _state(tmp_path)
    with pytest.raises(ke.RunMismatchError, match="batch_size=2.*batch_size=3"):
        ke.GradCAM(explainer.model, batch_size=3).explain_to_disk(dataset, tmp_path, 1)
    assert _state(tmp_path) == before
    resumed = explainer.explain_to_disk(dataset, tmp_path, 1)
    np.testing.assert_array_equal(np.asarray(resumed.maps), explainer.explain(images, 1).maps)
