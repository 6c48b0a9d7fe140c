"""Distributed explaining and streaming to disk."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke

SCRIPT = Path(__file__).parent / "scripts" / "distributed_run.py"


def _run(args, timeout=240, **kwargs):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=env, **kwargs)


def test_mirrored_strategy_equals_single_device(tmp_path, image_model):
    out = tmp_path / "mirrored.npz"
    process = _run(["mirrored", str(out)])
    assert process.wait(timeout=300) == 0
    results = np.load(out)
    assert int(results["replicas"]) == 2
    names = [key[: -len("_plain")] for key in results.files if key.endswith("_plain")]
    assert "GradCAM" in names
    for name in names:
        np.testing.assert_allclose(
            results[f"{name}_distributed"], results[f"{name}_plain"], atol=1e-5
        )
    # and the same maps as this process computes without any strategy
    _, _, model = image_model
    x = np.random.default_rng(0).uniform(size=(11, 8, 8, 3)).astype("float32")
    expected = ke.GradCAM(model, batch_size=4).explain(x, np.arange(11) % 3).maps
    np.testing.assert_allclose(results["GradCAM_distributed"], expected, atol=1e-5)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_strategy_on_localhost(tmp_path, image_model):
    out = tmp_path / "chief.npz"
    ports = [str(p) for p in _free_ports(2)]
    workers = [
        _run(
            ["worker", str(index), *ports, str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for index in range(2)
    ]
    try:
        codes = [worker.wait(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    logs = [worker.stdout.read().decode(errors="replace")[-2000:] for worker in workers]
    assert codes == [0, 0], logs
    results = np.load(out)
    assert int(results["replicas"]) == 2
    _, _, model = image_model
    x = np.random.default_rng(0).uniform(size=(11, 8, 8, 3)).astype("float32")
    expected = ke.GradCAM(model, batch_size=4).explain(x, np.arange(11) % 3).maps
    np.testing.assert_allclose(results["GradCAM_distributed"], expected, atol=1e-5)


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
    with pytest.raises(FileExistsError, match="resume=True"):
        explainer.explain_to_disk(images, tmp_path / "run", labels, resume=False)
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
        ke.GradCAM(model, batch_size=5).explain_to_disk(dataset, tmp_path / "resumed", 1)


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
