"""Streaming explanations to disk: resumable, and in bounded memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke


def test_stream_to_disk_equals_in_memory(tmp_path, image_model, images):
    _, _, model = image_model
    explainer = ke.GradCAM(model, batch_size=3)
    labels = np.arange(7) % 3
    in_memory = explainer.explain(images, labels)
    on_disk = explainer.explain_to_disk(images, tmp_path / "run", labels)
    for name in ("maps", "scores", "targets"):
        stored = np.load(tmp_path / "run" / f"{name}.npy")
        np.testing.assert_array_equal(stored, getattr(in_memory, name))
        np.testing.assert_array_equal(np.asarray(getattr(on_disk, name)), stored)
    # resume=False replaces the run (here with the same results).
    again = explainer.explain_to_disk(images, tmp_path / "run", labels, resume=False)
    np.testing.assert_array_equal(np.asarray(again.maps), in_memory.maps)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        explainer.explain_to_disk(images, tmp_path / "file", labels)


def test_interrupted_run_resumes_to_identical_files(tmp_path, image_model):
    _, _, model = image_model
    x = np.random.default_rng(1).uniform(size=(20, 8, 8, 3)).astype("float32")
    explainer = ke.GradCAM(model, batch_size=4)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(4)

    def failing(batch_index, batch):
        tf.debugging.assert_less(batch_index, tf.constant(3, tf.int64), message="simulated crash")
        return batch

    crashing = dataset.enumerate().map(failing)
    with pytest.raises(tf.errors.InvalidArgumentError, match="simulated crash"):
        explainer.explain_to_disk(crashing, tmp_path / "resumed", 1)
    partial = np.load(tmp_path / "resumed" / "maps.npy")
    assert partial.shape[0] == 12  # three complete batches survived the crash
    explainer.explain_to_disk(dataset, tmp_path / "resumed", 1)
    explainer.explain_to_disk(dataset, tmp_path / "straight", 1)
    for name in ("maps.npy", "scores.npy", "targets.npy"):
        assert (tmp_path / "resumed" / name).read_bytes() == (
            tmp_path / "straight" / name
        ).read_bytes()
    with pytest.raises(ValueError, match="other inputs or options"):
        ke.GradCAM(model, layer="conv_a").explain_to_disk(dataset, tmp_path / "resumed", 1)


def test_empty_batches_are_skipped_and_not_counted_for_resuming(tmp_path, image_model):
    _, _, model = image_model
    x = np.random.default_rng(2).uniform(size=(9, 8, 8, 3)).astype("float32")

    def batch(start, stop):
        return tf.data.Dataset.from_tensors(x[start:stop])

    # batches of 4, 0, 4 and 1 samples
    dataset = batch(0, 4).concatenate(batch(0, 0)).concatenate(batch(4, 8)).concatenate(batch(8, 9))
    explainer = ke.GradCAM(model, batch_size=4)
    expected = explainer.explain(x, 1)
    np.testing.assert_array_equal(explainer.explain(dataset, 1).maps, expected.maps)

    def failing(batch_index, batch):
        tf.debugging.assert_less(batch_index, tf.constant(3, tf.int64), message="simulated crash")
        return batch

    with pytest.raises(tf.errors.InvalidArgumentError, match="simulated crash"):
        explainer.explain_to_disk(dataset.enumerate().map(failing), tmp_path / "resumed", 1)
    assert np.load(tmp_path / "resumed" / "maps.npy").shape[0] == 8
    resumed = explainer.explain_to_disk(dataset, tmp_path / "resumed", 1)
    np.testing.assert_array_equal(np.asarray(resumed.maps), expected.maps)
    np.testing.assert_array_equal(np.asarray(resumed.targets), expected.targets)


MEMORY_SCRIPT = textwrap.dedent(
    """
    import os, sys, json
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf, keras
    import keras_explainable as ke
    from keras_explainable import streaming

    def resident_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    # record the resident memory after every batch written
    samples = []
    write = streaming.NpyWriter.write
    def recording_write(self, *args):
        write(self, *args)
        samples.append(resident_mib())
    streaming.NpyWriter.write = recording_write

    inputs = keras.Input((192, 192, 1))
    features = keras.layers.Conv2D(4, 3, padding="same", name="features")(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, outputs)
    dataset = tf.data.Dataset.range(4800).map(
        lambda i: tf.random.stateless_uniform((192, 192, 1), seed=tf.stack([i, i]))
    ).batch(40)
    explainer = ke.GradCAM(model, batch_size=40, verbose=0)
    expl = explainer.explain_to_disk(dataset, sys.argv[1] + "/run", 0)
    early = float(np.median(samples[10:20]))
    late = float(np.median(samples[-10:]))
    output = expl.maps.nbytes / 2**20
    print(json.dumps({"growth": late - early, "output": output, "rows": len(expl.maps)}))
    """
)


def test_streaming_memory_stays_bounded(tmp_path):
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    import json

    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["rows"] == 4800
    assert measured["output"] > 600  # MiB of maps written
    # the resident memory at the end is about what it was after the first batches
    # (allocator and tf.data buffers move it by tens of MiB either way)
    assert measured["growth"] < 0.2 * measured["output"], measured
