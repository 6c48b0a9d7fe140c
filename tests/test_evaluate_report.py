"""`ke.metrics.evaluate(...)` as a report, and `keras-explainable evaluate`.

The report's numbers are compared with the metrics computed directly in the
test; resuming is checked by interrupting a run (a metric that raises after
its first cell) and counting what the second run recomputes; the page is
opened in a real headless browser where Chromium and its driver are found.
"""

from __future__ import annotations

import csv
import html.parser
import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_explainable as ke
from conftest import make_body_head
from keras_explainable import cli, demo


@pytest.fixture(scope="module")
def model():
    return make_body_head(seed=3)[2]


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(5).uniform(0, 1, (5, 8, 8, 3)).astype("float32")


def small_metrics():
    return {
        "deletion": ke.metrics.Deletion(steps=4, verbose=0),
        "sparseness": ke.metrics.Sparseness(verbose=0),
        "complexity": ke.metrics.Complexity(verbose=0),
    }


class Page(html.parser.HTMLParser):
    """The table cells (`data-*` attributes) and every referenced path of a page."""

    def __init__(self, text):
        super().__init__()
        self.links, self.cells, self.images, self.row = [], {}, [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs:
                self.links.append(attrs[key])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "tr" and "data-method" in attrs:
            self.row = attrs["data-method"]
        if tag == "td" and self.row is not None and "data-value" in attrs:
            best = "best" in attrs.get("class", "")
            self.cells[self.row, attrs["data-metric"]] = (float(attrs["data-value"]), best)


def check_links(index: Path) -> Page:
    page = Page(index.read_text(encoding="utf-8"))
    assert page.images
    for link in page.links:
        assert "://" not in link and not link.startswith(("/", "data:")), link
        assert (index.parent / link).is_file(), link
    return page


def direct_means(explainers, x, y, metrics, masks=None):
    """Each (method, metric) mean computed here, metric by metric."""
    means = {}
    for name, explainer in explainers.items():
        explanation = explainer.explain(x, y)
        for column, metric in metrics.items():
            if metric.needs_masks:
                result = metric(explanation, masks=masks)
            elif metric.needs_model:
                result = metric(explanation, x, model=explainer.model)
            else:
                result = metric(explanation)
            means[name, column] = result.mean
    return means


# ------------------------------------------------------------------ library
def test_evaluation_is_the_rows_and_writes_a_report(model, x, tmp_path):
    explainers = {
        "gradcam": ke.GradCAM(model, verbose=0),
        "saliency": ke.Saliency(model, verbose=0),
    }
    metrics = small_metrics()
    evaluation = ke.metrics.evaluate(explainers, x, metrics=metrics, gallery=2)
    expected = direct_means(explainers, x, None, metrics)

    # Still the rows evaluate always returned.
    assert isinstance(evaluation, list)
    assert [list(row) for row in evaluation] == [
        ["method", "deletion", "sparseness", "complexity"]
    ] * 2
    for row in evaluation:
        for column in metrics:
            assert row[column] == pytest.approx(expected[row["method"], column], rel=1e-6)
    assert ke.metrics.format_table(evaluation).splitlines()[0].split()[0] == "method"

    index = evaluation.to_html(tmp_path / "report" / "index.html")
    page = check_links(index)
    # 2 inputs + 2 x 2 maps + one figure per metric with curves (deletion).
    assert len(page.images) == 2 + 4 + 1
    for (method, column), (value, best) in page.cells.items():
        assert value == pytest.approx(expected[method, column], rel=1e-6)
        column_means = [expected[m, column] for m in explainers]
        winner = (max if metrics[column].higher_is_better else min)(column_means)
        assert best == (expected[method, column] == pytest.approx(winner, rel=1e-9))
    assert len(page.cells) == 6

    # The CSV: every digit of each mean; the interval from a bootstrap written here.
    evaluation.to_csv(tmp_path / "results.csv")
    with open(tmp_path / "results.csv", newline="") as file:
        records = list(csv.DictReader(file))
    assert len(records) == 6
    for record in records:
        values = evaluation.results[record["method"]][record["metric"]].values
        assert float(record["mean"]) == expected[record["method"], record["metric"]]
        draws = np.random.default_rng(0).integers(0, len(values), (1000, len(values)))
        low, high = np.percentile(values[draws].mean(axis=1), [2.5, 97.5])
        assert float(record["ci_low"]) == pytest.approx(low)
        assert float(record["ci_high"]) == pytest.approx(high)
        assert record["higher_is_better"] == str(metrics[record["metric"]].higher_is_better)

    evaluation.to_npz(tmp_path / "values.npz")
    with np.load(tmp_path / "values.npz") as stored:
        assert sorted(stored.files) == sorted(f"{m}/{c}" for m in explainers for c in metrics)
        direct = metrics["sparseness"](explainers["saliency"].explain(x)).values
        np.testing.assert_allclose(stored["saliency/sparseness"], direct, rtol=1e-6)


def test_ranking_and_intervals_by_hand(tmp_path):
    def result(values):
        return ke.metrics.MetricResult("m", np.asarray(values, np.float64))

    evaluation = ke.metrics.Evaluation(
        [{"method": "a"}, {"method": "b"}, {"method": "c"}],
        results={
            "a": {"up": result([0.2, 0.4]), "down": result([0.9, 0.9]), "any": result([1, 1])},
            "b": {"up": result([0.9, 0.7]), "down": result([0.1, np.nan]), "any": result([0, 0])},
            "c": {"up": result([0.9, 0.7]), "down": result([0.5, 0.5]), "any": result([2, 2])},
        },
        seconds={"a": 0.1, "b": 0.2, "c": 0.3},
        higher_is_better={"up": True, "down": False, "any": None},
    )
    # up: b and c tie for first; down: b (0.1, its NaN left out), c, a.
    assert evaluation.column_ranks() == {
        "up": {"a": 3, "b": 1, "c": 1},
        "down": {"a": 3, "b": 1, "c": 2},
        "any": {},
    }
    assert evaluation.ranking() == ["b", "c", "a"]
    assert [row["method"] for row in evaluation.summary()[::3]] == ["b", "c", "a"]
    assert ke.metrics.bootstrap_interval(np.array([0.3, 0.3, np.nan])) == (0.3, 0.3)
    assert all(math.isnan(v) for v in ke.metrics.bootstrap_interval(np.array([np.nan])))
    low, high = ke.metrics.bootstrap_interval(np.array([0.0, 1.0]))
    assert 0.0 <= low < 0.5 < high <= 1.0

    # Curves are drawn for curve results (Deletion/Insertion, ROAD), not the others.
    evaluation.results["a"]["up"] = ke.metrics.CurveResult(
        "Insertion", np.array([0.2, 0.4]), curves=np.ones((2, 3)), fractions=np.linspace(0, 1, 3)
    )
    evaluation.results["b"]["down"] = ke.metrics.RoadResult(
        "ROAD",
        np.array([0.1, np.nan]),
        percentages=np.array([10.0, 50.0]),
        morf=np.ones((2, 2)),
        lerf=None,
    )
    page = check_links(evaluation.to_html(tmp_path / "report.html"))
    assert page.images == ["report_files/curve_0.png", "report_files/curve_1.png"]
    assert [row for row, _ in page.cells][::3] == ["b", "c", "a"]


class Flaky(ke.metrics.Sparseness):
    """Sparseness that raises once `calls` reaches `fail_at` (a run killed part-way)."""

    calls = 0
    fail_at = None


def _flaky_call(self, *args, **kwargs):
    Flaky.calls += 1
    if Flaky.fail_at is not None and Flaky.calls >= Flaky.fail_at:
        raise RuntimeError("killed")
    return ke.metrics.Sparseness.__call__(self, *args, **kwargs)


Flaky.__call__ = _flaky_call


def test_a_stopped_run_resumes_from_its_finished_cells(model, x, tmp_path, monkeypatch):
    cache = tmp_path / "cells"
    explained = []
    original = ke.Saliency.explain
    monkeypatch.setattr(
        ke.Saliency, "explain", lambda self, *a, **k: explained.append(1) or original(self, *a, **k)
    )

    # Built once: a rerun of the same command builds equal ones (same settings).
    explainers = {"gradcam": ke.GradCAM(model, verbose=0), "saliency": ke.Saliency(model)}
    metrics = {"flaky": Flaky(verbose=0), "deletion": ke.metrics.Deletion(steps=4, verbose=0)}

    def run():
        return ke.metrics.evaluate(explainers, x, 1, metrics=metrics, cache=cache)

    # Killed at saliency's first cell: gradcam's two cells are finished.
    Flaky.calls, Flaky.fail_at = 0, 2
    with pytest.raises(RuntimeError, match="killed"):
        run()
    finished = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("metric-*.npz"))
    assert finished == ["gradcam/metric-deletion.npz", "gradcam/metric-flaky.npz"]
    assert not list(cache.rglob("*.tmp"))
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.rglob("*.npz")}

    Flaky.calls, Flaky.fail_at = 0, None
    explained.clear()
    evaluation = run()
    assert Flaky.calls == 1  # saliency's flaky cell only
    assert len(explained) == 1  # saliency explained again; gradcam not at all
    for path, stamp in before.items():
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp, path
    gradcam = ke.GradCAM(model, verbose=0).explain(x, 1)
    fresh_curve = metrics["deletion"](gradcam, x, model=model)
    curve = evaluation.results["gradcam"]["deletion"]  # read back from its file
    assert isinstance(curve, ke.metrics.CurveResult)
    np.testing.assert_allclose(curve.values, fresh_curve.values, rtol=1e-6)
    np.testing.assert_allclose(curve.curves, fresh_curve.curves, rtol=1e-6)
    fresh_sparseness = ke.metrics.Sparseness()(original(explainers["saliency"], x, 1))
    np.testing.assert_allclose(
        evaluation.results["saliency"]["flaky"].values, fresh_sparseness.values, rtol=1e-6
    )

    # Other data: nothing is reused.
    Flaky.calls = 0
    run_other = ke.metrics.evaluate(
        {"gradcam": explainers["gradcam"]}, x[:3], 1, metrics={"flaky": Flaky()}, cache=cache
    )
    assert Flaky.calls == 1
    assert len(run_other.results["gradcam"]["flaky"]) == 3

    # Other settings of a method: its cells are computed again.
    Flaky.calls = 0
    ke.metrics.evaluate(
        {"saliency": ke.Saliency(model, absolute=False)},
        x,
        1,
        metrics={"flaky": Flaky()},
        cache=cache,
    )
    assert Flaky.calls == 1


