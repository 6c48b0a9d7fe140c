"""Baselines: the reference inputs that path methods and curve metrics start from.

Integrated Gradients and GradientSHAP integrate gradients along a path from a
baseline to the input; Deletion and Insertion replace pixels by a baseline.
They take the same forms, validated here once: a name ('zeros', 'blur',
'mean', 'uniform'), a number, an array broadcastable to one input, a
callable `inputs -> baselines`, or, for a text model, a `TokenBaseline` (the
embedding of one token at every position). Each user accepts the names that
make sense for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.errors import InputError, ModelStructureError
from keras_explainable.exposure import Exposure
from keras_explainable.exposure.text import TokenEmbedding
from keras_explainable.noise import (
    UNIFORM_BASELINE,
    hash32,
    hashed_uniform,
    sample_keys,
    stream_key,
)
from keras_explainable.validators import non_negative_int

__all__ = [
    "TokenBaseline",
    "as_baseline",
    "baseline_images",
    "baseline_validator",
    "blend_with_baseline",
    "check_baseline",
    "check_baseline_shape",
    "check_input_baselines",
    "input_baselines",
    "per_input_baselines",
    "is_zero_baseline",
]


_SPECIAL_TOKENS = ("pad", "mask", "unk", "cls", "sep", "start", "end")


@attrs.frozen(init=False)
class TokenBaseline:
    """A text model's baseline: the embedding of one token at every position.

    Text models are explained on their embeddings (see
    `keras_explainable.exposure.text`). Where a method shows its baseline,
    this baseline shows the embedding of the token: a hidden token
    (Occlusion, KernelSHAP, LIME, RISE) becomes that token, exactly as if its
    id had been replaced, and a path method (IntegratedGradients,
    GradientSHAP) starts from a sentence of that token only. Padding keeps
    its own embedding whatever the baseline. A padding, mask or unknown
    token is the usual choice; `baseline="zeros"` is the all-zero embedding
    instead. Accepted wherever a method takes a baseline; on a model that
    is not a text model it is an error.

    Args:
        token: the token: its id, in `[0, vocabulary size)`; or the name of
            a special token of `tokenizer`: "pad", "mask", "unk", "cls",
            "sep", "start" or "end".
        tokenizer: a keras-hub tokenizer (or any object with
            `<name>_token_id` attributes, and `token_to_id` and
            `oov_token` for "unk") to read a named token's id from.

    Attributes:
        token_id: the token's id.

    Raises:
        ValueError: the id is not an integer >= 0, an unknown name, or the
            tokenizer has no such token.
        TypeError: a name without a tokenizer.

    Example:
        >>> ke.Occlusion(text_model, window=1, baseline=ke.TokenBaseline(0)).explain(ids)
        >>> mask = ke.TokenBaseline("mask", tokenizer=preprocessor.tokenizer)
        >>> ke.IntegratedGradients(bert, baseline=mask).explain(inputs, 1)
    """

    token_id: int

    def __init__(self, token: int | str, tokenizer: Any = None) -> None:
        if isinstance(token, str):
            token = _special_token_id(token, tokenizer)
        non_negative_int(self, attrs.fields(TokenBaseline).token_id, token)
        self.__attrs_init__(int(token))


def _special_token_id(name: str, tokenizer: Any) -> int:
    """The id of a tokenizer's special token named `name` ("pad", "mask", "unk", ...)."""
    if name not in _SPECIAL_TOKENS:
        raise ValueError(
            f"TokenBaseline: unknown token name {name!r}; use one of {_SPECIAL_TOKENS}."
        )
    if tokenizer is None:
        raise TypeError(
            f"TokenBaseline({name!r}) needs the tokenizer that knows the token: "
            f"TokenBaseline({name!r}, tokenizer=preprocessor.tokenizer), or give its id."
        )
    token_id = getattr(tokenizer, f"{name}_token_id", None)
    if token_id is None and name == "unk" and getattr(tokenizer, "oov_token", None) is not None:
        token_id = tokenizer.token_to_id(tokenizer.oov_token)
    if token_id is None:
        known = [
            other
            for other in _SPECIAL_TOKENS
            if getattr(tokenizer, f"{other}_token_id", None) is not None
        ]
        raise ValueError(
            f"TokenBaseline: the tokenizer {type(tokenizer).__name__} has no {name!r} token "
            f"(it has {known}); give the token's id instead."
        )
    return int(token_id)


