"""Language models: text classifiers and causal LMs, explained token by token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights

pytestmark = pytest.mark.filterwarnings("ignore::keras_explainable.errors.BlankMapWarning")

VOCABULARY, WIDTH, LENGTH = 12, 4, 6


# ------------------------------------------------------ a linear text model
class MaskedSum(keras.layers.Layer):
    """The sum of the token vectors where the padding mask is 1."""

    def call(self, vectors, mask):
        return keras.ops.sum(vectors * keras.ops.cast(mask, vectors.dtype)[..., None], axis=1)


def linear_text_model(seed=0):
    """score_k = sum over real tokens t of embedding(id_t) . w_k: exactly additive."""
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    mask = keras.Input((None,), dtype="int32", name="padding_mask")
    vectors = keras.layers.Embedding(VOCABULARY, WIDTH, name="token_embedding")(ids)
    pooled = MaskedSum(name="masked_sum")(vectors, mask)
    outputs = keras.layers.Dense(2, use_bias=False, name="scores")(pooled)
    return fix_weights(keras.Model({"token_ids": ids, "padding_mask": mask}, outputs), seed)


def batch(rows, length=LENGTH):
    """Token ids right-padded with 0 to `length`, and their padding mask."""
    ids = np.zeros((len(rows), length), "int32")
    mask = np.zeros((len(rows), length), "int32")
    for index, row in enumerate(rows):
        ids[index, : len(row)] = row
        mask[index, : len(row)] = 1
    return {"token_ids": ids, "padding_mask": mask}


ROWS = [[3, 5, 7, 1], [2, 2, 9, 4, 6, 11], [8, 10]]


def contributions(model, inputs, unit=1):
    """Each real token's exact contribution embedding(id) . w (0 at padding)."""
    table = model.get_layer("token_embedding").get_weights()[0]
    kernel = model.get_layer("scores").get_weights()[0][:, unit]
    return (table[inputs["token_ids"]] @ kernel) * inputs["padding_mask"]


@pytest.fixture(scope="module")
def linear():
    return linear_text_model()


def test_the_linear_model_is_explained_exactly_token_by_token(linear):
    inputs = batch(ROWS)
    expected = contributions(linear, inputs)
    exact = {"postprocess": None}
    methods = {
        "InputXGradient": ke.InputXGradient(linear, **exact),
        "IntegratedGradients": ke.IntegratedGradients(linear, steps=4, **exact),
        "Occlusion": ke.Occlusion(linear, window=1, **exact),
        "KernelSHAP": ke.KernelSHAP(linear, samples=64, seed=0, **exact),
    }
    for name, explainer in methods.items():
        explanation = explainer.explain(inputs, 1)
        assert explanation.maps.shape == (3, LENGTH, 1), name
        np.testing.assert_allclose(
            explanation.maps[..., 0], expected, rtol=1e-4, atol=1e-5, err_msg=name
        )
        # padding gets exactly 0
        assert (explanation.maps[inputs["padding_mask"] == 0] == 0).all(), name


def test_results_do_not_depend_on_how_much_padding_a_batch_has(linear):
    short, long = batch(ROWS, LENGTH), batch(ROWS, LENGTH + 5)
    for explainer in (
        ke.Saliency(linear, postprocess=None),
        ke.IntegratedGradients(linear, steps=8, postprocess=None),
        ke.Occlusion(linear, window=1, postprocess=None),
        ke.KernelSHAP(linear, samples=64, seed=0, postprocess=None),
    ):
        a, b = explainer.explain(short, 0), explainer.explain(long, 0)
        np.testing.assert_allclose(a.maps, b.maps[:, :LENGTH], rtol=1e-5, atol=1e-6)
        assert (b.maps[:, LENGTH:] == 0).all()
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_a_pad_token_id_marks_padding_without_a_mask():
    ids = keras.Input((LENGTH,), dtype="int32")
    vectors = keras.layers.Embedding(VOCABULARY, WIDTH)(ids)
    model = fix_weights(keras.Model(ids, keras.layers.Dense(2)(keras.layers.Flatten()(vectors))))
    tokens = batch(ROWS)["token_ids"]
    plain = ke.Saliency(model, postprocess=None).explain(tokens, 0).maps
    padded = ke.Saliency(model, postprocess=None, pad_token_id=0).explain(tokens, 0).maps
    assert (plain[tokens == 0] != 0).any()  # without it, id 0 is a token like any other
    assert (padded[tokens == 0] == 0).all()
    np.testing.assert_allclose(padded[tokens != 0], plain[tokens != 0], rtol=1e-6)


