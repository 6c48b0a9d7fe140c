"""LRP: each rule against explicit numpy matrix algebra, LRP-0 = gradient x input,
conservation, BatchNormalization folding, composites' assignments, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_explainable as ke
from keras_explainable.exposure.taps import installed_layers

EPSILON = 1e-6  # Zennit's stabiliser, also the epsilon rule's default


# ------------------------------------------------------------ numpy reference
def stab(values, epsilon=EPSILON):
    return values + epsilon * np.where(values >= 0, 1.0, -1.0)


def numpy_rule(name, layer, x, relevance, low=None, high=None):
    """The input relevance of one linear layer `z = W x + b` (vectors) under rule `name`."""
    w, b, mask = layer["W"], layer["b"], layer["mask"]
    z = w @ x + b
    wp, wn = np.maximum(w, 0), np.minimum(w, 0)
    xp, xn = np.maximum(x, 0), np.minimum(x, 0)
    if name == "zero":
        return x * (w.T @ (relevance / z))
    if name == "epsilon":
        return x * (w.T @ (relevance / stab(z)))
    if name in ("zplus", "alpha1beta0", "alpha2beta1"):
        alpha, beta = (2.0, 1.0) if name == "alpha2beta1" else (1.0, 0.0)
        sp = relevance / stab(wp @ xp + np.maximum(b, 0) + wn @ xn)
        sn = relevance / stab(wn @ xp + np.minimum(b, 0) + wp @ xn)
        positive = xp * (wp.T @ sp) + xn * (wn.T @ sp)
        negative = xp * (wn.T @ sn) + xn * (wp.T @ sn)
        return alpha * positive - beta * negative
    if name == "gamma":
        gamma = 0.25
        up, down = w + gamma * wp, w + gamma * wn
        b_up, b_down = b + gamma * np.maximum(b, 0), b + gamma * np.minimum(b, 0)
        sa = np.where(z > 0, relevance / stab(up @ xp + b_up + down @ xn), 0.0)
        sb = np.where(z < 0, relevance / stab(down @ xp + b_down + up @ xn), 0.0)
        return xp * (up.T @ sa) + xn * (down.T @ sa) + xp * (down.T @ sb) + xn * (up.T @ sb)
    if name == "flat":
        return mask.T @ (relevance / stab(mask @ np.ones_like(x)))
    if name == "wsquare":
        return (w**2).T @ (relevance / stab(w**2 @ np.ones_like(x) + b**2))
    if name == "zbox":
        lo, hi = np.full_like(x, low), np.full_like(x, high)
        s = relevance / stab(w @ x - wp @ lo - wn @ hi)
        return x * (w.T @ s) - lo * (wp.T @ s) - hi * (wn.T @ s)
    raise AssertionError(name)


def numpy_lrp(layers, x, target, rules, low=None, high=None):
    """LRP through `layers` (ReLU after all but the last): forward storing inputs, then back."""
    inputs = []
    for index, layer in enumerate(layers):
        inputs.append(x)
        x = layer["W"] @ x + layer["b"]
        if index < len(layers) - 1:
            x = np.maximum(x, 0)
    relevance = np.zeros_like(x)
    relevance[target] = x[target]
    for index in reversed(range(len(layers))):
        if index < len(layers) - 1:
            # ReLU: relevance passes unchanged where it is on; the units it
            # turned off keep none (Zennit: relevance travels as its gradient).
            relevance = np.where(inputs[index + 1] > 0, relevance, 0.0)
        relevance = numpy_rule(rules[index], layers[index], inputs[index], relevance, low, high)
    return relevance


def dense_layer(dense):
    kernel, bias = (np.asarray(v, np.float64) for v in dense.get_weights())
    return {"W": kernel.T, "b": bias, "mask": np.ones_like(kernel.T)}


def conv_layer(conv, height, width):
    """A 'valid', stride-1 Conv2D as a matrix on channels-last flattened vectors."""
    kernel, bias = (np.asarray(v, np.float64) for v in conv.get_weights())

    def matrix(k):
        kh, kw, c, o = k.shape
        oh, ow = height - kh + 1, width - kw + 1
        m = np.zeros((oh * ow * o, height * width * c))
        for i in range(oh):
            for j in range(ow):
                for di in range(kh):
                    for dj in range(kw):
                        rows = slice((i * ow + j) * o, (i * ow + j + 1) * o)
                        cols = slice(
                            ((i + di) * width + j + dj) * c, ((i + di) * width + j + dj + 1) * c
                        )
                        m[rows, cols] += k[di, dj].T
        return m

    oh, ow = height - kernel.shape[0] + 1, width - kernel.shape[1] + 1
    return {
        "W": matrix(kernel),
        "b": np.tile(bias, oh * ow),
        "mask": matrix(np.ones_like(kernel)),
    }


def conv_transpose_layer(conv, height, width):
    """A 'valid' Conv2DTranspose as a matrix: input pixel q feeds output pixels q * stride + tap."""
    kernel, bias = (np.asarray(v, np.float64) for v in conv.get_weights())
    stride = conv.strides[0]

    def matrix(k):
        kh, kw, o, c = k.shape  # Keras: (rows, columns, output channels, input channels)
        oh, ow = (height - 1) * stride + kh, (width - 1) * stride + kw
        m = np.zeros((oh * ow * o, height * width * c))
        for i in range(height):
            for j in range(width):
                for di in range(kh):
                    for dj in range(kw):
                        row = (i * stride + di) * ow + j * stride + dj
                        cols = slice((i * width + j) * c, (i * width + j + 1) * c)
                        m[row * o : (row + 1) * o, cols] += k[di, dj]
        return m

    oh = (height - 1) * stride + kernel.shape[0]
    ow = (width - 1) * stride + kernel.shape[1]
    return {
        "W": matrix(kernel),
        "b": np.tile(bias, oh * ow),
        "mask": matrix(np.ones_like(kernel)),
    }


def randomise(model, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(0, scale, w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


@pytest.fixture(scope="module")
def dense_net():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(10, activation="relu", name="d1")(inputs)
    x = keras.layers.Dense(8, activation="relu", name="d2")(x)
    outputs = keras.layers.Dense(3, name="d3")(x)
    model = randomise(keras.Model(inputs, outputs), 2)
    layers = [dense_layer(model.get_layer(name)) for name in ("d1", "d2", "d3")]
    data = np.random.default_rng(2).normal(size=(2, 6)).astype("float32")
    return model, layers, ("d1", "d2", "d3"), data


@pytest.fixture(scope="module")
def conv_net():
    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(3, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(2, 2, name="c2")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, name="d")(x)
    model = randomise(keras.Model(inputs, outputs), 3)
    layers = [
        conv_layer(model.get_layer("c1"), 5, 5),
        conv_layer(model.get_layer("c2"), 3, 3),
        dense_layer(model.get_layer("d")),
    ]
    data = np.random.default_rng(4).normal(size=(2, 5, 5, 2)).astype("float32")
    return model, layers, ("c1", "c2", "d"), data


@pytest.fixture(scope="module")
def transposed_net():
    """A decoder's shape: Conv2DTranspose (stride 2, then overlapping taps), Dense."""
    inputs = keras.Input((3, 3, 2))
    x = keras.layers.Conv2DTranspose(3, 2, strides=2, activation="relu", name="t1")(inputs)
    x = keras.layers.Conv2DTranspose(2, 3, name="t2")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, name="d")(x)
    model = randomise(keras.Model(inputs, outputs), 6)
    layers = [
        conv_transpose_layer(model.get_layer("t1"), 3, 3),
        conv_transpose_layer(model.get_layer("t2"), 6, 6),
        dense_layer(model.get_layer("d")),
    ]
    data = np.random.default_rng(7).normal(size=(2, 3, 3, 2)).astype("float32")
    # The matrices are the layers: they reproduce the first layer's outputs.
    first = keras.Model(inputs, model.get_layer("t1").output)
    flat = np.maximum(layers[0]["W"] @ data[0].reshape(-1) + layers[0]["b"], 0)
    np.testing.assert_allclose(np.asarray(first(data[:1])).reshape(-1), flat, atol=1e-5)
    return model, layers, ("t1", "t2", "d"), data


