"""The command line, end to end: outputs, values, exit codes and error lines.

Successful runs go through a subprocess (the installed entry point, as a user
runs it: without the TF_CPP_MIN_LOG_LEVEL that conftest.py sets); each is
started once per module and shared by several tests. Error cases call `main()`
in-process, which takes the same path to stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import keras_explainable as ke
from keras_explainable import cli, demo
from keras_explainable.cli.quiet import filtered_stderr

ERROR = "keras-explainable: error: "
# TensorFlow's and absl's C++ log lines, which a user of the command must not see.
TENSORFLOW_LOG = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN|cuda|cpu_feature_guard")


def user_env(**variables):
    """The environment of a user's shell: no TF_CPP_MIN_LOG_LEVEL unless given."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, **variables}


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "keras_explainable", *map(str, args)],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_lines(stderr):
    return [line for line in stderr.splitlines() if "error" in line.lower()]


def save_png(array, path):
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def shapes(work):
    """Three demo images as 64 x 64 PNG files, and their ground truth."""
    data = demo.make_shapes(3, seed=77)
    pixels = np.rint(data.images * 255).astype(np.uint8)
    paths = [save_png(p, work / f"shape{i}.png") for i, p in enumerate(pixels)]
    return data, pixels, paths


@pytest.fixture(scope="module")
def small_model(work):
    """A 16 x 16 x 3 -> 3 classes CNN with fixed weights, saved as .keras."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="small")
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    path = work / "small.keras"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def user_images(work):
    """A 16 x 16 RGB PNG, a 20 x 30 RGB JPEG and a 24 x 24 grayscale PNG."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(work / "b.jpg")
    save_png(rng.integers(0, 256, (24, 24), dtype=np.uint8), work / "c.png")
    return rgb, [save_png(rgb, work / "a.png"), work / "b.jpg", work / "c.png"]


@pytest.fixture(scope="module")
def demo_run(work):
    out = work / "demo"
    result = run_cli("demo", "--out", out, "--images", 8, "--rows", 2, cwd=work)
    return result, out


@pytest.fixture(scope="module")
def bundled_run(work, shapes):
    _, _, paths = shapes
    model_path = Path(demo.__file__).with_name(demo.MODEL_FILE)
    out = work / "bundled"
    args = ["explain", model_path, *paths, "--preprocess", "scale01", "--out", out]
    return run_cli(*args, cwd=work), out


@pytest.fixture(scope="module")
def small_run(work, small_model, user_images):
    _, path = small_model
    out = work / "small"
    args = ["explain", path, *user_images[1], "--method", "cam", "--target", "0,2"]
    return run_cli(*args, "--preprocess", "scale01", "--out", out, cwd=work), out


@pytest.fixture(scope="module")
def corrupt_run(work, user_images):
    bad = work / "corrupt.h5"
    bad.write_bytes(b"\x89HDF garbage")
    return run_cli("explain", bad, user_images[1][0], "--out", work / "x", cwd=work)


