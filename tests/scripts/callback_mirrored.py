"""`ExplainCallback` under `model.fit` with a MirroredStrategy; used by tests/test_callbacks.py.

Usage:
    python callback_mirrored.py OUT_DIR

Splits the CPU into 2 logical devices, builds and trains a tiny CNN under a
MirroredStrategy for two epochs with the callback (its explainer made by a
factory, with a batch size that leaves one replica without samples in the
last batch), then explains the same images with the same weights in a model
built outside the strategy. Writes OUT_DIR/report.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import keras  # noqa: E402

import keras_explainable as ke  # noqa: E402
from test_callbacks import _data, _model, _summaries  # noqa: E402

out = Path(sys.argv[1])
x, labels = _data(12)
images = x[:5]  # batches of 4 and 1: the second leaves a replica without samples
with strategy.scope():
    model = _model()
traces: list[int] = []
written: list[int] = []


class Record(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        traces.append(callback.explainer.trace_count)
        written.append(callback.last_epoch)


callback = ke.callbacks.ExplainCallback(
    lambda trained: ke.GradCAM(trained, batch_size=4, verbose=0),
    images,
    labels[:5],
    log_dir=out / "logs",
)
model.fit(x, labels, batch_size=4, epochs=2, verbose=0, callbacks=[callback, Record()])
assert model.distribute_strategy is strategy

plain = _model()
plain.set_weights(model.get_weights())
expected = ke.GradCAM(plain, batch_size=4, verbose=0).explain(images, labels[:5])
got = callback.last_explanation
np.testing.assert_array_equal(got.targets, expected.targets)
report = {
    "replicas": strategy.num_replicas_in_sync,
    "epochs_written": written,
    "traces": traces,
    "max_map_difference": float(np.abs(got.maps - expected.maps).max()),
    "max_score_difference": float(np.abs(got.scores - expected.scores).max()),
    "summaries": len(_summaries(out / "logs")["GradCAM/target_0"]),
}
(out / "report.json").write_text(json.dumps(report))
