r"""Concept sets made by the package: drawn strokes with seeded jitter, and random sets.

A concept is given to TCAV by examples (Kim et al. 2018): a few dozen images that show it, set
against random images. For MNIST-sized inputs (28x28, grey, strokes of value 1 on 0) the package
draws them, each image from (name, seed, i) alone, so the same call gives the same set anywhere:

    "loop"          a closed ellipse (radii 3.5 to 7.5 pixels, any tilt): the digit 0's, the
                    top of a 9, either half of an 8
    "open_stroke"   an arc of the same ellipses that stops short: 120 to 240 degrees of it
                    (the curve of a 2, 3, 5 or 7 without a loop)
    "vertical_bar"  a straight stroke 12 to 20 pixels long, within 12 degrees of vertical (a 1)
    "stripes"       3 to 5 parallel horizontal bands inside a rectangle (a striped garment of
                    Fashion-MNIST)

Every stroke is drawn anti-aliased: a pixel's value is 1 within the stroke's half width of the
curve, falling linearly to 0 over one more pixel. Centres are jittered by up to 3 pixels around
the middle of the image, where MNIST centres its digits.

Random sets come from data: :func:`random_images` draws images (without replacement) from an
array, by default the package's MNIST training split.

Example
-------
>>> loops = concept_images("loop", 50, seed=0)            # (50, 28, 28, 1) float32 in [0, 1]
>>> bars = concept_images("vertical_bar", 50, seed=0)
>>> random = random_images(200, seed=0)                   # 200 MNIST training images
"""
from __future__ import annotations

import numpy as np

from .. import _checks

CONCEPTS = ("loop", "open_stroke", "vertical_bar", "stripes")
SIZE = 28                       # the side of the images drawn (MNIST's)
JITTER = 3.0                    # largest shift of a drawing's centre, in pixels
POINTS = 100                    # points sampled along a curve


def _render(points: np.ndarray, half_width: float, size: int = SIZE) -> np.ndarray:
    """An anti-aliased stroke along ``points`` (P, 2) (row, column): each pixel's value is
    clip(half_width + 1 - d, 0, 1), d its distance to the nearest point."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    pixels = np.stack([rows.ravel(), cols.ravel()], axis=1)               # (size**2, 2)
    d = np.sqrt(((pixels[:, None, :] - points[None]) ** 2).sum(-1)).min(axis=1)
    return np.clip(half_width + 1 - d, 0, 1).reshape(size, size)


def _ellipse(rng, start: float, span: float) -> np.ndarray:
    """Points of an ellipse arc (radii 3.5 to 7.5, random tilt, jittered centre) from angle
    ``start`` over ``span`` radians."""
    radii = rng.uniform(3.5, 7.5, 2)
    tilt = rng.uniform(0, np.pi)
    centre = (SIZE - 1) / 2 + rng.uniform(-JITTER, JITTER, 2)
    t = start + np.linspace(0, span, POINTS)
    u, v = radii[0] * np.cos(t), radii[1] * np.sin(t)
    return centre + np.stack([u * np.cos(tilt) - v * np.sin(tilt),
                              u * np.sin(tilt) + v * np.cos(tilt)], axis=1)


def _loop(rng) -> np.ndarray:
    return _render(_ellipse(rng, 0.0, 2 * np.pi), rng.uniform(0.8, 1.5))


def _open_stroke(rng) -> np.ndarray:
    span = np.deg2rad(rng.uniform(120, 240))
    return _render(_ellipse(rng, rng.uniform(0, 2 * np.pi), span), rng.uniform(0.8, 1.5))


def _vertical_bar(rng) -> np.ndarray:
    length, angle = rng.uniform(12, 20), np.deg2rad(rng.uniform(-12, 12))
    centre = (SIZE - 1) / 2 + rng.uniform(-JITTER, JITTER, 2)
    t = np.linspace(-length / 2, length / 2, POINTS)[:, None]
    return _render(centre + t * np.array([np.cos(angle), np.sin(angle)]), rng.uniform(0.8, 1.5))


def _stripes(rng) -> np.ndarray:
    """3 to 5 horizontal bands of 1 to 2 rows, every 3 to 5 rows, inside a rectangle of
    14 to 22 by 12 to 20 pixels."""
    height, width = int(rng.integers(14, 23)), int(rng.integers(12, 21))
    top = (SIZE - height) // 2 + int(rng.integers(-2, 3))
    left = (SIZE - width) // 2 + int(rng.integers(-2, 3))
    image = np.zeros((SIZE, SIZE))
    period, thickness = int(rng.integers(3, 6)), int(rng.integers(1, 3))
    first = top + int(rng.integers(0, period))
    for row in range(first, top + height, period)[:5]:
        image[row:row + thickness, left:left + width] = rng.uniform(0.7, 1.0)
    return image


DRAW = {"loop": _loop, "open_stroke": _open_stroke, "vertical_bar": _vertical_bar,
        "stripes": _stripes}


def concept_images(name: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` drawn examples of concept ``name`` (one of ``CONCEPTS``; module docstring):
    (n, 28, 28, 1) float32 in [0, 1], image i drawn from (name, seed, i) alone.

    >>> concept_images("loop", 3, seed=1).shape
    (3, 28, 28, 1)
    """
    _checks.one_of(name, "concept", CONCEPTS)
    n, seed = _checks.positive_int(n, "n"), _checks.seed(seed)
    key = CONCEPTS.index(name)
    images = [DRAW[name](np.random.default_rng([seed, key, i])) for i in range(n)]
    return np.stack(images)[..., None].astype(np.float32)


def random_images(n: int, seed: int = 0, x=None) -> np.ndarray:
    """``n`` images drawn without replacement (seeded) from ``x`` (N, ...), by default the
    package's MNIST training split (``data.load_mnist``: the full set when it is available, else
    the bundled digits): the random examples TCAV sets a concept against.

    >>> random_images(100, seed=0).shape
    (100, 28, 28, 1)
    """
    n, seed = _checks.positive_int(n, "n"), _checks.seed(seed)
    if x is None:
        from .. import data

        (x, _), _ = data.load_mnist(verbose=False)
    x = _checks.array_of(x, "x")
    if n > len(x):
        raise ValueError(f"n={n} random images asked for, but x holds only {len(x)}: ask for "
                         f"at most {len(x)}")
    return x[np.random.default_rng([seed]).choice(len(x), n, replace=False)]