def as_baseline(value: Any) -> Any:
    """Keep names, numbers and callables; turn arrays and tensors into float32 arrays.

    A dict (per-input baselines of a model with several inputs, by input
    name) has each of its values converted.
    """
    if isinstance(value, dict):
        return {key: as_baseline(part) for key, part in value.items()}
    if isinstance(value, (str, bool, int, float, np.number, TokenBaseline)) or callable(value):
        return value
    if isinstance(value, (tf.Tensor, tf.Variable)):
        value = value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return value
    if array.dtype == object or array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        return value
    return array.astype(np.float32)


def baseline_validator(
    names: Sequence[str], callables: bool = False
) -> Callable[[Any, attrs.Attribute, Any], None]:
    """An attrs validator accepting `names`, a finite number or array (and callables).

    Args:
        names: the baseline names the option accepts.
        callables: whether a callable `inputs -> baselines` is accepted.

    Returns:
        The validator, which raises `ValueError` for an unknown name or a
        non-finite value and `TypeError` for a value of another type.
    """
    names = tuple(names)
    others = ", an array, a callable" if callables else ", an array"
    forms = f"one of {names}, a number{others} or a TokenBaseline"

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, TokenBaseline):
            return
        if isinstance(value, dict):
            # Per-input baselines of a model with several inputs, by input name.
            for part in value.values():
                if isinstance(part, dict):
                    raise TypeError(f"{attribute.name} per input must not nest dicts.")
                check(instance, attribute, part)
            return
        if isinstance(value, str):
            if value not in names:
                raise ValueError(f"{attribute.name} must be {forms}; got {value!r}.")
            return
        if callables and callable(value):
            return
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number, np.ndarray)):
            raise TypeError(f"{attribute.name} must be {forms}; got {type(value).__name__}.")
        if not np.isfinite(value).all():
            raise ValueError(f"{attribute.name} must be finite (no NaN or Inf).")

    return check


def check_baseline(baseline: Any, exposure: Exposure | None, name: str = "baseline") -> None:
    """Check at construction that a validated baseline fits the explained model.

    Args:
        baseline: the baseline.
        exposure: the explainer's `Exposure` (its input shape and, for a text
            model, its embedding), or None to check a `TokenBaseline` needs one.
        name: the option's name, for error messages.

    Raises:
        InputError: an array baseline that does not broadcast to one input,
            or a `TokenBaseline` outside the vocabulary.
        ModelStructureError: a `TokenBaseline` for a model that is not a text model.

    Example:
        >>> check_baseline(self.baseline, exposure)   # in a method's `_prepare`
    """
    embedding = None if exposure is None else exposure.embedding
    if isinstance(baseline, TokenBaseline):
        if embedding is None:
            raise ModelStructureError(
                f"{name}={baseline!r} is the embedding of a token, for text models "
                "(integer token ids into an Embedding layer); this model's input is "
                "not token ids. Use a number, an array or a name instead."
            )
        embedding.check_token(baseline.token_id, name)
    elif exposure is not None and exposure.input_shape is not None:
        check_baseline_shape(baseline, exposure.input_shape[1:], name)


def check_baseline_shape(baseline: Any, sample_shape: Sequence[int | None], name: str) -> None:
    """Check that an array baseline broadcasts to one input of `sample_shape`.

    Unknown sizes (None) in `sample_shape` accept any size.

    Raises:
        InputError: the array does not broadcast to one input.
    """
    if not isinstance(baseline, np.ndarray):
        return
    shape = tuple(sample_shape)
    fits = baseline.ndim <= len(shape) and all(
        size in (1, expected) or expected is None
        for size, expected in zip(reversed(baseline.shape), reversed(shape), strict=False)
    )
    if not fits:
        readable = tuple("?" if size is None else size for size in shape)
        raise InputError(
            f"{name} of shape {baseline.shape} does not broadcast to one input of shape {readable}."
        )


