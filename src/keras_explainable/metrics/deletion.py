"""Deletion: how fast the score falls as the most salient pixels are removed.

Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for Explanation
of Black-box Models". https://arxiv.org/abs/1806.07421
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from keras_explainable.metrics.curve import PixelCurve

__all__ = ["Deletion"]


@attrs.define(eq=False)
class Deletion(PixelCurve):
    """The deletion metric of RISE: area under the score-vs-pixels-removed curve.

    Pixels are replaced by the baseline (black by default, as in the paper)
    in decreasing order of saliency, `steps` steps from the intact image to
    the all-baseline image. The score of the explained unit (its probability
    by default) is recorded after each step, and the value is the area under
    that curve over the fraction of pixels removed (trapezoidal rule, on
    [0, 1]). A map that finds the pixels the prediction relies on makes the
    score collapse early: **lower is better**.

    Args:
        steps: steps of the curve (default 100).
        baseline: 'zeros' (default), 'blur', 'mean', a number or an array;
            see `PixelCurve`.
        blur_sigma: the blur's standard deviation in pixels (default 5.0).
        step_batch_size: curve points per forward pass (default 16).
        use_probabilities: score probabilities (default True) or logits.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `CurveResult`: `values (N,)` areas, their `mean`,
    and the `curves (N, steps + 1)`.

    Raises:
        ValueError, TypeError: an option is invalid (at construction).

    Example:
        >>> deletion = ke.metrics.Deletion(steps=50)
        >>> result = deletion(ke.GradCAM(model), images, labels)
        >>> result.mean, result.curves.shape   # (0.08, (N, 51))

    References:
        Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for
        Explanation of Black-box Models". <https://arxiv.org/abs/1806.07421>
    """

    higher_is_better: ClassVar[bool] = False
    deletes: ClassVar[bool] = True
