"""keras-hub models built from small configs: explained through taps, at the right layers."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke

keras_hub = pytest.importorskip("keras_hub")

import hub_models as hub  # noqa: E402 - needs keras_hub

pytestmark = [
    pytest.mark.filterwarnings("ignore::keras_explainable.errors.CompletenessWarning"),
    pytest.mark.filterwarnings("ignore:Layer 'attn' .* was passed an input with a mask"),
    pytest.mark.filterwarnings("ignore:AblationCAM. the part of the model"),
    pytest.mark.filterwarnings("ignore:GuidedGradCAM. the model has no plain ReLU"),
    pytest.mark.filterwarnings("ignore:GuidedBackprop. the model has no plain ReLU"),
    pytest.mark.filterwarnings("ignore:Deconvnet. the model has no plain ReLU"),
]

_MODELS: dict[str, keras.Model] = {}


def model_of(family: str) -> keras.Model:
    """One model per family for the whole module (building one takes about a second)."""
    if family not in _MODELS:
        factories = {**hub.CLASSIFIERS, **hub.SEGMENTERS, "retinanet": hub.retinanet}
        _MODELS[family] = factories[family]()
    return _MODELS[family]


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(3).uniform(0, 1, (3, 32, 32, 3)).astype("float32")


def _auto(model, **options):
    explainer = ke.GradCAM(model, **options)
    return explainer, explainer.exposure.layers[0]


# ---------------------------------------------------------------- the defaults
def _last_block(family, model):
    if family == "dinov2":
        return model.get_layer(index=1).encoder.layers[-1].norm1
    backbone = model.backbone
    if family == "vit":
        return backbone.get_layer("vit_encoder").encoder_layers[-1].layer_norm_1
    if family == "deit":
        return backbone.get_layer("deit_encoder").encoder_layers[-1].layer_norm_1
    return backbone.stages[-1].blocks[-1].norm1  # swin


@pytest.mark.parametrize(
    ("family", "grid"),
    [
        ("vit", "4x4 token grid, 1 skipped token"),
        ("deit", "4x4 token grid, 2 skipped tokens"),
        ("dinov2", "4x4 token grid, 3 skipped tokens"),
        ("swin", "8x8 token grid"),
    ],
)
def test_a_transformer_is_explained_inside_its_last_block(family, grid, x):
    model = model_of(family)
    explainer, layer = _auto(model)
    # the token input of the last block's attention, inside the composite encoder
    assert layer.call.layer is _last_block(family, model)
    assert layer.call.parent is not None and layer.call.parent.composite
    explanation = explainer.explain(x, 0)
    assert explanation.layer == f"{layer.name} (auto: input of the last attention layer, {grid})"
    assert explanation.maps.shape == (3, 32, 32, 1) and np.isfinite(explanation.maps).all()


def test_swin_windows_are_read_on_the_image_grid(x):
    """Swin's attention reads windows; its input's tokens, laid on the grid, are explained."""
    model = model_of("swin")
    explainer, layer = _auto(model, postprocess=None, resize=False)
    block = model.backbone.stages[-1].blocks[-1]
    tokens = _intercept(model, block.norm1, x)
    assert tokens.shape == (3, 64, 32)
    raw = explainer.explain(x, 1).maps[..., 0]
    features = tokens.numpy().reshape(3, 8, 8, 32)
    gradients = _token_gradients(model, block.norm1, x, 1).reshape(3, 8, 8, 32)
    expected = (gradients.mean(axis=(1, 2), keepdims=True) * features).sum(-1)
    np.testing.assert_allclose(raw, expected, rtol=1e-4, atol=1e-6)
    # A layer inside the windows has several rows per sample: refused, with the reason.
    with pytest.raises(ke.LayerError, match="first axis is not the batch.*Swin"):
        ke.GradCAM(model, layer=block.attn.qkv)


def _intercept(model, layer, x):
    held = {}
    own = layer.call

    def call(*args, **kwargs):
        held["output"] = own(*args, **kwargs)
        return held["output"]

    layer.call = call
    try:
        model(tf.constant(x), training=False)
    finally:
        del layer.call
    return held["output"]


def _token_gradients(model, layer, x, target):
    """d logit[target] / d (the layer's output), intercepted by the test itself."""
    held = {}
    own = layer.call

    def call(*args, **kwargs):
        output = own(*args, **kwargs)
        tape.watch(output)
        held["output"] = output
        return output

    layer.call = call
    try:
        with tf.GradientTape() as tape:
            score = tf.reduce_sum(model(tf.constant(x), training=False)[:, target])
    finally:
        del layer.call
    return tape.gradient(score, held["output"]).numpy()


def test_gradcam_inside_a_vit_block_equals_a_tape_computation(x):
    model = model_of("vit")
    layer = _last_block("vit", model)
    for target in (0, 2):
        raw = ke.GradCAM(model, postprocess=None, resize=False).explain(x, target)
        tokens = _intercept(model, layer, x).numpy()[:, 1:]  # the class token dropped
        gradients = _token_gradients(model, layer, x, target)[:, 1:]
        expected = (gradients.mean(axis=1, keepdims=True) * tokens).sum(-1).reshape(3, 4, 4)
        np.testing.assert_allclose(raw.maps[..., 0], expected, rtol=1e-4, atol=1e-6)
        assert np.abs(expected).max() > 1e-4
    # a block given by its path, from the model's layers down
    path = f"{model.backbone.name}/vit_encoder/transformer_block_1/ln_2"
    assert ke.GradCAM(model, layer=path).layer_name == path


@pytest.mark.parametrize(
    "family", ["resnet", "efficientnet", "mobilenet", "densenet", "vgg", "mit"]
)
def test_a_cnn_is_explained_at_its_last_feature_map(family, x):
    model = model_of(family)
    explainer, layer = _auto(model)
    assert layer.reason is None and len(layer.tensor.shape) == 4
    # inside the backbone (VGG's head convolutions are spatial at 32x32 too)
    assert layer.name.startswith(model.backbone.name + "/") or family == "vgg"
    table = {info.path: info for info in ke.list_layers(model)}
    assert table[layer.name].kind == "spatial" and table[layer.name].feeds_output
    explanation = explainer.explain(x, 1)
    assert explanation.maps.shape == (3, 32, 32, 1) and np.isfinite(explanation.maps).all()


def test_efficientnet_blocks_are_composite_layers_reached_inside(x):
    model = model_of("efficientnet")
    block = next(layer for layer in model.backbone.layers if type(layer).__name__ == "MBConvBlock")
    path = f"{model.backbone.name}/{block.name}/{block.depthwise.name}"
    raw = ke.GradCAM(model, layer=path, postprocess=None, resize=False).explain(x, 2)
    features = _intercept(model, block.depthwise, x).numpy()
    gradients = _token_gradients(model, block.depthwise, x, 2)
    expected = (gradients.mean(axis=(1, 2), keepdims=True) * features).sum(-1)
    np.testing.assert_allclose(raw.maps[..., 0], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("family", ["deeplabv3", "segformer"])
def test_a_segmenter_is_explained_before_its_classifier(family, x):
    model = model_of(family)
    explainer, layer = _auto(model)
    classifier = model.output_conv if family == "deeplabv3" else model.output_segmentation_head
    assert layer.call.layer is not classifier
    assert layer.reason == f"auto: last feature map before the classifier {classifier.name!r}"
    if family == "segformer":
        assert layer.call.layer is model.dropout  # the fused features, before the classifier
    mask = np.zeros((32, 32), bool)
    mask[8:20, 4:16] = True
    target = ke.targets.Segmentation(mask, 1)
    explanation = explainer.explain(x, target)
    logits = model(x, training=False).numpy()
    np.testing.assert_allclose(explanation.scores[:, 0], logits[:, mask, 1].sum(-1), rtol=1e-5)
    # Saliency of the masked logits equals a tape gradient
    saliency = ke.Saliency(model, channel_reduction="sum", absolute=False, postprocess=None)
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        score = tf.reduce_sum(tf.boolean_mask(model(inputs, training=False)[..., 1], mask, axis=1))
    expected = tape.gradient(score, inputs).numpy().sum(-1)
    np.testing.assert_allclose(
        saliency.explain(x, target).maps[..., 0], expected, rtol=1e-4, atol=1e-5
    )


# ---------------------------------------------------------------- detector
def _decoder(model, images):
    anchors = keras.ops.concatenate(list(model.anchor_generator(images).values()), axis=0)

    def decoded(outputs):
        boxes = keras.utils.bounding_boxes.decode_deltas_to_boxes(
            anchors=anchors,
            boxes_delta=outputs["bbox_regression"],
            anchor_format=model.anchor_generator.bounding_box_format,
            box_format="yxyx",
            encoded_format="center_xywh",
            image_shape=(64, 64, 3),
        )
        return boxes, outputs["cls_logits"]

    return decoded


def test_retinanet_raw_outputs_with_a_box_target():
    model = model_of("retinanet")
    images = np.random.default_rng(5).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    decoded = _decoder(model, images)
    boxes, scores = (value.numpy() for value in decoded(model(images, training=False)))
    k = scores[:, 0].argmax(-1)  # the class of each sample's detection 0
    target = ke.targets.Box(boxes[:, 0], k, iou_threshold=0.9, detections=decoded)
    explainer, layer = _auto(model)
    # the feature-pyramid level that feeds both outputs, not a head's layer
    assert layer.reason == "auto: last spatial layer feeding every output"
    assert layer.name.startswith(model.backbone.name + "/")
    explanation = explainer.explain(images, target)
    # the matched detection is the one a numpy loop picks
    for sample in range(2):
        classes = scores[sample].argmax(-1)
        iou = _iou(boxes[sample, 0], boxes[sample])
        candidates = np.flatnonzero((classes == k[sample]) & (iou >= 0.9))
        expected = candidates[np.argmax(iou[candidates])]
        assert explanation.targets[sample, 0] == expected
        np.testing.assert_allclose(
            explanation.scores[sample, 0], scores[sample, expected, k[sample]], rtol=1e-5
        )
    assert np.isfinite(explanation.maps).all()


def _iou(box, boxes):
    low = np.maximum(box[:2], boxes[:, :2])
    high = np.minimum(box[2:], boxes[:, 2:])
    overlap = np.prod(np.clip(high - low, 0, None), axis=-1)
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=-1)
    return overlap / (np.prod(box[2:] - box[:2]) + areas - overlap)


# ------------------------------------------------------------- every method
def _background(size):
    return np.random.default_rng(4).uniform(0, 1, (2, size, size, 3)).astype("float32")


METHODS = {
    "Saliency": lambda m, s, **kw: ke.Saliency(m, **kw),
    "InputXGradient": lambda m, s, **kw: ke.InputXGradient(m, **kw),
    "IntegratedGradients": lambda m, s, **kw: ke.IntegratedGradients(m, steps=4, **kw),
    "GradientSHAP": lambda m, s, **kw: ke.GradientSHAP(m, _background(s), samples=3, seed=1, **kw),
    "GuidedBackprop": lambda m, s, **kw: ke.GuidedBackprop(m, **kw),
    "Deconvnet": lambda m, s, **kw: ke.Deconvnet(m, **kw),
    "FullGradient": lambda m, s, **kw: ke.FullGradient(m, **kw),
    "GradCAM": lambda m, s, **kw: ke.GradCAM(m, **kw),
    "GradCAMPlusPlus": lambda m, s, **kw: ke.GradCAMPlusPlus(m, **kw),
    "XGradCAM": lambda m, s, **kw: ke.XGradCAM(m, **kw),
    "HiResCAM": lambda m, s, **kw: ke.HiResCAM(m, **kw),
    "LayerCAM": lambda m, s, **kw: ke.LayerCAM(m, **kw),
    "EigenCAM": lambda m, s, **kw: ke.EigenCAM(m, **kw),
    "EigenGradCAM": lambda m, s, **kw: ke.EigenGradCAM(m, **kw),
    "ScoreCAM": lambda m, s, **kw: ke.ScoreCAM(m, max_channels=4, **kw),
    "AblationCAM": lambda m, s, **kw: ke.AblationCAM(m, channel_batch_size=8, **kw),
    "GuidedGradCAM": lambda m, s, **kw: ke.GuidedGradCAM(m, **kw),
    "CAM": lambda m, s, **kw: ke.CAM(m, **kw),
    "Occlusion": lambda m, s, **kw: ke.Occlusion(m, window=s // 4, stride=s // 4, **kw),
    "RISE": lambda m, s, **kw: ke.RISE(m, masks=8, seed=1, **kw),
    "KernelSHAP": lambda m, s, **kw: ke.KernelSHAP(m, grid=(2, 2), samples=8, seed=1, **kw),
    "LIME": lambda m, s, **kw: ke.LIME(m, grid=(2, 2), samples=8, seed=1, **kw),
    "SmoothGrad": lambda m, s, **kw: ke.SmoothGrad(ke.GradCAM(m, **kw), samples=2, seed=1),
    "TTA": lambda m, s, **kw: ke.TTA(ke.Saliency(m, **kw), flips=("horizontal",)),
}


def _target(family, images):
    if family in hub.SEGMENTERS:
        mask = np.zeros(images.shape[1:3], bool)
        mask[4:12, 4:12] = True
        return ke.targets.Segmentation(mask, 2), None
    if family == "retinanet":
        model = model_of(family)
        decoded = _decoder(model, images)
        boxes, _ = decoded(model(images, training=False))
        return ke.targets.Box(boxes.numpy()[:, 0], 0, iou_threshold=0.0, detections=decoded), None
    return 1, None


def _expected_scores(family, model, images, target):
    outputs = model(images, training=False)
    if family in hub.SEGMENTERS:
        return outputs.numpy()[:, 4:12, 4:12, 2].sum(axis=(1, 2))
    if family == "retinanet":
        return None
    return outputs.numpy()[:, 1]


CASES = [(family, name) for family in ("vit", "swin", "efficientnet") for name in METHODS]
CASES += [("segformer", name) for name in METHODS if name != "CAM"]
CASES += [
    ("retinanet", name)
    for name in (
        "GradCAM",
        "GradCAMPlusPlus",
        "ScoreCAM",
        "Saliency",
        "Occlusion",
        "SmoothGrad",
        "TTA",
    )
]
OTHERS = ("deit", "dinov2", "mit", "resnet", "mobilenet", "densenet", "vgg", "deeplabv3")
CASES += [
    (family, name)
    for family in OTHERS
    for name in ("Saliency", "GuidedBackprop", "ScoreCAM", "Occlusion", "AblationCAM")
]


@pytest.mark.parametrize(("family", "name"), CASES)
def test_every_method_runs_on_keras_hub_families(family, name):
    model = model_of(family)
    size = 64 if family == "retinanet" else 32
    images = np.random.default_rng(6).uniform(0, 1, (3, size, size, 3)).astype("float32")
    if name == "TTA" and family == "retinanet":
        with pytest.raises(ke.TargetError, match="detector's boxes"):
            METHODS[name](model, size).explain(images, _target(family, images)[0])
        return
    if name == "CAM" and family in ("vit", "swin"):
        with pytest.raises(ke.ModelStructureError, match="global average pooling"):
            METHODS[name](model, size)
        return
    explainer = METHODS[name](model, size)
    target, _ = _target(family, images)
    explanation = explainer.explain(images, target)
    assert explanation.maps.shape[:3] == (3, size, size)
    assert np.isfinite(explanation.maps).all()
    assert explanation.maps.min() >= 0.0 and explanation.maps.max() <= 1.0
    expected = _expected_scores(family, model, images, target)
    # (decorators report the mean score over their noisy or flipped copies)
    if expected is not None and name not in ("SmoothGrad", "TTA"):
        np.testing.assert_allclose(explanation.scores[:, 0], expected, rtol=1e-4, atol=1e-5)
    if family in ("vit", "efficientnet"):
        # (one family of each kind; a second run costs a second trace)
        one_by_one = METHODS[name](model, size, batch_size=1)
        np.testing.assert_allclose(
            one_by_one.explain(images, target).maps, explanation.maps, atol=1e-4
        )
