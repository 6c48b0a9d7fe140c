"""Text models: token ids into an Embedding, explained per token on the embeddings."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tests.conftest import PositionEmbedding, fix_weights, quadrature_nodes

import keras_explainable as ke

TOKENS = 8
VOCABULARY = 30
WIDTH = 6


def _text_cnn(pooling=keras.layers.GlobalMaxPooling1D):
    ids = keras.Input((TOKENS,), dtype="int32")
    embedded = keras.layers.Embedding(VOCABULARY, WIDTH, name="embedding")(ids)
    features = keras.layers.Conv1D(5, 3, padding="same", activation="relu", name="conv")(embedded)
    outputs = keras.layers.Dense(3, name="scores")(pooling()(features))
    return fix_weights(keras.Model(ids, outputs))


def _transformer():
    ids = keras.Input((TOKENS,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, WIDTH, name="embedding")(ids)
    x = PositionEmbedding(name="positions")(x)
    h = keras.layers.MultiHeadAttention(2, 3, name="attention")(x, x)
    x = keras.layers.LayerNormalization(name="norm")(keras.layers.Add()([x, h]))
    x = keras.layers.Dense(WIDTH, activation="gelu")(x)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x))
    return fix_weights(keras.Model(ids, outputs), scale=0.3)


MODELS = {"cnn": _text_cnn, "transformer": _transformer}


@pytest.fixture(scope="module")
def ids():
    return np.random.default_rng(1).integers(1, VOCABULARY, (3, TOKENS)).astype("int32")


def _halves(model):
    """ids -> embeddings and embeddings -> scores, built here independently of the library."""
    embedding = model.get_layer("embedding")
    position = model.layers.index(embedding)
    inputs = keras.Input((TOKENS, WIDTH))
    x, tensors = inputs, {id(embedding.output): inputs}
    for layer in model.layers[position + 1 :]:
        node_inputs = layer._inbound_nodes[0].input_tensors  # test-only: the layer's inputs
        args = [tensors[id(t)] for t in node_inputs]
        x = layer(*args) if not isinstance(layer, keras.layers.Add) else layer(args)
        tensors[id(layer.output)] = x
    return embedding, keras.Model(inputs, x)


def _score_gradients(model, ids, unit):
    embedding, rest = _halves(model)
    embedded = tf.convert_to_tensor(embedding(ids))
    with tf.GradientTape() as tape:
        tape.watch(embedded)
        score = tf.reduce_sum(rest(embedded)[:, unit])
    return embedded.numpy(), tape.gradient(score, embedded).numpy(), rest


def _raw(method, model, **options):
    return method(model, postprocess=None, resize=False, verbose=0, **options)


@pytest.mark.parametrize("name", MODELS)
def test_saliency_is_the_l2_norm_of_the_embedding_gradient(name, ids):
    model = MODELS[name]()
    _, gradients, _ = _score_gradients(model, ids, 1)
    maps = _raw(ke.Saliency, model).explain(ids, 1).maps[..., 0]
    np.testing.assert_allclose(maps, np.linalg.norm(gradients, axis=-1), rtol=1e-4, atol=1e-6)
    # the user's choice of reduction wins
    largest = _raw(ke.Saliency, model, channel_reduction="max").explain(ids, 1).maps[..., 0]
    np.testing.assert_allclose(largest, np.abs(gradients).max(-1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_input_x_gradient_sums_over_the_embedding(name, ids):
    model = MODELS[name]()
    embedded, gradients, _ = _score_gradients(model, ids, 2)
    maps = _raw(ke.InputXGradient, model).explain(ids, 2).maps[..., 0]
    np.testing.assert_allclose(maps, (gradients * embedded).sum(-1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("baseline", ["zeros", ke.TokenBaseline(0)])
def test_integrated_gradients_is_complete_on_embeddings(name, baseline, ids):
    model = MODELS[name]()
    explanation = _raw(ke.IntegratedGradients, model, steps=256, baseline=baseline).explain(ids, 0)
    scores = model(ids).numpy()[:, 0]
    if baseline == "zeros":
        _, rest = _halves(model)
        reference = rest(np.zeros((len(ids), TOKENS, WIDTH), "float32")).numpy()[:, 0]
    else:
        reference = model(np.zeros_like(ids)).numpy()[:, 0]  # every token the pad token
    np.testing.assert_allclose(explanation.scores[:, 0], scores, rtol=1e-5, atol=1e-6)
    totals = explanation.maps[..., 0].sum(-1)
    np.testing.assert_allclose(totals, scores - reference, rtol=0.01, atol=1e-3)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_right", "riemann_trapezoid"])
def test_integrated_gradients_rule_equals_a_direct_quadrature(name, rule, ids):
    model = MODELS[name]()
    embedding, rest = _halves(model)
    embedded = tf.convert_to_tensor(embedding(ids))  # the baseline: zero embeddings
    total = tf.zeros_like(embedded)
    for alpha, weight in zip(*quadrature_nodes(rule, 5), strict=True):
        point = float(alpha) * embedded
        with tf.GradientTape() as tape:
            tape.watch(point)
            score = tf.reduce_sum(rest(point)[:, 2])
        total += float(weight) * tape.gradient(score, point)
    expected = tf.reduce_sum(total * embedded, axis=-1).numpy()
    explainer = ke.IntegratedGradients(
        model, steps=5, method=rule, step_batch_size=2, postprocess=None, resize=False
    )
    maps = explainer.explain(ids, 2).maps[..., 0]
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_occlusion_equals_replacing_the_token_ids(name, ids):
    model = MODELS[name]()
    replacement = 7
    occlusion = _raw(ke.Occlusion, model, window=1, baseline=ke.TokenBaseline(replacement))
    maps = occlusion.explain(ids, 1).maps[..., 0]
    scores = model(ids).numpy()[:, 1]
    expected = np.empty((len(ids), TOKENS), "float32")
    for token in range(TOKENS):
        replaced = ids.copy()
        replaced[:, token] = replacement
        expected[:, token] = scores - model(replaced).numpy()[:, 1]  # the original model
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)


def test_kernel_shap_sums_to_the_score_without_the_tokens(ids):
    model = _text_cnn()
    shap = _raw(ke.KernelSHAP, model, samples=60, baseline=ke.TokenBaseline(0))
    maps = shap.explain(ids, 0).maps[..., 0]
    assert maps.shape == (len(ids), TOKENS)  # one segment per token by default
    difference = model(ids).numpy()[:, 0] - model(np.zeros_like(ids)).numpy()[:, 0]
    np.testing.assert_allclose(maps.sum(-1), difference, rtol=1e-4, atol=1e-4)
    grouped = _raw(ke.KernelSHAP, model, samples=20, grid=(4,)).explain(ids, 0).maps[..., 0]
    np.testing.assert_array_equal(grouped[:, 0], grouped[:, 1])  # tokens in pairs


def test_gradcam_on_the_conv1d_layer(ids):
    model = _text_cnn()
    embedding, _ = _halves(model)
    embedded = tf.convert_to_tensor(embedding(ids))
    conv = model.get_layer("conv")
    head = keras.Sequential([model.layers[3], model.get_layer("scores")])
    with tf.GradientTape() as tape:
        features = conv(embedded)
        tape.watch(features)
        score = tf.reduce_sum(head(features)[:, 2])
    gradients = tape.gradient(score, features).numpy()
    expected = (features.numpy() * gradients.mean(axis=1, keepdims=True)).sum(-1)
    maps = _raw(ke.GradCAM, model, layer="conv").explain(ids, 2).maps[..., 0]
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)


def test_batches_do_not_change_the_maps(ids):
    model = _transformer()
    whole = _raw(ke.IntegratedGradients, model, steps=8).explain(ids, 0).maps
    single = _raw(ke.IntegratedGradients, model, steps=8, batch_size=1).explain(ids, 0).maps
    np.testing.assert_allclose(whole, single, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "method, options",
    [
        (ke.Saliency, {}),
        (ke.GradCAM, {}),
        (ke.CAM, {}),
        (ke.ScoreCAM, {}),
        (ke.GuidedBackprop, {}),
        (ke.FullGradient, {}),
        (ke.GradientSHAP, {"background": ke.TokenBaseline(0), "samples": 4}),
        (ke.LIME, {"samples": 30}),
        (ke.RISE, {"masks": 20, "cell_size": 2, "baseline": ke.TokenBaseline(0)}),
    ],
)
def test_methods_give_one_value_per_token(method, options, ids):
    model = _text_cnn(pooling=keras.layers.GlobalAveragePooling1D)
    maps = method(model, verbose=0, **options).explain(ids).maps
    assert maps.shape == (len(ids), TOKENS, 1)
    assert np.isfinite(maps).all()


def test_smoothgrad_adds_noise_to_the_embeddings(ids):
    model = _text_cnn()
    maps = ke.SmoothGrad(ke.Saliency(model), samples=4).explain(ids).maps
    assert maps.shape == (len(ids), TOKENS, 1)


def test_methods_that_need_images_refuse_text_models(ids):
    with pytest.raises(ke.ModelStructureError, match="text model"):
        ke.TTA(ke.GradCAM(_text_cnn()))
    with pytest.raises(ke.ModelStructureError, match="a text model"):
        ke.metrics.Deletion(steps=4)(ke.Saliency(_text_cnn()), ids)


def test_token_baseline_is_checked():
    with pytest.raises(ke.InputError, match="outside the vocabulary"):
        ke.Occlusion(_text_cnn(), baseline=ke.TokenBaseline(VOCABULARY))
    with pytest.raises(ValueError, match="token_id"):
        ke.TokenBaseline(-1)
    images = keras.Input((4, 4, 1))
    image_model = keras.Model(images, keras.layers.Dense(2)(keras.layers.Flatten()(images)))
    with pytest.raises(ke.ModelStructureError, match="text models"):
        ke.IntegratedGradients(image_model, baseline=ke.TokenBaseline(0))


def test_ids_that_feed_more_than_the_embedding_are_refused():
    ids = keras.Input((TOKENS,), dtype="int32")
    embedded = keras.layers.Embedding(VOCABULARY, WIDTH)(ids)
    counted = keras.layers.CategoryEncoding(VOCABULARY, output_mode="count")(ids)
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(embedded), counted])
    model = keras.Model(ids, keras.layers.Dense(2)(joined))
    with pytest.raises(ke.ModelStructureError, match="feed several layers"):
        ke.Saliency(model)


def test_an_embedding_that_masks_id_zero_is_explained_with_its_mask():
    """mask_zero=True: the model runs on its real ids, so Keras' mask follows them."""
    ids = keras.Input((TOKENS,), dtype="int32")
    embedding = keras.layers.Embedding(VOCABULARY, WIDTH, mask_zero=True)
    pooled = keras.layers.GlobalAveragePooling1D()(embedding(ids))  # a masked mean
    model = fix_weights(keras.Model(ids, keras.layers.Dense(2)(pooled)), seed=4)
    tokens = np.random.default_rng(5).integers(1, VOCABULARY, (3, TOKENS)).astype("int32")
    tokens[1, -3:] = 0  # padding
    explainer = ke.Saliency(model, channel_reduction="sum", absolute=False, postprocess=None)
    maps = explainer.explain(tokens, 1).maps[..., 0]
    # the masked mean's gradient: dense weights / real tokens, 0 at padding
    kernel = model.layers[-1].get_weights()[0][:, 1]
    real = (tokens != 0).sum(axis=1, keepdims=True)
    expected = np.where(tokens != 0, kernel.sum() / real, 0.0)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    assert (maps[1, -3:] == 0).all()