def test_evaluate_rejects_bad_options(model, x):
    explainers = {"saliency": ke.Saliency(model)}
    import tensorflow as tf

    with pytest.raises(TypeError, match="cache= identifies the data"):
        ke.metrics.evaluate(explainers, tf.data.Dataset.from_tensor_slices(x), cache="c")
    with pytest.raises(ValueError, match="gallery must be an integer >= 0"):
        ke.metrics.evaluate(explainers, x, gallery=-1)
    with pytest.raises(ValueError, match="verbose must be"):
        ke.metrics.evaluate(explainers, x, verbose="loud")


# ------------------------------------------------------------- command line
def test_cli_evaluate_demo_matches_the_library(tmp_path, capsys):
    out = tmp_path / "report"
    args = ["evaluate", "--demo", "--images", "3", "--methods", "gradcam", "saliency"]
    args += ["--metrics", "deletion", "pointing_game", "--steps", "4", "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "method" in printed and "ms/image" in printed and "index.html" in printed

    data, model = demo.make_shapes(3, seed=2024), demo.load_demo_model()
    explainers = {"gradcam": ke.GradCAM(model, verbose=0), "saliency": ke.Saliency(model)}
    metrics = {
        "deletion": ke.metrics.Deletion(steps=4, verbose=0),
        "pointing_game": ke.metrics.PointingGame(verbose=0),
    }
    expected = ke.metrics.evaluate(
        explainers, data.images, data.labels, masks=data.masks, metrics=metrics
    )
    page = check_links(out / "index.html")
    assert len(page.cells) == 4
    for row in expected:
        for column in metrics:
            value, _ = page.cells[row["method"], column]
            assert value == pytest.approx(row[column], rel=1e-6)
    assert (out / "results.csv").is_file() and (out / "values.npz").is_file()


def test_cli_evaluate_saved_model_npy_and_resume(model, x, tmp_path, capsys, monkeypatch):
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "report"
    args = ["evaluate", str(tmp_path / "m.keras"), str(tmp_path / "x.npy"), "--out", str(out)]
    args += ["--methods", "gradcam", "inputxgradient", "--metrics", "deletion", "sparseness"]
    args += ["--steps", "4", "--gallery", "2"]
    assert cli.main(args) == 0
    loaded = keras.models.load_model(tmp_path / "m.keras")
    explainers = {"gradcam": ke.GradCAM(loaded), "inputxgradient": ke.InputXGradient(loaded)}
    expected = direct_means(
        explainers,
        x,
        None,
        {"deletion": ke.metrics.Deletion(steps=4), "sparseness": ke.metrics.Sparseness()},
    )
    page = check_links(out / "index.html")
    assert {key: value for key, (value, _) in page.cells.items()} == pytest.approx(expected)
    with open(out / "results.csv", newline="") as file:
        for record in csv.DictReader(file):
            assert float(record["mean"]) == pytest.approx(
                expected[record["method"], record["metric"]]
            )

    # A second run reuses every cell: nothing is scored or rewritten.
    cells = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "cells").rglob("*.npz")}
    assert len(cells) == 2 * 3
    scored = []
    monkeypatch.setattr(ke.metrics.Metric, "__call__", lambda *a, **k: scored.append(a))
    capsys.readouterr()
    assert cli.main(args) == 0
    assert scored == []
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cells} == cells
    assert "gradcam" in capsys.readouterr().out
    check_links(out / "index.html")