def baseline_images(
    baseline: Any,
    inputs: tf.Tensor,
    *,
    blur_sigma: float = 5.0,
    seed: int = 0,
    index: Any = 0,
    name: str = "baseline",
    embedding: TokenEmbedding | None = None,
) -> tf.Tensor:
    """The `(N, *spatial, C)` baselines of a batch, inside the compiled step.

    Args:
        baseline: a validated baseline: 'zeros'; 'blur' (each input blurred
            with a Gaussian of `blur_sigma` pixels, 2-D images only); 'mean'
            (each input's mean per channel); 'uniform' (noise drawn uniformly
            between each input's minimum and maximum, a function of the seed,
            `index` and the input's values: the same in any batch); a number;
            an array broadcastable to one input; a callable
            `inputs -> baselines` of the inputs' shape; or a `TokenBaseline`
            (the embedding of its token at each of a text model's positions).
        inputs: `(N, *spatial, C)` float inputs (a text model's embeddings).
        blur_sigma: the standard deviation of 'blur' in pixels.
        seed: the integer seed of 'uniform'.
        index: the random stream of 'uniform' (a draw number).
        name: the option's name, for error messages.
        embedding: a text model's `TokenEmbedding` (`Exposure.embedding`),
            which a `TokenBaseline` needs; else None.

    Returns:
        The baselines, same shape and dtype as `inputs`.

    Raises:
        InputError: the baseline does not fit the inputs.
        ModelStructureError: a `TokenBaseline` without a text model's embedding.
    """
    if isinstance(baseline, TokenBaseline):
        if embedding is None:
            check_baseline(baseline, None, name)
        # The embedding of a sentence of this one token: exactly the rows the
        # model looks up where the ids are replaced by it.
        ids = tf.fill(tf.shape(inputs)[:-1], tf.constant(baseline.token_id, embedding.ids_dtype))
        return tf.cast(embedding.lookup(ids), inputs.dtype)
    if callable(baseline):
        images = tf.convert_to_tensor(baseline(inputs))
        if not images.shape.is_compatible_with(inputs.shape):
            raise InputError(
                f"The {name} callable returned shape {tuple(images.shape)} for inputs "
                f"of shape {tuple(inputs.shape)}; it must return one baseline per input, "
                "of the input's shape."
            )
        return tf.cast(images, inputs.dtype)
    if isinstance(baseline, str):
        if baseline == "zeros":
            return tf.zeros_like(inputs)
        if baseline == "mean":
            axes = ops.spatial_axes(inputs)
            return tf.broadcast_to(tf.reduce_mean(inputs, axes, keepdims=True), tf.shape(inputs))
        if baseline == "uniform":
            axes = list(range(1, inputs.shape.rank))
            low = tf.reduce_min(inputs, axes, keepdims=True)
            high = tf.reduce_max(inputs, axes, keepdims=True)
            keys = hash32(sample_keys(inputs) ^ stream_key(seed, index, UNIFORM_BASELINE))
            uniform = tf.cast(hashed_uniform(tf.shape(inputs), keys), inputs.dtype)
            return low + (high - low) * uniform
        if inputs.shape.rank != 4 or inputs.shape[-1] is None:
            raise InputError(
                f"{name}='blur' needs 2-D images (N, H, W, C) with a known channel "
                f"count; got inputs of shape {tuple(inputs.shape)}. Use another {name}."
            )
        return tf.cast(ops.gaussian_blur(tf.cast(inputs, tf.float32), blur_sigma), inputs.dtype)
    value = np.asarray(baseline, np.float32)
    check_baseline_shape(value, inputs.shape[1:], name)
    return tf.broadcast_to(tf.constant(value, inputs.dtype), tf.shape(inputs))


