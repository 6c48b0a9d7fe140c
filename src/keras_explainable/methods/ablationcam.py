"""Ablation-CAM: channels weighted by the score lost when each is zeroed.

Desai & Ramaswamy (2020), "Ablation-CAM: Visual Explanations for Deep
Convolutional Network via Gradient-free Localization". WACV 2020.
https://openaccess.thecvf.com/content_WACV_2020/html/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.html
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Attribution, Explainer
from keras_explainable.errors import LayerError, warn_user
from keras_explainable.exposure import Exposure, Head, ReplacingHead
from keras_explainable.perturbation import evaluate_perturbations
from keras_explainable.signature import RESULT_NEUTRAL
from keras_explainable.targets import Targets
from keras_explainable.validators import positive_int

__all__ = ["AblationCAM", "ablation_weights", "SCORE_EPSILON"]

#: The smallest score magnitude `ablation_weights` divides by.
SCORE_EPSILON = 1e-6


def ablation_weights(scores: tf.Tensor, ablated: tf.Tensor) -> tf.Tensor:
    """Ablation-CAM channel weights: the relative drop of the score.

        w_c = (S - S_c) / S

    with `S_c` the score with channel `c` zeroed. A score closer to 0 than
    `SCORE_EPSILON` is divided as `+-SCORE_EPSILON` (its sign kept, + for 0):
    the weights stay finite and keep their direction, and since the divisor
    is common to a map's channels it only scales that map.

    Args:
        scores: `(N, L)` scores `S`.
        ablated: `(N, L, C)` scores `S_c`.

    Returns:
        `(N, L, C)` float32 channel weights.
    """
    scores = tf.cast(scores, tf.float32)[..., None]
    divisor = tf.where(
        scores < 0.0, tf.minimum(scores, -SCORE_EPSILON), tf.maximum(scores, SCORE_EPSILON)
    )
    return (scores - tf.cast(ablated, tf.float32)) / divisor


@attrs.define(eq=False)
class AblationCAM(Explainer):
    """Ablation-CAM: channels weighted by the score lost without them (no gradients).

    Each channel `A_c` of the explained layer is set to zero in turn and the
    part of the model after the layer is run again; with `S` the score and
    `S_c` the score without channel `c`, the weights are the relative drops
    `w_c = (S - S_c) / S` (see `ablation_weights` for a score near 0), and the
    map is `ReLU(sum_c w_c A_c)`. Where the part of the model after the
    layer is a functional graph (the layer is a node of a functional,
    `Sequential` or nested model) only that *head* is re-run
    (`Exposure.head`: the layers after the explained one, fed the ablated
    activations, and any tensor from before the layer that they read, such
    as a skip connection, from the one full pass), `channel_batch_size`
    channels per pass inside the compiled step, so the cost is one forward
    pass plus about `C` passes through the head, far less than `C` passes
    of the model for a late layer. A `SplitModel` re-runs its head alone.
    Elsewhere (a layer inside a composite layer, such as a keras-hub
    encoder's block, or of a subclassed model) each pass runs the whole
    model with the layer's output replaced by the ablated activations (a
    replace tap): about `C` forward passes; the explainer warns so when it
    is built (`full_passes`).

    Args:
        model: the model to explain (see `Explainer`); functional,
            `Sequential` (nested models allowed) or a `SplitModel`.
        layer: the layer whose channels are ablated; default the last layer
            whose output keeps the input's spatial dimensions.
        channel_batch_size: channels whose ablated copies go through the head
            together in one pass (default 32); a pass holds `batch_size *
            channel_batch_size` copies of the layer's activations. Results do
            not depend on it.
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1];
    scores are the explained scores of the unablated input.

    Raises:
        ValueError: `channel_batch_size` is not a positive integer.
        LayerError: the layer is unknown, ambiguous or does not feed the output.
        ModelStructureError: the part of the model after the layer cannot be
            built as a model of its own.

    Example:
        >>> ablation = ke.AblationCAM(model, layer="conv5_block3_out", channel_batch_size=64)
        >>> expl = ablation.explain(x, y)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Desai & Ramaswamy (2020), "Ablation-CAM: Visual Explanations for Deep
        Convolutional Network via Gradient-free Localization". WACV 2020.
        <https://openaccess.thecvf.com/content_WACV_2020/html/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.html>
    """

    channel_batch_size: int = attrs.field(
        default=32, kw_only=True, validator=positive_int, metadata=RESULT_NEUTRAL
    )
    _head: Head | ReplacingHead | None = attrs.field(default=None, init=False, repr=False)

    @property
    def head(self) -> Head | ReplacingHead:
        """The part of the model after the explained layer, which is re-run per channel."""
        return self._head

    @property
    def full_passes(self) -> bool:
        """Whether each ablated pass runs the whole model (not only the part after the layer)."""
        return isinstance(self._head, ReplacingHead) and self._head.full_passes

    def _prepare(self, exposure: Exposure) -> None:
        if len(exposure.layers) > 1:
            raise LayerError(
                "AblationCAM re-runs the part of the model after one layer; it takes "
                "layer=, not layers=. Explain each layer separately."
            )
        self._head = exposure.head()
        if self.full_passes:
            warn_user(
                UserWarning(
                    f"AblationCAM: the part of the model after layer {exposure.layer_name!r} "
                    "is not a functional graph (the layer is inside a composite layer or a "
                    "subclassed model), so each ablated pass runs the whole model with the "
                    "layer's output replaced: about one forward pass per channel."
                )
            )

    def _ablated_scores(
        self, features: tf.Tensor, context: list, targets: Targets, count: int
    ) -> tf.Tensor:
        """Scores with each channel zeroed: `(N, L, C)` for `count` targets."""
        channels = features.shape[-1]
        spatial = features.shape.rank - 2

        def ablated(indices: tf.Tensor) -> tf.Tensor:
            # (k,) channels -> (k, N, *spatial, C) activations, channel k zeroed in copy k.
            keep = 1.0 - tf.one_hot(indices, channels, dtype=features.dtype)
            return tf.reshape(keep, [-1, 1, *[1] * spatial, channels]) * features[None]

        def score(copies_features: tf.Tensor, copies: int) -> tf.Tensor:
            tiled = [tf.tile(t, [copies, *[1] * (t.shape.rank - 1)]) for t in context]
            outputs = self._head(copies_features, tiled)
            scores, _ = targets.tiled(copies).select(outputs)
            return scores

        scores = evaluate_perturbations(ablated, score, channels, self.channel_batch_size, [count])
        return tf.transpose(scores, [1, 2, 0])

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        features, context, outputs = self._head.split(inputs)
        scores, indices = targets.select(outputs)
        ablated = self._ablated_scores(features, context, targets.fixed(outputs), scores.shape[1])
        weights = ablation_weights(scores, ablated)
        # A token layer's (N, T, C) activations are ablated as tokens and
        # weighted on their patch grid.
        features = self.exposure.layers[0].on_grid(features)
        return Attribution(ops.weighted_feature_sum(features, weights), scores, indices)
