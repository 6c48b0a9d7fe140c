"""Taps: any layer call a model makes, observed, replaced or re-ruled, and the model untouched."""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights
from keras_explainable.exposure import Observe, Replace, TapSession, expose
from keras_explainable.exposure.model_map import reachable_layers
from keras_explainable.exposure.taps import CallSite, installed_layers


class Block(keras.layers.Layer):
    """A composite layer: its sublayers are attributes, called from Python code."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(channels, 3, padding="same", name="conv")
        self.norm = keras.layers.BatchNormalization()  # auto-named
        self.act = keras.layers.ReLU(name="act")

    def call(self, inputs, training=None):
        return self.act(self.norm(self.conv(inputs), training=training)) + inputs[..., :1]


class Encoder(keras.layers.Layer):
    """Blocks held in a list, one shared convolution called twice."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [Block(4, name=f"block_{i}") for i in range(2)]
        self.shared = keras.layers.Conv2D(4, 1, name="shared")
        self.unused = keras.layers.Dense(2, name="unused")  # held, never called

    def call(self, inputs):
        x = self.shared(inputs)
        for block in self.blocks:
            x = block(x)
        return self.shared(x)


def composite_model(seed=0):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    x = Encoder(name="encoder")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="dense")(x)
    model = keras.Model(inputs, outputs, name="composite")
    fix_weights(model, seed)
    for layer in reachable_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            rng = np.random.default_rng(1)
            layer.moving_mean.assign(rng.normal(0, 0.3, 4).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, 4).astype("float32"))
    return model


@pytest.fixture(scope="module")
def model():
    return composite_model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).uniform(-1, 1, (5, 8, 8, 3)).astype("float32")


def _intercepted(model, layer, x, change=None):
    """The model's logits and `layer`'s output, intercepted by patching `layer.call` by hand."""
    held = {}
    own = layer.call

    def call(*args, **kwargs):
        output = own(*args, **kwargs)
        if change is not None:
            output = change(output)
        held["output"] = output
        return output

    dense = model.get_layer("dense")
    logits_model = keras.Model(model.input, dense.input)
    layer.call = call
    try:
        with tf.GradientTape() as tape:
            pooled = logits_model(tf.constant(x), training=False)
            kernel, bias = dense.get_weights()
            logits = tf.matmul(pooled, kernel) + bias
        return logits, held["output"], tape
    finally:
        del layer.call


def _reference_gradcam(model, layer, x, target):
    held = {}
    own = layer.call
    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()

    def call(*args, **kwargs):
        output = own(*args, **kwargs)
        tape.watch(output)
        held["output"] = output
        return output

    layer.call = call
    try:
        with tf.GradientTape() as tape:
            pooled = keras.Model(model.input, dense.input)(tf.constant(x), training=False)
            score = tf.reduce_sum((tf.matmul(pooled, kernel) + bias)[:, target])
    finally:
        del layer.call
    features = held["output"].numpy()
    gradients = tape.gradient(score, held["output"]).numpy()
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    return (weights * features).sum(axis=-1)


def test_observe_a_sublayer_of_a_composite_layer_equals_a_hand_interception(model, x):
    encoder = model.get_layer("encoder")
    norm = encoder.blocks[1].norm
    expected = _reference_gradcam(model, norm, x, 2)
    explainer = ke.GradCAM(model, layer="encoder/block_1/" + norm.name, postprocess=None)
    raw = explainer.explain(x, 2)
    np.testing.assert_allclose(raw.maps[..., 0], expected, rtol=1e-4, atol=1e-6)
    assert np.abs(expected).max() > 1e-3
    # the same layer given as an object, and by a unique tail of its path
    by_object = ke.GradCAM(model, layer=norm, postprocess=None).explain(x, 2)
    np.testing.assert_allclose(by_object.maps, raw.maps, rtol=1e-6)
    assert by_object.layer == f"encoder/block_1/{norm.name}"


def test_a_replace_tap_equals_the_model_run_with_the_output_changed_by_hand(model, x):
    exposure = expose(model, layer="encoder/block_0")
    block = model.get_layer("encoder").blocks[0]
    features, _ = exposure(tf.constant(x))
    changed = features * 0.5 + 1.0
    replaced = exposure.replaced(tf.constant(x), changed)
    logits, _, _ = _intercepted(model, block, x, change=lambda y: y * 0.5 + 1.0)
    # the exposure reads the logits behind the softmax
    np.testing.assert_allclose(replaced, logits, rtol=1e-5, atol=1e-6)
    unchanged, _ = exposure(tf.constant(x))
    np.testing.assert_allclose(unchanged, features, rtol=1e-6)


