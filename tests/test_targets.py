"""Target objects: Class, Segmentation, Box and Regression, against direct computations."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke
from conftest import fix_weights

RNG = np.random.default_rng(11)
IMAGES = RNG.uniform(0, 1, (5, 8, 8, 3)).astype("float32")
MASKS = np.zeros((5, 8, 8), bool)
for index, (top, left) in enumerate([(0, 0), (2, 3), (4, 4), (1, 5), (5, 1)]):
    MASKS[index, top : top + 3, left : left + 3] = True
CLASSES = np.array([0, 2, 1, 2, 0])


def make_segmenter():
    """Images (8, 8, 3) -> per-pixel softmax over 3 classes (8, 8, 3), and its logits."""
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv_a")(inputs)
    features = keras.layers.Conv2D(4, 3, padding="same", activation="tanh", name="features")(hidden)
    logits = keras.layers.Conv2D(3, 1, name="logits")(features)
    probabilities = keras.layers.Softmax(name="probabilities")(logits)
    model = fix_weights(keras.Model(inputs, probabilities), seed=5)
    return model, keras.Model(inputs, logits), keras.Model(inputs, features)


SEGMENTER, SEGMENTER_LOGITS, SEGMENTER_FEATURES = make_segmenter()


def masked_logit_sums(images, masks, classes):
    """The Segmentation score written out: sum of class k's logits over the mask."""
    logits = SEGMENTER_LOGITS(images).numpy()
    chosen = np.take_along_axis(logits, np.asarray(classes)[:, None, None, None], axis=-1)[..., 0]
    return (chosen * masks).sum(axis=(1, 2))


def reference_gradcam(images, masks, classes):
    """Grad-CAM of the masked logit sum on 'features', with a GradientTape."""
    features_model = keras.Model(SEGMENTER.inputs[0], SEGMENTER.get_layer("features").output)
    head = SEGMENTER.get_layer("logits")
    with tf.GradientTape() as tape:
        features = features_model(images)
        tape.watch(features)
        logits = head(features)
        onehot = tf.one_hot(classes, 3)[:, None, None, :]
        score = tf.reduce_sum(logits * onehot * tf.cast(masks, tf.float32)[..., None])
    gradients = tape.gradient(score, features).numpy()
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    return np.maximum((weights * features.numpy()).sum(-1), 0)


def normalised(maps):
    maps = maps - maps.min(axis=(1, 2), keepdims=True)
    return maps / np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12)


def test_segmentation_scores_and_gradcam_equal_direct_computation():
    target = ke.targets.Segmentation(MASKS, CLASSES)
    explanation = ke.GradCAM(SEGMENTER, layer="features", batch_size=2).explain(IMAGES, target)
    np.testing.assert_allclose(
        explanation.scores[:, 0], masked_logit_sums(IMAGES, MASKS, CLASSES), rtol=1e-5
    )
    np.testing.assert_array_equal(explanation.targets[:, 0], CLASSES)
    expected = normalised(reference_gradcam(IMAGES, MASKS, CLASSES))
    np.testing.assert_allclose(explanation.maps[..., 0], expected, atol=1e-5)


def test_segmentation_saliency_equals_the_tape_gradient():
    target = ke.targets.Segmentation(MASKS, CLASSES)
    explanation = ke.Saliency(SEGMENTER, postprocess=None).explain(IMAGES, target)
    images = tf.constant(IMAGES)
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = SEGMENTER_LOGITS(images)
        onehot = tf.one_hot(CLASSES, 3)[:, None, None, :]
        score = tf.reduce_sum(logits * onehot * MASKS[..., None])
    expected = np.abs(tape.gradient(score, images).numpy()).max(axis=-1)
    np.testing.assert_allclose(explanation.maps[..., 0], expected, rtol=1e-4, atol=1e-7)


