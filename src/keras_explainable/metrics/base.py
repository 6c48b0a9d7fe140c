"""The `Metric` base class: the engine every metric shares.

A metric scores one map per sample. It takes the maps ready-made (an
`Explanation` or an array) or an explainer that makes them, and walks the
inputs batch by batch like the explainers do: arrays, tensors and `tf.data`
datasets are validated by the same input source, each batch is scored inside a
`tf.function` compiled once per input signature, and a `keras.utils.Progbar`
shows progress. With an explainer, each batch is explained and scored in the
same pass over the inputs.

A metric subclasses `Metric` (or `ModelMetric`, for metrics that run the model
on perturbed inputs) and implements one hook, `_measure(batch)`, which maps a
`Batch` to `(n,)` per-sample values inside the compiled step.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable.engine import ArrayWriter, StepCache, batch_indices, progress_bar, run_steps
from keras_explainable.errors import InputError, ModelStructureError, TargetError
from keras_explainable.exposure import Exposure, expose
from keras_explainable.metrics.batch import Batch
from keras_explainable.metrics.job import Job, make_job
from keras_explainable.metrics.result import MetricResult
from keras_explainable.metrics.truth import single_map
from keras_explainable.targets import (
    FUNCTION,
    INDEX,
    OBJECT,
    TOP,
    Class,
    Target,
    Targets,
)
from keras_explainable.validators import check_verbose, positive_int

__all__ = ["Batch", "Metric", "MetricResult", "ModelMetric", "batch_targets"]


@attrs.define(eq=False)
class Metric(abc.ABC):
    """Base class of the metrics: score one map per sample, batch by batch.

    Call a metric as `metric(explainer_or_maps, x, y, ...)`. It returns a
    `MetricResult` with one value per sample and their `mean`.

    Writing a metric: subclass `Metric` (or `ModelMetric` to run the model),
    declare options as `attrs` fields with validators, set the class flags
    for what the metric reads, and implement `_measure(batch)`, which runs in
    the compiled step and returns `(n,)` values (or a tuple whose first item
    is the values, the others extra per-sample tensors handed to `_result`):

        @attrs.define(eq=False)
        class PeakValue(ke.metrics.Metric):
            '''The largest value of each map.'''

            needs_inputs = False

            def _measure(self, batch):
                return tf.reduce_max(batch.maps, axis=[1, 2])

    A metric that runs the model scores images with `batch.score(images)`;
    override `_result(values, *extras)` to return a richer result.

    Args:
        batch_size: samples per compiled step (default 32). A dataset keeps
            its own batching; an unbatched dataset is batched with this size.
        verbose: 'auto' (a progress bar on a terminal for multi-batch runs),
            0 (silent), 1 (progress bar) or 2 (one line per run).

    Raises:
        ValueError: an option is out of range.
    """

    #: Whether a higher value means a better explanation (None: neither).
    higher_is_better: ClassVar[bool | None] = None
    #: Whether `_measure` reads the inputs (else `x` may be None with maps).
    needs_inputs: ClassVar[bool] = True
    #: Whether the metric runs the model (`model=` or the explainer's model).
    needs_model: ClassVar[bool] = False
    #: Whether the metric compares maps with ground truth (`masks=`/`boxes=`).
    needs_masks: ClassVar[bool] = False
    #: Whether the metric re-runs the explainer (it takes no ready-made maps).
    needs_explainer: ClassVar[bool] = False

    batch_size: int = attrs.field(default=32, kw_only=True, validator=positive_int)
    verbose: str | int = attrs.field(default="auto", kw_only=True, validator=check_verbose)
    _steps: StepCache = attrs.field(
        factory=lambda: StepCache(autograph=True), init=False, repr=False
    )
    _exposures: list = attrs.field(factory=list, init=False, repr=False)

    @property
    def name(self) -> str:
        """The metric's name, recorded in its results: the class name."""
        return type(self).__name__

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def _measure(self, batch: Batch) -> tf.Tensor | tuple[tf.Tensor, ...]:
        """Per-sample values of one batch, inside the compiled step.

        Args:
            batch: the batch's inputs, maps, masks and targets.

        Returns:
            `(n,)` values, or a tuple of per-sample tensors whose first item
            is the `(n,)` values.
        """

    def _result(self, values: np.ndarray, *extras: np.ndarray) -> MetricResult:
        """Assemble the result from the per-sample arrays (optional hook)."""
        return MetricResult(self.name, values.astype(np.float64))

    def _finish(self, job: Job, result: MetricResult) -> MetricResult:
        """Complete the result after the run (optional hook; default: as it is)."""
        return result

    def _check_spatial(self, spatial: tuple[int | None, ...]) -> None:  # noqa: B027
        """Reject inputs of a spatial size the metric cannot score (optional hook).

        Called with the inputs' spatial size (None where unknown) before any
        batch is scored; raises `InputError`.
        """

    def _scorer(self, exposure: Exposure) -> Callable | None:
        """Return the function that scores images, for metrics with a model."""
        return None

    # ------------------------------------------------------------------- call
    def __call__(
        self,
        explainer_or_maps: Any,
        x: Any = None,
        y: Any = None,
        *,
        model: Any = None,
        output: str | int | None = None,
        masks: Any = None,
        boxes: Any = None,
    ) -> MetricResult:
        """Score maps on inputs `x`.

        Args:
            explainer_or_maps: an `Explainer` (each batch of `x` is explained,
                then scored), an `Explanation`, or maps `(N, *spatial)` or
                `(N, *spatial, 1)` (numpy or tensor) at the inputs' size. One
                map (one target) per sample.
            x: the explained inputs `(N, *spatial, C)`: an array, a tensor or a
                `tf.data.Dataset` yielding `x` or `(x, y)`, in the maps'
                order (a dataset must not reshuffle between iterations).
                Optional for metrics that read no inputs, given maps.
            y: the explained units, as for `Explainer.explain` (None: the top
                predicted unit; an int; `(N,)`; a callable on the outputs).
                With an explainer it is what the explainer explains; with an
                `Explanation` the recorded targets are used, and `y` is only
                for an `Explanation` made with a target callable (pass it
                again).
            model: the model that scores maps given as an `Explanation` or an
                array, for metrics that run a model; with an explainer, its
                own model is used.
            output: with `model=`, the output to score of a multi-output model.
            masks: bool `(N, *spatial)` ground truth, for metrics that take it.
            boxes: `(N, 4)` integer boxes `(y_min, x_min, y_max, x_max)`,
                max exclusive, instead of `masks` (2-D inputs).

        Returns:
            The metric's result: per-sample `values` and their `mean`.

        Raises:
            InputError: malformed inputs, maps or masks, or counts that differ.
            TargetError: targets that do not fit, or more than one per sample.
            TypeError: an argument of the wrong type, a missing one, or one
                this metric does not use.

        Example:
            >>> deletion = ke.metrics.Deletion()
            >>> deletion(ke.GradCAM(model), images, labels).mean  # explain, score
            >>> expl = ke.GradCAM(model).explain(images, labels)
            >>> deletion(expl, images, model=model).values          # ready-made maps
            >>> ke.metrics.PointingGame()(expl, masks=masks).mean   # no inputs needed
        """
        job = make_job(self, explainer_or_maps, x, y, model, output, masks, boxes)
        if job.source is not None:
            self._check_spatial(tuple(job.source.spec.shape[1:-1]))
        return self._finish(job, self._result(*self._run(job)))

    # --------------------------------------------------------------- machinery
    def exposure_of(self, model: Any, output: Any) -> Exposure:
        """Return the model re-wired to its logits (one per model and output).

        Reusing the exposure across calls lets them reuse the compiled steps.
        """
        for known, known_output, exposure in self._exposures:
            if known is model and known_output == output:
                return exposure
        exposure = expose(model, needs_layer=False, output=output, logits=True)
        if exposure.several_inputs:
            raise ModelStructureError(
                f"{type(self).__name__} perturbs one input by its maps; the model has several "
                f"inputs {list(exposure.input_layout.names)}, which metrics do not take yet."
            )
        if exposure.embedding is not None:
            raise ModelStructureError(
                f"{type(self).__name__} perturbs inputs by their maps; the model takes token "
                "ids into an Embedding (a text model), which metrics do not take yet."
            )
        self._exposures.append((model, output, exposure))
        return exposure

    def _walks_inputs(self, job: Job) -> bool:
        """Whether the batches come from the inputs (else from the maps alone)."""
        return job.source is not None and (self.needs_inputs or job.explainer is not None)

    def _batches(self, job: Job) -> Iterator[tuple[int, int, Any, Any]]:
        """Yield `(start, size, x_batch or None, y_batch or None)` batches."""
        if self._walks_inputs(job):
            for start, x_batch, y_batch in job.source:
                yield start, int(x_batch.shape[0]), x_batch, y_batch
            return
        for start in range(0, job.count, self.batch_size):
            yield start, min(self.batch_size, job.count - start), None, None

    def _batch_count(self, job: Job) -> int | None:
        if self._walks_inputs(job):
            return job.source.batches
        return -(-job.count // self.batch_size)

    def _run(self, job: Job) -> list[np.ndarray]:
        """Score every batch; returns the per-sample arrays of `_measure`."""
        writer = ArrayWriter(job.count)
        progress = progress_bar(self.verbose, self._batch_count(job), "batch")
        run_steps(self._scored_batches(job), writer, progress)
        if job.count is not None and writer.size != job.count:
            raise InputError(
                f"The inputs have {writer.size} samples but the maps or masks {job.count}."
            )
        return writer.arrays()

    def _scored_batches(self, job: Job) -> Iterator[tuple[int, tuple]]:
        """Yield `(start, step outputs)` per batch: maps made (or taken) and scored."""
        for start, size, x_batch, y_batch in self._batches(job):
            stop = start + size
            if job.count is not None and stop > job.count:
                raise InputError(
                    f"The inputs have more samples than the {job.count} maps or masks."
                )
            kind, indices = None, None
            if job.explainer is not None:
                explanation = job.explainer.explain(
                    x_batch, batch_targets(job.explainer_y, start, stop, y_batch)
                )
                maps = single_map(explanation.maps, has_channel=True)
                if job.masks is not None and maps.shape[1:] != job.masks.shape[1:]:
                    raise InputError(
                        f"Maps of spatial size {maps.shape[1:]} do not match the "
                        f"masks' {job.masks.shape[1:]}; explain with resize=True."
                    )
                if self.needs_model:
                    kind = job.plan.kind if job.plan.kind in (FUNCTION, OBJECT) else INDEX
                    indices = explanation.targets
            else:
                maps = job.maps[start:stop]
                if self.needs_model:
                    kind = job.plan.kind
                    from_dataset = job.plan.indices is None and job.plan.constant is None
                    own = y_batch if from_dataset else None
                    indices = batch_indices(job.plan, start, size, own, job.exposure.output_units)
            feed: dict[str, Any] = {"maps": maps}
            if kind == INDEX:
                if indices.shape[1] != 1:
                    raise TargetError(
                        f"{self.name} scores one target per sample; got {indices.shape[1]}."
                    )
                feed["indices"] = np.asarray(indices, np.int64)
            if kind == OBJECT:
                feed["data"] = job.plan.batch_data(start, stop)
            if self.needs_inputs:
                feed["inputs"] = x_batch
            if job.masks is not None:
                feed["masks"] = job.masks[start:stop]
            function = None if job.plan is None else job.plan.function
            yield start, self._step(feed, kind, function, job)(feed)

    def _step(self, feed: dict, kind: str | None, function: Any, job: Job) -> Callable:
        """Return the compiled step for this feed signature and target form."""

        def spec_of(value: Any) -> tf.TensorSpec:
            return tf.TensorSpec((None, *value.shape[1:]), tf.as_dtype(value.dtype))

        specs = {
            name: job.source.spec
            if name == "inputs"
            else tf.nest.map_structure(spec_of, value)
            if name == "data"
            else spec_of(value)
            for name, value in feed.items()
        }
        target = None if job.plan is None else job.plan.target
        key = (repr(specs), kind, id(function), id(target), id(job.exposure))

        def build() -> Callable:
            scorer = None if job.exposure is None else self._scorer(job.exposure)

            def step(feed: dict) -> tuple:
                inputs = feed.get("inputs")
                finite = tf.constant(True)
                if inputs is not None:
                    inputs = tf.cast(inputs, tf.float32)
                    finite = tf.reduce_all(tf.math.is_finite(inputs))
                targets = None
                if kind is not None:
                    targets = Targets(
                        kind,
                        indices=feed.get("indices"),
                        function=function,
                        target=target,
                        data=dict(feed.get("data", {})),
                    )
                    if kind == TOP:
                        targets = targets.fixed(scorer.outputs(inputs))
                batch = Batch(
                    inputs,
                    tf.cast(feed["maps"], tf.float32),
                    feed.get("masks"),
                    targets,
                    None if scorer is None else scorer.score,
                )
                values = self._measure(batch)
                if not isinstance(values, (tuple, list)):
                    values = (values,)
                return (*values, finite)

            return step

        # The step keeps the exposure alive, so the id in its key stays unique.
        return self._steps.get(key, build, [specs], keep=job.exposure)


@attrs.define(eq=False)
class _Scorer:
    """Scores images on target units with a model exposure (in the step)."""

    exposure: Exposure
    use_probabilities: bool

    def outputs(self, images: tf.Tensor, targets: Targets | None = None) -> tf.Tensor:
        """`(m, K)` float32 probabilities (or logits) of `images`, as `targets` read them."""
        _, outputs = self.exposure(tf.cast(images, self.exposure.compute_dtype))
        return self.exposure.confidence(outputs, self.use_probabilities, targets)

    def score(self, images: tf.Tensor, targets: Targets) -> tf.Tensor:
        """`(m,)` score of each image on its target."""
        scores, _ = targets.select(self.outputs(images, targets))
        if scores.shape[1] != 1:
            raise TargetError(
                f"Metrics score one target per sample; the target callable returned "
                f"{scores.shape[1]} scores per sample."
            )
        return scores[:, 0]


@attrs.define(eq=False)
class ModelMetric(Metric):
    """Base class of metrics that run the model on perturbed inputs.

    The model is the explainer's, or `model=` for ready-made maps. Images are
    scored on each sample's explained unit with `Batch.score`: by default the
    probability, as in the papers: the softmax of the logits (the sigmoid when
    the model's output ends in a sigmoid). A model without a final softmax or
    sigmoid is taken to output logits, and gets a softmax too.

    Args:
        use_probabilities: score probabilities (default True); False scores
            the pre-activation logits (the model's raw outputs when it ends in
            neither softmax nor sigmoid). A target callable `y` receives these
            probabilities or logits.
        batch_size: samples per compiled step (default 32).
        verbose: progress display, as for `Metric`.

    Raises:
        TypeError: `use_probabilities` is not a bool.
        ValueError: another option is out of range.

    Example:
        >>> @attrs.define(eq=False)
        ... class Blackout(ke.metrics.ModelMetric):
        ...     '''The probability left when the map's pixels are blacked out.'''
        ...
        ...     def _measure(self, batch):
        ...         return batch.score(batch.inputs * (1.0 - batch.maps[..., None]))
        >>> Blackout()(ke.GradCAM(model), images, labels).mean
    """

    needs_model: ClassVar[bool] = True

    use_probabilities: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )

    def _scorer(self, exposure: Exposure) -> _Scorer:
        return _Scorer(exposure, self.use_probabilities)


def batch_targets(y: Any, start: int, stop: int, y_batch: Any) -> Any:
    """Return the targets of samples `start:stop`, to explain one batch."""
    if y_batch is not None:
        return y_batch
    if isinstance(y, Class):
        y = y.index
    if isinstance(y, Target):
        return y.rows(start, stop)
    if y is None or callable(y) or isinstance(y, (int, np.integer)):
        return y
    y = y.numpy() if isinstance(y, tf.Tensor) else np.asarray(y)
    return y if y.ndim == 0 else y[start:stop]
