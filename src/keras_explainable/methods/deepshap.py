"""DeepSHAP: DeepLIFT's rescale attributions averaged over a background set.

Lundberg & Lee (2017), "A Unified Approach to Interpreting Model
Predictions". https://arxiv.org/abs/1705.07874
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.base import Attribution
from keras_explainable.errors import BackgroundError
from keras_explainable.exposure import Exposure
from keras_explainable.methods.deeplift import DeepLIFT
from keras_explainable.targets import INDEX, TOP, Targets

__all__ = ["DeepSHAP"]


def _as_background(value: Any) -> np.ndarray:
    if isinstance(value, (tf.Tensor, tf.Variable)):
        value = value.numpy()
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise BackgroundError(
            f"background must be an array of baselines (B, *input_shape); got "
            f"{type(value).__name__}."
        ) from error
    if array.ndim < 2 or array.shape[0] == 0:
        raise BackgroundError(
            f"background must be a non-empty set of baselines, an array (B, *input_shape) "
            f"with B >= 1; got shape {array.shape}."
        )
    if not np.isfinite(array).all():
        raise BackgroundError("background must be finite (no NaN or Inf).")
    return array


@attrs.define(eq=False)
class DeepSHAP(DeepLIFT):
    """DeepSHAP: DeepLIFT attributions averaged over a background set of baselines.

    The attribution of input element `x_i` is the mean, over the `B`
    baselines `b` of the background, of DeepLIFT's rescale attribution
    against `b` (see `DeepLIFT`). It approximates the SHAP values of the
    model with the background as the distribution of missing features
    (Lundberg & Lee's Deep SHAP, as SHAP's DeepExplainer computes it). With
    `postprocess=None`, `resize=False` and 'sum' each map adds up to
    `S(x) - mean_b S(b)` on networks where DeepLIFT sums to the delta. A
    background of one sample gives DeepLIFT with that baseline.

    The background goes through the model once per `explain` call, before
    the first batch (its activations are kept for the call, up to 1 GiB of
    them); then, in a loop inside the compiled step, each background
    sample costs a forward and backward pass of the batch per target, so
    the cost grows linearly with `B` (tens of samples are typical). Where
    the activations are not kept, each pass holds the background sample
    too (`N + 1`). Top-class targets are resolved on the input, once.

    Args:
        model: the model to explain (see `Explainer`); a single input.
        background: the baselines, an array `(B, *input_shape)` with `B >= 1`
            (typically tens of training inputs).
        channel_reduction: 'sum' (default), 'mean' or 'l2'; None keeps one
            map per channel, maps `(N, *spatial, C, L)`.
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`, `strategy`).

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]
    ('auto'), or the signed attributions reduced over channels (None).

    Raises:
        BackgroundError: an empty background, one with NaN or Inf, not an
            array, or of samples of another shape than the model's inputs
            (at construction when the input shape is known, else when
            `explain` starts).
        ModelStructureError: a model with several inputs, or whose layers
            cannot be found.
        LayerError: `layer=` is given: the input itself is explained.

    Example:
        >>> shap = ke.DeepSHAP(model, background=train_images[:32])
        >>> expl = shap.explain(images, labels)

    References:
        Lundberg & Lee (2017), "A Unified Approach to Interpreting Model
        Predictions". <https://arxiv.org/abs/1705.07874>

        Shrikumar, Greenside & Kundaje (2017), "Learning Important Features
        Through Propagating Activation Differences".
        <https://arxiv.org/abs/1704.02685>
    """

    several_inputs_refusal = (
        "its background is one array of samples; use DeepLIFT, whose baseline can be "
        "given per input."
    )

    background: np.ndarray = attrs.field(converter=_as_background)
    # DeepLIFT's single baseline and its blur are not options here.
    baseline: Any = attrs.field(default=None, init=False, repr=False)
    blur_sigma: float = attrs.field(default=0.0, init=False, repr=False)

    def _prepare(self, exposure: Exposure) -> None:
        self._find_nonlinearities(exposure)
        if exposure.input_shape is not None:
            self._check_background_shape(exposure.input_shape[1:])

    def _check_background_shape(self, sample_shape: Any) -> None:
        expected = tuple(sample_shape)
        shape = self.background.shape[1:]
        fits = len(shape) == len(expected) and all(
            size is None or size == actual for size, actual in zip(expected, shape, strict=True)
        )
        if not fits:
            readable = tuple("?" if size is None else size for size in expected)
            raise BackgroundError(
                f"background of shape {self.background.shape} is not a set of baselines "
                f"(B, *input_shape) for inputs of shape {readable}."
            )

    def _shared_baselines(self, sample: tf.Tensor) -> tf.Tensor | None:
        # A background of another shape is refused by the step, with its error.
        if tuple(sample.shape[1:]) != self.background.shape[1:]:
            return None
        return tf.constant(self.background, sample.dtype)

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        self._check_background_shape(inputs.shape[1:])
        background = tf.constant(self.background, inputs.dtype)
        count = self.background.shape[0]
        # The background's references for this run (B rows), or None.
        references = self._references.read(inputs)

        def deltas(index: tf.Tensor, targets: Targets) -> tuple:
            baseline = tf.gather(background, index[None])
            reference = None
            if references is not None:
                reference = [tf.gather(part, index[None]) for part in references]
            return self._deltas(inputs, baseline, targets, shared=True, references=reference)

        total, scores, explained = deltas(tf.constant(0), targets)
        if targets.kind == TOP:
            targets = attrs.evolve(targets, kind=INDEX, indices=explained)

        def body(index: tf.Tensor, total: tf.Tensor) -> tuple:
            part, _, _ = deltas(index, targets)
            return index + 1, tf.ensure_shape(total + part, total.shape)

        if count > 1:
            # One background sample at a time: its pass holds one batch.
            _, total = tf.while_loop(
                lambda index, _: index < count,
                body,
                (tf.constant(1), total),
                parallel_iterations=1,
            )
        return Attribution(self._maps(total / count), scores, explained)