def test_segmentation_mask_forms_agree():
    shared = MASKS[1]
    one = ke.targets.Segmentation(shared, 2)
    stacked = ke.targets.Segmentation(np.repeat(shared[None], 5, axis=0), np.full(5, 2))
    weights = ke.targets.Segmentation(shared.astype("float32"), 2)
    explainer = ke.GradCAM(SEGMENTER, layer="features")
    reference = explainer.explain(IMAGES, one)
    for other in (stacked, weights):
        result = explainer.explain(IMAGES, other)
        np.testing.assert_allclose(result.maps, reference.maps, atol=1e-6)
        np.testing.assert_allclose(result.scores, reference.scores, rtol=1e-6)
    everything = explainer.explain(IMAGES, ke.targets.Segmentation(None, 2))
    np.testing.assert_allclose(
        everything.scores[:, 0],
        masked_logit_sums(IMAGES, np.ones((5, 8, 8)), np.full(5, 2)),
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: ke.GradCAM(SEGMENTER, layer="features"),
        lambda: ke.Saliency(SEGMENTER),
        lambda: ke.SmoothGrad(ke.Saliency(SEGMENTER), samples=3, seed=1),
        lambda: ke.TTA(ke.GradCAM(SEGMENTER, layer="features"), flips=("horizontal",)),
        lambda: ke.ScoreCAM(SEGMENTER, layer="features", mask_batch_size=3),
        lambda: ke.Occlusion(SEGMENTER, window=3, stride=2),
        lambda: ke.KernelSHAP(SEGMENTER, grid=(2, 2), samples=14),
        lambda: ke.IntegratedGradients(SEGMENTER, steps=8),
    ],
    ids=["GradCAM", "Saliency", "SmoothGrad", "TTA", "ScoreCAM", "Occlusion", "KernelSHAP", "IG"],
)
def test_per_sample_masks_follow_their_samples(build, tmp_path):
    """Batch size, a last batch of one, datasets and files do not move masks between samples."""
    target = ke.targets.Segmentation(MASKS, CLASSES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ke.CompletenessWarning)
        reference = build().explain(IMAGES, target)
        one_by_one = np.concatenate(
            [
                build()
                .explain(IMAGES[i : i + 1], ke.targets.Segmentation(MASKS[i], CLASSES[i]))
                .maps
                for i in range(5)
            ]
        )
        np.testing.assert_allclose(one_by_one, reference.maps, atol=1e-5)
        explainer = build()
        explainer.batch_size = 2
        np.testing.assert_allclose(
            explainer.explain(IMAGES, target).maps, reference.maps, atol=1e-5
        )
        dataset = tf.data.Dataset.from_tensor_slices(IMAGES).batch(3)
        np.testing.assert_allclose(build().explain(dataset, target).maps, reference.maps, atol=1e-5)
        on_disk = build().explain_to_disk(IMAGES, tmp_path / "run", target)
    np.testing.assert_allclose(np.asarray(on_disk.maps), reference.maps, atol=1e-6)
    if not isinstance(build(), ke.Decorator):
        # A decorator's scores are the mean over its noisy or augmented copies.
        np.testing.assert_allclose(
            reference.scores[:, 0], masked_logit_sums(IMAGES, MASKS, CLASSES), rtol=1e-4
        )


def test_tta_flips_the_segmentation_map_back_before_the_mask_reads_it():
    """A horizontal flip's pass explains the same pixels: TTA's scores equal the clean ones."""
    target = ke.targets.Segmentation(MASKS, CLASSES)
    tta = ke.TTA(ke.GradCAM(SEGMENTER, layer="features"), flips=("horizontal", "vertical"))
    explanation = tta.explain(IMAGES, target)
    flipped_model_scores = [
        masked_logit_sums(IMAGES[:, ::-1], MASKS[:, ::-1], CLASSES),
        masked_logit_sums(IMAGES[:, :, ::-1], MASKS[:, :, ::-1], CLASSES),
    ]
    expected = (masked_logit_sums(IMAGES, MASKS, CLASSES) + sum(flipped_model_scores)) / 3
    np.testing.assert_allclose(explanation.scores[:, 0], expected, rtol=1e-4)
    with pytest.raises(ValueError, match="Use scales="):
        ke.TTA(ke.Saliency(make_fully_convolutional()), scales=(1.0, 0.5)).explain(
            IMAGES, ke.targets.Segmentation(None, 0)
        )


def make_fully_convolutional():
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    return fix_weights(keras.Model(inputs, outputs), seed=1)


