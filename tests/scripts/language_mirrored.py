"""Language models under a MirroredStrategy of 2 logical CPUs equal one device.

Run by tests/test_language_models.py in a subprocess (logical devices must be
set before TensorFlow starts). 5 samples in batches of 4 leave one replica
without samples in the last batch; the batches hold padding.
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
import hub_text_models  # noqa: E402
import keras_explainable as ke  # noqa: E402

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
CASES = [
    (ke.Saliency, {}),
    (ke.IntegratedGradients, {"steps": 8}),
    (ke.Occlusion, {"window": 1}),
    (ke.KernelSHAP, {"samples": 16, "seed": 1}),
]
for family, target in (
    ("bert", np.array([0, 1, 2, 1, 0])),
    ("gpt2", ke.targets.Continuation([3, 8])),
):
    model = hub_text_models.FACTORIES[family]()
    x = hub_text_models.example_inputs(family, batch_size=5, length=8, num_padded=3, seed=2)
    if family == "gpt2":  # a continuation follows left-padded prompts
        x = {key: value[:, ::-1].copy() for key, value in x.items()}
    # Each family with two of the methods: gradients, paths, perturbations, surrogates.
    for cls, kw in CASES[:2] if family == "gpt2" else CASES[2:]:
        local = cls(model, batch_size=4, **kw).explain(x, target)
        dist = cls(model, batch_size=4, strategy=strategy, **kw).explain(x, target)
        np.testing.assert_allclose(dist.maps, local.maps, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dist.scores, local.scores, rtol=1e-4, atol=1e-5)
        assert (dist.maps[x["padding_mask"] == 0] == 0).all()
        print(family, cls.__name__, "ok")
    if family == "bert":
        ds = tf.data.Dataset.from_tensor_slices((x, target)).batch(4)
        dist = ke.Saliency(model, batch_size=4, strategy=strategy).explain(ds)
        local = ke.Saliency(model, batch_size=4).explain(x, target)
        np.testing.assert_allclose(dist.maps, local.maps, rtol=1e-4, atol=1e-5)
        print(family, "dataset ok")
