"""The `keras-explainable` command line.

Two commands:

* `keras-explainable demo` explains the bundled shapes classifier with every
  method, writes a gallery PNG and prints each method's speed and pointing-game
  accuracy. Nothing is downloaded.
* `keras-explainable explain MODEL IMAGE...` explains a saved Keras model on
  image files, writing one overlay PNG per image and target and a `.npy` file
  of the maps.

Bad input (a missing or corrupt file, an unknown method, layer or target, an
output that exists) ends the run with one line on stderr,
`keras-explainable: error: ...`, and exit status 1 (2 for malformed command
lines). `--traceback` shows the full traceback instead, for bug reports.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import attrs
import numpy as np

__all__ = [
    "METHODS",
    "CommandError",
    "MethodSpec",
    "available_methods",
    "load_model",
    "main",
    "preprocess",
]

PROG = "keras-explainable"


class CommandError(Exception):
    """A problem with the user's input, reported as one line."""


@attrs.frozen
class MethodSpec:
    """How the command line builds one method.

    Attributes:
        attribute: the explainer's name in `keras_explainable`.
        wraps: for a wrapper (SmoothGrad, TTA), the name of the explainer it
            wraps, built with the model and the options; None otherwise.
    """

    attribute: str
    wraps: str | None = None


#: The methods the command line offers, by command-line name. Add a method
#: here (one line) once `keras_explainable` exports it; a name the installed
#: package does not export is skipped.
METHODS: dict[str, MethodSpec] = {
    "cam": MethodSpec("CAM"),
    "gradcam": MethodSpec("GradCAM"),
    "gradcam++": MethodSpec("GradCAMPlusPlus"),
    "scorecam": MethodSpec("ScoreCAM"),
    "fullgrad": MethodSpec("FullGradient"),
    "saliency": MethodSpec("Saliency"),
    "smoothgrad": MethodSpec("SmoothGrad", wraps="Saliency"),
    "tta": MethodSpec("TTA", wraps="GradCAM"),
}


def available_methods() -> dict[str, MethodSpec]:
    """Return the entries of `METHODS` that the installed package provides."""
    import keras_explainable

    return {
        name: spec
        for name, spec in METHODS.items()
        if hasattr(keras_explainable, spec.attribute)
        and (spec.wraps is None or hasattr(keras_explainable, spec.wraps))
    }


def _method_spec(name: str) -> MethodSpec:
    from keras_explainable.errors import did_you_mean

    methods = available_methods()
    if name not in methods:
        raise CommandError(
            f"unknown method {name!r}; choose from: {', '.join(methods)}."
            + did_you_mean(name, methods)
        )
    return methods[name]


def _needs_layer(spec: MethodSpec) -> bool:
    import keras_explainable

    explainer = getattr(keras_explainable, spec.wraps or spec.attribute)
    return bool(getattr(explainer, "needs_layer", True))


def _build_method(name: str, model: Any, *, layer: str | None = None, **options: Any) -> Any:
    """Construct the explainer registered as `name` for `model`."""
    import keras_explainable

    spec = _method_spec(name)
    if layer is not None:
        if not _needs_layer(spec):
            raise CommandError(
                f"the method {name!r} explains the input directly and takes no --layer."
            )
        options["layer"] = layer
    if spec.wraps is None:
        return getattr(keras_explainable, spec.attribute)(model, **options)
    inner = getattr(keras_explainable, spec.wraps)(model, **options)
    return getattr(keras_explainable, spec.attribute)(inner)


# ------------------------------------------------------------------ helpers
class _Progress:
    """A one-line progress bar on stderr, shown only on a terminal."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self.enabled = total > 1 and sys.stderr.isatty()
        self.start = time.perf_counter()

    def clear(self) -> None:
        """Erase the bar, so that a line printed next starts clean."""
        if self.enabled and 0 < self.done < self.total:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    def advance(self, count: int = 1, note: str = "") -> None:
        self.done += count
        if not self.enabled:
            return
        width = 30
        filled = round(width * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{self.done}/{self.total} {elapsed:.0f}s {note:<20.20}"
        )
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _output_dir(path: str) -> Path:
    """Return the output folder (created when writing), refusing a file."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"the output folder {str(folder)!r} exists and is a file.")
    return folder


