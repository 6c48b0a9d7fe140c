"""The `Explainer` base class: everything the methods share.

A method subclasses `Explainer` and implements one hook, `_attribute(inputs,
targets)`, which maps one batch of inputs to raw maps inside a compiled
`tf.function`. The base owns the rest: exposing the explained layer and the
pre-softmax scores (`keras_explainable.exposure`), validating inputs and
targets, post-processing and resizing the maps, and assembling the
`Explanation`; batching, compiling, distribution and writing results run
through `keras_explainable.engine`.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import attrs
import numpy as np
import tensorflow as tf

from keras_explainable import ops
from keras_explainable.attribution import Attribution, FeatureGradients, InputGradients
from keras_explainable.distribute import distributed_batches, replicated
from keras_explainable.engine import (
    ArrayWriter,
    ResultWriter,
    StepCache,
    local_batches,
    progress_bar,
    run_steps,
)
from keras_explainable.errors import (
    BlankMapWarning,
    LayerError,
    ModelStructureError,
    NonFiniteError,
    warn_user,
)
from keras_explainable.explanation import Explanation
from keras_explainable.exposure import Exposure, SplitModel, expose
from keras_explainable.exposure.layer_access import LayerAccess
from keras_explainable.inputs import InputSource, make_source
from keras_explainable.signature import RESULT_NEUTRAL, describe, model_fingerprint, options
from keras_explainable.targets import INDEX, OBJECT, TargetPlan, Targets, plan_targets
from keras_explainable.validators import (
    check_postprocess,
    check_token_grid,
    check_verbose,
    layer_list,
    non_negative_int,
    positive_int,
)

__all__ = ["Explainer", "Attribution", "FeatureGradients", "InputGradients"]

# The notes every step adds to a method's own (`Attribution.notes`), per sample.
_FINITE_MAPS = "_finite_maps"
_BLANK_MAPS = "_blank_maps"
# How many sample indices a warning lists before it only counts them.
_LISTED_SAMPLES = 20


@attrs.define(eq=False)
class Explainer(LayerAccess, abc.ABC):
    """Base class of all explanation methods.

    Construct a method with the model and its options, then call `explain`
    (or the explainer itself) on inputs and targets.

    Args:
        model: a Keras 3 model: functional or `Sequential` (nested models
            allowed), a model built from composite layers (keras-hub's), or a
            subclassed model that was built (called once, or `build`); a
            subclassed model never built only for methods that need no
            hidden layer. Or a `SplitModel`. A functional model may take
            several inputs (an image and a feature vector, say): see "Models
            with several inputs" below.
        layer: the layer to explain, for methods that use one: its path
            through the model's layers and sublayers, at any depth, as
            `ke.list_layers(model)` prints it
            (`"vit_backbone/vit_encoder/transformer_block_2/ln_1"`, or any
            unique tail of it such as `"transformer_block_2/ln_1"`), a list of
            names, an index into `model.layers`, or the `Layer` itself.
            Default (with the reason in `Explanation.layer`): the last layer
            whose output keeps the input's spatial dimensions; in a
            segmenter, the last one before its classifier convolution; in a
            detector explained on all its outputs, the last one that feeds
            every output; in a vision transformer, the token input of the
            last attention layer, inside composite encoders too (see
            `token_grid`).
        call_index: for a layer the forward pass calls several times (shared
            weights), which call to read, from 0 (default: the layer must be
            called once).
        pad_token_id: for a text model, the token id that marks padding, when
            the model takes no padding mask (keras-hub models take one:
            `padding_mask`, read as it is). Padding gets no attribution: it
            keeps its own embedding whatever a method puts there, and its
            maps are 0.
        layers: several layers to explain together, each given as for `layer`
            (exclusive with it), for methods that use a layer. Each layer's
            map is made and post-processed (with 'auto': rectified, resized
            to the input and normalised), the maps are averaged, and the
            average is post-processed as any map (normalised again). One step
            runs the model once and one backward pass per target reaches all
            the layers; a method's own extra passes (Score-CAM's masked
            inputs) run per layer. `Explanation.layer` is then the tuple of
            the layers' paths.
        output: for multi-output models, the output to explain (name or
            index). Left None, every output is kept for targets that read
            them all (`ke.targets.Box`, a callable of the output structure);
            unit targets then ask for a choice.
        logits: explain the pre-activation logits when the output layer ends in
            a softmax or sigmoid (default True).
        batch_size: samples per compiled step (default 32). A dataset keeps its
            own batching; an unbatched dataset is batched with this size.
        postprocess: 'auto' (default) rectifies CAM-family maps with a ReLU,
            takes the absolute value of signed input attributions, and min-max
            normalises every map to [0, 1]; None returns raw maps; a
            callable receives the resized `(N, *spatial, L)` maps (per-channel
            maps `(N, *spatial, C, L)`) in the compiled step and returns new
            ones. Maps that come out all zero are announced with a
            `BlankMapWarning` (with 'auto' or None; a callable's zeros are
            its own).
        resize: resize maps to the input's spatial size (default True).
        resize_to: for a model with several inputs, the input (name or
            index) whose spatial size a layer's maps are resized to. Default:
            the one input of the layer's rank that the layer is computed
            from; when there is none the maps keep the layer's size, and when
            there are several this option must choose.
        verbose: 'auto' (a progress bar on a terminal for multi-batch runs),
            0 (silent), 1 (progress bar) or 2 (one line per run).
        token_grid: `(h, w)`, the patch grid on which to read a token layer:
            a layer whose output is a token sequence `(N, T, C)` on images
            `(N, H, W, C_in)`, as a vision transformer's blocks. Its features
            and gradients are laid out on the grid, `(N, h, w, C)`, after
            dropping `skip_tokens` leading tokens. Default: found from the
            input's size, the grid `(H / p, W / p)` of a square patch size `p`
            with `T = k + h * w` and the fewest extra tokens `k` (at most 16).
        skip_tokens: the number of leading extra tokens of a token layer
            (class, distillation, register tokens) to drop. Default: `T - h * w`.
        jit_compile: compile the step with XLA (default False).
        strategy: a `tf.distribute.Strategy` to explain with, its replicas each
            explaining a share of every batch; results come back in the input's
            order. Default: the model's `distribute_strategy` (a model built
            under `strategy.scope()` is explained with that strategy).

    Models with several inputs:
        `x` is then a tuple or list of arrays in the model's order, or a
        dict by input name (or a `tf.data.Dataset` yielding such structures,
        alone or as `(x, y)`). Methods that explain a layer return one map
        per sample and target, as for one input, resized to the input the
        layer is computed from (see `resize_to`). Methods that explain the
        input return one map per input: `Explanation.maps` is then a tuple
        (or, for a model built on a dict of inputs, a dict by name) of
        `(N, *spatial, L)` arrays. A feature vector `(N, D)` has no channel
        axis: its map has one value per feature, `(N, D, L)`. Methods that
        cannot explain several inputs say so when they are constructed.

    Raises:
        LayerError: the layer is unknown, ambiguous or not connected; a token
            layer fits no patch grid; `layer` and `layers` are both given, or a
            layer option is given to a method that explains the input.
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
    several_inputs_refusal: ClassVar[str | None] = None
    """Why the method cannot explain a model with several inputs, or None when it can."""
    magnitude: ClassVar[bool] = False
    """Whether 'auto' post-processing takes the absolute value before normalising.

    For signed attributions (Integrated Gradients, gradient times input): the
    'auto' map then shows how much each position matters, whatever the sign.
    """

    # Run signatures leave out the fields marked RESULT_NEUTRAL: the model is
    # fingerprinted by its weights and the layers recorded by their resolved
    # paths; verbosity, XLA and distribution do not change the maps, and the
    # batch size is checked only when an unfinished run resumes.
    model: Any = attrs.field(metadata=RESULT_NEUTRAL)
    layer: Any = attrs.field(default=None, kw_only=True, metadata=RESULT_NEUTRAL)
    layers: tuple | None = attrs.field(
        default=None, kw_only=True, converter=layer_list, metadata=RESULT_NEUTRAL
    )
    output: str | int | None = attrs.field(default=None, kw_only=True)
    logits: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    batch_size: int = attrs.field(
        default=32, kw_only=True, validator=positive_int, metadata=RESULT_NEUTRAL
    )
    postprocess: str | Callable | None = attrs.field(
        default="auto", kw_only=True, validator=check_postprocess
    )
    resize: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    resize_to: str | int | None = attrs.field(default=None, kw_only=True)
    call_index: int | None = attrs.field(
        default=None, kw_only=True, validator=attrs.validators.optional(non_negative_int)
    )
    pad_token_id: int | None = attrs.field(
        default=None, kw_only=True, validator=attrs.validators.optional(non_negative_int)
    )
    verbose: str | int = attrs.field(
        default="auto", kw_only=True, validator=check_verbose, metadata=RESULT_NEUTRAL
    )
    token_grid: tuple[int, int] | None = attrs.field(
        default=None,
        kw_only=True,
        converter=lambda value: tuple(value) if isinstance(value, list) else value,
        validator=check_token_grid,
    )
    skip_tokens: int | None = attrs.field(
        default=None, kw_only=True, validator=attrs.validators.optional(non_negative_int)
    )
    jit_compile: bool = attrs.field(
        default=False,
        kw_only=True,
        validator=attrs.validators.instance_of(bool),
        metadata=RESULT_NEUTRAL,
    )
    strategy: tf.distribute.Strategy | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(attrs.validators.instance_of(tf.distribute.Strategy)),
        metadata=RESULT_NEUTRAL,
    )
    _exposure: Exposure | None = attrs.field(default=None, init=False, repr=False)
    _steps: StepCache = attrs.field(init=False, repr=False)
    # The multi-layer pass each thread is tracing (replicas trace in threads).
    _layer_state: threading.local = attrs.field(factory=threading.local, init=False, repr=False)
    _blank_warned: bool = attrs.field(default=False, init=False, repr=False)
    # Where the current run records its warnings (`ResultWriter.log`), while it runs.
    _run_log: Callable[[str], None] | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.needs_layer:
            options = ("layer", "layers", "token_grid", "skip_tokens", "resize_to", "call_index")
            for option in options:
                if getattr(self, option) is not None:
                    raise LayerError(
                        f"{type(self).__name__} explains the input directly; it takes no "
                        f"{option}= (got {option}={getattr(self, option)!r})."
                    )
        if self.layer is not None and self.layers is not None:
            raise LayerError(
                f"Pass layer= (one layer) or layers= (several), not both; got "
                f"layer={self.layer!r} and layers={list(self.layers)!r}."
            )
        self._exposure = self._expose()
        if self._exposure.several_inputs and self.several_inputs_refusal is not None:
            raise ModelStructureError(
                f"{self.method_name} cannot explain a model with several inputs "
                f"{list(self._exposure.input_layout.names)}: {self.several_inputs_refusal}"
            )
        self._prepare(self._exposure)
        self._steps = StepCache(jit_compile=self.jit_compile)
        # The batch size each local step was first traced for (see `_batch_spec`).
        self._static_batches: dict[tuple, int] = {}

    # ------------------------------------------------------------------ hooks
    def _expose(self) -> Exposure:
        """Build the exposure of the model this method needs."""
        return expose(self.model, **self._exposure_options())

    def _exposure_options(self) -> dict[str, Any]:
        """The options of `expose` that come from this explainer's fields."""
        return {
            "layer": self.layer,
            "layers": self.layers,
            "needs_layer": self.needs_layer,
            "output": self.output,
            "logits": self.logits,
            "token_grid": self.token_grid,
            "skip_tokens": self.skip_tokens,
            "resize_to": self.resize_to,
            "call_index": self.call_index,
            "pad_token_id": self.pad_token_id,
        }

    def _prepare(self, exposure: Exposure) -> None:  # noqa: B027 - optional hook
        """Check the model has the structure this method needs (optional hook)."""

    def _check_targets(self, plan: TargetPlan) -> None:  # noqa: B027 - optional hook
        """Reject target forms this method cannot explain (optional hook)."""

    def _start_run(self, spec: Any) -> None:  # noqa: B027 - optional hook
        """Compute what every batch of a run shares, before its first batch (optional hook).

        It runs eagerly, once per `explain` or `explain_to_disk` call, after
        the inputs and targets are checked and before any batch. A method
        whose batches share a costly part (DeepLIFT's activations on a
        shared baseline) computes it here, into variables its compiled steps
        read; it is computed again at every run, so it always reflects the
        model's current weights.

        Args:
            spec: the run's `InputSource.spec` (`tf.TensorSpec` of a batch,
                batch axis None; a tuple of them for several inputs).
        """

    def _end_run(self) -> None:  # noqa: B027 - optional hook
        """Release what `_start_run` prepared, after the run's last batch or its error."""

    def _sample_data(self) -> dict[str, np.ndarray]:
        """Arrays of one row per input `(N, ...)` that `_attribute` reads, by name.

        An option given per input (KernelSHAP's segment labels, say) is cut
        into batches with the inputs and reaches `_attribute` as
        `targets.data[name]`, the batch's rows (copied with the batch by
        `targets.tiled`). The default has none.
        """
        return {}

    def _nonfinite_hint(self) -> str:
        """What may make this method's maps NaN or Inf, for `NonFiniteError` (optional hook)."""
        return (
            "the model's scores or gradients are NaN or Inf on these inputs (a square root "
            "or a division by zero in the model, or a LayerNorm of a constant input)"
        )

    def _report(self, notes: dict[str, np.ndarray], start: int) -> None:  # noqa: B027
        """Read a batch's `Attribution.notes` on the host (optional hook).

        It runs before the batch's results are written, so it may raise to
        keep them out; a warning goes through `_warn`, which also records it
        in the run's log.

        Args:
            notes: the notes of the batch's samples, as numpy arrays.
            start: the batch's first sample.
        """

    @abc.abstractmethod
    def _attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        """Compute raw maps for one batch, inside the compiled step.

        Args:
            inputs: `(N, *spatial, C)` float inputs; for a model with several
                inputs, a tuple of them in the model's order (a feature
                vector as `(N, D, 1)`, see `InputLayout.method_view`).
            targets: the batch's `Targets`; `targets.select(outputs)` gives the
                explained scores and unit indices.

        Returns:
            An `Attribution` with `(N, *spatial', L)` raw maps; a method that
            explains the inputs of a model with several inputs returns a
            tuple of them, one per input of `explained_inputs`.
        """

    # ------------------------------------------------------- shared machinery
    @property
    def exposure(self) -> Exposure:
        """The re-wired model that returns the explained layer and scores."""
        return self._exposure

    @property
    def layer_name(self) -> str | tuple[str, ...] | None:
        """The path of the explained layer; with `layers=`, the tuple of their paths.

        None for methods that explain the input.
        """
        names = tuple(layer.name for layer in self._exposure.layers)
        if self.layers is not None:
            return names
        return names[0] if names else None

    @property
    def layer_description(self) -> str | tuple[str, ...] | None:
        """What `Explanation.layer` records: `layer_name`, and how a token layer is read.

        A token layer chosen automatically is described with why and on which
        grid: `"block1_norm1 (auto: input of the last attention layer, 4x4
        token grid, 1 skipped token)"`.
        """
        descriptions = tuple(layer.description for layer in self._exposure.layers)
        if self.layers is not None:
            return descriptions
        return descriptions[0] if descriptions else None

    @property
    def explained_inputs(self) -> tuple[int, ...] | None:
        """The inputs the method returns maps of (indices in the model's order).

        None for a method that explains a layer (one map per sample and
        target), and for a single-input model. Methods that explain the
        input explain every input; perturbation methods those of
        `perturb_inputs`.
        """
        if self.needs_layer or not self._exposure.several_inputs:
            return None
        return tuple(range(len(self._exposure.input_layout)))

    @property
    def trace_count(self) -> int:
        """How many times this explainer's compiled steps were traced.

        Each input signature and target form is traced once; later calls,
        and changes of the model's weights, reuse the compiled step.
        """
        return self._steps.trace_count

    @property
    def method_name(self) -> str:
        """The name recorded as `Explanation.method`: the class name.

        Wrappers override it to name what they wrap, e.g. `"SmoothGrad(GradCAM)"`.
        """
        return type(self).__name__

    def _plan(self, source: InputSource, y: Any) -> TargetPlan:
        exposure = self._exposure
        if source.has_targets:
            plan = TargetPlan(INDEX, count=None)
        else:
            plan = plan_targets(
                y,
                source.count,
                exposure.output_units,
                exposure.output_shape,
                exposure.output_names if exposure.all_outputs else None,
            )
        plan = plan.with_data(self.sample_data())
        plan.check_count(source.count)
        self.check_targets(plan)
        if exposure.text and source.array is not None:
            suffix = plan.target.suffix_length if plan.kind == OBJECT else 0
            exposure.embedding.check_arrays(source.array, suffix)
            keep = exposure.embedding.keep(source.array)
            if keep is not None and plan.kind == OBJECT:
                plan.target.check_padding(np.asarray(keep))
        return plan

    # ------------------------------------------------- the decorator protocol
    # What a `Decorator` (or any code running a method inside its own
    # compiled step) calls on the explainer it wraps.
    def attribute(self, inputs: tf.Tensor, targets: Targets) -> Attribution:
        """Raw maps of one batch: the method's `_attribute`, inside a compiled step.

        With several layers (`layers=`), `_attribute` runs once per layer on
        one forward pass and one backward pass per target (see
        `_feature_gradients`); each layer's maps are post-processed (with
        'auto': rectified, resized to the input and normalised; else resized
        only) and averaged. Those maps are at the input's size, or with
        `resize=False` at the size of the finest layer's maps.

        Args:
            inputs: `(N, *spatial, C)` float inputs.
            targets: the batch's `Targets`.

        Returns:
            The `Attribution`, maps before (the final) post-processing.
        """
        if len(self._exposure.layers) <= 1:
            return self._attribute(inputs, targets)
        return self._attribute_each_layer(inputs, targets)

    def _postprocess(self, maps: tf.Tensor, size: Sequence | None) -> tf.Tensor:
        """'auto' post-processing of raw maps (rectify, normalise), resized to `size`."""
        maps = tf.cast(maps, tf.float32)
        if self.postprocess == "auto" and self.rectify:
            maps = tf.nn.relu(maps)
        elif self.postprocess == "auto" and self.magnitude:
            maps = tf.abs(maps)
        if size is not None:
            maps = ops.resize_maps(maps, size)
        if self.postprocess == "auto":
            maps = ops.normalize_maps(maps)
        return maps

    def finish_maps(self, maps: tf.Tensor, spatial_size: Sequence | None) -> tf.Tensor:
        """Post-process raw `(N, *spatial, L)` maps: rectify, resize, normalise.

        Per-channel maps `(N, *spatial, C, L)` (input attributions with
        `channel_reduction=None`) are resized over the spatial axes only and
        normalised per sample and target over all positions and channels.

        Args:
            maps: raw maps, as `attribute` returns them.
            spatial_size: the input's spatial size (ints or scalar tensors),
                or None to keep the maps' size.

        Returns:
            float32 maps, as `explain` returns them.
        """
        maps = self._postprocess(maps, spatial_size if self.resize else None)
        if callable(self.postprocess):
            maps = self.postprocess(maps)
        return maps

    def _finish_each(self, maps: Any, sizes: list[list]) -> Any:
        """`finish_maps` on each input's maps, or on a layer's maps at its input's size."""
        explained = self.explained_inputs
        if explained is None:
            index = self._exposure.map_input
            return self.finish_maps(maps, None if index is None else sizes[index])
        return tuple(
            self.finish_maps(part, sizes[index])
            for part, index in zip(maps, explained, strict=True)
        )

    def check_targets(self, plan: TargetPlan) -> None:
        """Reject target forms this method cannot explain (see `_check_targets`).

        Raises:
            TypeError: the method cannot take this form of targets.
        """
        self._check_targets(plan)

    def sample_data(self) -> dict[str, np.ndarray]:
        """The method's own per-sample arrays `(N, ...)` (see `_sample_data`)."""
        return self._sample_data()

    def start_run(self, spec: Any) -> None:
        """Prepare a run of batches of `spec` (see `_start_run`); decorators forward it."""
        self._start_run(spec)

    def end_run(self) -> None:
        """End the run `start_run` prepared (see `_end_run`)."""
        self._end_run()

    def _method_view(self, flat: list[tf.Tensor]) -> Any:
        """The inputs `_attribute` sees, from a batch's flattened inputs (not a text model's).

        One input, cast to the compute dtype; several, cast each to its own
        and arranged in `InputLayout.method_view`.
        """
        exposure = self._exposure
        if not exposure.several_inputs:
            return exposure.embed(flat[0])
        layout = exposure.input_layout
        dtypes = [_compute_dtype(dtype) for dtype in layout.dtypes]
        return layout.method_view(
            [tf.cast(part, dtype) for part, dtype in zip(flat, dtypes, strict=True)]
        )

    # ------------------------------------------------------------------ running
    def _step_function(self, spec: Any, plan: TargetPlan) -> Callable:
        """The uncompiled step: `(inputs, feed) -> (maps, scores, targets, notes, finite)`.

        `feed` is the batch's feed (`TargetPlan.feed_spec`): target indices and per-sample
        data. With several inputs, `inputs` is a tuple of them; the method
        sees them in `InputLayout.method_view`, and `maps` is a tuple, one per
        input of `explained_inputs` (or one array for a layer's maps).
        """
        exposure = self._exposure
        if exposure.text:
            return self._text_step_function(spec, plan)
        layout = exposure.input_layout if exposure.several_inputs else None
        specs = tf.nest.flatten(spec)
        if layout is None:
            model_shapes = [exposure.input_shape or (None,) * len(specs[0].shape)]
        else:
            # A feature vector (N, D) is read as (N, D, 1): its one spatial axis is D.
            model_shapes = [(*shape, 1) if len(shape) == 2 else shape for shape in layout.shapes]
        # The data's static size, else the model's, else the size at run time.
        static_sizes = [
            [
                data if data is not None else model
                for data, model in zip(
                    (*part.shape[1:], None)[: len(shape) - 2], shape[1:-1], strict=True
                )
            ]
            for part, shape in zip(specs, model_shapes, strict=True)
        ]

        def step(inputs: Any, feed: dict) -> tuple:
            flat = tf.nest.flatten(inputs)
            sizes = [
                [
                    size if size is not None else tf.shape(part)[axis]
                    for axis, size in enumerate(static, start=1)
                ]
                for part, static in zip(flat, static_sizes, strict=True)
            ]
            finite = _finite(flat)
            attribution = self.attribute(self._method_view(flat), plan.targets(feed))
            maps = self._finish_each(attribution.maps, sizes)
            return self._step_results(attribution, maps, finite)

        return step

    def _text_step_function(self, spec: Any, plan: TargetPlan) -> Callable:
        """The step of a text model: its token ids' embeddings explained, its inputs kept.

        The batch's inputs (ids, padding mask, segment ids) are the context
        of every pass of the model (`TokenEmbedding.reading`); the methods
        see the embeddings `(N, T, E)` of the ids. Maps are zero at padding,
        before and after post-processing.
        """
        embedding = self._exposure.embedding
        index = self._exposure.map_input
        ids_spec = tf.nest.flatten(spec)[embedding.ids_index if embedding.several_inputs else 0]
        length = ids_spec.shape[1] if ids_spec.shape[1] is not None else embedding.ids_shape[1]

        def step(inputs: Any, feed: dict) -> tuple:
            flat = tf.nest.flatten(inputs)
            data = tuple(flat) if embedding.several_inputs else flat[0]
            ids = embedding.ids(data)
            tokens = length if length is not None else tf.shape(ids)[1]
            sizes = [None] * len(flat)
            sizes[index] = [tokens]
            targets = plan.targets(feed)
            with embedding.reading(data, targets.input_suffix(tf.shape(ids)[0])):
                attribution = self.attribute(embedding.embed(data), targets)
            keep = embedding.keep(data)
            maps = _without_padding(attribution.maps, keep)
            maps = _without_padding(self._finish_each(maps, sizes), keep)
            return self._step_results(attribution, maps, _finite(flat))

        return step

    def _step_results(self, attribution: Attribution, maps: Any, finite: tf.Tensor) -> tuple:
        """What a step returns: `(maps, scores, targets, notes, finite)`."""
        scores = tf.cast(attribution.scores, tf.float32)
        notes = {
            name: tf.cast(note, tf.float32) for name, note in (attribution.notes or {}).items()
        }
        notes.update(self._map_flags(maps))
        return maps, scores, tf.cast(attribution.targets, tf.int64), notes, finite

    def _map_flags(self, maps: Any) -> dict[str, tf.Tensor]:
        """Per-sample flags of the finished maps, `(N,)` float32, read after each batch.

        `_FINITE_MAPS`: 1 where every map of the sample is finite.
        `_BLANK_MAPS` (not for a callable `postprocess`, whose zeros are the
        caller's to interpret): 1 where some target's maps are all zero, on
        every input for a model with several inputs.
        """
        parts = tf.nest.flatten(maps)
        finite = tf.reduce_all([ops.finite_samples(part) for part in parts], axis=0)
        flags = {_FINITE_MAPS: tf.cast(finite, tf.float32)}
        if not callable(self.postprocess):
            blank = tf.reduce_all([ops.blank_maps(part) for part in parts], axis=0)  # (N, L)
            flags[_BLANK_MAPS] = tf.cast(tf.reduce_any(blank, axis=1), tf.float32)
        return flags

    def _warn(self, warning: Warning) -> None:
        """Warn at the user's line, and record the warning in the run's log (on disk)."""
        warn_user(warning)
        if self._run_log is not None:
            self._run_log(f"{type(warning).__name__}: {warning}")

    def _run(
        self, source: InputSource, plan: TargetPlan, writer: ResultWriter, skip: int = 0
    ) -> None:
        """Explain every batch of `source` (after `skip` batches) into `writer`."""
        units = self._exposure.output_units
        spec = source.spec
        strategy = self._distribution()
        if strategy is not None:

            def compiled_for(element_spec: Any) -> Callable:
                # Cached like the local steps: explaining again (metrics explain
                # batch by batch) does not trace the model on every replica again.
                key = ("replicated", id(strategy), repr(element_spec), plan.kind)
                function = lambda: replicated(self._step_function(spec, plan), strategy)  # noqa: E731
                key += (id(plan.function), id(plan.target))
                # A strategy's collectives do not compile with XLA as one step.
                return self._steps.get(
                    key, function, [element_spec], keep=strategy, jit_compile=False
                )

            batches = distributed_batches(compiled_for, strategy, source, plan, units, skip)
        else:

            def step_for(count: int) -> Callable:
                feed_spec = plan.feed_spec(count)
                shapes = tuple((tuple(part.shape), part.dtype) for part in tf.nest.flatten(spec))
                key = (shapes, plan.kind, repr(feed_spec), id(plan.function), id(plan.target))
                step_spec = self._batch_spec(key, spec, source)
                if step_spec is not spec:
                    key += ("batch", tf.nest.flatten(step_spec)[0].shape[0])
                signature = [step_spec, feed_spec]
                return self._steps.get(key, lambda: self._step_function(step_spec, plan), signature)

            batches = local_batches(source, plan, units, step_for, skip)
        total = None if source.batches is None else source.batches - skip
        self._run_log = writer.log
        self.start_run(spec)
        try:
            run_steps(self._reported(batches), writer, progress_bar(self.verbose, total))
        finally:
            self.end_run()
            self._run_log = None

    def _batch_spec(self, key: tuple, spec: Any, source: InputSource) -> Any:
        """The spec a local step is traced for: the batch size fixed, where it can be.

        A step traced for a known batch size runs faster than one for any
        size (TensorFlow resolves the model's broadcasts when it traces: 10 to
        15% of a transformer's forward and backward pass on a CPU). For text
        models, the size is fixed when every batch of the input has it (the
        samples fit in one batch, or fill whole batches), and only for the
        first size a step meets: a call with another size traces the step for
        any size once, and later calls reuse it, so an explainer traces a step
        at most twice. Other models' steps are traced for any batch size.
        """
        count, size = source.count, self.batch_size
        if not self._exposure.text or count is None or (count > size and count % size):
            return spec
        static = min(count, size)
        first = self._static_batches.setdefault(key, static)
        if first != static:
            return spec
        return tf.nest.map_structure(
            lambda part: tf.TensorSpec((static, *part.shape[1:]), part.dtype, part.name), spec
        )

    def _reported(self, batches: Iterator[tuple[int, tuple]]) -> Iterator[tuple[int, tuple]]:
        """Check each batch's maps and hand its notes to `_report`; pass its results on.

        A batch whose maps hold NaN or Inf (from finite inputs) raises before
        it is written. Blank maps are collected over the run and announced
        once it is done (`BlankMapWarning`).
        """
        blank = []
        for start, (maps, scores, targets, notes, finite) in batches:
            if bool(np.all(finite)):
                notes = {name: np.asarray(note) for name, note in notes.items()}
                finite_maps = notes.pop(_FINITE_MAPS) > 0.5
                blank_maps = notes.pop(_BLANK_MAPS, None)
                if notes:
                    self._report(notes, start)
                if not finite_maps.all():
                    spoiled = _samples(start + np.flatnonzero(~finite_maps))
                    raise NonFiniteError(
                        f"{self.method_name}: the maps of {spoiled} hold "
                        f"NaN or Inf although the inputs are finite: {self._nonfinite_hint()}. "
                        "No map is returned with such values."
                    )
                if blank_maps is not None:
                    blank.append(start + np.flatnonzero(blank_maps > 0.5))
            yield start, (maps, scores, targets, finite)
        blank = np.concatenate(blank) if blank else np.zeros(0, np.int64)
        if blank.size:
            self._announce_blank(blank)

    def _announce_blank(self, samples: np.ndarray) -> None:
        """Warn (once per explainer) and log (every run on disk) that maps are all zero."""
        listed = _samples(samples)
        if self.postprocess is None:
            why = (
                "their raw maps are zero everywhere: the explained score does not respond "
                "to what the method varies (a saturated output, say: logits=True explains "
                "the pre-activation logits)"
            )
        else:
            why = (
                "after post-processing they hold no positive evidence (every value is removed "
                "by the ReLU, or the raw map is constant, which normalises to 0). "
                "postprocess=None keeps the signed raw maps"
            )
        message = f"{self.method_name}: the maps of {listed} are all zero; {why}."
        if self._run_log is not None:
            self._run_log(f"{BlankMapWarning.__name__}: {message}")
        if not self._blank_warned:
            self._blank_warned = True
            warn_user(BlankMapWarning(f"{message} (Warned once per explainer.)"))

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

    def _inputs(self, x: Any, y: Any) -> tuple[InputSource, TargetPlan]:
        """Validate the inputs and targets of a run."""
        exposure = self._exposure
        source = make_source(x, exposure.data_shape, self.batch_size, y, exposure.input_layout)
        return source, self._plan(source, y)

    def explain(self, x: Any, y: Any = None) -> Explanation:
        """Explain the model's predictions on `x`.

        Args:
            x: inputs `(N, *spatial, C)` as a numpy array or `tf.Tensor` (integer
                images are cast to float; a text model takes its token ids
                `(N, T)` and gets maps `(N, T, L)`), or a `tf.data.Dataset`
                yielding `x` or `(x, y)`, batched or not.
            y: what to explain. None: the top predicted unit of each sample.
                An int: that unit for every sample. Shape `(N,)`: one unit per
                sample. Shape `(N, L)`: L units per sample in one call (the maps
                get L channels). A callable `outputs -> (N,) or (N, L)`: custom
                scores (regression, segmentation masks, ...).

        Returns:
            An `Explanation` with `maps (N, *spatial, L)` (per-channel maps
            `(N, *spatial, C, L)` for input attributions with
            `channel_reduction=None`), `scores (N, L)` and `targets (N, L)`.

        Raises:
            InputError: wrong rank or shape, empty inputs, NaN/Inf values.
            TargetError: targets of the wrong length, shape or range.
            TypeError: inputs or targets of the wrong type.
            NonFiniteError: the maps of finite inputs hold NaN or Inf (the
                model's scores or gradients are not finite there).

        Example:
            >>> expl = ke.GradCAM(model).explain(images, labels)
            >>> expl.maps.shape
            (16, 224, 224, 1)
        """
        source, plan = self._inputs(x, y)
        writer = ArrayWriter(source.count)
        self._run(source, plan, writer)
        arrays = writer.arrays()
        plan.finished(arrays[-1])
        return self._explanation(arrays)

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
        uninterrupted run. Calling it again on a finished run with the same
        options returns that run's results without recomputing them.

        The run records its *signature*, everything its results depend on:
        the method and every option of it and of the explainers it wraps
        (post-processing, channel reduction, resizing, layers, baselines,
        seeds, steps, quadrature rule, ...), the inputs' shape and count, the
        targets `y`, and a fingerprint (SHA-256) of the model's weights,
        computed once per call (a fraction of a second for a ResNet-50). A
        run re-opened with another signature is refused before any work,
        naming what differs; its files are left untouched. Options that do
        not change the maps are not part of it: `verbose`, `jit_compile`,
        `strategy`, the chunk sizes of the inner loops (`step_batch_size`,
        `mask_batch_size`, ...), and `batch_size`, which must only match
        when an unfinished run resumes. Warnings about the maps
        (`BlankMapWarning`, `CompletenessWarning`) are also appended to
        `directory/run.log`.

        Args:
            x: inputs, as for `explain`.
            directory: the folder to write to (created if missing).
            y: targets, as for `explain`.
            resume: continue a previous, unfinished run in `directory`, or
                read back a finished one (default True). With False a run
                there is replaced: its files are deleted and the inputs are
                explained afresh.

        Returns:
            An `Explanation` whose arrays are read-only memory maps of the files.

        Raises:
            InputError, TargetError, TypeError: as `explain`.
            FileExistsError: `directory` holds `.npy` files of another origin.
            RunMismatchError: `directory` holds a run of other inputs,
                options, targets or model weights, or one written before run
                signatures recorded them (a `ValueError`).

        Example:
            >>> expl = ke.GradCAM(model).explain_to_disk(dataset, "maps/")
            >>> expl.maps.shape   # a memory map; np.load("maps/maps.npy", mmap_mode="r")
        """
        from keras_explainable.streaming import NpyWriter

        source, plan = self._inputs(x, y)
        writer = NpyWriter.open(
            directory,
            resume=resume,
            signature=self._run_signature(source, plan),
            batching={"batch_size": self.batch_size},
            names=self._result_names(),
        )
        if not writer.finished:
            self._run(source, plan, writer, skip=writer.completed_batches)
            writer.finish()
        arrays = writer.arrays()
        plan.finished(arrays[-1])
        return self._explanation(arrays)

    def _result_names(self) -> tuple[str, ...]:
        """The names of the arrays a run writes: the maps (one per input), scores, targets."""
        explained = self.explained_inputs
        if explained is None:
            return ("maps", "scores", "targets")
        names = self._exposure.input_layout.names
        return (*(f"maps_{names[index]}" for index in explained), "scores", "targets")

    def _explanation(self, arrays: list[np.ndarray]) -> Explanation:
        """The `Explanation` of a run's arrays (see `_result_names`)."""
        *maps, scores, targets = arrays
        explained = self.explained_inputs
        input_names = None
        if explained is None:
            maps = maps[0]
        else:
            layout = self._exposure.input_layout
            maps = layout.structure(dict(zip(explained, maps, strict=True)))
            input_names = layout.names
        return Explanation(
            maps,
            scores,
            targets,
            method=self.method_name,
            layer=self.layer_description,
            input_names=input_names,
        )

    def _run_signature(self, source: InputSource, plan: TargetPlan) -> dict:
        """Everything a run's results depend on (see `explain_to_disk`), as JSON data.

        The options are this explainer's attrs fields (and, through a
        decorator's `explainer` field, the wrapped explainer's), less those
        marked `RESULT_NEUTRAL` (see `keras_explainable.signature`).
        """
        specs = tf.nest.flatten(source.spec)
        described = [[str(s) for s in spec.shape[1:]] + [spec.dtype.name] for spec in specs]
        return {
            "method": self.method_name,
            "layer": self.layer_name,
            "input": described[0] if len(described) == 1 else described,
            "count": source.count,
            "options": options(self),
            "targets": {"from_inputs": source.has_targets, "plan": describe(plan)},
            "weights": model_fingerprint(self.model),
        }

    def __call__(self, x: Any, y: Any = None) -> Explanation:
        """Same as `explain(x, y)`."""
        return self.explain(x, y)


