"""Make the documentation's pictures and tables from the bundled demo model.

Run from the repository root (about two minutes on two CPU cores):

    python docs/scripts/make_pictures.py
    python docs/scripts/make_pictures.py --methods Occlusion RISE   # those pictures only

Everything is computed from `keras_explainable.demo`: the bundled shapes
classifier and generated images, so nothing is downloaded or drawn by hand,
and a rerun rewrites the same files. Pictures are PNGs at the model's 64 x 64
resolution scaled up 2x with square pixels, in a 64-colour palette to keep
them small (about 300 KiB in all). Writes:

- `docs/images/*.png`: the pictures the pages show;
- `docs/images/evaluate-report.png`: a screenshot of `keras-explainable
  evaluate --demo`'s report, where Selenium and Chromium are installed;
- `docs/snippets/evaluate-table.md`: the metrics table of "Evaluating
  explanations", included by that page.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

import keras_explainable as ke  # noqa: E402
from keras_explainable import demo  # noqa: E402
from keras_explainable.plot import overlay  # noqa: E402

DOCS = Path(__file__).resolve().parents[1]
#: The images every picture shows: one main object of each class, and image 3
#: has a circle, a triangle and a cross (used for several targets).
SEED = 18
SCALE = 2
GAP = 4
WHITE = 255
#: The methods of the home page's overview picture (all of them would not fit).
OVERVIEW = ("Saliency", "CAM", "Grad-CAM", "Grad-CAM++", "Score-CAM", "FullGrad")


# ------------------------------------------------------------------ drawing
def _upscale(tile: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(tile, SCALE, axis=0), SCALE, axis=1)


def _as_uint8(images: np.ndarray) -> np.ndarray:
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


def _label(text: str, width: int, height: int = 18) -> np.ndarray:
    """A white tile of `width` pixels with `text` centred in black."""
    canvas = Image.new("RGB", (width, height), (WHITE,) * 3)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    position = (
        (width - (right - left)) / 2 - left,
        (height - (bottom - top)) / 2 - top,
    )
    draw.text(position, text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def _grid(rows: list[list[np.ndarray]], header: list[str] | None = None) -> np.ndarray:
    """Lay out equally sized tiles in rows, with an optional header row of text."""
    tiles = [[_upscale(tile) for tile in row] for row in rows]
    height, width = tiles[0][0].shape[:2]
    columns = max(len(row) for row in tiles)
    lines = []
    if header is not None:
        lines.append([_label(text, width) for text in header])
    lines.extend(tiles)
    line_heights = [line[0].shape[0] for line in lines]
    canvas = np.full(
        (
            sum(line_heights) + GAP * (len(lines) - 1),
            columns * width + GAP * (columns - 1),
            3,
        ),
        WHITE,
        np.uint8,
    )
    top = 0
    for line, line_height in zip(lines, line_heights, strict=True):
        for column, tile in enumerate(line):
            left = column * (width + GAP)
            canvas[top : top + line_height, left : left + width] = tile
        top += line_height + GAP
    return canvas


def _save(canvas: np.ndarray, name: str) -> None:
    path = DOCS / "images" / name
    image = Image.fromarray(canvas).quantize(
        colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    image.save(path, format="PNG", optimize=True)
    print(f"wrote {path.relative_to(DOCS.parent)} ({path.stat().st_size / 1024:.0f} KiB)")


def _overlays(images: np.ndarray, explanation: ke.Explanation, target: int = 0) -> list:
    return list(overlay(images, explanation.maps, target=target, alpha=0.5))


# ----------------------------------------------------------------- pictures
def methods() -> dict[str, ke.Explainer]:
    """Every method, as the Methods page shows them, by display name."""
    model = demo.load_demo_model()
    # GradientSHAP's background: other images of the same data, as the page's example.
    background = demo.make_shapes(16, seed=5).images
    return {
        "Saliency": ke.Saliency(model, verbose=0),
        "CAM": ke.CAM(model, verbose=0),
        "Grad-CAM": ke.GradCAM(model, verbose=0),
        "Grad-CAM++": ke.GradCAMPlusPlus(model, verbose=0),
        "Score-CAM": ke.ScoreCAM(model, verbose=0),
        "FullGrad": ke.FullGradient(model, verbose=0),
        "Guided Backprop": ke.GuidedBackprop(model, verbose=0),
        "Deconvnet": ke.Deconvnet(model, verbose=0),
        "Guided Grad-CAM": ke.GuidedGradCAM(model, verbose=0),
        "XGrad-CAM": ke.XGradCAM(model, verbose=0),
        "HiResCAM": ke.HiResCAM(model, verbose=0),
        "LayerCAM": ke.LayerCAM(model, verbose=0),
        "Eigen-CAM": ke.EigenCAM(model, verbose=0),
        "Eigen-Grad-CAM": ke.EigenGradCAM(model, verbose=0),
        "Ablation-CAM": ke.AblationCAM(model, verbose=0),
        "Input × Gradient": ke.InputXGradient(model, verbose=0),
        "LRP": ke.LRP(model, composite="epsilon_plus_flat", verbose=0),
        "Integrated Gradients": ke.IntegratedGradients(model, verbose=0),
        "GradientSHAP": ke.GradientSHAP(model, background, verbose=0),
        "DeepLIFT": ke.DeepLIFT(model, verbose=0),
        "DeepSHAP": ke.DeepSHAP(model, background, verbose=0),
        "KernelSHAP": ke.KernelSHAP(model, samples=500, verbose=0),
        "LIME": ke.LIME(model, samples=500, verbose=0),
        "Occlusion": ke.Occlusion(model, window=8, stride=4, verbose=0),
        "RISE": ke.RISE(model, masks=2000, verbose=0),
    }


def method_pictures(data: demo.Shapes, only: list[str] | None = None) -> None:
    """Each method's picture (only those named in `only`, and then nothing else)."""
    images = data.images
    shown = _as_uint8(images)
    explanations = {
        name: m.explain(images, data.labels)
        for name, m in methods().items()
        if only is None or name in only
    }
    files = {
        "Saliency": "method-saliency.png",
        "CAM": "method-cam.png",
        "Grad-CAM": "method-gradcam.png",
        "Grad-CAM++": "method-gradcam-plus-plus.png",
        "Score-CAM": "method-scorecam.png",
        "FullGrad": "method-fullgradient.png",
        "Guided Backprop": "method-guided-backprop.png",
        "Deconvnet": "method-deconvnet.png",
        "Guided Grad-CAM": "method-guided-gradcam.png",
        "XGrad-CAM": "method-xgradcam.png",
        "HiResCAM": "method-hirescam.png",
        "LayerCAM": "method-layercam.png",
        "Eigen-CAM": "method-eigencam.png",
        "Eigen-Grad-CAM": "method-eigengradcam.png",
        "Ablation-CAM": "method-ablationcam.png",
        "Input × Gradient": "method-input-x-gradient.png",
        "LRP": "method-lrp.png",
        "Integrated Gradients": "method-integrated-gradients.png",
        "GradientSHAP": "method-gradient-shap.png",
        "DeepLIFT": "method-deeplift.png",
        "DeepSHAP": "method-deepshap.png",
        "KernelSHAP": "method-kernel-shap.png",
        "LIME": "method-lime.png",
        "Occlusion": "method-occlusion.png",
        "RISE": "method-rise.png",
    }
    for name, file in files.items():
        if name in explanations:
            _save(_grid([list(shown), _overlays(images, explanations[name])]), file)
    if only is not None:
        return
    # Home page: rows are images, columns the input and the OVERVIEW methods.
    columns = [list(shown)] + [_overlays(images, explanations[name]) for name in OVERVIEW]
    rows = [list(row) for row in zip(*columns, strict=True)]
    _save(_grid(rows, header=["input", *OVERVIEW]), "overview.png")
    # Getting started: Grad-CAM of the top class, as its code computes it.
    gradcam = ke.GradCAM(demo.load_demo_model(), verbose=0).explain(images)
    _save(_grid([list(shown), _overlays(images, gradcam)]), "getting-started.png")