def test_token_baselines_move_every_path_method_to_that_token(linear):
    inputs = batch(ROWS)
    table = linear.get_layer("token_embedding").get_weights()[0]
    kernel = linear.get_layer("scores").get_weights()[0][:, 1]
    # relative to token 5's embedding: (embedding(id) - embedding(5)) . w at real tokens
    expected = ((table[inputs["token_ids"]] - table[5]) @ kernel) * inputs["padding_mask"]
    token = ke.TokenBaseline(5)
    for explainer in (
        ke.IntegratedGradients(linear, steps=4, baseline=token, postprocess=None),
        ke.GradientSHAP(linear, background=token, samples=8, seed=0, postprocess=None),
        ke.Occlusion(linear, window=1, baseline=token, postprocess=None),
        ke.KernelSHAP(linear, samples=64, seed=0, baseline=token, postprocess=None),
    ):
        maps = explainer.explain(inputs, 1).maps[..., 0]
        np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)


def test_word_groups_are_the_segments_of_kernel_shap_and_lime(linear):
    inputs = batch(ROWS)
    groups = np.array([[0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 2, 3], [0, 0, 1, 1, 1, 1]])
    each = contributions(linear, inputs)
    # a group's Shapley value is the sum of its tokens' contributions, on every member;
    # padding (the last two tokens of sample 0, four of sample 2) belongs to no group
    expected = np.zeros_like(each)
    for row in range(3):
        for label in np.unique(groups[row]):
            members = groups[row] == label
            expected[row, members] = each[row, members].sum()
    expected *= inputs["padding_mask"]
    shap = ke.KernelSHAP(linear, segments=groups, samples=64, seed=0, postprocess=None)
    np.testing.assert_allclose(shap.explain(inputs, 1).maps[..., 0], expected, atol=1e-4)
    lime = ke.LIME(linear, segments=groups, samples=256, seed=0, postprocess=None)
    maps = lime.explain(inputs, 1).maps[..., 0]
    assert (maps[inputs["padding_mask"] == 0] == 0).all()
    for row in (0, 1):  # LIME orders the groups as their true effects (row 2 has one)
        real = inputs["padding_mask"][row] == 1
        assert np.corrcoef(maps[row, real], expected[row, real])[0, 1] > 0.95


def test_a_text_step_is_traced_for_its_batch_size_then_for_any(linear):
    inputs = batch(ROWS)
    explainer = ke.IntegratedGradients(linear, steps=4, postprocess=None)
    reference = explainer.explain(inputs, 1).maps
    assert explainer.trace_count == 1  # 3 samples: one batch of a fixed size
    two = {name: value[:2] for name, value in inputs.items()}
    np.testing.assert_allclose(explainer.explain(two, 1).maps, reference[:2], atol=1e-6)
    assert explainer.trace_count == 2  # another size: traced once more, for any size
    for rows in (1, 3, 2):
        part = {name: value[:rows] for name, value in inputs.items()}
        np.testing.assert_allclose(explainer.explain(part, 1).maps, reference[:rows], atol=1e-6)
    assert explainer.trace_count == 2
    # batches of 2 for 3 samples (2 and 1): traced for any size from the start
    uneven = ke.IntegratedGradients(linear, steps=4, postprocess=None, batch_size=2)
    np.testing.assert_allclose(uneven.explain(inputs, 1).maps, reference, atol=1e-6)
    assert uneven.trace_count == 1


# ------------------------------------------------------------ keras-hub models
@pytest.fixture(scope="module")
def hub_text():
    pytest.importorskip("keras_hub")
    import hub_text_models

    return hub_text_models


_BUILT: dict[str, keras.Model] = {}


