"""Metrics: how far an explanation can be trusted, and which method suits a model.

Every metric is configured in its constructor and called as
`metric(explainer_or_maps, x, y, ...)`; it scores one map per sample, batch by
batch in a compiled step, and returns per-sample `values` and their `mean`.

- Faithfulness: `Deletion` and `Insertion` (RISE), `AverageDrop` and
  `IncreaseInConfidence` (Grad-CAM++), `AverageGain` (Opti-CAM),
  `FaithfulnessCorrelation` and `MuFidelity` (Bhatt et al.), `Infidelity`
  (Yeh et al.), `Completeness` (maps that add up to the score's change),
  `ROAD` and `SymmetricRelevanceGain` (removal with noisy linear imputation).
- Localisation: `PointingGame`, `EnergyPointingGame`,
  `RelevanceMassAccuracy` and `RelevanceRankAccuracy` (with ground-truth
  masks or boxes).
- Complexity: `Sparseness` (Gini index) and `Complexity` (entropy).
- Robustness: `MaxSensitivity` and `AvgSensitivity` (Yeh et al.).
- Sanity: `ModelRandomization` (Adebayo et al.), `RandomLogit` (Sixt et al.).

`evaluate` scores several explainers with several metrics at once and returns
an `Evaluation`, which writes an HTML report (`to_html`).

Example:
    >>> import keras_explainable as ke
    >>> result = ke.metrics.Deletion()(ke.GradCAM(model), images, labels)
    >>> result.values.shape, result.mean
"""

from keras_explainable.metrics.average_drop import AverageDrop
from keras_explainable.metrics.average_gain import AverageGain
from keras_explainable.metrics.base import Batch, Metric, MetricResult, ModelMetric
from keras_explainable.metrics.completeness import Completeness, CompletenessResult
from keras_explainable.metrics.complexity import Complexity
from keras_explainable.metrics.curve import CurveResult
from keras_explainable.metrics.deletion import Deletion
from keras_explainable.metrics.energy_pointing_game import EnergyPointingGame
from keras_explainable.metrics.evaluate import (
    default_metrics,
    evaluate,
    format_table,
    score_explanation,
)
from keras_explainable.metrics.evaluation import Evaluation, bootstrap_interval
from keras_explainable.metrics.faithfulness_correlation import FaithfulnessCorrelation
from keras_explainable.metrics.increase_in_confidence import IncreaseInConfidence
from keras_explainable.metrics.infidelity import Infidelity
from keras_explainable.metrics.insertion import Insertion
from keras_explainable.metrics.mu_fidelity import MuFidelity
from keras_explainable.metrics.pointing_game import PointingGame
from keras_explainable.metrics.random_logit import RandomLogit
from keras_explainable.metrics.randomization import (
    ModelRandomization,
    RandomizationResult,
)
from keras_explainable.metrics.relevance_accuracy import (
    RelevanceMassAccuracy,
    RelevanceRankAccuracy,
)
from keras_explainable.metrics.removal import CorrelationResult
from keras_explainable.metrics.road import ROAD, RoadResult, SymmetricRelevanceGain
from keras_explainable.metrics.sensitivity import (
    AvgSensitivity,
    MaxSensitivity,
    SensitivityResult,
)
from keras_explainable.metrics.sparseness import Sparseness

__all__ = [
    "AverageDrop",
    "AverageGain",
    "AvgSensitivity",
    "Batch",
    "Completeness",
    "CompletenessResult",
    "Complexity",
    "CorrelationResult",
    "CurveResult",
    "Deletion",
    "EnergyPointingGame",
    "Evaluation",
    "FaithfulnessCorrelation",
    "IncreaseInConfidence",
    "Infidelity",
    "Insertion",
    "MaxSensitivity",
    "Metric",
    "MetricResult",
    "ModelMetric",
    "ModelRandomization",
    "MuFidelity",
    "PointingGame",
    "ROAD",
    "RandomLogit",
    "RandomizationResult",
    "RelevanceMassAccuracy",
    "RelevanceRankAccuracy",
    "RoadResult",
    "SensitivityResult",
    "Sparseness",
    "SymmetricRelevanceGain",
    "bootstrap_interval",
    "default_metrics",
    "evaluate",
    "score_explanation",
    "format_table",
]