# Per layer (first, hidden, output): every rule at least once; gamma and alpha-beta
# also on the first layer, whose inputs are signed.
RULE_COMBINATIONS = [
    ("gamma", "alpha1beta0", "zero"),
    ("alpha2beta1", "zplus", "gamma"),
    ("flat", "epsilon", "alpha2beta1"),
    ("wsquare", "gamma", "epsilon"),
    ("zbox", "alpha2beta1", "zplus"),
    # flat and w² on hidden and output layers, and flat everywhere
    ("epsilon", "flat", "wsquare"),
    ("zplus", "wsquare", "flat"),
    ("flat", "flat", "flat"),
]


@pytest.mark.parametrize("network", ["dense_net", "conv_net", "transposed_net"])
def test_each_rule_equals_numpy_matrix_algebra(network, request):
    model, layers, names, data = request.getfixturevalue(network)
    targets = np.array([[0, 2], [1, 0]])
    for combination in RULE_COMBINATIONS:
        explainer = ke.LRP(
            model,
            rules=dict(zip(names, combination, strict=True)),
            postprocess=None,
            channel_reduction=None,
            low=-3.0,
            high=3.0,
        )
        maps = explainer.explain(data, targets).maps.reshape(len(data), -1, targets.shape[1])
        for sample in range(len(data)):
            for column in range(targets.shape[1]):
                expected = numpy_lrp(
                    layers,
                    data[sample].reshape(-1).astype(np.float64),
                    targets[sample, column],
                    combination,
                    low=-3.0,
                    high=3.0,
                )
                assert np.abs(expected).sum() > 1e-3
                np.testing.assert_allclose(
                    maps[sample, :, column], expected, atol=1e-5, rtol=1e-4, err_msg=combination
                )


