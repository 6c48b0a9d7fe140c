"""Average Gain: how much the map alone raises the score.

Zhang, Rao, Zhang, Chen & Lin (2023), "Opti-CAM: Optimizing saliency maps for
interpretability". https://arxiv.org/abs/2301.07002
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import tensorflow as tf

from keras_explainable.metrics.confidence import ConfidenceChange

__all__ = ["AverageGain"]


@attrs.define(eq=False)
class AverageGain(ConfidenceChange):
    """Average Gain (%): the score gained when only the explained region is kept.

    The counterpart of `AverageDrop`, proposed with Opti-CAM because a map
    can score a perfect Average Drop while never raising the score. With `Y`
    the explained unit's probability on the image and `O` its probability on
    the image multiplied by the normalised map (rectified and divided by its
    maximum; see `explanation_images`), each sample's value is

        100 * max(0, O - Y) / (1 - Y)

    and the mean over samples is the paper's Average Gain. **Higher is
    better**; an all-ones map scores 0. A sample with `Y = 1` has nothing to
    gain: its value is NaN and the mean leaves it out.

    Conventions: the paper's definition on probabilities (the default);
    with `use_probabilities=False` the formula is applied to logits as they
    are, where `1 - Y` is no longer the room left to gain.

    Args:
        use_probabilities: score probabilities (default True, as in the
            paper) or logits.
        return_perturbed: keep the map-weighted images of the first `k`
            samples in the result (default 0), `(k, 1, *input_shape)`.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `MetricResult` with per-sample gains in percent.

    Raises:
        TypeError: an option is not of its type (at construction), or a call
            without the model: pass an explainer, or maps with `model=`.

    Example:
        >>> ke.metrics.AverageGain()(ke.GradCAMPlusPlus(model), images, labels).mean
        12.4

    References:
        Zhang, Rao, Zhang, Chen & Lin (2023), "Opti-CAM: Optimizing saliency
        maps for interpretability". <https://arxiv.org/abs/2301.07002>
    """

    higher_is_better: ClassVar[bool] = True

    def _change(self, original: tf.Tensor, explained: tf.Tensor) -> tf.Tensor:
        gain = 100.0 * tf.nn.relu(explained - original) / (1.0 - original)
        return tf.where(original < 1, gain, tf.fill(tf.shape(gain), float("nan")))