def _refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    if overwrite:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise CommandError(
            f"{str(existing[0])!r}{more} already exists; pass --overwrite to replace "
            "it, or choose another --out folder."
        )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.strerror}: {error.filename!r}"
    if isinstance(error, (CommandError, ValueError)) or not text:
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like ours."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------- demo
def _run_demo(args: argparse.Namespace) -> int:
    from keras_explainable import demo
    from keras_explainable.metrics import default_metrics, score_explanation
    from keras_explainable.plot import plot_grid

    names = list(dict.fromkeys(args.methods or available_methods()))
    for name in names:
        _method_spec(name)
    out = _output_dir(args.out)
    gallery = out / "gallery.png"
    _refuse_existing([gallery], args.overwrite)

    data = demo.make_shapes(args.images, seed=args.seed)
    model = demo.load_demo_model()
    progress = _Progress(len(names), "explaining")
    metrics = default_metrics(steps=args.steps)
    explanations, rows = {}, []
    for name in names:
        explainer = _build_method(name, model, batch_size=args.batch_size, verbose=0)
        # The first call compiles; time only the second.
        explainer.explain(data.images[:1], data.labels[:1])
        start = time.perf_counter()
        explanation = explainer.explain(data.images, data.labels)
        seconds = (time.perf_counter() - start) / len(data)
        scores = score_explanation(
            explanation,
            data.images,
            explainer=explainer,
            masks=data.masks,
            metrics=metrics,
        )
        explanations[name] = explanation
        rows.append((name, seconds * 1000, scores))
        progress.advance(note=name)

    shown = min(args.rows, len(data))
    titles = [f"true: {demo.CLASS_NAMES[label]}" for label in data.labels[:shown]]
    out.mkdir(parents=True, exist_ok=True)
    plot_grid(
        data.images[:shown],
        {name: explanation[:shown] for name, explanation in explanations.items()},
        gallery,
        class_names=demo.CLASS_NAMES,
        image_titles=titles,
    )
    print(
        f"Explained {len(data)} synthetic images (seed {args.seed}) of the bundled "
        f"{model.name} model. Pointing game: share of maps whose peak lies on the "
        "object; energy: share of the map's mass on it; Deletion AUC (lower is "
        f"better) and Insertion AUC (higher is better) over {args.steps} steps."
    )
    print(
        f"{'method':<12} {'ms/image':>9} {'pointing game':>14} {'energy':>7} "
        f"{'deletion':>9} {'insertion':>10}"
    )
    for name, milliseconds, scores in rows:
        print(
            f"{name:<12} {milliseconds:>9.2f} {scores['pointing_game']:>14.0%} "
            f"{scores['energy_pointing_game']:>7.2f} {scores['deletion']:>9.3f} "
            f"{scores['insertion']:>10.3f}"
        )
    print(f"Gallery: {gallery} (titles: method, explained class, its logit)")
    return 0


# ------------------------------------------------------------------ explain
#: The --preprocess modes (see `preprocess`), as in `keras.applications`.
_PREPROCESS = ("none", "scale01", "caffe", "tf", "torch")
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


_SAVED_MODEL_UNSAFE = (
    "'{path}' is a TensorFlow SavedModel, whose graph may run any TensorFlow op "
    "(file access included); pass --unsafe if you trust it, or re-save the model "
    "as .keras."
)


def _load_saved_model(path: Path, unsafe: bool) -> Any:
    """Wrap a TensorFlow SavedModel as an opaque Keras model (input methods only)."""
    import keras
    import tensorflow as tf

    if not unsafe:
        raise CommandError(_SAVED_MODEL_UNSAFE.format(path=path))
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


def _is_saved_model(path: Path) -> bool:
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
    if _is_saved_model(model_path):
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


def _parse_targets(text: str) -> list[int] | None:
    """'auto' -> None (the top class); '3' or '1,5' -> unit indices."""
    if text == "auto":
        return None
    try:
        units = [int(part) for part in text.split(",")]
    except ValueError:
        units = []
    if not units or any(unit < 0 for unit in units):
        raise CommandError(
            f"--target must be 'auto' or class indices >= 0 such as 3 or 1,5; got {text!r}."
        )
    return units


def _image_size(model: Any) -> tuple[int | None, int | None, int]:
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


def _read_image(path: str, channels: int) -> np.ndarray:
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


