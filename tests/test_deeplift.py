"""DeepLIFT (rescale rule) and DeepSHAP against computations written here."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import Opaque, fix_weights
from keras_explainable.baselines import baseline_images
from keras_explainable.exposure.taps import installed_layers

RAW = {"postprocess": None, "resize": False, "verbose": 0}


def _set_weights(model: keras.Model, seed: int) -> keras.Model:
    """Fixed weights; BatchNormalization gets positive variances and non-trivial statistics."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "variance" in weight.path:
            weight.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
        else:
            weight.assign(rng.normal(0.0, 0.6, shape).astype("float32"))
    return model


def _residual_model(activation: str = "relu") -> keras.Model:
    """Conv2D (fused activation), BatchNorm, a nested block with a skip Add, a softmax output."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation=activation)(inputs)
    x = keras.layers.BatchNormalization()(x)
    block_input = keras.Input((8, 8, 4))
    y = keras.layers.Conv2D(4, 3, padding="same")(block_input)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Add()([block_input, y])
    block = keras.Model(block_input, keras.layers.Activation(activation)(y))
    x = block(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(6, activation=activation)(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return _set_weights(keras.Model(inputs, outputs), seed=1)


def _logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The pre-softmax logits, from the last Dense layer's weights."""
    features = keras.Model(model.inputs, model.layers[-1].input)(x).numpy()
    kernel, bias = model.layers[-1].get_weights()
    return features @ kernel + bias


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(5).uniform(0, 1, (5, 8, 8, 3)).astype("float32")


@pytest.fixture(scope="module")
def baseline():
    return np.random.default_rng(6).uniform(0, 1, (8, 8, 3)).astype("float32")


@pytest.fixture(scope="module")
def residual():
    return _residual_model()


def test_linear_model_equals_gradient_times_difference(x, baseline):
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    model = fix_weights(keras.Model(inputs, outputs), seed=2)
    kernel = model.layers[-1].get_weights()[0].reshape(8, 8, 3, 3)
    expl = ke.DeepLIFT(model, baseline=baseline, channel_reduction=None, **RAW).explain(x, 2)
    expected = (x - baseline) * kernel[..., 2]
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-5, atol=1e-7)


def _dense_reference(weights, x, x0, target):
    """The rescale rule written out for Dense(relu) -> Dense(tanh) -> Dense(logits)."""
    (w1, b1), (w2, b2), (w3, _) = weights
    functions = [lambda u: np.maximum(u, 0.0), np.tanh]
    derivatives = [lambda u: (u > 0).astype(u.dtype), lambda u: 1.0 - np.tanh(u) ** 2]
    u1, u01 = x @ w1 + b1, x0 @ w1 + b1
    u2 = functions[0](u1) @ w2 + b2
    u02 = functions[0](u01) @ w2 + b2
    multipliers = []
    for f, df, u, u0 in zip(functions, derivatives, (u1, u2), (u01, u02), strict=True):
        du = u - u0
        near = np.abs(du) <= 1e-6
        multipliers.append(np.where(near, df(u), (f(u) - f(u0)) / np.where(near, 1.0, du)))
    gradient = w3[:, target][None]  # (1, 4)
    gradient = (gradient * multipliers[1]) @ w2.T
    gradient = (gradient * multipliers[0]) @ w1.T
    return (x - x0) * gradient


def test_dense_network_equals_the_rescale_rule_in_numpy():
    inputs = keras.Input((6,))
    h = keras.layers.Dense(5, activation="relu")(inputs)
    h = keras.layers.Dense(4)(h)
    h = keras.layers.Activation("tanh")(h)
    model = fix_weights(keras.Model(inputs, keras.layers.Dense(3)(h)), seed=4, scale=0.8)
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1, (4, 6)).astype("float32")
    x0 = rng.normal(0, 1, (6,)).astype("float32")
    x[0] = x0  # a sample equal to its baseline: every multiplier falls back to f'(u)
    weights = [layer.get_weights() for layer in model.layers if layer.weights]
    expl = ke.DeepLIFT(model, baseline=x0, channel_reduction=None, **RAW).explain(x, 1)
    expected = _dense_reference(weights, x, x0[None], 1)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-5, atol=1e-6)
    delta = model(x).numpy()[:, 1] - model(x0[None]).numpy()[0, 1]
    np.testing.assert_allclose(expl.maps[..., 0].sum(axis=1), delta, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "gelu", "sigmoid"])
