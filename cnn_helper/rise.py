r"""RISE (Petsiuk et al. 2018): a saliency map from the target on randomly masked copies of x.

Occlusion hides one patch at a time; RISE hides about half of the image at once, at random, many
times, and credits each pixel with the target values of the copies that kept it. With n masks
:math:`M_1, \dots, M_n` (values in [0, 1], shaped like the image, :math:`E[M] = p`):

.. math::  S_{r,c} = \frac{1}{n\,p} \sum_{j=1}^{n} s(\x \odot M_j + (1 - M_j) \odot f)\;
           M_{j,r,c}

a Monte Carlo estimate of :math:`E[s(\text{masked } \x) \mid \text{pixel (r, c) kept}]` (f is
``fill``, what a masked pixel becomes: 0 by default). Mask j, the paper's procedure:

1. a coarse grid of s x s cells (``grid_size``), each kept (1) with probability p, else 0;
2. the grid bilinearly upsampled to :math:`(s + 1)\,C_H \times (s + 1)\,C_W` pixels, with
   :math:`C_H = \lceil H / s \rceil` (and :math:`C_W`) the size of a cell in the image;
3. an H x W crop of it at a random shift, uniform in 0..C_H - 1 rows and 0..C_W - 1 columns: the
   soft edges of the cells fall anywhere, not always on the same grid.

Mask j depends only on (seed, j) and the image size: the same seed gives the same masks for every
image and ``batch_size``, and the first 100 of 4000 masks are the masks of n_masks=100. The
masked copies are made inside compiled calls, ``batch_size`` (image, mask) pairs at a time, so
memory stays bounded; the map is the same for every batch_size.

Example
-------
>>> s = rise(model, x_test[:4], 8)                        # (4, 28, 28, 1), 4000 masks
>>> s = rise(model, x_test[0], Feature("logits", 8), n_masks=1000, grid_size=4)   # (28, 28, 1)
>>> m = masks(x_test.shape[1:], n_masks=8)                # (8, 28, 28): see what it hides
"""
from __future__ import annotations

import math

import numpy as np

from . import _checks, _graph, _perturb, _reference, features
from ._checks import BATCH_SIZE

MASK_CHUNK = 256      # masks made at once when their weighted sum is taken (memory, not results)


# --------------------------------------------------------------------------- the masks


def _check_geometry(image_shape, n_masks, grid_size, p) -> tuple:
    """(H, W), n_masks, grid_size, p checked; ValueErrors name the argument and what is allowed."""
    if len(image_shape) != 3:
        raise ValueError(f"RISE masks images (H, W, C); the input has shape {tuple(image_shape)}")
    size = tuple(int(n) for n in image_shape[:2])
    n_masks = _checks.positive_int(n_masks, "n_masks")
    if not _checks.is_int(grid_size) or not 1 <= grid_size <= min(size):
        raise ValueError(f"grid_size must be an int from 1 to {min(size)} (the image is "
                         f"{size[0]}x{size[1]}): the masks are grids of grid_size x grid_size "
                         f"cells, got {grid_size!r}")
    if not _checks.is_number(p) or not 0 < p <= 1:
        raise ValueError(f"p (the probability of keeping a cell) must be in (0, 1], got {p!r}")
    return size, n_masks, int(grid_size), float(p)


def _cells(size, grid_size) -> tuple:
    """(C_H, C_W): the pixels of one grid cell, ceil(H / s) and ceil(W / s)."""
    return tuple(math.ceil(n / grid_size) for n in size)


def _grids(size, n_masks, grid_size, p, seed):
    """The random part of every mask, drawn in NumPy from ``seed``: grids (n, s, s) float32 of 0/1
    and shifts (n, 2) int32. Row j of one draw holds mask j's cells and shift, so mask j does not
    depend on n_masks."""
    uniform = np.random.default_rng(seed).random((n_masks, grid_size * grid_size + 2))
    grids = (uniform[:, :-2] < p).astype(np.float32).reshape(n_masks, grid_size, grid_size)
    shifts = np.floor(uniform[:, -2:] * np.array(_cells(size, grid_size))).astype(np.int32)
    return grids, shifts


def _upsampled_crops(grids, shifts, size):
    """The masks (B, H, W) from grids (B, s, s) and shifts (B, 2) (``keras.ops``, usable inside a
    compiled step): bilinear upsampling to ((s + 1) C_H, (s + 1) C_W), then the crop at each
    shift. The crop is a product with one-hot row and column selectors, ``rows @ up @ cols^T``:
    each output value is one upsampled value times 1 (exact), and it is faster than a gather."""
    from keras import ops

    grid_size = grids.shape[1]
    up_size = tuple((grid_size + 1) * c for c in _cells(size, grid_size))
    up = ops.image.resize(ops.cast(grids, "float32")[..., None], up_size, "bilinear")[..., 0]
    shifts = ops.cast(shifts, "int32")
    rows = ops.one_hot(shifts[:, :1] + ops.arange(size[0], dtype="int32")[None], up_size[0])
    cols = ops.one_hot(shifts[:, 1:] + ops.arange(size[1], dtype="int32")[None], up_size[1])
    return ops.matmul(ops.matmul(rows, up), ops.transpose(cols, (0, 2, 1)))     # (B, H, W)


