"""`ke.callbacks.ExplainCallback`: explanations written while a model trains.

Tiny CNNs with fixed weights train for two or three epochs; the maps the
callback writes are compared with a fresh explainer's on the weights of that
epoch, the TensorBoard summaries are read back from the event files, and the
PNG grids are decoded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights
from keras_explainable.callbacks import SUMMARY_FOLDER, ExplainCallback

CLASSES = 3
SCRIPT = Path(__file__).parent / "scripts" / "callback_mirrored.py"


def _model(seed: int = 0) -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = fix_weights(keras.Model(inputs, keras.layers.Dense(CLASSES)(x)), seed=seed)
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _data(count: int = 12, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 1.0, (count, 8, 8, 3)).astype("float32")
    return images, rng.integers(0, CLASSES, count)


def _summaries(log_dir: Path) -> dict[str, list[tuple[int, list[np.ndarray], str]]]:
    """The image summaries of the callback's run: tag -> [(step, images, description)]."""
    found: dict[str, list] = {}
    for path in sorted((log_dir / SUMMARY_FOLDER).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name in ("images", "")
                blobs = tf.make_ndarray(value.tensor)
                width, height = int(blobs[0]), int(blobs[1])
                images = [tf.io.decode_png(blob).numpy() for blob in blobs[2:]]
                assert all(image.shape == (height, width, 3) for image in images)
                entry = (event.step, images, value.metadata.summary_description)
                found.setdefault(value.tag, []).append(entry)
    return found


def _png_size(path: Path) -> tuple[int, int]:
    """(height, width) of a decoded PNG."""
    return tuple(tf.io.decode_png(tf.io.read_file(str(path))).shape[:2])


def _grid_size(rows: int, targets: int) -> tuple[int, int]:
    # plot_grid: cells of 1.8 inches (1.2 times as tall) at 100 dpi, one column
    # for the images and one per target
    return round(1.8 * 1.2 * rows * 100), round(1.8 * (targets + 1) * 100)


class _Recorder(keras.callbacks.Callback):
    """After the callback (listed after it): a fresh explainer's result and the trace count."""

    def __init__(self, callback: ExplainCallback) -> None:
        super().__init__()
        self.callback = callback
        self.fresh: list[ke.Explanation] = []
        self.traces: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        callback = self.callback
        if callback.last_epoch == epoch + 1:
            fresh = ke.GradCAM(self.model, verbose=0).explain(callback.images, callback.targets)
            self.fresh.append(fresh)
            self.traces.append(callback.explainer.trace_count)


def test_two_epochs_write_the_maps_of_each_epoch(tmp_path):
    model = _model()
    x, labels = _data()
    callback = ExplainCallback(
        ke.GradCAM(model, verbose=0), x[:4], labels[:4], log_dir=tmp_path, out_dir=tmp_path / "png"
    )
    recorder = _Recorder(callback)
    model.fit(x, labels, batch_size=4, epochs=2, verbose=0, callbacks=[callback, recorder])

    # The maps of every epoch are those of a fresh explainer on that epoch's weights.
    first, second = recorder.fresh
    np.testing.assert_allclose(callback.last_explanation.maps, second.maps, atol=1e-5)
    np.testing.assert_allclose(callback.last_explanation.scores, second.scores, rtol=1e-5)
    np.testing.assert_array_equal(callback.last_explanation.targets, labels[:4, None])
    assert not np.allclose(first.maps, second.maps, atol=1e-3)
    # Training changed the weights, not the compiled step.
    assert recorder.traces[0] == recorder.traces[1] == 1

    summaries = _summaries(tmp_path)
    assert list(summaries) == ["GradCAM/target_0"]
    written = summaries["GradCAM/target_0"]
    assert [step for step, _, _ in written] == [0, 1]  # the 0-based epoch, as Keras' TensorBoard
    for (_, images, description), fresh in zip(written, recorder.fresh, strict=True):
        expected = ke.plot.overlay(x[:4], fresh.maps)
        assert len(images) == 4
        # PNG is lossless; maps equal to 1e-5 may still round to another colour
        difference = np.abs(np.stack(images).astype(int) - expected.astype(int))
        assert difference.max() <= 1
        assert description.startswith(f"image 0: class {labels[0]} (")
    assert not np.array_equal(written[0][1], written[1][1])
    # epoch 2's summary holds exactly the callback's overlays of its last maps
    np.testing.assert_array_equal(written[1][1], callback.overlays(callback.last_explanation)[0])

    grids = sorted((tmp_path / "png").iterdir())
    assert [path.name for path in grids] == ["epoch_0001.png", "epoch_0002.png"]
    assert all(_png_size(path) == _grid_size(rows=4, targets=1) for path in grids)


def test_every_two_epochs(tmp_path):
    model = _model(seed=2)
    x, labels = _data(8)
    callback = ExplainCallback(
        ke.GradCAM(model, verbose=0), x, every=2, log_dir=tmp_path, out_dir=tmp_path / "png"
    )
    recorder = _Recorder(callback)
    model.fit(x, labels, batch_size=8, epochs=3, verbose=0, callbacks=[callback, recorder])
    assert callback.last_epoch == 2
    assert [path.name for path in (tmp_path / "png").iterdir()] == ["epoch_0002.png"]
    assert [step for step, _, _ in _summaries(tmp_path)["GradCAM/target_0"]] == [1]
    # y None: each image's top class at epoch 2
    np.testing.assert_allclose(callback.last_explanation.maps, recorder.fresh[0].maps, atol=1e-5)
    np.testing.assert_array_equal(callback.last_explanation.targets, recorder.fresh[0].targets)


@pytest.mark.filterwarnings("error::keras_explainable.BlankMapWarning")
def test_dataset_several_classes_and_max_images(tmp_path):
    """A batched (x, y) dataset, two classes per image, cut to 5 of its 6 images."""
    model = _model(seed=4)
    x, labels = _data(6, seed=5)
    pairs = np.stack([labels, (labels + 1) % CLASSES], axis=1)
    dataset = tf.data.Dataset.from_tensor_slices((x, pairs)).batch(4)
    callback = ExplainCallback(
        lambda trained: ke.GradCAM(trained, verbose=0),  # built when training begins
        dataset,
        log_dir=tmp_path,
        out_dir=tmp_path / "png",
        max_images=5,
    )
    assert callback.explainer is None
    np.testing.assert_array_equal(callback.images, x[:5])
    np.testing.assert_array_equal(callback.targets, pairs[:5])
    model.fit(x, labels, batch_size=6, epochs=1, verbose=0, callbacks=[callback])

    assert callback.explainer.model is model
    expected = ke.GradCAM(model, verbose=0).explain(x[:5], pairs[:5])
    np.testing.assert_allclose(callback.last_explanation.maps, expected.maps, atol=1e-5)
    np.testing.assert_array_equal(callback.last_explanation.targets, pairs[:5])
    summaries = _summaries(tmp_path)
    assert sorted(summaries) == ["GradCAM/target_0", "GradCAM/target_1"]
    for target in range(2):
        ((_, images, _),) = summaries[f"GradCAM/target_{target}"]
        blended = ke.plot.overlay(x[:5], expected.maps, target=target)
        assert np.abs(np.stack(images).astype(int) - blended.astype(int)).max() <= 1
    assert _png_size(tmp_path / "png" / "epoch_0001.png") == _grid_size(rows=5, targets=2)


def test_unbatched_dataset_and_batch_of_one(tmp_path):
    model = _model(seed=5)
    x, _ = _data(3, seed=6)
    dataset = tf.data.Dataset.from_tensor_slices(x)
    callback = ExplainCallback(ke.GradCAM(model, verbose=0), dataset, 2, out_dir=tmp_path)
    np.testing.assert_array_equal(callback.images, x)
    assert callback.targets == 2
    one = ExplainCallback(ke.GradCAM, x, max_images=1, out_dir=tmp_path)  # a class: a factory
    one.set_model(model)
    one.on_train_begin()
    one.on_epoch_end(0)
    assert isinstance(one.explainer, ke.GradCAM) and one.explainer.model is model
    expected = ke.GradCAM(model, verbose=0).explain(x[:1])
    np.testing.assert_allclose(one.last_explanation.maps, expected.maps, atol=1e-6)
    assert _png_size(tmp_path / "epoch_0001.png") == _grid_size(rows=1, targets=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"every": 0}, ValueError, "every must be a positive integer"),
        ({"max_images": 0}, ValueError, "max_images must be a positive integer"),
        ({"every": 1.5}, ValueError, "every must be a positive integer"),
        ({"log_dir": None, "out_dir": None}, ke.ExplainerError, "give log_dir="),
        ({"x": np.zeros((0, 8, 8, 3))}, ke.InputError, "x is empty"),
        ({"x": np.zeros((8, 8, 3))}, ke.InputError, r"images \(N, H, W, C\)"),
        ({"x": np.full((2, 8, 8, 3), np.nan)}, ke.InputError, "NaN or Inf"),
        ({"x": tf.data.Dataset.from_tensor_slices(np.zeros((0, 8, 8, 3)))}, ke.InputError, "empty"),
        ({"y": np.array([0.0, 1.0])}, ke.TargetError, "class indices"),
        ({"y": np.eye(3)[[0, 1]]}, ke.TargetError, r"y.argmax\(-1\)"),
        ({"y": np.array([0, 1, 2])}, ke.TargetError, "3 rows for 2 images"),
        ({"explainer_or_factory": 3}, TypeError, "explainer_or_factory must be"),
    ],
)
def test_bad_arguments_fail_at_construction(tmp_path, kwargs, error, message):
    arguments = {
        "explainer_or_factory": ke.GradCAM,
        "x": np.zeros((2, 8, 8, 3), "float32"),
        "log_dir": tmp_path,
        **kwargs,
    }
    with pytest.raises(error, match=message):
        ExplainCallback(**arguments)