def resnet_shaped(bias=True, batch_norm=True, seed=5, depthwise=True, shift=0.0):
    """Conv stem + BN + a residual block with a skip connection + pooling + Dense."""
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.ZeroPadding2D(1, name="pad")(inputs)
    x = keras.layers.Conv2D(4, 3, use_bias=bias, name="stem")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    shortcut = x
    y = keras.layers.Conv2D(4, 3, padding="same", use_bias=bias, name="block_conv1")(x)
    if batch_norm:
        y = keras.layers.BatchNormalization(name="block_bn1")(y)
    y = keras.layers.Activation("relu", name="block_relu")(y)
    if depthwise:
        y = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=bias, name="block_dw")(y)
    y = keras.layers.SeparableConv2D(
        4, 3, padding="same", use_bias=bias, activation="relu", name="block_sep"
    )(y)
    x = keras.layers.Add(name="add")([shortcut, y])
    if batch_norm:
        x = keras.layers.BatchNormalization(name="post_bn")(x)  # after Add: not foldable
    x = keras.layers.MaxPooling2D(name="max_pool")(x)
    x = keras.layers.AveragePooling2D(2, name="avg_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(5, activation="relu", use_bias=bias, name="fc1")(x)
    outputs = keras.layers.Dense(3, activation="softmax", use_bias=bias, name="fc2")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.weights:
        if "moving_variance" in w.path:
            weights.append(rng.uniform(0.5, 1.5, w.shape))
        elif "gamma" in w.path:
            weights.append(rng.uniform(0.5, 1.5, w.shape))
        else:
            weights.append(rng.normal(shift, 0.5, w.shape))
    for variable, value in zip(model.weights, weights, strict=True):
        variable.assign(value.astype("float32"))
    return model


@pytest.fixture(scope="module")
def resnet():
    return resnet_shaped()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(6).normal(size=(3, 8, 8, 2)).astype("float32")


def test_lrp0_and_small_epsilon_equal_gradient_x_input(resnet, images):
    targets = np.array([[0, 1], [2, 0], [1, 1]])
    reference = ke.InputXGradient(resnet, postprocess=None, channel_reduction=None)
    expected = reference.explain(images, targets).maps
    for options in ({"rule": "zero"}, {"rule": "epsilon", "epsilon": 1e-9}):
        lrp = ke.LRP(resnet, postprocess=None, channel_reduction=None, **options)
        np.testing.assert_allclose(lrp.explain(images, targets).maps, expected, atol=1e-5)


def test_a_decoder_with_transposed_convolutions_and_batch_norm(images):
    """Conv2DTranspose with a BatchNormalization folded into it: LRP-0 is gradient x input."""
    inputs = keras.Input(images.shape[1:])
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="down")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="down_bn")(x))
    x = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", name="up")(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="up_bn")(x))
    x = keras.layers.Conv1DTranspose(2, 2, name="up_1d")(keras.layers.Reshape((-1, 3))(x))
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.ReLU()(x)))
    model = randomise(keras.Model(inputs, outputs), 8)
    for bn in ("down_bn", "up_bn"):  # positive variances, non-trivial statistics
        layer = model.get_layer(bn)
        layer.moving_variance.assign(np.linspace(0.5, 2.0, 4 if bn == "down_bn" else 3))
    before = [w.copy() for w in model.get_weights()]
    lrp = ke.LRP(model, rule="zero", postprocess=None, channel_reduction=None)
    assert lrp.rule_assignment()["up_bn"] == "folded into 'up'"
    assert lrp.rule_assignment()["up"] == "zero"
    targets = np.array([[0, 1], [2, 0], [1, 1]])
    reference = ke.InputXGradient(model, postprocess=None, channel_reduction=None)
    expected = reference.explain(images, targets).maps
    assert np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(lrp.explain(images, targets).maps, expected, atol=1e-5)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("rule", ["zero", "zplus", "alpha1beta0"])
