"""The result of an explanation: maps, scores and targets as numpy arrays."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

__all__ = ["Explanation"]


@attrs.frozen(eq=False)
class Explanation:
    """Maps explaining a batch of predictions.

    Attributes:
        maps: float32 array `(N, *spatial, L)`: one map per sample and target,
            resized to the input's spatial size unless `resize=False`; input
            attributions with `channel_reduction=None` keep one map per
            input channel, `(N, *spatial, C, L)`.
        scores: float32 array `(N, L)`: the explained scores (pre-softmax
            logits when the model ends in a softmax or sigmoid).
        targets: int64 array `(N, L)`: the explained output units (-1 for a
            custom target callable).
        method: the name of the method that made the maps.
        layer: the explained layer's path, or None for methods that explain
            the input. With `layers=`, the tuple of the layers' paths. A
            transformer's token layer chosen automatically is described with
            why and on which grid: `"block1_norm1 (auto: input of the last
            attention layer, 4x4 token grid, 1 skipped token)"`.

    Example:
        >>> expl = ke.GradCAM(model).explain(x)
        >>> expl.maps.shape        # (N, H, W, 1)
        >>> np.asarray(expl)       # the maps
    """

    maps: np.ndarray
    scores: np.ndarray
    targets: np.ndarray
    method: str = ""
    layer: str | tuple[str, ...] | None = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The maps as an array, so `np.asarray(explanation)` works."""
        if dtype is None:
            return self.maps
        return self.maps.astype(dtype)

    def __len__(self) -> int:
        """The number of explained samples."""
        return len(self.maps)

    def overlay(
        self, images: Any, target: int = 0, *, cmap: Any = "jet", alpha: float = 0.4
    ) -> np.ndarray:
        """Blend these maps over `images`; see `keras_explainable.plot.overlay`.

        Args:
            images: the explained images, `(N, H, W, C)` (or one image when N=1).
            target: which of the L targets to show (default 0).
            cmap: a matplotlib colormap or its name (default "jet").
            alpha: the heat map's weight in the blend (default 0.4).

        Returns:
            uint8 RGB `(N, H, W, 3)` (`(H, W, 3)` for one image).

        Example:
            >>> ke.GradCAM(model).explain(x).overlay(x)[0]   # first blend
        """
        from keras_explainable.plot import overlay

        return overlay(images, self.maps, target=target, cmap=cmap, alpha=alpha)

    def __getitem__(self, index: Any) -> Explanation:
        """Select samples, keeping maps, scores and targets aligned."""
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1 if index != -1 else None)
        return attrs.evolve(
            self,
            maps=self.maps[index],
            scores=self.scores[index],
            targets=self.targets[index],
        )