def test_dataset_longer_than_the_per_sample_masks_is_refused():
    dataset = tf.data.Dataset.from_tensor_slices(np.concatenate([IMAGES, IMAGES])).batch(4)
    with pytest.raises(ke.InputError, match="more samples than the 5 rows"):
        ke.GradCAM(SEGMENTER, layer="features").explain(dataset, ke.targets.Segmentation(MASKS, 1))


@pytest.mark.parametrize(
    "target, match",
    [
        (ke.targets.Segmentation(MASKS[:, :4], 1), r"does not fit the output \(N, 8, 8, 3\)"),
        (ke.targets.Segmentation(MASKS[:3], 1), "3 masks for 5 inputs"),
        (ke.targets.Segmentation(MASKS, 3), "class 3 is out of range: the output has 3"),
        (ke.targets.Segmentation(np.zeros((8, 8), bool), 1), "mask is empty"),
        (ke.targets.Segmentation(MASKS, np.array([0, 1])), "2 classes for 5 inputs"),
        (ke.targets.Box([0, 0, 4, 4], 1), "Box needs a detector's outputs"),
        (ke.targets.Regression(), r"Regression needs an output \(N,\) or \(N, K\)"),
    ],
)
def test_targets_that_do_not_fit_the_segmenter_fail_before_any_work(target, match):
    explainer = ke.GradCAM(SEGMENTER, layer="features")
    with pytest.raises(ke.TargetError, match=match):
        explainer.explain(IMAGES, target)
    assert explainer.trace_count == 0


def test_segmentation_on_a_classifier_says_what_was_expected(image_model, images):
    explainer = ke.GradCAM(image_model[2])
    with pytest.raises(ke.TargetError, match=r"outputs \(N, 3\). For a classifier pass a class"):
        explainer.explain(images, ke.targets.Segmentation(None, 1))
    assert explainer.trace_count == 0


def test_bad_target_arguments():
    with pytest.raises(TypeError, match="boolean or numeric"):
        ke.targets.Segmentation(np.array(["a"]), 1)
    with pytest.raises(TypeError, match="one per sample"):
        ke.targets.Segmentation(None, 1.5)
    with pytest.raises(ke.TargetError, match=">= 0"):
        ke.targets.Segmentation(None, -1)
    with pytest.raises(ke.TargetError, match=r"\(4,\) for every sample or \(N, 4\)"):
        ke.targets.Box([1, 2, 3])
    with pytest.raises(ke.TargetError, match="a2 > a1"):
        ke.targets.Box([5, 0, 1, 4])
    with pytest.raises(ValueError, match="iou_threshold"):
        ke.targets.Box([0, 0, 1, 1], iou_threshold=1.5)
    with pytest.raises(ValueError, match="sign"):
        ke.targets.Regression(sign=2)
    with pytest.raises(TypeError, match="index"):
        ke.targets.Regression(index=-1)
    with pytest.raises(TypeError, match="bool"):
        ke.targets.Class(True)


# ----------------------------------------------------------------- detection
DETECTIONS, CLASS_COUNT = 6, 3


def make_detector(layout):
    """A tiny detector: 6 boxes (sigmoid corners sorted into valid boxes) and class scores."""
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    pooled = keras.layers.Flatten()(keras.layers.AveragePooling2D(4)(features))
    corners = keras.layers.Reshape((DETECTIONS, 2, 2))(
        keras.layers.Dense(DETECTIONS * 4, activation="sigmoid")(pooled)
    )
    low = keras.layers.Lambda(lambda c: tf.reduce_min(c, axis=2))(corners)
    high = keras.layers.Lambda(lambda c: tf.reduce_max(c, axis=2) + 0.05)(corners)
    boxes = keras.layers.Concatenate(name="boxes")([low, high])  # (N, D, 4): a1, b1, a2, b2
    scores = keras.layers.Reshape((DETECTIONS, CLASS_COUNT), name="scores")(
        keras.layers.Dense(DETECTIONS * CLASS_COUNT, activation="softmax")(pooled)
    )
    if layout == "dict":
        outputs = {"boxes": boxes, "classes": scores}
    elif layout == "tuple":
        outputs = [boxes, scores]
    else:
        outputs = keras.layers.Concatenate(name="packed")([boxes, scores])
    return fix_weights(keras.Model(inputs, outputs), seed=8, scale=1.0)