def test_cli_evaluate_killed_run_loses_nothing_finished(model, x, tmp_path, capsys):
    """A run killed (SIGKILL) after its first cells keeps them, and the rerun reuses them."""
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "report"
    args = ["evaluate", str(tmp_path / "m.keras"), str(tmp_path / "x.npy"), "--out", str(out)]
    # Grad-CAM's cells come first; KernelSHAP's 500 samples keep the run busy after them.
    args += ["--methods", "gradcam", "kernelshap", "--metrics", "sparseness", "complexity"]
    run = subprocess.Popen(
        [sys.executable, "-m", "keras_explainable", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not list((out / "cells").rglob("*.npz")):
            assert run.poll() is None, "the run ended before writing a cell"
            assert time.monotonic() < deadline, "no cell written in 240 s"
            time.sleep(0.02)
        run.send_signal(signal.SIGKILL)
    finally:
        run.wait()
    finished = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "cells").rglob("*.npz")}
    # Per method: its explanation and one cell per metric.
    assert 1 <= len(finished) < 2 * 3, "the kill came after every cell was written"

    assert cli.main(args) == 0
    capsys.readouterr()
    # The finished cells were read back, not rewritten; the rest were scored.
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished} == finished
    assert len(list((out / "cells").rglob("*.npz"))) == 2 * 3
    loaded = keras.models.load_model(tmp_path / "m.keras")
    expected = direct_means(
        {"gradcam": ke.GradCAM(loaded)},
        x,
        None,
        {"sparseness": ke.metrics.Sparseness(), "complexity": ke.metrics.Complexity()},
    )
    cells = {key: value for key, (value, _) in check_links(out / "index.html").cells.items()}
    assert set(cells) == {
        (m, k) for m in ("gradcam", "kernelshap") for k in ("sparseness", "complexity")
    }
    assert {key: cells[key] for key in expected} == pytest.approx(expected)
    assert all(math.isfinite(value) for value in cells.values())