def built(hub_text, family):
    if family not in _BUILT:
        _BUILT[family] = hub_text.FACTORIES[family]()
    return _BUILT[family]


def inputs_of(hub_text, family, length=10, padded=3, batch_size=3):
    return hub_text.example_inputs(
        family, batch_size=batch_size, length=length, num_padded=padded, seed=4
    )


def _embedding_gradient(model, inputs, score):
    """d score / d (the token embedding's output), intercepted by the test itself."""
    layer = model.backbone.token_embedding
    own, held = layer.call, {}

    def call(*args, **kwargs):
        output = own(*args, **kwargs)
        if "embeddings" not in held:  # the lookup, not a reversed head call
            tape.watch(output)
            held["embeddings"] = output
        return output

    layer.call = call
    try:
        with tf.GradientTape() as tape:
            value = score(model({k: tf.constant(v) for k, v in inputs.items()}, training=False))
    finally:
        del layer.call
    return held["embeddings"].numpy(), tape.gradient(value, held["embeddings"]).numpy()


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_integrated_gradients_on_the_embeddings_adds_up(hub_text, family):
    model = built(hub_text, family)
    inputs = inputs_of(hub_text, family)
    target = 1 if family == "bert" else ke.targets.NextToken([5, 9], position=6)
    explainer = ke.IntegratedGradients(model, steps=32, postprocess=None)
    explanation = explainer.explain(inputs, target)
    # the scores at the baseline: every token's embedding 0, by hand
    zeros = {k: v.copy() for k, v in inputs.items()}
    layer = model.backbone.token_embedding
    own = layer.call

    def zero(*args, **kwargs):
        output = own(*args, **kwargs)
        return output * 0 if kwargs.get("reverse") is not True else output

    layer.call = zero
    try:
        outputs = model({k: tf.constant(v) for k, v in zeros.items()}, training=False)
    finally:
        del layer.call
    if family == "bert":
        at_baseline = outputs.numpy()[:, [1]]
    else:
        at_baseline = outputs.numpy()[:, 6][:, [5, 9]]
    gap = explanation.scores - at_baseline
    sums = explanation.maps.sum(axis=1)
    np.testing.assert_allclose(sums, gap, rtol=0.01, atol=1e-3 * np.abs(gap).max())


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_occlusion_equals_replacing_each_token_and_rerunning_the_model(hub_text, family):
    model = built(hub_text, family)
    inputs = inputs_of(hub_text, family, length=8, padded=2)
    pad = ke.TokenBaseline(0)
    if family == "bert":
        target, read = 2, lambda outputs: outputs[:, 2]
    else:
        target, read = ke.targets.NextToken(7, position=5), lambda outputs: outputs[:, 5, 7]
    maps = ke.Occlusion(model, window=1, baseline=pad, postprocess=None).explain(inputs, target)
    clean = read(model(inputs, training=False).numpy())
    expected = np.zeros((3, 8))
    for position in range(8):
        hidden = {k: v.copy() for k, v in inputs.items()}
        hidden["token_ids"][:, position] = 0  # positions and masks intact
        drop = clean - read(model(hidden, training=False).numpy())
        expected[:, position] = drop * inputs["padding_mask"][:, position]
    np.testing.assert_allclose(maps.maps[..., 0], expected, rtol=1e-4, atol=1e-5)
    assert np.abs(expected).max() > 1e-4


def test_next_token_gradients_equal_a_tape_gradient_at_the_token_embedding(hub_text):
    model = built(hub_text, "gpt2")
    inputs = inputs_of(hub_text, "gpt2", length=9, padded=2)
    explanation = ke.Saliency(
        model, channel_reduction=None, absolute=False, postprocess=None
    ).explain(inputs, ke.targets.NextToken(11, position=4, log_probs=True))
    _, gradients = _embedding_gradient(
        model, inputs, lambda outputs: tf.reduce_sum(tf.nn.log_softmax(outputs[:, 4])[:, 11])
    )
    gradients = gradients * inputs["padding_mask"][..., None]
    np.testing.assert_allclose(explanation.maps[..., 0], gradients, rtol=1e-4, atol=1e-6)
    # a causal model: positions after 4 do not reach position 4's logits
    assert (explanation.maps[:, 5:] == 0).all()
    assert (explanation.targets == 11).all()