def test_a_shared_layer_needs_call_index_and_each_call_is_its_own(model, x):
    with pytest.raises(
        ke.LayerError, match=r"'encoder/shared' is called 2 times.*call_index=0 to 1"
    ):
        ke.GradCAM(model, layer="encoder/shared")
    with pytest.raises(ke.LayerError, match=r"call_index=2 is out of range.*called 2 time"):
        ke.GradCAM(model, layer="encoder/shared", call_index=2)
    shared = model.get_layer("encoder").shared
    first = expose(model, layer="encoder/shared", call_index=0)
    second = expose(model, layer="encoder/shared", call_index=1)
    stem = model.get_layer("stem")(tf.constant(x), training=False)
    np.testing.assert_allclose(first(tf.constant(x))[0], shared(stem), rtol=1e-5, atol=1e-6)
    after_blocks = model.get_layer("encoder").blocks[1](
        model.get_layer("encoder").blocks[0](shared(stem), training=False), training=False
    )
    np.testing.assert_allclose(
        second(tf.constant(x))[0], shared(after_blocks), rtol=1e-5, atol=1e-6
    )
    explanation = ke.GradCAM(model, layer="encoder/shared", call_index=1).explain(x)
    assert explanation.layer == "encoder/shared (call 1)"


def test_addressing_errors_name_the_closest_paths(model):
    with pytest.raises(
        ke.LayerError, match=r"No layer named 'encoder/block_1/conb'.*'encoder/block_1/conv'"
    ):
        ke.GradCAM(model, layer="encoder/block_1/conb")
    with pytest.raises(
        ke.LayerError, match=r"'act' is ambiguous.*'encoder/block_0/act'.*'encoder/block_1/act'"
    ):
        ke.GradCAM(model, layer="act")
    other = keras.layers.Conv2D(2, 1, name="stem")
    with pytest.raises(ke.LayerError, match="'stem' is not part of the model.*another model"):
        ke.GradCAM(model, layer=other)
    with pytest.raises(
        ke.LayerError, match="'unused' is part of the model, but a forward pass never"
    ):
        ke.GradCAM(model, layer="unused")
    with pytest.raises(ke.LayerError, match="never calls it"):
        ke.GradCAM(model, layer=model.get_layer("encoder").unused)
    # all before any step was traced
    assert ke.GradCAM(model).trace_count == 0


def _untouched(model):
    """Every reachable layer's `call` is its class's again, and no session holds a layer."""
    for layer in reachable_layers(model):
        assert "call" not in vars(layer), layer.name
        assert layer.call.__func__ is type(layer).call
    assert not installed_layers()


def test_the_model_is_exactly_as_before_after_any_explanation(x):
    model = composite_model(seed=3)
    weights = [w.copy() for w in model.get_weights()]
    before = model(x, training=False).numpy()
    with pytest.warns(UserWarning, match="runs the whole model"):
        ablation = ke.AblationCAM(model, layer="encoder/block_0")
    for explainer in (
        ke.GradCAM(model, layer="encoder/block_1/act"),
        ke.GuidedGradCAM(model),
        ke.FullGradient(model),
        ablation,
        ke.SmoothGrad(ke.GradCAM(model), samples=2),
        ke.Saliency(model),
    ):
        explainer.explain(x, 1)
        _untouched(model)
    np.testing.assert_array_equal(model(x, training=False).numpy(), before)
    for old, new in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_session_restores_the_layers_when_the_pass_fails(model, x):
    norm = model.get_layer("encoder").blocks[0].norm

    def fail(output, call):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with TapSession([Replace(CallSite(norm), function=fail)]):
            model(tf.constant(x), training=False)
    _untouched(model)


