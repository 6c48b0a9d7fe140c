"""RISE: masks, a numpy reference on the same masks, invariances, memory, quality."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras_explainable as ke
from conftest import head_logits, make_body_head, opaque_model, target_forms
from keras_explainable import demo
from keras_explainable.methods.rise import rise_masks


def reference_rise(model, x, targets, masks, probability, center=True):
    """The score-weighted mean of the masks, scores being the targets' probabilities."""
    rows = np.arange(len(x))
    scores = np.stack(
        [np.asarray(model(x * m[None, ..., None]))[rows, targets] for m in masks]
    )  # (P, N)
    if center:
        scores = scores - scores.mean(axis=0)
    return np.einsum("pn,p...->n...", scores, masks) / (len(masks) * probability)


def test_masks_are_a_function_of_seed_and_number():
    all_masks = rise_masks(3, np.arange(6), (10, 7), 4, 0.3).numpy()
    assert all_masks.shape == (6, 10, 7)
    assert all_masks.min() >= 0.0 and all_masks.max() <= 1.0
    np.testing.assert_array_equal(rise_masks(3, [4, 1], (10, 7), 4, 0.3).numpy(), all_masks[[4, 1]])
    assert not np.allclose(rise_masks(4, np.arange(6), (10, 7), 4, 0.3).numpy(), all_masks)
    many = rise_masks(0, np.arange(2000), (16, 16), 4, 0.3).numpy()
    assert many.mean() == pytest.approx(0.3, abs=0.02)
    assert rise_masks(0, [0, 1], (9,), 4, 0.5).shape == (2, 9)
    assert rise_masks(0, [0, 1], (5, 6, 7), 2, 0.5).shape == (2, 5, 6, 7)


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("shape", [(8, 8, 3), (11, 2)])
def test_rise_matches_numpy_on_the_same_masks(shape, center):
    body, head, model = make_body_head(input_shape=shape, seed=2)  # softmax outputs
    x = np.random.default_rng(1).uniform(0, 1, (5, *shape)).astype("float32")
    targets = np.array([0, 1, 2, 1, 0])
    rise = ke.RISE(
        model,
        masks=40,
        cell_size=3,
        probability=0.4,
        seed=7,
        mask_batch_size=6,
        center_scores=center,
        postprocess=None,
    )
    expl = rise.explain(x, targets)
    masks = rise_masks(7, np.arange(40), shape[:-1], 3, 0.4).numpy()
    expected = reference_rise(model, x, targets, masks, 0.4, center)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-6)
    logits = head_logits(head, body(x)).numpy()[np.arange(5), targets]
    np.testing.assert_allclose(expl.scores[:, 0], logits, rtol=1e-5, atol=1e-6)


def test_seeded_and_independent_of_batch_and_chunk_size(images):
    _, _, model = make_body_head(seed=1)
    targets = np.array([[0, 2], [1, 0], [2, 1], [0, 1], [2, 2], [1, 1], [0, 0]])
    reference = ke.RISE(model, masks=30, cell_size=3, seed=5, batch_size=7).explain(images, targets)
    again = ke.RISE(model, masks=30, cell_size=3, seed=5, batch_size=7).explain(images, targets)
    np.testing.assert_array_equal(again.maps, reference.maps)
    for batch_size, chunk in ((1, 1), (3, 7), (7, 30), (2, 64)):
        other = ke.RISE(
            model, masks=30, cell_size=3, seed=5, batch_size=batch_size, mask_batch_size=chunk
        ).explain(images, targets)
        np.testing.assert_allclose(other.maps, reference.maps, atol=1e-5)
    other_seed = ke.RISE(model, masks=30, cell_size=3, seed=6).explain(images, targets)
    assert not np.allclose(other_seed.maps, reference.maps, atol=1e-3)