def test_cli_evaluate_image_folder_with_class_folders(model, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    for index, image in enumerate(pixels):
        folder = tmp_path / "data" / ("a_first" if index < 2 else "b_second")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index}.png")
    model.save(tmp_path / "m.keras")
    out = tmp_path / "report"
    args = ["evaluate", str(tmp_path / "m.keras"), str(tmp_path / "data"), "--out", str(out)]
    assert cli.main([*args, "--methods", "saliency", "--metrics", "deletion", "--steps", "3"]) == 0
    labels = np.array([0, 0, 1, 1])  # the sub-folders, sorted by name
    expected = ke.metrics.Deletion(steps=3)(ke.Saliency(model), pixels.astype("float32"), labels)
    with np.load(out / "values.npz") as stored:
        np.testing.assert_allclose(stored["saliency/deletion"], expected.values, rtol=1e-6)


def test_cli_evaluate_errors_before_work(model, x, tmp_path, capsys):
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "masks.npy", np.ones((5, 4, 4), bool))
    base = ["evaluate", str(tmp_path / "m.keras"), str(tmp_path / "x.npy")]
    cases = [
        (base + ["--metrics", "delection"], "unknown metric 'delection'"),
        (base + ["--metrics", "pointing_game"], "pointing_game compares maps with ground truth"),
        (base + ["--masks", str(tmp_path / "masks.npy")], "the masks have shape (5, 4, 4)"),
        (["evaluate", "--demo", str(tmp_path / "m.keras")], "--demo uses the bundled model"),
        (["evaluate", str(tmp_path / "m.keras")], "give MODEL and DATA"),
        (["evaluate", str(tmp_path / "m.keras"), str(tmp_path / "m.keras")], "unsupported data"),
        (base + ["--methods", "gradcan"], "unknown method 'gradcan'"),
        (base + ["--preprocess", "tf"], "--preprocess applies to a folder of images"),
    ]
    for args, message in cases:
        assert cli.main(args) == 1
        assert message in capsys.readouterr().err


