"""GradientSHAP (expected gradients): path gradients averaged over random baselines.

Erion, Janizek, Sturmfels, Lundberg & Lee (2021), "Improving performance of
deep learning models with axiomatic attribution priors and expected
gradients". https://arxiv.org/abs/1906.10670

Lundberg & Lee (2017), "A Unified Approach to Interpreting Model
Predictions". https://arxiv.org/abs/1705.07874
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.base import Attribution
from keras_explainable.baselines import (
    as_baseline,
    baseline_images,
    baseline_validator,
    check_baseline,
    check_baseline_shape,
)
from keras_explainable.errors import InputError
from keras_explainable.exposure import Exposure
from keras_explainable.methods.input_attribution import InputAttributionExplainer
from keras_explainable.noise import (
    BACKGROUND_CHOICE,
    INPUT_NOISE,
    PATH_POINT,
    hash32,
    hashed_uniform,
    noisy_copies,
    sample_keys,
    stream_key,
)
from keras_explainable.signature import RESULT_NEUTRAL
from keras_explainable.targets import Targets
from keras_explainable.validators import (
    check_seed,
    non_negative_number,
    positive_int,
    positive_number,
)

__all__ = ["GradientSHAP"]

_BASELINES = ("zeros", "blur", "uniform")
_check_baseline = baseline_validator(_BASELINES, callables=True)


def _check_background(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, np.ndarray):
        _check_baseline(instance, attribute, value)
        return
    if value.ndim < 2 or value.shape[0] == 0:
        raise ValueError(
            f"background must be a non-empty set of baselines, an array (B, *input_shape) "
            f"with B >= 1; got shape {value.shape}."
        )
    if not np.isfinite(value).all():
        raise ValueError("background must be finite (no NaN or Inf).")


@attrs.define(eq=False)
class GradientSHAP(InputAttributionExplainer):
    """GradientSHAP: gradients at random points between background samples and the input.

    Expected gradients: the attribution of input element `x_i` is the
    expectation, over baselines `x'` drawn from the background and `a`
    uniform in [0, 1], of `(x_i - x'_i) * dS/dx_i(x' + a (x - x'))`;
    estimated from `samples` draws. It is Integrated Gradients averaged over
    a distribution of baselines, so the maps (of 'sum', with
    `postprocess=None` and `resize=False`) add up, in expectation, to
    `S(x) - E[S(x')]`. With `noise > 0`, each draw's input also gets
    Gaussian noise of standard deviation `noise * (max(x) - min(x))`, as in
    SmoothGrad (Captum's GradientShap).

    Draws are seeded per sample: the baseline, the path point and the noise
    of draw `i` are a function of `seed`, `i` and the sample's own values, so
    the maps are reproducible and do not depend on the batch size or the
    sample's place in its batch. The draws go through the model
    `sample_batch_size` at a time in a loop inside the compiled step, so a
    pass holds `batch_size * sample_batch_size` inputs. Top-class targets
    are resolved, and the scores computed, on the clean input. Cost:
    `samples` forward and backward passes to the input per target, plus one
    forward pass.

    'auto' post-processing takes the absolute value before scaling each map
    to [0, 1] (as Captum's and Xplique's visualisations show signed
    attributions by default); `postprocess=None` keeps the sign.

    Args:
        model: the model to explain (see `Explainer`).
        background: the baselines to draw from: an array `(B, *input_shape)`
            of `B >= 1` samples (typically tens of training inputs), each draw
            picking one uniformly; or one baseline per input as
            `IntegratedGradients` takes it: 'zeros', 'blur', 'uniform' (a
            fresh uniform-noise baseline for each draw), a number, or a
            callable `inputs -> baselines`.
        samples: draws per input (default 32).
        noise: standard deviation of the Gaussian noise added to each draw's
            input, as a fraction of the input's value range (default 0: none).
        seed: the integer seed of the draws (default 0).
        sample_batch_size: draws that go through the model together (default
            1, so a pass holds one ordinary batch); results do not depend on it.
        channel_reduction: 'sum' (default), 'mean' or 'l2'; None keeps one map
            per channel, maps `(N, *spatial, C, L)`.
        blur_sigma: standard deviation in pixels of the 'blur' background
            (default 5.0).
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`, `strategy`).

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]
    ('auto'), or the signed attributions reduced over channels (None);
    `(N, *spatial, C, L)` with `channel_reduction=None`.

    Raises:
        ValueError: an empty background, a background with NaN or Inf, an
            unknown background name, or an option out of range.
        InputError: background samples of another shape than the inputs (at
            construction when the model's input shape is known, else when
            `explain` starts).
        TypeError: a background of an unsupported type, or a non-integer seed.
        LayerError: `layer=` is given: the input itself is explained.

    Example:
        >>> background = train_images[:64]
        >>> shap = ke.GradientSHAP(model, background, samples=64, sample_batch_size=8)
        >>> expl = shap.explain(images, labels)

    References:
        Erion, Janizek, Sturmfels, Lundberg & Lee (2021), "Improving
        performance of deep learning models with axiomatic attribution
        priors and expected gradients". <https://arxiv.org/abs/1906.10670>

        Lundberg & Lee (2017), "A Unified Approach to Interpreting Model
        Predictions". <https://arxiv.org/abs/1705.07874>
    """

    several_inputs_refusal = (
        "its draws pick one background sample per input array; use IntegratedGradients, "
        "whose baseline can be given per input."
    )

    background: Any = attrs.field(converter=as_baseline, validator=_check_background)
    samples: int = attrs.field(default=32, kw_only=True, validator=positive_int)
    noise: float = attrs.field(default=0.0, kw_only=True, validator=non_negative_number)
    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    sample_batch_size: int = attrs.field(
        default=1, kw_only=True, validator=positive_int, metadata=RESULT_NEUTRAL
    )
    blur_sigma: float = attrs.field(default=5.0, kw_only=True, validator=positive_number)

    def _prepare(self, exposure: Exposure) -> None:
        if not isinstance(self.background, np.ndarray):
            check_baseline(self.background, exposure, "background")
        if exposure.input_shape is not None:
            self._check_background_shape(exposure.input_shape[1:])

    def _check_background_shape(self, sample_shape: Any) -> None:
        background = self.background
        if not isinstance(background, np.ndarray):
            return
        sample_shape = tuple(sample_shape)
        if background.ndim != len(sample_shape) + 1:
            readable = tuple("?" if size is None else size for size in sample_shape)
            raise InputError(
                f"background of shape {background.shape} is not a set of baselines "
                f"(B, *input_shape) for inputs of shape {readable}."
            )
        check_baseline_shape(background[0], sample_shape, "a background sample")

    def _baselines(self, inputs: tf.Tensor, keys: tf.Tensor, draws: tf.Tensor) -> tf.Tensor:
        """The `(k, N, *shape)` baselines of draws `draws` `(k,)`."""
        background = self.background
        if isinstance(background, np.ndarray):
            count = background.shape[0]
            choice = _uniform(keys, self.seed, draws, BACKGROUND_CHOICE)  # (k, N)
            rows = tf.minimum(tf.cast(choice * count, tf.int32), count - 1)
            chosen = tf.gather(tf.constant(background, inputs.dtype), rows)
            return tf.broadcast_to(chosen, tf.concat([tf.shape(rows), tf.shape(inputs)[1:]], 0))
        if isinstance(background, str) and background == "uniform":
            # A fresh uniform baseline for each draw.
            return tf.stack(
                [
                    baseline_images(background, inputs, seed=self.seed, index=draws[offset])
                    for offset in range(draws.shape[0])
                ]
            )
        baselines = baseline_images(
            background,
            inputs,
            blur_sigma=self.blur_sigma,
            name="background",
            embedding=self.exposure.embedding,
        )
        return tf.broadcast_to(
            baselines[None], tf.concat([tf.shape(draws), tf.shape(inputs)], axis=0)
        )

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        self._check_background_shape(inputs.shape[1:])
        _, outputs = self._forward(inputs)
        targets = targets.fixed(outputs)
        scores, explained = targets.select(outputs)
        keys = sample_keys(inputs)
        rank = inputs.shape.rank

        def points(indices: tf.Tensor) -> tuple:
            draws = tf.cast(indices, tf.int64)
            starts = inputs[None]
            if self.noise > 0:
                starts = noisy_copies(inputs, self.noise, self.seed, draws, INPUT_NOISE)
            baselines = self._baselines(inputs, keys, draws)
            alphas = tf.cast(_uniform(keys, self.seed, draws, PATH_POINT), inputs.dtype)
            alphas = tf.reshape(alphas, tf.concat([tf.shape(alphas), [1] * (rank - 1)], 0))
            images = alphas * starts + (1.0 - alphas) * baselines
            weights = tf.fill(tf.shape(indices), 1.0 / self.samples)
            return images, weights, starts - baselines

        integral = self._integrate(inputs, targets, points, self.samples, self.sample_batch_size)
        return Attribution(self._maps(integral.gradients), scores, explained)


def _uniform(keys: tf.Tensor, seed: int, draws: tf.Tensor, purpose: int) -> tf.Tensor:
    """`(k, N)` float32 numbers uniform in (0, 1), one per draw and sample key."""
    streams = hash32(keys[None] ^ stream_key(seed, draws[:, None], purpose))
    uniform = hashed_uniform(tf.stack([tf.size(streams), 1]), tf.reshape(streams, [-1]))
    return tf.reshape(uniform, tf.shape(streams))
