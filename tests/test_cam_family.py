"""LayerCAM, XGrad-CAM, HiResCAM, Eigen-CAM, Eigen-Grad-CAM and Ablation-CAM
against direct computations of their formulas."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights, head_logits, make_body_head, reference_feature_gradients
from keras_explainable import ops as ke_ops
from keras_explainable.methods.ablationcam import ablation_weights
from keras_explainable.methods.xgradcam import xgradcam_weights

SHAPES = {1: (9, 3), 2: (6, 5, 3), 3: (4, 5, 3, 2)}
TARGETS = np.array([0, 2, 1, 2])


@pytest.fixture(scope="module", params=sorted(SHAPES), ids=lambda rank: f"{rank}d")
def case(request):
    """(body, head, model, x) for one input rank; 5 feature channels."""
    shape = SHAPES[request.param]
    body, head, model = make_body_head(input_shape=shape, channels=5, seed=request.param)
    x = np.random.default_rng(request.param).uniform(0, 1, (4, *shape)).astype("float32")
    return body, head, model, x


def _raw(cls, model, **kwargs):
    return cls(model, postprocess=None, resize=False, **kwargs)


def _spatial(array):
    return tuple(range(1, array.ndim - 1))


def reference_eigen(activations):
    """Projections on the first principal direction by numpy's SVD, sign fixed."""
    flat = activations.reshape(len(activations), -1, activations.shape[-1]).astype(np.float64)
    maps = []
    for matrix in flat:
        centred = matrix - matrix.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        projection = centred @ vt[0]
        if projection @ centred.sum(axis=1) < 0:
            projection = -projection
        maps.append(projection)
    return np.stack(maps).reshape(activations.shape[:-1])


def reference_maps(name, features, gradients):
    """Raw maps `(N, *spatial)` of one target, from numpy features and gradients."""
    if name == "LayerCAM":
        return (np.maximum(gradients, 0) * features).sum(axis=-1)
    if name == "HiResCAM":
        return (gradients * features).sum(axis=-1)
    if name == "XGradCAM":
        axes = _spatial(features)
        sums = features.sum(axis=axes, keepdims=True)
        shares = np.divide(features, sums, out=np.zeros_like(features), where=sums != 0)
        weights = (shares * gradients).sum(axis=axes, keepdims=True)
        return (weights * features).sum(axis=-1)
    if name == "EigenCAM":
        return reference_eigen(features)
    if name == "EigenGradCAM":
        return reference_eigen(gradients * features)
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["LayerCAM", "XGradCAM", "HiResCAM", "EigenCAM", "EigenGradCAM"])
def test_gradient_and_eigen_maps_equal_direct_computation(case, name):
    body, head, model, x = case
    expl = _raw(getattr(ke, name), model).explain(x, TARGETS)
    features, gradients, logits = reference_feature_gradients(body, head, x, TARGETS[:, None])
    expected = reference_maps(name, features, gradients)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(expl.scores[:, 0], logits[range(4), TARGETS], rtol=1e-5)
    assert expl.method == name and expl.layer == "features"


def reference_ablation(features, logits_of, targets):
    """Raw Ablation-CAM maps: zero one channel at a time, score the rest by `logits_of`."""
    rows = np.arange(len(features))
    scores = logits_of(features)[rows, targets]
    maps = np.zeros(features.shape[:-1])
    for channel in range(features.shape[-1]):
        ablated = features.copy()
        ablated[..., channel] = 0.0
        weight = (scores - logits_of(ablated)[rows, targets]) / scores
        maps += weight.reshape(-1, *[1] * (features.ndim - 2)) * features[..., channel]
    return maps


def test_ablationcam_equals_direct_computation(case):
    body, head, model, x = case
    features = body(x).numpy()
    expected = reference_ablation(features, lambda f: head_logits(head, f).numpy(), TARGETS)
    expl = _raw(ke.AblationCAM, model, channel_batch_size=2).explain(x, TARGETS)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-5)
    assert expl.method == "AblationCAM"


