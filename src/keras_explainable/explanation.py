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
            input channel, `(N, *spatial, C, L)`. For a method that explains
            the inputs of a model with several inputs, one such array per
            input, in the model's structure: a tuple in input order (None for
            an input the method did not explain, such as one a perturbation
            method leaves as it is), or a dict by input name for a model built
            on a dict of inputs (the explained inputs only). A feature vector
            `(N, D)` gets maps `(N, D, L)`.
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
        input_names: the model's input names when `maps` is a tuple or dict
            of per-input maps, else None.

    Example:
        >>> expl = ke.GradCAM(model).explain(x)
        >>> expl.maps.shape        # (N, H, W, 1)
        >>> np.asarray(expl)       # the maps

        With several inputs, one input's maps:

        >>> expl = ke.Saliency(model).explain({"image": images, "tabular": rows})
        >>> expl.maps["tabular"].shape   # (N, 5, 1): one value per feature
        >>> expl.for_input("image").overlay(images)
    """

    maps: Any
    scores: np.ndarray
    targets: np.ndarray
    method: str = ""
    layer: str | tuple[str, ...] | None = None
    input_names: tuple[str, ...] | None = None

    @property
    def structured(self) -> bool:
        """Whether `maps` holds one array per input (a tuple or dict) rather than one array."""
        return isinstance(self.maps, (tuple, dict))

    def for_input(self, input: str | int) -> Explanation:  # noqa: A002 - the natural name
        """The explanation of one input only: its maps, with the same scores and targets.

        Args:
            input: the input's name, or its index in the model's inputs.

        Returns:
            An `Explanation` whose `maps` is that input's array.

        Raises:
            ValueError: the maps are not per input, or the input has none.

        Example:
            >>> expl.for_input("image").maps.shape   # (N, H, W, L)
        """
        if not self.structured:
            raise ValueError("for_input() selects one input's maps; these maps are one array.")
        names = list(self.input_names or ())
        if isinstance(input, str):
            if input not in names:
                raise ValueError(f"No input named {input!r}; the inputs are {names}.")
            index, name = names.index(input), input
        else:
            index, name = int(input), names[int(input)]
        maps = self.maps.get(name) if isinstance(self.maps, dict) else self.maps[index]
        if maps is None:
            raise ValueError(f"{self.method} made no maps of input {name!r}.")
        return attrs.evolve(self, maps=maps, input_names=None)

    def _single_maps(self, what: str) -> np.ndarray:
        if self.structured:
            raise ValueError(
                f"{what} needs one array of maps, but these are one per input "
                f"{list(self.input_names or ())}; pick one with for_input(<name>)."
            )
        return self.maps

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The maps as an array, so `np.asarray(explanation)` works (one input's maps)."""
        maps = self._single_maps("np.asarray(explanation)")
        if dtype is None:
            return maps
        return maps.astype(dtype)

    def __len__(self) -> int:
        """The number of explained samples."""
        return len(self.scores)

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

        maps = self._single_maps("overlay()")
        return overlay(images, maps, target=target, cmap=cmap, alpha=alpha)

    def __getitem__(self, index: Any) -> Explanation:
        """Select samples, keeping maps, scores and targets aligned."""
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1 if index != -1 else None)
        if isinstance(self.maps, dict):
            maps = {name: part[index] for name, part in self.maps.items()}
        elif isinstance(self.maps, tuple):
            maps = tuple(None if part is None else part[index] for part in self.maps)
        else:
            maps = self.maps[index]
        return attrs.evolve(
            self,
            maps=maps,
            scores=self.scores[index],
            targets=self.targets[index],
        )