def call(capsys, *args):
    """Run main() in-process; returns (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error(code, err, pattern):
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(ERROR)
    assert re.search(pattern, lines[0]), lines[0]


# ----------------------------------------------------------------- success
def test_demo_writes_gallery_and_scores_every_method(demo_run):
    result, out = demo_run
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    methods = list(cli.available_methods())
    assert {"cam", "gradcam", "saliency"} <= set(methods)
    number = r"\s+([\d.]+)"
    rows = re.findall(r"^(\S+)" + number + r"\s+(\d+)%" + number * 3 + "$", result.stdout, re.M)
    assert [row[0] for row in rows] == methods
    assert all(float(row[1]) > 0 for row in rows)
    table = {row[0]: [float(value) for value in row[2:]] for row in rows}
    # pointing game (%), energy, deletion and insertion, each in its range
    for hits, energy, deletion, insertion in table.values():
        assert 0 <= hits <= 100 and 0 <= energy <= 1 and 0 <= deletion <= 1 and 0 <= insertion <= 1
    assert table["gradcam"][0] >= 87.5 and table["cam"][0] >= 87.5
    # on this model Grad-CAM's deletion curve falls faster than plain saliency's
    assert table["gradcam"][2] < table["saliency"][2]
    with Image.open(out / "gallery.png") as gallery:
        assert gallery.format == "PNG"
        width, height = gallery.size
    assert width > height  # 2 rows, 1 + len(methods) columns


def test_demo_refuses_to_overwrite_a_gallery(capsys, work):
    out = work / "old-demo"
    out.mkdir()
    (out / "gallery.png").write_bytes(b"old")
    code, _, err = call(capsys, "demo", "--out", out, "--images", 2, "--methods", "cam")
    assert_one_error(code, err, r"gallery\.png' already exists; pass --overwrite")
    assert (out / "gallery.png").read_bytes() == b"old"


def test_explain_bundled_model(bundled_run, shapes):
    result, out = bundled_run
    assert result.returncode == 0, result.stderr
    data, _, paths = shapes
    for index, path in enumerate(paths):
        label = int(data.labels[index])
        line = next(x for x in result.stdout.splitlines() if x.startswith(str(path)))
        assert f"class {label} score" in line
        maps = np.load(out / f"shape{index}_gradcam.npy")
        assert maps.shape == (64, 64, 1) and maps.dtype == np.float32
        assert 0.0 <= maps.min() and maps.max() == pytest.approx(1.0)
        peak = np.unravel_index(maps[..., 0].argmax(), (64, 64))
        assert data.masks[index][peak]  # the map points at the object
        with Image.open(out / f"shape{index}_gradcam_class{label}.png") as png:
            assert png.size == (64, 64) and png.mode == "RGB"
    assert "at layer 'conv4'" in result.stdout


def test_explain_saved_model_values_targets_and_sizes(small_run, small_model, user_images):
    result, out = small_run
    assert result.returncode == 0, result.stderr
    model, _ = small_model
    rgb, _ = user_images
    for stem, size in (("a", (16, 16)), ("b", (30, 20)), ("c", (24, 24))):
        maps = np.load(out / f"{stem}_cam.npy")
        assert maps.shape == (16, 16, 2)  # the model's input size, two targets
        for unit in (0, 2):
            with Image.open(out / f"{stem}_cam_class{unit}.png") as png:
                assert png.size == size and png.mode == "RGB"  # the original size
    # a.png needs no resizing: its maps are the library's, on pixels / 255
    expected = ke.CAM(model, verbose=0).explain(rgb[None] / 255.0, [[0, 2]])
    np.testing.assert_allclose(np.load(out / "a_cam.npy"), expected.maps[0], atol=1e-5)
    line = next(x for x in result.stdout.splitlines() if "a.png" in x)
    assert f"class 0 score {expected.scores[0, 0]:.3f}" in line
    assert f"class 2 score {expected.scores[0, 1]:.3f}" in line


def test_existing_outputs_need_overwrite(capsys, work, small_model, user_images):
    _, model_path = small_model
    out = work / "again"
    args = ["explain", model_path, user_images[1][0], "--method", "cam", "--out", out]
    code, _, _ = call(capsys, *args, "--target", "0,1")
    assert code == 0 and np.load(out / "a_cam.npy").shape == (16, 16, 2)
    code, _, err = call(capsys, *args)
    assert_one_error(code, err, r"a_cam\.npy' .*already exists; pass --overwrite")
    assert np.load(out / "a_cam.npy").shape == (16, 16, 2)  # untouched
    code, text, _ = call(capsys, *args, "--overwrite", "--target", "2")
    assert code == 0 and "class 2 score" in text
    assert np.load(out / "a_cam.npy").shape == (16, 16, 1)


def test_perturbation_methods_take_their_main_option(capsys, work, small_model, user_images):
    model, model_path = small_model
    rgb, paths = user_images
    out = work / "perturbed"
    base = ["explain", model_path, paths[0], "--preprocess", "scale01", "--out", out]
    x = rgb[None] / 255.0
    code, _, _ = call(capsys, *base, "--method", "rise", "--masks", 30)
    assert code == 0
    expected = ke.RISE(model, masks=30, verbose=0).explain(x)
    np.testing.assert_allclose(np.load(out / "a_rise.npy"), expected.maps[0], atol=1e-5)
    code, _, _ = call(capsys, *base, "--method", "occlusion", "--window", 6)
    assert code == 0
    expected = ke.Occlusion(model, window=6, stride=3, verbose=0).explain(x)
    np.testing.assert_allclose(np.load(out / "a_occlusion.npy"), expected.maps[0], atol=1e-5)
    code, _, _ = call(capsys, *base, "--method", "lime", "--samples", 40, "--grid", 2, 3)
    assert code == 0
    expected = ke.LIME(model, samples=40, grid=(2, 3), verbose=0).explain(x)
    np.testing.assert_allclose(np.load(out / "a_lime.npy"), expected.maps[0], atol=1e-5)
    code, _, _ = call(capsys, *base, "--method", "kernelshap", "--samples", 40, "--superpixels", 6)
    assert code == 0
    expected = ke.KernelSHAP(model, samples=40, segments="slic", num_segments=6).explain(x)
    np.testing.assert_allclose(np.load(out / "a_kernelshap.npy"), expected.maps[0], atol=1e-5)
    code, _, err = call(
        capsys, *base, "--method", "lime", "--grid", 2, 2, "--superpixels", 6, "--overwrite"
    )
    assert_one_error(code, err, r"--grid and --superpixels are two ways to segment")
    code, _, err = call(capsys, *base, "--method", "gradcam", "--masks", 30, "--overwrite")
    assert_one_error(code, err, r"--masks is an option of rise, not of gradcam")
    code, _, err = call(capsys, *base, "--method", "rise", "--grid", 2, 2, "--overwrite")
    assert_one_error(code, err, r"--grid is an option of kernelshap and lime, not of rise")


def test_subprocess_error_is_one_line_without_traceback(corrupt_run, work):
    result = corrupt_run
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(error_lines(result.stderr)) == 1
    assert error_lines(result.stderr)[0].startswith(f"{ERROR}cannot load model")
    assert result.stderr.strip().splitlines()[-1].startswith(ERROR)
    assert not (work / "x").exists()


@pytest.mark.parametrize("run", ["demo_run", "bundled_run", "small_run", "corrupt_run"])
def test_subprocess_prints_no_tensorflow_log_lines(request, run):
    result = request.getfixturevalue(run)
    if isinstance(result, tuple):
        result, _ = result
    noise = [line for line in result.stderr.splitlines() if TENSORFLOW_LOG.search(line)]
    assert noise == [], result.stderr
    if run == "corrupt_run":  # only our own line
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith(f"{ERROR}cannot load model")


def test_user_log_level_is_left_alone(work):
    code = (
        "import contextlib, os\n"
        "from keras_explainable.cli import quiet\n"
        "filtered = []\n"
        "quiet.filtered_stderr = lambda: filtered.append(1) or contextlib.nullcontext()\n"
        "quiet.quiet_tensorflow()\n"
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], len(filtered))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=work,
        env=user_env(TF_CPP_MIN_LOG_LEVEL="0"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0"]  # unchanged, and stderr not filtered


def test_filtered_stderr_passes_on_all_but_tensorflow_lines(capfd):
    with filtered_stderr():
        os.write(
            2,
            b"WARNING: All log messages before absl::InitializeLog() is called are "
            b"written to STDERR\n"
            b"I0000 00:00:1795652411.972528 2732 port.cc:153] oneDNN custom operations\n"
            b"To enable the following instructions: AVX2 FMA, in other operations, "
            b"rebuild TensorFlow with the appropriate compiler flags.\n"
            b"2024-03-10 12:34:56.789012: I tensorflow/core/util/port.cc:113] oneDNN\n"
            b"a genuine message\n"
            b"E0000 00:00:1795652414.501487 2732 cuda_platform.cc:52] failed call to cuInit\n"
            b"another one, without a newline",
        )
    assert capfd.readouterr().err == "a genuine message\nanother one, without a newline"


# ------------------------------------------------------------------ errors
def test_missing_and_corrupt_models(capsys, work, user_images):
    image = user_images[1][0]
    out = work / "errors"
    code, _, err = call(capsys, "explain", work / "none.keras", image, "--out", out)
    assert_one_error(code, err, r"model not found: '.*none\.keras'")
    (work / "text.keras").write_text("not a zip")
    code, _, err = call(capsys, "explain", work / "text.keras", image, "--out", out)
    assert_one_error(code, err, r"not a valid \.keras file")
    with zipfile.ZipFile(work / "zip.keras", "w") as archive:
        archive.writestr("hello.txt", "not a model")
    code, _, err = call(capsys, "explain", work / "zip.keras", image, "--out", out)
    assert_one_error(code, err, r"cannot load model '.*zip\.keras'")
    code, _, err = call(capsys, "explain", image, image, "--out", out)
    assert_one_error(code, err, r"unsupported model format '\.png'")
    assert not out.exists()


def test_lambda_model_refused_unless_unsafe(capsys, work, user_images):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", name="features")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    image = user_images[1][0]
    for suffix in (".keras", ".h5"):
        path = work / f"lambda{suffix}"
        model.save(path)
        code, _, err = call(capsys, "explain", path, image, "--out", work / "lam")
        assert_one_error(code, err, r"refusing to load .*pass --unsafe")
    args = ["explain", work / "lambda.keras", image, "--out", work / "lam", "--unsafe"]
    code, out, _ = call(capsys, *args, "--layer", "features")
    assert code == 0 and "a.png: class" in out
    assert np.load(work / "lam" / "a_gradcam.npy").shape == (16, 16, 1)


def test_saved_model_needs_unsafe_and_an_input_method(capsys, work, small_model, user_images):
    model, _ = small_model
    path = work / "savedmodel"
    model.export(path, verbose=False)
    image = user_images[1][0]
    out = work / "sm"
    code, _, err = call(capsys, "explain", path, image, "--out", out)
    assert_one_error(code, err, r"is a TensorFlow SavedModel.*--unsafe")
    code, _, err = call(capsys, "explain", path, image, "--out", out, "--unsafe")
    assert_one_error(code, err, r"gradcam explains a hidden layer.*saliency")
    args = ["explain", path, image, "--out", out, "--unsafe", "--method", "saliency"]
    code, text, _ = call(capsys, *args)
    assert code == 0 and "class" in text
    assert np.load(out / "a_saliency.npy").shape == (16, 16, 1)


def test_bad_images(capsys, work, small_model, user_images):
    _, model_path = small_model
    good = user_images[1][0]
    (work / "fake.png").write_text("not an image")
    code, _, err = call(capsys, "explain", model_path, good, work / "fake.png")
    assert_one_error(code, err, r"cannot read image '.*fake\.png'")
    code, _, err = call(capsys, "explain", model_path, work / "missing.jpg")
    assert_one_error(code, err, r"image not found: '.*missing\.jpg'")
    other = work / "same"
    other.mkdir(exist_ok=True)
    twin = save_png(np.zeros((4, 4, 3), np.uint8), other / "a.png")
    code, _, err = call(capsys, "explain", model_path, good, twin)
    assert_one_error(code, err, r"same name")


def test_unknown_method_layer_and_bad_targets(capsys, work, small_model, user_images):
    _, model_path = small_model
    image = user_images[1][0]
    base = ["explain", model_path, image, "--out", work / "bad"]
    code, _, err = call(capsys, *base, "--method", "gradcm")
    assert_one_error(code, err, r"unknown method 'gradcm'.*Did you mean 'gradcam'")
    code, _, err = call(capsys, *base, "--layer", "featurs")
    assert_one_error(code, err, r"No layer named 'featurs'.*'features'")
    code, _, err = call(capsys, *base, "--method", "saliency", "--layer", "features")
    assert_one_error(code, err, r"takes no --layer")
    code, _, err = call(capsys, *base, "--target", "3")
    assert_one_error(code, err, r"Target index 3 is out of range.*3 units")
    code, _, err = call(capsys, *base, "--target", "1,x")
    assert_one_error(code, err, r"--target must be 'auto' or class indices")
    assert not (work / "bad").exists()


def test_output_folder_that_is_a_file(capsys, work, small_model, user_images):
    _, model_path = small_model
    image = user_images[1][0]
    code, _, err = call(capsys, "explain", model_path, image, "--out", image)
    assert_one_error(code, err, r"output folder '.*a\.png' exists and is a file")
    code, _, err = call(capsys, "demo", "--out", image)
    assert_one_error(code, err, r"exists and is a file")


def test_demo_unknown_method(capsys, work):
    code, _, err = call(capsys, "demo", "--methods", "cam", "nope", "--out", work / "d")
    assert_one_error(code, err, r"unknown method 'nope'; choose from: cam, gradcam")


def test_usage_errors_are_one_line_with_exit_2(capsys):
    code, _, err = call(capsys, "explain")
    assert code == 2
    assert err.strip().splitlines() == [
        f"{ERROR}the following arguments are required: MODEL, IMAGE "
        "(see 'keras-explainable explain --help')"
    ]
    code, _, err = call(capsys, "explain", "m.keras", "x.png", "--preprocess", "bad")
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, _, err = call(capsys, "demo", "--images", "0")
    assert code == 2 and "positive integer" in err


@pytest.mark.parametrize("command", [[], ["demo"], ["explain"]])
def test_help_shows_examples(capsys, command):
    code, out, _ = call(capsys, *command, "--help")
    assert code == 0
    assert "examples:\n  keras-explainable" in out


def test_preprocess_modes_by_hand():
    pixels = np.array([[[[0.0, 127.5, 255.0]]]], np.float32)
    np.testing.assert_array_equal(cli.preprocess(pixels, "none"), pixels)
    np.testing.assert_allclose(cli.preprocess(pixels, "scale01"), [[[[0, 0.5, 1]]]])
    np.testing.assert_allclose(cli.preprocess(pixels, "tf"), [[[[-1, 0, 1]]]])
    np.testing.assert_allclose(
        cli.preprocess(pixels, "torch"),
        [[[[(0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (1 - 0.406) / 0.225]]]],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        cli.preprocess(pixels, "caffe"),
        [[[[255 - 103.939, 127.5 - 116.779, 0 - 123.68]]]],
        rtol=1e-6,
    )
    with pytest.raises(cli.CommandError, match="RGB"):
        cli.preprocess(np.zeros((1, 2, 2, 1), np.float32), "caffe")


def test_training_script_is_reproducible(work):
    code = (
        "from keras_explainable.demo.train import train\n"
        "for name in ('t1.keras', 't2.keras'):\n"
        "    train(name, samples=32, epochs=1, validation_samples=8, verbose=0)\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    first = keras.models.load_model(work / "t1.keras", compile=False)
    second = keras.models.load_model(work / "t2.keras", compile=False)
    assert first.count_params() == demo.load_demo_model().count_params()
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- streaming
def test_explain_streams_a_folder_and_resumes(capsys, work, shapes):
    from keras_explainable import demo

    data, _, paths = shapes
    folder = work / "folder"
    folder.mkdir()
    for path in paths:
        (folder / Path(path).name).write_bytes(Path(path).read_bytes())
    out = work / "streamed"
    model_path = Path(demo.__file__).parent / "shapes_cnn.keras"
    args = [
        "explain",
        model_path,
        folder,
        "--method",
        "gradcam",
        "--target",
        "1",
        "--preprocess",
        "scale01",
        "--batch-size",
        2,
        "--out",
        out,
    ]
    code, stdout, _ = call(capsys, *args)
    assert code == 0, stdout
    result = out / "folder_gradcam"
    maps = np.load(result / "maps.npy", mmap_mode="r")
    names = (result / "names.txt").read_text().split()
    assert names == sorted(Path(p).name for p in paths)
    assert maps.shape == (len(paths), 64, 64, 1)
    np.testing.assert_array_equal(np.load(result / "targets.npy"), 1)
    # the same maps as explaining the decoded images directly
    from keras_explainable.cli.io import read_image

    images = np.stack([read_image(str(folder / name), 3) for name in names]).astype("float32") / 255
    expected = ke.GradCAM(demo.load_demo_model()).explain(images, 1).maps
    np.testing.assert_allclose(maps, expected, atol=1e-5)
    # a finished run is resumed (nothing to do) and gives the same files
    before = (result / "maps.npy").read_bytes()
    code, _, _ = call(capsys, *args)
    assert code == 0 and (result / "maps.npy").read_bytes() == before
    (work / "not-a-folder").write_text("x")
    code, _, err = call(capsys, *args[:-1], work / "not-a-folder")
    assert_one_error(code, err, "is a file")