def _resize(pixels: np.ndarray, height: int | None, width: int | None) -> np.ndarray:
    from PIL import Image

    if height is None or width is None or pixels.shape[:2] == (height, width):
        return pixels
    channels = pixels.shape[-1]
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    resized = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
    return resized.reshape(height, width, channels)


def _check_images(paths: Sequence[str]) -> None:
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


def _file_label(method: str) -> str:
    """Spell a method name for file names ('gradcam++' -> 'gradcampp')."""
    return method.replace("+", "p")


def _outputs(out: Path, images: Sequence[str], method: str) -> list[str]:
    """Return each image's output file stem; refuse two images of the same name."""
    stems: dict[str, str] = {}
    for path in images:
        stem = f"{Path(path).stem}_{_file_label(method)}"
        if stem in stems:
            raise CommandError(
                f"images {stems[stem]!r} and {path!r} have the same name, so their "
                "outputs would collide; explain them in separate runs."
            )
        stems[stem] = path
    return [str(out / stem) for stem in stems]


def _run_explain(args: argparse.Namespace) -> int:
    from keras_explainable.plot import overlay

    _method_spec(args.method)
    units = _parse_targets(args.target)
    out = _output_dir(args.out)
    folders = [path for path in args.images if Path(path).is_dir()]
    if folders:
        if len(args.images) > 1:
            raise CommandError(
                "give either one folder of images (streamed to .npy files) or image "
                f"files, not both; got {len(args.images)} arguments including folder "
                f"{folders[0]!r}."
            )
        return _stream_folder(args, Path(folders[0]), out, units)
    _check_images(args.images)
    stems = _outputs(out, args.images, args.method)
    existing = [Path(f"{stem}.npy") for stem in stems]
    existing += [
        p for stem in stems for p in Path(stem).parent.glob(f"{Path(stem).name}_class*.png")
    ]
    _refuse_existing(existing, args.overwrite)
    model, explainer = _load_explainer(args)
    height, width, channels = _image_size(model)
    # Images of unknown size cannot be stacked: explain them one at a time.
    chunk = args.batch_size if height is not None and width is not None else 1
    progress = _Progress(-(-len(args.images) // chunk), "explaining")
    for start in range(0, len(args.images), chunk):
        paths = args.images[start : start + chunk]
        originals = [_read_image(path, channels) for path in paths]
        batch = np.stack([_resize(pixels, height, width) for pixels in originals])
        inputs = preprocess(batch.astype(np.float32), args.preprocess)
        targets = None if units is None else np.tile(units, (len(paths), 1))
        explanation = explainer.explain(inputs, targets)
        out.mkdir(parents=True, exist_ok=True)
        progress.clear()
        for index, (path, pixels) in enumerate(zip(paths, originals, strict=True)):
            stem = stems[start + index]
            np.save(f"{stem}.npy", explanation.maps[index])
            written = []
            for column, unit in enumerate(explanation.targets[index]):
                png = f"{stem}_class{int(unit)}.png"
                blended = overlay(pixels, explanation.maps[index], target=column)
                _save_png(blended, png)
                score = float(explanation.scores[index, column])
                written.append(f"class {int(unit)} score {score:.3f} -> {png}")
            print(f"{path}: " + "; ".join(written))
        progress.advance(note=Path(paths[-1]).name)
    label = _file_label(args.method)
    print(f"Maps (height, width, targets) saved as {out}{os.sep}*_{label}.npy")
    return 0


def _load_explainer(args: argparse.Namespace, verbose: int = 0) -> tuple[Any, Any]:
    """Load the model (safe mode unless --unsafe) and build the explainer."""
    saved_model = _is_saved_model(Path(args.model))
    if saved_model and not args.unsafe:
        raise CommandError(_SAVED_MODEL_UNSAFE.format(path=args.model))
    if saved_model and _needs_layer(_method_spec(args.method)):
        raise CommandError(
            f"{args.method} explains a hidden layer, but a SavedModel's layers are "
            "hidden from Keras; use an input method (saliency) or re-save the model "
            "as .keras."
        )
    model = load_model(args.model, unsafe=args.unsafe)
    explainer = _build_method(
        args.method, model, layer=args.layer, batch_size=args.batch_size, verbose=verbose
    )
    logits = getattr(getattr(explainer, "exposure", None), "stripped_activation", None)
    layer = getattr(explainer, "layer_name", None)
    print(
        f"Explaining {model.name} with {args.method}"
        + (f" at layer {layer!r}" if layer else "")
        + (f"; scores are the logits before the {logits}" if logits else "")
        + "."
    )
    return model, explainer


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _stream_folder(args: argparse.Namespace, folder: Path, out: Path, units: Any) -> int:
    """Explain every image of `folder`, streaming the maps to `.npy` files.

    The images are read one by one (sorted by name), so the folder may hold
    more images than fit in memory. The results go to
    `OUT/<folder>_<method>/{maps,scores,targets}.npy` with `names.txt` listing
    the images in order; an interrupted run continues where it stopped when
    started again, unless --overwrite asks for a fresh run.
    """
    import tensorflow as tf

    paths = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
    )
    if not paths:
        raise CommandError(f"no JPEG or PNG images in folder {str(folder)!r}.")
    _check_images([str(p) for p in paths])
    target = out / f"{folder.resolve().name}_{_file_label(args.method)}"
    if target.exists() and not target.is_dir():
        raise CommandError(f"the output folder {str(target)!r} exists and is a file.")
    if args.overwrite and target.is_dir():
        for name in ("maps.npy", "scores.npy", "targets.npy", "progress.json", "names.txt"):
            (target / name).unlink(missing_ok=True)
    model, explainer = _load_explainer(args, verbose=1 if sys.stderr.isatty() else 0)
    height, width, channels = _image_size(model)
    if height is None or width is None:
        raise CommandError(
            "streaming a folder needs a model with a fixed input size; this model "
            "takes images of any size. Pass the image files instead."
        )

    def images() -> Any:
        for path in paths:
            pixels = _resize(_read_image(str(path), channels), height, width)
            yield preprocess(pixels[None].astype(np.float32), args.preprocess)[0]

    dataset = tf.data.Dataset.from_generator(
        images, output_signature=tf.TensorSpec((height, width, channels), tf.float32)
    )
    targets = None if units is None else np.tile(units, (len(paths), 1))
    names = "\n".join(p.name for p in paths) + "\n"
    names_file = target / "names.txt"
    if names_file.exists() and names_file.read_text() != names:
        raise CommandError(
            f"{str(target)!r} holds a run over other images; pass --overwrite to "
            "start again, or choose another --out folder."
        )
    try:
        explanation = explainer.explain_to_disk(dataset, target, targets)
    except FileExistsError as error:
        raise CommandError(f"{error} Pass --overwrite to start again.") from error
    names_file.write_text(names)
    print(
        f"{len(explanation.maps)} maps {explanation.maps.shape[1:]} written to "
        f"{target / 'maps.npy'} (with scores.npy, targets.npy and names.txt); load "
        "them with numpy.load(path, mmap_mode='r'). An interrupted run continues "
        "when started again."
    )
    return 0


def _save_png(pixels: np.ndarray, path: str) -> None:
    from PIL import Image

    Image.fromarray(pixels).save(path, format="PNG")


# ------------------------------------------------------------------- parser
_DEMO_EXAMPLES = """\
examples:
  keras-explainable demo
  keras-explainable demo --out gallery --images 64 --seed 7
  keras-explainable demo --methods gradcam scorecam --rows 4 --overwrite
"""

_EXPLAIN_EXAMPLES = """\
examples:
  keras-explainable explain model.keras cat.jpg dog.png
  keras-explainable explain model.keras photos/*.jpg --method scorecam --out maps
  keras-explainable explain resnet.h5 cat.jpg --preprocess caffe --target 281,285
  keras-explainable explain model.keras x.png --layer conv5_block3_out --overwrite

Writes, per image, <name>_<method>_class<k>.png (the heat map over the image,
one per explained class k) and <name>_<method>.npy (the maps, float32 of
shape (height, width, targets) at the model's input size, values in [0, 1]).
"""

_MAIN_EXAMPLES = """\
examples:
  keras-explainable demo                      # no download: see every method
  keras-explainable explain model.keras cat.jpg --method gradcam
  keras-explainable explain --help
"""


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=78)


