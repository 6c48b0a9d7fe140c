"""Reading models and images, and writing outputs, for the command line.

Models load in Keras' safe mode unless the user passes `--unsafe`; images
are read with Pillow (the `viz` extra), and preprocessed as
`keras.applications` models expect.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_explainable.cli.errors import CommandError

__all__ = [
    "IMAGE_SUFFIXES",
    "PREPROCESS",
    "check_images",
    "image_size",
    "is_saved_model",
    "load_model",
    "output_dir",
    "preprocess",
    "read_arrays",
    "read_image",
    "read_image_folder",
    "refuse_existing",
    "resize",
    "save_png",
]

# ------------------------------------------------------------------ outputs


def output_dir(path: str) -> Path:
    """Return the output folder (created when writing), refusing a file."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"the output folder {str(folder)!r} exists and is a file.")
    return folder


def refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    """Raise `CommandError` if any of `paths` exists, unless `overwrite`."""
    if overwrite:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise CommandError(
            f"{str(existing[0])!r}{more} already exists; pass --overwrite to replace "
            "it, or choose another --out folder."
        )


def save_png(pixels: np.ndarray, path: str) -> None:
    """Write uint8 `(H, W, 3)` pixels as a PNG file."""
    from PIL import Image

    Image.fromarray(pixels).save(path, format="PNG")


# ------------------------------------------------------------------- images
#: The --preprocess modes (see `preprocess`), as in `keras.applications`.
PREPROCESS = ("none", "scale01", "caffe", "tf", "torch")
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)


def preprocess(images: np.ndarray, mode: str) -> np.ndarray:
    """Preprocess `(N, H, W, C)` pixel values in 0..255 as a model expects.

    Args:
        images: float32 images with values in 0..255.
        mode: 'none' (unchanged), 'scale01' (to [0, 1]), 'tf' (to [-1, 1]),
            'torch' (to [0, 1], then ImageNet mean and std per channel) or
            'caffe' (RGB to BGR, then minus the ImageNet mean), as
            `keras.applications` models expect.

    Returns:
        The preprocessed float32 images.

    Raises:
        CommandError: 'caffe' or 'torch' on images without 3 channels.
    """
    images = images.astype(np.float32)
    if mode == "none":
        return images
    if mode == "scale01":
        return images / 255.0
    if mode == "tf":
        return images / 127.5 - 1.0
    if images.shape[-1] != 3:
        raise CommandError(f"--preprocess {mode} needs RGB images (3 channels).")
    if mode == "torch":
        return (images / 255.0 - _TORCH_MEAN) / _TORCH_STD
    return images[..., ::-1] - _CAFFE_MEAN_BGR


def check_images(paths: Sequence[str]) -> None:
    """Raise `CommandError` for the first path that is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    for path in paths:
        if not Path(path).is_file():
            raise CommandError(f"image not found: {path!r}.")
        try:
            with Image.open(path):
                pass
        except (UnidentifiedImageError, OSError) as error:
            raise CommandError(
                f"cannot read image {path!r}: not a readable JPEG/PNG image."
            ) from error


def read_image(path: str, channels: int) -> np.ndarray:
    """Read an image file as uint8 `(H, W, channels)`, EXIF orientation applied."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
            pixels = np.asarray(image.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise CommandError(
            f"cannot read image {path!r}: not a readable JPEG/PNG image ({error})."
        ) from error
    return pixels.reshape(*pixels.shape[:2], channels)


def resize(pixels: np.ndarray, height: int | None, width: int | None) -> np.ndarray:
    """Resize uint8 `(H, W, C)` pixels bilinearly; None keeps that size."""
    from PIL import Image

    if height is None or width is None or pixels.shape[:2] == (height, width):
        return pixels
    channels = pixels.shape[-1]
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    resized = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
    return resized.reshape(height, width, channels)


#: The image files a folder is read for.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_image_folder(
    folder: Path, height: int | None, width: int | None, channels: int
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Read a folder of images as uint8 `(N, height, width, channels)`.

    Images directly in `folder` are read sorted by name, without labels. A
    folder of sub-folders is read as one class per sub-folder (sorted by
    name, like `keras.utils.image_dataset_from_directory`): the images of the
    k-th sub-folder get label k.

    Returns:
        `(images, labels or None, class names)` (no class names without labels).

    Raises:
        CommandError: no image, images and sub-folders mixed, an unreadable
            image, or a model of unknown input size.
    """
    if height is None or width is None:
        raise CommandError(
            "reading a folder of images needs a model with a fixed input size; this "
            "model takes images of any size."
        )

    def images_in(path: Path) -> list[Path]:
        return sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )

    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    loose = images_in(folder)
    if classes and loose:
        raise CommandError(
            f"{str(folder)!r} holds both images and sub-folders; give images in one "
            "folder (labels: the predicted classes) or one sub-folder per class."
        )
    groups = [(k, images_in(c)) for k, c in enumerate(classes)] if classes else [(-1, loose)]
    paths = [(label, p) for label, files in groups for p in files]
    if not paths:
        raise CommandError(f"no JPEG or PNG images in folder {str(folder)!r}.")
    check_images([str(p) for _, p in paths])
    pixels = np.stack([resize(read_image(str(p), channels), height, width) for _, p in paths])
    if not classes:
        return pixels, None, []
    return pixels, np.array([label for label, _ in paths]), [c.name for c in classes]


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read a `.npy` file as `{'x': array}`, or a `.npz` file's arrays by name.

    Raises:
        CommandError: the file is missing or not a readable `.npy`/`.npz` file.
    """
    if not path.is_file():
        raise CommandError(f"file not found: {str(path)!r}.")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"x": loaded}
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise CommandError(
            f"cannot read {str(path)!r}: not a .npy or .npz file without pickled objects."
        ) from error


