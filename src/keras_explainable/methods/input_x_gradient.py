"""Input × Gradient: the input times the gradient of the score.

Shrikumar, Greenside, Shcherbina & Kundaje (2016), "Not Just a Black Box:
Learning Important Features Through Propagating Activation Differences".
https://arxiv.org/abs/1605.01713
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable.base import Attribution
from keras_explainable.methods.input_attribution import InputAttributionExplainer
from keras_explainable.targets import Targets

__all__ = ["InputXGradient"]


@attrs.define(eq=False)
class InputXGradient(InputAttributionExplainer):
    """Gradient times input: each input element times its gradient.

    The attribution of input element `x_i` is `x_i * dS/dx_i`, the first-order
    Taylor term of the score; the map at each position reduces the
    attributions of the input's channels ('sum' by default). With
    `postprocess=None` the maps are exactly `sum_c x_c * dS/dx_c`. For a
    linear model (or a piecewise-linear one without biases) they add up to
    the score. Cost: one forward and one backward pass to the input per
    target, as Saliency.

    'auto' post-processing takes the absolute value before scaling each map
    to [0, 1] (as Captum's and Xplique's visualisations show signed
    attributions by default); `postprocess=None` keeps the sign.

    Args:
        model: the model to explain (see `Explainer`).
        channel_reduction: 'sum' (default), 'mean' or 'l2' (the norm of the
            channels' attributions, unsigned); None keeps one map per channel,
            `x_c * dS/dx_c`, maps `(N, *spatial, C, L)`.
        **kwargs: the `Explainer` options (`output`, `logits`, `batch_size`,
            `postprocess`, `resize`, `verbose`, `jit_compile`, `strategy`).

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1]
    ('auto'), or the signed attributions reduced over channels (None);
    `(N, *spatial, C, L)` with `channel_reduction=None`.

    Raises:
        ValueError: `channel_reduction` is not 'sum', 'mean', 'l2' or None.
        LayerError: `layer=` is given: the input itself is explained.

    Example:
        >>> expl = ke.InputXGradient(model).explain(images, labels)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Shrikumar, Greenside, Shcherbina & Kundaje (2016), "Not Just a Black
        Box: Learning Important Features Through Propagating Activation
        Differences". <https://arxiv.org/abs/1605.01713>
    """

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        result = self._input_gradients(inputs, targets)
        products = tf.nest.map_structure(lambda g, x: g * x[:, None], result.gradients, inputs)
        return result.attribution(self._maps(products))
