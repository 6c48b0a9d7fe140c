"""The machinery KernelSHAP and LIME share: segments scored on and off, and a linear fit.

Both methods explain a prediction by a linear model over `M` input segments:
coalitions `z` in {0, 1}^M are drawn, each scored by one forward pass of the
input with the segments of `z` off (replaced by the baseline), and a weighted
linear model of the scores on `z` is solved. They differ in which coalitions
they draw, how they weigh them and how they solve; `SegmentSurrogate` does the
rest once, inside the compiled step.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.base import Attribution
from keras_explainable.baselines import as_baseline, baseline_images, baseline_validator
from keras_explainable.errors import InputError
from keras_explainable.exposure import Exposure
from keras_explainable.noise import COALITION_ORDER, hashed_uniform, stream_key
from keras_explainable.perturbation import InputPerturbation, evaluate_perturbations
from keras_explainable.segments import (
    as_segments,
    check_grid,
    default_grid,
    grid_labels,
    paint_segments,
    per_input_labels,
    require_slic,
    segment_masks,
    slic_labels,
)
from keras_explainable.signature import RESULT_NEUTRAL
from keras_explainable.targets import Targets
from keras_explainable.validators import check_seed, positive_int, positive_number

__all__ = ["SegmentSurrogate", "coalition_uniforms", "random_subsets"]

BASELINES = ("zeros", "mean", "blur")


#: Superpixels SLIC aims at per image when `num_segments` is not given.
SLIC_SEGMENTS = 50


def _check_segments(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, str) and value not in ("grid", "slic"):
        raise ValueError(
            f"segments must be 'grid', 'slic', an integer array of labels or a callable; "
            f"got {value!r}."
        )
    if isinstance(value, str) and value == "slic":
        require_slic()
    if isinstance(value, np.ndarray) and (value.ndim == 0 or value.max(initial=0) < 1):
        raise ValueError(
            f"segments must have at least 2 segments; got an array of shape {value.shape} "
            f"with {int(value.max(initial=0)) + 1 if value.size else 0}."
        )


def coalition_uniforms(seed: int, draws: tf.Tensor, purpose: int, width: int) -> tf.Tensor:
    """`(D, width)` uniform numbers in (0, 1) of draws `draws` `(D,)`: the same for every input."""
    keys = stream_key(seed, tf.cast(draws, tf.int64), purpose)
    return hashed_uniform(tf.stack([tf.size(keys), width]), keys)


def random_subsets(seed: int, draws: tf.Tensor, sizes: tf.Tensor, count: int) -> tf.Tensor:
    """`(D, count)` float32 coalitions with `sizes` `(D,)` segments on, chosen uniformly."""
    order = coalition_uniforms(seed, draws, COALITION_ORDER, count)
    ranks = tf.argsort(tf.argsort(order, axis=-1), axis=-1)
    return tf.cast(ranks < tf.cast(sizes, tf.int32)[:, None], tf.float32)


@attrs.define(eq=False)
class SegmentSurrogate(InputPerturbation):
    """Base of the methods that fit a linear model over input segments (KernelSHAP, LIME).

    Subclasses implement `_coalitions` (which coalitions, with which
    weights) and `_solve` (the weighted linear model); the base draws the
    segments, scores every coalition by a masked forward pass through the
    lazy perturbation evaluator (`sample_batch_size` coalitions per pass) and
    paints each segment's coefficient on its positions.

    Args:
        model: the model to explain: any model `explain` takes, a subclassed
            `keras.Model` or a plain callable `inputs -> outputs`.
        segments: the features: 'grid' (default; `grid` cells over 2-D images
            or runs of positions over a sequence, and, for a model with
            several inputs, one segment per feature of a feature vector `(N,
            D)`), 'slic' (SLIC superpixels of each image, computed in the step
            with scikit-image: `pip install 'keras-explainable[segmentation]'`),
            an integer array of labels of one input's spatial shape
            `(*spatial)` shared by every input, an integer array `(N,
            *spatial)` of one segmentation per input (any integers; each
            input's are renumbered), or a callable `inputs -> (N, *spatial)`
            integer labels in `[0, num_segments)`, run inside the compiled step
            (wrap a numpy segmenter in `tf.numpy_function`).
        grid: the cells of `segments='grid'`: `(h, w)` over 2-D images,
            `(g,)` runs of positions over a sequence. Default None: (8, 8)
            over images, one cell per position (each token of a text model)
            over a sequence.
        num_segments: the most superpixels per image for 'slic' (default
            50), or the number of segments a `segments` callable labels
            (required with a callable); refused with the other forms.
        compactness: SLIC's balance of colour against space (default 10.0;
            higher gives squarer superpixels); only with 'slic'.
        samples: coalitions scored per input (default 1000).
        baseline: what a segment that is off shows: a number (default 0.0),
            'zeros', 'mean' (the input's mean per channel), 'blur', an array
            broadcastable to one input, a callable `inputs -> baselines`, or
            for a text model a `TokenBaseline` (its tokens that are off become
            that token).
        seed: the integer seed of the coalitions (default 0).
        sample_batch_size: coalitions whose masked inputs go through the model
            together (default 16); a pass holds `batch_size *
            sample_batch_size` inputs. Results do not depend on it.
        blur_sigma: standard deviation in pixels of the 'blur' baseline.
        perturb_inputs: for a model with several inputs, the inputs whose
            segments are switched (names or indices); default every input
            the segments fit. Each input gets its own surrogate, its segments
            switched with the other inputs kept as they are (see
            `InputPerturbation`); `baseline` may then be a dict by input name.
        **kwargs: the `Explainer` options.
    """

    uses_baseline_scores: ClassVar[bool] = False
    """Whether `_solve` needs the scores of the baseline (all segments off)."""

    segments: Any = attrs.field(
        default="grid", kw_only=True, converter=as_segments, validator=_check_segments
    )
    grid: tuple[int, ...] | None = attrs.field(default=None, kw_only=True, converter=check_grid)
    num_segments: int | None = attrs.field(
        default=None, kw_only=True, validator=attrs.validators.optional(positive_int)
    )
    compactness: float | None = attrs.field(
        default=None, kw_only=True, validator=attrs.validators.optional(positive_number)
    )
    samples: int = attrs.field(default=1000, kw_only=True, validator=positive_int)
    baseline: Any = attrs.field(
        default=0.0,
        kw_only=True,
        converter=as_baseline,
        validator=baseline_validator(BASELINES, callables=True),
    )
    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    sample_batch_size: int = attrs.field(
        default=16, kw_only=True, validator=positive_int, metadata=RESULT_NEUTRAL
    )
    blur_sigma: float = attrs.field(default=5.0, kw_only=True, validator=positive_number)
    # The grid of segments='grid': `grid`, or the default for the model's inputs.
    _grid: tuple[int, ...] = attrs.field(default=(8, 8), init=False, repr=False)
    # One segmentation per input, renumbered, and their most segments (set in `_prepare`).
    _input_labels: np.ndarray | None = attrs.field(default=None, init=False, repr=False)
    _input_segment_count: int = attrs.field(default=0, init=False, repr=False)

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def _coalitions(self, count: int) -> tuple[tf.Tensor, tf.Tensor]:
        """The coalitions to score and their weights, inside the step.

        Args:
            count: the number of segments `M`.

        Returns:
            `(S, M)` float32 coalitions (1: segment on) and `(S,)` weights.
        """

    @abc.abstractmethod
    def _solve(
        self,
        coalitions: tf.Tensor,
        weights: tf.Tensor,
        outcomes: tf.Tensor,
        scores: tf.Tensor,
        baseline_scores: tf.Tensor | None,
    ) -> tf.Tensor:
        """Fit the linear model; returns `(M, K)` float64 coefficients.

        Args:
            coalitions: `(S, M)` float64 coalitions.
            weights: `(S,)` float64 weights.
            outcomes: `(S, K)` float64 scores of the coalitions, `K` = samples x targets.
            scores: `(K,)` float64 scores of the inputs (every segment on).
            baseline_scores: `(K,)` float64 scores of the baselines (every
                segment off) when `uses_baseline_scores`, else None.
        """

    # ------------------------------------------------------------- segments
    @property
    def segment_count(self) -> int:
        """The number of segments `M`, the features of the linear model.

        With one segmentation per input, the most segments of an input; with
        'slic', the most superpixels of an image. For a model with several
        inputs, that of an image input: a feature vector's segments are its
        `D` features.
        """
        return self._segment_count(False, None)

    def _segment_count(self, vector: bool, spatial: Any) -> int:
        """The number of segments of an input (a feature vector's: its features)."""
        if self._input_labels is not None and not vector:
            return self._input_segment_count
        if isinstance(self.segments, np.ndarray):
            return int(self.segments.max()) + 1
        if callable(self.segments):
            return self.num_segments
        if vector:
            return int(spatial[0])
        if self.segments == "slic":
            return SLIC_SEGMENTS if self.num_segments is None else self.num_segments
        if self._grid is None:
            # One segment per token of text of any length: the batch says how many.
            if spatial is None or spatial[0] is None:
                raise InputError(
                    f"{type(self).__name__} takes one segment per token, so the number of "
                    "tokens must be known when the step is built: pad a dataset's batches to "
                    "a fixed length (padded_batch with padded_shapes), or pass grid=(g,)."
                )
            return int(spatial[0])
        return int(np.prod(self._grid))

    def _check_segment_count(self, count: int) -> None:  # noqa: B027 - optional hook
        """Reject a number of segments the method cannot solve for (optional hook)."""

    def _prepare(self, exposure: Exposure) -> None:
        slic = isinstance(self.segments, str) and self.segments == "slic"
        takes_count = callable(self.segments) or slic
        if callable(self.segments) and self.num_segments is None:
            raise ValueError("segments given as a callable needs num_segments= (its label count).")
        if not takes_count and self.num_segments is not None:
            raise ValueError(
                "num_segments= goes with segments='slic' or segments given as a callable only."
            )
        if self.num_segments is not None and self.num_segments < 2:
            raise ValueError(f"num_segments must be at least 2; got {self.num_segments}.")
        if self.compactness is not None and not slic:
            raise ValueError("compactness= goes with segments='slic' only.")
        spatial = None if exposure.input_shape is None else exposure.input_shape[1:-1]
        self._grid = self.grid
        deferred = exposure.text and spatial is not None and spatial[0] is None
        if self._grid is None and not deferred:
            image = exposure.several_inputs or not isinstance(self.segments, str)
            self._grid = (8, 8) if image else default_grid(spatial or ())
        if isinstance(self.segments, np.ndarray) and not exposure.several_inputs:
            # One more axis than an input's positions: one segmentation per input.
            # (A model of unknown input shape: arrays of 3 or more axes are.)
            rank = self.segments.ndim
            if (spatial is not None and rank == len(spatial) + 1) or (
                spatial is None and rank >= 3
            ):
                self._input_labels, self._input_segment_count = per_input_labels(self.segments)
        if slic and spatial is not None and len(spatial) != 2:
            raise InputError(
                f"segments='slic' segments 2-D images (N, H, W, C); the model's inputs have "
                f"spatial shape {tuple(spatial)}."
            )
        if not exposure.several_inputs and not (
            deferred and isinstance(self.segments, str) and self.segments == "grid"
        ):
            self._check_segment_count(self.segment_count)
        super()._prepare(exposure)

    def _sample_data(self) -> dict[str, np.ndarray]:
        if self._input_labels is None:
            return {}
        return {"segments": self._input_labels}

    def _check_input(self, spatial: tuple, vector: bool) -> None:
        self._check_spatial(spatial, vector)
        if self._grid is None and not vector and isinstance(self.segments, str):
            return  # one segment per token: counted when the batch's length is known
        self._check_segment_count(self._segment_count(vector, spatial))

    def _check_spatial(self, spatial: Any, vector: bool = False) -> None:
        """Check the segments fit inputs of `spatial` shape (None: unknown size)."""
        spatial = tuple(spatial)
        if vector and isinstance(self.segments, str):
            if spatial[0] is None or spatial[0] < 2:
                raise InputError(
                    f"a feature vector of {spatial[0]} feature(s) has too few segments; "
                    "it needs at least 2 features."
                )
            return
        if isinstance(self.segments, np.ndarray):
            shape = self.segments.shape
            if self._input_labels is not None:
                shape = shape[1:]
            fits = len(shape) == len(spatial) and all(
                expected is None or size == expected
                for size, expected in zip(shape, spatial, strict=True)
            )
            if not fits:
                readable = tuple("?" if size is None else size for size in spatial)
                raise InputError(
                    f"segments of shape {self.segments.shape} do not label inputs of spatial "
                    f"shape {readable}; pass one label per position, shape (*spatial) for "
                    "every input or (N, *spatial) one segmentation per input."
                )
        elif isinstance(self.segments, str) and self.segments == "grid" and None not in spatial:
            grid_labels(spatial, self._grid or (spatial[0],))

    def _masks(
        self, inputs: tf.Tensor, data: dict[str, tf.Tensor], vector: bool = False
    ) -> tf.Tensor:
        """`(n, *spatial, M)` one-hot segment masks, `n` 1 (shared) or N."""
        count = self._segment_count(vector, inputs.shape[1:-1])
        segments = self.segments
        if vector and isinstance(segments, str):
            # One segment per feature of a feature vector (N, D, 1).
            return tf.eye(count, dtype=inputs.dtype)[None]
        if "segments" in data:
            return segment_masks(data["segments"], count, inputs.dtype)
        if isinstance(segments, str) and segments == "slic":
            compactness = 10.0 if self.compactness is None else self.compactness
            labels = tf.numpy_function(
                lambda images: slic_labels(images, count, compactness),
                [tf.cast(inputs, tf.float32)],
                tf.int32,
                stateful=False,
            )
            labels.set_shape(inputs.shape[:-1])
            return segment_masks(labels, count, inputs.dtype)
        if callable(segments):
            labels = tf.convert_to_tensor(segments(inputs))
            if not labels.shape.is_compatible_with(inputs.shape[:-1]):
                raise InputError(
                    f"The segments callable returned shape {tuple(labels.shape)} for inputs "
                    f"of shape {tuple(inputs.shape)}; it must return (N, *spatial) labels."
                )
            return segment_masks(labels, count, inputs.dtype)
        self._check_spatial(inputs.shape[1:-1], vector)
        if (
            isinstance(segments, str)
            and segments == "grid"
            and self.grid is None
            and self.exposure.text
        ):
            keep = self.exposure.embedding.read_keep()
            if keep is not None:
                # One segment per token, and none of padding: the tokens of
                # each sentence are its segments, numbered from 0.
                order = tf.cast(tf.cumsum(keep, axis=1), tf.int32) - 1
                return segment_masks(tf.where(keep > 0, order, -1), count, inputs.dtype)
        if isinstance(segments, str):
            grid = self._grid or (count,)
            segments = grid_labels(inputs.shape[1:-1], grid)
        return segment_masks(tf.constant(segments[None]), count, inputs.dtype)

    # ------------------------------------------------------------------ step
    def _attribute_input(
        self,
        image: tf.Tensor,
        inputs: Any,
        copies_of: Callable[[tf.Tensor], Any],
        baseline: Any,
        vector: bool,
        targets: Targets,
    ) -> Attribution:
        masks = self._masks(image, targets.data, vector)
        segment_count = masks.shape[-1]
        _, outputs = self._forward(inputs)
        scores, explained = targets.select(outputs)
        targets = targets.fixed(outputs)
        baselines = baseline_images(
            baseline, image, blur_sigma=self.blur_sigma, embedding=self.exposure.embedding
        )
        coalitions, weights = self._coalitions(segment_count)
        difference = image - baselines
        flat_masks = tf.reshape(masks, [tf.shape(masks)[0], -1, masks.shape[-1]])

        def perturb(indices: tf.Tensor) -> tf.Tensor:
            # (k,) coalitions -> (k, N, *shape): segments off show the baseline.
            chosen = tf.cast(tf.gather(coalitions, indices), image.dtype)
            keep = tf.einsum("npm,km->knp", flat_masks, chosen)
            keep = tf.reshape(keep, tf.concat([tf.shape(keep)[:2], tf.shape(masks)[1:-1]], 0))
            return copies_of(baselines[None] + keep[..., None] * difference[None])

        def score(images: tf.Tensor, copies: int) -> tf.Tensor:
            _, copy_outputs = self._forward(images)
            copy_scores, _ = targets.tiled(copies).select(copy_outputs)
            return copy_scores

        count = scores.shape[1]
        samples = coalitions.shape[0]
        outcomes = evaluate_perturbations(
            perturb, score, samples, self.sample_batch_size, [count]
        )  # (S, N, L)
        baseline_scores = None
        if self.uses_baseline_scores:
            # The input at its baseline, the other inputs as they are.
            at_baseline = tf.nest.map_structure(lambda part: part[0], copies_of(baselines[None]))
            _, baseline_outputs = self._forward(at_baseline)
            baseline_scores, _ = targets.select(baseline_outputs)
            baseline_scores = tf.reshape(tf.cast(baseline_scores, tf.float64), [-1])
        values = self._solve(
            tf.cast(coalitions, tf.float64),
            tf.cast(weights, tf.float64),
            tf.reshape(tf.cast(outcomes, tf.float64), [samples, -1]),
            tf.reshape(tf.cast(scores, tf.float64), [-1]),
            baseline_scores,
        )
        values = tf.reshape(tf.transpose(values), [-1, count, segment_count])
        maps = paint_segments(masks, tf.cast(values, tf.float32))
        return Attribution(maps, scores, explained)