def is_zero_baseline(baseline: Any) -> bool:
    """Whether a validated baseline is all zeros by its form ('zeros' or the number 0)."""
    if isinstance(baseline, str):
        return baseline == "zeros"
    return (
        isinstance(baseline, (int, float, np.number))
        and not isinstance(baseline, bool)
        and baseline == 0
    )


def blend_with_baseline(
    inputs: tf.Tensor, baselines: tf.Tensor | None, keep: tf.Tensor
) -> tf.Tensor:
    """Copies of a batch kept where `keep` is 1 and replaced by baselines where it is 0.

    Computes `b + (x - b) * keep` (`x * keep` for zero baselines, one operation
    on the copies instead of three: perturbation methods build many of them).

    Args:
        inputs: `(N, *shape)` inputs `x`.
        baselines: `(N, *shape)` baselines `b`, or None for zeros.
        keep: weights in [0, 1] broadcastable to `(k, N, *shape)`: one mask per copy.

    Returns:
        The `(k, N, *shape)` copies.

    Example:
        >>> keep = masks[:, None, :, :, None]   # (k, 1, H, W, 1)
        >>> copies = blend_with_baseline(images, None, keep)   # (k, N, H, W, C)
    """
    if baselines is None:
        return inputs[None] * keep
    return baselines[None] + (inputs - baselines)[None] * keep


def per_input_baselines(baseline: Any, exposure: Any, name: str) -> tuple:
    """One validated baseline per input of a model with several inputs, in order.

    A dict gives each input's baseline by name (an input it does not name
    gets zeros); any other baseline is every input's. A feature vector's
    array baseline `(D,)` gets the channel axis of its view `(D, 1)`.
    """
    layout = exposure.input_layout
    if isinstance(baseline, dict):
        for key in baseline:
            layout.index(key, f"{name} key")
        chosen = [baseline.get(input_name, "zeros") for input_name in layout.names]
    else:
        chosen = [baseline] * len(layout)
    return tuple(
        part[..., None]
        if layout.is_vector(index) and isinstance(part, np.ndarray) and part.ndim
        else part
        for index, part in enumerate(chosen)
    )


def check_input_baselines(baseline: Any, exposure: Any, name: str = "baseline") -> None:
    """Check a method's baseline against the model's inputs, at construction.

    Args:
        baseline: a validated baseline, or a dict of them by input name.
        exposure: the method's `Exposure`.
        name: the option's name, for error messages.

    Raises:
        InputError: an array baseline that does not broadcast to its input,
            a dict for a single-input model, or a dict naming no input.
    """
    if not exposure.several_inputs:
        if isinstance(baseline, dict):
            raise InputError(
                f"{name} given per input (a dict) is for models with several inputs; "
                "this model has one."
            )
        check_baseline(baseline, exposure, name)
        return
    layout = exposure.input_layout
    for index, part in enumerate(per_input_baselines(baseline, exposure, name)):
        part_name = f"{name} of input {layout.names[index]!r}"
        # A token's embedding is for (single-input) text models: refused here.
        check_baseline(part, None, part_name)
        shape = layout.shapes[index][1:] + ((1,) if layout.is_vector(index) else ())
        check_baseline_shape(part, shape, part_name)


def input_baselines(baseline: Any, inputs: Any, exposure: Any, **options: Any) -> Any:
    """`baseline_images` of a batch, for one input or each of several (in the step).

    Args:
        baseline: a validated baseline, or a dict of them by input name.
        inputs: the batch, one tensor or a tuple of them (several inputs).
        exposure: the method's `Exposure`.
        **options: `baseline_images`'s options (`blur_sigma`, `seed`, `index`, `name`).

    Returns:
        The baselines, in the structure of `inputs`.
    """
    if not exposure.several_inputs:
        return baseline_images(baseline, inputs, embedding=exposure.embedding, **options)
    name = options.get("name", "baseline")
    parts = per_input_baselines(baseline, exposure, name)
    return tuple(
        baseline_images(part, tensor, **options) for part, tensor in zip(parts, inputs, strict=True)
    )
