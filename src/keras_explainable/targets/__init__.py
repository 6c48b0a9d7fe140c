"""Targets: what score of the model's outputs an explanation explains.

`y` in `explain(x, y)` takes an int, an array of unit indices, a callable
`outputs -> (N, L)` or one of these target objects, which make the common
tasks one line and are checked against the model's outputs before any work:

- `Class(k)`: a class's logit (the same as `y=k`).
- `Segmentation(mask, k)`: class `k`'s logits summed over a region of a
  segmentation output `(N, H, W, K)`.
- `Box(box, k)`: a detector's score for class `k` of the detection that best
  overlaps `box`.
- `Regression(index, sign)`: a regression output, or its decrease.
- `NextToken(token_id, position)`: a causal language model's logit (or
  log-probability) of a token at a position.
- `Continuation(token_ids)`: the log-probability of a continuation of the
  prompt, one forward pass on prompt and continuation.
- `Target`: the base class of targets of your own.

Example:
    >>> ke.GradCAM(segmenter).explain(images, ke.targets.Segmentation(road, k=0))
"""

from keras_explainable.targets.box import Box, NoDetectionWarning
from keras_explainable.targets.language import Continuation, NextToken
from keras_explainable.targets.plan import FUNCTION as FUNCTION
from keras_explainable.targets.plan import INDEX as INDEX
from keras_explainable.targets.plan import OBJECT as OBJECT
from keras_explainable.targets.plan import TOP as TOP
from keras_explainable.targets.plan import TargetPlan as TargetPlan
from keras_explainable.targets.plan import Targets as Targets
from keras_explainable.targets.plan import as_index_array as as_index_array
from keras_explainable.targets.plan import plan_targets as plan_targets
from keras_explainable.targets.segmentation import Segmentation
from keras_explainable.targets.target import Class, Regression, Target

# The plan machinery above is re-exported for the rest of the package; the
# public names are these.
__all__ = [
    "Box",
    "Class",
    "Continuation",
    "NextToken",
    "NoDetectionWarning",
    "Regression",
    "Segmentation",
    "Target",
]
