"""Insertion: how fast the score rises as the most salient pixels are restored.

Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for Explanation
of Black-box Models". https://arxiv.org/abs/1806.07421
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from keras_explainable.metrics.curve import PixelCurve, as_baseline, check_baseline

__all__ = ["Insertion"]


@attrs.define(eq=False)
class Insertion(PixelCurve):
    """The insertion metric of RISE: area under the score-vs-pixels-inserted curve.

    Starting from the baseline (a blurred copy of the image by default, as
    in the paper), the image's pixels are put back in decreasing order of
    saliency, `steps` steps until the image is intact. The score of the
    explained unit (its probability by default) is recorded after each step,
    and the value is the area under that curve over the fraction of pixels
    inserted (trapezoidal rule, on [0, 1]). A map that finds the pixels the
    prediction relies on makes the score rise early: **higher is better**.

    Args:
        steps: steps of the curve (default 100).
        baseline: 'blur' (default), 'zeros', 'mean', a number or an array;
            see `PixelCurve`.
        blur_sigma: the blur's standard deviation in pixels (default 5.0, as
            in the RISE code).
        step_batch_size: curve points per forward pass (default 16).
        use_probabilities: score probabilities (default True) or logits.
        batch_size: samples per compiled step (default 32).
        verbose: progress display.

    Returns from a call: a `CurveResult`: `values (N,)` areas, their `mean`,
    and the `curves (N, steps + 1)`.

    Raises:
        ValueError, TypeError: an option is invalid (at construction).

    Example:
        >>> insertion = ke.metrics.Insertion(steps=50)
        >>> insertion(ke.GradCAM(model), images, labels).mean   # 0.71

    References:
        Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for
        Explanation of Black-box Models". <https://arxiv.org/abs/1806.07421>
    """

    higher_is_better: ClassVar[bool] = True
    deletes: ClassVar[bool] = False

    baseline: Any = attrs.field(
        default="blur", kw_only=True, converter=as_baseline, validator=check_baseline
    )
