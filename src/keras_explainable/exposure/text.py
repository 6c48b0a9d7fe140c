"""Text models: token ids into an embedding, explained on the embeddings.

No gradient reaches integer token ids, and perturbing an id by a fraction
means nothing. So a model whose token ids `(N, T)` feed an embedding is
explained at the embedding's output: the ids are looked up, `(N, T) -> (N,
T, E)`, and every method explains the model on the embeddings as if they
were its input `(N, *spatial, C)`, with the `T` tokens as the spatial axis
and the `E` embedding dimensions as the channels. Maps hold one value per
token, `(N, T, L)`.

The model itself runs as it is, on its own inputs: the token ids, and
whatever else it reads (a padding mask, segment ids). Only the embedding's
output is replaced, by a `Replace` tap on its first call (a causal LM that
reuses the embedding, reversed, as its output head calls it again: that call
is left alone), so position embeddings, segment embeddings and attention
masks keep reading the real inputs. The inputs of the batch being explained
are the *context* of each pass (`TokenEmbedding.reading`): a method that
runs `k` copies of the batch (a path, noise, perturbations) runs them with
`k` copies of the context, stacked copy-major as the library stacks every
copy.

Padding positions (where the padding mask is 0, or the id is the padding
token) always keep their own embedding, whatever a method puts there, so
they get no attribution: no gradient reaches them, and hiding them changes
nothing.

Replacing token `t` of a sample by token `r` changes only its embedding row
(an embedding is a per-token lookup), so a method that shows the embedding of
token `r` where it hides a token (`keras_explainable.baselines.TokenBaseline`)
computes exactly what the model computes on the ids with the token replaced.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import keras
import numpy as np
import tensorflow as tf

from keras_explainable.errors import InputError, ModelStructureError, TargetError
from keras_explainable.exposure.input_layout import InputLayout
from keras_explainable.exposure.model_map import LayerCall, ModelMap
from keras_explainable.exposure.taps import Replace

__all__ = ["TokenEmbedding", "find_token_embedding"]

# Input names that hold token ids, and padding masks, in keras-hub and elsewhere.
_ID_NAMES = ("token_ids", "input_ids", "ids", "tokens")


@attrs.define(eq=False)
class _Context:
    """The inputs of the batch being explained, in one thread (see `TokenEmbedding.reading`)."""

    rows: tuple | None = None
    suffix: tf.Tensor | None = None


@attrs.define(eq=False)
class TokenEmbedding:
    """How a text model's token ids reach it: its embedding, and its other inputs.

    Attributes:
        call: the embedding's (first) call on the token ids.
        ids_shape: the shape of the ids, batch axis included.
        ids_dtype: the dtype of the ids.
        layout: all the model's inputs (the ids and the others, such as a
            padding mask or segment ids).
        ids_index: the position of the ids among the model's inputs.
        mask_index: the position of the padding mask among them, or None.
        pad_token_id: the id that marks padding (besides the mask), or None.
        max_length: the longest sequence the model takes (keras-hub's
            `max_sequence_length`), or None when it says none.
    """

    call: LayerCall
    ids_shape: tuple
    ids_dtype: str
    layout: InputLayout
    ids_index: int = 0
    mask_index: int | None = None
    pad_token_id: int | None = None
    max_length: int | None = None
    _context: threading.local = attrs.field(factory=threading.local, init=False, repr=False)

    @property
    def layer(self) -> keras.layers.Embedding:
        """The embedding layer."""
        return self.call.layer

    @property
    def vocabulary_size(self) -> int:
        """The number of token ids the embedding knows (`input_dim`)."""
        return int(self.layer.input_dim)

    @property
    def several_inputs(self) -> bool:
        """Whether the model reads other inputs besides the token ids."""
        return len(self.layout) > 1

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

    def check_arrays(self, data: Any, suffix_length: int = 0) -> None:
        """Check a run's inputs, given as arrays, before any work.

        Args:
            data: the ids, or a tuple of all the model's inputs in its order.
            suffix_length: tokens a target runs after each input (a
                `Continuation`'s).

        Raises:
            InputError: an id outside the vocabulary, or a per-token input
                (a padding mask) whose shape is not the ids'.
            TargetError: the inputs and the suffix are longer than the model's
                `max_length`.
        """
        flat = [np.asarray(part) for part in tf.nest.flatten(data)]
        ids = flat[self.ids_index] if len(flat) > 1 else flat[0]
        outside = (ids < 0) | (ids >= self.vocabulary_size)
        if outside.any():
            sample = int(np.argwhere(outside)[0][0])
            raise InputError(
                f"Token id {int(ids[outside][0])} (sample {sample}) is outside the vocabulary "
                f"of the embedding {self.call.name!r}, ids 0 to {self.vocabulary_size - 1}."
            )
        for index, part in enumerate(flat):
            if index != self.ids_index and part.shape != ids.shape:
                raise InputError(
                    f"Input {self.layout.names[index]!r} has shape {part.shape}, but the token "
                    f"ids have {ids.shape}: it needs one value per token."
                )
        total = ids.shape[1] + suffix_length
        if self.max_length is not None and total > self.max_length:
            raise TargetError(
                f"The inputs' {ids.shape[1]} tokens and the target's {suffix_length} make "
                f"{total}, more than the {self.max_length} tokens the model takes."
            )

    def ids(self, data: Any) -> tf.Tensor:
        """The token ids among the inputs of a batch (one tensor, or all the inputs)."""
        flat = tf.nest.flatten(data)
        return flat[self.ids_index] if len(flat) > 1 else flat[0]

    def lookup(self, ids: tf.Tensor) -> tf.Tensor:
        """The `(N, T, E)` embeddings of `(N, T)` token ids, in inference mode."""
        return self.layer(tf.cast(ids, self.ids_dtype), training=False)

    def embed(self, data: Any) -> tf.Tensor:
        """The embeddings the methods explain, from a batch's inputs, inside the step.

        Example:
            >>> exposure.embedding.embed(tf.constant([[4, 8, 0]]))   # (1, 3, E)
        """
        return self.lookup(self.ids(data))

    def keep(self, data: Any) -> tf.Tensor | None:
        """`(N, T)` float32: 1 at the tokens of a batch's inputs, 0 at padding; None if none.

        Padding is where the padding mask is 0, or the id is `pad_token_id`.
        """
        flat = tf.nest.flatten(data)
        keep = None
        if self.mask_index is not None and len(flat) > 1:
            keep = tf.cast(tf.cast(flat[self.mask_index], tf.bool), tf.float32)
        if self.pad_token_id is not None:
            real = tf.cast(tf.not_equal(self.ids(data), self.pad_token_id), tf.float32)
            keep = real if keep is None else keep * real
        return keep

    def read_keep(self) -> tf.Tensor | None:
        """`keep` of the batch being read in this thread (see `reading`), or None."""
        rows = getattr(self._context, "rows", None)
        if rows is None:
            return None
        return self.keep(rows if len(rows) > 1 else rows[0])

    @contextlib.contextmanager
    def reading(self, data: Any, suffix: tf.Tensor | None = None) -> Iterator[None]:
        """Make a batch's inputs the context of every pass of the model in this thread.

        Args:
            data: the batch's inputs, as the step holds them (the ids, or a
                tuple of all the model's inputs in its order).
            suffix: `(N, S)` token ids to run after each sequence (a
                `Continuation` target's), or None.
        """
        previous = (getattr(self._context, "rows", None), getattr(self._context, "suffix", None))
        self._context.rows = tuple(tf.nest.flatten(data))
        self._context.suffix = suffix
        try:
            yield
        finally:
            self._context.rows, self._context.suffix = previous

    def replaced(self, embeddings: tf.Tensor) -> tuple[Any, Replace]:
        """The model's inputs for `embeddings`, and the tap that feeds them to it.

        `embeddings` hold `k` copies of the batch being read (stacked
        copy-major, `(k * N, T, E)`); the model's own inputs are the batch's
        `k` times, and the tap replaces what the embedding returns on them by
        `embeddings`, except at padding, which keeps its own. With a suffix,
        its tokens follow each sequence, with their own embeddings.

        Returns:
            `(model inputs, tap)`: the inputs to run the model on (a dict or
            a list, or the ids alone for a model without other inputs) and
            the `Replace` tap on the embedding's first call.

        Raises:
            ModelStructureError: the model reads other inputs besides the
                ids, but no batch is being read (outside an explainer's step).
        """
        rows = getattr(self._context, "rows", None)
        if rows is None:
            if self.several_inputs:
                raise ModelStructureError(
                    "This text model reads other inputs besides its token ids "
                    f"{list(self.layout.names)}; run it through an explainer, which keeps "
                    "them with each batch."
                )
            # Any ids of the right shape do: the model reads them only through the embedding.
            rows = (tf.zeros(tf.shape(embeddings)[:2], self.ids_dtype),)
        copies = _copies(rows[0], embeddings)
        tiled = [tf.tile(row, [copies, *[1] * (row.shape.rank - 1)]) for row in rows]
        keep = self.keep(tuple(tiled) if len(tiled) > 1 else tiled[0])
        values = embeddings
        if keep is not None:
            original = self.lookup(self.ids(tiled))
            values = tf.where(keep[..., None] > 0, embeddings, tf.cast(original, embeddings.dtype))
        suffix = getattr(self._context, "suffix", None)
        if suffix is not None:
            tiled, values = self._extended(tiled, values, suffix, copies)
        structure = self.layout.structure_of(tiled) if self.several_inputs else tiled[0]
        return structure, Replace(self.call.site, value=values)

    def _extended(self, tiled: list, values: tf.Tensor, suffix: tf.Tensor, copies: Any) -> tuple:
        """The inputs and embeddings with `suffix` tokens after each sequence."""
        suffix = tf.tile(tf.cast(suffix, self.ids_dtype), [copies, 1])
        length = tf.shape(suffix)[1]
        extended = []
        for index, row in enumerate(tiled):
            if index == self.ids_index:
                extended.append(tf.concat([tf.cast(row, self.ids_dtype), suffix], axis=1))
            elif index == self.mask_index:
                ones = tf.ones([tf.shape(row)[0], length], row.dtype)
                extended.append(tf.concat([row, ones], axis=1))
            else:
                # Other per-token inputs (segment ids) continue with their last value.
                last = tf.repeat(row[:, -1:], length, axis=1)
                extended.append(tf.concat([row, last], axis=1))
        appended = tf.cast(self.lookup(suffix), values.dtype)
        return extended, tf.concat([values, appended], axis=1)


def _copies(row: tf.Tensor, embeddings: tf.Tensor) -> Any:
    """How many copies of the batch `embeddings` hold (their batch over the context's)."""
    samples, total = row.shape[0], embeddings.shape[0]
    if samples is not None and total is not None:
        if total % samples:
            raise ModelStructureError(
                f"A pass of {total} embeddings does not hold whole copies of the batch of "
                f"{samples} being explained."
            )
        return total // samples
    return tf.shape(embeddings)[0] // tf.shape(row)[0]


def _keras_hub_token_embedding(model: Any) -> Any:
    """keras-hub's `model.backbone.token_embedding`, or None."""
    backbone = getattr(model, "backbone", None)
    return getattr(backbone, "token_embedding", None) or getattr(model, "token_embedding", None)


def find_token_embedding(
    graph: ModelMap,
    model: Any,
    layout: InputLayout,
    outputs: Any,
    pad_token_id: int | None = None,
) -> TokenEmbedding | None:
    """The embedding that takes a text model's token ids, or None for other models.

    A model is a text model when one of its integer inputs feeds an
    `Embedding` layer (keras-hub's `ReversibleEmbedding` included). Several
    such inputs (token ids and segment ids) are told apart by keras-hub's
    `backbone.token_embedding`, or by the input's name (`token_ids`, ...).
    The model's other inputs are read as they are: a padding mask (the input
    named `padding_mask`, or another integer or boolean input whose name
    says `mask`), segment ids. Integer inputs that feed no embedding (images
    of uint8 pixels) make no text model.

    Args:
        graph: the model's map.
        model: the model (for keras-hub's `backbone.token_embedding`).
        layout: the model's inputs.
        outputs: the explained outputs.
        pad_token_id: the id that marks padding, if the model has no mask.

    Returns:
        The `TokenEmbedding`, or None when the model is not a text model.

    Raises:
        ModelStructureError: the token ids are read by another layer too, or
            the model reads them again after the embedding, or several
            inputs feed embeddings and none is named as token ids, or
            another input is not a mask or per-token ids (an image).
    """
    candidates = []
    for index, tensor in enumerate(graph.inputs):
        if not keras.backend.is_int_dtype(tensor.dtype.name):
            continue
        readers = graph.direct_readers(tensor)
        embeddings = [call for call in readers if isinstance(call.layer, keras.layers.Embedding)]
        if embeddings:
            candidates.append((index, tensor, readers, embeddings[0]))
    if not candidates:
        return None
    known = _keras_hub_token_embedding(model)
    chosen = [entry for entry in candidates if entry[3].layer is known]
    if not chosen:
        chosen = [entry for entry in candidates if layout.names[entry[0]] in _ID_NAMES]
    if not chosen and len(candidates) == 1:
        chosen = candidates
    if len(chosen) != 1:
        names = [layout.names[entry[0]] for entry in candidates]
        raise ModelStructureError(
            f"Several inputs of the model feed embeddings {names}; name the token ids "
            f"input one of {list(_ID_NAMES)} (keras-hub models say it themselves)."
        )
    index, tensor, readers, call = chosen[0]
    described = f"input {layout.names[index]!r} of shape {graph.shape(tensor)}"
    # An embedding with mask_zero=True gives the later layers a mask of the
    # ids (Keras' own): it follows the real ids, which the model runs on.
    masked = getattr(call.layer, "mask_zero", False)
    others = [reader for reader in readers if reader is not call and not masked]
    if others:
        names = ", ".join(repr(reader.name) for reader in [call, *others])
        raise ModelStructureError(
            f"The model's token ids ({described}) feed several layers ({names}); "
            "keras-explainable explains a text model whose ids feed one embedding, so that "
            "the rest of the model reads only the embeddings."
        )
    if not masked and graph.reads_besides(outputs, tensor, call.output):
        raise ModelStructureError(
            f"The part of the model after the embedding {call.name!r} also reads the token "
            f"ids ({described}) another way; keras-explainable explains a text model on "
            "its embeddings, so the rest of the model must read the ids only through them."
        )
    ids_shape = graph.shape(tensor)
    mask_index = None
    for other, other_tensor in enumerate(graph.inputs):
        if other == index:
            continue
        shape = graph.shape(other_tensor)
        per_token = len(shape) == 2 and not other_tensor.dtype.is_floating
        if not per_token:
            raise ModelStructureError(
                f"Input {layout.names[other]!r} of shape {shape} is not a mask or per-token "
                f"ids beside the token ids {described}: text is explained in models whose "
                "other inputs are padding masks or segment ids, for now."
            )
        if "mask" in layout.names[other]:
            mask_index = other if mask_index is None else mask_index
    if pad_token_id is None and getattr(call.layer, "mask_zero", False):
        pad_token_id = 0  # the model itself masks id 0
    backbone = getattr(model, "backbone", model)
    max_length = getattr(backbone, "max_sequence_length", None)
    return TokenEmbedding(
        call,
        ids_shape,
        tensor.dtype.name,
        layout,
        index,
        mask_index,
        pad_token_id,
        max_length if isinstance(max_length, int) else None,
    )
