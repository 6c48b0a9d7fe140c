"""`keras-explainable explain MODEL IMAGE...`: explain a saved model on images.

Writes, per image and explained class, the map over the image as a PNG, and
per image the maps as a `.npy` file; a folder of images is streamed to `.npy`
files instead, in bounded memory and resumably.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_explainable.cli.arguments import positive, wrap
from keras_explainable.cli.errors import CommandError
from keras_explainable.cli.io import (
    IMAGE_SUFFIXES,
    PREPROCESS,
    check_images,
    image_size,
    is_saved_model,
    load_model,
    output_dir,
    preprocess,
    read_image,
    refuse_existing,
    resize,
    save_png,
)
from keras_explainable.cli.methods import available_methods, build_method, find_method
from keras_explainable.engine import progress_bar
from keras_explainable.plot import overlay

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
examples:
  keras-explainable explain model.keras cat.jpg dog.png
  keras-explainable explain model.keras photos/*.jpg --method scorecam --out maps
  keras-explainable explain resnet.h5 cat.jpg --preprocess caffe --target 281,285
  keras-explainable explain model.keras x.png --layer conv5_block3_out --overwrite
  keras-explainable explain model.keras cat.jpg --method rise --masks 4000

Writes, per image, <name>_<method>_class<k>.png (the heat map over the image,
one per explained class k) and <name>_<method>.npy (the maps, float32 of
shape (height, width, targets) at the model's input size, values in [0, 1]).
"""


