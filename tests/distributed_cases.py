"""Models, explainers and inputs that distributed runs are checked on.

Shared by `tests/test_distributed.py` and `tests/scripts/distributed_run.py`,
so that a worker process and the test process build the same models with the
same fixed weights, and explain the same inputs.

With `BATCH_SIZE` 4 on 2 replicas, 9 samples end in a batch of one sample, so
one replica gets no sample of it; 11 samples end in a batch of 3, split 2 + 1.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights
from keras_explainable import demo

BATCH_SIZE = 4
EMPTY_SLICE = 9  # last batch of 1 sample: a replica without samples
PARTIAL_SLICE = 11  # last batch of 3 samples: slices of 2 and 1
COUNTS = (EMPTY_SLICE, PARTIAL_SLICE)
INPUT_FORMS = ("array", "dataset")
CLASSES = 5
# Results on 2 replicas equal those on one device up to float rounding (the
# batches differ in size); relative, too, as a deep model's scores are large.
ATOL = RTOL = 1e-5


def fix_weights_by_role(model: keras.Model, seed: int) -> keras.Model:
    """Give every weight a fixed pseudo-random value suited to its role.

    Kernels get He-scaled normal values; biases, batch-norm shifts and moving
    means small ones; batch-norm scales and moving variances values around 1
    (a variance must stay positive), so batch normalization is not the
    identity.
    """
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape, path = tuple(variable.shape), variable.path
        if path.endswith(("gamma", "moving_variance")):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) <= 1:
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = np.prod(shape[:-2]) if "depthwise" in path else np.prod(shape[:-1])
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        variable.assign(value.astype("float32"))
    return model


def plain_cnn() -> keras.Model:
    """A functional CNN whose layers are all auto-named."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return fix_weights(keras.Model(inputs, keras.layers.Dense(CLASSES)(x)), seed=10)


def sequential_cnn() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(CLASSES),
        ]
    )
    return fix_weights(model, seed=15)


def nested_backbone() -> keras.Model:
    """A `keras.applications` backbone (random weights) inside a Sequential."""
    backbone = keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3),
        weights=None,
        include_top=False,
        minimalistic=True,
        include_preprocessing=False,
    )
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            backbone,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(CLASSES),
        ]
    )
    return fix_weights_by_role(model, seed=12)


def batchnorm_cnn() -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(16, 3, strides=2)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return fix_weights_by_role(keras.Model(inputs, keras.layers.Dense(CLASSES)(x)), seed=10)


class Block(keras.layers.Layer):
    """A composite layer: a pre-norm attention block whose layers are attributes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = keras.layers.LayerNormalization()
        self.attention = keras.layers.MultiHeadAttention(2, 4)
        self.mlp = keras.layers.Dense(8, activation="relu")

    def build(self, input_shape):
        self.norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.mlp.build(input_shape)

    def call(self, tokens):
        normed = self.norm(tokens)
        tokens = tokens + self.attention(normed, normed)
        return tokens + self.mlp(tokens)


def composite_transformer() -> keras.Model:
    """Patches of 4x4 into tokens, a class token, two composite blocks (auto-named)."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 4, strides=4)(inputs)
    x = keras.layers.Reshape((16, 8))(x)
    x = keras.layers.Concatenate(axis=1)([keras.layers.Lambda(lambda t: t[:, :1] * 0)(x), x])
    for _ in range(2):
        x = Block()(x)
    outputs = keras.layers.Dense(CLASSES)(keras.layers.Lambda(lambda t: t[:, 0])(x))
    return fix_weights(keras.Model(inputs, outputs), seed=16)


MODELS: dict[str, Callable[[], keras.Model]] = {
    "plain": plain_cnn,
    "sequential": sequential_cnn,
    "nested": nested_backbone,
    "batchnorm": batchnorm_cnn,
    "demo": demo.load_demo_model,
}
try:  # keras-hub is an optional extra (in `test`): its ViT, or one of composite layers
    import hub_models

    MODELS["keras-hub vit"] = lambda: hub_models.vit(seed=2, classes=CLASSES)
except ImportError:
    MODELS["composite"] = composite_transformer


def data(model_name: str, model: keras.Model, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` images for the model and one target class per image."""
    if model_name == "demo":
        shapes = demo.make_shapes(count, seed=3)
        return shapes.images, shapes.labels
    size = model.input_shape[1:]
    x = np.random.default_rng(count).uniform(0, 1, (count, *size)).astype("float32")
    return x, np.arange(count) % CLASSES


def shapes_masks(count: int) -> np.ndarray:
    """The ground-truth masks of the demo model's images (`data("demo", ...)`)."""
    return demo.make_shapes(count, seed=3).masks


EXPLAINERS: dict[str, Callable[..., ke.Explainer]] = {
    "GradCAM": lambda model, **kw: ke.GradCAM(model, **kw),
    "Saliency": lambda model, **kw: ke.Saliency(model, **kw),
    "ScoreCAM": lambda model, **kw: ke.ScoreCAM(model, mask_batch_size=8, max_channels=8, **kw),
    "FullGradient": lambda model, **kw: ke.FullGradient(model, **kw),
    # The decorators take the strategy one way each: SmoothGrad from the
    # explainer it wraps, TTA as its own option.
    "SmoothGrad(GradCAM)": lambda model, **kw: ke.SmoothGrad(
        ke.GradCAM(model, **kw), samples=3, seed=1
    ),
    "TTA(GradCAM)": lambda model, strategy=None, **kw: ke.TTA(
        ke.GradCAM(model, **kw), strategy=strategy
    ),
}

# The relevance methods, whose rules are taps with custom gradients (LRP) or
# a baseline stacked after the batch (DeepLIFT), each under a decorator; on
# the models that exercise them (BatchNormalization folded, nesting, a
# transformer's GELU and attention).
RELEVANCE_EXPLAINERS: dict[str, Callable[..., ke.Explainer]] = {
    "SmoothGrad(LRP)": lambda model, **kw: ke.SmoothGrad(
        ke.LRP(model, unsupported="gradient", **kw), samples=2, seed=1
    ),
    "TTA(DeepLIFT)": lambda model, strategy=None, **kw: ke.TTA(
        ke.DeepLIFT(model, **kw), strategy=strategy
    ),
}
RELEVANCE_MODELS = [name for name in MODELS if name in ("batchnorm", "nested", "keras-hub vit")]
RELEVANCE_MODELS += [name for name in MODELS if name == "composite"]

# The reduced matrix of the multi-worker test: (model names, explainer names).
WORKER_CASES = (("plain", "demo"), ("GradCAM", "ScoreCAM"))


def case_name(model_name: str, explainer_name: str, form: str, count: int) -> str:
    return f"{model_name} / {explainer_name} / {form} / {count} samples"


def inputs(form: str, x: np.ndarray, y: np.ndarray) -> tuple:
    """`explain`'s arguments: arrays with targets, or a batched `(x, y)` dataset."""
    if form == "array":
        return x, y
    return (tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH_SIZE),)


def assert_same(got: ke.Explanation, expected: ke.Explanation) -> None:
    """Maps and scores equal up to float rounding; targets exactly."""
    for name in ("maps", "scores"):
        np.testing.assert_allclose(
            getattr(got, name), getattr(expected, name), rtol=RTOL, atol=ATOL, err_msg=name
        )
    np.testing.assert_array_equal(got.targets, expected.targets, err_msg="targets")