def test_inputs_close_to_the_baseline_get_the_exact_secant(activation):
    # u - u0 ~ 1e-4: in float32, (f(u) - f(u0)) / (u - u0) of a curved f
    # keeps only about 3 digits; the multiplier must be the float64 secant.
    inputs = keras.Input((6,))
    h = keras.layers.Dense(8, activation=activation)(inputs)
    model = fix_weights(keras.Model(inputs, keras.layers.Dense(2)(h)), seed=3, scale=0.8)
    (w1, b1), (w2, _) = [layer.get_weights() for layer in model.layers if layer.weights]
    rng = np.random.default_rng(11)
    x0 = rng.normal(0, 1, (6,)).astype("float32")
    x = (x0 + rng.normal(0, 1e-4, (3, 6))).astype("float32")
    expl = ke.DeepLIFT(model, baseline=x0, channel_reduction=None, **RAW).explain(x, 0)
    exact_gelu = np.vectorize(lambda u: 0.5 * u * (1.0 + math.erf(u / math.sqrt(2.0))))
    f = {"tanh": np.tanh, "sigmoid": lambda u: 1.0 / (1.0 + np.exp(-u)), "gelu": exact_gelu}
    f = f[activation]
    u = x.astype(np.float64) @ w1 + b1
    u0 = x0.astype(np.float64) @ w1 + b1
    multiplier = (f(u) - f(u0[None])) / (u - u0[None])
    expected = (x - x0).astype(np.float64) * ((w2[:, 0][None] * multiplier) @ w1.T)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=2e-4, atol=1e-9)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_sums_to_the_logit_difference_with_batchnorm_nesting_and_a_skip(x, baseline, activation):
    model = _residual_model(activation)
    targets = np.array([[0, 2], [1, 0], [2, 1], [0, 1], [2, 2]])
    expl = ke.DeepLIFT(model, baseline=baseline, **RAW).explain(x, targets)
    logits = _logits(model, x)
    reference = _logits(model, baseline[None])[0]
    delta = np.take_along_axis(logits - reference, targets, axis=1)
    np.testing.assert_allclose(expl.maps.sum(axis=(1, 2)), delta, rtol=1e-5, atol=1e-6)
    assert not installed_layers()  # the taps are gone after the step is traced


def test_leaky_elu_prelu_swish_sigmoid_sum_to_the_difference(x, baseline):
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.LeakyReLU(0.2)(keras.layers.Conv2D(3, 3, padding="same")(inputs))
    h = keras.layers.ELU()(keras.layers.Conv2D(3, 3, padding="same")(h))
    h = keras.layers.PReLU()(keras.layers.Conv2D(3, 3, padding="same")(h))
    h = keras.layers.Dense(4, activation="swish")(keras.layers.Flatten()(h))
    h = keras.layers.Activation("sigmoid")(h)
    model = _set_weights(keras.Model(inputs, keras.layers.Dense(2)(h)), seed=3)
    expl = ke.DeepLIFT(model, baseline=baseline, **RAW).explain(x, 0)
    scores, reference = model(x).numpy()[:, 0], model(baseline[None]).numpy()[0, 0]
    # Relative to the scores' size: float32 sums of many terms.
    scale = 1e-5 * max(np.abs(scores).max(), abs(reference))
    np.testing.assert_allclose(
        expl.maps.sum(axis=(1, 2, 3)), scores - reference, rtol=1e-5, atol=scale
    )


