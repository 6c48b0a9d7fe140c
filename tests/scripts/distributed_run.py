"""Run explainers under a distribution strategy; used by tests/test_scale.py.

Usage:
    python distributed_run.py mirrored OUT.npz
        split the CPU into 2 logical devices, explain with and without a
        MirroredStrategy, save both.
    python distributed_run.py worker INDEX PORT0 PORT1 OUT.npz
        one worker of a 2-worker MultiWorkerMirroredStrategy on 127.0.0.1;
        the chief (INDEX 0) saves its result.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

mode = sys.argv[1]
if mode == "worker":
    index, port0, port1, out = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]},
            "task": {"type": "worker", "index": index},
        }
    )
else:
    out = sys.argv[2]

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
else:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import keras_explainable as ke  # noqa: E402
from conftest import make_body_head  # noqa: E402

_, _, model = make_body_head()
x = np.random.default_rng(0).uniform(size=(11, 8, 8, 3)).astype("float32")
labels = np.arange(11) % 3
dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(4)

methods = {
    "GradCAM": lambda **kw: ke.GradCAM(model, batch_size=4, **kw),
    "GradCAMLayers": lambda **kw: ke.GradCAM(
        model, layers=["conv_a", "features"], batch_size=4, **kw
    ),
}
if hasattr(ke, "ScoreCAM"):
    methods["ScoreCAM"] = lambda **kw: ke.ScoreCAM(model, batch_size=4, **kw)
if hasattr(ke, "SmoothGrad"):
    methods["SmoothGrad"] = lambda **kw: ke.SmoothGrad(
        ke.Saliency(model), samples=3, seed=1, batch_size=4, **kw
    )

results = {}
for name, build in methods.items():
    if mode == "mirrored":
        results[f"{name}_plain"] = build().explain(x, labels).maps
    results[f"{name}_distributed"] = build(strategy=strategy).explain(dataset).maps
results["replicas"] = np.array(strategy.num_replicas_in_sync)
if mode == "mirrored" or index == 0:
    np.savez(out, **results)
