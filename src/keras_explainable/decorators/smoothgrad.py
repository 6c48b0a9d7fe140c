"""SmoothGrad, SmoothGrad-squared and VarGrad: average maps over noisy inputs.

Smilkov, Thorat, Kim, Viégas & Wattenberg (2017), "SmoothGrad: removing noise
by adding noise". https://arxiv.org/abs/1706.03825

SmoothGrad-squared: Hooker, Erhan, Kindermans & Kim (2019), "A Benchmark for
Interpretability Methods in Deep Neural Networks". https://arxiv.org/abs/1806.10758

VarGrad: Adebayo, Gilmer, Goodfellow & Kim (2018), "Local Explanation Methods
for Deep Neural Networks Lack Sensitivity to Parameter Values".
https://arxiv.org/abs/1810.03307
"""

from __future__ import annotations

from typing import Any

import attrs
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.attribution import Attribution
from keras_explainable.decorators.base import Decorator
from keras_explainable.noise import noisy_copy
from keras_explainable.signature import RESULT_NEUTRAL
from keras_explainable.targets import Targets
from keras_explainable.validators import check_seed, non_negative_number, positive_int

__all__ = ["SmoothGrad"]

_VARIANTS = ("mean", "squared", "variance")


@attrs.define(eq=False)
class SmoothGrad(Decorator):
    """Average the wrapped explainer's maps over noisy copies of each input.

    Copy `i` of sample `x` is `x + noise * (max(x) - min(x)) * e_i`, with
    `e_i` standard normal noise hashed (`keras_explainable.noise`) from the
    seed, the copy number `i` and a fingerprint of the sample's values: the
    noise level is a fraction of each sample's own value range, and the maps
    are a reproducible function of the sample and the seed (independent of
    the batch size, the sample's place in its batch and distribution). The raw
    maps `m_i` of the copies are combined per `variant`:

    - `'mean'` (SmoothGrad): `mean_i m_i`;
    - `'squared'` (SmoothGrad-squared): `mean_i m_i^2`;
    - `'variance'` (VarGrad): `mean_i (m_i - mean_j m_j)^2` (the population
      variance, over `samples`).

    Statistics are kept online (a running mean and sum of squared deviations)
    and the copies are processed inside the compiled step, `noise_batch_size`
    copies per pass, so memory does not grow with `samples`. The combined
    raw maps then go through the wrapped explainer's post-processing. Scores
    are the mean explained score over the noisy copies; top-class targets are
    resolved on the clean input. Cost: `samples` runs of the wrapped
    explainer (plus one forward pass for top-class targets).

    Args:
        explainer: the explainer to wrap (any `Explainer`, decorators too).
        samples: noisy copies per input (default 50, as in the paper).
        noise: standard deviation of the noise as a fraction of each sample's
            value range `max - min` (default 0.15; the paper finds 0.1-0.2
            works well). 0 gives the wrapped explainer's maps.
        seed: the integer seed of the noise (default 0).
        variant: 'mean' (default), 'squared' or 'variance'.
        noise_batch_size: noisy copies of the batch evaluated in one pass of
            the wrapped explainer (default 1); a pass holds `batch_size *
            noise_batch_size` inputs. Results do not depend on it.
        batch_size, verbose, strategy: as for `Explainer`; default the
            wrapped explainer's (see `Decorator`).

    Raises:
        TypeError: `explainer` is not an `Explainer`, or `seed` is not an int.
        ValueError: an option is out of range.

    Example:
        >>> smooth = ke.SmoothGrad(ke.Saliency(model), samples=25, noise=0.1)
        >>> expl = smooth.explain(images, labels)
        >>> vargrad = ke.SmoothGrad(ke.Saliency(model), variant="variance")

    References:
        SmoothGrad: Smilkov, Thorat, Kim, Viégas & Wattenberg (2017),
        "SmoothGrad: removing noise by adding noise".
        <https://arxiv.org/abs/1706.03825>

        SmoothGrad-squared: Hooker, Erhan, Kindermans & Kim (2019), "A
        Benchmark for Interpretability Methods in Deep Neural Networks".
        <https://arxiv.org/abs/1806.10758>

        VarGrad: Adebayo, Gilmer, Goodfellow & Kim (2018), "Local Explanation
        Methods for Deep Neural Networks Lack Sensitivity to Parameter
        Values". <https://arxiv.org/abs/1810.03307>
    """

    samples: int = attrs.field(default=50, kw_only=True, validator=positive_int)
    noise: float = attrs.field(default=0.15, kw_only=True, validator=non_negative_number)
    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    variant: str = attrs.field(
        default="mean", kw_only=True, validator=attrs.validators.in_(_VARIANTS)
    )
    noise_batch_size: int = attrs.field(
        default=1, kw_only=True, validator=positive_int, metadata=RESULT_NEUTRAL
    )

    def _noisy_copies(self, inputs: Any, first: tf.Tensor, copies: int) -> Any:
        """Return copies `first .. first + copies - 1` of the batch, copy-major.

        With several inputs each gets its own noise, scaled to its own range.
        """

        def copied(part: tf.Tensor) -> tf.Tensor:
            noisy = [
                noisy_copy(part, self.noise, self.seed, tf.cast(first + offset, tf.int64))
                for offset in range(copies)
            ]
            return tf.concat(noisy, axis=0)

        return tf.nest.map_structure(copied, inputs)

    def _chunk(self, inputs: tf.Tensor, targets: Targets, first: tf.Tensor, copies: int) -> tuple:
        """Statistics of `copies` noisy copies starting at copy `first`.

        Copies past `samples` (in the last chunk) get weight 0.

        Returns:
            `(count, mean, squared_deviations, score_sum, targets)`.
        """
        attribution = self.explainer.attribute(
            self._noisy_copies(inputs, first, copies), targets.tiled(copies)
        )
        valid = tf.cast(first + tf.range(copies) < self.samples, tf.float32)
        count = tf.reduce_sum(valid)

        def statistics(maps: tf.Tensor) -> tuple:
            maps = ops.split_copies(tf.cast(maps, tf.float32), copies)
            if self.variant == "squared":
                maps = tf.square(maps)
            weights = tf.reshape(valid, [copies] + [1] * (maps.shape.rank - 1))
            mean = tf.reduce_sum(weights * maps, axis=0) / count
            return mean, tf.reduce_sum(weights * tf.square(maps - mean), axis=0)

        # One input's maps, or a tuple of them (several inputs).
        parts = [statistics(maps) for maps in tf.nest.flatten(attribution.maps)]
        mean = tf.nest.pack_sequence_as(attribution.maps, [part[0] for part in parts])
        deviations = tf.nest.pack_sequence_as(attribution.maps, [part[1] for part in parts])
        scores = ops.split_copies(tf.cast(attribution.scores, tf.float32), copies)
        score_sum = tf.reduce_sum(valid[:, None, None] * scores, axis=0)
        size = ops.sample_count(inputs)
        return count, mean, deviations, score_sum, attribution.targets[:size]

    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        targets = self._fixed_targets(inputs, targets)
        copies = min(self.noise_batch_size, self.samples)
        chunks = -(-self.samples // copies)
        count, mean, deviations, score_sum, indices = self._chunk(
            inputs, targets, tf.constant(0), copies
        )

        def body(
            chunk: tf.Tensor,
            count: tf.Tensor,
            mean: tf.Tensor,
            deviations: tf.Tensor,
            score_sum: tf.Tensor,
        ) -> tuple:
            part_count, part_mean, part_deviations, part_scores, _ = self._chunk(
                inputs, targets, chunk * copies, copies
            )
            # Chan et al.'s merge of two (count, mean, squared deviations).
            total = count + part_count

            def merged(mean: tf.Tensor, deviations: tf.Tensor, part_mean, part_deviations):
                delta = part_mean - mean
                return (
                    mean + delta * (part_count / total),
                    deviations + part_deviations + tf.square(delta) * (count * part_count / total),
                )

            flat = (tf.nest.flatten(x) for x in (mean, deviations, part_mean, part_deviations))
            pairs = [merged(*per_input) for per_input in zip(*flat, strict=True)]
            mean = tf.nest.pack_sequence_as(mean, [pair[0] for pair in pairs])
            deviations = tf.nest.pack_sequence_as(deviations, [pair[1] for pair in pairs])
            return chunk + 1, total, mean, deviations, score_sum + part_scores

        if chunks > 1:
            _, count, mean, deviations, score_sum = tf.while_loop(
                lambda chunk, *_: chunk < chunks,
                body,
                (tf.constant(1), count, mean, deviations, score_sum),
            )
        if self.variant == "variance":
            maps = tf.nest.map_structure(lambda part: part / self.samples, deviations)
        else:
            maps = mean
        return Attribution(maps, score_sum / self.samples, indices)