def test_baseline_blends_the_hidden_part():
    _, _, model = make_body_head(seed=2)
    x = np.random.default_rng(1).uniform(0, 1, (3, 8, 8, 3)).astype("float32")
    targets = np.array([2, 0, 1])
    expl = ke.RISE(model, masks=20, cell_size=4, seed=1, baseline=0.5, postprocess=None).explain(
        x, targets
    )
    masks = rise_masks(1, np.arange(20), (8, 8), 4, 0.5).numpy()
    rows = np.arange(3)
    blended = [x * m[None, ..., None] + 0.5 * (1 - m[None, ..., None]) for m in masks]
    scores = np.stack([np.asarray(model(b))[rows, targets] for b in blended])
    scores -= scores.mean(0)
    expected = np.einsum("pn,p...->n...", scores, masks) / (20 * 0.5)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"masks": 0}, "masks must be a positive integer"),
        ({"cell_size": 0}, "cell_size must be a positive integer"),
        ({"probability": 0.0}, r"probability must be a number in \(0, 1\)"),
        ({"probability": 1.0}, r"probability must be a number in \(0, 1\)"),
        ({"probability": -0.2}, r"probability must be a number in \(0, 1\)"),
        ({"mask_batch_size": 0}, "mask_batch_size"),
    ],
)
def test_bad_options_are_refused_at_construction(options, message):
    calls = []

    def counted(x):
        calls.append(1)
        return x

    with pytest.raises(ValueError, match=message):
        ke.RISE(counted, **options)
    assert not calls


@pytest.mark.parametrize("form", ["subclassed", "callable"])
def test_any_model_and_every_target_form(form, images):
    # Logits out: an opaque model's outputs are taken as logits, as the functional one's.
    _, _, model = make_body_head(softmax=False, seed=4)
    opaque = opaque_model(model, form)
    for name, y in target_forms().items():
        expected = ke.RISE(model, masks=12, cell_size=3).explain(images, y)
        got = ke.RISE(opaque, masks=12, cell_size=3, batch_size=3).explain(images, y)
        np.testing.assert_allclose(got.maps, expected.maps, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5, err_msg=name)


# Measured on 16 demo images (seed 0): RISE 500 masks 1.0, Occlusion 8x8 stride 4 0.75.
POINTING_MARGIN = 0.1


def test_pointing_game_on_the_demo_model_is_close_to_occlusion():
    model = demo.load_demo_model()
    data = demo.make_shapes(16, seed=0)
    pointing = ke.metrics.PointingGame()
    occlusion = ke.Occlusion(model, window=8, stride=4, verbose=0).explain(data.images, data.labels)
    rise = ke.RISE(model, masks=500, cell_size=8, verbose=0).explain(data.images, data.labels)
    occlusion_hits = pointing(occlusion, masks=data.masks).mean
    rise_hits = pointing(rise, masks=data.masks).mean
    assert rise_hits >= occlusion_hits - POINTING_MARGIN, (rise_hits, occlusion_hits)


MEMORY_SCRIPT = textwrap.dedent(
    """
    import os, sys, json, threading, time
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, keras
    import keras_explainable as ke

    def resident_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    peak = [0.0]
    done = threading.Event()
    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], resident_mib())
            time.sleep(0.005)

    inputs = keras.Input((64, 64, 1))
    hidden = keras.layers.Conv2D(2, 3, strides=4, padding="same")(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(hidden))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).uniform(0, 1, (4, 64, 64, 1)).astype("float32")
    masks = int(sys.argv[1])
    rise = ke.RISE(model, masks=masks, mask_batch_size=64, batch_size=4, verbose=0)
    rise.explain(x[:1], 0)  # compile and warm up before measuring
    base = resident_mib()
    thread = threading.Thread(target=sample)
    thread.start()
    expl = rise.explain(x, 0)
    done.set()
    thread.join()
    print(json.dumps({"growth": peak[0] - base, "finite": bool(np.isfinite(expl.maps).all())}))
    """
)


def test_memory_does_not_grow_with_the_number_of_masks(tmp_path):
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT)
    growth = {}
    for masks in (500, 8000):
        result = subprocess.run(
            [sys.executable, str(script), str(masks)], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        assert measured["finite"]
        growth[masks] = measured["growth"]
    # A bank of 8000 masks of 64x64 would be 125 MiB (and 4 x 8000 masked copies 500 MiB).
    assert growth[8000] < growth[500] + 40, growth
