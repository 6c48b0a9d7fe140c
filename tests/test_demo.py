"""The synthetic shapes generator, its ground truth, and the bundled model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import keras_explainable as ke
from keras_explainable import demo
from keras_explainable.demo.train import build_model


@pytest.fixture(scope="module")
def clean():
    """Images without pixel noise: objects are painted in exactly their colour."""
    return demo.make_shapes(40, seed=11, noise=0.0)


@pytest.fixture(scope="module")
def model():
    return demo.load_demo_model()


def test_same_seed_same_images_and_prefix_property():
    first = demo.make_shapes(6, seed=3)
    second = demo.make_shapes(6, seed=3)
    for name in ("images", "labels", "object_labels", "object_masks", "object_boxes"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    # image i depends only on (seed, i)
    np.testing.assert_array_equal(demo.make_shapes(3, seed=3).images, first.images[:3])
    other = demo.make_shapes(6, seed=4)
    assert not np.array_equal(other.images, first.images)


def test_shapes_dtypes_ranges_and_shapes():
    data = demo.make_shapes(5, size=48, seed=0, max_objects=2)
    assert data.images.shape == (5, 48, 48, 3) and data.images.dtype == np.float32
    assert data.images.min() >= 0.0 and data.images.max() <= 1.0
    assert data.labels.shape == (5,) and data.labels.dtype == np.int64
    assert data.masks.shape == (5, 48, 48) and data.masks.dtype == bool
    assert data.boxes.shape == (5, 4)
    assert data.object_masks.shape == (5, 2, 48, 48)
    assert len(data) == 5 and len(data[1:3]) == 2
    np.testing.assert_array_equal(data[2].images[0], data.images[2])


def test_mask_pixels_are_exactly_the_objects_pixels(clean):
    objects = (clean.object_labels, clean.object_masks, clean.object_colors)
    for image, labels, masks, colors in zip(clean.images, *objects, strict=True):
        for label, mask, color in zip(labels, masks, colors, strict=True):
            if label < 0:
                assert not mask.any()
                continue
            painted = np.all(image == color, axis=-1)
            # every pixel of the object has its colour, and no other pixel has it
            np.testing.assert_array_equal(painted, mask)
            np.testing.assert_allclose(color, demo.CLASS_COLORS[label], atol=0.061)


def test_noise_keeps_object_pixels_near_their_colour():
    data = demo.make_shapes(20, seed=11)
    for image, mask, color in zip(data.images, data.masks, data.object_colors[:, 0], strict=True):
        difference = np.abs(image[mask] - color)
        assert difference.mean() < 0.03 and difference.max() < 0.2


def test_labels_main_object_is_largest_and_objects_do_not_overlap(clean):
    np.testing.assert_array_equal(clean.labels, clean.object_labels[:, 0])
    areas = clean.object_masks.sum(axis=(2, 3))
    assert (areas[:, 0] > 1.5 * areas[:, 1:].max(axis=1)).all()
    assert clean.object_masks.sum(axis=1).max() == 1
    present = clean.object_labels >= 0
    assert present[:, 0].all()
    np.testing.assert_array_equal(present, areas > 0)
    assert (present.sum(axis=1) > 1).any()


def test_boxes_are_tight_around_masks(clean):
    for masks, boxes in zip(clean.object_masks, clean.object_boxes, strict=True):
        for mask, (y0, x0, y1, x1) in zip(masks, boxes, strict=True):
            if not mask.any():
                assert (y0, x0, y1, x1) == (0, 0, 0, 0)
                continue
            assert mask[y0:y1, x0:x1].sum() == mask.sum()
            assert mask[y0].any() and mask[y1 - 1].any()
            assert mask[:, x0].any() and mask[:, x1 - 1].any()


def test_every_class_appears():
    labels = demo.make_shapes(100, seed=5).labels
    np.testing.assert_array_equal(np.unique(labels), np.arange(len(demo.CLASS_NAMES)))


def test_make_shapes_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_objects"):
        demo.make_shapes(2, max_objects=0)
    with pytest.raises(ValueError, match="size"):
        demo.make_shapes(2, size=8)


def test_bundled_model_accuracy_on_fresh_images(model):
    data = demo.make_shapes(200, seed=999)  # training used seed 0, validation 1
    predictions = model.predict(data.images, batch_size=100, verbose=0).argmax(-1)
    assert (predictions == data.labels).mean() >= 0.95


def test_bundled_model_is_small_and_camable(model):
    path = Path(demo.__file__).with_name(demo.MODEL_FILE)
    assert path.stat().st_size < 2_000_000
    assert model.input_shape == (None, 64, 64, 3)
    assert model.output_shape == (None, len(demo.CLASS_NAMES))
    assert model.count_params() == build_model().count_params()
    data = demo.make_shapes(32, seed=21)
    expl = ke.CAM(model, verbose=0).explain(data.images, data.labels)
    assert expl.layer == "conv4"
    assert ke.metrics.PointingGame(verbose=0)(expl, masks=data.masks).mean >= 0.9