def test_sessions_in_threads_tap_the_same_layer_independently(x):
    """Two threads inside their sessions at once: each sees its own taps only."""
    model = composite_model(seed=4)
    norm = model.get_layer("encoder").blocks[0].norm
    inside = threading.Barrier(2, timeout=30)
    plain_call = norm.call
    results: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []

    class Waiting(Observe):
        def apply(self, call, proceed):
            inside.wait()  # both threads have their session open here
            return super().apply(call, proceed)

    def observe():
        tap = Waiting(CallSite(norm))
        with TapSession([tap]) as session:
            model(tf.constant(x), training=False)
        results["observed"] = session.observed(tap).numpy()

    def replace():
        zeros = tf.zeros((len(x), 8, 8, 4))

        def zeroed(output, call):
            inside.wait()
            return zeros

        with TapSession([Replace(CallSite(norm), function=zeroed)]):
            results["replaced"] = model(tf.constant(x), training=False).numpy()

    def run(function):
        try:
            function()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f,)) for f in (observe, replace)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    _, expected_norm, _ = _intercepted(model, norm, x)
    np.testing.assert_allclose(results["observed"], expected_norm, rtol=1e-5, atol=1e-6)
    logits, _, _ = _intercepted(model, norm, x, change=tf.zeros_like)
    np.testing.assert_allclose(results["replaced"], tf.nn.softmax(logits), rtol=1e-5, atol=1e-6)
    assert norm.call == plain_call
    _untouched(model)


def test_list_layers_reaches_inside_composite_layers(model):
    table = ke.list_layers(model)
    paths = [info.path for info in table]
    norm = model.get_layer("encoder").blocks[1].norm.name
    assert paths[:3] == ["stem", "encoder/shared", "encoder/block_0/conv"]
    assert f"encoder/block_1/{norm}" in paths and "encoder/unused" not in paths
    shared = [info for info in table if info.path == "encoder/shared"]
    assert [info.call_index for info in shared] == [0, 1]
    kinds = {info.path: info.kind for info in table}
    assert kinds["encoder/block_1"] == "spatial" and kinds["gap"] == "other"
    encoder = next(info for info in table if info.path == "encoder")
    assert encoder.composite and encoder.output_shape == (None, 8, 8, 4)
    text = str(table)
    assert text.splitlines()[0].split() == ["path", "class", "output", "shape", "kind"]
    assert "encoder/shared  [call_index=1]" in text and "(N, 8, 8, 4)" in text
    # the encoder returns its shared layer's second output: both are listed
    assert table.paths("spatial")[-2:] == ["encoder/shared", "encoder"]


def test_taps_compile_with_xla(model, x):
    options = {"layer": "encoder/block_1/act", "postprocess": None}
    plain = ke.GradCAM(model, **options).explain(x, 0)
    compiled = ke.GradCAM(model, jit_compile=True, **options).explain(x, 0)
    np.testing.assert_allclose(compiled.maps, plain.maps, rtol=1e-4, atol=1e-6)
    guided = ke.GuidedBackprop(model, jit_compile=True).explain(x, 0)
    np.testing.assert_allclose(guided.maps, ke.GuidedBackprop(model).explain(x, 0).maps, atol=1e-5)


def test_ablation_cam_inside_a_composite_layer_ablates_through_the_whole_model(model, x):
    block = model.get_layer("encoder").blocks[0]
    with pytest.warns(UserWarning, match="about one forward pass per channel"):
        explainer = ke.AblationCAM(
            model, layer="encoder/block_0", postprocess=None, channel_batch_size=3
        )
    assert explainer.full_passes
    logits, features, _ = _intercepted(model, block, x)
    features = features.numpy()
    score = logits.numpy()[:, 1]
    drops = []
    for channel in range(4):
        keep = np.ones(4, "float32")
        keep[channel] = 0.0
        ablated, _, _ = _intercepted(model, block, x, change=lambda y, keep=keep: y * keep)
        drops.append((score - ablated.numpy()[:, 1]) / score)
    weights = np.stack(drops, axis=-1)  # (N, C)
    expected = (features * weights[:, None, None, :]).sum(axis=-1)
    np.testing.assert_allclose(explainer.explain(x, 1).maps[..., 0], expected, rtol=1e-4, atol=1e-5)


class HostStep(keras.layers.Layer):
    """A layer that runs Python on the host: XLA cannot compile it."""

    def call(self, inputs):
        doubled = tf.py_function(lambda a: a * 2, [inputs], inputs.dtype)
        return tf.ensure_shape(doubled, inputs.shape)


def test_a_step_that_xla_cannot_compile_gets_a_clear_error_before_any_work(x):
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", name="features")(inputs)
    hosted = HostStep(name="host")(features)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(hosted))
    model = fix_weights(keras.Model(inputs, outputs))
    with pytest.raises(
        ke.ModelStructureError, match=r"could not be compiled with XLA.*jit_compile=False"
    ):
        ke.GradCAM(model, layer="features", jit_compile=True).explain(x, 0)
    plain = ke.GradCAM(model, layer="features").explain(x, 0)
    assert np.isfinite(plain.maps).all()
