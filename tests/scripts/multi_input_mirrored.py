"""A model with several inputs under a MirroredStrategy of 2 logical CPUs equals one device.

Run by tests/test_multi_input.py in a subprocess (logical devices must be set
before TensorFlow starts). 5 samples in batches of 4 leave one replica
without samples in the last batch.
"""

import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["CUDA_VISIBLE_DEVICES"] = ""
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import keras_explainable as ke  # noqa: E402
from test_multi_input import two_input_model  # noqa: E402

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
m = two_input_model()
rng = np.random.default_rng(0)
img = rng.normal(size=(5, 8, 8, 3)).astype("float32")
tab = rng.normal(size=(5, 5)).astype("float32")
y = np.array([0, 1, 2, 1, 0])
CASES = [
    (ke.Saliency, {}),
    (ke.IntegratedGradients, {"steps": 8}),
    (ke.GradCAM, {}),
    (ke.Occlusion, {"window": 1}),
]
for cls, kw in CASES:
    local = cls(m, batch_size=4, **kw).explain((img, tab), y)
    dist = cls(m, batch_size=4, strategy=strategy, **kw).explain((img, tab), y)
    for a, b in zip(tf.nest.flatten(local.maps), tf.nest.flatten(dist.maps), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    ds = tf.data.Dataset.from_tensor_slices(({"image": img, "tabular": tab}, y)).batch(4)
    dist2 = cls(m, batch_size=4, strategy=strategy, **kw).explain(ds)
    for a, b in zip(tf.nest.flatten(local.maps), tf.nest.flatten(dist2.maps), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    print(cls.__name__, "ok")
