"""Vision transformers: token layers explained on their patch grid."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights, make_body_head, make_vit
from keras_explainable.exposure.tokens import TokenGrid, candidate_grids, find_token_grid

AUTO = "block1_norm1 (auto: input of the last attention layer, 4x4 token grid"
AUTO_ONE_BLOCK = AUTO.replace("block1", "block0")


@pytest.fixture(scope="module")
def vit():
    """16x16 images, 4x4 patches (a 4x4 grid), a class token, 1 block, 3 classes."""
    return make_vit(blocks=1)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(3).uniform(0, 1, (4, 16, 16, 3)).astype("float32")


def _reference_gradcam(model, layer, x, targets, skip):
    """Raw Grad-CAM on the 4x4 grid, with a GradientTape on the token tensor."""
    tap = keras.Model(model.input, [model.get_layer(layer).output, model.get_layer("dense").input])
    kernel, bias = model.get_layer("dense").get_weights()
    with tf.GradientTape() as tape:
        tokens, pooled = tap(tf.constant(x), training=False)
        logits = tf.matmul(pooled, kernel) + bias
        score = tf.reduce_sum(tf.gather(logits, targets, batch_dims=1))
    gradients = tape.gradient(score, tokens).numpy()[:, skip:]
    features = tokens.numpy()[:, skip:]
    weights = gradients.mean(axis=1, keepdims=True)
    return (weights * features).sum(axis=-1).reshape(len(x), 4, 4)


@pytest.mark.parametrize("extra_tokens", [1, 0])
def test_gradcam_equals_a_direct_computation_on_the_grid(x, extra_tokens):
    model = make_vit(extra_tokens=extra_tokens)
    targets = np.array([0, 2, 1, 1])
    expected = _reference_gradcam(model, "block1_norm1", x, targets, extra_tokens)
    raw = ke.GradCAM(model, postprocess=None, resize=False).explain(x, targets)
    assert raw.maps.shape == (4, 4, 4, 1)
    np.testing.assert_allclose(raw.maps[..., 0], expected, rtol=1e-4, atol=1e-6)
    # the default layer: the last attention's input, read on the grid the input implies
    assert raw.layer == AUTO + (", 1 skipped token)" if extra_tokens else ")")
    assert np.abs(expected).max() > 0
    # after the last attention, the patch tokens no longer reach a class token
    after = ke.GradCAM(model, layer="block1_add2", postprocess=None).explain(x, targets)
    assert (np.abs(after.maps).max() == 0) == bool(extra_tokens)
    # explicit options give the same maps; an explicit layer is named as given
    explicit = ke.GradCAM(
        model,
        layer="block1_norm1",
        token_grid=(4, 4),
        skip_tokens=extra_tokens,
        postprocess=None,
        resize=False,
    ).explain(x, targets)
    np.testing.assert_allclose(explicit.maps, raw.maps, rtol=1e-6)
    assert explicit.layer == "block1_norm1"


def test_explicit_grid_and_extra_tokens(x):
    model = make_vit(extra_tokens=2, blocks=1)  # a class and a distillation token
    expected = _reference_gradcam(model, "block0_add2", x, np.zeros(4, int), skip=2)
    kinds = [
        {},
        {"token_grid": (4, 4)},
        {"skip_tokens": 2},
        {"token_grid": [4, 4], "skip_tokens": 2},
    ]
    for options in kinds:
        raw = {"postprocess": None, "resize": False}
        maps = ke.GradCAM(model, layer="block0_add2", **raw, **options).explain(x, 0).maps[..., 0]
        np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
    auto = ke.GradCAM(model).explain(x, 0)
    assert auto.layer == f"{AUTO_ONE_BLOCK}, 2 skipped tokens)"
    # a grid of other patches: 18 tokens read as 2 skipped + a 2x8 grid
    wide = ke.GradCAM(model, layer="block0_add2", token_grid=(2, 8), resize=False).explain(x, 0)
    assert wide.maps.shape == (4, 2, 8, 1)


def test_token_grid_errors(x):
    model = make_vit()  # 17 tokens
    with pytest.raises(ke.LayerError, match=r"its 17 tokens do not fit token_grid=\(5, 5\)"):
        ke.GradCAM(model, layer="block0_add2", token_grid=(5, 5))
    with pytest.raises(ke.LayerError, match="do not fit token_grid=.*skip_tokens=0"):
        ke.GradCAM(model, layer="block0_add2", token_grid=(4, 4), skip_tokens=0)
    with pytest.raises(ke.LayerError, match="do not fit skip_tokens=3"):
        ke.GradCAM(model, layer="block0_add2", skip_tokens=3)
    with pytest.raises(ValueError, match=r"token_grid must be \(rows, columns\)"):
        ke.GradCAM(model, token_grid=4)
    with pytest.raises(ValueError, match="skip_tokens must be an integer >= 0"):
        ke.GradCAM(model, skip_tokens=-1)
    with pytest.raises(ke.LayerError, match="takes no token_grid="):
        ke.Saliency(model, token_grid=(4, 4))
    _, _, cnn = make_body_head()
    with pytest.raises(ke.LayerError, match="outputs no token sequence.*'features'"):
        ke.GradCAM(cnn, layer="features", skip_tokens=1)


def test_a_sequence_that_fits_no_grid_names_its_length_and_the_grids():
    inputs = keras.Input((16, 16, 3))
    patches = keras.layers.Conv2D(8, 4, strides=4)(inputs)
    tokens = keras.layers.Reshape((8, 16), name="tokens")(patches)
    attended = keras.layers.MultiHeadAttention(2, 4, name="attention")(tokens, tokens)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(attended))
    model = fix_weights(keras.Model(inputs, outputs))
    message = (
        r"'tokens' outputs a token sequence of shape \(None, 8, 16\) on 16x16 images.*its 8 "
        r"tokens fit no patch grid.*16x16 \(256\), 8x8 \(64\), 4x4 \(16\), 2x2 \(4\), 1x1 \(1\)"
        r".*token_grid=\(h, w\).*skip_tokens=k"
    )
    with pytest.raises(ke.LayerError, match=message):
        ke.GradCAM(model, layer="tokens")
    # the automatic choice passes over it to the patch embedding
    assert ke.GradCAM(model).layer_name == model.layers[1].name


def test_token_grid_helpers():
    assert candidate_grids((16, 8)) == [(16, 8), (8, 4), (4, 2), (2, 1)]
    assert candidate_grids((None, 8)) == []
    assert find_token_grid(197, (224, 224)) == TokenGrid(14, 14, 1)
    assert find_token_grid(196, (224, 224)) == TokenGrid(14, 14, 0)
    assert find_token_grid(201, (224, 224)) == TokenGrid(14, 14, 5)  # class + 4 registers
    assert find_token_grid(224, (224, 224)) is None  # 28 extra tokens: too many
    assert find_token_grid(None, (224, 224), token_grid=(14, 14)) == TokenGrid(14, 14, 0)
    assert find_token_grid(50, (224, 224), skip_tokens=1) == TokenGrid(7, 7, 1)
    assert TokenGrid(14, 14, 5).describe() == "14x14 token grid, 5 skipped tokens"
    tokens = tf.reshape(tf.range(2 * 7 * 3), (1, 2, 7, 3))  # (N, L, T, C)
    grid = TokenGrid(2, 3, skip=1).to_grid(tokens)
    assert grid.shape == (1, 2, 2, 3, 3)
    np.testing.assert_array_equal(grid[0, 1, 1, 0], [33, 34, 35])  # token 4 of target 1


CAM_FAMILY = {
    "GradCAM": ke.GradCAM,
    "GradCAMPlusPlus": ke.GradCAMPlusPlus,
    "ScoreCAM": lambda model, **kw: ke.ScoreCAM(model, mask_batch_size=4, **kw),
    "GuidedGradCAM": ke.GuidedGradCAM,
    "XGradCAM": ke.XGradCAM,
    "HiResCAM": ke.HiResCAM,
    "LayerCAM": ke.LayerCAM,
    "EigenCAM": ke.EigenCAM,
    "EigenGradCAM": ke.EigenGradCAM,
}


@pytest.mark.filterwarnings("ignore:GuidedGradCAM. the model has no plain ReLU")
@pytest.mark.parametrize("name", list(CAM_FAMILY))
def test_every_cam_method_with_targets_and_decorators(vit, x, name):
    targets = np.array([[0, 2], [1, 0], [2, 1], [0, 1]])
    explainer = CAM_FAMILY[name](vit)
    together = explainer.explain(x, targets)
    assert together.layer.startswith(AUTO_ONE_BLOCK)
    assert together.maps.shape == (4, 16, 16, 2)
    assert np.isfinite(together.maps).all() and together.maps.max() == pytest.approx(1.0)
    for column in range(2):
        alone = explainer.explain(x, targets[:, column])
        np.testing.assert_allclose(together.maps[..., column], alone.maps[..., 0], atol=1e-5)
    for decorated in (
        ke.SmoothGrad(explainer, samples=2, seed=1),
        ke.TTA(explainer, flips=("horizontal",)),
    ):
        maps = decorated.explain(x, targets).maps
        assert maps.shape == (4, 16, 16, 2) and np.isfinite(maps).all()
    both = CAM_FAMILY[name](vit, layers=["positions", "block0_norm1"]).explain(x, targets)
    assert both.layer == ("positions", "block0_norm1")
    assert both.maps.shape == (4, 16, 16, 2) and np.isfinite(both.maps).all()


def test_ablation_cam_ablates_tokens_and_weighs_them_on_the_grid(vit, x):
    targets = np.array([[0, 2], [1, 0], [2, 1], [0, 1]])
    explainer = ke.AblationCAM(vit, channel_batch_size=3)
    raw = ke.AblationCAM(vit, postprocess=None, resize=False).explain(x, targets)
    assert raw.maps.shape == (4, 4, 4, 2)  # the 4x4 patch grid
    together = explainer.explain(x, targets)
    for column in range(2):
        alone = explainer.explain(x, targets[:, column])
        np.testing.assert_allclose(together.maps[..., column], alone.maps[..., 0], atol=1e-5)
    with pytest.raises(ke.LayerError, match="not layers="):
        ke.AblationCAM(vit, layers=["positions", "block0_norm1"])


def test_a_convolution_and_a_token_layer_together(vit, x):
    layers = ["patches", "block0_norm1"]
    alone = [ke.GradCAM(vit, layer=layer).explain(x, 1).maps for layer in layers]
    together = ke.GradCAM(vit, layers=layers).explain(x, 1).maps
    mean = (alone[0] + alone[1]) / 2
    low, high = mean.min(axis=(1, 2), keepdims=True), mean.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(together, (mean - low) / (high - low), atol=1e-5)


def test_cam_on_a_pooled_transformer_reads_the_pooled_tokens(x):
    model = make_vit(extra_tokens=0)
    cam = ke.CAM(model).explain(x, [[0, 2]] * 4)
    assert cam.layer == "norm"
    gradcam = ke.GradCAM(model, layer="norm").explain(x, [[0, 2]] * 4)
    np.testing.assert_allclose(cam.maps, gradcam.maps, atol=1e-5)


def test_a_transformer_in_a_split_model(x):
    model = make_vit(extra_tokens=0)  # pooled: the last block's tokens all reach the output
    expected = ke.GradCAM(model, layer="block1_add2").explain(x, 2)
    body = keras.Model(model.input, model.get_layer("block1_add2").output)
    head_input = keras.Input(body.output.shape[1:])
    pooled = model.get_layer("gap")(model.get_layer("norm")(head_input))
    head = keras.Model(head_input, model.get_layer("dense")(pooled))
    explanation = ke.GradCAM(ke.SplitModel(body, head)).explain(x, 2)
    np.testing.assert_allclose(explanation.maps, expected.maps, atol=1e-5)