# ------------------------------------------------------------------- models
def image_size(model: Any) -> tuple[int | None, int | None, int]:
    """Return the `(height, width, channels)` of an image model's one input.

    Raises:
        CommandError: the model has several inputs, or its input is not
            `(N, height, width, 1, 3 or 4 channels)`.
    """
    shape = model.input_shape
    if isinstance(shape, list):
        if len(shape) != 1:
            raise CommandError(f"the model has {len(shape)} inputs; explain needs one.")
        shape = shape[0]
    if len(shape) != 4 or shape[-1] not in (1, 3, 4):
        raise CommandError(
            f"the model's input has shape {tuple(shape)}; explain works on image "
            "models with input (N, height, width, 1 or 3 channels)."
        )
    return shape[1], shape[2], shape[3]


def is_saved_model(path: Path) -> bool:
    """Return whether `path` is a TensorFlow SavedModel folder."""
    return path.is_dir() and (path / "saved_model.pb").exists()


def load_model(path: str, *, unsafe: bool = False) -> Any:
    """Load a `.keras` file, an `.h5` file or a SavedModel folder for explaining.

    Args:
        path: the model's path.
        unsafe: allow loading that can run arbitrary code: Python lambdas in
            `.keras`/`.h5` files, and SavedModel graphs (default False).

    Returns:
        The Keras model (uncompiled).

    Raises:
        CommandError: the file is missing, corrupt, of an unknown format, or
            needs `unsafe=True`.
    """
    import keras

    model_path = Path(path)
    if not model_path.exists():
        raise CommandError(f"model not found: {path!r}.")
    if is_saved_model(model_path):
        return _load_saved_model(model_path, unsafe)
    if model_path.is_dir():
        if not (model_path / "config.json").exists():
            raise CommandError(
                f"{path!r} is a folder but neither a SavedModel nor an unzipped .keras model."
            )
    elif model_path.suffix == ".keras":
        if not zipfile.is_zipfile(model_path):
            raise CommandError(f"{path!r} is not a valid .keras file (not a zip).")
    elif model_path.suffix not in (".h5", ".hdf5"):
        raise CommandError(
            f"unsupported model format {model_path.suffix or '(no extension)'!r} for "
            f"{path!r}: give a .keras file, an .h5 file or a SavedModel folder."
        )
    try:
        return keras.models.load_model(model_path, compile=False, safe_mode=not unsafe)
    except Exception as error:  # noqa: BLE001 - any failure to read the user's file
        text = " ".join(str(error).split())
        if "safe_mode" in text or "unsafe" in text.lower():
            raise CommandError(
                f"refusing to load {path!r}: it contains Python code (e.g. a Lambda "
                "layer) that loading would run; pass --unsafe if you trust the file."
            ) from error
        if "Could not locate" in text or "Unknown layer" in text:
            raise CommandError(
                f"cannot load {path!r}: it uses custom classes that are not "
                f"registered ({text[:200]}). Load it in Python with custom_objects= "
                "and explain it with the library."
            ) from error
        raise CommandError(f"cannot load model {path!r}: {text[:300]}") from error


def _load_saved_model(path: Path, unsafe: bool) -> Any:
    """Wrap a TensorFlow SavedModel as an opaque Keras model (input methods only)."""
    import keras
    import tensorflow as tf

    if not unsafe:
        raise CommandError(
            f"'{path}' is a TensorFlow SavedModel, whose graph may run any TensorFlow "
            "op (file access included); pass --unsafe if you trust it, or re-save the "
            "model as .keras."
        )
    loaded = tf.saved_model.load(str(path))
    endpoints = [e for e in ("serve", "serving_default") if e in loaded.signatures]
    if not endpoints:
        raise CommandError(
            f"the SavedModel {str(path)!r} has no 'serve' or 'serving_default' signature."
        )
    signature = loaded.signatures[endpoints[0]]
    specs = signature.structured_input_signature
    flat = [s for s in tf.nest.flatten(specs) if isinstance(s, tf.TensorSpec)]
    if len(flat) != 1:
        raise CommandError(f"the SavedModel {str(path)!r} must take one input tensor.")
    layer = keras.layers.TFSMLayer(str(path), call_endpoint=endpoints[0])
    inputs = keras.Input(batch_shape=tuple(flat[0].shape), dtype=flat[0].dtype.name)
    outputs = layer(inputs)
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise CommandError(f"the SavedModel {str(path)!r} must have one output.")
        outputs = next(iter(outputs.values()))
    return keras.Model(inputs, outputs, name=path.name)
