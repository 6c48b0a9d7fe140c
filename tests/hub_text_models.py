"""Tiny, seeded keras-hub *text* models built from configs (no presets, no downloads).

Every factory:
  * calls ``keras.utils.set_random_seed(seed)`` before building anything,
  * builds a ``Backbone`` with tiny dimensions (2 layers, hidden 32, 2 heads),
    then the task model with ``preprocessor=None``,
  * returns the task model (a functional ``keras.Model`` whose inputs are the
    backbone's input dict).  The backbone is ``model.backbone`` and the token
    embedding (a ``keras_hub.layers.ReversibleEmbedding``, i.e. a
    ``keras.layers.ReversibleEmbedding``) is ``model.backbone.token_embedding``
    for every family here.

Tested with tensorflow 2.21 / keras 3.15.1 / keras-hub 0.32.0, TF backend, CPU.

Parameters shared by all factories:
  seed             -- passed to ``keras.utils.set_random_seed``.
  vocabulary_size  -- rows of the token embedding (default 128).
  sequence_length  -- ``max_sequence_length`` for families with a learned
                      absolute position table (BERT, DistilBERT, RoBERTa,
                      XLM-R, ALBERT, GPT2) and DeBERTaV3's
                      ``max_position_embeddings``.  RoPE families (Gemma,
                      Gemma3, Llama, Qwen, Qwen3, Mistral) have no length limit
                      in the config; the argument is accepted and ignored
                      there (Mistral: used as the sliding window so that it
                      never bites for T <= sequence_length).
  num_classes      -- classifiers only (default 3).  Heads return logits
                      (``activation=None``).

``FACTORIES`` maps a family name to its factory; ``CLASSIFIERS`` and
``CAUSAL_LMS`` list the two groups; ``example_inputs(name, ...)`` gives a
deterministic input dict of the right structure.
"""

import keras
import keras_hub
import numpy as np

__all__ = [
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
    "FACTORIES",
    "CLASSIFIERS",
    "CAUSAL_LMS",
    "HAS_SEGMENT_IDS",
    "example_inputs",
]

VOCAB = 128
SEQ = 64
HIDDEN = 32
INTER = 64
LAYERS = 2
HEADS = 2


def _seed(seed):
    keras.utils.set_random_seed(seed)


def _encoder(vocabulary_size, sequence_length, **extra):
    """The shared config of the encoders: learned positions up to `sequence_length`."""
    return dict(
        vocabulary_size=vocabulary_size,
        num_layers=LAYERS,
        num_heads=HEADS,
        hidden_dim=HIDDEN,
        intermediate_dim=INTER,
        max_sequence_length=sequence_length,
        **extra,
    )


def _decoder(vocabulary_size, **extra):
    """The shared config of the RoPE decoders: 2 query heads, 1 key/value head."""
    return dict(
        vocabulary_size=vocabulary_size,
        num_layers=LAYERS,
        num_query_heads=HEADS,
        num_key_value_heads=1,
        hidden_dim=HIDDEN,
        intermediate_dim=INTER,
        **extra,
    )


def _classifier(family, seed, num_classes, config):
    """`<family>Backbone(**config)` + `<family>TextClassifier`, seeded first."""
    _seed(seed)
    backbone = getattr(keras_hub.models, f"{family}Backbone")(**config)
    task = getattr(keras_hub.models, f"{family}TextClassifier")
    return task(backbone=backbone, num_classes=num_classes, preprocessor=None)


def _causal_lm(family, seed, config):
    """`<family>Backbone(**config)` + `<family>CausalLM`, seeded first."""
    _seed(seed)
    backbone = getattr(keras_hub.models, f"{family}Backbone")(**config)
    task = getattr(keras_hub.models, f"{family}CausalLM")
    return task(backbone=backbone, preprocessor=None)


# --------------------------------------------------------------------------
# Text classifiers (encoders).  Inputs: token_ids, padding_mask
# (+ segment_ids for BERT and ALBERT).  Output: (N, num_classes) logits.
# --------------------------------------------------------------------------


def bert(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ, num_classes=3):
    """BertBackbone + BertTextClassifier (head on pooled_output = tanh dense of
    the [CLS] position 0)."""
    return _classifier(
        "Bert", seed, num_classes, _encoder(vocabulary_size, sequence_length, num_segments=2)
    )


def distil_bert(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ, num_classes=3):
    """DistilBertBackbone + DistilBertTextClassifier.  The token embedding is a
    sublayer of ``TokenAndPositionEmbedding`` (backbone layer
    ``token_and_position_embedding``); ``backbone.token_embedding`` is an
    alias to it."""
    return _classifier("DistilBert", seed, num_classes, _encoder(vocabulary_size, sequence_length))


def roberta(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ, num_classes=3):
    """RobertaBackbone + RobertaTextClassifier.  Token embedding is a sublayer
    of ``TokenAndPositionEmbedding`` (backbone layer ``embeddings``).
    Positions are 0..T-1 (not HF's padding_idx+1 offset, which is folded into
    the converted weights)."""
    return _classifier("Roberta", seed, num_classes, _encoder(vocabulary_size, sequence_length))


def albert(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ, num_classes=3):
    """AlbertBackbone + AlbertTextClassifier.

    Factorised embedding: token/position/segment embeddings have width
    ``embedding_dim`` (16) and a Dense ``embedding_projection`` maps to
    ``hidden_dim`` (32).  With ``num_groups=1`` the *same* TransformerEncoder
    (``group_0_inner_layer_0``) is called ``num_layers`` (2) times.
    """
    config = _encoder(
        vocabulary_size,
        sequence_length,
        embedding_dim=16,
        num_groups=1,
        num_inner_repetitions=1,
        num_segments=2,
    )
    return _classifier("Albert", seed, num_classes, config)


