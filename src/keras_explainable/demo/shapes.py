"""Synthetic shapes: cluttered images with known object classes, masks and boxes.

Each image holds one *main* object (the largest) and up to `max_objects - 1`
smaller ones, drawn over a textured background (a tinted base colour, stripes,
soft distractor blobs in muted colours, pixel noise). Every object is one of
four classes, which differ both in shape and in colour. Objects never overlap,
so each object's mask is exactly the set of pixels painted in its colour.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

__all__ = ["CLASS_NAMES", "CLASS_COLORS", "Shapes", "make_shapes"]

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
"""The class names, in the order of the demo model's output units."""

CLASS_COLORS = np.array(
    [
        [0.90, 0.15, 0.15],  # circle: red
        [0.15, 0.75, 0.20],  # square: green
        [0.20, 0.35, 0.95],  # triangle: blue
        [0.95, 0.85, 0.10],  # cross: yellow
    ],
    dtype=np.float32,
)
"""The base RGB colour of each class, `(4, 3)` in [0, 1] (objects get a small jitter)."""

# Radii as fractions of the image size: every main object is clearly larger
# (at least 1.5x the area) than every secondary object, so "the class of the
# largest object" is a well-defined label.
_MAIN_RADIUS = (0.18, 0.28)
_SECONDARY_RADIUS = (0.08, 0.115)
_COLOR_JITTER = 0.06


@attrs.frozen(eq=False)
class Shapes:
    """A batch of synthetic images with their ground truth.

    Object 0 of every image is the main (largest) object; absent objects have
    class -1, an empty mask and a zero box.

    Attributes:
        images: float32 `(N, H, W, 3)` images in [0, 1].
        labels: int64 `(N,)`: the class of the main object (an index into
            `CLASS_NAMES`), the label of a single-label classifier.
        masks: bool `(N, H, W)`: the main object's pixels.
        boxes: int64 `(N, 4)`: the main object's tight box
            `(y_min, x_min, y_max, x_max)`, max exclusive.
        object_labels: int64 `(N, K)`: the class of every object, -1 if absent.
        object_masks: bool `(N, K, H, W)`: every object's pixels.
        object_boxes: int64 `(N, K, 4)`: every object's tight box.
        object_colors: float32 `(N, K, 3)`: the exact colour each object was
            painted with (before pixel noise).
    """

    images: np.ndarray
    labels: np.ndarray
    object_labels: np.ndarray
    object_masks: np.ndarray
    object_boxes: np.ndarray
    object_colors: np.ndarray

    @property
    def masks(self) -> np.ndarray:
        """The main object's mask `(N, H, W)`."""
        return self.object_masks[:, 0]

    @property
    def boxes(self) -> np.ndarray:
        """The main object's box `(N, 4)`."""
        return self.object_boxes[:, 0]

    def __len__(self) -> int:
        """Return the number of images."""
        return len(self.images)

    def __getitem__(self, index: Any) -> Shapes:
        """Select images, keeping their ground truth aligned."""
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1 if index != -1 else None)
        return Shapes(*(getattr(self, f.name)[index] for f in attrs.fields(Shapes)))


