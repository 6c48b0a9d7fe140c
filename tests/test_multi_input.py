"""Models with several inputs: an image (8, 8, 3) and a feature vector (5,).

Maps are compared with separate computations written here: gradients from a
`tf.GradientTape`, Grad-CAM and the logits by hand from the weights,
occlusion by a numpy loop, and exact Shapley values by enumeration.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights, quadrature_nodes
from keras_explainable.errors import InputError, LayerError, ModelStructureError

COUNT = 5


def two_input_model(keyed: bool = False) -> keras.Model:
    image = keras.Input((8, 8, 3), name="image")
    tabular = keras.Input((5,), name="tabular")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(image)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    t = keras.layers.Dense(4, activation="tanh", name="dense_tab")(tabular)
    merged = keras.layers.Concatenate(name="merge")([x, t])
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(merged)
    inputs = {"image": image, "tabular": tabular} if keyed else [image, tabular]
    return fix_weights(keras.Model(inputs, outputs), seed=3)


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return two_input_model()


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    images = rng.normal(size=(COUNT, 8, 8, 3)).astype("float32")
    rows = rng.normal(size=(COUNT, 5)).astype("float32")
    labels = np.array([0, 1, 2, 1, 0])
    return images, rows, labels


def logits_of(model: keras.Model, images, rows) -> tf.Tensor:
    """The pre-softmax logits, by hand from the weights; also the conv features."""
    conv, tab, out = (model.get_layer(name) for name in ("conv", "dense_tab", "out"))
    features = conv(images)
    pooled = tf.reduce_mean(features, axis=[1, 2])
    hidden = tf.tanh(tf.matmul(rows, tab.kernel) + tab.bias)
    merged = tf.concat([pooled, hidden], axis=1)
    return tf.matmul(merged, out.kernel) + out.bias, features


def score(model, images, rows, labels) -> np.ndarray:
    logits, _ = logits_of(model, tf.constant(images), tf.constant(rows))
    return np.take_along_axis(logits.numpy(), np.asarray(labels)[:, None], axis=1)[:, 0]


def test_saliency_equals_tape_gradients(model, data):
    images, rows, labels = data
    expl = ke.Saliency(model, postprocess=None).explain((images, rows), labels)
    image_input, row_input = tf.constant(images), tf.constant(rows)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([image_input, row_input])
        logits, _ = logits_of(model, image_input, row_input)
        chosen = tf.reduce_sum(tf.gather(logits, labels, batch_dims=1))
    image_gradients, row_gradients = tape.gradient(chosen, [image_input, row_input])
    assert isinstance(expl.maps, tuple) and expl.input_names == ("image", "tabular")
    np.testing.assert_allclose(
        expl.maps[0][..., 0], np.abs(image_gradients).max(axis=-1), rtol=1e-4, atol=1e-6
    )
    # A feature vector has no channel axis: one value per feature.
    assert expl.maps[1].shape == (COUNT, 5, 1)
    np.testing.assert_allclose(expl.maps[1][..., 0], np.abs(row_gradients), rtol=1e-4, atol=1e-6)


def test_integrated_gradients_complete_over_both_inputs(model, data):
    images, rows, labels = data
    ig = ke.IntegratedGradients(model, steps=200, postprocess=None, resize=False)
    expl = ig.explain({"image": images, "tabular": rows}, labels)
    total = expl.maps[0].sum(axis=(1, 2, 3)) + expl.maps[1].sum(axis=(1, 2))
    expected = score(model, images, rows, labels) - score(model, 0 * images, 0 * rows, labels)
    np.testing.assert_allclose(total, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_left", "riemann_trapezoid"])
def test_integrated_gradients_rule_equals_a_direct_quadrature(model, data, rule):
    images, rows, labels = data
    baseline = {"tabular": np.full(5, 0.5, np.float32)}  # images start from zeros
    start = [tf.zeros_like(images), tf.fill(rows.shape, 0.5)]
    end = [tf.constant(images), tf.constant(rows)]
    totals = [tf.zeros_like(part) for part in end]
    for alpha, weight in zip(*quadrature_nodes(rule, 5), strict=True):
        point = [b + float(alpha) * (x - b) for x, b in zip(end, start, strict=True)]
        with tf.GradientTape() as tape:
            tape.watch(point)
            logits, _ = logits_of(model, *point)
            chosen = tf.reduce_sum(tf.gather(logits, labels, batch_dims=1))
        gradients = tape.gradient(chosen, point)
        totals = [t + float(weight) * g for t, g in zip(totals, gradients, strict=True)]
    image_map, row_map = ((x - b) * t for x, b, t in zip(end, start, totals, strict=True))
    ig = ke.IntegratedGradients(
        model, steps=5, method=rule, baseline=baseline, postprocess=None, resize=False
    )
    expl = ig.explain((images, rows), labels)
    np.testing.assert_allclose(
        expl.maps[0][..., 0], tf.reduce_sum(image_map, -1), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(expl.maps[1][..., 0], row_map, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_baseline_per_input(model, data):
    images, rows, labels = data
    baseline = {"tabular": np.full(5, 0.5, np.float32)}
    ig = ke.IntegratedGradients(model, steps=200, baseline=baseline, postprocess=None)
    expl = ig.explain((images, rows), labels)
    total = expl.maps[0].sum(axis=(1, 2, 3)) + expl.maps[1].sum(axis=(1, 2))
    shifted = np.full_like(rows, 0.5)
    expected = score(model, images, rows, labels) - score(model, 0 * images, shifted, labels)
    np.testing.assert_allclose(total, expected, rtol=1e-3, atol=1e-3)
    with pytest.raises(InputError, match="tabular"):
        ke.IntegratedGradients(model, baseline={"tabular": np.zeros(4, np.float32)})
    with pytest.raises(InputError, match="no input of that name"):
        ke.IntegratedGradients(model, baseline={"text": 0.0})


def test_gradcam_on_the_image_branch_equals_hand_computation(model, data):
    images, rows, labels = data
    explainer = ke.GradCAM(model, postprocess=None)
    assert explainer.layer_name == "conv"  # found automatically on the image branch
    expl = explainer.explain((images, rows), labels)
    with tf.GradientTape() as tape:
        logits, features = logits_of(model, tf.constant(images), tf.constant(rows))
        chosen = tf.reduce_sum(tf.gather(logits, labels, batch_dims=1))
    gradients = tape.gradient(chosen, features).numpy()
    weights = gradients.mean(axis=(1, 2))
    expected = np.einsum("nhwc,nc->nhw", features.numpy(), weights)
    assert expl.maps.shape == (COUNT, 8, 8, 1)
    np.testing.assert_allclose(expl.maps[..., 0], expected, rtol=1e-4, atol=1e-6)


def test_layer_map_input_choice(model):
    with pytest.raises(LayerError, match="another rank"):
        ke.GradCAM(model, resize_to="tabular")
    with pytest.raises(InputError, match="no input of that name"):
        ke.GradCAM(model, resize_to="text")
    assert ke.GradCAM(model, resize_to="image").exposure.map_input == 0
    with pytest.raises(LayerError, match="takes no resize_to"):
        ke.Saliency(model, resize_to="image")


def test_two_image_inputs_need_resize_to():
    left, right = keras.Input((6, 6, 2), name="left"), keras.Input((6, 6, 2), name="right")
    merged = keras.layers.Concatenate(name="both")([left, right])
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(merged)
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model([left, right], out)
    with pytest.raises(LayerError, match="resize_to"):
        ke.GradCAM(model)
    assert ke.GradCAM(model, resize_to="right").exposure.map_input == 1


def test_occlusion_of_the_image_equals_numpy_loop(model, data):
    images, rows, labels = data
    occlusion = ke.Occlusion(
        model, window=(4, 4), perturb_inputs="image", postprocess=None, resize=False
    )
    expl = occlusion.explain((images, rows), labels)
    assert expl.maps[1] is None
    expected = np.zeros((COUNT, 8, 8))
    clean = score(model, images, rows, labels)
    for top, left in itertools.product((0, 4), (0, 4)):
        hidden = images.copy()
        hidden[:, top : top + 4, left : left + 4] = 0.0
        expected[:, top : top + 4, left : left + 4] = (clean - score(model, hidden, rows, labels))[
            :, None, None
        ]
    np.testing.assert_allclose(expl.maps[0][..., 0], expected, rtol=1e-4, atol=1e-5)


def test_occlusion_default_perturbs_the_inputs_its_window_fits(model, data):
    images, rows, _ = data
    assert ke.Occlusion(model, window=(4, 4)).explained_inputs == (0,)
    assert ke.Occlusion(model, window=1).explained_inputs == (0, 1)
    with pytest.raises(InputError, match="'tabular' cannot be perturbed"):
        ke.Occlusion(model, window=(4, 4), perturb_inputs="tabular")


def shapley_values(model, images, rows, labels) -> np.ndarray:
    """Exact Shapley values of the 5 features (absent: 0), the image as it is."""
    values = np.zeros_like(rows)
    features = range(rows.shape[1])
    for feature in features:
        others = [other for other in features if other != feature]
        for size in range(len(others) + 1):
            weight = (
                math.factorial(size)
                * math.factorial(len(others) - size)
                / math.factorial(len(others) + 1)
            )
            for subset in itertools.combinations(others, size):
                kept = np.zeros(rows.shape[1], bool)
                kept[list(subset)] = True
                without = score(model, images, rows * kept, labels)
                kept[feature] = True
                with_it = score(model, images, rows * kept, labels)
                values[:, feature] += weight * (with_it - without)
    return values


def test_kernel_shap_on_the_features_is_exact_shapley(model, data):
    images, rows, labels = data
    shap = ke.KernelSHAP(model, perturb_inputs="tabular", samples=64, postprocess=None)
    expl = shap.explain((images, rows), labels)
    assert expl.maps[0] is None and expl.maps[1].shape == (COUNT, 5, 1)
    expected = shapley_values(model, images, rows, labels)
    np.testing.assert_allclose(expl.maps[1][..., 0], expected, rtol=1e-3, atol=1e-4)


def test_lime_on_the_features(model, data):
    images, rows, labels = data
    keyed = two_input_model(keyed=True)
    lime = ke.LIME(keyed, perturb_inputs=["tabular"], samples=200, ridge=0.0, postprocess=None)
    expl = lime.explain({"image": images, "tabular": rows}, labels)
    assert set(expl.maps) == {"tabular"}
    # The local linear model agrees with the features' Shapley values.
    shapley = shapley_values(keyed, images, rows, labels)
    agreement = [
        np.corrcoef(got, want)[0, 1]
        for got, want in zip(expl.maps["tabular"][..., 0], shapley, strict=True)
    ]
    assert min(agreement) > 0.3 and np.mean(agreement) > 0.75, agreement


def test_dict_tuple_and_dataset_inputs_agree(model, data):
    images, rows, labels = data
    saliency = ke.Saliency(model, batch_size=2)
    from_tuple = saliency.explain((images, rows), labels)
    from_dict = saliency.explain({"tabular": rows, "image": images}, labels)
    dataset = tf.data.Dataset.from_tensor_slices(({"image": images, "tabular": rows}, labels))
    from_dataset = saliency.explain(dataset)  # unbatched, with its own targets
    from_batches = saliency.explain(dataset.batch(3))
    for other in (from_dict, from_dataset, from_batches):
        for got, want in zip(other.maps, from_tuple.maps, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(other.targets, from_tuple.targets)


def test_keyed_model_gives_maps_by_name(data):
    images, rows, _ = data
    expl = ke.InputXGradient(two_input_model(keyed=True)).explain((images, rows))
    assert set(expl.maps) == {"image", "tabular"}
    assert expl.for_input("tabular").maps.shape == (COUNT, 5, 1)
    assert len(expl[1:3]) == 2 and expl[1:3].maps["image"].shape == (2, 8, 8, 1)


def test_batch_size_invariance(model, data):
    images, rows, labels = data
    for explainer in (ke.IntegratedGradients, ke.Saliency):
        whole = explainer(model, batch_size=COUNT).explain((images, rows), labels)
        # Batches of 2, 2 and 1: the last batch holds one sample.
        pieces = explainer(model, batch_size=2).explain((images, rows), labels)
        for got, want in zip(pieces.maps, whole.maps, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    smooth = ke.SmoothGrad(ke.Saliency(model), samples=3)
    whole = smooth.explain((images, rows), labels)
    pieces = ke.SmoothGrad(ke.Saliency(model, batch_size=2), samples=3).explain(
        (images, rows), labels
    )
    for got, want in zip(pieces.maps, whole.maps, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_explain_to_disk_equals_explain(model, data, tmp_path):
    images, rows, labels = data
    saliency = ke.Saliency(model, batch_size=2)
    expected = saliency.explain((images, rows), labels)
    written = saliency.explain_to_disk((images, rows), tmp_path, labels)
    assert {path.name for path in tmp_path.glob("*.npy")} == {
        "maps_image.npy",
        "maps_tabular.npy",
        "scores.npy",
        "targets.npy",
    }
    for got, want in zip(written.maps, expected.maps, strict=True):
        np.testing.assert_allclose(got, want)
    again = saliency.explain_to_disk((images, rows), tmp_path, labels)  # read back
    np.testing.assert_allclose(again.maps[1], expected.maps[1])
    occluded = ke.Occlusion(model, window=4, perturb_inputs="image")
    only_image = occluded.explain_to_disk((images, rows), tmp_path / "occlusion", labels)
    assert only_image.maps[1] is None
    assert not (tmp_path / "occlusion" / "maps_tabular.npy").exists()


def test_clear_errors(model, data):
    images, rows, _ = data
    saliency = ke.Saliency(model)
    with pytest.raises(InputError, match="Got 3 inputs, but the model takes 2"):
        saliency.explain((images, rows, rows))
    with pytest.raises(InputError, match="different numbers of samples"):
        saliency.explain((images, rows[:3]))
    with pytest.raises(InputError, match="Unknown input 'tabluar'.*tabular"):
        saliency.explain({"image": images, "tabluar": rows})
    with pytest.raises(InputError, match="Input 'tabular' is missing"):
        saliency.explain({"image": images})
    with pytest.raises(InputError, match="Input 'tabular' have shape"):
        saliency.explain((images, rows[:, :4]))
    with pytest.raises(InputError, match="pass them as a tuple"):
        saliency.explain(images)
    broken = rows.copy()
    broken[2, 1] = np.nan
    with pytest.raises(InputError, match="Input 'tabular' contain NaN"):
        saliency.explain((images, broken))
    with pytest.raises(ModelStructureError, match="several inputs"):
        ke.ScoreCAM(model)


def test_structured_maps_in_plots(model, data):
    images, rows, _ = data
    expl = ke.Saliency(model).explain((images, rows))
    with pytest.raises(ValueError, match="for_input"):
        expl.overlay(images)
    with pytest.raises(ValueError, match="for_input"):
        np.asarray(expl)
    assert expl.for_input("image").overlay(images).shape == (COUNT, 8, 8, 3)


def test_mirrored_strategy_equals_one_device():
    script = Path(__file__).parent / "scripts" / "multi_input_mirrored.py"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" ok") == 4