def _residual_model():
    """The explained layer feeds a head that adds a skip connection from before it.

    x -> conv_a (relu) -> features (5 ch.) -> after (1x1 conv) -> + conv_a ->
    BatchNormalization -> relu -> GAP -> Dense(3, softmax), in a nested
    backbone model.
    """
    inputs = keras.Input((6, 6, 2))
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    features = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="features")(hidden)
    after = keras.layers.Conv2D(4, 1, name="after")(features)
    merged = keras.layers.Add(name="skip")([after, hidden])
    normed = keras.layers.BatchNormalization(name="bn")(merged)
    backbone = keras.Model(inputs, keras.layers.ReLU(name="relu")(normed), name="backbone")
    outer = keras.Input((6, 6, 2))
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(backbone(outer))
    outputs = keras.layers.Dense(3, activation="softmax", name="dense")(pooled)
    model = fix_weights(keras.Model(outer, outputs), seed=11)
    bn = backbone.get_layer("bn")
    gamma, beta, mean, variance = bn.get_weights()
    bn.set_weights([gamma, beta, mean, np.abs(variance) + 0.5])
    return model


def _whole_model_logits(model, x, channel=None):
    """Logits of the whole model from the input, with one channel of 'features' zeroed."""
    backbone = model.get_layer("backbone")
    hidden = backbone.get_layer("conv_a")(x)
    features = backbone.get_layer("features")(hidden)
    if channel is not None:
        features = features * (1.0 - tf.one_hot(channel, features.shape[-1]))
    merged = backbone.get_layer("skip")([backbone.get_layer("after")(features), hidden])
    normed = backbone.get_layer("relu")(backbone.get_layer("bn")(merged, training=False))
    kernel, bias = model.get_layer("dense").get_weights()
    pooled = model.get_layer("gap")(normed)
    return (pooled @ kernel + bias).numpy(), features.numpy()


@pytest.fixture(scope="module")
def residual():
    model = _residual_model()
    x = np.random.default_rng(3).uniform(-1, 1, (3, 6, 6, 2)).astype("float32")
    return model, x


