"""Perturbation methods' machinery: the lazy evaluator and the choice of inputs.

Score-CAM (inputs masked by each channel), Deletion and Insertion (inputs with
more and more pixels changed) and, later, occlusion windows, random masks and
channel ablation all score one batch under many perturbations. Holding every
perturbed copy at once needs `batch_size * perturbations` inputs of memory;
`evaluate_perturbations` builds and scores them `chunk` perturbations at a time
in a `tf.while_loop` inside the compiled step, so memory is bounded by
`batch_size * chunk` whatever the number of perturbations. The chunk size is
static (the last chunk repeats the final perturbation, whose extra scores are
dropped), so the loop also compiles under XLA, and the results do not depend
on it.

`InputPerturbation` is the base of the methods that perturb the input
(Occlusion, RISE, KernelSHAP, LIME): for a model with several inputs it
chooses which inputs they perturb (`perturb_inputs`) and explains each of
them in turn, the others kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import tensorflow as tf

from keras_explainable.attribution import Attribution
from keras_explainable.base import Explainer
from keras_explainable.baselines import check_input_baselines, per_input_baselines
from keras_explainable.errors import InputError
from keras_explainable.exposure import Exposure
from keras_explainable.targets import Targets

__all__ = ["InputPerturbation", "evaluate_perturbations", "with_copies"]


def evaluate_perturbations(
    perturb: Callable[[tf.Tensor], tf.Tensor],
    score: Callable[[tf.Tensor, int], tf.Tensor],
    count: int,
    chunk: int,
    score_shape: Sequence[int] = (),
) -> tf.Tensor:
    """Score `count` perturbations of a batch, `chunk` perturbations per pass.

    Args:
        perturb: `indices -> (k, N, *shape)`: the batch under perturbations
            `indices` (int32 `(k,)`, each in `[0, count)`), perturbation-major;
            for a model with several inputs, a tuple of them (see `with_copies`).
        score: `(images, copies) -> (copies * N, *score_shape)` float scores
            of `copies` perturbed copies of the batch stacked copy-major
            (`(copies * N, *shape)`, or a tuple of them).
        count: the number of perturbations.
        chunk: perturbations built and scored together (at most `count`);
            a pass holds `chunk * N` inputs. The `ceil(count / chunk)` passes
            share the perturbations evenly, so a pass may hold fewer.
        score_shape: the shape of one sample's score (default `()`).

    Returns:
        `(count, N, *score_shape)` float32 scores: row `p` holds every
        sample's score under perturbation `p`.

    Example:
        Scores of a batch with each of its `C` channels zeroed:

        >>> def zeroed(indices):
        ...     keep = 1.0 - tf.one_hot(indices, C)[:, None, None, None, :]
        ...     return keep * inputs[None]
        >>> def score(images, copies):
        ...     return model(images)[:, 0]
        >>> scores = evaluate_perturbations(zeroed, score, C, chunk=16)   # (C, N)
    """
    chunk = max(1, min(chunk, count))
    chunks = -(-count // chunk)
    # Balanced chunks: as many passes, but at most `chunks - 1` padding copies
    # (36 perturbations in chunks of 16 are scored as 3 x 12, not 3 x 16).
    chunk = -(-count // chunks)

    def body(index: tf.Tensor, scores: tf.TensorArray) -> tuple:
        indices = tf.minimum(index * chunk + tf.range(chunk), count - 1)
        images = perturb(indices)
        samples = tf.shape(tf.nest.flatten(images)[0])[1]
        flat = tf.nest.map_structure(_stacked, images)
        part = tf.cast(score(flat, chunk), tf.float32)
        part = tf.reshape(part, [chunk, samples, *score_shape])
        return index + 1, scores.write(index, part)

    scores = tf.TensorArray(tf.float32, size=chunks, element_shape=[chunk, None, *score_shape])
    _, scores = tf.while_loop(lambda index, _: index < chunks, body, (tf.constant(0), scores))
    stacked = scores.stack()
    samples = tf.shape(stacked)[2]
    return tf.reshape(stacked, [chunks * chunk, samples, *score_shape])[:count]


def _stacked(images: tf.Tensor) -> tf.Tensor:
    """`(k, N, *shape)` copies as `(k * N, *shape)`, copy-major."""
    flat = tf.reshape(images, tf.concat([[-1], tf.shape(images)[2:]], axis=0))
    return tf.ensure_shape(flat, [None, *images.shape[2:]])


def with_copies(inputs: Sequence[tf.Tensor], index: int, copies: tf.Tensor) -> tuple:
    """The inputs of `k` perturbed copies: input `index` from `copies`, the others repeated.

    Args:
        inputs: the batch's inputs, a tuple of `(N, ...)` tensors.
        index: the input that is perturbed.
        copies: `(k, N, ...)` perturbed copies of input `index`.

    Returns:
        A tuple of `(k, N, ...)` tensors, one per input.
    """
    count = tf.shape(copies)[0]

    def repeated(tensor: tf.Tensor) -> tf.Tensor:
        shape = tf.concat([[count], tf.shape(tensor)], axis=0)
        return tf.ensure_shape(tf.broadcast_to(tensor[None], shape), [None, *tensor.shape])

    return tuple(
        copies if number == index else repeated(tensor) for number, tensor in enumerate(inputs)
    )


def _input_keys(value: Any) -> tuple | None:
    """Converter of `perturb_inputs`: None, one name or index, or several, as a tuple."""
    if value is None:
        return None
    if isinstance(value, (str, int)):
        return (value,)
    return tuple(value)


@attrs.define(eq=False)
class InputPerturbation(Explainer):
    """Base of the methods that perturb the input and score the perturbed copies.

    A subclass implements `_attribute_input`: the maps of one perturbed input.
    For a single-input model that is the whole method. For a model with
    several inputs, each input of `perturb_inputs` is explained in turn, the
    other inputs kept as they are in every perturbed copy, and the method
    returns one map set per perturbed input (`explained_inputs`); inputs it
    does not perturb get no maps (None in a tuple, absent from a dict).

    Args:
        perturb_inputs: for a model with several inputs, the inputs to
            perturb, by name or index (one, or a list). Default: every input
            the method's options fit (an occlusion window of two sizes fits
            2-D images, say); an input they do not fit is left out.
        **kwargs: the `Explainer` options and the method's own.

    Raises:
        InputError: `perturb_inputs` names an unknown input, or an input the
            method's options do not fit (or, by default, none fits them).
    """

    needs_layer = False

    perturb_inputs: tuple | None = attrs.field(default=None, kw_only=True, converter=_input_keys)
    _perturbed: tuple[int, ...] = attrs.field(default=(0,), init=False, repr=False)
    _baselines: tuple = attrs.field(default=(), init=False, repr=False)

    # ------------------------------------------------------------------ hooks
    def _check_input(self, spatial: tuple, vector: bool) -> None:  # noqa: B027 - optional hook
        """Raise InputError when the method's options do not fit inputs of `spatial` size.

        `vector` tells a feature vector `(N, D)` (perturbed as `(N, D, 1)`).
        """

    def _attribute_input(
        self,
        image: tf.Tensor,
        inputs: Any,
        copies_of: Callable[[tf.Tensor], Any],
        baseline: Any,
        vector: bool,
        targets: Targets,
    ) -> Attribution:
        """The maps of one perturbed input, inside the compiled step.

        Args:
            image: `(N, *spatial, C)`: the input to perturb.
            inputs: what the model takes for the batch (`image` itself, or
                the tuple of every input).
            copies_of: `(k, N, *spatial, C)` perturbed copies of `image` ->
                what the model takes for them (the other inputs repeated).
            baseline: the method's baseline for this input.
            vector: whether the input is a feature vector `(N, D)`, seen as
                `(N, D, 1)`.
            targets: the batch's targets.

        Returns:
            The `Attribution` with this input's `(N, *spatial, L)` maps.
        """
        raise NotImplementedError

    # ------------------------------------------------------------- machinery
    @property
    def explained_inputs(self) -> tuple[int, ...] | None:
        """The perturbed inputs, for a model with several inputs (else None)."""
        return self._perturbed if self._exposure.several_inputs else None

    def _prepare(self, exposure: Exposure) -> None:
        check_input_baselines(self.baseline, exposure)
        if not exposure.several_inputs:
            if self.perturb_inputs is not None:
                raise InputError("perturb_inputs= is for models with several inputs.")
            if exposure.input_shape is not None:
                self._check_input(exposure.input_shape[1:-1], False)
            self._baselines = (self.baseline,)
            return
        layout = exposure.input_layout
        # A feature vector (N, D) is perturbed as (N, D, 1): its spatial size is (D,).
        spatial = [shape[1:] if len(shape) == 2 else shape[1:-1] for shape in layout.shapes]
        if self.perturb_inputs is not None:
            chosen = sorted({layout.index(key, "perturb_inputs") for key in self.perturb_inputs})
            for index in chosen:
                self._check_fits(layout.names[index], spatial[index], layout.is_vector(index))
        else:
            chosen = [
                index
                for index in range(len(layout))
                if self._fits(spatial[index], layout.is_vector(index))
            ]
            if not chosen:
                raise InputError(
                    f"{type(self).__name__}'s options fit none of the inputs "
                    f"{list(layout.names)}; choose the inputs to perturb with "
                    "perturb_inputs= and options that fit them."
                )
        self._perturbed = tuple(chosen)
        self._baselines = per_input_baselines(self.baseline, exposure, "baseline")

    def _fits(self, spatial: tuple, vector: bool) -> bool:
        try:
            self._check_input(spatial, vector)
        except InputError:
            return False
        return True

    def _check_fits(self, name: str, spatial: tuple, vector: bool) -> None:
        try:
            self._check_input(spatial, vector)
        except InputError as error:
            raise InputError(
                f"perturb_inputs: input {name!r} cannot be perturbed: {error}"
            ) from error

    def _attribute(self, inputs: Any, targets: Targets) -> Attribution:
        if not self._exposure.several_inputs:
            return self._attribute_input(
                inputs, inputs, lambda copies: copies, self._baselines[0], False, targets
            )
        parts = [
            self._attribute_input(
                inputs[index],
                inputs,
                lambda copies, index=index: with_copies(inputs, index, copies),
                self._baselines[index],
                self._exposure.input_layout.is_vector(index),
                targets,
            )
            for index in self._perturbed
        ]
        first = parts[0]
        return Attribution(tuple(part.maps for part in parts), first.scores, first.targets)
