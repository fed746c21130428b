r"""Data augmentation against bright spots: random bright squares ("blobs") on training images.

The lecture's occlusion experiment paints a bright 4x4 square (value 1.0, ``fill="extreme"``)
beside an 8, and the CNN calls it a 3 or a 2: a few bright pixels where the training digits never
had ink decide the class. The lecture's remedy is *data augmentation*: train on copies of the
images with bright blobs added and the labels kept, so that the model learns that a bright spot
in an unusual place says nothing about the digit.

The blobs of image :math:`\x^{(i)}` (shape H x W x C, maximum :math:`m_i = \max \x^{(i)}`, 1.0
for MNIST): with probability p the image gets a count n of squares, n drawn uniformly from
``count`` = (n_min, n_max); each square has a side s drawn uniformly from ``size`` =
(s_min, s_max) and a top-left corner (r, c) drawn uniformly so that it lies inside the image,
0 <= r <= H - s and 0 <= c <= W - s. Painting sets

.. math::

    \x'^{(i)}_{r + a, c + b, k} = m_i \qquad 0 \le a, b < s, \text{ every channel } k

and leaves every other pixel (and the label) as it was. Squares may overlap each other and the
ink. A pixel that changes therefore becomes :math:`m_i`; a pixel already at :math:`m_i` stays.

``BlobbedImages`` feeds ``model.fit``: each epoch every training image gets fresh blobs (or
none) and the order is shuffled, all from one NumPy generator made from the seed, so the same
seed gives the same epochs (``models.fit`` trains the model "cnn_blobs" with it). Nothing is added
to the model: the augmented CNN has exactly the layers of the plain one.

Example
-------
>>> rng = np.random.default_rng(0)
>>> x_blobbed = add_blobs(x_train[:8], rng)                   # labels: y_train[:8], unchanged
>>> blob_squares(3, (28, 28), np.random.default_rng(0), probability=1.0, count=(1, 1))
array([[ 0, 21, 13,  2],              # image, row, col, side
       [ 1, 17, 16,  2],
       [ 2, 24, 26,  2]])
"""
from __future__ import annotations

import math

import keras
import numpy as np

from . import _checks

BLOBS = {"probability": 0.5, "count": (1, 3), "size": (2, 6)}
"""The blob settings the shipped "cnn_blobs" was trained with (see ``add_blobs``)."""


def _int_range(value, name: str, least: int, most: int) -> tuple:
    """``value`` as a pair of ints (low, high) with least <= low <= high <= most."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_checks.is_int, value)) \
            and least <= value[0] <= value[1] <= most:
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be a pair of ints (low, high) with {least} <= low <= high <= "
                     f"{most}, got {value!r}")


def _probability(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 <= value <= 1:
        raise ValueError(f"probability must be a number in [0, 1] (the chance that an image "
                         f"gets blobs), got {value!r}")
    return float(value)


def _generator(rng) -> np.random.Generator:
    """``rng`` itself, or a new generator seeded with it when it is an int seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if _checks.is_int(rng) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)) or an "
                    f"int seed >= 0, got {rng!r}")


def _float_batch(x) -> np.ndarray:
    """``x`` as float32 images (N, H, W, C); a TypeError or ValueError saying how to fix it."""
    x = _checks.array_of(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x has dtype {x.dtype}; blobs are painted on float images, e.g. "
                        f"x.astype('float32') / 255 for pixels 0..255")
    if x.ndim != 4 or 0 in x.shape:
        raise ValueError(f"x must be a non-empty batch of images (N, H, W, C), got shape "
                         f"{x.shape}; for one image give x[None]")
    return _checks.float_images(x)