def test_continuation_is_the_sum_of_log_softmax_values_of_its_tokens(hub_text):
    model = built(hub_text, "gpt2")
    prompt = inputs_of(hub_text, "gpt2", length=6, padded=0, batch_size=2)
    continuation = np.array([[3, 8, 1], [5, 5, 2]])
    whole = {
        "token_ids": np.concatenate([prompt["token_ids"], continuation], axis=1),
        "padding_mask": np.ones((2, 9), "int32"),
    }
    log_probs = tf.nn.log_softmax(model(whole, training=False)).numpy()
    per_token = np.stack(
        [log_probs[np.arange(2), 5 + j, continuation[:, j]] for j in range(3)], axis=1
    )
    summed = ke.Saliency(model).explain(prompt, ke.targets.Continuation(continuation))
    np.testing.assert_allclose(summed.scores[:, 0], per_token.sum(axis=1), rtol=1e-5)
    assert summed.maps.shape == (2, 6, 1)  # the prompt's positions only
    each = ke.Saliency(model).explain(prompt, ke.targets.Continuation(continuation, per_token=True))
    np.testing.assert_allclose(each.scores, per_token, rtol=1e-5)
    np.testing.assert_array_equal(each.targets, continuation)
    assert each.maps.shape == (2, 6, 3)
    # one continuation for every prompt
    shared = ke.Saliency(model).explain(prompt, ke.targets.Continuation([3, 8, 1]))
    np.testing.assert_allclose(shared.scores[0, 0], per_token[0].sum(), rtol=1e-5)


def test_bad_inputs_and_targets_are_refused_before_any_work(hub_text):
    model = built(hub_text, "gpt2")
    inputs = inputs_of(hub_text, "gpt2", length=8, padded=2)
    explainer = ke.Saliency(model)
    outside = {k: v.copy() for k, v in inputs.items()}
    outside["token_ids"][1, 2] = 500
    with pytest.raises(ke.InputError, match=r"Token id 500 \(sample 1\) is outside the vocabulary"):
        explainer.explain(outside, ke.targets.NextToken(3, position=2))
    short_mask = {**inputs, "padding_mask": inputs["padding_mask"][:, :5]}
    with pytest.raises(ke.InputError, match="'padding_mask' has shape .*one value per token"):
        explainer.explain(short_mask, ke.targets.NextToken(3, position=2))
    with pytest.raises(ke.TargetError, match="position -1 is padding in 1 sample"):
        explainer.explain(inputs, ke.targets.NextToken(3))
    with pytest.raises(ke.TargetError, match="end in padding.*pad prompts on the left"):
        explainer.explain(inputs, ke.targets.Continuation([1, 2]))
    left = {k: v[:, ::-1].copy() for k, v in inputs.items()}
    too_long = ke.targets.Continuation(np.ones(60, "int64"))
    with pytest.raises(
        ke.TargetError, match="8 tokens and the target's 60 make 68, more than the 64"
    ):
        explainer.explain(left, too_long)
    with pytest.raises(ke.TargetError, match="outside the vocabulary of 128"):
        explainer.explain(left, ke.targets.Continuation([1, 200]))
    with pytest.raises(ke.TargetError, match="NextToken.*language model"):
        explainer.explain(left, 3)
    assert explainer.trace_count == 0