def iou(box, boxes):
    low = np.maximum(box[:2], boxes[:, :2])
    high = np.minimum(box[2:], boxes[:, 2:])
    overlap = np.prod(np.clip(high - low, 0, None), axis=-1)
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)
    return overlap / (np.prod(box[2:] - box[:2]) + areas - overlap)


def matched(boxes, scores, box, k, threshold):
    """The matched detection of one sample, written out: (index or -1, score)."""
    best, best_iou = -1, -1.0
    for index in range(len(boxes)):
        overlap = iou(box, boxes[index : index + 1])[0]
        if scores[index].argmax() == k and overlap >= threshold and overlap > best_iou:
            best, best_iou = index, overlap
    return best, (scores[best, k] if best >= 0 else 0.0)


@pytest.mark.parametrize("layout", ["dict", "tuple", "packed"])
def test_box_target_picks_the_best_overlapping_detection_of_the_class(layout):
    detector = make_detector(layout)
    outputs = detector.predict(IMAGES, verbose=0)
    if layout == "dict":
        boxes, scores = outputs["boxes"], outputs["classes"]
    elif layout == "tuple":
        boxes, scores = outputs
    else:
        boxes, scores = outputs[..., :4], outputs[..., 4:]
    # One box per sample: the first detection's own box, shifted a little.
    query = boxes[:, 0] + 0.02
    k = scores[:, 0].argmax(-1)
    target = ke.targets.Box(query, k, iou_threshold=0.3)
    explanation = ke.GradCAM(detector, layer="features", batch_size=2).explain(IMAGES, target)
    expected = [matched(boxes[n], scores[n], query[n], k[n], 0.3) for n in range(5)]
    np.testing.assert_array_equal(explanation.targets[:, 0], [index for index, _ in expected])
    np.testing.assert_allclose(explanation.scores[:, 0], [s for _, s in expected], rtol=1e-5)
    assert (explanation.targets[:, 0] >= 0).all()


def test_box_saliency_is_the_gradient_of_the_matched_score():
    detector = make_detector("dict")
    outputs = detector.predict(IMAGES, verbose=0)
    query = outputs["boxes"][:, 2]
    k = outputs["classes"][:, 2].argmax(-1)
    explanation = ke.Saliency(detector, postprocess=None).explain(
        IMAGES, ke.targets.Box(query, k, iou_threshold=0.9)
    )
    chosen = explanation.targets[:, 0]
    assert (chosen >= 0).all()
    images = tf.constant(IMAGES)
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = detector(images)["classes"]
        picked = tf.gather(scores, chosen, axis=1, batch_dims=1)
        score = tf.reduce_sum(tf.gather(picked, k, axis=1, batch_dims=1))
    expected = np.abs(tape.gradient(score, images).numpy()).max(-1)
    np.testing.assert_allclose(explanation.maps[..., 0], expected, rtol=1e-4, atol=1e-8)


def test_box_without_a_matching_detection_warns_and_scores_zero():
    detector = make_detector("dict")
    with pytest.warns(ke.targets.NoDetectionWarning, match="5 sample"):
        explanation = ke.GradCAM(detector, layer="features").explain(
            IMAGES, ke.targets.Box([50, 50, 60, 60], 0)
        )
    assert (explanation.targets == -1).all()
    assert (explanation.scores == 0).all()


def test_detector_outputs_need_a_target_that_reads_them_all():
    detector = make_detector("dict")
    # Chosen automatically, the layer feeds both outputs (the shared backbone's
    # last spatial layer), not the box branch's reshape of rank 4.
    assert ke.GradCAM(detector).layer_name.startswith("average_pooling2d")
    explainer = ke.GradCAM(detector, layer="features")
    with pytest.raises(ke.ModelStructureError, match=r"2 outputs \['boxes', 'classes'\]"):
        explainer.explain(IMAGES, 1)
    with pytest.raises(ke.ModelStructureError, match="Regression explains one"):
        explainer.explain(IMAGES, ke.targets.Regression())
    with pytest.raises(ke.TargetError, match=r"class 3 is out of range: the detector scores 3"):
        explainer.explain(IMAGES, ke.targets.Box([0, 0, 1, 1], 3))
    with pytest.raises(ke.TargetError, match="2 boxes for 5 inputs"):
        explainer.explain(IMAGES, ke.targets.Box(np.tile([[0, 0, 1, 1]], (2, 1)), 0))
    assert explainer.trace_count == 0
    # A flipped image moves the detections: TTA would explain the mirror-image one.
    tta = ke.TTA(explainer, flips=("horizontal",))
    with pytest.raises(ke.TargetError, match="TTA flips and rescales the image.*detector's boxes"):
        tta.explain(IMAGES, ke.targets.Box([0, 0, 4, 4], 1))
    assert tta.trace_count == 0