def _samples(indices: np.ndarray) -> str:
    """'sample 3', or 'samples 0, 2, 5' (the first `_LISTED_SAMPLES`, then how many more)."""
    indices = [int(index) for index in indices]
    if len(indices) == 1:
        return f"sample {indices[0]}"
    listed = ", ".join(str(index) for index in indices[:_LISTED_SAMPLES])
    more = len(indices) - _LISTED_SAMPLES
    return f"samples {listed}" + (f" and {more} more" if more > 0 else "")


def _finite(flat: list) -> tf.Tensor:
    """Whether every value of a batch's inputs is finite (a scalar bool)."""
    return tf.reduce_all(
        [tf.reduce_all(tf.math.is_finite(tf.cast(part, tf.float32))) for part in flat]
    )


def _without_padding(maps: tf.Tensor, keep: tf.Tensor | None) -> tf.Tensor:
    """A text model's `(N, T, ...)` maps set to 0 at padding (`keep` `(N, T)` is 0 there).

    Maps of another length (a layer that pools tokens, with `resize=False`)
    are left as they are.
    """
    if keep is None:
        return maps
    if maps.shape[1] is not None and keep.shape[1] is not None and maps.shape[1] != keep.shape[1]:
        return maps
    shaped = tf.reshape(keep, tf.concat([tf.shape(keep), [1] * (maps.shape.rank - 2)], 0))
    same = tf.equal(tf.shape(maps)[1], tf.shape(keep)[1])
    return tf.cond(same, lambda: maps * tf.cast(shaped, maps.dtype), lambda: maps)


def _compute_dtype(dtype: str) -> tf.DType:
    """The float dtype an input of `dtype` is cast to (float32 for integers)."""
    dtype = tf.as_dtype(dtype)
    return dtype if dtype.is_floating else tf.float32
