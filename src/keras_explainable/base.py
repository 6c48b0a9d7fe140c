"""The `Explainer` base class: everything the methods share.

A method subclasses `Explainer` and implements one hook, `_attribute(inputs,
targets)`, which maps one batch of inputs to raw maps inside a compiled
`tf.function`. The base owns the rest: exposing the explained layer and the
pre-softmax scores, validating inputs and targets, batching, compiling once per
input signature, post-processing and resizing the maps, the progress bar, and
assembling the `Explanation`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.engine import progress_bar
from keras_explainable.errors import InputError, LayerError, TargetError
from keras_explainable.explanation import Explanation
from keras_explainable.exposure import Exposure, SplitModel, expose
from keras_explainable.inputs import InputSource, make_source
from keras_explainable.targets import (
    INDEX,
    TargetPlan,
    Targets,
    as_index_array,
    plan_targets,
)
from keras_explainable.validators import check_postprocess, check_verbose, positive_int

__all__ = ["Explainer", "Attribution", "FeatureGradients", "InputGradients"]


class Attribution(NamedTuple):
    """What `_attribute` returns for one batch.

    Attributes:
        maps: `(N, *spatial, L)` raw maps (before post-processing and resizing).
        scores: `(N, L)` explained scores.
        targets: `(N, L)` explained unit indices.

    Example:
        A method's `_attribute` returns one (CAM's, here):

        >>> def _attribute(self, inputs, targets):
        ...     features, outputs = self._forward(inputs)
        ...     scores, indices = targets.select(outputs)
        ...     weights = tf.gather(tf.transpose(kernel), indices)   # (N, L, C)
        ...     maps = tf.einsum("nhwc,nlc->nhwl", features, weights)
        ...     return Attribution(maps, scores, indices)
    """

    maps: tf.Tensor
    scores: tf.Tensor
    targets: tf.Tensor


class FeatureGradients(NamedTuple):
    """Activations of the explained layer and the gradients of each score.

    Attributes:
        features: `(N, *spatial, C)` activations of the explained layer.
        gradients: `(N, L, *spatial, C)` gradient of score `l` w.r.t. features.
        scores: `(N, L)` explained scores.
        targets: `(N, L)` explained unit indices.

    Example:
        Grad-CAM's `_attribute`, for 2-D inputs:

        >>> def _attribute(self, inputs, targets):
        ...     result = self._feature_gradients(inputs, targets)
        ...     weights = tf.reduce_mean(result.gradients, axis=[2, 3])   # (N, L, C)
        ...     maps = tf.einsum("nhwc,nlc->nhwl", result.features, weights)
        ...     return result.attribution(maps)
    """

    features: tf.Tensor
    gradients: tf.Tensor
    scores: tf.Tensor
    targets: tf.Tensor

    def attribution(self, maps: tf.Tensor) -> Attribution:
        """Pair `maps` with these scores and targets."""
        return Attribution(maps, self.scores, self.targets)


class InputGradients(NamedTuple):
    """Gradients of each explained score with respect to the input.

    Attributes:
        gradients: `(N, L, *spatial, C)` gradient of score `l` w.r.t. the input.
        scores: `(N, L)` explained scores.
        targets: `(N, L)` explained unit indices.

    Example:
        The `_attribute` of gradient times input:

        >>> def _attribute(self, inputs, targets):
        ...     result = self._input_gradients(inputs, targets)
        ...     maps = tf.reduce_sum(result.gradients * inputs[:, None], axis=-1)
        ...     return result.attribution(tf.experimental.numpy.moveaxis(maps, 1, -1))
    """

    gradients: tf.Tensor
    scores: tf.Tensor
    targets: tf.Tensor

    def attribution(self, maps: tf.Tensor) -> Attribution:
        """Pair `maps` with these scores and targets."""
        return Attribution(maps, self.scores, self.targets)


@attrs.define(eq=False)
class Explainer(abc.ABC):
    """Base class of all explanation methods.

    Construct a method with the model and its options, then call `explain`
    (or the explainer itself) on inputs and targets.

    Args:
        model: a Keras 3 model (functional or `Sequential`, nested models
            allowed; a subclassed model only for methods that need no hidden
            layer), or a `SplitModel`.
        layer: the layer to explain, for methods that use one: a name, a path
            into nested models (`"backbone/conv5_block3_out"`), an index into
            `model.layers`, or a `Layer`. Default: the last layer whose output
            keeps the input's spatial dimensions.
        output: for multi-output models, the output to explain (name or index).
        logits: explain the pre-activation logits when the output layer ends in
            a softmax or sigmoid (default True).
        batch_size: samples per compiled step (default 32). A dataset keeps its
            own batching; an unbatched dataset is batched with this size.
        postprocess: 'auto' (default) rectifies CAM-family maps with a ReLU and
            min-max normalises every map to [0, 1]; None returns raw maps; a
            callable receives the resized `(N, *spatial, L)` maps in the
            compiled step and returns new ones.
        resize: resize maps to the input's spatial size (default True).
        verbose: 'auto' (a progress bar on a terminal for multi-batch runs),
            0 (silent), 1 (progress bar) or 2 (one line per run).
        jit_compile: compile the step with XLA (default False).
        strategy: a `tf.distribute.Strategy` to explain with, its replicas each
            explaining a share of every batch; results come back in the input's
            order. Default: the model's `distribute_strategy` (a model built
            under `strategy.scope()` is explained with that strategy).

    Raises:
        LayerError: the layer is unknown, ambiguous or not connected.
        ModelStructureError: the model cannot be split or lacks what the
            method needs.
        TypeError: an argument has the wrong type.

    Example:
        Every method is used the same way:

        >>> explainer = ke.GradCAM(model, batch_size=64)
        >>> expl = explainer.explain(images, labels)   # or explainer(images, labels)
        >>> expl.maps.shape   # (N, H, W, 1)

        A new method subclasses `Explainer` and implements `_attribute`:

        >>> @attrs.define(eq=False)
        ... class LayerCAM(ke.Explainer):
        ...     def _attribute(self, inputs, targets):
        ...         result = self._feature_gradients(inputs, targets)
        ...         weighted = tf.nn.relu(result.gradients) * result.features[:, None]
        ...         maps = tf.reduce_sum(weighted, axis=-1)   # (N, L, *spatial)
        ...         maps = tf.experimental.numpy.moveaxis(maps, 1, -1)
        ...         return result.attribution(maps)   # (N, *spatial, L)
    """

    needs_layer: ClassVar[bool] = True
    """Whether the method reads a hidden layer (CAM family) or only the input."""
    rectify: ClassVar[bool] = True
    """Whether 'auto' post-processing applies a ReLU before normalising."""

    model: Any = attrs.field()
    layer: Any = attrs.field(default=None, kw_only=True)
    output: str | int | None = attrs.field(default=None, kw_only=True)
    logits: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    batch_size: int = attrs.field(default=32, kw_only=True, validator=positive_int)
    postprocess: str | Callable | None = attrs.field(
        default="auto", kw_only=True, validator=check_postprocess
    )
    resize: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    verbose: str | int = attrs.field(default="auto", kw_only=True, validator=check_verbose)
    jit_compile: bool = attrs.field(
        default=False, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    strategy: tf.distribute.Strategy | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(attrs.validators.instance_of(tf.distribute.Strategy)),
    )
    _exposure: Exposure | None = attrs.field(default=None, init=False, repr=False)
    _steps: dict = attrs.field(factory=dict, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.needs_layer and self.layer is not None:
            raise LayerError(
                f"{type(self).__name__} explains the input directly; it takes no layer= "
                f"(got layer={self.layer!r})."
            )
        self._exposure = self._expose()
        self._prepare(self._exposure)

    # ------------------------------------------------------------------ hooks
    def _expose(self) -> Exposure:
        """Build the exposure of the model this method needs."""
        return expose(
            self.model,
            layer=self.layer,
            needs_layer=self.needs_layer,
            output=self.output,
            logits=self.logits,
        )

    def _prepare(self, exposure: Exposure) -> None:  # noqa: B027 - optional hook
        """Check the model has the structure this method needs (optional hook)."""

    def _check_targets(self, plan: TargetPlan) -> None:  # noqa: B027 - optional hook
        """Reject target forms this method cannot explain (optional hook)."""

    @abc.abstractmethod
    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        """Compute raw maps for one batch, inside the compiled step.

        Args:
            inputs: `(N, *spatial, C)` float inputs.
            targets: the batch's `Targets`; `targets.select(outputs)` gives the
                explained scores and unit indices.

        Returns:
            An `Attribution` with `(N, *spatial', L)` raw maps.
        """

    # ------------------------------------------------------- shared machinery
    @property
    def exposure(self) -> Exposure:
        """The re-wired model that returns the explained layer and scores."""
        return self._exposure

    @property
    def layer_name(self) -> str | None:
        """The path of the explained layer, or None for input methods."""
        return self._exposure.layer_name

    @property
    def method_name(self) -> str:
        """The name recorded as `Explanation.method`: the class name.

        Wrappers override it to name what they wrap, e.g. `"SmoothGrad(GradCAM)"`.
        """
        return type(self).__name__

    def _forward(self, inputs: tf.Tensor) -> tuple[tf.Tensor | None, tf.Tensor]:
        """Run the model once; returns `(features, outputs)`."""
        return self._exposure(inputs)

    def _gradients(self, scores: tf.Tensor, source: tf.Tensor, what: str) -> tf.Tensor:
        """`(N, L, *source.shape[1:])`: gradient of each score column w.r.t. source.

        Samples are independent in inference mode, so the gradient of the
        batch sum of score `l` gives every sample's gradient in one backward
        pass per target, which stops at `source`.
        """
        count = scores.shape[1]
        if count is None:
            raise TargetError("The number of targets per sample must be known.")
        columns = []
        for column in range(count):
            (gradient,) = tf.gradients(tf.reduce_sum(scores[:, column]), source)
            if gradient is None:
                raise LayerError(
                    f"The explained score does not depend on {what} (no gradient path): "
                    "the map would be all zeros. Choose a layer that feeds the output."
                )
            columns.append(gradient)
        return tf.stack(columns, axis=1)

    def _feature_gradients(self, inputs: tf.Tensor, targets: Targets) -> FeatureGradients:
        """Activations of the explained layer and each score's gradient w.r.t. them."""
        features, outputs = self._forward(inputs)
        scores, indices = targets.select(outputs)
        gradients = self._gradients(scores, features, f"layer {self.layer_name!r}")
        return FeatureGradients(features, gradients, scores, indices)

    def _input_gradients(self, inputs: tf.Tensor, targets: Targets) -> InputGradients:
        """Each score's gradient w.r.t. the input."""
        _, outputs = self._forward(inputs)
        scores, indices = targets.select(outputs)
        gradients = self._gradients(scores, inputs, "the input")
        return InputGradients(gradients, scores, indices)

    def _finish_maps(self, maps: tf.Tensor, spatial_size: tuple) -> tf.Tensor:
        """Rectify, resize and normalise raw `(N, *spatial, L)` maps."""
        maps = tf.cast(maps, tf.float32)
        if self.postprocess == "auto" and self.rectify:
            maps = tf.nn.relu(maps)
        if self.resize:
            maps = ops.resize_maps(maps, spatial_size)
        if self.postprocess == "auto":
            maps = ops.normalize_maps(maps)
        elif callable(self.postprocess):
            maps = self.postprocess(maps)
        return maps

    def _input_dtype(self) -> tf.DType:
        dtype = self._exposure.input_dtype
        if dtype is None or not tf.as_dtype(dtype).is_floating:
            return tf.float32
        return tf.as_dtype(dtype)

    def _step_function(self, spec: tf.TensorSpec, plan: TargetPlan) -> Callable:
        """The uncompiled step: `(inputs, target indices) -> (maps, scores, targets, finite)`."""
        # The data's static size, else the model's, else the size at run time.
        model_shape = self._exposure.input_shape or (None,) * len(spec.shape)
        static_size = [
            data if data is not None else model
            for data, model in zip(spec.shape[1:-1], model_shape[1:-1], strict=True)
        ]
        input_dtype = self._input_dtype()

        def step(inputs: tf.Tensor, indices: tf.Tensor) -> tuple:
            spatial_size = [
                size if size is not None else tf.shape(inputs)[axis]
                for axis, size in enumerate(static_size, start=1)
            ]
            as_float = tf.cast(inputs, tf.float32)
            finite = tf.reduce_all(tf.math.is_finite(as_float))
            targets = Targets(
                plan.kind,
                indices=indices if plan.kind == INDEX else None,
                function=plan.function,
            )
            attribution = self._attribute(tf.cast(inputs, input_dtype), targets)
            maps = self._finish_maps(attribution.maps, spatial_size)
            scores = tf.cast(attribution.scores, tf.float32)
            return maps, scores, tf.cast(attribution.targets, tf.int64), finite

        return step

    def _step(self, spec: tf.TensorSpec, plan: TargetPlan, count: int) -> Callable:
        """The compiled step for this input signature and target form (cached)."""
        key = (tuple(spec.shape), spec.dtype, plan.kind, count, id(plan.function))
        if key not in self._steps:
            signature = [spec, tf.TensorSpec((None, count), tf.int64)]
            self._steps[key] = tf.function(
                self._step_function(spec, plan),
                input_signature=signature,
                jit_compile=self.jit_compile,
                # The step uses TensorFlow ops for its control flow; AutoGraph
                # would only re-read (and re-parse) the source of every method.
                autograph=False,
            )
        return self._steps[key]

    def _plan(self, source: InputSource, y: Any) -> TargetPlan:
        exposure = self._exposure
        if source.has_targets:
            plan = TargetPlan(INDEX, count=None)
        else:
            plan = plan_targets(y, source.count, exposure.output_units, exposure.output_shape)
        self._check_targets(plan)
        return plan

    def explain(self, x: Any, y: Any = None) -> Explanation:
        """Explain the model's predictions on `x`.

        Args:
            x: inputs `(N, *spatial, C)` as a numpy array or `tf.Tensor` (integer
                images are cast to float), or a `tf.data.Dataset` yielding `x`
                or `(x, y)`, batched or not.
            y: what to explain. None: the top predicted unit of each sample.
                An int: that unit for every sample. Shape `(N,)`: one unit per
                sample. Shape `(N, L)`: L units per sample in one call (the maps
                get L channels). A callable `outputs -> (N,) or (N, L)`: custom
                scores (regression, segmentation masks, ...).

        Returns:
            An `Explanation` with `maps (N, *spatial, L)`, `scores (N, L)` and
            `targets (N, L)`.

        Raises:
            InputError: wrong rank or shape, empty inputs, NaN/Inf values.
            TargetError: targets of the wrong length, shape or range.
            TypeError: inputs or targets of the wrong type.

        Example:
            >>> expl = ke.GradCAM(model).explain(images, labels)
            >>> expl.maps.shape
            (16, 224, 224, 1)
        """
        source, plan = self._inputs(x, y)
        results = _Results(source.count)
        self._run(source, plan, results)
        return Explanation(*results.arrays(), method=self.method_name, layer=self.layer_name)

    def explain_to_disk(
        self, x: Any, directory: Any, y: Any = None, *, resume: bool = True
    ) -> Explanation:
        """Explain `x` batch by batch, writing the results to `.npy` files.

        Memory stays bounded by one batch whatever the size of `x` (a large
        `tf.data.Dataset`): maps, scores and targets are appended to
        `directory/maps.npy`, `scores.npy` and `targets.npy` as each batch is
        done. An interrupted run, started again with the same `directory`,
        continues after the last completed batch (the inputs must come in the
        same order: do not shuffle), and produces the same files as an
        uninterrupted run.

        Args:
            x: inputs, as for `explain`.
            directory: the folder to write to (created if missing).
            y: targets, as for `explain`.
            resume: continue a previous, unfinished run in `directory`
                (default True). With False an existing run there is an error.

        Returns:
            An `Explanation` whose arrays are read-only memory maps of the files.

        Raises:
            InputError, TargetError, TypeError: as `explain`.
            FileExistsError: `directory` holds a run and `resume` is False, or
                a finished run.
            ValueError: `directory` holds a run of different inputs or options.

        Example:
            >>> expl = ke.GradCAM(model).explain_to_disk(dataset, "maps/")
            >>> expl.maps.shape   # a memory map; np.load("maps/maps.npy", mmap_mode="r")
        """
        from keras_explainable.streaming import NpyWriter

        source, plan = self._inputs(x, y)
        writer = NpyWriter.open(directory, resume=resume, signature=self._run_signature(source))
        self._run(source, plan, writer, skip_batches=writer.completed_batches)
        writer.finish()
        return Explanation(*writer.arrays(), method=self.method_name, layer=self.layer_name)

    def _run_signature(self, source: InputSource) -> dict:
        """What identifies a run for resuming: the method, options and input."""
        return {
            "method": self.method_name,
            "layer": self.layer_name,
            "batch_size": self.batch_size,
            "input": [str(s) for s in source.spec.shape[1:]] + [source.spec.dtype.name],
            "count": source.count,
        }

    def _inputs(self, x: Any, y: Any) -> tuple[InputSource, TargetPlan]:
        """Validate the inputs and targets of a run."""
        source = make_source(x, self._exposure.input_shape, self.batch_size, y)
        return source, self._plan(source, y)

    def _distribution(self) -> tf.distribute.Strategy | None:
        """The strategy to run under, or None for a plain single-device loop."""
        strategy = self.strategy
        if strategy is None:
            model = self.model
            if isinstance(model, SplitModel):
                model = model.feature_extractor
            strategy = getattr(model, "distribute_strategy", None)
        if strategy is None or strategy.num_replicas_in_sync <= 1:
            return None
        return strategy

    def _run(
        self, source: InputSource, plan: TargetPlan, writer: Any, skip_batches: int = 0
    ) -> None:
        """Explain every batch of `source` and hand the results to `writer`."""
        strategy = self._distribution()
        if strategy is not None:
            from keras_explainable.distribute import distributed_batches

            batches = distributed_batches(self, strategy, source, plan, skip_batches)
        else:
            batches = self._local_batches(source, plan, skip_batches)
        total = None if source.batches is None else source.batches - skip_batches
        progress = progress_bar(self.verbose, total)
        for start, maps, scores, targets in batches:
            writer.write(start, maps, scores, targets)
            if progress is not None:
                progress.add(1)
        if writer.size == 0:
            raise InputError("The dataset is empty; nothing to explain.")

    def _local_batches(self, source: InputSource, plan: TargetPlan, skip_batches: int) -> Any:
        """Yield `(start, maps, scores, targets)` numpy results batch by batch."""
        units = self._exposure.output_units
        for start, batch, batch_targets in source.iterate(skip_batches):
            size = int(batch.shape[0])  # never 0: `InputSource.iterate` drops empty batches
            if batch_targets is not None:
                batch_targets = as_index_array(batch_targets, size, units)
            indices = plan.batch(start, start + size, batch_targets)
            step = self._step(source.spec, plan, indices.shape[1])
            maps, scores, targets, finite = step(batch, indices)
            if not bool(finite):
                raise InputError(
                    f"Inputs contain NaN or Inf values in the batch starting at sample "
                    f"{start}; clean or drop them before explaining."
                )
            yield start, maps.numpy(), scores.numpy(), targets.numpy()

    def __call__(self, x: Any, y: Any = None) -> Explanation:
        """Same as `explain(x, y)`."""
        return self.explain(x, y)


class _Results:
    """Maps, scores and targets written batch by batch into preallocated arrays.

    With a known sample count the arrays are allocated once; for a dataset of
    unknown length they grow by doubling (amortised linear copying).
    """

    def __init__(self, count: int | None) -> None:
        self.count = count
        self.size = 0
        self.buffers: list[np.ndarray] | None = None

    def write(self, start: int, *parts: np.ndarray) -> None:
        stop = start + len(parts[0])
        if self.buffers is None:
            capacity = self.count if self.count is not None else max(stop, 64)
            self.buffers = [np.empty((capacity, *p.shape[1:]), p.dtype) for p in parts]
        elif stop > len(self.buffers[0]):
            capacity = max(stop, 2 * len(self.buffers[0]))
            self.buffers = [_grown(b, capacity) for b in self.buffers]
        for buffer, part in zip(self.buffers, parts, strict=True):
            buffer[start:stop] = part
        self.size = max(self.size, stop)

    def arrays(self) -> list[np.ndarray]:
        return [b[: self.size] for b in self.buffers]


def _grown(buffer: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.empty((capacity, *buffer.shape[1:]), buffer.dtype)
    grown[: len(buffer)] = buffer
    return grown