# ---------------------------------------------------------------- regression
def make_regressor():
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, name="values")(pooled)
    return fix_weights(keras.Model(inputs, outputs), seed=9)


def test_regression_and_its_decrease():
    model = make_regressor()
    values = model.predict(IMAGES, verbose=0)
    options = {"postprocess": None, "absolute": False, "channel_reduction": "sum"}
    up = ke.Saliency(model, **options).explain(IMAGES, ke.targets.Regression(1))
    down = ke.Saliency(model, **options).explain(IMAGES, ke.targets.Regression(1, sign=-1))
    np.testing.assert_allclose(up.scores[:, 0], values[:, 1], rtol=1e-5)
    np.testing.assert_allclose(down.scores[:, 0], -values[:, 1], rtol=1e-5)
    np.testing.assert_array_equal(up.targets, np.ones((5, 1)))
    images = tf.constant(IMAGES)
    with tf.GradientTape() as tape:
        tape.watch(images)
        score = tf.reduce_sum(model(images)[:, 1])
    gradient = tape.gradient(score, images).numpy().sum(-1)
    np.testing.assert_allclose(up.maps[..., 0], gradient, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(down.maps[..., 0], -gradient, rtol=1e-4, atol=1e-7)
    with pytest.raises(ke.TargetError, match="index 2 is out of range"):
        ke.GradCAM(model).explain(IMAGES, ke.targets.Regression(2))


def test_regression_of_a_single_output_by_occlusion():
    inputs = keras.Input((6, 1))
    dense = keras.layers.Dense(1)
    model = fix_weights(keras.Model(inputs, dense(keras.layers.Flatten()(inputs))), seed=2)
    x = RNG.normal(size=(4, 6, 1)).astype("float32")
    kernel, bias = dense.get_weights()
    occlusion = ke.Occlusion(model, window=1, postprocess=None)
    result = occlusion.explain(x, ke.targets.Regression(sign=-1))
    np.testing.assert_allclose(result.scores[:, 0], -(x[..., 0] @ kernel + bias)[:, 0], rtol=1e-5)
    # Zeroing feature i changes the decrease -f by x_i w_i: its drop is -x_i w_i.
    np.testing.assert_allclose(result.maps[..., 0], -(x[..., 0] * kernel[:, 0]), atol=1e-5)


def test_class_target_equals_unit_indices(image_model, images):
    explainer = ke.GradCAM(image_model[2])
    labels = np.array([0, 1, 2, 2, 1, 0, 1])
    for y, target in ((2, ke.targets.Class(2)), (labels, ke.targets.Class(labels))):
        expected = explainer.explain(images, y)
        result = explainer.explain(images, target)
        np.testing.assert_array_equal(result.maps, expected.maps)
        np.testing.assert_array_equal(result.targets, expected.targets)


def test_a_target_of_ones_own(image_model, images):
    class MeanOf(ke.targets.Target):
        def scores(self, outputs, data):
            return (outputs[:, 0:1] + outputs[:, 2:3]) / 2

    explainer = ke.Saliency(image_model[2])
    result = explainer.explain(images, MeanOf())
    expected = explainer.explain(images, lambda outputs: (outputs[:, 0] + outputs[:, 2]) / 2)
    np.testing.assert_allclose(result.maps, expected.maps, atol=1e-6)
    assert (result.targets == -1).all()


def test_box_units_are_those_of_the_clean_input_whatever_the_method_perturbs():
    """Perturbed copies match detections again; the recorded detection is the input's own."""
    detector = make_detector("tuple")
    boxes, scores = detector.predict(IMAGES, verbose=0)
    target = ke.targets.Box(boxes[:, 3], scores[:, 3].argmax(-1), iou_threshold=0.9)
    clean = ke.Saliency(detector).explain(IMAGES, target).targets
    assert (clean >= 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ke.targets.NoDetectionWarning)
        for explainer in (
            ke.SmoothGrad(ke.Saliency(detector), samples=4, noise=0.3, seed=2),
            ke.Occlusion(detector, window=4),
            ke.KernelSHAP(detector, grid=(2, 2), samples=20),
            ke.IntegratedGradients(detector, steps=4),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ke.CompletenessWarning)
                got = explainer.explain(IMAGES, target).targets
            np.testing.assert_array_equal(got, clean, err_msg=explainer.method_name)


@pytest.mark.parametrize(
    "build",
    [
        lambda model, **kw: ke.ScoreCAM(model, layer="features", **kw),
        lambda model, **kw: ke.RISE(model, masks=40, cell_size=4, seed=3, **kw),
    ],
    ids=["ScoreCAM", "RISE"],
)
def test_probability_scoring_methods_score_a_regression_on_its_values(build):
    """A softmax of one regression output is 1 whatever the input: the values are scored."""
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    value = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(features))
    model = fix_weights(keras.Model(inputs, value), seed=12)
    result = build(model, postprocess=None).explain(IMAGES, ke.targets.Regression())
    on_values = build(model, postprocess=None, use_probabilities=False).explain(
        IMAGES, ke.targets.Regression()
    )
    np.testing.assert_allclose(result.maps, on_values.maps, atol=1e-6)
    assert (result.maps.reshape(5, -1).std(axis=1) > 1e-3).all()


