"""Invariances of the batching engine: batch size, input type, target form."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import tensorflow as tf

import keras_explainable as ke

METHODS = [ke.Saliency, ke.CAM, ke.GradCAM]


@pytest.mark.parametrize("method", METHODS)
def test_batch_size_does_not_change_maps(image_model, images, method):
    _, _, model = image_model
    reference = method(model, batch_size=7).explain(images, 1)
    for batch_size in (1, 3):
        other = method(model, batch_size=batch_size).explain(images, 1)
        np.testing.assert_allclose(other.maps, reference.maps, atol=1e-5)
        np.testing.assert_allclose(other.scores, reference.scores, rtol=1e-5)


def test_one_trace_per_signature_last_batch_included(image_model, images):
    _, _, model = image_model
    explainer = ke.GradCAM(model, batch_size=3)  # batches of 3, 3 and 1
    explainer.explain(images, 0)
    explainer.explain(images[:5], 2)
    assert explainer.trace_count == 1


@pytest.mark.parametrize("method", METHODS)
def test_numpy_tensor_and_dataset_inputs_agree(image_model, images, method):
    _, _, model = image_model
    explainer = method(model, batch_size=4)
    labels = np.array([0, 1, 2, 0, 1, 2, 0])
    reference = explainer.explain(images, labels)
    from_tensor = explainer.explain(tf.constant(images), tf.constant(labels))
    batched = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)
    from_dataset = explainer.explain(batched)
    unbatched = tf.data.Dataset.from_tensor_slices(images)
    from_unbatched = explainer.explain(unbatched, labels[0])
    for other in (from_tensor, from_dataset):
        np.testing.assert_allclose(other.maps, reference.maps, atol=1e-5)
        np.testing.assert_array_equal(other.targets, reference.targets)
    first = explainer.explain(images, labels[0])
    np.testing.assert_allclose(from_unbatched.maps, first.maps, atol=1e-5)


def test_integer_images_are_cast(image_model):
    _, _, model = image_model
    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3)).astype("uint8")
    explainer = ke.GradCAM(model, postprocess=None)
    as_uint8 = explainer.explain(pixels, 0)
    as_float = explainer.explain(pixels.astype("float32"), 0)
    np.testing.assert_allclose(as_uint8.maps, as_float.maps, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_target_forms_agree(image_model, images, method):
    _, _, model = image_model
    explainer = method(model)
    as_int = explainer.explain(images, 2)
    as_vector = explainer.explain(images, np.full(7, 2))
    as_column = explainer.explain(images, np.full((7, 1), 2))
    for other in (as_vector, as_column):
        np.testing.assert_allclose(other.maps, as_int.maps, atol=1e-6)
        np.testing.assert_array_equal(other.targets, as_int.targets)


@pytest.mark.parametrize("method", METHODS)
def test_multi_target_equals_separate_calls(image_model, images, method):
    _, _, model = image_model
    explainer = method(model)
    targets = np.array([[0, 2], [1, 0], [2, 1], [0, 1], [2, 2], [1, 1], [0, 0]])
    together = explainer.explain(images, targets)
    assert together.maps.shape == (7, 8, 8, 2)
    for column in range(2):
        alone = explainer.explain(images, targets[:, column])
        np.testing.assert_allclose(together.maps[..., column], alone.maps[..., 0], atol=1e-5)
        np.testing.assert_allclose(together.scores[:, column], alone.scores[:, 0], rtol=1e-5)
    np.testing.assert_array_equal(together.targets, targets)


def test_top_class_default(image_model, images):
    _, _, model = image_model
    predicted = model.predict(images, verbose=0).argmax(-1)
    explainer = ke.GradCAM(model)
    top = explainer.explain(images)
    np.testing.assert_array_equal(top.targets[:, 0], predicted)
    np.testing.assert_allclose(top.maps, explainer.explain(images, predicted).maps, atol=1e-6)


def test_explanation_is_array_like(image_model, images):
    _, _, model = image_model
    expl = ke.GradCAM(model)(images, 0)
    assert expl.maps.dtype == np.float32 and expl.scores.dtype == np.float32
    assert expl.targets.dtype == np.int64
    np.testing.assert_array_equal(np.asarray(expl), expl.maps)
    assert len(expl) == 7
    second = expl[1]
    np.testing.assert_array_equal(second.maps, expl.maps[1:2])
    assert expl.method == "GradCAM" and expl.layer == "features"


def test_xla_matches_default(image_model, images):
    _, _, model = image_model
    default = ke.GradCAM(model).explain(images, 1)
    compiled = ke.GradCAM(model, jit_compile=True).explain(images, 1)
    np.testing.assert_allclose(compiled.maps, default.maps, atol=1e-5)


def test_progress_bar_prints(image_model, images, capsys):
    _, _, model = image_model
    ke.GradCAM(model, batch_size=2, verbose=1).explain(images, 0)
    assert "4/4" in capsys.readouterr().out


def test_dataset_of_unknown_static_size_is_resized_to_the_input(image_model, images):
    _, _, model = image_model
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(images), output_signature=tf.TensorSpec((None, None, 3), tf.float32)
    ).batch(3)
    explainer = ke.GradCAM(model)
    expl = explainer.explain(dataset, 1)
    np.testing.assert_allclose(expl.maps, explainer.explain(images, 1).maps, atol=1e-6)


def test_attribution_notes_reach_the_report_hook_per_sample(image_model, images):
    _, _, model = image_model

    @attrs.define(eq=False)
    class Noting(ke.GradCAM):
        seen: list = attrs.field(factory=list, init=False)

        def _attribute(self, inputs, targets):
            attribution = super()._attribute(inputs, targets)
            notes = {"first_score": attribution.scores[:, 0]}
            return attribution._replace(notes=notes)

        def _report(self, notes, start):
            self.seen.append((start, notes["first_score"]))

    for batch_size, x in (
        (1, images),
        (3, images),
        (4, tf.data.Dataset.from_tensor_slices(images).batch(4)),
    ):
        explainer = Noting(model, batch_size=batch_size)
        expl = explainer.explain(x, 1)
        starts = [start for start, _ in explainer.seen]
        assert starts == sorted(starts) and starts[0] == 0
        noted = np.concatenate([values for _, values in explainer.seen])
        np.testing.assert_allclose(noted, expl.scores[:, 0], rtol=1e-6)
