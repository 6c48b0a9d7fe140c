"""Token grids: a vision transformer's token sequence read as a patch grid.

A vision transformer cuts an image `(N, H, W, C_in)` into `h x w` patches and
carries them through its blocks as a token sequence `(N, T, C)`, often after
`k` extra leading tokens (a class token, a distillation token, registers), so
`T = k + h * w`. A `TokenGrid` says how to read such a sequence as a spatial
map: drop the `k` leading tokens and lay the others out row by row on the
`h x w` grid, giving `(N, h, w, C)` features that every CAM-family method
explains as it explains a convolutional layer.

`find_token_grid` chooses the grid of a token layer: the one the options give,
or the one the input's size implies (a square patch size `p` dividing `H` and
`W`, `h = H / p`, `w = W / p`), with at most `MAX_EXTRA_TOKENS` extra tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import tensorflow as tf

from keras_explainable.errors import LayerError

__all__ = [
    "MAX_EXTRA_TOKENS",
    "TokenGrid",
    "candidate_grids",
    "find_token_grid",
    "token_grid_error",
]

MAX_EXTRA_TOKENS = 16
"""The most leading extra tokens (class, distillation, registers) found automatically."""


@attrs.frozen
class TokenGrid:
    """How a token sequence lies on the image: `skip` extra tokens, then a patch grid.

    Attributes:
        height: patch rows `h`.
        width: patch columns `w`.
        skip: leading extra tokens to drop (class, distillation, register tokens).

    Example:
        >>> grid = TokenGrid(14, 14, skip=1)   # ViT-B/16 at 224x224: 197 tokens
        >>> grid.to_grid(tokens).shape         # (N, 197, C) -> (N, 14, 14, C)
    """

    height: int
    width: int
    skip: int = 0

    def to_grid(self, tensor: tf.Tensor) -> tf.Tensor:
        """Reshape `(..., T, C)` tokens to `(..., height, width, C)`, dropping `skip`.

        Works for features `(N, T, C)` and per-target gradients `(N, L, T, C)`.
        """
        patches = tensor[..., self.skip :, :]
        shape = tf.shape(patches)
        static = patches.shape
        # Static sizes where known, so the grid keeps a static shape.
        size = [shape[axis] if known is None else known for axis, known in enumerate(static)]
        return tf.reshape(patches, [*size[:-2], self.height, self.width, size[-1]])

    def describe(self) -> str:
        """`"14x14 token grid, 1 skipped token"`."""
        text = f"{self.height}x{self.width} token grid"
        if self.skip:
            text += f", {self.skip} skipped token" + ("s" if self.skip > 1 else "")
        return text


def candidate_grids(spatial_size: Sequence[int | None]) -> list[tuple[int, int]]:
    """The grids square patches can cut an `H x W` image into, finest first.

    Args:
        spatial_size: `(H, W)`; a None entry gives no candidates.

    Returns:
        `(H // p, W // p)` for every patch size `p` dividing both `H` and `W`.
    """
    if len(spatial_size) != 2 or any(size is None for size in spatial_size):
        return []
    height, width = spatial_size
    return [
        (height // patch, width // patch)
        for patch in range(1, min(height, width) + 1)
        if height % patch == 0 and width % patch == 0
    ]


def _automatic(tokens: int, grids: list[tuple[int, int]], skip: int | None) -> TokenGrid | None:
    """The grid with the fewest extra tokens (or exactly `skip`) among `grids`."""
    for height, width in grids:  # finest first: the fewest extra tokens first
        extra = tokens - height * width
        if skip is None:
            if 0 <= extra <= MAX_EXTRA_TOKENS and extra < height * width:
                return TokenGrid(height, width, extra)
        elif extra == skip:
            return TokenGrid(height, width, skip)
    return None


def find_token_grid(
    tokens: int | None,
    spatial_size: Sequence[int | None],
    token_grid: Sequence[int] | None = None,
    skip_tokens: int | None = None,
) -> TokenGrid | None:
    """The grid a sequence of `tokens` tokens lies on, or None when none fits.

    Args:
        tokens: the sequence length `T` (None when not known before running).
        spatial_size: the input's `(H, W)`, which implies the candidate grids.
        token_grid: `(h, w)` to use instead of the candidates.
        skip_tokens: the number of leading extra tokens; default `T - h * w`
            (0 when `T` is not known) with `token_grid`, else the fewest that
            fit a candidate grid, at most `MAX_EXTRA_TOKENS`.

    Returns:
        The `TokenGrid`, or None when the sequence fits no grid.
    """
    if token_grid is not None:
        height, width = token_grid
        skip = skip_tokens
        if skip is None:
            skip = 0 if tokens is None else tokens - height * width
        if skip < 0 or (tokens is not None and tokens != skip + height * width):
            return None
        return TokenGrid(height, width, skip)
    if tokens is None:
        return None
    return _automatic(tokens, candidate_grids(spatial_size), skip_tokens)


def token_grid_error(
    name: str,
    shape: tuple,
    spatial_size: Sequence[int | None],
    token_grid: Sequence[int] | None = None,
    skip_tokens: int | None = None,
) -> LayerError:
    """The LayerError for a token layer `name` of output `shape` that fits no grid."""
    tokens = shape[1]
    size = "x".join("?" if s is None else str(s) for s in spatial_size)
    if token_grid is not None or skip_tokens is not None:
        given = ", ".join(
            f"{option}={value!r}"
            for option, value in (("token_grid", token_grid), ("skip_tokens", skip_tokens))
            if value is not None
        )
        problem = f"its {tokens} tokens do not fit {given}"
    elif tokens is None:
        problem = "its number of tokens is not known before the model runs"
    else:
        grids = candidate_grids(spatial_size)
        listed = ", ".join(f"{h}x{w} ({h * w})" for h, w in grids[:6]) or "none (size unknown)"
        problem = (
            f"its {tokens} tokens fit no patch grid of the {size} input with at most "
            f"{MAX_EXTRA_TOKENS} extra leading tokens (the grids square patches give: "
            f"{listed} tokens)"
        )
    return LayerError(
        f"Layer {name!r} outputs a token sequence of shape {shape} on {size} images, but "
        f"{problem}. Pass token_grid=(h, w) with h * w patch tokens and skip_tokens=k for "
        "k leading extra tokens (class, distillation or register tokens), or choose a "
        "layer whose output keeps the input's spatial axes."
    )