def _shape_mask(
    kind: int,
    yy: np.ndarray,
    xx: np.ndarray,
    center: tuple,
    radius: float,
    angle: float,
) -> np.ndarray:
    """Rasterise one shape (no anti-aliasing, so masks are exact)."""
    dy, dx = yy - center[0], xx - center[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    if kind == 0:  # circle
        return u**2 + v**2 <= radius**2
    if kind == 1:  # square
        half = 0.8 * radius
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if kind == 2:  # equilateral triangle: three half-planes
        apothem = 0.65 * radius
        inside = np.ones(u.shape, bool)
        for normal in (-np.pi / 2, np.pi / 6, 5 * np.pi / 6):
            inside &= u * np.cos(normal) + v * np.sin(normal) <= apothem
        return inside
    # cross
    arm = 0.33 * radius
    return ((np.abs(u) <= arm) & (np.abs(v) <= radius)) | (
        (np.abs(v) <= arm) & (np.abs(u) <= radius)
    )


def _background(rng: np.random.Generator, size: int, clutter: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    grey = rng.uniform(0.3, 0.7)
    image = np.full((size, size, 3), grey, np.float32) + rng.uniform(-0.08, 0.08, 3)
    # stripes of random orientation, frequency and tint
    theta = rng.uniform(0, np.pi)
    frequency = rng.uniform(2, 8)
    wave = np.sin(2 * np.pi * frequency * (xx * np.cos(theta) + yy * np.sin(theta)))
    tint = rng.uniform(0.5, 1.0, 3)
    image += (clutter * rng.uniform(0.03, 0.15) * wave)[..., None] * tint
    # soft blobs in muted colours (mixed towards grey): distractors, not objects
    for _ in range(rng.poisson(3 * clutter)):
        center = rng.uniform(0, 1, 2)
        sigma = rng.uniform(0.03, 0.12)
        color = 0.4 * rng.uniform(0, 1, 3) + 0.6 * rng.uniform(0.2, 0.8)
        weight = rng.uniform(0.3, 0.7) * np.exp(
            -((yy - center[0]) ** 2 + (xx - center[1]) ** 2) / (2 * sigma**2)
        )
        image = image * (1 - weight[..., None]) + weight[..., None] * color
    return image


def _draw_image(
    rng: np.random.Generator,
    size: int,
    max_objects: int,
    clutter: float,
    noise: float,
) -> tuple:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    image = _background(rng, size, clutter)
    labels = np.full(max_objects, -1, np.int64)
    masks = np.zeros((max_objects, size, size), bool)
    colors = np.zeros((max_objects, 3), np.float32)
    placed: list[tuple[np.ndarray, float]] = []
    count = rng.integers(1, max_objects + 1)
    for slot in range(count):
        low, high = _MAIN_RADIUS if slot == 0 else _SECONDARY_RADIUS
        radius = rng.uniform(low, high) * size
        # Keep objects inside the image and apart from each other; an object
        # that finds no free place after a few tries is left out.
        for _ in range(20):
            center = rng.uniform(radius + 1, size - 2 - radius, 2)
            if all(np.hypot(*(center - c)) > radius + r + 2 for c, r in placed):
                break
        else:
            continue
        kind = int(rng.integers(len(CLASS_NAMES)))
        angle = rng.uniform(0, 2 * np.pi)
        mask = _shape_mask(kind, yy, xx, tuple(center), radius, angle)
        color = np.clip(CLASS_COLORS[kind] + rng.uniform(-_COLOR_JITTER, _COLOR_JITTER, 3), 0, 1)
        placed.append((center, radius))
        labels[slot], masks[slot], colors[slot] = kind, mask, color
    image = np.clip(image, 0, 1)
    for slot in range(max_objects):
        image[masks[slot]] = colors[slot]
    if noise > 0:
        image = np.clip(image + rng.normal(0, noise, image.shape), 0, 1)
    return image.astype(np.float32), labels, masks, colors


def _boxes(masks: np.ndarray) -> np.ndarray:
    """Return the tight boxes `(y_min, x_min, y_max, x_max)` of `(..., H, W)` masks.

    The max is exclusive; an empty mask gets a zero box.
    """
    rows, cols = masks.any(axis=-1), masks.any(axis=-2)
    height, width = masks.shape[-2:]
    boxes = np.stack(
        [
            rows.argmax(-1),
            cols.argmax(-1),
            height - rows[..., ::-1].argmax(-1),
            width - cols[..., ::-1].argmax(-1),
        ],
        axis=-1,
    ).astype(np.int64)
    boxes[~rows.any(-1)] = 0
    return boxes


def make_shapes(
    n: int,
    size: int = 64,
    *,
    seed: int = 0,
    max_objects: int = 3,
    clutter: float = 1.0,
    noise: float = 0.03,
) -> Shapes:
    """Generate `n` synthetic images with ground-truth classes, masks and boxes.

    Every image has one main object (radius 18-28% of the image size) and up
    to `max_objects - 1` secondary objects (radius 8-11.5%), all fully inside
    the image and never overlapping. The classes differ in shape and colour:
    red circle, green square, blue triangle, yellow cross (`CLASS_NAMES`,
    `CLASS_COLORS`, with a small colour jitter and random rotation). The
    background has a tinted grey base, stripes, soft distractor blobs in muted
    colours and Gaussian pixel noise.

    Image `i` depends only on `(seed, i)`, so `make_shapes(10, seed=s)[:5]`
    equals `make_shapes(5, seed=s)`.

    Args:
        n: the number of images.
        size: the height and width of the images in pixels (default 64).
        seed: the random seed (default 0).
        max_objects: the largest number of objects per image (default 3; the
            count is uniform in `1..max_objects`).
        clutter: the strength of the background stripes and the mean number
            of distractor blobs / 3 (default 1.0; 0 gives a plain background).
        noise: the standard deviation of the pixel noise (default 0.03).

    Returns:
        A `Shapes` with images `(n, size, size, 3)` in [0, 1], labels `(n,)`
        (the main object's class), and every object's class, mask and box.

    Raises:
        ValueError: an argument is out of range.

    Example:
        >>> data = make_shapes(8, seed=1)
        >>> data.images.shape, data.labels.shape, data.masks.shape
        ((8, 64, 64, 3), (8,), (8, 64, 64))
    """
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}.")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels; got {size}.")
    if max_objects < 1:
        raise ValueError(f"max_objects must be >= 1; got {max_objects}.")
    if clutter < 0 or noise < 0:
        raise ValueError(f"clutter and noise must be >= 0; got {clutter}, {noise}.")
    images = np.zeros((n, size, size, 3), np.float32)
    labels = np.zeros((n, max_objects), np.int64)
    masks = np.zeros((n, max_objects, size, size), bool)
    colors = np.zeros((n, max_objects, 3), np.float32)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        images[i], labels[i], masks[i], colors[i] = _draw_image(
            rng, size, max_objects, clutter, noise
        )
    return Shapes(images, labels[:, 0].copy(), labels, masks, _boxes(masks), colors)