def test_image_folder_labels_from_subfolders(tmp_path):
    from PIL import Image

    from keras_explainable.cli.io import read_image_folder

    rng = np.random.default_rng(0)
    for label, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        for index in range(label + 1):
            pixels = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{index}.png")
    images, labels, names = read_image_folder(tmp_path, 4, 4, 3)
    assert images.shape == (3, 4, 4, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 1, 1] and names == ["cat", "dog"]
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / "loose.png")
    with pytest.raises(cli.CommandError, match="both images and sub-folders"):
        read_image_folder(tmp_path, 4, 4, 3)


# ------------------------------------------------------------------ browser
def _browser():
    """A headless Chromium driven by Selenium, or the reason there is none."""
    try:
        from selenium import webdriver
    except ImportError:
        return None, "selenium is not installed (pip install '.[test]')"
    binary = next(
        (
            shutil.which(n)
            for n in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(n)
        ),
        None,
    )
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        return None, "no Chromium and chromedriver found (apt-get install chromium chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1200,1600")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=driver)
    try:
        return webdriver.Chrome(options=options, service=service), None
    except Exception as error:  # noqa: BLE001 - any failure to start the browser
        return None, f"Chromium did not start: {str(error).splitlines()[0]}"


def test_report_opens_in_a_headless_browser(model, x, tmp_path):
    browser, reason = _browser()
    if browser is None:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    explainers = {
        "gradcam": ke.GradCAM(model, verbose=0),
        "saliency": ke.Saliency(model, verbose=0),
    }
    metrics = {"deletion": ke.metrics.Deletion(steps=4, verbose=0)}
    evaluation = ke.metrics.evaluate(explainers, x, metrics=metrics, gallery=2)
    index = evaluation.to_html(tmp_path / "index.html")
    try:
        browser.get(index.as_uri())
        table = browser.find_element("id", "results")
        assert table.is_displayed()
        assert len(table.find_elements("css selector", "tbody tr")) == 2
        widths = browser.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0);"
        )
        assert len(widths) == 7 and all(w > 0 for w in widths), widths
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
    finally:
        browser.quit()