def test_integer_input_without_an_embedding_is_not_a_text_model():
    ids = keras.Input((TOKENS,), dtype="int32")
    counted = keras.layers.CategoryEncoding(VOCABULARY, output_mode="count")(ids)
    model = keras.Model(ids, keras.layers.Dense(2)(counted))
    explainer = ke.Saliency(model, verbose=0)
    assert explainer.exposure.embedding is None
    with pytest.raises(ke.ModelStructureError, match="integer dtype"):
        explainer.explain(np.ones((2, TOKENS), "int32"))


def test_float_inputs_are_unaffected():
    inputs = keras.Input((TOKENS, WIDTH))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    explainer = ke.Saliency(model)
    assert explainer.exposure.embedding is None
    assert explainer.exposure.data_shape == (None, TOKENS, WIDTH)


# ----------------------------------------------------------------- plot.text
def test_plot_text_colours_follow_the_values():
    pytest.importorskip("matplotlib")
    markup = str(ke.plot.text(["low", "high", "mid"], np.array([0.0, 1.0, 0.5])))
    colours = [part.split(";")[0] for part in markup.split("background-color: ")[1:]]
    darkness = [sum(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in colours]
    assert darkness[1] < darkness[2] < darkness[0]  # stronger values, darker colours


def test_plot_text_escapes_tokens_and_centres_signed_maps():
    pytest.importorskip("matplotlib")
    shown = ke.plot.text(["<b>", "&"], np.array([[-1.0], [1.0]]))
    markup = shown._repr_html_()
    assert "&lt;b&gt;" in markup and "&amp;" in markup and "<b>" not in markup
    assert "#67001f" in markup.lower() and "#053061" in markup.lower()  # RdBu_r's two ends


def test_plot_text_takes_a_batch_and_draws_a_figure():
    pytest.importorskip("matplotlib")
    tokens = [["a", "b"], ["c", "d", "e"]]
    maps = np.random.default_rng(0).random((2, 3, 1))
    figure = ke.plot.text([["a", "b", "c"], tokens[1]], maps, index=1, kind="figure", title="t")
    assert figure.axes
    with pytest.raises(ValueError, match="2 tokens for 3"):
        ke.plot.text(tokens, maps, index=0)
    with pytest.raises(ValueError, match="index=5"):
        ke.plot.text(tokens, maps, index=5)
    with pytest.raises(ValueError, match="kind"):
        ke.plot.text(tokens[1], maps[1], kind="png")
    with pytest.raises(TypeError, match="list of strings"):
        ke.plot.text("a b", maps[0])


def _shown(markup):
    """The (token, value) pairs of plot.text's HTML, in order."""
    import html
    import re

    return [
        (html.unescape(token), float(value))
        for value, token in re.findall(r'title="([-0-9.e+]+)">([^<]*)</span>', str(markup))
    ]


def test_plot_text_merges_word_pieces_and_sums_their_attributions():
    pytest.importorskip("matplotlib")
    from keras_explainable.plot.word_pieces import merge_word_pieces

    values = np.arange(1.0, 7.0)
    cases = {
        # WordPiece: "##" continues a word; special tokens are words of their own
        "wordpiece": (
            ["[CLS]", "play", "##ing", "good", "##s", "[SEP]"],
            ["[CLS]", "playing", "goods", "[SEP]"],
            [1, 5, 9, 6],
        ),
        # SentencePiece: "▁" begins a word
        "sentencepiece": (
            ["<s>", "▁the", "▁un", "believ", "able", "▁cat"],
            ["<s>", "the", "unbelievable", "cat"],
            [1, 2, 12, 6],
        ),
        # byte-level BPE: "Ġ" (a space) begins a word
        "bpe": (
            ["The", "Ġcat", "Ġsat", "ing", "!", "<|endoftext|>"],
            ["The", "cat", "sating!", "<|endoftext|>"],
            [1, 2, 12, 6],
        ),
    }
    for scheme, (pieces, words, sums) in cases.items():
        for merge in (scheme, True):  # named, or told from the marks
            merged, summed, _ = merge_word_pieces(pieces, values, merge)
            assert merged == words, (scheme, merge)
            np.testing.assert_allclose(summed, sums)
        shown = _shown(ke.plot.text(pieces, values, merge=True))
        assert [token for token, _ in shown] == words
        np.testing.assert_allclose([value for _, value in shown], sums)
    with pytest.raises(ValueError, match="merge must be True"):
        ke.plot.text(["a"], [1.0], merge="bytes")


def test_plot_text_reads_ids_through_a_tokenizer_or_a_vocabulary_without_padding():
    pytest.importorskip("matplotlib")
    keras_hub = pytest.importorskip("keras_hub")
    vocabulary = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "the",
        "film",
        "was",
        "great",
        "##ly",
    ]
    tokenizer = keras_hub.tokenizers.BertTokenizer(vocabulary=vocabulary)
    inputs = {
        "token_ids": np.array([[2, 5, 6, 7, 8, 9, 3, 0], [2, 6, 3, 0, 0, 0, 0, 0]]),
        "padding_mask": np.array([[1] * 7 + [0], [1, 1, 1, 0, 0, 0, 0, 0]]),
    }
    maps = np.arange(16.0).reshape(2, 8, 1) + 1
    by_tokenizer = _shown(ke.plot.text(inputs, maps, tokenizer=tokenizer))
    assert by_tokenizer == [
        ("[CLS]", 1.0),
        ("the", 2.0),
        ("film", 3.0),
        ("was", 4.0),
        ("great", 5.0),
        ("##ly", 6.0),
        ("[SEP]", 7.0),
    ]
    as_dict = {token: index for index, token in enumerate(vocabulary)}
    second = _shown(ke.plot.text(inputs, maps, index=1, vocabulary=as_dict))
    assert second == [("[CLS]", 9.0), ("film", 10.0), ("[SEP]", 11.0)]
    words = _shown(ke.plot.text(inputs["token_ids"][0], maps[0], vocabulary=vocabulary, merge=True))
    assert ("greatly", 11.0) in words and ("[PAD]", 8.0) in words  # no mask: all 8 shown
    with pytest.raises(TypeError, match="pass tokenizer= .* or vocabulary="):
        ke.plot.text(inputs, maps)
    with pytest.raises(ValueError, match="Token id 12 is outside the vocabulary of 10"):
        ke.plot.text(np.array([2, 12]), np.ones(2), vocabulary=vocabulary)