@pytest.mark.parametrize("channel_batch_size", [1, 3, 5])
def test_ablationcam_replays_the_head_with_a_skip_connection(residual, channel_batch_size):
    model, x = residual
    targets = np.array([[0, 2], [1, 1], [2, 0]])
    logits, features = _whole_model_logits(model, x)
    expected = np.zeros((3, 6, 6, 2))
    for column in range(2):
        rows, wanted = np.arange(3), targets[:, column]
        scores = logits[rows, wanted]
        for channel in range(5):
            ablated = _whole_model_logits(model, x, channel)[0][rows, wanted]
            weight = (scores - ablated) / scores
            expected[..., column] += weight[:, None, None] * features[..., channel]
    explainer = _raw(
        ke.AblationCAM, model, layer="backbone/features", channel_batch_size=channel_batch_size
    )
    assert explainer.head.context_count == 1  # conv_a's output, from before the layer
    expl = explainer.explain(x, targets)
    np.testing.assert_allclose(expl.maps, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(expl.scores, np.take_along_axis(logits, targets, 1), rtol=1e-5)


def test_ablationcam_auto_maps_and_xla(residual):
    model, x = residual
    default = ke.AblationCAM(model, layer="backbone/features").explain(x)
    compiled = ke.AblationCAM(model, layer="backbone/features", jit_compile=True).explain(x)
    assert default.maps.shape == (3, 6, 6, 1) and default.maps.min() >= 0
    np.testing.assert_allclose(compiled.maps, default.maps, atol=1e-5)


def test_ablation_weights_guard_scores_near_zero():
    scores = tf.constant([[2.0, 0.0, -1e-9, -4.0]])
    ablated = tf.constant([[[1.0], [1.0], [1.0], [-2.0]]])
    weights = ablation_weights(scores, ablated).numpy()
    assert np.isfinite(weights).all()
    np.testing.assert_allclose(weights[0, :, 0], [0.5, -1e6, 1e6, 0.5], rtol=1e-5)


def test_xgradcam_zero_sum_channel_gets_zero_weight():
    # Channel 1 is all zero: its share of each position is 0, not NaN.
    features = np.zeros((1, 2, 2, 2), "float32")
    features[..., 0] = [[1.0, 3.0], [0.0, 0.0]]
    gradients = np.ones((1, 1, 2, 2, 2), "float32")
    gradients[0, 0, 0, 1, 0] = 5.0
    weights = xgradcam_weights(tf.constant(features), tf.constant(gradients)).numpy()
    np.testing.assert_allclose(weights, [[[0.25 * 1.0 + 0.75 * 5.0, 0.0]]], rtol=1e-6)


def test_hirescam_sums_to_the_score_for_a_pooling_head(image_model, images):
    # S = sum_c w_c mean_ij A_ijc + b: the HiResCAM terms w_c A_ijc / Z add up to S - b.
    _, head, model = image_model
    expl = _raw(ke.HiResCAM, model).explain(images, 1)
    bias = head.get_layer("dense").get_weights()[1][1]
    np.testing.assert_allclose(
        expl.maps.sum(axis=(1, 2))[:, 0], expl.scores[:, 0] - bias, rtol=1e-4
    )


def test_eigencam_is_class_agnostic_and_correlates_with_the_activations(image_model, images):
    body, _, model = image_model
    expl = _raw(ke.EigenCAM, model).explain(images, [[0, 1, 2]] * 7)
    np.testing.assert_array_equal(expl.maps[..., 1], expl.maps[..., 0])
    np.testing.assert_array_equal(expl.maps[..., 2], expl.maps[..., 0])
    totals = body(images).numpy().sum(axis=-1)
    for sample in range(7):
        correlation = np.corrcoef(expl.maps[sample, ..., 0].ravel(), totals[sample].ravel())
        assert correlation[0, 1] > 0
    # The scores are still the explained ones.
    logits = reference_feature_gradients(*image_model[:2], images, np.zeros((7, 1), int))[2]
    np.testing.assert_allclose(expl.scores, logits, rtol=1e-5)
    auto = ke.EigenCAM(model).explain(images, [[0, 1, 2]] * 7)
    np.testing.assert_array_equal(auto.maps[..., 2], auto.maps[..., 0])


def test_eigencam_of_constant_activations_is_zero():
    inputs = keras.Input((4, 4, 1))
    features = keras.layers.Conv2D(3, 1, kernel_initializer="zeros", name="features")(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).uniform(0, 1, (2, 4, 4, 1)).astype("float32")
    expl = _raw(ke.EigenCAM, model).explain(x)
    np.testing.assert_array_equal(expl.maps, 0.0)


@pytest.mark.parametrize("shape", [(3, 49, 64), (3, 64, 6)], ids=["by-rows", "by-columns"])
def test_principal_projection_equals_numpy_svd_with_and_without_xla(shape):
    matrix = np.maximum(np.random.default_rng(1).normal(size=shape), 0).astype("float32")
    expected = reference_eigen(matrix[:, :, None, :])[:, :, 0]
    plain = ke_ops.principal_projection(tf.constant(matrix)).numpy()
    compiled = tf.function(ke_ops.principal_projection, jit_compile=True)(matrix).numpy()
    unknown = tf.function(
        ke_ops.principal_projection, input_signature=[tf.TensorSpec([None, None, None])]
    )(matrix).numpy()
    for got in (plain, compiled, unknown):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_principal_projection_sign_when_the_rows_sum_to_zero():
    """Layer-normalised tokens sum to about 0 over channels: their sums give no sign."""
    rng = np.random.default_rng(2)
    matrix = rng.normal(size=(1, 16, 8))
    matrix -= matrix.mean(axis=2, keepdims=True)  # every row sums to 0
    projections = []
    for noise in (0.0, 1e-6, -1e-6):
        noisy = (matrix + noise * rng.normal(size=matrix.shape)).astype("float32")
        projections.append(ke_ops.principal_projection(tf.constant(noisy)).numpy()[0])
    expected = np.abs(reference_eigen(matrix[:, :, None, :].astype("float32"))[0, :, 0])
    for projection in projections:
        # the largest projection is positive, whatever the rounding of the sums
        assert projection[np.argmax(np.abs(projection))] > 0
        np.testing.assert_allclose(np.abs(projection), expected, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(projection, projections[0], atol=1e-4)


def test_ablationcam_on_split_and_sequential_models_equals_the_flat_model(image_model, images):
    body, head, model = image_model
    expected = _raw(ke.AblationCAM, model).explain(images, 1).maps
    sequential = keras.Sequential([keras.Input((8, 8, 3)), body, head])
    for other in (ke.SplitModel(body, head), sequential):
        np.testing.assert_allclose(_raw(ke.AblationCAM, other).explain(images, 1).maps, expected)
