r"""A hand-drawn digit made into an MNIST input: LeCun's preprocessing, and a pen to draw with.

MNIST's digits were not drawn at 28x28. LeCun et al. took the black-and-white NIST digits and

1. scaled each to fit a 20x20 pixel box, keeping its aspect ratio (anti-aliased: grey levels), and
2. put it in a 28x28 image so that its centre of mass lands at the centre of that field.

A digit drawn on a large pad must go through the same two steps before the CNN sees it: the
network was only ever shown digits about 20 pixels tall, centred by mass (a digit in a corner or
twice the size is a new kind of image to it). ``mnist_input`` does both:

- the bounding box of the ink (pixels above ``threshold``) is cropped and resized so that its
  longer side is ``box`` = 20 pixels (shrinking averages the pixels each output pixel covers;
  enlarging interpolates bilinearly);
- the centre of mass :math:`(\bar r, \bar c) = \sum_{r,c} (r, c)\, x_{r,c} / \sum_{r,c} x_{r,c}`
  is moved to (14, 14), the centre of the 28x28 field, by a whole-pixel shift
  :math:`\mathrm{round}(14 - \bar r)` (and the same for columns), so it ends within half a pixel
  of it. (The 1,000 bundled MNIST test digits have their centre of mass at (14.0, 14.0) on
  average, +-0.3.) A shift that would push ink off the field is cut to the largest that keeps it.

Images are grey arrays (H, W) with the ink in [0, 1] (1: full ink), as the pad sends them; the
result is float32 (28, 28, 1), the CNN's input.

>>> pad = np.zeros((280, 280), np.float32)
>>> pad = stroke(pad, [(40, 140), (240, 140)], width=20)     # a vertical bar: a "1"
>>> x = mnist_input(pad)                                       # (28, 28, 1), 20 pixels tall
>>> centre_of_mass(x[..., 0])                                  # within 0.5 of (14, 14)
"""
from __future__ import annotations

import numpy as np

SIZE = 28           # MNIST's field
BOX = 20            # the box the digit is scaled into
CENTRE = 14.0       # where the centre of mass goes (row and column), as in MNIST
THRESHOLD = 0.1     # pixels above this count as ink for the bounding box


def _grey(image, name: str = "image") -> np.ndarray:
    """``image`` as a float32 (H, W) array; (H, W, 1) is accepted; other shapes are errors."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} has shape {np.shape(image)}; give a grey image (H, W) or "
                         "(H, W, 1) with the ink in [0, 1]")
    return a


def bounding_box(image, threshold: float = THRESHOLD):
    """(top, bottom, left, right) of the pixels above ``threshold`` (bottom and right
    exclusive), or None for an empty image.

    >>> bounding_box(np.eye(4)[1:])         # rows 0..2, columns 1..3
    (0, 3, 1, 4)
    """
    ink = _grey(image) > threshold
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if len(rows) == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def centre_of_mass(image) -> tuple:
    r"""(row, column) of the centre of mass :math:`\sum (r, c)\, x_{r,c} / \sum x_{r,c}`;
    the centre of the image for an empty one."""
    a = _grey(image)
    total = float(a.sum())
    if total <= 0:
        return (a.shape[0] - 1) / 2, (a.shape[1] - 1) / 2
    rows, cols = np.arange(a.shape[0]), np.arange(a.shape[1])
    return float(a.sum(axis=1) @ rows / total), float(a.sum(axis=0) @ cols / total)


def resize(image, shape) -> np.ndarray:
    """``image`` (H, W) resized to ``shape`` (h, w): averaging the pixels each output pixel
    covers when it shrinks (PIL's box filter, anti-aliased), bilinear when it grows."""
    from PIL import Image

    a = _grey(image)
    h, w = int(shape[0]), int(shape[1])
    shrinking = h <= a.shape[0] and w <= a.shape[1]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    out = np.asarray(Image.fromarray(a).resize((w, h), method), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def scale_into_box(image, box: int = BOX, threshold: float = THRESHOLD) -> np.ndarray:
    """The ink's bounding box, cropped and resized so that its longer side is ``box`` pixels
    (aspect ratio kept: the shorter side is round(box * short / long), at least 1)."""
    a = _grey(image)
    bounds = bounding_box(a, threshold)
    if bounds is None:
        return np.zeros((box, box), np.float32)
    top, bottom, left, right = bounds
    crop = a[top:bottom, left:right]
    factor = box / max(crop.shape)
    shape = [max(1, round(n * factor)) for n in crop.shape]
    return resize(crop, shape)


def _shift(length: int, centre: float, size: int) -> int:
    """Where a digit ``length`` pixels long whose centre of mass is at ``centre`` (in its own
    coordinates) starts, so that the centre lands at CENTRE, kept inside ``size`` pixels."""
    start = int(round(CENTRE * size / SIZE - centre))
    return min(max(start, 0), size - length)


def mnist_input(image, box: int = BOX, size: int = SIZE,
                threshold: float = THRESHOLD) -> np.ndarray:
    """LeCun's MNIST preprocessing of a drawn digit: scaled into a ``box`` x ``box`` box (aspect
    kept), centred by its centre of mass in a ``size`` x ``size`` field. See the module docstring.

    image : grey (H, W) or (H, W, 1), ink in [0, 1], any size (the drawing pad's 280x280)
    Returns float32 (size, size, 1) in [0, 1]; all zeros for an empty image.

    >>> x = mnist_input(pad)          # what the CNN sees of the pad
    """
    digit = scale_into_box(image, box, threshold)
    out = np.zeros((size, size), np.float32)
    if not digit.any():
        return out[..., None]
    r_mass, c_mass = centre_of_mass(digit)
    top = _shift(digit.shape[0], r_mass, size)
    left = _shift(digit.shape[1], c_mass, size)
    out[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return out[..., None]


def stroke(image, points, width: float = 20.0, ink: float = 1.0) -> np.ndarray:
    """A copy of ``image`` with a pen stroke through ``points`` [(row, column), ...]: every pixel
    whose centre lies within ``width`` / 2 of the polyline is set to ``ink`` (1: draw, 0: erase).

    What the drawing pad's pen does, in NumPy: for tests, and to draw digits from code.

    >>> one = stroke(np.zeros((280, 280)), [(40, 140), (240, 140)], width=20)
    """
    a = _grey(image).copy()
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("points is empty; give at least one (row, column) point")
    rows, cols = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    p = np.stack([rows, cols], axis=-1).astype(np.float64)
    near = np.zeros(a.shape, bool)
    for start, end in zip(pts, pts[1:] if len(pts) > 1 else pts):
        d = end - start
        t = np.clip(((p - start) @ d) / max(float(d @ d), 1e-12), 0.0, 1.0)
        closest = start + t[..., None] * d
        near |= np.sum((p - closest) ** 2, axis=-1) <= (width / 2) ** 2
    a[near] = ink
    return a


def enlarge(image, side: int) -> np.ndarray:
    """A 28x28 digit (H, W) or (H, W, 1) enlarged to ``side`` x ``side`` (bilinear), ink in
    [0, 1]: a test digit put on the drawing pad."""
    return resize(_grey(image), (side, side))