def target_picture(data: demo.Shapes) -> None:
    """One image with three objects, explained for each of the four classes."""
    image = data.images[3:4]
    expl = ke.GradCAM(demo.load_demo_model(), verbose=0).explain(image, [[0, 1, 2, 3]])
    tiles = [_as_uint8(image[0])] + [_overlays(image, expl, t)[0] for t in range(4)]
    _save(_grid([tiles], header=["input", *demo.CLASS_NAMES]), "targets.png")


def layer_picture(data: demo.Shapes) -> None:
    model = demo.load_demo_model()
    layers = ["conv2", "conv3", "conv4"]
    columns = [list(_as_uint8(data.images))] + [
        _overlays(
            data.images,
            ke.GradCAM(model, layer=layer, verbose=0).explain(data.images, data.labels),
        )
        for layer in layers
    ]
    rows = [list(row) for row in zip(*columns, strict=True)]
    _save(_grid(rows, header=["input", *layers]), "layers.png")


def composing_pictures(data: demo.Shapes) -> None:
    model = demo.load_demo_model()
    images, labels = data.images, data.labels
    saliency = ke.Saliency(model, verbose=0)
    smooth = ke.SmoothGrad(saliency, samples=50, noise=0.15)
    squared = ke.SmoothGrad(saliency, samples=50, noise=0.15, variant="squared")
    rows = [
        list(_as_uint8(images)),
        _overlays(images, saliency.explain(images, labels)),
        _overlays(images, smooth.explain(images, labels)),
        _overlays(images, squared.explain(images, labels)),
    ]
    _save(_grid(rows), "smoothgrad.png")
    gradcam = ke.GradCAM(model, layer="conv3", verbose=0)
    tta = ke.TTA(gradcam, flips=("horizontal", "vertical"))
    rows = [
        list(_as_uint8(images)),
        _overlays(images, gradcam.explain(images, labels)),
        _overlays(images, tta.explain(images, labels)),
    ]
    _save(_grid(rows), "tta.png")