def _numpy(tensor) -> np.ndarray:
    """A tensor of the masks as a NumPy array."""
    from keras import ops

    return ops.convert_to_numpy(tensor)


def masks(image_shape, n_masks: int = 4000, grid_size: int = 7, p: float = 0.5,
          seed: int = 0) -> np.ndarray:
    """The masks :func:`rise` uses for images of ``image_shape`` (H, W, C) with these arguments:
    (n_masks, H, W) float32 in [0, 1] (see the module docstring for how they are drawn).

    >>> m = masks((28, 28, 1), n_masks=4, grid_size=7)      # four masks of 7x7 cells
    """
    size, n_masks, grid_size, p = _check_geometry(image_shape, n_masks, grid_size, p)
    grids, shifts = _grids(size, n_masks, grid_size, p, _checks.seed(seed))
    return _numpy(_upsampled_crops(grids, shifts, size))


# --------------------------------------------------------------------------- the map


def _masked_copies(images, fills, grids, shifts, mask) -> _perturb.Copies:
    r"""RISE's copies for the perturbation engine: copy c is image ``image_of_copy[c]`` masked
    by mask ``mask[c]``, :math:`\x \odot M_j + (1 - M_j) \odot f`; the mask is made inside the
    compiled step from its grid and shift (one trace per image size and grid size)."""
    from keras import ops

    size = images.shape[1:3]

    def make(shared, image, rows):
        x, fill = ops.take(shared[0], image, axis=0), ops.take(shared[1], image, axis=0)
        grid, shift = ops.take(shared[2], rows[0], axis=0), ops.take(shared[3], rows[0], axis=0)
        kept = ops.cast(_upsampled_crops(grid, shift, size)[..., None], x.dtype)
        return x * kept + (1 - kept) * fill

    return _perturb.Copies(("rise", size), make, shared=(images, fills.astype(images.dtype),
                                                         grids, shifts),
                           per_copy=(mask.astype(np.int32),))


def _scores(model, target, images, fills, grids, shifts, batch_size) -> np.ndarray:
    """V (N, n): the target on image i masked by mask j, for every pair (i, j), ``batch_size``
    pairs per compiled call."""
    n_images, n_masks = len(images), len(grids)
    image, mask = np.divmod(np.arange(n_images * n_masks), n_masks)
    copies = _masked_copies(images, fills, grids, shifts, mask)
    return _perturb.scores(model, target, copies, image, batch_size).reshape(n_images, n_masks)


def rise(model, x, target, n_masks: int = 4000, grid_size: int = 7, p: float = 0.5, fill="zero",
         seed: int = 0, keep_location: bool = False, batch_size=BATCH_SIZE) -> np.ndarray:
    r"""The RISE saliency map of ``target`` for each image of x (Petsiuk et al. 2018):
    :math:`S = \frac{1}{n p} \sum_j s(\x \odot M_j + (1 - M_j) \odot f) M_j` over ``n_masks``
    random masks (module docstring).

    target    : a head class index (the model's output; our CNN's is the probability) or a Feature
    n_masks   : n, the number of masks (the paper uses 4000 to 8000 for ImageNet); the map
                converges to its expectation as n grows
    grid_size : s, the masks are s x s grids of cells (the paper: 7; smaller cells, finer maps)
    p         : the probability of keeping a cell, in (0, 1] (the paper: 0.5)
    fill      : what a masked pixel becomes, in any of the package's reference forms: "zero"
                (default, the paper's; the black background of MNIST), "mean", "extreme",
                "blur" (a blurred copy of x), a number, one value per channel, or an image (one
                for all, or one per image)
    seed      : the masks' seed: the same seed, the same masks for every image and batch_size
    keep_location : read a max-pooled Feature at the clean image's argmax (default: pool afresh)
    batch_size: (image, mask) pairs per compiled call; the result does not depend on it

    Returns float32 maps (N, H, W, 1), or (H, W, 1) for one image: one channel, like Grad-CAM's.

    >>> s = rise(model, x_test[:4], 8, n_masks=2000)
    """
    images, single = _graph.check_images(model, x)
    images = images.astype(_perturb.image_dtype(model), copy=False)
    batch_size = _graph.batch_size(model, batch_size)
    resolved = features.resolve(model, images, target, keep_location, batch_size)
    size, n_masks, grid_size, p = _check_geometry(images.shape[1:], n_masks, grid_size, p)
    fills = _reference.reference(model, images, fill, "fill").values
    grids, shifts = _grids(size, n_masks, grid_size, p, _checks.seed(seed))
    scores = _scores(model, resolved, images, fills, grids, shifts, batch_size)
    total = np.zeros((len(images), size[0] * size[1]))
    for start in range(0, n_masks, MASK_CHUNK):
        chunk = slice(start, start + MASK_CHUNK)
        kept = _numpy(_upsampled_crops(grids[chunk], shifts[chunk], size)).astype(np.float64)
        total += scores[:, chunk] @ kept.reshape(len(kept), -1)
    maps = (total / (n_masks * p)).reshape((len(images),) + size + (1,)).astype(np.float32)
    return maps[0] if single else maps