def test_dataset_with_targets_and_y(tmp_path):
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((2, 8, 8, 3)), np.zeros(2, int)))
    with pytest.raises(ke.TargetError, match="yields its own targets"):
        ExplainCallback(ke.GradCAM, dataset, np.zeros(2, int), out_dir=tmp_path)


def test_mismatches_with_the_model_fail_before_training(tmp_path):
    model = _model()
    x, labels = _data(4)
    weights = [w.copy() for w in model.get_weights()]
    other = ExplainCallback(ke.GradCAM(_model(), verbose=0), x, out_dir=tmp_path)
    with pytest.raises(ke.ExplainerError, match="shares no weight"):
        model.fit(x, labels, epochs=1, verbose=0, callbacks=[other])
    small = ExplainCallback(ke.GradCAM, np.zeros((2, 6, 6, 3), "float32"), out_dir=tmp_path)
    with pytest.raises(ke.InputError, match="callback's images have shape"):
        model.fit(x, labels, epochs=1, verbose=0, callbacks=[small])
    for before, after in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert not any(tmp_path.iterdir())


def test_mirrored_strategy_fit_equals_single_device(tmp_path):
    """`fit` under a MirroredStrategy of 2 logical CPUs (a subprocess: set before TF starts)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, (process.stdout + process.stderr)[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["replicas"] == 2
    assert report["epochs_written"] == [1, 2]
    assert report["traces"][0] == report["traces"][1]
    assert report["max_map_difference"] < 1e-5
    assert report["max_score_difference"] < 1e-4
    assert report["summaries"] == 2


def test_tensorboard_reads_the_summaries_as_tf_summary_image_writes_them(tmp_path):
    """With the `tensorboard` package installed: its reader sees the same images plugin data."""
    reading = "tensorboard.backend.event_processing.event_accumulator"
    event_accumulator = pytest.importorskip(reading)
    model = _model()
    x, labels = _data(4)
    callback = ExplainCallback(ke.GradCAM(model, verbose=0), x, labels, log_dir=tmp_path / "a")
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_end(0)
    callback.on_train_end()
    blended = callback.overlays(callback.last_explanation)[0]
    with tf.summary.create_file_writer(str(tmp_path / "b")).as_default():
        tf.summary.image("GradCAM/target_0", blended, step=0, max_outputs=len(blended))
    tensors = []
    for run in (tmp_path / "a" / SUMMARY_FOLDER, tmp_path / "b"):
        reader = event_accumulator.EventAccumulator(str(run), size_guidance={"tensors": 0})
        reader.Reload()
        assert reader.SummaryMetadata("GradCAM/target_0").plugin_data.plugin_name == "images"
        (event,) = reader.Tensors("GradCAM/target_0")
        tensors.append(tf.make_ndarray(event.tensor_proto))
    assert list(tensors[0][:2]) == list(tensors[1][:2])  # width and height
    for ours, theirs in zip(tensors[0][2:], tensors[1][2:], strict=True):
        np.testing.assert_array_equal(tf.io.decode_png(ours), tf.io.decode_png(theirs))
