"""RISE: the mean of random masks, weighted by the score of the input they keep.

Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for
Explanation of Black-box Models". BMVC 2018. https://arxiv.org/abs/1806.07421
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.base import Attribution
from keras_explainable.baselines import (
    as_baseline,
    baseline_images,
    baseline_validator,
    blend_with_baseline,
    is_zero_baseline,
)
from keras_explainable.errors import InputError
from keras_explainable.noise import RISE_MASK, hashed_uniform, stream_key
from keras_explainable.perturbation import InputPerturbation, evaluate_perturbations
from keras_explainable.signature import RESULT_NEUTRAL
from keras_explainable.targets import Targets
from keras_explainable.validators import check_seed, open_fraction, positive_int, positive_number

__all__ = ["RISE", "rise_masks"]

_BASELINES = ("zeros", "mean", "blur")


def _upsampling(cells: int, cell_size: int) -> np.ndarray:
    """The `(cells * cell_size, cells)` matrix of bilinear upsampling along one axis.

    Pixel `j` reads the grid at `(j + 0.5) / cell_size - 0.5` (pixel centres,
    as `tf.image.resize`), clamped to the grid's ends.
    """
    position = np.clip((np.arange(cells * cell_size) + 0.5) / cell_size - 0.5, 0, cells - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, cells - 1)
    fraction = position - low
    matrix = np.zeros((cells * cell_size, cells), np.float64)
    rows = np.arange(cells * cell_size)
    np.add.at(matrix, (rows, low), 1.0 - fraction)
    np.add.at(matrix, (rows, high), fraction)
    return matrix.astype(np.float32)


def rise_masks(
    seed: int, indices: Any, size: Sequence[int], cell_size: int, probability: float
) -> tf.Tensor:
    """RISE's random masks number `indices` for `seed`, as in the paper.

    Mask `i` is a function of `seed` and `i` alone. Along each spatial axis of
    size `s` the grid has `ceil(s / cell_size) + 1` cells; each cell is on (1)
    with `probability`, else off (0). The grid is upsampled bilinearly to
    `cell_size` pixels per cell and cropped to `size` from a random offset in
    `[0, cell_size)` per axis, so the masks are smooth and their cells fall
    anywhere on the input.

    Args:
        seed: the integer seed.
        indices: int `(k,)` mask numbers (a list, array or tensor).
        size: the spatial size of the masks, one int per axis.
        cell_size: the size of a grid cell in pixels.
        probability: the chance that a cell is on, in (0, 1).

    Returns:
        `(k, *size)` float32 masks in [0, 1].

    Example:
        >>> masks = rise_masks(0, range(4), (64, 64), cell_size=8, probability=0.5)
        >>> masks.shape
        TensorShape([4, 64, 64])
    """
    size = tuple(int(length) for length in size)
    cells = [-(-length // cell_size) + 1 for length in size]
    indices = tf.reshape(tf.cast(indices, tf.int64), [-1])
    keys = stream_key(seed, indices, RISE_MASK)
    grid_size = int(np.prod(cells))
    uniform = hashed_uniform(tf.stack([tf.size(indices), grid_size + len(size)]), keys)
    masks = tf.cast(uniform[:, :grid_size] < probability, tf.float32)
    masks = tf.reshape(masks, [-1, *cells])
    offsets = tf.minimum(
        tf.cast(uniform[:, grid_size:] * cell_size, tf.int32), cell_size - 1
    )  # (k, rank)
    for axis, (length, count) in enumerate(zip(size, cells, strict=True)):
        # (k, length, count): the upsampling rows of each mask's crop.
        rows = offsets[:, axis : axis + 1] + tf.range(length)[None]
        matrix = tf.gather(tf.constant(_upsampling(count, cell_size)), rows)
        # Contract this axis (always axis 1, as contracted axes move to the end).
        masks = tf.einsum("kc...,klc->k...l", masks, matrix)
    return masks


@attrs.define(eq=False)
class RISE(InputPerturbation):
    """RISE: random masks averaged with the score of the input each one keeps.

    `masks` random smooth masks `m_i` (see `rise_masks`: grids of cells of
    `cell_size` pixels, each on with `probability`, upsampled bilinearly and
    shifted at random) hide parts of the input, and the map is the mean of
    the masks weighted by the score of the masked input:

        M = 1 / (masks * probability) * sum_i S(x * m_i) m_i

    By default (`center_scores=True`) the mean score over the masks, `S_bar`,
    is subtracted from each score first:

        M = 1 / (masks * probability) * sum_i (S(x * m_i) - S_bar) m_i

    The two maps have the same expectation up to a constant, which the
    min-max scaling of 'auto' post-processing removes, but the centred one is
    far less noisy: with a confident model the scores are all close to 1 and
    the plain sum is dominated by where the finite set of masks happens to
    overlap most (on the demo model with 1000 masks, the pointing game rises
    from 0.06-0.44 to 1.0 over three seeds). `center_scores=False` gives the
    paper's estimator exactly.

    With the default baseline 0 the masked input is `x * m_i`; another
    baseline `b` gives `x * m_i + b * (1 - m_i)`. As in the paper, `S` is the
    target's probability (the softmax of the logits, or the sigmoid when the
    model's output ends in a sigmoid; with `logits=False` the model's own
    outputs; a target callable receives these probabilities), so the map
    estimates the expected score given that each position is kept.

    The masks are a function of `seed` and the mask's number alone: every
    sample gets the same masks, and the maps depend neither on the batch size
    nor on `mask_batch_size`. They are generated inside the compiled step,
    `mask_batch_size` at a time, as the masked copies are built and scored,
    so no mask bank is held in memory. Needs only forward passes, so it
    explains any model: a subclassed model, or a plain callable `inputs ->
    outputs`. Cost: one forward pass per mask and sample, plus one for the
    input. 'auto' post-processing scales the (non-negative) maps to [0, 1].

    Args:
        model: the model to explain (see `Explainer`): any Keras model, or a
            callable `inputs -> outputs`.
        masks: the number of random masks (default 2000; the paper uses 4000
            to 8000 on ImageNet). More masks, less noise.
        cell_size: the size of a mask's grid cells in pixels (default 8); for
            1-D, 2-D and 3-D inputs, the same along every spatial axis.
        probability: the chance that a cell is kept, in (0, 1) (default 0.5).
        seed: the integer seed of the masks (default 0).
        mask_batch_size: masks whose masked copies are scored together in one
            forward pass (default 32); a pass holds `batch_size *
            mask_batch_size` copies. Results do not depend on it.
        baseline: what the hidden parts become: a number (default 0.0), an
            array broadcastable to one input, 'zeros', 'mean', 'blur', or a
            callable `inputs -> baselines`.
        use_probabilities: score masked inputs by probability (default True);
            False uses the explained outputs (logits) as they are.
        center_scores: subtract the mean score over the masks from each
            score (default True; see above). False: the paper's estimator.
        blur_sigma: the standard deviation in pixels of the 'blur' baseline
            (default 5.0).
        perturb_inputs: for a model with several inputs, the inputs to mask
            (names or indices); default every input (a feature vector
            `(N, D)` is masked as a sequence of `D` features). Each is masked
            in turn, the others kept as they are, and gets its own maps (see
            `InputPerturbation`). `baseline` may then be a dict by input name.
        **kwargs: the `Explainer` options (no layer options).

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1];
    scores are the explained scores (logits) of the unmasked input. With
    several inputs, one such array per masked input.

    Raises:
        ValueError: `masks`, `cell_size` or `mask_batch_size` is not a
            positive integer, `probability` is not in (0, 1), or an unknown
            baseline name.
        InputError: the input's spatial size is unknown when the step is
            compiled; an array baseline that does not broadcast to one input.

    Example:
        >>> rise = ke.RISE(model, masks=4000, cell_size=16, seed=1)
        >>> expl = rise.explain(images, labels)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for
        Explanation of Black-box Models". BMVC 2018.
        <https://arxiv.org/abs/1806.07421>
    """

    rectify = False

    masks: int = attrs.field(default=2000, kw_only=True, validator=positive_int)
    cell_size: int = attrs.field(default=8, kw_only=True, validator=positive_int)
    probability: float = attrs.field(default=0.5, kw_only=True, validator=open_fraction)
    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    mask_batch_size: int = attrs.field(
        default=32, kw_only=True, validator=positive_int, metadata=RESULT_NEUTRAL
    )
    baseline: Any = attrs.field(
        default=0.0,
        kw_only=True,
        converter=as_baseline,
        validator=baseline_validator(_BASELINES, callables=True),
    )
    use_probabilities: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    center_scores: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    blur_sigma: float = attrs.field(default=5.0, kw_only=True, validator=positive_number)

    def _confidence(self, outputs: tf.Tensor, targets: Targets) -> tf.Tensor:
        # With logits=False the outputs are the model's own probabilities.
        return self.exposure.confidence(outputs, self.use_probabilities and self.logits, targets)

    def _attribute_input(
        self,
        image: tf.Tensor,
        inputs: Any,
        copies_of: Callable[[tf.Tensor], Any],
        baseline: Any,
        vector: bool,
        targets: Targets,
    ) -> Attribution:
        size = tuple(image.shape[1:-1])
        if any(length is None for length in size):
            raise InputError(
                "RISE makes masks of the input's size, which must be known: got inputs "
                f"of shape {tuple(image.shape)}. Batch inputs of one size."
            )
        baselines = None
        if not is_zero_baseline(baseline):
            baselines = baseline_images(
                baseline, image, blur_sigma=self.blur_sigma, embedding=self.exposure.embedding
            )
        _, outputs = self._forward(inputs)
        scores, indices = targets.select(outputs)
        targets = targets.fixed(outputs)
        count = scores.shape[1]
        chunk = max(1, min(self.mask_batch_size, self.masks))

        def masks_of(numbers: tf.Tensor) -> tf.Tensor:
            return rise_masks(self.seed, numbers, size, self.cell_size, self.probability)

        def masked(numbers: tf.Tensor) -> tf.Tensor:
            # (k,) mask numbers -> (k, N, *spatial, C) masked copies.
            mask = tf.cast(masks_of(numbers), image.dtype)[:, None, ..., None]
            return copies_of(blend_with_baseline(image, baselines, mask))

        def score(images: tf.Tensor, copies: int) -> tf.Tensor:
            _, masked_outputs = self._forward(images)
            masked_scores, _ = targets.tiled(copies).select(
                self._confidence(masked_outputs, targets)
            )
            return masked_scores

        weights = evaluate_perturbations(masked, score, self.masks, chunk, [count])  # (P, N, L)
        if self.center_scores:
            weights = weights - tf.reduce_mean(weights, axis=0, keepdims=True)

        # The weighted sum of the masks, regenerated chunk by chunk: no mask bank.
        def body(index: tf.Tensor, total: tf.Tensor) -> tuple:
            numbers = index * chunk + tf.range(chunk)
            valid = tf.cast(numbers < self.masks, tf.float32)[:, None, None]
            numbers = tf.minimum(numbers, self.masks - 1)
            part = tf.gather(weights, numbers) * valid  # (k, N, L)
            return index + 1, total + tf.einsum("knl,k...->n...l", part, masks_of(numbers))

        total = tf.zeros([tf.shape(image)[0], *size, count], tf.float32)
        chunks = -(-self.masks // chunk)
        _, total = tf.while_loop(lambda index, _: index < chunks, body, (tf.constant(0), total))
        maps = total / (self.masks * self.probability)
        return Attribution(maps, scores, indices)
