"""Explanations while a model trains: a Keras callback.

`ExplainCallback` explains a fixed batch of images at the end of every
`every` epochs of `model.fit` and writes the heat-map overlays as TensorBoard
image summaries and/or PNG grids, so one can watch what the model learns to
look at. The explainer is built once: explainers follow the model's weights
as they change, so nothing is traced again from one epoch to the next.

TensorFlow-only mechanisms here: the summaries are written with
`tf.summary`, and a `tf.data` dataset is read with TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_explainable.errors import ExplainerError, InputError, TargetError
from keras_explainable.explanation import Explanation
from keras_explainable.inputs import check_finite, check_shape
from keras_explainable.validators import positive_int

__all__ = ["ExplainCallback"]

# TensorBoard's image plugin: a summary is a string tensor [width, height,
# png, png, ...] tagged with this plugin name, as `tf.summary.image` writes it
# (which would need the `tensorboard` package installed, to write only this).
_IMAGE_PLUGIN = "images"
# The subfolder of `log_dir` for the summaries, beside Keras' `train` and `validation`.
SUMMARY_FOLDER = "explanations"


def _positive(name: str, value: Any) -> int:
    # the explainers' option rule (an attrs validator reads only the option's name)
    positive_int(None, SimpleNamespace(name=name), value)
    return int(value)


def _dataset_batch(dataset: tf.data.Dataset, y: Any, count: int) -> tuple[np.ndarray, Any]:
    """The first `count` images of a dataset (batched or not), and its targets if it has any."""
    spec = dataset.element_spec
    several = isinstance(spec, (tuple, list))
    x_spec = spec[0] if several else spec
    if not isinstance(x_spec, tf.TensorSpec):
        raise TypeError(
            f"ExplainCallback reads a dataset of images x or (x, y); got element spec {spec}."
        )
    has_targets = several and len(spec) > 1
    if has_targets and y is not None:
        raise TargetError("The dataset yields its own targets (x, y); do not also pass y.")
    if x_spec.shape.rank == 3:
        dataset = dataset.batch(count)
    elif x_spec.shape.rank != 4:
        raise InputError(
            "ExplainCallback draws image overlays: a dataset must yield images (H, W, C) or "
            f"batches of them (N, H, W, C); got element shape {tuple(x_spec.shape)}."
        )
    images, targets, taken = [], [], 0
    for element in dataset:
        images.append(np.asarray(element[0] if several else element))
        if has_targets:
            targets.append(np.asarray(element[1]))
        taken += len(images[-1])
        if taken >= count:
            break
    if taken == 0:
        raise InputError("x is an empty dataset (0 images); nothing to explain.")
    return np.concatenate(images), np.concatenate(targets) if has_targets else y


def _images(x: Any) -> np.ndarray:
    """`x` as a validated `(N, H, W, C)` numeric array of images."""
    if isinstance(x, (dict, tuple)):
        raise InputError(
            "ExplainCallback draws image overlays of a model with one image input; got "
            f"x as a {type(x).__name__} (several inputs)."
        )
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise InputError(
            "ExplainCallback draws image overlays: x must be images (N, H, W, C) with C in "
            f"1, 3, 4; got shape {x.shape}."
        )
    if x.dtype.kind == "b" or not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"x must hold numbers (float or integer images); got dtype {x.dtype}.")
    if len(x) == 0:
        raise InputError("x is empty (0 images); nothing to explain.")
    check_finite(x, "x")
    return x


def _targets(y: Any, count: int) -> Any:
    """Array targets checked against the images; other forms of `y` as they are."""
    if not isinstance(y, (np.ndarray, list, tf.Tensor)):
        return y  # None, an int, a callable or a target object: the explainer checks it
    y = np.asarray(y)
    if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.integer):
        raise TargetError(
            "y must hold class indices: integers (N,) or (N, L) for L classes per image; got "
            f"shape {y.shape} of dtype {y.dtype}. For one-hot labels pass y.argmax(-1)."
        )
    if len(y) != count:
        raise TargetError(f"y has {len(y)} rows for {count} images; give one row per image.")
    return y


class ExplainCallback(keras.callbacks.Callback):
    """Explain a fixed batch of images at the end of every `every` epochs of training.

    At the end of epochs `every`, `2 * every`, ... (counted from 1) the
    explainer explains the same images, at most `max_images` of them, and the
    callback writes the heat maps blended over the images
    (`keras_explainable.plot.overlay`):

    - to TensorBoard (`log_dir`): one image summary per explained target
      (column of `y`) and epoch, tagged `"<method>/target_<l>"` (e.g.
      `"GradCAM/target_0"`), holding the N overlays, in the run
      `log_dir/explanations`. Give it the `log_dir` of Keras' own
      `keras.callbacks.TensorBoard` callback: the explanations then sit
      beside its `train` and `validation` runs, at the same steps (the
      0-based epoch index, as Keras writes its epoch scalars). Each
      summary's description names every image's explained class and score.
    - as PNG grids (`out_dir`): one file per epoch, `epoch_0002.png` for the
      second (1-based, like `keras.callbacks.ModelCheckpoint`'s `{epoch}`),
      drawn by `keras_explainable.plot.plot_grid`: one row per image, the
      image and then one overlay per explained target.

    The explainer is built once, on the model being trained; explainers follow
    the model's weights as training changes them, so no epoch traces the
    explainer's compiled step again (`callback.explainer.trace_count` stays
    the same). Under a `tf.distribute` strategy the explainer explains with
    the model's strategy, as any explainer does.

    Args:
        explainer_or_factory: an explainer built on the model being trained
            (`ke.GradCAM(model)`, or a decorated one), or a callable
            `model -> explainer`, called once when training begins (so
            `ExplainCallback(ke.GradCAM, x)` works before the model exists).
        x: the images to explain: an array `(N, H, W, C)` (C in 1, 3, 4), or
            a `tf.data.Dataset` yielding images or `(images, y)`, batched or
            not. The first `max_images` images are read once, at
            construction: every epoch explains the same images.
        y: what to explain (see `Explainer.explain`): None (each image's top
            predicted class, at that epoch), an int, class indices `(N,)`, or
            `(N, L)` for L classes per image; or a callable or target object.
            A dataset yielding `(images, y)` gives its own (integer class
            indices; for one-hot labels, map them with `tf.argmax`).
        every: explain every `every` epochs (default 1).
        log_dir: the TensorBoard log folder; the summaries go to
            `log_dir/explanations`. None: no summaries.
        out_dir: the folder for the PNG grids (created if missing). None: no
            files. At least one of `log_dir` and `out_dir` is required.
        max_images: explain at most this many images, the first ones
            (default 8).
        class_names: names of the model's output units, for the grids'
            titles and the summaries' descriptions.

    Attributes:
        images: the explained images, `(n, H, W, C)` with `n <= max_images`.
        targets: `y` as passed to `explain` (rows cut to the images).
        explainer: the explainer (None until training begins, for a factory).
        last_explanation: the latest epoch's `Explanation` (None before).
        last_epoch: that epoch, counted from 1 (None before).

    Raises:
        ValueError: `every` or `max_images` is not a positive integer.
        ExplainerError: neither `log_dir` nor `out_dir` is given; when
            training begins, the explainer explains a model that shares no
            weight with the model being trained (its maps would never change).
        InputError: `x` is empty, not images, or holds NaN or Inf; when
            training begins, its shape does not fit the model's input.
        TargetError: `y` is not integer class indices with one row per image,
            or is given with a dataset that yields its own.
        TypeError: `explainer_or_factory` is neither an explainer nor callable,
            or `x` is not numeric.
        ImportError: matplotlib or pillow (the `viz` extra) is not installed.

    Example:
        >>> callback = ke.callbacks.ExplainCallback(
        ...     ke.GradCAM, x_val[:8], y_val[:8], log_dir="logs", out_dir="maps"
        ... )
        >>> model.fit(x, y, epochs=10, callbacks=[
        ...     keras.callbacks.TensorBoard("logs"), callback])
        >>> callback.last_explanation.maps.shape   # (8, H, W, 1)

    References:
        The explanation methods' own papers (see each method); this callback
        follows tf-explain's callbacks (Meudec, 2019,
        <https://github.com/sicara/tf-explain>).
    """

    def __init__(
        self,
        explainer_or_factory: Any | Callable[[keras.Model], Any],
        x: Any,
        y: Any = None,
        every: int = 1,
        log_dir: str | os.PathLike | None = None,
        out_dir: str | os.PathLike | None = None,
        max_images: int = 8,
        *,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.every = _positive("every", every)
        self.max_images = _positive("max_images", max_images)
        if log_dir is None and out_dir is None:
            raise ExplainerError(
                "ExplainCallback writes its explanations somewhere: give log_dir= "
                "(TensorBoard summaries), out_dir= (PNG grids) or both."
            )
        # A class (`ke.GradCAM`) has an `explain` attribute too, but is a factory.
        if hasattr(explainer_or_factory, "explain") and not isinstance(explainer_or_factory, type):
            self._factory, self.explainer = None, explainer_or_factory
        elif callable(explainer_or_factory):
            self._factory, self.explainer = explainer_or_factory, None
        else:
            raise TypeError(
                "explainer_or_factory must be an explainer (ke.GradCAM(model)) or a callable "
                f"model -> explainer (ke.GradCAM); got {type(explainer_or_factory).__name__}."
            )
        from keras_explainable.plot.common import require

        require("matplotlib")
        require("PIL")
        if isinstance(x, tf.data.Dataset):
            x, y = _dataset_batch(x, y, self.max_images)
        images = _images(x)
        targets = _targets(y, len(images))
        self.images = images[: self.max_images].copy()  # the user's array may change later
        self.targets = targets[: self.max_images] if isinstance(targets, np.ndarray) else targets
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.class_names = class_names
        self.last_explanation: Explanation | None = None
        self.last_epoch: int | None = None
        self._writer: Any = None
        self._trained: keras.Model | None = None

    def set_model(self, model: keras.Model) -> None:
        """Keep the model; an explainer made by the factory for another model is dropped."""
        super().set_model(model)
        if self._factory is not None and model is not self._trained:
            self.explainer = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Build the explainer (a factory's), check it and the images against the model."""
        model = self.model
        if self.explainer is None:
            self.explainer = self._factory(model)
            self._trained = model
        explained = getattr(self.explainer, "model", None)
        weights = getattr(explained, "weights", None)
        if weights and model.weights:
            if not {id(v) for v in weights} & {id(v) for v in model.weights}:
                raise ExplainerError(
                    f"The explainer explains {getattr(explained, 'name', explained)!r}, which "
                    f"shares no weight with the model being trained ({model.name!r}): its maps "
                    "would not follow the training. Build it on the trained model."
                )
        shape = getattr(model, "input_shape", None)
        if isinstance(shape, tuple) and all(d is None or isinstance(d, int) for d in shape):
            check_shape(self.images.shape, shape, "The callback's images")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Explain the images and write the overlays, on every `every`-th epoch."""
        if (epoch + 1) % self.every:
            return
        explanation = self.explainer.explain(self.images, self.targets)
        self.last_explanation, self.last_epoch = explanation, epoch + 1
        if self.log_dir is not None:
            self._write_summaries(explanation, step=epoch)
        if self.out_dir is not None:
            self._write_grid(explanation, self.out_dir / f"epoch_{epoch + 1:04d}.png")

    def on_train_end(self, logs: dict | None = None) -> None:
        """Close the summary writer (a later `fit` opens it again)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def overlays(self, explanation: Explanation) -> list[np.ndarray]:
        """The overlays written to TensorBoard: uint8 `(n, H, W, 3)` per target.

        Args:
            explanation: an explanation of `images`.

        Returns:
            One array of blended images per explained target (column of `y`).

        Example:
            >>> blends = callback.overlays(callback.last_explanation)
        """
        from keras_explainable.plot import overlay

        count = np.asarray(explanation.maps).shape[-1]
        return [overlay(self.images, explanation.maps, target=t) for t in range(count)]

    def _write_summaries(self, explanation: Explanation, step: int) -> None:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir / SUMMARY_FOLDER))
        with self._writer.as_default():
            for target, blended in enumerate(self.overlays(explanation)):
                height, width = blended.shape[1:3]
                pngs = [tf.io.encode_png(image).numpy() for image in blended]
                tensor = tf.constant([str(width).encode(), str(height).encode(), *pngs])
                metadata = tf.compat.v1.SummaryMetadata(
                    summary_description=self._description(explanation, target),
                    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name=_IMAGE_PLUGIN),
                )
                tag = f"{explanation.method}/target_{target}"
                tf.summary.write(tag, tensor, step=step, metadata=metadata)
        self._writer.flush()

    def _description(self, explanation: Explanation, target: int) -> str:
        from keras_explainable.plot.common import class_label

        return "; ".join(
            f"image {index}: {class_label(int(unit), self.class_names)} ({score:.3g})"
            for index, (unit, score) in enumerate(
                zip(explanation.targets[:, target], explanation.scores[:, target], strict=True)
            )
        )

    def _write_grid(self, explanation: Explanation, path: Path) -> None:
        from keras_explainable.plot import plot_grid

        path.parent.mkdir(parents=True, exist_ok=True)
        plot_grid(self.images, explanation, path, class_names=self.class_names)
