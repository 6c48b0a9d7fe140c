"""Eigen-CAM: activations projected on their first principal component.

Muhammad & Yeasin (2020), "Eigen-CAM: Class Activation Map using Principal
Components". https://arxiv.org/abs/2008.00299
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.base import Attribution, Explainer
from keras_explainable.targets import Targets

__all__ = ["EigenCAM", "eigen_maps"]


def eigen_maps(activations: tf.Tensor) -> tf.Tensor:
    """Project each sample's activations on their first principal component.

    The activations of one sample are a matrix of positions by channels;
    `ops.principal_projection` centres each channel over the positions and
    projects every position on the first principal direction, with the
    sign that correlates positively with the channel-summed activations.

    Args:
        activations: `(B, *spatial, C)` activations.

    Returns:
        `(B, *spatial)` float32 maps.
    """
    shape = tf.shape(activations)
    flat = tf.reshape(activations, [shape[0], -1, activations.shape[-1]])
    maps = tf.reshape(ops.principal_projection(flat), shape[:-1])
    return tf.ensure_shape(maps, activations.shape[:-1])


@attrs.define(eq=False)
class EigenCAM(Explainer):
    """Eigen-CAM: the first principal component of the activations (no gradients).

    The activations `A` of the explained layer, as a matrix of positions by
    channels with each channel's mean over the positions removed, are
    projected on their first principal direction `v` (the first right
    singular vector): `M_ij = sum_c (A_ijc - mean_ab A_abc) v_c`. The map
    does not depend on the class: every target of a sample gets the same
    map (the scores and targets are still the explained ones). An SVD leaves
    the sign of `v` arbitrary; here it is chosen so that the map correlates
    positively with the channel-summed activations, so the map is high
    where the layer is most active. Cost: one forward pass, whatever the
    number of targets, plus a small eigenproblem per sample (see
    `ops.principal_projection`).

    The raw map (`postprocess=None`) has zero mean over positions. 'auto'
    post-processing keeps its positive part (a ReLU: the positions with more
    of the principal component than average) before scaling to [0, 1], as
    pytorch-grad-cam does; the paper shows the projection itself.

    Args:
        model: the model to explain (see `Explainer`).
        layer: the layer to explain; default the last layer whose output keeps
            the input's spatial dimensions.
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1],
    the same for every target of a sample.

    Raises:
        LayerError: the layer is unknown, ambiguous or does not feed the output.

    Example:
        >>> expl = ke.EigenCAM(model, layer="conv5_block3_out").explain(x)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Muhammad & Yeasin (2020), "Eigen-CAM: Class Activation Map using
        Principal Components". IJCNN 2020. <https://arxiv.org/abs/2008.00299>
    """

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        features, outputs = self._forward(inputs)
        scores, indices = targets.select(outputs)
        maps = tf.repeat(eigen_maps(features)[..., None], scores.shape[1], axis=-1)
        return Attribution(maps, scores, indices)
