"""The `Decorator` base: an explainer that wraps another explainer.

A decorator runs the wrapped explainer's `_attribute` several times on
transformed inputs inside its own compiled step, maps the raw maps back to a
common geometry and combines them. It is itself an `Explainer`, so it has the
same `explain` / `__call__` / `Explanation`, and decorators nest in any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import tensorflow as tf

from keras_explainable.base import Attribution, Explainer
from keras_explainable.exposure import Exposure
from keras_explainable.signature import RESULT_NEUTRAL
from keras_explainable.targets import OBJECT, TOP, TargetPlan, Targets
from keras_explainable.validators import check_verbose, positive_int

__all__ = ["Decorator"]


@attrs.define(eq=False)
class Decorator(Explainer):
    """Base class of explainers that wrap another explainer.

    What a decorator shares with the explainer it wraps:

    - the model and its exposure (no second replay): `model`, `layer`,
      `layers`, `token_grid`, `skip_tokens`, `output` and `logits` are the
      wrapped explainer's, read-only; with several layers, each pass of the
      wrapped explainer explains (and averages) them all;
    - post-processing: the combined raw maps go through the wrapped
      explainer's own `finish_maps`, so its `rectify`, `postprocess` and
      `resize` hold for the final maps (ReLU, resize and normalisation apply
      once, after averaging, never to each pass);
    - `jit_compile`: the wrapped explainer's;
    - target rules: the wrapped explainer's `check_targets`.
    - per-sample options: the wrapped explainer's `sample_data`.

    `batch_size`, `verbose` and `strategy` default to the wrapped
    explainer's, and can be set on the decorator: the decorator's compiled
    step is what `explain` runs, each step explaining `batch_size` samples.

    Top-class targets (`y=None`) are resolved once on the clean input
    (`Targets.fixed`), so every transformed pass explains the same units.

    Subclasses implement `_attribute(inputs, targets)` by calling
    `self.explainer.attribute` on transformed inputs and returning raw maps
    in the geometry of the wrapped explainer's raw maps on `inputs`.

    Args:
        explainer: the explainer to wrap: any `Explainer`, including a
            user-defined subclass or another decorator.
        batch_size: samples per compiled step; default the wrapped
            explainer's.
        verbose: progress display, as for `Explainer`; default the wrapped
            explainer's.
        strategy: a `tf.distribute.Strategy`, as for `Explainer`; default the
            wrapped explainer's.

    Raises:
        TypeError: `explainer` is not an `Explainer`.
        ValueError: an option is out of range.

    Example:
        A decorator that averages the maps of an input and of its negation:

        >>> @attrs.define(eq=False)
        ... class Negated(ke.Decorator):
        ...     def _attribute(self, inputs, targets):
        ...         targets = self._fixed_targets(inputs, targets)
        ...         plain = self.explainer.attribute(inputs, targets)
        ...         negated = self.explainer.attribute(-inputs, targets)
        ...         return ke.Attribution(
        ...             (plain.maps + negated.maps) / 2, plain.scores, plain.targets
        ...         )
        >>> expl = Negated(ke.GradCAM(model)).explain(images)
        >>> expl.method
        'Negated(GradCAM)'
    """

    explainer: Explainer = attrs.field(validator=attrs.validators.instance_of(Explainer))
    model: Any = attrs.field(init=False, repr=False)
    layer: Any = attrs.field(init=False, repr=False)
    layers: tuple | None = attrs.field(init=False, repr=False)
    token_grid: tuple[int, int] | None = attrs.field(init=False, repr=False)
    skip_tokens: int | None = attrs.field(init=False, repr=False)
    output: str | int | None = attrs.field(init=False, repr=False)
    logits: bool = attrs.field(init=False, repr=False)
    postprocess: Any = attrs.field(init=False, repr=False)
    resize: bool = attrs.field(init=False, repr=False)
    resize_to: str | int | None = attrs.field(init=False, repr=False)
    jit_compile: bool = attrs.field(init=False, repr=False)
    batch_size: int | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(positive_int),
        metadata=RESULT_NEUTRAL,
    )
    verbose: str | int | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(check_verbose),
        metadata=RESULT_NEUTRAL,
    )

    def __attrs_post_init__(self) -> None:
        inner = self.explainer
        self.model = inner.model
        self.layer = inner.layer
        self.layers = inner.layers
        self.token_grid = inner.token_grid
        self.skip_tokens = inner.skip_tokens
        self.output = inner.output
        self.logits = inner.logits
        self.postprocess = inner.postprocess
        self.resize = inner.resize
        self.resize_to = inner.resize_to
        self.jit_compile = inner.jit_compile
        if self.batch_size is None:
            self.batch_size = inner.batch_size
        if self.verbose is None:
            self.verbose = inner.verbose
        if self.strategy is None:
            self.strategy = inner.strategy
        super().__attrs_post_init__()

    # The wrapped explainer's class-level flags, per instance.
    @property
    def needs_layer(self) -> bool:  # type: ignore[override]
        """Whether the wrapped explainer reads a hidden layer."""
        return self.explainer.needs_layer

    @property
    def rectify(self) -> bool:  # type: ignore[override]
        """Whether the wrapped explainer's 'auto' post-processing uses a ReLU."""
        return self.explainer.rectify

    @property
    def magnitude(self) -> bool:  # type: ignore[override]
        """Whether the wrapped explainer's 'auto' post-processing takes absolute values."""
        return self.explainer.magnitude

    @property
    def explained_inputs(self) -> tuple[int, ...] | None:
        """The inputs the wrapped explainer returns maps of (see `Explainer.explained_inputs`)."""
        return self.explainer.explained_inputs

    @property
    def method_name(self) -> str:
        """The decorator's name around the wrapped one: `"TTA(SmoothGrad(GradCAM))"`."""
        return f"{type(self).__name__}({self.explainer.method_name})"

    def _expose(self) -> Exposure:
        return self.explainer.exposure

    def attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        """Raw maps of one batch: the decorator's `_attribute` (see `Explainer.attribute`).

        The wrapped explainer explains and averages its layers in each of its
        passes, so the decorator does not go through them again.
        """
        return self._attribute(inputs, targets)

    def _check_targets(self, plan: TargetPlan) -> None:
        self.explainer.check_targets(plan)

    def _nonfinite_hint(self) -> str:
        return self.explainer._nonfinite_hint()

    def _sample_data(self) -> dict:
        return self.explainer.sample_data()

    def _start_run(self, spec: Any) -> None:
        self.explainer.start_run(spec)

    def _end_run(self) -> None:
        self.explainer.end_run()

    def finish_maps(self, maps: tf.Tensor, spatial_size: Sequence) -> tf.Tensor:
        """The wrapped explainer's post-processing (see `Explainer.finish_maps`)."""
        return self.explainer.finish_maps(maps, spatial_size)

    def _fixed_targets(self, inputs: tf.Tensor, targets: Targets) -> Targets:
        """Resolve top-class targets (and a target object's units) on the clean inputs.

        One forward pass, for those targets only.
        """
        if targets.kind not in (TOP, OBJECT):
            return targets
        _, outputs = self._forward(inputs)
        return targets.fixed(outputs)
