"""Language-model targets: the next token, and a continuation of the prompt.

A causal language model outputs `(N, T, V)` logits: at each position, the
scores of every token of the vocabulary for the next position. These targets
explain one of those scores (`NextToken`), or how likely the model makes a
whole continuation of the prompt (`Continuation`): which tokens of the prompt
made the model say this.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.errors import TargetError
from keras_explainable.targets.target import Target, describe_outputs

__all__ = ["Continuation", "NextToken"]


def _check_lm_outputs(target: Target, outputs: Any) -> int | None:
    """Check a `(N, T, V)` output; returns V (None when unknown)."""
    if outputs is None:
        return None
    if not isinstance(outputs, tuple) or len(outputs) != 3:
        raise TargetError(
            f"{type(target).__name__} needs a language model's logits (N, T, vocabulary); "
            f"the model outputs {describe_outputs(outputs)}."
        )
    return outputs[2]


def _token_ids(value: Any, name: str) -> np.ndarray:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be token ids (integers); got a bool.")
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be token ids (integers); got {array.dtype}.")
    if array.size == 0:
        raise TargetError(f"{name} is empty.")
    if np.any(array < 0):
        raise TargetError(f"{name} holds a negative token id ({int(array.min())}).")
    return array.astype(np.int64)


@attrs.frozen(init=False, eq=False)
class NextToken(Target):
    """The score a causal language model gives one token at one position.

    The model's logits `(N, T, V)` at `position` score every token for the
    next position; the target is the logit of `token_id` there, or its
    log-probability (`log_softmax` over the vocabulary) with
    `log_probs=True`. Several tokens give several maps in one call.

    Attributions cover every position of the input: a causal model's
    positions after `position` do not reach it, so they are exactly 0.

    Args:
        token_id: the token: an int, or a list of `L` ints (`L` maps per
            sample), for every sample; or an integer array `(N, L)` of `L`
            tokens per sample (`(N, 1)`: one token of its own per sample; a
            1-D array is `L` tokens for every sample).
        position: the position whose logits are read, indexed as a Python
            sequence: -1 (default) is the last position of the input, the
            one that predicts the token after it. It must not be padding
            (left-pad prompts, or give each prompt's last position).
        log_probs: explain the log-probability instead of the logit.

    Raises:
        TargetError: the model does not output `(N, T, V)` logits, a token is
            outside the vocabulary, or the position is outside the sequence
            (at `explain`, before any work).

    Example:
        >>> ke.IntegratedGradients(lm).explain(prompt, ke.targets.NextToken(paris_id))
    """

    reads_probabilities: ClassVar[bool] = False

    token_id: Any
    position: int
    log_probs: bool

    def __init__(self, token_id: Any, position: int = -1, log_probs: bool = False) -> None:
        tokens = _token_ids(token_id, "NextToken token_id")
        if tokens.ndim > 2:
            raise TypeError(
                "NextToken token_id must be an int, a list of ints, or (N, L) per sample; "
                f"got shape {tokens.shape}."
            )
        if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
            raise TypeError(f"NextToken position must be an integer; got {position!r}.")
        self.__attrs_init__(tokens, int(position), bool(log_probs))

    @property
    def count(self) -> int:
        """L: one map per token."""
        return 1 if self.token_id.ndim == 0 else int(self.token_id.shape[-1])

    def sample_data(self) -> dict[str, np.ndarray]:
        """The tokens of each sample, when each has its own."""
        return {"tokens": self.token_id} if self.token_id.ndim == 2 else {}

    def check_padding(self, keep: np.ndarray) -> None:
        """Refuse a position that is padding in some sample (see `Target.check_padding`)."""
        padded = np.flatnonzero(keep[:, self.position] == 0)
        if padded.size:
            raise TargetError(
                f"NextToken position {self.position} is padding in {padded.size} sample(s) "
                f"(first: {int(padded[0])}): its logits predict nothing. Pad the inputs on "
                "the left, or give the position of each input's last token."
            )

    def _tokens(self, outputs: tf.Tensor, data: dict[str, tf.Tensor]) -> tf.Tensor:
        if "tokens" in data:
            return tf.cast(data["tokens"], tf.int64)
        tokens = tf.constant(np.atleast_1d(self.token_id))
        return tf.tile(tokens[None], tf.stack([tf.shape(outputs)[0], 1]))

    def check(self, outputs: Any, count: int | None) -> None:
        """Check the outputs and counts before any work (see `Target.check`)."""
        if self.token_id.ndim == 2:
            self._check_count(self.token_id, count, "token lists")
        vocabulary = _check_lm_outputs(self, outputs)
        length = outputs[1] if outputs is not None else None
        if length is not None and not -length <= self.position < length:
            raise TargetError(
                f"NextToken position {self.position} is outside the sequence of {length} positions."
            )
        if vocabulary is not None and int(self.token_id.max()) >= vocabulary:
            raise TargetError(
                f"NextToken token {int(self.token_id.max())} is outside the vocabulary of "
                f"{vocabulary} tokens."
            )

    def _positions(self, outputs: tf.Tensor) -> tf.Tensor:
        logits = outputs[:, self.position]
        logits = tf.cast(logits, tf.float32)
        return tf.nn.log_softmax(logits, axis=-1) if self.log_probs else logits

    def scores(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, L)` scores of a batch (see `Target.scores`)."""
        return tf.gather(self._positions(outputs), self._tokens(outputs, data), batch_dims=1)

    def units(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, L)` the explained token ids."""
        return self._tokens(outputs, data)


@attrs.frozen(init=False, eq=False)
class Continuation(Target):
    """How likely a causal language model makes a continuation of the prompt.

    The model runs once on the prompt followed by the continuation
    (teacher forcing); the score is the sum of the log-probabilities of the
    continuation's tokens, each read at the position before it. Attributions
    cover the prompt's positions only: maps `(N, T_prompt, 1)`, or with
    `per_token=True` one map per continuation token, `(N, T_prompt, T_cont)`
    (token `j`'s log-probability, which also depends on the continuation
    tokens before it: those are held fixed).

    The continuation follows each prompt's last position, so prompts with
    padding must be padded on the left.

    Args:
        token_ids: the continuation: `(T_cont,)` token ids for every prompt,
            or `(N, T_cont)` one per prompt.
        per_token: one map per continuation token instead of their sum.

    Raises:
        TargetError: the model does not output `(N, T, V)` logits, a token is
            outside the vocabulary, or a continuation per prompt does not
            match the number of prompts (at `explain`, before any work).
        TypeError: the ids are not integers.

    Example:
        >>> answer = tokenizer(" Paris")   # the continuation's ids
        >>> ke.IntegratedGradients(lm).explain(prompts, ke.targets.Continuation(answer))
    """

    reads_probabilities: ClassVar[bool] = False

    token_ids: np.ndarray
    per_token: bool

    def __init__(self, token_ids: Any, per_token: bool = False) -> None:
        tokens = _token_ids(token_ids, "Continuation token_ids")
        if tokens.ndim not in (1, 2):
            raise TypeError(
                "Continuation token_ids must be (T_cont,) for every prompt or (N, T_cont) one "
                f"per prompt; got shape {tokens.shape}."
            )
        self.__attrs_init__(tokens, bool(per_token))

    @property
    def length(self) -> int:
        """T_cont: the continuation's number of tokens."""
        return int(self.token_ids.shape[-1])

    @property
    def suffix_length(self) -> int:
        """The continuation's length: the tokens run after each prompt."""
        return self.length

    @property
    def count(self) -> int:
        """L: 1, or one per continuation token with `per_token`."""
        return self.length if self.per_token else 1

    def sample_data(self) -> dict[str, np.ndarray]:
        """The continuation of each prompt, when each has its own."""
        return {"continuation": self.token_ids} if self.token_ids.ndim == 2 else {}

    def check(self, outputs: Any, count: int | None) -> None:
        """Check the outputs and counts before any work (see `Target.check`)."""
        if self.token_ids.ndim == 2:
            self._check_count(self.token_ids, count, "continuations")
        vocabulary = _check_lm_outputs(self, outputs)
        if vocabulary is not None and int(self.token_ids.max()) >= vocabulary:
            raise TargetError(
                f"Continuation token {int(self.token_ids.max())} is outside the vocabulary of "
                f"{vocabulary} tokens."
            )

    def check_padding(self, keep: np.ndarray) -> None:
        """Refuse prompts padded on the right (see `Target.check_padding`)."""
        padded = np.flatnonzero(keep[:, -1] == 0)
        if padded.size:
            raise TargetError(
                f"{padded.size} prompt(s) (first: {int(padded[0])}) end in padding: the "
                "continuation follows each prompt's last position, so pad prompts on the left."
            )

    def input_suffix(self, samples: tf.Tensor, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(samples, T_cont)` the tokens run after each prompt (see `Target.input_suffix`)."""
        return self.suffix_for(samples, data)

    def suffix_for(self, samples: tf.Tensor, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(samples, T_cont)` the continuation of each of `samples` prompts."""
        if "continuation" in data:
            return tf.cast(data["continuation"], tf.int64)
        tokens = tf.constant(self.token_ids)
        return tf.tile(tokens[None], tf.stack([samples, 1]))

    def scores(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, L)` log-probabilities of the continuation (see `Target.scores`)."""
        logits = tf.cast(outputs, tf.float32)
        length = self.length
        total = tf.shape(logits)[1]
        # The logits at position p score the token at p + 1: the continuation's
        # tokens are read at the last prompt position and those after it.
        predicting = logits[:, total - length - 1 : total - 1]
        log_probs = tf.nn.log_softmax(predicting, axis=-1)
        tokens = self.suffix_for(tf.shape(logits)[0], data)
        per_token = tf.gather(log_probs, tokens, axis=-1, batch_dims=2)
        if self.per_token:
            return per_token
        return tf.reduce_sum(per_token, axis=1, keepdims=True)

    def units(self, outputs: Any, data: dict[str, tf.Tensor]) -> tf.Tensor:
        """`(n, L)` the continuation's tokens (with `per_token`), else -1."""
        samples = tf.shape(outputs)[0]
        if self.per_token:
            return self.suffix_for(samples, data)
        return -tf.ones(tf.stack([samples, 1]), tf.int64)