def test_token_baselines_by_name_from_a_tokenizer(hub_text):
    import keras_hub

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
    tokenizer = keras_hub.tokenizers.BertTokenizer(vocabulary=vocabulary)
    assert ke.TokenBaseline("mask", tokenizer=tokenizer).token_id == 4
    assert ke.TokenBaseline("pad", tokenizer=tokenizer).token_id == 0
    assert ke.TokenBaseline("unk", tokenizer=tokenizer).token_id == 1
    with pytest.raises(TypeError, match="needs the tokenizer"):
        ke.TokenBaseline("mask")
    with pytest.raises(ValueError, match="unknown token name 'eos'"):
        ke.TokenBaseline("eos", tokenizer=tokenizer)
    # the mask token's embedding fills the hidden tokens: as replacing the ids by hand
    model = built(hub_text, "bert")
    inputs = inputs_of(hub_text, "bert", length=6, padded=0, batch_size=2)
    mask = ke.TokenBaseline("mask", tokenizer=tokenizer)
    maps = ke.Occlusion(model, window=6, baseline=mask, postprocess=None).explain(inputs, 0).maps
    hidden = {**inputs, "token_ids": np.full_like(inputs["token_ids"], 4)}
    drop = model(inputs, training=False).numpy()[:, 0] - model(hidden, training=False).numpy()[:, 0]
    np.testing.assert_allclose(maps[..., 0], np.repeat(drop[:, None], 6, axis=1), rtol=1e-4)


@pytest.mark.parametrize(
    "family",
    [
        "bert",
        "distil_bert",
        "roberta",
        "albert",
        "deberta_v3",
        "xlm_roberta",
        "gpt2",
        "gemma",
        "gemma3",
        "llama",
        "qwen",
        "qwen3",
        "mistral",
    ],
)
def test_every_family_is_explained_token_by_token(hub_text, family):
    model = built(hub_text, family)
    inputs = inputs_of(hub_text, family, length=8, padded=3)
    causal = family in hub_text.CAUSAL_LMS
    if causal:
        # right-padded: each prompt's own last position predicts its next token
        target = ke.targets.NextToken([4, 9], position=4)
        expected = model(inputs, training=False).numpy()[:, 4][:, [4, 9]]
    else:
        target = np.array([[0, 2]] * 3)
        expected = model(inputs, training=False).numpy()[:, [0, 2]]
    for explainer in (
        ke.Saliency(model),
        ke.IntegratedGradients(model, steps=4),
        ke.Occlusion(model, window=1),
        ke.GradCAM(model),
    ):
        explanation = explainer.explain(inputs, target)
        assert explanation.maps.shape == (3, 8, 2)
        np.testing.assert_allclose(explanation.scores, expected, rtol=1e-4, atol=1e-5)
        assert (explanation.maps[inputs["padding_mask"] == 0] == 0).all()
        assert np.isfinite(explanation.maps).all()
        if causal and not isinstance(explainer, ke.GradCAM):
            assert (explanation.maps[:, 5:] == 0).all()  # after the read position
    layer = ke.GradCAM(model).exposure.layers[0]
    assert layer.reason == "auto: input of the last attention layer"


def test_batches_datasets_and_decorators_agree(hub_text):
    model = built(hub_text, "bert")
    inputs = inputs_of(hub_text, "bert", length=7, padded=2, batch_size=5)
    labels = np.array([0, 1, 2, 1, 0])
    explainer = ke.IntegratedGradients(model, steps=8)
    reference = explainer.explain(inputs, labels)
    one = ke.IntegratedGradients(model, steps=8, batch_size=1).explain(inputs, labels)
    np.testing.assert_allclose(one.maps, reference.maps, atol=1e-5)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(2)
    np.testing.assert_allclose(explainer.explain(dataset).maps, reference.maps, atol=1e-5)
    as_tuple = tuple(inputs[name] for name in explainer.exposure.input_layout.names)
    np.testing.assert_allclose(explainer.explain(as_tuple, labels).maps, reference.maps, atol=1e-6)
    smooth = ke.SmoothGrad(ke.Saliency(model), samples=3, seed=2)
    maps = smooth.explain(inputs, labels).maps
    assert (maps[inputs["padding_mask"] == 0] == 0).all() and np.isfinite(maps).all()
    np.testing.assert_allclose(
        maps,
        ke.SmoothGrad(ke.Saliency(model, batch_size=2), samples=3, seed=2)
        .explain(inputs, labels)
        .maps,
        atol=1e-5,
    )
    with pytest.raises(ke.ModelStructureError, match="text model"):
        ke.TTA(ke.Saliency(model))


def test_mirrored_strategy_equals_one_device(hub_text):
    script = Path(__file__).parent / "scripts" / "language_mirrored.py"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" ok") == 5
