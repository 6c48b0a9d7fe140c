"""Token ids made readable: word pieces from a tokenizer or a vocabulary, and words.

Subword tokenizers split words into pieces and mark the boundary in the
piece itself; each family has its own mark:

- WordPiece (BERT, DistilBERT, ALBERT's "##"): a piece starting with "##"
  continues the previous word;
- SentencePiece (ALBERT, DeBERTaV3, XLM-RoBERTa, Gemma, Llama, Mistral: "▁",
  U+2581): a piece starting with "▁" begins a word;
- byte-level BPE (GPT2, RoBERTa, Qwen: "Ġ", U+0120, the byte of a space):
  a piece starting with "Ġ" begins a word.

Merging sums the attributions of a word's pieces: attributions at the
embedding are additive over positions (Integrated Gradients' sum to
`S(x) - S(baseline)` stays the same), so a word's share is its pieces' sum.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["MERGE_SCHEMES", "merge_word_pieces", "word_pieces"]

#: The marks of the merging schemes: (continues a word, begins a word).
MERGE_SCHEMES = {"wordpiece": ("##", None), "sentencepiece": (None, "▁"), "bpe": (None, "Ġ")}

# Special tokens ([CLS], <s>, <|endoftext|>, <pad>, ...) are words of their own.
_SPECIAL = re.compile(r"^(\[[A-Za-z_]+\]|<[^<>\s]+>|<\|[^|]+\|>)$")


def _vocabulary_list(tokenizer: Any, vocabulary: Any) -> list[str] | None:
    """The vocabulary as a list indexed by id, or None to ask the tokenizer per id."""
    if vocabulary is None:
        return None
    if isinstance(vocabulary, Mapping):
        table = [""] * (max(int(index) for index in vocabulary.values()) + 1)
        for token, index in vocabulary.items():
            table[int(index)] = str(token)
        return table
    if isinstance(vocabulary, str) or not isinstance(vocabulary, Sequence):
        raise TypeError(
            "vocabulary must be a list of tokens (index = id) or a dict {token: id}; "
            f"got {type(vocabulary).__name__}."
        )
    return [str(token) for token in vocabulary]


def word_pieces(ids: Any, *, tokenizer: Any = None, vocabulary: Any = None) -> list[str]:
    """The word pieces of token ids, by a keras-hub tokenizer or a vocabulary.

    Args:
        ids: `(T,)` integer token ids.
        tokenizer: a tokenizer with `id_to_token` (keras-hub's) or
            `get_vocabulary`.
        vocabulary: a list of tokens (index = id) or a dict `{token: id}`;
            used when given, before the tokenizer.

    Returns:
        One string per id, as the tokenizer writes it (subword marks kept).

    Raises:
        TypeError: neither a tokenizer nor a vocabulary, or one of the wrong kind.
        ValueError: an id outside the vocabulary.
    """
    ids = [int(index) for index in np.asarray(ids).reshape(-1)]
    table = _vocabulary_list(tokenizer, vocabulary)
    if table is None and tokenizer is not None:
        if hasattr(tokenizer, "id_to_token"):
            size = tokenizer.vocabulary_size() if hasattr(tokenizer, "vocabulary_size") else None
            for index in ids:
                if index < 0 or (size is not None and index >= size):
                    raise ValueError(
                        f"Token id {index} is outside the tokenizer's vocabulary of {size}."
                    )
            return [str(tokenizer.id_to_token(index)) for index in ids]
        if hasattr(tokenizer, "get_vocabulary"):
            table = [str(token) for token in tokenizer.get_vocabulary()]
        else:
            raise TypeError(
                "tokenizer must have id_to_token or get_vocabulary (a keras-hub tokenizer); "
                f"got {type(tokenizer).__name__}."
            )
    if table is None:
        raise TypeError(
            "These tokens are ids: pass tokenizer= (a keras-hub tokenizer) or vocabulary= "
            "(a list of tokens or a dict {token: id}) to show them as word pieces."
        )
    for index in ids:
        if not 0 <= index < len(table):
            raise ValueError(f"Token id {index} is outside the vocabulary of {len(table)}.")
    return [table[index] for index in ids]


def _scheme_of(pieces: Sequence[str]) -> str | None:
    """The merging scheme the pieces' marks show, or None (no marks)."""
    for scheme in ("wordpiece", "sentencepiece", "bpe"):
        continues, begins = MERGE_SCHEMES[scheme]
        mark = continues or begins
        if any(piece.startswith(mark) for piece in pieces if not _SPECIAL.match(piece)):
            return scheme
    return None


def merge_word_pieces(
    pieces: Sequence[str], values: np.ndarray, scheme: str | bool = True
) -> tuple[list[str], np.ndarray, list[list[int]]]:
    """Merge word pieces into words and sum their attributions.

    Args:
        pieces: `(T,)` word pieces, with the tokenizer's subword marks.
        values: `(T,)` or `(T, K)` attributions of the pieces.
        scheme: "wordpiece", "sentencepiece" or "bpe" (see the module), or
            True to tell it from the marks the pieces carry. Special tokens
            ([CLS], <s>, <|endoftext|>) are always words of their own.

    Returns:
        `(words, summed, groups)`: the words without subword marks, their
        `(W,)` or `(W, K)` summed attributions, and each word's piece positions.

    Raises:
        ValueError: an unknown scheme, or pieces and values of different lengths.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(pieces) != len(values):
        raise ValueError(f"Got {len(pieces)} word pieces for {len(values)} attributions.")
    if scheme is True:
        scheme = _scheme_of(pieces)
    elif scheme not in MERGE_SCHEMES:
        raise ValueError(
            f"merge must be True (tell the scheme from the pieces) or one of "
            f"{sorted(MERGE_SCHEMES)}; got {scheme!r}."
        )
    groups: list[list[int]] = []
    words: list[str] = []
    continues, begins = MERGE_SCHEMES.get(scheme, (None, None))
    previous_special = True
    for position, piece in enumerate(pieces):
        special = bool(_SPECIAL.match(piece))
        if continues is not None:
            joins = piece.startswith(continues) and not special
            shown = piece[len(continues) :] if joins else piece
        elif begins is not None:
            joins = not piece.startswith(begins) and not special
            shown = piece.lstrip(begins) if not special else piece
        else:
            joins, shown = False, piece
        if joins and groups and not previous_special:
            groups[-1].append(position)
            words[-1] += shown
        else:
            groups.append([position])
            words.append(shown)
        previous_special = special
    summed = np.stack([values[group].sum(axis=0) for group in groups])
    return words, summed, groups