def _parser() -> argparse.ArgumentParser:
    from keras_explainable import __version__

    methods = ", ".join(available_methods())
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        description="Explain the predictions of Keras models from the shell.",
        epilog=_MAIN_EXAMPLES,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="on errors, show the full traceback (for bug reports)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="explain the bundled shapes model with every method (no download)",
        description=_wrap(
            "Explain the bundled shapes classifier on fresh synthetic images with "
            "every method; write a gallery PNG (rows = images, columns = methods) "
            "and print each method's time per image and pointing-game accuracy "
            "(how often the map's peak lies on the true object)."
        ),
        epilog=_DEMO_EXAMPLES,
        formatter_class=formatter,
    )
    demo.add_argument(
        "--out",
        default="keras-explainable-demo",
        help="output folder (default: keras-explainable-demo)",
    )
    demo.add_argument(
        "--methods",
        nargs="+",
        metavar="METHOD",
        help=f"methods to run (default: all of {methods})",
    )
    demo.add_argument(
        "--images",
        type=_positive,
        default=16,
        help="images to explain and score (default: 16)",
    )
    demo.add_argument(
        "--rows",
        type=_positive,
        default=4,
        help="images shown in the gallery (default: 4)",
    )
    demo.add_argument(
        "--steps",
        type=_positive,
        default=20,
        help="steps of the Deletion and Insertion curves (default: 20)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=2024,
        help="seed of the synthetic images (default: 2024)",
    )
    demo.add_argument(
        "--batch-size",
        type=_positive,
        default=32,
        help="images per batch (default: 32)",
    )
    demo.add_argument("--overwrite", action="store_true", help="replace an existing gallery")
    demo.set_defaults(run=_run_demo)

    explain = commands.add_parser(
        "explain",
        help="explain a saved model (.keras, .h5, SavedModel) on image files",
        description=_wrap(
            "Explain a saved Keras model's predictions on JPEG/PNG images. Images "
            "are resized to the model's input size; the model is loaded in safe "
            "mode (no Python code runs) unless --unsafe is given."
        ),
        epilog=_EXPLAIN_EXAMPLES,
        formatter_class=formatter,
    )
    explain.add_argument(
        "model", metavar="MODEL", help="a .keras or .h5 file, or a SavedModel folder"
    )
    explain.add_argument(
        "images",
        metavar="IMAGE",
        nargs="+",
        help="JPEG or PNG files, or one folder of them: a folder is streamed to .npy "
        "files (maps, scores, targets) in bounded memory, resumably",
    )
    explain.add_argument("--method", default="gradcam", help=f"one of {methods} (default: gradcam)")
    explain.add_argument(
        "--target",
        default="auto",
        metavar="auto|INT[,INT...]",
        help="classes to explain: 'auto' (the predicted class, "
        "default) or indices such as 3 or 1,5",
    )
    explain.add_argument(
        "--layer",
        metavar="NAME",
        help="layer to explain (default: the last spatial layer)",
    )
    explain.add_argument(
        "--preprocess",
        choices=_PREPROCESS,
        default="none",
        help="pixel preprocessing the model expects, applied to 0..255 RGB values (default: none)",
    )
    explain.add_argument(
        "--out",
        default="keras-explainable-out",
        help="output folder (default: keras-explainable-out)",
    )
    explain.add_argument("--overwrite", action="store_true", help="replace existing output files")
    explain.add_argument(
        "--unsafe",
        action="store_true",
        help="allow loading models that run code (Lambda layers, "
        "SavedModels); only for files you trust",
    )
    explain.add_argument(
        "--batch-size",
        type=_positive,
        default=16,
        help="images per batch (default: 16)",
    )
    explain.set_defaults(run=_run_explain)
    return parser


def _quiet_tensorflow() -> None:
    """Keep TensorFlow's Python warnings out of the command's output.

    Each method compiles its own step, which TensorFlow reports as retracing
    after a few methods; for a one-shot command that is noise.
    """
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments without the program name; default `sys.argv[1:]`.

    Returns:
        The exit status: 0 on success, 1 on bad input, 2 on a malformed
        command line, 130 when interrupted.

    Example:
        >>> main(["demo", "--images", "8"])
        0
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    run: Callable[[argparse.Namespace], int] = args.run
    _quiet_tensorflow()
    try:
        return run(args)
    except (CommandError, ValueError, TypeError, OSError) as error:
        if args.traceback:
            raise
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
