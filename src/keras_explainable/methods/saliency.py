"""Saliency: the gradient of the score with respect to the input.

Simonyan, Vedaldi & Zisserman (2014), "Deep Inside Convolutional Networks:
Visualising Image Classification Models and Saliency Maps".
https://arxiv.org/abs/1312.6034
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Attribution, Explainer
from keras_explainable.targets import Targets

__all__ = ["Saliency"]


@attrs.define(eq=False)
class Saliency(Explainer):
    """Input-gradient saliency maps.

    For target score `S` and input `x`, the map at each position is
    `reduce_c |dS/dx[..., c]|`: the largest absolute gradient over the input's
    channels (the paper's choice). With `channel_reduction=None` each channel
    keeps its own map, `|dS/dx[..., c]|`: for multichannel series or
    spectra, which channel matters where. Cost: one forward and one backward
    pass to the input per target.

    Args:
        model: the model to explain (see `Explainer`).
        channel_reduction: how to reduce the input channels at each position:
            'auto' (default: 'max' as in the paper, or 'l2' on a text model,
            the norm of the gradient over the embedding of each token), 'max',
            'mean', 'sum' or 'l2'; None keeps one map per channel, maps `(N,
            *spatial, C, L)`.
        absolute: take the absolute value of the gradient before reducing
            (default True). With False and 'sum' or 'mean' the map is signed.
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`).

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]
    (per-channel `(N, *spatial, C, L)` with `channel_reduction=None`, each
    sample and target normalised over all its positions and channels).

    Raises:
        ValueError: `channel_reduction` is not 'auto', 'max', 'mean', 'sum', 'l2' or None.
        TypeError: `absolute` is not a bool.
        LayerError: `layer=` is given: Saliency explains the input itself.

    Example:
        >>> expl = ke.Saliency(model).explain(images, labels)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]
        >>> per_channel = ke.Saliency(model, channel_reduction=None).explain(series)
        >>> per_channel.maps.shape   # (N, T, C, 1)

    References:
        Simonyan, Vedaldi & Zisserman (2014), "Deep Inside Convolutional
        Networks: Visualising Image Classification Models and Saliency Maps".
        <https://arxiv.org/abs/1312.6034>
    """

    needs_layer = False
    rectify = False

    channel_reduction: str | None = attrs.field(
        default="auto",
        kw_only=True,
        validator=attrs.validators.optional(
            attrs.validators.in_(("auto", *ops.CHANNEL_REDUCTIONS))
        ),
    )
    absolute: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        result = self._input_gradients(inputs, targets)
        reduction = self._channel_reduction()
        maps = tf.nest.map_structure(
            lambda gradients: ops.gradient_maps(gradients, reduction, self.absolute),
            result.gradients,
        )
        return result.attribution(maps)

    def _channel_reduction(self) -> str | None:
        """The `channel_reduction` to use ('auto' resolved for this model)."""
        return ops.gradient_reduction(self.channel_reduction, self.exposure.embedding is not None)