def test_conservation_on_bias_free_relu_networks(rule):
    # z+ conserves where each output has a positive contribution (z+ > 0): weights
    # shifted up, positive inputs, and no 3x3 depthwise filter on sparse ReLU maps.
    model = resnet_shaped(bias=False, batch_norm=False, seed=7, depthwise=False, shift=0.2)
    data = np.random.default_rng(6).uniform(size=(3, 8, 8, 2)).astype("float32")
    explanation = ke.LRP(model, rule=rule, postprocess=None).explain(data, [[0, 2]] * 3)
    totals = explanation.maps.reshape(len(data), -1, 2).sum(axis=1)
    np.testing.assert_allclose(totals, explanation.scores, rtol=1e-5, atol=1e-5)


def test_conservation_on_conv1d_and_conv3d(images):
    for shape, conv in (((10, 2), keras.layers.Conv1D), ((4, 4, 4, 1), keras.layers.Conv3D)):
        inputs = keras.Input(shape)
        padding = "causal" if conv is keras.layers.Conv1D else "same"
        x = conv(3, 2, padding=padding, use_bias=False, activation="relu")(inputs)
        x = keras.layers.Flatten()(x)
        model = randomise(keras.Model(inputs, keras.layers.Dense(2, use_bias=False)(x)), 8)
        data = np.random.default_rng(9).normal(size=(2, *shape)).astype("float32")
        explanation = ke.LRP(model, rule="zplus", postprocess=None).explain(data, 1)
        np.testing.assert_allclose(
            explanation.maps.reshape(2, -1).sum(axis=1), explanation.scores[:, 0], rtol=1e-4
        )


