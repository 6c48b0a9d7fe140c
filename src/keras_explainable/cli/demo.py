"""`keras-explainable demo`: every method on the bundled shapes model.

Explains fresh synthetic images with each method, writes a gallery PNG and
prints each method's time per image, pointing-game accuracy and Deletion and
Insertion scores. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from keras_explainable.cli.arguments import positive, wrap
from keras_explainable.cli.io import output_dir, refuse_existing
from keras_explainable.cli.methods import available_methods, build_method, find_method
from keras_explainable.demo import CLASS_NAMES, load_demo_model, make_shapes
from keras_explainable.engine import progress_bar
from keras_explainable.metrics import default_metrics, score_explanation
from keras_explainable.plot import plot_grid

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
examples:
  keras-explainable demo
  keras-explainable demo --out gallery --images 64 --seed 7
  keras-explainable demo --methods gradcam scorecam --rows 4 --overwrite
"""


def add_parser(commands: Any) -> None:
    """Add the `demo` subcommand to `commands` (an `add_subparsers()` result)."""
    parser = commands.add_parser(
        "demo",
        help="explain the bundled shapes model with every method (no download)",
        description=wrap(
            "Explain the bundled shapes classifier on fresh synthetic images with "
            "every method; write a gallery PNG (rows = images, columns = methods) "
            "and print each method's time per image and pointing-game accuracy "
            "(how often the map's peak lies on the true object)."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out",
        default="keras-explainable-demo",
        help="output folder (default: keras-explainable-demo)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        metavar="METHOD",
        help=f"methods to run (default: all of {', '.join(available_methods())})",
    )
    parser.add_argument(
        "--images", type=positive, default=16, help="images to explain and score (default: 16)"
    )
    parser.add_argument(
        "--rows", type=positive, default=4, help="images shown in the gallery (default: 4)"
    )
    parser.add_argument(
        "--steps",
        type=positive,
        default=20,
        help="steps of the Deletion and Insertion curves (default: 20)",
    )
    parser.add_argument(
        "--seed", type=int, default=2024, help="seed of the synthetic images (default: 2024)"
    )
    parser.add_argument(
        "--batch-size", type=positive, default=32, help="images per batch (default: 32)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing gallery")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `keras-explainable demo` with the parsed `args`; return the exit status."""
    names = list(dict.fromkeys(args.methods or available_methods()))
    for name in names:
        find_method(name)
    out = output_dir(args.out)
    gallery = out / "gallery.png"
    refuse_existing([gallery], args.overwrite)

    data = make_shapes(args.images, seed=args.seed)
    model = load_demo_model()
    progress = progress_bar("auto", len(names), unit="method")
    metrics = default_metrics(steps=args.steps)
    explanations, rows = {}, []
    for name in names:
        explainer = build_method(name, model, batch_size=args.batch_size, verbose=0)
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
        if progress is not None:
            progress.add(1)

    shown = min(args.rows, len(data))
    titles = [f"true: {CLASS_NAMES[label]}" for label in data.labels[:shown]]
    out.mkdir(parents=True, exist_ok=True)
    plot_grid(
        data.images[:shown],
        {name: explanation[:shown] for name, explanation in explanations.items()},
        gallery,
        class_names=CLASS_NAMES,
        image_titles=titles,
    )
    print(
        f"Explained {len(data)} synthetic images (seed {args.seed}) of the bundled "
        f"{model.name} model. Pointing game: share of maps whose peak lies on the "
        "object; energy: share of the map's mass on it; Deletion AUC (lower is "
        f"better) and Insertion AUC (higher is better) over {args.steps} steps."
    )
    width = max(12, *(len(name) for name in names))
    print(
        f"{'method':<{width}} {'ms/image':>9} {'pointing game':>14} {'energy':>7} "
        f"{'deletion':>9} {'insertion':>10}"
    )
    for name, milliseconds, scores in rows:
        print(
            f"{name:<{width}} {milliseconds:>9.2f} {scores['pointing_game']:>14.0%} "
            f"{scores['energy_pointing_game']:>7.2f} {scores['deletion']:>9.3f} "
            f"{scores['insertion']:>10.3f}"
        )
    print(f"Gallery: {gallery} (titles: method, explained class, its logit)")
    return 0
