"""Overlays and figure grids: dtypes, shapes, ranges and blending arithmetic."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from PIL import Image

from keras_explainable import Explanation
from keras_explainable.plot import overlay, plot_grid, series

JET = matplotlib.colormaps["jet"]


def _images(n=2, size=8, seed=0):
    shape = (n, size, size, 3)
    return np.random.default_rng(seed).uniform(0, 1, shape).astype("float32")


def _maps(n=2, size=8, targets=1, seed=1):
    maps = np.random.default_rng(seed).uniform(0, 1, (n, size, size, targets))
    return maps.astype("float32")


def _explanation(n=2, size=8, targets=1, method="GradCAM"):
    scores = np.arange(n * targets, dtype="float32").reshape(n, targets) + 0.5
    units = np.tile(np.arange(targets), (n, 1)).astype("int64")
    return Explanation(_maps(n, size, targets), scores, units, method=method)


def test_alpha_zero_returns_the_image_for_every_input_kind():
    images = _images()
    expected = np.rint(images * 255).astype(np.uint8)
    maps = _maps()
    np.testing.assert_array_equal(overlay(images, maps, alpha=0.0), expected)
    # uint8 images come back unchanged
    np.testing.assert_array_equal(overlay(expected, maps, alpha=0.0), expected)
    # float images in [0, 255]
    np.testing.assert_array_equal(overlay(images * 255, maps, alpha=0.0), expected)
    # grayscale (H, W) and (H, W, 1): gray replicated to RGB
    gray = expected[0, ..., 0]
    single = overlay(gray, maps[0], alpha=0.0)
    assert single.shape == (8, 8, 3)
    np.testing.assert_array_equal(single, np.repeat(gray[..., None], 3, axis=-1))
    gray_channel = overlay(gray[..., None], maps[0, ..., 0], alpha=0.0)
    np.testing.assert_array_equal(gray_channel, single)
    # RGBA: alpha channel dropped
    rgba = np.concatenate([expected, np.full((2, 8, 8, 1), 7, np.uint8)], axis=-1)
    np.testing.assert_array_equal(overlay(rgba, maps, alpha=0.0), expected)


def test_alpha_one_returns_the_coloured_map_and_blend_is_linear():
    images, maps = _images(), _maps()
    colored = JET(maps[..., 0])[..., :3]
    np.testing.assert_array_equal(
        overlay(images, maps, alpha=1.0), np.rint(colored * 255).astype(np.uint8)
    )
    blended = overlay(images, maps, alpha=0.4)
    expected = np.rint((0.6 * images + 0.4 * colored) * 255)
    assert blended.dtype == np.uint8 and blended.shape == (2, 8, 8, 3)
    np.testing.assert_array_equal(blended, expected.astype(np.uint8))


def test_maps_are_resized_and_target_axis_selected():
    images = _images(n=3, size=16)
    maps = _maps(n=3, size=4, targets=2)
    out = overlay(images, maps, target=1)
    assert out.shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(out, overlay(images, maps[..., 1]))
    # a constant map stays constant after resizing: cmap(0.25) everywhere
    constant = np.full((3, 5, 5), 0.25, np.float32)
    color = np.asarray(JET(0.25)[:3])
    expected = np.rint((0.5 * images + 0.5 * color) * 255).astype(np.uint8)
    np.testing.assert_array_equal(overlay(images, constant, alpha=0.5), expected)
    # one image with batch-shaped maps (1, h, w, L)
    assert overlay(images[0], maps[:1]).shape == (16, 16, 3)


def test_maps_outside_unit_range_are_min_max_scaled():
    images = _images()
    maps = _maps()[..., 0]
    maps[:, 0, 0], maps[:, 0, 1] = 0.0, 1.0  # exactly spans [0, 1]
    np.testing.assert_array_equal(overlay(images, maps * 10 - 3), overlay(images, maps))


def test_overlay_rejects_bad_input():
    images, maps = _images(), _maps()
    with pytest.raises(ValueError, match="alpha"):
        overlay(images, maps, alpha=1.5)
    with pytest.raises(ValueError, match="2 images"):
        overlay(images, maps[:1])
    with pytest.raises(ValueError, match="out of range"):
        overlay(images, maps, target=3)
    with pytest.raises(ValueError, match="single image"):
        overlay(np.zeros((8, 8, 5)), maps[0])
    with pytest.raises(ValueError, match="colormap"):
        overlay(images, maps, cmap="no-such-map")


def test_explanation_overlay_delegates():
    expl = _explanation(targets=2)
    images = _images()
    np.testing.assert_array_equal(
        expl.overlay(images, target=1, alpha=0.3),
        overlay(images, expl.maps[..., 1], alpha=0.3),
    )


def test_plot_grid_saves_png_with_titles(tmp_path):
    images = _images(n=3, size=8)
    explanations = {
        "Grad-CAM": _explanation(n=3),
        "CAM": _explanation(n=3, method="CAM"),
    }
    path = tmp_path / "grid.png"
    figure = plot_grid(
        images,
        explanations,
        path,
        class_names=["cat", "dog"],
        image_titles=["a", "b", "c"],
        cell_size=1.0,
        dpi=50,
    )
    axes = figure.axes
    assert len(axes) == 3 * 3
    titles = [axis.get_title() for axis in axes]
    assert titles[:3] == ["a", "Grad-CAM\ncat 0.50", "CAM\ncat 0.50"]
    assert titles[3:6] == ["b", "Grad-CAM\ncat 1.50", "CAM\ncat 1.50"]
    with Image.open(path) as saved:
        assert saved.format == "PNG"
        assert saved.size == (150, 180)  # 3 columns x 1 inch, 3 rows x 1.2 inch, 50 dpi


def test_plot_grid_columns_from_targets_or_list():
    images = _images(n=2)
    by_target = plot_grid(images, _explanation(n=2, targets=3))
    assert len(by_target.axes) == 2 * 4
    assert by_target.axes[3].get_title() == "GradCAM\nclass 2 2.50"
    from_list = plot_grid(images, [_explanation(n=2), _explanation(n=2, method="CAM")])
    assert [a.get_title().split("\n")[0] for a in from_list.axes[:3]] == [
        "image",
        "GradCAM",
        "CAM",
    ]
    with pytest.raises(ValueError, match="3 maps for 2 images"):
        plot_grid(images, {"x": _explanation(n=3)})
    with pytest.raises(TypeError, match="explanations"):
        plot_grid(images, 5)


# ---------------------------------------------------------------- series
VIRIDIS = matplotlib.colormaps["viridis"]


def _series(n=2, steps=10, channels=3, seed=2):
    return np.random.default_rng(seed).normal(size=(n, steps, channels)).astype("float32")


def _band_colours(axis):
    """The RGB colour of each time step's cell in a panel's band."""
    image = axis.get_images()[0]
    return image.to_rgba(image.get_array())[0, :, :3]


def test_series_draws_one_panel_per_channel_with_the_line():
    x = _series()
    figure = series(x, np.zeros((2, 10, 1), "float32"), index=1)
    axes = figure.get_axes()
    assert len(axes) == 3
    for channel, axis in enumerate(axes):
        np.testing.assert_array_equal(axis.get_lines()[0].get_ydata(), x[1, :, channel])
        assert axis.get_ylabel() == f"channel {channel}"
    univariate = series(x[0, :, 0], np.linspace(0, 1, 10, dtype="float32"))
    assert len(univariate.get_axes()) == 1


def test_series_band_colours_follow_the_attribution():
    x = _series()
    maps = np.zeros((2, 10, 2), "float32")
    maps[1, 6, 1] = 1.0  # sample 1, target 1: all the attribution at step 6
    maps[1, 2, 1] = 0.5
    figure = series(x, maps, index=1, target=1, cmap="viridis")
    for axis in figure.get_axes():  # one map per step: every channel's band alike
        colours = _band_colours(axis)
        np.testing.assert_allclose(colours[6], VIRIDIS(1.0)[:3])
        np.testing.assert_allclose(colours[2], VIRIDIS(0.5)[:3])
        np.testing.assert_allclose(colours[0], VIRIDIS(0.0)[:3])


def test_series_per_channel_maps_give_each_channel_its_band():
    x = _series()
    maps = np.zeros((2, 10, 3, 1), "float32")
    for channel in range(3):
        maps[0, 3 * channel, channel, 0] = 1.0
    figure = series(x, maps, channel_names=["a", "b", "c"], cmap="viridis")
    for channel, axis in enumerate(figure.get_axes()):
        is_top = np.all(np.isclose(_band_colours(axis), VIRIDIS(1.0)[:3]), axis=-1)
        assert np.flatnonzero(is_top).tolist() == [3 * channel]
        assert axis.get_ylabel() == "abc"[channel]


def test_series_scales_raw_maps_over_all_channels_together():
    x = _series(n=1, channels=2)
    maps = np.zeros((1, 10, 2, 1), "float32")
    maps[0, 4, 0, 0] = -3.0  # raw, signed: min-max scaled jointly
    maps[0, 5, 1, 0] = 3.0
    first, second = series(x, maps, cmap=VIRIDIS).get_axes()
    np.testing.assert_allclose(_band_colours(first)[4], VIRIDIS(0.0)[:3])
    np.testing.assert_allclose(_band_colours(first)[0], VIRIDIS(0.5)[:3], atol=0.01)
    np.testing.assert_allclose(_band_colours(second)[5], VIRIDIS(1.0)[:3])


def test_series_takes_an_explanation_and_titles_it(tmp_path):
    x = _series()
    maps = np.random.default_rng(3).uniform(size=(2, 10, 3, 1)).astype("float32")
    scores = np.array([[1.5], [2.25]], "float32")
    expl = Explanation(maps, scores, np.array([[0], [4]]), method="Saliency")
    figure = series(x, expl, tmp_path / "series.png", index=-1)
    assert figure.texts[0].get_text() == "Saliency: class 4 2.25"
    assert Image.open(tmp_path / "series.png").size[0] > 0
    # One series with the explanation of its batch.
    one = series(x[1], expl, index=1, title="")
    assert len(one.get_axes()) == 3 and not one.texts


def test_series_is_reached_from_the_package():
    import keras_explainable as ke

    assert ke.plot.series is series


def test_series_rejects_shapes_that_do_not_match():
    x = _series()
    with pytest.raises(ValueError, match="8 time steps and the series 10"):
        series(x, np.zeros((2, 8, 1), "float32"))
    with pytest.raises(ValueError, match="2 channels and the series 3"):
        series(x, np.zeros((2, 10, 2, 1), "float32"))
    with pytest.raises(ValueError, match="3 maps for 2 series"):
        series(x, np.zeros((3, 10, 1), "float32"))
    with pytest.raises(ValueError, match="index=2 is out of range"):
        series(x, np.zeros((2, 10, 1), "float32"), index=2)
    with pytest.raises(ValueError, match="target=1 is out of range"):
        series(x, np.zeros((2, 10, 1), "float32"), target=1)
    with pytest.raises(ValueError, match="x must be"):
        series(np.zeros((1, 2, 10, 3)), np.zeros((2, 10, 1)))
    with pytest.raises(ValueError, match="channel names"):
        series(x, np.zeros((2, 10, 1), "float32"), channel_names=["a"])
    with pytest.raises(ValueError, match="alpha"):
        series(x, np.zeros((2, 10, 1), "float32"), alpha=2.0)