def blob_squares(n_images: int, image_size, rng, probability=BLOBS["probability"],
                 count=BLOBS["count"], size=BLOBS["size"]) -> np.ndarray:
    """Where the blobs go: an int array (K, 4), one row (image, row, col, side) per square.

    Image i (0 <= i < n_images) gets squares with chance ``probability``, then a count drawn
    uniformly from ``count`` = (low, high) inclusive; each side is drawn from ``size`` inclusive
    and the top-left corner (row, col) so that the square lies inside ``image_size`` = (H, W).
    Rows are grouped by image, in image order.

    >>> blob_squares(2, (28, 28), np.random.default_rng(1), probability=1.0, count=(2, 2))[:, 0]
    array([0, 0, 1, 1])
    """
    height, width = (_checks.positive_int(n, "image_size") for n in image_size)
    probability = _probability(probability)
    count = _int_range(count, "count", 1, 1_000)
    size = _int_range(size, "size", 1, min(height, width))
    rng = _generator(rng)
    chosen = np.flatnonzero(rng.random(_checks.positive_int(n_images, "n_images")) < probability)
    images = np.repeat(chosen, rng.integers(count[0], count[1] + 1, size=len(chosen)))
    sides = rng.integers(size[0], size[1] + 1, size=len(images))
    rows = rng.integers(0, height - sides + 1)             # one draw per square, each below
    cols = rng.integers(0, width - sides + 1)              # its own bound H - s + 1
    return np.stack([images, rows, cols, sides], axis=1).astype(np.int64).reshape(-1, 4)


def paint_squares(x, squares) -> np.ndarray:
    """A copy of the images ``x`` (N, H, W, C) with each square (image, row, col, side) painted
    in every channel with that image's maximum. ``x`` itself is not changed.

    >>> x = 0.5 * np.eye(3, dtype="float32")[None, :, :, None]      # one image, max 0.5
    >>> paint_squares(x, [(0, 0, 1, 2)])[0, :, :, 0]                  # rows 0-1, cols 1-2
    array([[0.5, 0.5, 0.5],
           [0. , 0.5, 0.5],
           [0. , 0. , 0.5]], dtype=float32)
    """
    painted = np.array(x, copy=True)
    top = painted.reshape(len(painted), -1).max(axis=1)
    for image, row, col, side in squares:
        painted[image, row:row + side, col:col + side, :] = top[image]
    return painted


def add_blobs(x, rng, probability=BLOBS["probability"], count=BLOBS["count"],
              size=BLOBS["size"]) -> np.ndarray:
    """A copy of the images ``x`` (N, H, W, C) with random bright squares; labels are unchanged.

    Each image gets blobs with chance ``probability``: ``count`` = (low, high) squares, each of
    side ``size`` = (low, high) pixels, anywhere inside the image, painted with the image's
    maximum (1.0 on MNIST, the value of the lecture's ``fill="extreme"``). See the module
    docstring for the maths. ``rng`` is a ``np.random.Generator`` (or an int seed): the same
    generator state gives the same blobs. ``x`` is not changed.

    >>> rng = np.random.default_rng(0)
    >>> x_blobbed = add_blobs(x_train, rng)                     # about half the images changed
    >>> np.all((x_blobbed == x_train) | (x_blobbed == 1.0))     # changed pixels are now 1.0
    True
    """
    x = _float_batch(x)
    squares = blob_squares(len(x), x.shape[1:3], rng, probability, count, size)
    return paint_squares(x, squares)


class BlobbedImages(keras.utils.PyDataset):
    """Batches (images with fresh blobs, labels) for ``model.fit``, new blobs and order each epoch.

    One generator ``np.random.default_rng(seed)`` draws, for every epoch in turn, the blobs
    (``add_blobs`` with ``blobs``, e.g. ``BLOBS``) and the shuffled order, so the same seed gives
    the same sequence of batches. Labels are never changed.

    >>> model.fit(BlobbedImages(x_train, y_train, batch_size=32, seed=0), epochs=12,
    ...           shuffle=False)                    # the order is BlobbedImages' own
    """

    def __init__(self, x, y, batch_size: int, seed: int = 0, blobs=None):
        super().__init__()
        self.x, self.y = _float_batch(x), np.asarray(y)
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} images but y has {len(self.y)} labels")
        self.batch_size = _checks.positive_int(batch_size, "batch_size")
        self.blobs = dict(BLOBS if blobs is None else blobs)
        self.rng = np.random.default_rng(_checks.seed(seed))
        self.on_epoch_end()                                 # the first epoch's images

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int):
        batch = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.epoch_images[batch], self.y[batch]

    def on_epoch_end(self):
        """Draw the next epoch: fresh blobs on every image, then a new order."""
        self.epoch_images = add_blobs(self.x, self.rng, **self.blobs)
        self.order = self.rng.permutation(len(self.x))
