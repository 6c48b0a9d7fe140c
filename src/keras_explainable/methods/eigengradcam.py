"""Eigen-Grad-CAM: Eigen-CAM of the activations times their gradients.

The class-discriminative variant of Eigen-CAM from pytorch-grad-cam (Gildenblat
et al.); Eigen-CAM is Muhammad & Yeasin (2020), https://arxiv.org/abs/2008.00299
"""

from __future__ import annotations

import attrs
import tensorflow as tf

from keras_explainable.base import Attribution, Explainer
from keras_explainable.methods.eigencam import eigen_maps
from keras_explainable.targets import Targets

__all__ = ["EigenGradCAM"]


@attrs.define(eq=False)
class EigenGradCAM(Explainer):
    """Eigen-Grad-CAM: the first principal component of gradient times activation.

    As `EigenCAM`, but the matrix projected on its first principal direction
    is the element-wise product `G * A` of the activations and the target's
    gradients `G = dS/dA` (HiResCAM's terms before the channel sum), so the
    map depends on the class. The sign is chosen so that the map correlates
    positively with the channel-summed product (the HiResCAM map). Cost: as
    `GradCAM`, one forward pass and one backward pass through the head per
    target, plus a small eigenproblem per sample and target. 'auto'
    post-processing keeps the positive part, as for `EigenCAM`.

    Args:
        model: the model to explain (see `Explainer`).
        layer: the layer to explain; default the last layer whose output keeps
            the input's spatial dimensions.
        **kwargs: the `Explainer` options.

    Returns from `explain`: maps `(N, *spatial, L)` normalised to [0, 1].

    Raises:
        LayerError: the layer is unknown, ambiguous or does not feed the output.

    Example:
        >>> expl = ke.EigenGradCAM(model, layer="conv5_block3_out").explain(x, y)
        >>> expl.maps.shape   # (N, H, W, 1), values in [0, 1]

    References:
        Muhammad & Yeasin (2020), "Eigen-CAM: Class Activation Map using
        Principal Components". IJCNN 2020. <https://arxiv.org/abs/2008.00299>;
        the gradient variant: Gildenblat et al., pytorch-grad-cam.
        <https://github.com/jacobgil/pytorch-grad-cam>
    """

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        result = self._feature_gradients(inputs, targets)
        products = result.gradients * tf.cast(result.features, result.gradients.dtype)[:, None]
        shape = tf.shape(products)
        flat = tf.reshape(products, tf.concat([[-1], shape[2:]], axis=0))
        maps = tf.reshape(eigen_maps(flat), shape[:-1])
        maps = tf.ensure_shape(maps, products.shape[:-1])  # (N, L, *spatial)
        return result.attribution(tf.experimental.numpy.moveaxis(maps, 1, -1))
