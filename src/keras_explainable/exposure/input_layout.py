"""The inputs a model takes: names, shapes, dtypes, and how methods view them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.errors import InputError, did_you_mean

__all__ = ["InputLayout"]


@attrs.frozen
class InputLayout:
    """The inputs a model takes: their names, shapes, dtypes and structure.

    Inside a compiled step the inputs of a model with several inputs travel
    as a tuple in this layout's order; a feature vector `(N, D)` (an input of
    rank 2) is read as `(N, D, 1)`, a sequence of `D` positions with one
    channel, so that every method's maths (channel reductions, windows,
    segments, resizing) applies to it unchanged, and its map has one value
    per feature, `(N, D, L)`. `model_inputs` turns that view back into what
    the model takes.

    Attributes:
        names: the inputs' names (a functional model's `keras.Input` names,
            or the keys of a model built on a dict of inputs), in the order
            `keras.tree.flatten` gives its inputs.
        shapes: each input's shape, batch axis included.
        dtypes: each input's dtype name.
        keyed: whether the model takes its inputs as a dict (else a list).

    Example:
        >>> layout = explainer.exposure.input_layout
        >>> layout.names
        ('image', 'tabular')
        >>> layout.flatten({"tabular": t, "image": i})   # (i, t)
    """

    names: tuple[str, ...]
    shapes: tuple[tuple, ...]
    dtypes: tuple[str, ...]
    keyed: bool = False

    def __len__(self) -> int:
        return len(self.names)

    def is_vector(self, index: int) -> bool:
        """Whether input `index` is a feature vector `(N, D)`, read as `(N, D, 1)`."""
        return len(self.shapes[index]) == 2

    def index(self, key: str | int, option: str = "input") -> int:
        """The position of the input named `key` (or at index `key`).

        Raises:
            InputError: no input has that name or index.
            TypeError: `key` is neither a name nor an index.
        """
        if isinstance(key, bool) or not isinstance(key, (str, int, np.integer)):
            raise TypeError(f"{option} must name an input or give its index; got {key!r}.")
        if isinstance(key, str):
            if key not in self.names:
                raise InputError(
                    f"{option}={key!r}: the model has no input of that name; its inputs "
                    f"are {list(self.names)}." + did_you_mean(key, list(self.names))
                )
            return self.names.index(key)
        if not -len(self) <= key < len(self):
            raise InputError(
                f"{option}={key} is out of range: the model has {len(self)} inputs "
                f"{list(self.names)}."
            )
        return int(key) % len(self)

    def flatten(self, x: Any) -> tuple:
        """The inputs `x` (a tuple or list in order, or a dict by name) as a tuple in order.

        Raises:
            InputError: `x` is not such a structure, has another number of
                inputs, or names an unknown input or misses one.
        """
        names = list(self.names)
        if isinstance(x, dict):
            unknown = [key for key in x if key not in self.names]
            if unknown:
                raise InputError(
                    f"Unknown input {unknown[0]!r}; the model's inputs are {names}."
                    + did_you_mean(str(unknown[0]), names)
                )
            missing = [name for name in self.names if name not in x]
            if missing:
                raise InputError(
                    f"Input {missing[0]!r} is missing; the model takes {len(self)} inputs {names}."
                )
            return tuple(x[name] for name in self.names)
        if isinstance(x, (tuple, list)):
            if len(x) != len(self):
                raise InputError(
                    f"Got {len(x)} inputs, but the model takes {len(self)}: {names}. Pass "
                    "one array per input, in this order, or a dict by name."
                )
            return tuple(x)
        raise InputError(
            f"The model takes {len(self)} inputs {names}; pass them as a tuple (in this "
            f"order) or a dict by name, not a single {type(x).__name__}."
        )

    def method_view(self, inputs: Sequence[tf.Tensor]) -> tuple:
        """The inputs as methods read them: each feature vector `(N, D)` as `(N, D, 1)`."""
        return tuple(
            tensor[..., None] if self.is_vector(index) else tensor
            for index, tensor in enumerate(inputs)
        )

    def model_inputs(self, inputs: Sequence[tf.Tensor]) -> list | dict:
        """What the model takes, from inputs in the methods' view (see `method_view`)."""
        flat = [
            tf.squeeze(tensor, -1) if self.is_vector(index) else tensor
            for index, tensor in enumerate(inputs)
        ]
        return dict(zip(self.names, flat, strict=True)) if self.keyed else flat

    def structure_of(self, flat: Sequence[Any]) -> list | dict:
        """Inputs in this layout's order as the model takes them: a dict by name, or a list."""
        return dict(zip(self.names, flat, strict=True)) if self.keyed else list(flat)

    def structure(self, parts: dict[int, Any]) -> tuple | dict:
        """Per-input results as the user's structure: a dict by name, or a tuple.

        Args:
            parts: input index -> result, for the inputs that have one.

        Returns:
            For a model taking a dict, a dict of the inputs in `parts` by
            name; else a tuple in input order, None for inputs without one.
        """
        if self.keyed:
            return {self.names[index]: part for index, part in sorted(parts.items())}
        return tuple(parts.get(index) for index in range(len(self)))
