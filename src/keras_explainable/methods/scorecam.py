"""Score-CAM: channels weighted by the score of the input they mask.

Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), "Score-CAM:
Score-Weighted Visual Explanations for Convolutional Neural Networks".
https://arxiv.org/abs/1910.01279

The `max_channels` option follows Faster Score-CAM (keep only the channels of
largest activation variance), from the authors' code release.
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Attribution, Explainer
from keras_explainable.errors import InputError
from keras_explainable.perturbation import evaluate_perturbations
from keras_explainable.signature import RESULT_NEUTRAL
from keras_explainable.targets import Targets
from keras_explainable.validators import positive_int

__all__ = ["ScoreCAM"]


@attrs.define(eq=False)
class ScoreCAM(Explainer):
    """Score-weighted class activation maps (no gradients).

    Each channel `A_c` of the explained layer is upsampled to the input size,
    min-max normalised to a mask `M_c` in [0, 1] (a constant channel gives an
    all-zero mask), and the masked input `x * M_c` is fed forward. The weight
    of channel `c` for target unit `k` is, by default, the "Channel-wise
    Increase of Confidence" of the paper:

        w_c = softmax(f(x * M_c))_k - softmax(f(0))_k

    with `f` the logits, and the map is `ReLU(sum_c w_c A_c)`. The masked
    inputs are evaluated inside the compiled step, `mask_batch_size` channels
    at a time, so never more than `batch_size * mask_batch_size` masked copies
    exist at once. Cost: one forward pass per channel (or `max_channels`) and
    sample, plus one for the input and one for the baseline.

    Args:
        model: the model to explain (see `Explainer`).
        layer: the layer whose channels make the masks; default the last layer
            whose output keeps the input's spatial dimensions.
        mask_batch_size: channels whose masked inputs are evaluated together
            in one forward pass (default 16); a pass holds `batch_size *
            mask_batch_size` masked inputs. Results do not depend on it.
        max_channels: keep only the `max_channels` channels of largest spatial
            activation variance per sample (Faster Score-CAM); the others get
            weight 0. Default None: all channels.
        use_probabilities: score masked inputs by probability (default True):
            the softmax of the logits, or the sigmoid when the model's output
            ends in a sigmoid. False uses the raw logits. With `logits=False`
            the model's own outputs are used as they are. A target callable
            receives these probabilities.
        baseline: subtract the score of an all-zero input (default True), as
            in the paper; the weights are then increases of confidence.
        normalize_weights: replace the weights by their softmax over channels
            (default False), the variant some libraries use. The softmax
            ignores a common shift, so `baseline` then has no effect.
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1];
    scores are the explained logits of the unmasked input.

    Raises:
        ValueError: an option is out of range.
        InputError: the inputs' spatial size is not known when the step is
            compiled (a dataset of variable-size images).

    Example:
        >>> scorecam = ke.ScoreCAM(model, layer="conv5_block3_out", max_channels=256)
        >>> expl = scorecam.explain(x)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), "Score-CAM:
        Score-Weighted Visual Explanations for Convolutional Neural
        Networks". <https://arxiv.org/abs/1910.01279>
    """

    several_inputs_refusal = (
        "it masks one input with the layer's upsampled activations; use GradCAM or "
        "AblationCAM, whose maps fit the layer's input."
    )

    mask_batch_size: int = attrs.field(
        default=16, kw_only=True, validator=positive_int, metadata=RESULT_NEUTRAL
    )
    max_channels: int | None = attrs.field(
        default=None, kw_only=True, validator=attrs.validators.optional(positive_int)
    )
    use_probabilities: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    baseline: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    normalize_weights: bool = attrs.field(
        default=False, kw_only=True, validator=attrs.validators.instance_of(bool)
    )

    def _confidence(self, outputs: tf.Tensor, targets: Targets) -> tf.Tensor:
        """Turn outputs into what the masked inputs are scored on."""
        # With logits=False the outputs are the model's own probabilities.
        return self.exposure.confidence(outputs, self.use_probabilities and self.logits, targets)

    def _channel_scores(
        self, inputs: tf.Tensor, features: tf.Tensor, targets: Targets, count: int
    ) -> tf.Tensor:
        """Score the inputs masked by each channel: `(N, L, C)` for `count` targets.

        The masked inputs are built and scored `mask_batch_size` channels per
        pass, by the lazy perturbation evaluator.
        """
        size = inputs.shape[1:-1]

        def masked(channels: tf.Tensor) -> tf.Tensor:
            # (N, *spatial, k) channels -> (k, N, *size, 1) masks in [0, 1].
            masks = ops.normalize_maps(
                ops.resize_maps(tf.gather(features, channels, axis=-1), size)
            )
            masks = tf.expand_dims(tf.experimental.numpy.moveaxis(masks, -1, 0), -1)
            return tf.cast(masks, inputs.dtype) * inputs[None]

        def score(images: tf.Tensor, copies: int) -> tf.Tensor:
            _, outputs = self._forward(images)
            scores, _ = targets.tiled(copies).select(self._confidence(outputs, targets))
            return scores

        channels = features.shape[-1]
        scores = evaluate_perturbations(masked, score, channels, self.mask_batch_size, [count])
        return tf.transpose(scores, [1, 2, 0])

    def _selected_channels(self, features: tf.Tensor) -> tf.Tensor:
        """Keep the `max_channels` channels of largest spatial variance, per sample."""
        if self.max_channels is None or self.max_channels >= features.shape[-1]:
            return features
        variance = tf.math.reduce_variance(
            tf.cast(features, tf.float32), axis=ops.spatial_axes(features)
        )
        _, keep = tf.math.top_k(variance, k=self.max_channels)
        return tf.gather(features, keep, axis=-1, batch_dims=1)

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        if any(size is None for size in inputs.shape[1:-1]):
            raise InputError(
                "ScoreCAM upsamples channels to the input size, which must be known: "
                f"got inputs of shape {tuple(inputs.shape)}. Batch images of one size."
            )
        features, outputs = self._forward(inputs)
        scores, indices = targets.select(outputs)
        targets = targets.fixed(outputs)
        features = self._selected_channels(features)
        weights = self._channel_scores(inputs, features, targets, scores.shape[1])
        if self.baseline:
            _, baseline_outputs = self._forward(tf.zeros_like(inputs))
            baseline_scores, _ = targets.select(self._confidence(baseline_outputs, targets))
            weights = weights - baseline_scores[..., None]
        if self.normalize_weights:
            weights = tf.nn.softmax(weights, axis=-1)
        maps = ops.weighted_feature_sum(features, weights)
        return Attribution(maps, scores, indices)