def test_a_single_logit_is_scored_by_its_sigmoid():
    """Score-CAM and RISE on a binary classifier of one logit equal the same with a sigmoid."""
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    logit = keras.layers.Dense(1, name="logit")
    logits_model = fix_weights(keras.Model(inputs, logit(pooled)), seed=13)
    sigmoid_model = keras.Model(inputs, keras.layers.Activation("sigmoid")(logit(pooled)))
    for build in (
        lambda model: ke.ScoreCAM(model, layer="features", postprocess=None),
        lambda model: ke.RISE(model, masks=40, cell_size=4, seed=3, postprocess=None),
    ):
        on_logit = build(logits_model).explain(IMAGES, 0)
        on_sigmoid = build(sigmoid_model).explain(IMAGES, 0)
        np.testing.assert_allclose(on_logit.maps, on_sigmoid.maps, atol=1e-6)
        assert (on_logit.maps.reshape(5, -1).std(axis=1) > 1e-6).all()


def test_metrics_take_target_objects_with_per_sample_data():
    """Deletion on Segmentation masks, batched, equals each image alone with its mask."""
    explainer = ke.GradCAM(SEGMENTER, layer="features")
    deletion = ke.metrics.Deletion(steps=6, batch_size=2, verbose=0)
    target = ke.targets.Segmentation(MASKS, CLASSES)
    batched = deletion(explainer, IMAGES, target).values
    alone = [
        deletion(explainer, IMAGES[i : i + 1], ke.targets.Segmentation(MASKS[i], CLASSES[i])).values
        for i in range(5)
    ]
    np.testing.assert_allclose(batched, np.concatenate(alone), rtol=1e-5, atol=1e-6)
    # Ready-made maps with model=: the same scores.
    maps = explainer.explain(IMAGES, target)
    from_maps = deletion(maps, IMAGES, target, model=SEGMENTER).values
    np.testing.assert_allclose(from_maps, batched, rtol=1e-5, atol=1e-6)


def test_metrics_score_a_regression_on_its_values():
    model = make_regressor()
    explainer = ke.Saliency(model)
    deletion = ke.metrics.Deletion(steps=6, verbose=0)
    by_target = deletion(explainer, IMAGES, ke.targets.Regression(1, sign=-1)).values
    on_values = ke.metrics.Deletion(steps=6, verbose=0, use_probabilities=False)
    by_callable = on_values(ke.Saliency(model), IMAGES, lambda outputs: -outputs[:, 1]).values
    np.testing.assert_allclose(by_target, by_callable, rtol=1e-5, atol=1e-6)