def test_batch_norm_folding_keeps_outputs_and_leaves_model_unchanged(resnet, images):
    before = [w.copy() for w in resnet.get_weights()]
    outputs = np.asarray(resnet(images, training=False))
    lrp = ke.LRP(resnet, composite="epsilon_plus", postprocess=None)
    assert lrp.rule_assignment()["stem_bn"] == "folded into 'stem'"
    assert lrp.rule_assignment()["block_bn1"] == "folded into 'block_conv1'"
    scores = lrp.explain(images, [[0, 1, 2]] * 3).scores  # all logits behind the softmax
    # Logits are known up to a constant per sample: compare differences.
    np.testing.assert_allclose(
        scores - scores[:, :1], np.log(outputs) - np.log(outputs[:, :1]), atol=1e-5
    )
    for old, new in zip(before, resnet.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_array_equal(np.asarray(resnet(images, training=False)), outputs)
    assert not installed_layers()


def test_composites_assign_the_documented_rules(resnet):
    common = {
        "stem_bn": "folded into 'stem'",
        "stem_relu": "gradient",
        "block_bn1": "folded into 'block_conv1'",
        "block_relu": "gradient",
        "add": "gradient",
        "post_bn": "gradient",
        "max_pool": "gradient",
        "avg_pool": "gradient",
        "flatten": "gradient",
        "fc1": "epsilon(epsilon=1e-06)",
        "fc2": "epsilon(epsilon=1e-06)",
    }
    zplus, ab21 = "alphabeta(alpha=1.0, beta=0.0)", "alphabeta(alpha=2.0, beta=1.0)"
    gamma = "gamma(gamma=0.25)"
    convs = ("block_conv1", "block_dw", "block_sep")
    expected = {
        "epsilon_plus": {"stem": zplus, **dict.fromkeys(convs, zplus)},
        "epsilon_plus_flat": {"stem": "flat", **dict.fromkeys(convs, zplus)},
        "epsilon_gamma_box": {"stem": "zbox(low=-3.0, high=3.0)", **dict.fromkeys(convs, gamma)},
        "epsilon_alpha2_beta1": {"stem": ab21, **dict.fromkeys(convs, ab21)},
        "epsilon_alpha2_beta1_flat": {"stem": "flat", **dict.fromkeys(convs, ab21)},
    }
    for composite, rules in expected.items():
        assignment = ke.LRP(resnet, composite=composite, low=-3.0, high=3.0).rule_assignment()
        assert assignment == {"pad": "gradient", **rules, **common}, composite
    overridden = ke.LRP(
        resnet,
        composite="epsilon_plus",
        rules={"first": "wsquare", keras.layers.Dense: "zero", "block_dw": "gamma"},
    ).rule_assignment()
    assert overridden["stem"] == "wsquare"
    assert overridden["fc1"] == overridden["fc2"] == "zero"
    assert overridden["block_dw"] == gamma
    assert overridden["block_sep"] == zplus


def test_nested_model_layers_get_rules(images):
    inner = keras.Sequential(
        [keras.Input((8, 8, 2)), keras.layers.Conv2D(3, 3, activation="relu", name="inner_conv")],
        name="inner",
    )
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.GlobalAveragePooling2D()(inner(inputs))
    model = randomise(keras.Model(inputs, keras.layers.Dense(2, name="out")(x)), 10)
    lrp = ke.LRP(model, rule="zero", postprocess=None, channel_reduction=None)
    assert lrp.rule_assignment()["inner/inner_conv"] == "zero"
    # A composite layer's path gives its layers a rule.
    inside = ke.LRP(model, rule="zero", rules={"inner": "epsilon"}).rule_assignment()
    assert inside["inner/inner_conv"] == "epsilon(epsilon=1e-06)" and inside["out"] == "zero"
    reference = ke.InputXGradient(model, postprocess=None, channel_reduction=None)
    np.testing.assert_allclose(
        lrp.explain(images[:1], 1).maps, reference.explain(images[:1], 1).maps, atol=1e-6
    )


@pytest.mark.filterwarnings("ignore::keras_explainable.errors.BlankMapWarning")
def test_relu_family_activations_pass_relevance_through():
    # Bias-free LRP-0 layers conserve relevance, and ReLU6, GELU and a capped
    # ReLU layer pass it on unchanged: the input relevance sums to the score
    # (gradient x input loses what the saturated ReLU6 and capped ReLU hold).
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, activation="relu6", use_bias=False)(inputs)
    x = keras.layers.Activation("gelu")(x)
    x = keras.layers.Dense(8, use_bias=False)(x)
    x = keras.layers.ReLU(max_value=0.5)(x)
    model = randomise(keras.Model(inputs, keras.layers.Dense(2, use_bias=False)(x)), 11, 1.0)
    data = np.random.default_rng(12).normal(size=(3, 6)).astype("float32")
    lrp = ke.LRP(model, rule="zero", postprocess=None, channel_reduction=None)
    assert list(lrp.rule_assignment().values()).count("pass-through") == 2
    explanation = lrp.explain(data, [[0, 1]] * 3)
    np.testing.assert_allclose(explanation.maps.sum(axis=1), explanation.scores, rtol=1e-4)
    reference = ke.InputXGradient(model, postprocess=None, channel_reduction=None)
    gradient_x_input = reference.explain(data, [[0, 1]] * 3)
    assert not np.allclose(gradient_x_input.maps.sum(axis=1), explanation.scores, rtol=1e-2)


