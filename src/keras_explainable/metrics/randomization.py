"""The model randomisation sanity check.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for
Saliency Maps". https://arxiv.org/abs/1810.03292
"""

from __future__ import annotations

import warnings
from typing import Any

import attrs
import keras
import numpy as np
import tensorflow as tf

from keras_explainable.base import Explainer
from keras_explainable.decorators.base import Decorator
from keras_explainable.engine import progress_bar
from keras_explainable.errors import BlankMapWarning, ModelStructureError
from keras_explainable.exposure import SplitModel
from keras_explainable.validators import check_seed, check_verbose, positive_int

__all__ = ["ModelRandomization", "RandomizationResult", "spearman"]


@attrs.frozen(eq=False, repr=False)
class RandomizationResult:
    """Rank correlations between the original maps and those of randomised models.

    Attributes:
        metric: 'ModelRandomization'.
        layers: the paths of the randomised layers, top (output) first; with
            cascading randomisation, entry `k` has layers `0 .. k` randomised.
        values: float64 `(N, K)`: the Spearman rank correlation of each
            sample's original map with its map after randomising up to
            (or only, when not cascading) layer `k`.

    Example:
        >>> result = ke.metrics.ModelRandomization()(ke.GradCAM(model), x, y)
        >>> dict(zip(result.layers, result.mean.round(2)))
        {'predictions': 0.41, 'conv4': 0.12, ...}
    """

    metric: str
    layers: tuple[str, ...]
    values: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """`(K,)`: the mean correlation over samples after each layer."""
        return self.values.mean(axis=0)

    def __len__(self) -> int:
        """Return the number of samples."""
        return len(self.values)

    def __repr__(self) -> str:
        pairs = ", ".join(f"{n}={m:.3g}" for n, m in zip(self.layers, self.mean, strict=True))
        return f"RandomizationResult({pairs}; n={len(self)})"


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Rank each row, 0-based, giving tied values their average rank."""
    ranks = np.empty(values.shape, np.float64)
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    for row in range(len(values)):
        _, inverse, counts = np.unique(ordered[row], return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        ranks[row, order[row]] = ((ends - counts + ends - 1) / 2)[inverse]
    return ranks


def spearman(first: Any, second: Any) -> np.ndarray:
    """Spearman rank correlation of each pair of samples, over all their values.

    Ties get their average rank. A constant map ranks nothing, so a pair with
    a constant map has correlation 0.

    Args:
        first: `(N, ...)` maps.
        second: `(N, ...)` maps of the same shape.

    Returns:
        float64 `(N,)` correlations in [-1, 1].
    """
    first = np.asarray(first, np.float64).reshape(len(first), -1)
    second = np.asarray(second, np.float64).reshape(len(second), -1)
    if first.shape != second.shape:
        raise ValueError(f"Cannot correlate maps of shapes {first.shape} and {second.shape}.")
    a = _average_ranks(first)
    b = _average_ranks(second)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = (a * b).sum(axis=1) / norm
    return np.where(norm > 0, np.clip(correlation, -1.0, 1.0), 0.0)


def copy_model(model: Any) -> Any:
    """Copy a model with new layers holding copies of its weights.

    Args:
        model: a functional or `Sequential` Keras model (nested models
            allowed), or a `SplitModel` of two such models.

    Returns:
        The copy; the original is never modified through it.

    Raises:
        ModelStructureError: Keras cannot clone the model.
    """
    if isinstance(model, SplitModel):
        return attrs.evolve(
            model,
            feature_extractor=copy_model(model.feature_extractor),
            head=copy_model(model.head),
        )
    if not isinstance(model, keras.Model):
        raise ModelStructureError(
            f"The randomisation check copies the model, which must be a Keras model; "
            f"got {type(model).__name__}."
        )
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    except Exception as error:  # noqa: BLE001 - any failure means we cannot copy
        raise ModelStructureError(
            f"Could not copy the model {model.name!r} to randomise it "
            f"({type(error).__name__}: {error}). The check needs a functional or "
            "Sequential model (or a SplitModel of such models)."
        ) from error
    originals = {id(variable) for variable in model.weights}
    if any(id(variable) in originals for variable in copy.weights):
        raise ModelStructureError(
            f"The copy of {model.name!r} shares weights with it; cannot randomise it safely."
        )
    return copy


def _has_float_weights(layer: keras.layers.Layer) -> bool:
    return any(tf.as_dtype(v.dtype).is_floating for v in layer.weights)


def weighted_layers(model: Any) -> list[tuple[str, keras.layers.Layer]]:
    """List the layers with float weights, output first, as `(path, layer)`.

    Nested models are descended into; their layers' paths are joined with '/'.
    A layer shared between places is listed once, at its top-most place.

    Args:
        model: a Keras model or a `SplitModel`.

    Returns:
        `(path, layer)` pairs, top (output) first.
    """
    found: list[tuple[str, keras.layers.Layer]] = []

    def visit(layer: Any, path: tuple[str, ...]) -> None:
        if isinstance(layer, keras.Model):
            for inner in layer.layers:
                visit(inner, (*path, inner.name))
        elif _has_float_weights(layer):
            found.append(("/".join(path), layer))

    if isinstance(model, SplitModel):
        for half in (model.feature_extractor, model.head):
            visit(half, (half.name,))
    else:
        visit(model, ())
    seen: set[int] = set()
    top_down = []
    for path, layer in reversed(found):
        if id(layer) not in seen:
            seen.add(id(layer))
            top_down.append((path, layer))
    return top_down


def rebuild(explainer: Explainer, model: Any) -> Explainer:
    """Make the same explainer, with the same options, on another model.

    Decorators are rebuilt around the rebuilt explainer they wrap. The
    explained layer is given by its resolved path, so a layer passed as an
    object or an index is found in the copy too (with `layers=`, each
    layer). Progress display is off.

    Args:
        explainer: any `Explainer`, including a decorator.
        model: a model with the same structure and layer names.

    Returns:
        The new explainer.
    """
    if isinstance(explainer, Decorator):
        return attrs.evolve(explainer, explainer=rebuild(explainer.explainer, model), verbose=0)
    changes: dict[str, Any] = {"model": model, "verbose": 0}
    if explainer.layer_name is not None and not isinstance(model, SplitModel):
        option = "layer" if explainer.layers is None else "layers"
        changes[option] = explainer.layer_name
    return attrs.evolve(explainer, **changes)


@attrs.define(eq=False)
class ModelRandomization:
    """Model randomisation sanity check: whether the maps depend on the weights.

    A map that explains the model must change when the model's weights are
    destroyed. The check explains `x` with the original model, then
    randomises the layers with weights one at a time from the top (output)
    down, re-explains after each, and reports the Spearman rank correlation
    of every sample's new map with its original map. With cascading
    randomisation (the default, as in the paper) the randomised layers
    accumulate; otherwise only one layer at a time is randomised.

    A trustworthy method's correlation falls towards 0 as layers are
    randomised; one that stays high is insensitive to the model (an edge
    detector). A randomised layer has every float weight (kernels, biases,
    normalisation statistics) shuffled: its values permuted at random, which
    keeps their distribution but destroys what was learned.

    The original model is never modified: the check works on a copy
    (`keras.models.clone_model` plus the weights; nested models and
    `SplitModel` are supported), and the explainer is rebuilt on the copy with
    the same options (decorators such as SmoothGrad too), with the explained
    layer found by its path. Every sample is explained with the units the
    original model explained (`y=None` is resolved once, on the original).
    Cost: `1 + K` runs of the explainer for `K` layers.

    Args:
        cascading: randomise layers cumulatively from the top (default True);
            False randomises each layer alone.
        seed: the integer seed of the shuffles (default 0).
        max_layers: randomise only the top `max_layers` layers (default None:
            all).
        verbose: 'auto' (a progress bar over layers on a terminal), 0, 1 or 2.

    Raises:
        ValueError, TypeError: an option is invalid (at construction).

    Example:
        >>> check = ke.metrics.ModelRandomization()
        >>> result = check(ke.GradCAM(model), images, labels)
        >>> result.layers, result.mean   # correlation after each layer

    References:
        Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity
        Checks for Saliency Maps". <https://arxiv.org/abs/1810.03292>
    """

    cascading: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    seed: int = attrs.field(default=0, kw_only=True, validator=check_seed)
    max_layers: int | None = attrs.field(
        default=None, kw_only=True, validator=attrs.validators.optional(positive_int)
    )
    verbose: str | int = attrs.field(default="auto", kw_only=True, validator=check_verbose)

    @property
    def name(self) -> str:
        """Return the check's name: the class name."""
        return type(self).__name__

    def __call__(self, explainer: Explainer, x: Any, y: Any = None) -> RandomizationResult:
        """Run the check.

        Args:
            explainer: the explainer to check (any `Explainer`, decorators
                too). Ready-made maps cannot be re-made, so maps are refused.
            x: inputs as for `Explainer.explain` (a dataset must yield the
                same samples in the same order on every pass).
            y: targets as for `Explainer.explain`.

        Returns:
            A `RandomizationResult`: per-sample correlations `(N, K)` and their
            `mean` per layer.

        Raises:
            TypeError: `explainer` is not an `Explainer`.
            ModelStructureError: the model cannot be copied or has no weights.
            InputError, TargetError: as `Explainer.explain`.
        """
        if not isinstance(explainer, Explainer):
            raise TypeError(
                "ModelRandomization re-explains with randomised models, so it needs an "
                f"Explainer; got {type(explainer).__name__}."
            )
        model = copy_model(explainer.model)
        layers = weighted_layers(model)[: self.max_layers]
        if not layers:
            raise ModelStructureError("The model has no layer with weights to randomise.")
        original = explainer.explain(x, y)
        fixed_y = y if callable(y) or _yields_targets(x) else original.targets
        rng = np.random.default_rng(self.seed % 2**64)
        values = np.empty((len(original), len(layers)), np.float64)
        progress = progress_bar(self.verbose, len(layers), "layer")
        # Exposures share the model's variables, so one explainer on the copy
        # sees every randomisation.
        randomized = rebuild(explainer, model)
        for column, (_, layer) in enumerate(layers):
            variables = [v for v in layer.weights if tf.as_dtype(v.dtype).is_floating]
            saved = [v.numpy() for v in variables]
            for variable, value in zip(variables, saved, strict=True):
                variable.assign(rng.permutation(value.ravel()).reshape(value.shape))
            with warnings.catch_warnings():
                # A randomised model's blank maps are what this check measures,
                # not something wrong with the user's explainer.
                warnings.simplefilter("ignore", BlankMapWarning)
                maps = randomized.explain(x, fixed_y).maps
            values[:, column] = spearman(original.maps, maps)
            if not self.cascading:
                for variable, value in zip(variables, saved, strict=True):
                    variable.assign(value)
            if progress is not None:
                progress.add(1)
        return RandomizationResult(self.name, tuple(path for path, _ in layers), values)


def _yields_targets(x: Any) -> bool:
    """Whether `x` is a dataset of `(x, y)` pairs (its targets are reused)."""
    if not isinstance(x, tf.data.Dataset):
        return False
    spec = x.element_spec
    return isinstance(spec, (tuple, list)) and len(spec) > 1