def test_max_pooling_keeps_its_gradient(x, baseline):
    """Max pooling passes (x - x0) at the input's maximum of each window (the paper's choice)."""
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.MaxPooling2D(2)(inputs)
    model = fix_weights(keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(pooled))))
    kernel = model.layers[-1].get_weights()[0][:, 1].reshape(4, 4, 3)
    expl = ke.DeepLIFT(model, baseline=baseline, channel_reduction=None, **RAW).explain(x, 1)
    windows = x.reshape(5, 4, 2, 4, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(5, 4, 4, 3, 4)
    at_max = windows == windows.max(axis=-1, keepdims=True)  # (N, 4, 4, 3, 4)
    weights = (at_max * kernel[None, ..., None]).reshape(5, 4, 4, 3, 2, 2)
    weights = weights.transpose(0, 1, 4, 2, 5, 3).reshape(5, 8, 8, 3)
    np.testing.assert_allclose(expl.maps[..., 0], (x - baseline) * weights, rtol=1e-5, atol=1e-7)


def test_per_sample_baselines_and_shared_baselines_agree(residual, x, baseline):
    shared = ke.DeepLIFT(residual, baseline=baseline, **RAW).explain(x, 1)
    per_sample = ke.DeepLIFT(
        residual, baseline=lambda images: tf.ones_like(images) * baseline, **RAW
    ).explain(x, 1)
    np.testing.assert_allclose(per_sample.maps, shared.maps, rtol=1e-5, atol=1e-7)
    blur = ke.DeepLIFT(residual, baseline="blur", blur_sigma=1.0, **RAW).explain(x, 1)
    blurred = baseline_images("blur", tf.constant(x), blur_sigma=1.0).numpy()
    delta = _logits(residual, x)[:, 1] - _logits(residual, blurred)[:, 1]
    np.testing.assert_allclose(blur.maps.sum(axis=(1, 2, 3)), delta, rtol=1e-5, atol=1e-6)


def test_batches_datasets_and_several_targets_are_invariant(residual, x, baseline):
    targets = np.array([[0, 2], [1, 0], [2, 1], [0, 1], [2, 2]])
    explainer = ke.DeepLIFT(residual, baseline=baseline, batch_size=5, **RAW)
    reference = explainer.explain(x, targets)
    # Batches of 2: the last is one sample.
    small = ke.DeepLIFT(residual, baseline=baseline, batch_size=2, **RAW).explain(x, targets)
    np.testing.assert_allclose(small.maps, reference.maps, rtol=1e-5, atol=1e-7)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(3)
    from_dataset = explainer.explain(dataset, targets)
    np.testing.assert_allclose(from_dataset.maps, reference.maps, rtol=1e-5, atol=1e-7)
    for column in range(2):
        single = explainer.explain(x, targets[:, column])
        np.testing.assert_allclose(single.maps[..., 0], reference.maps[..., column], atol=1e-6)


def test_deepshap_is_the_mean_of_deeplift_over_the_background(residual, x):
    background = np.random.default_rng(9).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    lifts = [
        ke.DeepLIFT(residual, baseline=sample, **RAW).explain(x, 2).maps for sample in background
    ]
    one = ke.DeepSHAP(residual, background[:1], **RAW).explain(x, 2)
    np.testing.assert_allclose(one.maps, lifts[0], rtol=1e-6, atol=1e-7)
    shap = ke.DeepSHAP(residual, background, **RAW).explain(x, 2)
    np.testing.assert_allclose(shap.maps, np.mean(lifts, axis=0), rtol=1e-5, atol=1e-7)
    expected = _logits(residual, x)[:, 2] - _logits(residual, background)[:, 2].mean()
    np.testing.assert_allclose(shap.maps.sum(axis=(1, 2, 3)), expected, rtol=1e-5, atol=1e-6)
    # Top-class targets are the model's predictions on the input, for every background sample.
    top = ke.DeepSHAP(residual, background, **RAW).explain(x)
    np.testing.assert_array_equal(top.targets[:, 0], residual(x).numpy().argmax(axis=1))
    np.testing.assert_allclose(
        top.maps,
        ke.DeepSHAP(residual, background, **RAW).explain(x, top.targets).maps,
        rtol=1e-6,
        atol=1e-7,
    )


def test_errors(residual, baseline):
    with pytest.raises(ke.InputError, match="does not broadcast"):
        ke.DeepLIFT(residual, baseline=np.zeros((4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="baseline must be one of"):
        ke.DeepLIFT(residual, baseline="uniform")
    with pytest.raises(ke.BackgroundError, match="non-empty"):
        ke.DeepSHAP(residual, np.zeros((0, 8, 8, 3), "float32"))
    with pytest.raises(ke.BackgroundError, match="finite"):
        ke.DeepSHAP(residual, np.full((2, 8, 8, 3), np.nan, "float32"))
    with pytest.raises(ke.BackgroundError, match=r"\(B, \*input_shape\) for inputs"):
        ke.DeepSHAP(residual, np.zeros((2, 4, 4, 3), "float32"))
    with pytest.raises(ke.BackgroundError, match="for inputs"):
        ke.DeepSHAP(residual, baseline)  # one sample, not a set
    with pytest.raises(ke.ModelStructureError, match="Build it first"):
        ke.DeepLIFT(Opaque(residual))
    with pytest.raises(ke.LayerError, match="takes no layer"):
        ke.DeepLIFT(residual, layer="dense")


def test_text_model_sums_to_the_difference_from_a_token_baseline():
    ids = keras.Input((8,), dtype="int32")
    h = keras.layers.Embedding(30, 6)(ids)
    h = keras.layers.Conv1D(5, 3, padding="same", activation="relu")(h)
    model = fix_weights(keras.Model(ids, keras.layers.Dense(3)(keras.layers.Flatten()(h))))
    tokens = np.random.default_rng(1).integers(1, 30, (3, 8)).astype("int32")
    expl = ke.DeepLIFT(model, baseline=ke.TokenBaseline(0), **RAW).explain(tokens, 1)
    delta = model(tokens).numpy()[:, 1] - model(np.zeros((1, 8), "int32")).numpy()[0, 1]
    np.testing.assert_allclose(expl.maps.sum(axis=(1, 2)), delta, rtol=1e-5, atol=1e-6)


def test_several_inputs_sum_to_the_difference_with_baselines_per_input():
    image, vector = keras.Input((6, 6, 2), name="image"), keras.Input((4,), name="vector")
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(3, 3, activation="relu")(image))
    h = keras.layers.Concatenate()([h, keras.layers.Dense(3, activation="tanh")(vector)])
    h = keras.layers.Dense(4, activation="relu")(h)
    model = fix_weights(keras.Model([image, vector], keras.layers.Dense(2)(h)))
    rng = np.random.default_rng(0)
    x = [
        rng.uniform(0, 1, (3, 6, 6, 2)).astype("float32"),
        rng.normal(0, 1, (3, 4)).astype("float32"),
    ]
    expl = ke.DeepLIFT(model, baseline={"vector": 0.5}, **RAW).explain(x, 1)
    reference = [np.zeros((1, 6, 6, 2), "float32"), np.full((1, 4), 0.5, "float32")]
    delta = model(x).numpy()[:, 1] - model(reference).numpy()[0, 1]
    total = expl.maps[0].sum(axis=(1, 2, 3)) + expl.maps[1].sum(axis=(1, 2))
    np.testing.assert_allclose(total, delta, rtol=1e-5, atol=1e-6)
    with pytest.raises(ke.ModelStructureError, match="several inputs"):
        ke.DeepSHAP(model, np.zeros((2, 6, 6, 2), "float32"))


def test_a_shared_reference_follows_the_weights_from_one_call_to_the_next(x, baseline):
    """The baseline's activations are computed once per call, so new weights are seen."""
    model = _residual_model()
    background = np.random.default_rng(9).uniform(0, 1, (2, 8, 8, 3)).astype("float32")

    def explainers(model: keras.Model) -> dict:
        lift = ke.DeepLIFT(model, baseline=baseline, batch_size=2, **RAW)
        return {
            "DeepLIFT": lift,
            "SmoothGrad(DeepLIFT)": ke.SmoothGrad(lift, samples=3, seed=4),
            "TTA(DeepLIFT)": ke.TTA(lift),
            "DeepSHAP": ke.DeepSHAP(model, background, batch_size=2, **RAW),
        }

    kept = explainers(model)
    first = {name: explainer.explain(x, 1).maps for name, explainer in kept.items()}
    _set_weights(model, seed=7)
    fresh = explainers(_set_weights(_residual_model(), seed=7))
    for name, explainer in kept.items():
        again = explainer.explain(x, 1).maps
        assert not np.allclose(again, first[name], atol=1e-3), name
        np.testing.assert_allclose(again, fresh[name].explain(x, 1).maps, rtol=1e-5, atol=1e-6)
    # Summation to the new logits' difference, computed here.
    delta = _logits(model, x)[:, 1] - _logits(model, baseline[None])[0, 1]
    sums = kept["DeepLIFT"].explain(x, 1).maps.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(sums, delta, rtol=1e-5, atol=1e-6)


def test_inputs_of_unknown_size_sum_to_the_difference_batch_by_batch():
    """Batches whose size is unknown before the run hold the shared baseline as a last sample."""
    inputs = keras.Input((None, None, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(keras.layers.Conv2D(4, 3, padding="same")(h))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))
    model = _set_weights(keras.Model(inputs, outputs), seed=2)
    explainer = ke.DeepLIFT(model, baseline=0.25, channel_reduction=None, **RAW)
    rng = np.random.default_rng(3)
    for shape in [(8, 8), (10, 6)]:
        # Two batches, the last of one sample, from a dataset of unknown image size.
        batches = [rng.uniform(0, 1, (size, *shape, 3)).astype("float32") for size in (2, 1)]
        dataset = tf.data.Dataset.from_generator(
            lambda batches=batches: iter(batches),
            output_signature=tf.TensorSpec((None, None, None, 3), tf.float32),
        )
        maps = explainer.explain(dataset, 1).maps
        images = np.concatenate(batches)
        delta = model(images).numpy()[:, 1] - model(np.full_like(images[:1], 0.25)).numpy()[0, 1]
        np.testing.assert_allclose(maps.sum(axis=(1, 2, 3, 4)), delta, rtol=1e-5, atol=1e-6)
        # The same images as an array (their size known before the run): the same maps.
        alone = explainer.explain(images, 1).maps
        np.testing.assert_allclose(maps, alone, rtol=1e-5, atol=1e-7)


def test_references_too_large_to_keep_are_computed_batch_by_batch(
    residual, x, baseline, monkeypatch
):
    """Past the memory bound, each batch carries its baseline: the same maps."""
    from keras_explainable.exposure import rescale_rules

    background = np.random.default_rng(9).uniform(0, 1, (3, 8, 8, 3)).astype("float32")

    def explain() -> list[np.ndarray]:
        lift = ke.DeepLIFT(residual, baseline=baseline, batch_size=2, **RAW)
        shap = ke.DeepSHAP(residual, background, batch_size=2, **RAW)
        return [lift.explain(x, 1).maps, shap.explain(x, 1).maps]

    kept = explain()
    monkeypatch.setattr(rescale_rules, "SHARED_REFERENCE_BYTES", 0)
    for carried, maps in zip(explain(), kept, strict=True):
        np.testing.assert_allclose(carried, maps, rtol=1e-5, atol=1e-7)