def add_parser(commands: Any) -> None:
    """Add the `explain` subcommand to `commands` (an `add_subparsers()` result)."""
    parser = commands.add_parser(
        "explain",
        help="explain a saved model (.keras, .h5, SavedModel) on image files",
        description=wrap(
            "Explain a saved Keras model's predictions on JPEG/PNG images. Images "
            "are resized to the model's input size; the model is loaded in safe "
            "mode (no Python code runs) unless --unsafe is given."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model", metavar="MODEL", help="a .keras or .h5 file, or a SavedModel folder"
    )
    parser.add_argument(
        "images",
        metavar="IMAGE",
        nargs="+",
        help="JPEG or PNG files, or one folder of them: a folder is streamed to .npy "
        "files (maps, scores, targets) in bounded memory, resumably",
    )
    methods = ", ".join(available_methods())
    parser.add_argument("--method", default="gradcam", help=f"one of {methods} (default: gradcam)")
    parser.add_argument(
        "--target",
        default="auto",
        metavar="auto|INT[,INT...]",
        help="classes to explain: 'auto' (the predicted class, "
        "default) or indices such as 3 or 1,5",
    )
    parser.add_argument(
        "--layer", metavar="NAME", help="layer to explain (default: the last spatial layer)"
    )
    parser.add_argument(
        "--preprocess",
        choices=PREPROCESS,
        default="none",
        help="pixel preprocessing the model expects, applied to 0..255 RGB values (default: none)",
    )
    parser.add_argument(
        "--out",
        default="keras-explainable-out",
        help="output folder (default: keras-explainable-out)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument(
        "--unsafe",
        action="store_true",
        help="allow loading models that run code (Lambda layers, "
        "SavedModels); only for files you trust",
    )
    parser.add_argument(
        "--batch-size", type=positive, default=16, help="images per batch (default: 16)"
    )
    parser.add_argument(
        "--window",
        type=positive,
        metavar="PIXELS",
        help="occlusion: the window's size, moved by half of it (default: 8)",
    )
    parser.add_argument(
        "--masks",
        type=positive,
        metavar="N",
        help="rise: the number of random masks (default: 1000)",
    )
    parser.add_argument(
        "--samples",
        type=positive,
        metavar="N",
        help="kernelshap, lime: the number of sampled coalitions (default: 500)",
    )
    parser.add_argument(
        "--grid",
        type=positive,
        nargs=2,
        metavar=("ROWS", "COLUMNS"),
        help="kernelshap, lime: the grid of segments (default: 8 8)",
    )
    parser.add_argument(
        "--superpixels",
        type=positive,
        metavar="N",
        help="kernelshap, lime: segment each image into at most N SLIC superpixels "
        "instead of a grid (needs scikit-image)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `keras-explainable explain` with the parsed `args`; return the exit status."""
    find_method(args.method)
    units = _parse_targets(args.target)
    out = output_dir(args.out)
    folders = [path for path in args.images if Path(path).is_dir()]
    if folders:
        if len(args.images) > 1:
            raise CommandError(
                "give either one folder of images (streamed to .npy files) or image "
                f"files, not both; got {len(args.images)} arguments including folder "
                f"{folders[0]!r}."
            )
        return _stream_folder(args, Path(folders[0]), out, units)
    check_images(args.images)
    stems = _output_stems(out, args.images, args.method)
    existing = [Path(f"{stem}.npy") for stem in stems]
    existing += [
        p for stem in stems for p in Path(stem).parent.glob(f"{Path(stem).name}_class*.png")
    ]
    refuse_existing(existing, args.overwrite)
    model, explainer = _load_explainer(args, verbose=0)
    height, width, channels = image_size(model)
    # Images of unknown size cannot be stacked: explain them one at a time.
    chunk = args.batch_size if height is not None and width is not None else 1
    progress = progress_bar("auto", -(-len(args.images) // chunk))
    for start in range(0, len(args.images), chunk):
        paths = args.images[start : start + chunk]
        originals = [read_image(path, channels) for path in paths]
        batch = np.stack([resize(pixels, height, width) for pixels in originals])
        inputs = preprocess(batch.astype(np.float32), args.preprocess)
        targets = None if units is None else np.tile(units, (len(paths), 1))
        explanation = explainer.explain(inputs, targets)
        out.mkdir(parents=True, exist_ok=True)
        if progress is not None:
            # The bar is drawn on the terminal's last line: clear it for ours.
            sys.stdout.write("\r\033[K")
        for index, (path, pixels) in enumerate(zip(paths, originals, strict=True)):
            stem = stems[start + index]
            np.save(f"{stem}.npy", explanation.maps[index])
            written = []
            for column, unit in enumerate(explanation.targets[index]):
                png = f"{stem}_class{int(unit)}.png"
                save_png(overlay(pixels, explanation.maps[index], target=column), png)
                score = float(explanation.scores[index, column])
                written.append(f"class {int(unit)} score {score:.3f} -> {png}")
            print(f"{path}: " + "; ".join(written))
        if progress is not None:
            progress.add(1)
    label = _file_label(args.method)
    print(f"Maps (height, width, targets) saved as {out}{os.sep}*_{label}.npy")
    return 0


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


def _file_label(method: str) -> str:
    """Spell a method name for file names ('gradcam++' -> 'gradcampp')."""
    return method.replace("+", "p")


def _output_stems(out: Path, images: Sequence[str], method: str) -> list[str]:
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


def _load_explainer(args: argparse.Namespace, verbose: str | int) -> tuple[Any, Any]:
    """Load the model (safe mode unless --unsafe) and build the explainer."""
    # load_model refuses a SavedModel without --unsafe; with it, say before
    # loading that a layer method cannot see a SavedModel's layers.
    if args.unsafe and is_saved_model(Path(args.model)) and find_method(args.method).needs_layer:
        raise CommandError(
            f"{args.method} explains a hidden layer, but a SavedModel's layers are "
            "hidden from Keras; use an input method (saliency) or re-save the model "
            "as .keras."
        )
    options = _method_options(args)
    model = load_model(args.model, unsafe=args.unsafe)
    explainer = build_method(
        args.method,
        model,
        layer=args.layer,
        batch_size=args.batch_size,
        verbose=verbose,
        **options,
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


def _method_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of one method given on the command line (--window, --masks, ...)."""
    # flag -> (the methods that take it, the explainer options it sets)
    flags = {
        "--window": (("occlusion",), lambda w: {"window": w, "stride": max(1, w // 2)}),
        "--masks": (("rise",), lambda n: {"masks": n}),
        "--samples": (("kernelshap", "lime"), lambda n: {"samples": n}),
        "--grid": (("kernelshap", "lime"), lambda grid: {"grid": tuple(grid)}),
        "--superpixels": (
            ("kernelshap", "lime"),
            lambda n: {"segments": "slic", "num_segments": n, "grid": None},
        ),
    }
    if getattr(args, "grid", None) is not None and getattr(args, "superpixels", None) is not None:
        raise CommandError("--grid and --superpixels are two ways to segment; give one.")
    options: dict[str, Any] = {}
    for flag, (methods, to_options) in flags.items():
        value = getattr(args, flag[2:], None)
        if value is None:
            continue
        if args.method not in methods:
            raise CommandError(
                f"{flag} is an option of {' and '.join(methods)}, not of {args.method}."
            )
        options.update(to_options(value))
    return options


def _stream_folder(args: argparse.Namespace, folder: Path, out: Path, units: Any) -> int:
    """Explain every image of `folder`, streaming the maps to `.npy` files.

    The images are read one by one (sorted by name), so the folder may hold
    more images than fit in memory. The results go to
    `OUT/<folder>_<method>/{maps,scores,targets}.npy` with `names.txt` listing
    the images in order; an interrupted run continues where it stopped when
    started again, unless --overwrite asks for a fresh run.
    """
    paths = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not paths:
        raise CommandError(f"no JPEG or PNG images in folder {str(folder)!r}.")
    check_images([str(p) for p in paths])
    target = out / f"{folder.resolve().name}_{_file_label(args.method)}"
    if target.exists() and not target.is_dir():
        raise CommandError(f"the output folder {str(target)!r} exists and is a file.")
    if args.overwrite and target.is_dir():
        for name in ("maps.npy", "scores.npy", "targets.npy", "progress.json", "names.txt"):
            (target / name).unlink(missing_ok=True)
    # The explainer shows its own progress bar, on a terminal.
    model, explainer = _load_explainer(args, verbose="auto")
    height, width, channels = image_size(model)
    if height is None or width is None:
        raise CommandError(
            "streaming a folder needs a model with a fixed input size; this model "
            "takes images of any size. Pass the image files instead."
        )

    def images() -> Iterator[np.ndarray]:
        for path in paths:
            pixels = resize(read_image(str(path), channels), height, width)
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
