"""`keras-explainable evaluate MODEL DATA`: which method is faithful for this model.

Scores several methods with several metrics (`keras_explainable.metrics.
evaluate`) on the user's model and data, prints the table and writes an HTML
report, a CSV file and the per-sample values. Each finished (method, metric)
cell is kept in its own file, so a second run reuses them and an interrupted
run loses nothing it finished.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from keras_explainable.cli.arguments import positive, wrap
from keras_explainable.cli.errors import CommandError
from keras_explainable.cli.io import (
    PREPROCESS,
    image_size,
    load_model,
    output_dir,
    preprocess,
    read_arrays,
    read_image_folder,
)
from keras_explainable.cli.methods import available_methods, build_method, find_method
from keras_explainable.errors import did_you_mean
from keras_explainable.metrics import default_metrics, evaluate, format_table

__all__ = ["DEFAULT_METHODS", "add_parser", "available_metrics", "run"]

#: The methods scored unless --methods names others: quick ones of each family.
DEFAULT_METHODS = ("gradcam", "gradcam++", "saliency", "inputxgradient", "ig")

_EXAMPLES = """\
examples:
  keras-explainable evaluate --demo
  keras-explainable evaluate model.keras photos/ --methods gradcam scorecam saliency
  keras-explainable evaluate model.keras data.npz --masks masks.npy --out report
  keras-explainable evaluate model.keras data.npy --metrics deletion insertion \\
      symmetric_relevance_gain sparseness

DATA is a folder of JPEG/PNG images (labels: one sub-folder per class, sorted
by name; images directly in the folder are explained for the predicted class),
a .npy file of model-ready inputs (N, height, width, channels), or a .npz file
with 'x' (or 'images') and optionally 'y' (or 'labels') and 'masks'.

Writes OUT/index.html (the report: table, curves, gallery, time per image;
opens offline), OUT/results.csv, OUT/values.npz (per-sample values, one array
per 'method/metric') and OUT/cells/ (the finished cells: a second run reuses
them; --overwrite starts again).
"""


def available_metrics() -> list[str]:
    """The metric names `--metrics` accepts (those of `default_metrics`)."""
    return list(default_metrics(localization=True, extended=True, steps=1))


def add_parser(commands: Any) -> None:
    """Add the `evaluate` subcommand to `commands` (an `add_subparsers()` result)."""
    parser = commands.add_parser(
        "evaluate",
        help="score methods with metrics on your model and data; write an HTML report",
        description=wrap(
            "Score several explanation methods with several metrics on a saved Keras "
            "model and your data, print the table (mean per method and metric) and "
            "write an HTML report with 95% bootstrap intervals, the best method per "
            "metric, the deletion/insertion/ROAD curves, a gallery of maps and the "
            "time per image. The model is loaded in safe mode unless --unsafe is given."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", nargs="?", help="a .keras or .h5 file")
    parser.add_argument(
        "data",
        metavar="DATA",
        nargs="?",
        help="a folder of images, a .npy file of inputs or a .npz file (see below)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="use the bundled shapes model and fresh synthetic images with masks "
        "(no MODEL or DATA; nothing is downloaded)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        metavar="METHOD",
        help=f"methods to score (default: {' '.join(DEFAULT_METHODS)}; "
        f"any of {', '.join(available_methods())})",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        metavar="METRIC",
        help="metrics to score with (default: deletion insertion, and pointing_game "
        "energy_pointing_game with masks; any of " + ", ".join(available_metrics()) + ")",
    )
    parser.add_argument(
        "--masks",
        metavar="FILE",
        help="ground truth for the localisation metrics: a .npy file of (N, height, "
        "width) masks, nonzero on the object, in DATA's order",
    )
    parser.add_argument(
        "--preprocess",
        choices=PREPROCESS,
        default="none",
        help="for a folder of images: the pixel preprocessing the model expects, "
        "applied to 0..255 RGB values (default: none)",
    )
    parser.add_argument(
        "--steps",
        type=positive,
        default=20,
        help="steps of the Deletion and Insertion curves (default: 20)",
    )
    parser.add_argument(
        "--images",
        type=positive,
        default=16,
        help="with --demo: the number of synthetic images (default: 16)",
    )
    parser.add_argument(
        "--seed", type=int, default=2024, help="with --demo: the images' seed (default: 2024)"
    )
    parser.add_argument(
        "--gallery", type=int, default=4, help="images shown in the report's gallery (default: 4)"
    )
    parser.add_argument(
        "--out",
        default="keras-explainable-report",
        help="output folder (default: keras-explainable-report)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="discard the finished cells of an earlier run and start again",
    )
    parser.add_argument(
        "--unsafe",
        action="store_true",
        help="allow loading models that run code (Lambda layers); only for files you trust",
    )
    parser.add_argument(
        "--batch-size", type=positive, default=16, help="images per batch (default: 16)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `keras-explainable evaluate` with the parsed `args`; return the exit status."""
    names = list(dict.fromkeys(args.methods or DEFAULT_METHODS))
    for name in names:
        find_method(name)
    if args.gallery < 0:
        raise CommandError(f"--gallery must be 0 or more; got {args.gallery}.")
    data_path = _data_path(args)
    out = output_dir(args.out)
    model, x, y, masks, source = _load(args, data_path)
    metrics = _metrics(args.metrics, args.steps, has_masks=masks is not None)
    masks = _check_masks(masks, x)
    explainers = {
        name: build_method(name, model, batch_size=args.batch_size, verbose=0) for name in names
    }
    if args.overwrite:
        shutil.rmtree(out / "cells", ignore_errors=True)
    print(
        f"Scoring {len(names)} methods with {len(metrics)} metrics on {len(x)} inputs "
        f"({source}) of {model.name}; finished cells are kept in {out / 'cells'}."
    )
    evaluation = evaluate(
        explainers,
        x,
        y,
        masks=masks,
        metrics=metrics,
        cache=out / "cells",
        gallery=min(args.gallery, len(x)),
        verbose="auto",
    )
    order = evaluation.ranking()
    by_method = {row["method"]: row for row in evaluation}
    table = [{**by_method[m], "ms/image": evaluation.seconds[m] * 1000.0} for m in order]
    arrows = {True: "higher", False: "lower", None: "neither"}
    print(format_table(table))
    print(
        "Better: "
        + ", ".join(f"{c} {arrows[h]}" for c, h in evaluation.higher_is_better.items())
        + ". Methods ranked by mean rank over the metrics."
    )
    evaluation.to_html(out / "index.html", title=f"Evaluation of {model.name} ({source})")
    evaluation.to_csv(out / "results.csv")
    evaluation.to_npz(out / "values.npz")
    print(f"Report: {out / 'index.html'} (with results.csv and values.npz)")
    return 0


