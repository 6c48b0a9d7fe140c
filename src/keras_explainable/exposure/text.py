"""Text models: token ids into an `Embedding`, explained on the embeddings.

No gradient reaches integer token ids, and perturbing an id by a fraction
means nothing. So a model whose input is integer token ids `(N, T)` feeding
one `keras.layers.Embedding` is explained at the embedding's output: the ids
are looked up, `(N, T) -> (N, T, E)`, and every method explains the model on
the embeddings as if they were its input `(N, *spatial, C)`, with the `T`
tokens as the spatial axis and the `E` embedding dimensions as the channels:
the model runs with the embedding's output replaced by them (a `Replace`
tap). Maps therefore hold one value per token, `(N, T, L)`.

Replacing token `t` of a sample by token `r` changes only its embedding row
(an embedding is a per-token lookup), so a method that shows the embedding of
token `r` where it hides a token (`keras_explainable.baselines.TokenBaseline`)
computes exactly what the model computes on the ids with the token replaced.
"""

from __future__ import annotations

from typing import Any

import attrs
import keras
import tensorflow as tf

from keras_explainable.errors import InputError, ModelStructureError
from keras_explainable.exposure.model_map import LayerCall, ModelMap
from keras_explainable.exposure.taps import Replace

__all__ = ["TokenEmbedding", "find_token_embedding"]


@attrs.define(eq=False)
class TokenEmbedding:
    """The front of a text model: token ids looked up in its `Embedding`.

    Attributes:
        call: the `Embedding` layer's call on the model's ids.
        ids_shape: the shape of the ids the model takes, batch axis included.
        ids_dtype: the dtype of the ids the model takes.
    """

    call: LayerCall
    ids_shape: tuple
    ids_dtype: str

    @property
    def layer(self) -> keras.layers.Embedding:
        """The `Embedding` layer."""
        return self.call.layer

    @property
    def tensor(self) -> Any:
        """The embedding's symbolic output `(N, T, E)`: where the explained model starts."""
        return self.call.outputs[0]

    @property
    def vocabulary_size(self) -> int:
        """The number of token ids the embedding knows (`input_dim`)."""
        return int(self.layer.input_dim)

    def embed(self, ids: tf.Tensor) -> tf.Tensor:
        """The `(N, T, E)` embeddings of `(N, T)` token ids, in inference mode.

        Example:
            >>> exposure.embedding.embed(tf.constant([[4, 8, 0]]))   # (1, 3, E)
        """
        return self.layer(tf.cast(ids, self.ids_dtype), training=False)

    def replaced(self, embeddings: tf.Tensor) -> tuple[tf.Tensor, Replace]:
        """Token ids to run the model on, and the tap that feeds it `embeddings` instead.

        The model reads its ids only through this embedding, so any ids of the
        right shape do: the tap replaces what the embedding returns.
        """
        ids = tf.zeros(tf.shape(embeddings)[:2], self.ids_dtype)
        return ids, Replace(self.call.site, value=embeddings)

    def check_token(self, token_id: int, name: str) -> None:
        """Check that `token_id` is a token of the vocabulary.

        Raises:
            InputError: `token_id` is outside `[0, vocabulary_size)`.
        """
        if not 0 <= token_id < self.vocabulary_size:
            raise InputError(
                f"{name}: token id {token_id} is outside the vocabulary of the embedding "
                f"{self.call.name!r}, ids 0 to {self.vocabulary_size - 1}."
            )


def find_token_embedding(graph: ModelMap, input_tensor: Any, outputs: Any) -> TokenEmbedding | None:
    """The `Embedding` that takes a text model's token ids, or None for other models.

    A model is a text model when its (single) input has an integer dtype and
    feeds an `Embedding` layer. Other integer inputs (images of uint8 pixels,
    say) are left as they are.

    Args:
        graph: the model's map.
        input_tensor: the map's input.
        outputs: the explained outputs.

    Returns:
        The `TokenEmbedding`, or None when the model is not a text model.

    Raises:
        ModelStructureError: the ids feed an Embedding and other layers, or the
            part after the embedding reads the ids again, or the Embedding
            masks padding (`mask_zero=True`).
    """
    if not keras.backend.is_int_dtype(input_tensor.dtype.name):
        return None
    readers = graph.direct_readers(input_tensor)
    embeddings = [call for call in readers if isinstance(call.layer, keras.layers.Embedding)]
    if not embeddings:
        return None
    call = embeddings[0]
    if getattr(call.layer, "mask_zero", False):
        raise ModelStructureError(
            f"The Embedding layer {call.name!r} has mask_zero=True. Its padding mask "
            "comes from the token ids, but text models are explained on the embeddings "
            "(no gradient reaches ids), where the mask cannot follow. Explain a copy of "
            "the model built with mask_zero=False and the same weights (its padding is "
            "then not masked, so its scores may differ)."
        )
    described = f"input of shape {graph.shape(input_tensor)} and dtype {input_tensor.dtype.name}"
    if len(readers) > 1:
        names = ", ".join(repr(reader.name) for reader in readers)
        raise ModelStructureError(
            f"The model's token ids ({described}) feed several layers ({names}); "
            "keras-explainable explains a text model whose ids feed one Embedding layer "
            "and nothing else, so that the rest of the model reads only the embeddings."
        )
    if graph.reads_besides(outputs, input_tensor, call.output):
        raise ModelStructureError(
            f"The part of the model after the Embedding layer {call.name!r} also reads "
            f"the token ids ({described}) another way; keras-explainable explains a text "
            "model on its embeddings, so the rest of the model must read only them."
        )
    return TokenEmbedding(call, graph.shape(input_tensor), input_tensor.dtype.name)