# ------------------------------------------------------------------ metrics
def evaluate_table(count: int) -> None:
    """The table of 'Evaluating explanations': every method, every metric."""
    data = demo.make_shapes(count, seed=1)
    explainers = methods()
    explainers["SmoothGrad"] = ke.SmoothGrad(explainers["Saliency"], samples=16)
    metrics = {
        "deletion ↓": ke.metrics.Deletion(steps=50, verbose=0),
        # The demo's classes differ by colour, which a blur keeps: insert
        # from black instead of the default blurred image.
        "insertion ↑": ke.metrics.Insertion(steps=50, baseline="zeros", verbose=0),
        "average drop % ↓": ke.metrics.AverageDrop(verbose=0),
        "increase in confidence % ↑": ke.metrics.IncreaseInConfidence(verbose=0),
        "pointing game ↑": ke.metrics.PointingGame(verbose=0),
        "energy pointing game ↑": ke.metrics.EnergyPointingGame(verbose=0),
    }
    rows = ke.metrics.evaluate(
        explainers, data.images, data.labels, masks=data.masks, metrics=metrics
    )
    lines = [
        "| method | " + " | ".join(metrics) + " |",
        "|---|" + "---:|" * len(metrics),
    ]
    for row in rows:
        cells = [f"{row[name]:.3f}" if "%" not in name else f"{row[name]:.1f}" for name in metrics]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    path = DOCS / "snippets" / "evaluate-table.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        f"<!-- Written by docs/scripts/make_pictures.py: {count} images of "
        "demo.make_shapes(seed=1), the bundled model, each method's default "
        "options (SmoothGrad: 16 samples), 50 curve steps, insertion from black. -->\n"
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {path.relative_to(DOCS.parent)}")


def curve_picture(count: int) -> None:
    """Mean deletion and insertion curves of three methods."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = demo.make_shapes(count, seed=1)
    chosen = {
        name: m for name, m in methods().items() if name in ("Saliency", "Grad-CAM", "Score-CAM")
    }
    figure = Figure(figsize=(6.4, 2.4))
    canvas = FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for axis, metric, title in (
        (
            axes[0],
            ke.metrics.Deletion(steps=50, verbose=0),
            "Deletion (lower is better)",
        ),
        (
            axes[1],
            ke.metrics.Insertion(steps=50, baseline="zeros", verbose=0),
            "Insertion from black (higher is better)",
        ),
    ):
        for name, explainer in chosen.items():
            result = metric(explainer, data.images, data.labels)
            axis.plot(
                result.fractions,
                result.curves.mean(axis=0),
                label=f"{name} ({result.mean:.2f})",
            )
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("fraction of pixels", fontsize=8)
        axis.set_ylabel("probability", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.legend(fontsize=7)
    figure.tight_layout(pad=0.4)
    canvas.draw()
    _save(np.asarray(canvas.buffer_rgba())[..., :3].copy(), "curves.png")


def report_picture() -> None:
    """A screenshot of `keras-explainable evaluate --demo`'s HTML report.

    Taken with a headless Chromium driven by Selenium (Debian: `apt-get
    install chromium chromium-driver`; `pip install selenium`); skipped,
    with a note, where there is none.
    """
    import shutil
    import tempfile

    from keras_explainable import cli

    try:
        from selenium import webdriver
    except ImportError:
        print("report picture skipped: selenium is not installed")
        return
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        print("report picture skipped: no chromium and chromedriver")
        return
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "report"
        methods = ["gradcam", "gradcam++", "saliency", "ig"]
        metrics = ["deletion", "insertion", "pointing_game", "symmetric_relevance_gain"]
        arguments = ["evaluate", "--demo", "--images", "32", "--steps", "20", "--gallery", "3"]
        cli.main([*arguments, "--methods", *methods, "--metrics", *metrics, "--out", str(out)])
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,1500"):
            options.add_argument(flag)
        service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
        browser = webdriver.Chrome(options=options, service=service)
        try:
            browser.get((out / "index.html").as_uri())
            shot = Path(folder) / "shot.png"
            browser.save_screenshot(str(shot))
        finally:
            browser.quit()
        with Image.open(shot) as image:
            pixels = np.asarray(image.convert("RGB"))
    _save(pixels, "evaluate-report.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=64, help="images scored for the metrics")
    parser.add_argument(
        "--methods",
        nargs="+",
        metavar="NAME",
        help="write only these methods' pictures (display names, e.g. RISE), nothing else",
    )
    parser.add_argument(
        "--report", action="store_true", help="write only the evaluate report's screenshot"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    (DOCS / "images").mkdir(exist_ok=True)
    data = demo.make_shapes(4, seed=SEED)
    if args.methods:
        method_pictures(data, args.methods)
        return
    if args.report:
        report_picture()
        return
    method_pictures(data)
    target_picture(data)
    layer_picture(data)
    composing_pictures(data)
    curve_picture(args.count)
    evaluate_table(args.count)
    report_picture()
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