def test_plot_text_shows_a_continuation_and_its_per_token_matrix():
    pytest.importorskip("matplotlib")
    import re

    vocabulary = ["<pad>", "Ġthe", "Ġcat", "Ġsat", "Ġon", "Ġmat", "The"]
    prompt = np.array([[6, 2, 3, 4, 1]])
    per_token = np.arange(10.0).reshape(1, 5, 2) - 4.5  # (N, T_prompt, T_cont)
    matrix = str(ke.plot.text(prompt, per_token, vocabulary=vocabulary, continuation=[1, 5]))
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", matrix)
    assert headers == ["", "Ġthe", "Ġmat", "The", "Ġcat", "Ġsat", "Ġon", "Ġthe"]
    cells = [float(v) for v in re.findall(r'<td[^>]*title="([-0-9.e+]+)"', matrix)]
    np.testing.assert_allclose(cells, per_token[0].reshape(-1))
    # merged prompt words: rows summed
    merged = str(
        ke.plot.text(prompt, per_token, vocabulary=vocabulary, continuation=[1, 5], merge=True)
    )
    assert re.findall(r"<th[^>]*>([^<]*)</th>", merged)[:3] == ["", "the", "mat"]
    figure = ke.plot.text(
        prompt, per_token, vocabulary=vocabulary, continuation=[1, 5], kind="figure"
    )
    assert [tick.get_text() for tick in figure.axes[0].get_yticklabels()] == [
        "The",
        "Ġcat",
        "Ġsat",
        "Ġon",
        "Ġthe",
    ]
    # one summed map: the prompt coloured, the continuation after it
    summed = ke.plot.text(
        prompt, per_token.sum(-1, keepdims=True), vocabulary=vocabulary, continuation=[1, 5]
    )
    assert str(summed).count('title="continuation"') == 2
    assert ke.plot.text(
        prompt, per_token[..., :1], vocabulary=vocabulary, continuation=[1, 5], kind="figure"
    ).axes
    with pytest.raises(ValueError, match="continuation has 3 tokens for 2 maps"):
        ke.plot.text(prompt, per_token, vocabulary=vocabulary, continuation=[1, 5, 2])