def deberta_v3(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ, num_classes=3):
    """DebertaV3Backbone + DebertaV3TextClassifier.  No absolute position
    embedding: relative (bucketed) position embeddings ``rel_embedding`` are a
    weight table whose call only reads the *batch size* of its input.
    ``bucket_size`` reduced from 256 to 16 (table is 2*bucket_size rows)."""
    return _classifier(
        "DebertaV3", seed, num_classes, _encoder(vocabulary_size, sequence_length, bucket_size=16)
    )


def xlm_roberta(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ, num_classes=3):
    """XLMRobertaBackbone (a RobertaBackbone subclass) +
    XLMRobertaTextClassifier."""
    return _classifier("XLMRoberta", seed, num_classes, _encoder(vocabulary_size, sequence_length))


# --------------------------------------------------------------------------
# Causal LMs (decoders).  Inputs: token_ids, padding_mask.
# Output: (N, T, vocabulary_size) logits from
# ``backbone.token_embedding(hidden, reverse=True)``.
# --------------------------------------------------------------------------


def gpt2(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ):
    """GPT2Backbone + GPT2CausalLM.  Learned absolute positions; tied head."""
    config = _encoder(vocabulary_size, sequence_length)
    return _causal_lm("GPT2", seed, config)


def gemma(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ):
    """GemmaBackbone + GemmaCausalLM (Gemma 1 layout; MQA with 1 KV head).
    Embedding output multiplied by sqrt(hidden_dim); RoPE; tied head."""
    del sequence_length  # RoPE: no length-dependent weights.
    return _causal_lm("Gemma", seed, _decoder(vocabulary_size, head_dim=HIDDEN // HEADS))


def gemma3(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ):
    """Gemma3Backbone (text only: ``vision_encoder=None``) + Gemma3CausalLM.
    ``image_size`` is a required argument even for text-only models (unused).
    QK-norm on by default; RoPE wavelength 1e6 for global layers."""
    del sequence_length  # RoPE: no length-dependent weights.
    config = _decoder(vocabulary_size, image_size=16, head_dim=HIDDEN // HEADS, vision_encoder=None)
    return _causal_lm("Gemma3", seed, config)


def llama(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ):
    """LlamaBackbone + LlamaCausalLM (GQA 2 query / 1 KV head).
    ``tie_word_embeddings=False`` (default): the head still calls
    ``token_embedding(x, reverse=True)`` but multiplies by the separate
    ``reverse_embeddings`` variable."""
    del sequence_length  # RoPE: no length-dependent weights.
    return _causal_lm("Llama", seed, _decoder(vocabulary_size))


def qwen(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ):
    """QwenBackbone (Qwen2 / Qwen2.5 architecture) + QwenCausalLM.
    Tied head by default (``tie_word_embeddings=True``); q/k/v have biases."""
    del sequence_length  # RoPE: no length-dependent weights.
    return _causal_lm("Qwen", seed, _decoder(vocabulary_size))


def qwen3(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ):
    """Qwen3Backbone + Qwen3CausalLM (explicit ``head_dim``; QK RMS-norm)."""
    del sequence_length  # RoPE: no length-dependent weights.
    return _causal_lm("Qwen3", seed, _decoder(vocabulary_size, head_dim=HIDDEN // HEADS))


def mistral(seed=0, vocabulary_size=VOCAB, sequence_length=SEQ):
    """MistralBackbone + MistralCausalLM.  Untied head (``tie_weights=False``
    hard-coded).  ``sliding_window`` set to ``sequence_length`` (default in
    keras-hub: 512)."""
    return _causal_lm("Mistral", seed, _decoder(vocabulary_size, sliding_window=sequence_length))


CLASSIFIERS = {
    "bert": bert,
    "distil_bert": distil_bert,
    "roberta": roberta,
    "albert": albert,
    "deberta_v3": deberta_v3,
    "xlm_roberta": xlm_roberta,
}
CAUSAL_LMS = {
    "gpt2": gpt2,
    "gemma": gemma,
    "gemma3": gemma3,
    "llama": llama,
    "qwen": qwen,
    "qwen3": qwen3,
    "mistral": mistral,
}
FACTORIES = {**CLASSIFIERS, **CAUSAL_LMS}
HAS_SEGMENT_IDS = ("bert", "albert")


def example_inputs(
    name,
    batch_size=2,
    length=16,
    vocabulary_size=VOCAB,
    num_padded=4,
    seed=0,
):
    """Deterministic input dict for family ``name``.

    ``token_ids`` int32 in [1, vocabulary_size); ``padding_mask`` int32 with
    the last ``num_padded`` positions of the *last* row right-padded (their
    ids set to 0); ``segment_ids`` (BERT/ALBERT only) 0 for the first half,
    1 for the second half of each row.
    """
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocabulary_size, (batch_size, length)).astype("int32")
    mask = np.ones((batch_size, length), "int32")
    if num_padded:
        mask[-1, length - num_padded :] = 0
        ids[-1, length - num_padded :] = 0
    x = {"token_ids": ids, "padding_mask": mask}
    if name in HAS_SEGMENT_IDS:
        seg = np.zeros((batch_size, length), "int32")
        seg[:, length // 2 :] = 1
        x["segment_ids"] = seg
    return x