def unsupported_model():
    inputs = keras.Input((4, 6))
    x = keras.layers.Dense(6, name="proj")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(x))


def test_errors_name_what_is_wrong(resnet):
    model = unsupported_model()
    with pytest.raises(ke.UnsupportedLayerError, match=r"'norm' \(LayerNormalization\).*Dense"):
        ke.LRP(model, rule="epsilon")
    data = np.ones((1, 4, 6), "float32")
    for options in ({"unsupported": "gradient"}, {"rules": {"norm": "gradient"}}):
        maps = ke.LRP(model, rule="epsilon", postprocess=None, **options).explain(data, 0).maps
        assert np.isfinite(maps).all() and np.abs(maps).sum() > 0
    with pytest.raises(ke.LRPRuleError, match="Unknown LRP rule.*'epsilom'"):
        ke.LRP(resnet, rule="epsilom")
    with pytest.raises(ke.LRPRuleError, match="Unknown LRP composite 'epsilon_pluss'"):
        ke.LRP(resnet, composite="epsilon_pluss")
    with pytest.raises(ke.LRPRuleError, match="zbox rule needs.*low= and high="):
        ke.LRP(resnet, composite="epsilon_gamma_box")
    with pytest.raises(ke.LRPRuleError, match="zbox rule needs"):
        ke.LRP(resnet, rules={"first": "zbox"}, low=0.0)
    with pytest.raises(ke.LRPRuleError, match="first linear layers only; layer 'fc1'"):
        ke.LRP(resnet, rules={"fc1": "zbox"}, low=0.0, high=1.0)
    with pytest.raises(ke.LRPRuleError, match="'nope' is not 'first'"):
        ke.LRP(resnet, rules={"nope": "zero"})
    with pytest.raises(ke.LRPRuleError, match="not both"):
        ke.LRP(resnet, rule="zero", composite="epsilon_plus")
    with pytest.raises(ke.LRPRuleError, match="'add' .*cannot take the LRP rule"):
        ke.LRP(resnet, rules={"add": "epsilon"})


def test_explain_to_disk_records_the_rules(resnet, images, tmp_path):
    rules = {keras.layers.Dense: "zero", "block_dw": "gamma"}
    lrp = ke.LRP(resnet, composite="epsilon_plus", rules=rules, batch_size=2)
    streamed = lrp.explain_to_disk(images, tmp_path, [0, 1, 2])
    np.testing.assert_allclose(streamed.maps, lrp.explain(images, [0, 1, 2]).maps, atol=1e-6)
    other = ke.LRP(resnet, composite="epsilon_plus", rules={"block_dw": "gamma"}, batch_size=2)
    with pytest.raises(ke.RunMismatchError, match="rules"):
        other.explain_to_disk(images, tmp_path, [0, 1, 2])
