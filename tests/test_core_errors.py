"""Bad input gets a clear, specific error before any heavy work."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights


@pytest.fixture()
def explainer(image_model):
    return ke.GradCAM(image_model[2])


def _assert_no_work(explainer):
    assert explainer.trace_count == 0, "the error must come before any compiled step runs"


def test_wrong_rank(explainer, images):
    with pytest.raises(ke.InputError, match=r"rank 3.*expects rank 4.*x\[None\]"):
        explainer.explain(images[0])
    _assert_no_work(explainer)


def test_wrong_spatial_shape(explainer):
    with pytest.raises(ke.InputError, match=r"axis 1 is 9, expected 8"):
        explainer.explain(np.zeros((2, 9, 8, 3), "float32"))


def test_target_out_of_range(explainer, images):
    with pytest.raises(ke.TargetError, match=r"Target index 3 is out of range.*3 units.*0\.\.2"):
        explainer.explain(images, 3)
    with pytest.raises(ke.TargetError, match="out of range"):
        explainer.explain(images, np.array([0, 1, 2, 5, 0, 0, 0]))
    with pytest.raises(ke.TargetError, match="negative"):
        explainer.explain(images, -1)
    _assert_no_work(explainer)


def test_target_length_mismatch(explainer, images):
    with pytest.raises(ke.TargetError, match="Got 3 targets for 7 inputs"):
        explainer.explain(images, [0, 1, 2])
    _assert_no_work(explainer)


def test_targets_must_be_integers(explainer, images):
    with pytest.raises(TypeError, match="integer unit indices.*argmax"):
        explainer.explain(images, np.eye(3)[[0, 1, 2, 0, 1, 2, 0]])
    with pytest.raises(TypeError, match="integer"):
        explainer.explain(images, 1.5)


def test_nan_and_inf_inputs(explainer, images):
    bad = images.copy()
    bad[4, 0, 0, 0] = np.nan
    with pytest.raises(ke.InputError, match="NaN or Inf.*index 4"):
        explainer.explain(bad)
    bad[4, 0, 0, 0] = np.inf
    with pytest.raises(ke.InputError, match="NaN or Inf"):
        explainer.explain(bad)
    _assert_no_work(explainer)
    dataset = tf.data.Dataset.from_tensor_slices(bad).batch(2)
    with pytest.raises(ke.InputError, match="batch starting at sample 4"):
        explainer.explain(dataset)


def test_empty_inputs(explainer):
    with pytest.raises(ke.InputError, match="empty"):
        explainer.explain(np.zeros((0, 8, 8, 3), "float32"))
    with pytest.raises(ke.InputError, match="empty"):
        explainer.explain(tf.data.Dataset.from_tensor_slices(np.zeros((0, 8, 8, 3), "float32")))


def test_non_numeric_inputs(explainer):
    with pytest.raises(TypeError, match="numeric"):
        explainer.explain(np.full((1, 8, 8, 3), "a"))


def test_unknown_layer_suggests_names(image_model):
    with pytest.raises(ke.LayerError, match=r"No layer named 'featurs'.*Did you mean 'features'"):
        ke.GradCAM(image_model[2], layer="featurs")
    with pytest.raises(ke.LayerError, match="out of range"):
        ke.GradCAM(image_model[2], layer=40)
    with pytest.raises(TypeError, match="layer must be"):
        ke.GradCAM(image_model[2], layer=1.5)


def test_layer_without_spatial_axes(image_model):
    with pytest.raises(ke.LayerError, match="no spatial"):
        ke.GradCAM(image_model[2], layer="gap")


def test_layer_not_connected_to_output():
    inputs = keras.Input((6, 6, 1))
    left = keras.layers.Conv2D(2, 3, name="left")(inputs)
    right = keras.layers.Conv2D(2, 3, name="right")(inputs)
    out_left = keras.layers.Dense(2, name="out_left")(keras.layers.GlobalAveragePooling2D()(left))
    out_right = keras.layers.Dense(2, name="out_right")(
        keras.layers.GlobalAveragePooling2D()(right)
    )
    model = fix_weights(keras.Model(inputs, [out_left, out_right]))
    with pytest.raises(ke.LayerError, match="'right' is not connected to the output 'out_left'"):
        ke.GradCAM(model, output="out_left", layer="right")
    assert ke.GradCAM(model, output="out_left").layer_name == "left"


def test_unknown_output(image_model):
    with pytest.raises(ke.ModelStructureError, match="Unknown output 'dens'"):
        ke.GradCAM(image_model[2], output="dens")
    with pytest.raises(ke.ModelStructureError, match="out of range"):
        ke.GradCAM(image_model[2], output=3)


def test_cam_requires_gap_dense_head():
    inputs = keras.Input((6, 6, 1))
    features = keras.layers.Conv2D(2, 3, name="features")(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(features))
    model = keras.Model(inputs, outputs)
    with pytest.raises(ke.ModelStructureError, match="global average pooling.*GradCAM"):
        ke.CAM(model)
    with pytest.raises(TypeError, match="target callable"):
        ke.CAM(
            keras.Model(
                inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(features))
            )
        ).explain(np.zeros((1, 6, 6, 1)), lambda outputs: outputs[:, 0])


def test_segmentation_output_needs_callable():
    inputs = keras.Input((6, 6, 1))
    mask = keras.layers.Conv2D(2, 3, padding="same", name="mask")(inputs)
    model = keras.Model(inputs, mask)
    explainer = ke.GradCAM(model, layer="mask")
    with pytest.raises(ke.TargetError, match="callable"):
        explainer.explain(np.zeros((1, 6, 6, 1), "float32"), 0)
    expl = explainer.explain(
        np.ones((1, 6, 6, 1), "float32"), lambda out: tf.reduce_sum(out[..., 1], axis=(1, 2))
    )
    assert expl.scores.shape == (1, 1)


def test_bad_options():
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Conv2D(1, 3), keras.layers.GlobalAveragePooling2D()]
    )
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ke.GradCAM(model, batch_size=0)
    with pytest.raises(ValueError, match="postprocess"):
        ke.GradCAM(model, postprocess="minmax")
    with pytest.raises(ValueError, match="channel_reduction"):
        ke.Saliency(model, channel_reduction="median")
    with pytest.raises(ke.LayerError, match="takes no layer"):
        ke.Saliency(model, layer="conv2d")
    with pytest.raises(TypeError, match="model must be"):
        ke.GradCAM("model.keras")


def test_dataset_with_targets_and_y(explainer, images):
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(7, "int64"))).batch(2)
    with pytest.raises(ke.TargetError, match="do not also pass y"):
        explainer.explain(dataset, 1)


def test_errors_are_value_errors():
    assert issubclass(ke.InputError, ValueError)
    assert issubclass(ke.LayerError, ke.ExplainerError)


def test_token_sequence_layer_on_image_input_is_read_on_its_grid_or_a_layer_error():
    # A patch embedding and a token mixer, as in a vision transformer.
    inputs = keras.Input((16, 16, 3))
    patches = keras.layers.Conv2D(8, 4, strides=4)(inputs)
    tokens = keras.layers.Reshape((16, 8), name="tokens")(patches)
    mixed = keras.layers.Dense(8, name="mixer")(tokens)
    rows = keras.layers.Reshape((8, 16), name="rows")(mixed)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(rows))
    model = fix_weights(keras.Model(inputs, outputs))
    x = np.ones((2, 16, 16, 3), "float32")
    # 16 tokens fit the 4x4 grid of 4x4 patches: supported
    for name in ("tokens", "mixer"):
        explanation = ke.GradCAM(model, layer=name).explain(x)
        assert explanation.layer == name
        assert explanation.maps.shape == (2, 16, 16, 1)
    # 8 tokens fit no grid of a 16x16 image
    message = r"'rows'.*\(None, 8, 16\).*its 8 tokens fit no patch grid.*4x4 \(16\).*token_grid="
    with pytest.raises(ke.LayerError, match=message):
        ke.GradCAM(model, layer="rows")
    with pytest.raises(ke.LayerError, match="skip_tokens="):
        ke.ScoreCAM(model, layer="rows")
    # unless given a grid
    explanation = ke.GradCAM(model, layer="rows", token_grid=(2, 4)).explain(x)
    assert explanation.maps.shape == (2, 16, 16, 1)
    # the automatic choice keeps to layers with the input's spatial axes (no attention here)
    explanation = ke.GradCAM(model).explain(x)
    assert explanation.layer == model.layers[1].name
    assert explanation.maps.shape == (2, 16, 16, 1)


def _text_model():
    tokens = keras.Input((10,), dtype="int32")
    embedded = keras.layers.Embedding(50, 8, name="embedding")(tokens)
    hidden = keras.layers.Conv1D(4, 3, name="conv")(embedded)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(hidden))
    return fix_weights(keras.Model(tokens, outputs))


@pytest.mark.parametrize("method", [ke.Saliency, ke.GradCAM, ke.ScoreCAM, ke.FullGradient])
def test_text_model_is_explained_per_token(method):
    ids = np.random.default_rng(0).integers(0, 50, (2, 10))
    assert method(_text_model(), verbose=0).explain(ids).maps.shape == (2, 10, 1)


def test_integer_image_input_has_no_input_gradient():
    inputs = keras.Input((8, 8, 3), dtype="uint8")
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    features = keras.layers.Conv2D(4, 3, name="features")(scaled)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(features))
    model = fix_weights(keras.Model(inputs, outputs))
    images = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3)).astype("uint8")
    # layer methods work on integer images ...
    assert np.isfinite(ke.GradCAM(model).explain(images).maps).all()
    # ... input-gradient methods say why they cannot
    with pytest.raises(ke.ModelStructureError, match=r"integer dtype uint8.*float input"):
        ke.Saliency(model).explain(images)