def _data_path(args: argparse.Namespace) -> Path | None:
    """The DATA path (None with --demo), after checking the arguments that go with it."""
    if args.demo:
        if args.model or args.data:
            raise CommandError("--demo uses the bundled model and images: give no MODEL or DATA.")
        if args.masks:
            raise CommandError("--demo brings its own masks: leave out --masks.")
    elif not (args.model and args.data):
        raise CommandError("give MODEL and DATA (a folder, .npy or .npz file), or --demo.")
    data = None if args.demo else Path(args.data)
    if data is not None and not data.exists():
        raise CommandError(f"data not found: {args.data!r}.")
    if data is not None and not data.is_dir() and data.suffix not in (".npy", ".npz"):
        raise CommandError(
            f"unsupported data {args.data!r}: give a folder of images, a .npy or a .npz file."
        )
    if args.preprocess != "none" and (data is None or not data.is_dir()):
        raise CommandError(
            "--preprocess applies to a folder of images; .npy/.npz inputs and --demo "
            "are taken as the model expects them."
        )
    return data


def _load(args: argparse.Namespace, data: Path | None) -> tuple[Any, ...]:
    """Return `(model, x, y or None, masks or None, description of the data)`."""
    if data is None:
        from keras_explainable.demo import load_demo_model, make_shapes

        shapes = make_shapes(args.images, seed=args.seed)
        return load_demo_model(), shapes.images, shapes.labels, shapes.masks, "demo shapes"
    masks = None
    if args.masks:
        stored = read_arrays(Path(args.masks))
        masks = stored.get("masks", stored.get("x"))
        if masks is None:
            raise CommandError(f"{args.masks!r} holds no array named 'masks'.")
    y = None
    if data.is_dir():
        model = load_model(args.model, unsafe=args.unsafe)
        height, width, channels = image_size(model)
        pixels, y, _ = read_image_folder(data, height, width, channels)
        x = preprocess(pixels.astype(np.float32), args.preprocess)
        return model, x, y, masks, f"images in {data}"
    arrays = read_arrays(data)
    x = _first(arrays, ("x", "images"))
    if x is None:
        raise CommandError(f"{str(data)!r} holds no array named 'x' or 'images'.")
    y = _first(arrays, ("y", "labels"))
    if masks is None:
        masks = arrays.get("masks")
    model = load_model(args.model, unsafe=args.unsafe)
    return model, x, y, masks, data.name


def _first(arrays: dict[str, np.ndarray], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in arrays:
            return arrays[key]
    return None


def _metrics(names: list[str] | None, steps: int, *, has_masks: bool) -> dict[str, Any]:
    """The metrics by name; localisation metrics only with masks."""
    every = default_metrics(localization=True, extended=True, steps=steps)
    if names is None:
        return default_metrics(localization=has_masks, steps=steps)
    chosen = {}
    for name in dict.fromkeys(names):
        if name not in every:
            raise CommandError(
                f"unknown metric {name!r}; choose from: {', '.join(every)}."
                + did_you_mean(name, every)
            )
        if every[name].needs_masks and not has_masks:
            raise CommandError(
                f"{name} compares maps with ground truth: give --masks (or 'masks' in "
                "the .npz file)."
            )
        chosen[name] = every[name]
    return chosen


def _check_masks(masks: Any, x: np.ndarray) -> np.ndarray | None:
    """Return the masks as bool (nonzero: the object); refuse a shape unlike the inputs'."""
    if masks is None:
        return None
    expected = tuple(x.shape[:-1])
    if tuple(masks.shape) != expected:
        raise CommandError(
            f"the masks have shape {tuple(masks.shape)}; expected {expected}: one "
            "(height, width) mask per input."
        )
    return np.asarray(masks) != 0
