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

from . import _checks, _graph, features
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
    """The masks (B, H, W) from grids (B, s, s) and shifts (B, 2) (TensorFlow, usable inside a
    compiled step): bilinear upsampling to ((s + 1) C_H, (s + 1) C_W), then the crop at each
    shift."""
    import tensorflow as tf

    grid_size = grids.shape[1]
    cells = _cells(size, grid_size)
    up = tf.image.resize(tf.cast(grids, tf.float32)[..., None],
                         [(grid_size + 1) * c for c in cells], "bilinear")[..., 0]
    rows = shifts[:, :1] + tf.range(size[0])[None]                        # (B, H)
    cols = shifts[:, 1:] + tf.range(size[1])[None]                        # (B, W)
    up = tf.gather(up, rows, axis=1, batch_dims=1)                         # (B, H, up_W)
    return tf.gather(up, cols, axis=2, batch_dims=1)                       # (B, H, W)


def masks(image_shape, n_masks: int = 4000, grid_size: int = 7, p: float = 0.5,
          seed: int = 0) -> np.ndarray:
    """The masks :func:`rise` uses for images of ``image_shape`` (H, W, C) with these arguments:
    (n_masks, H, W) float32 in [0, 1] (see the module docstring for how they are drawn).

    >>> m = masks((28, 28, 1), n_masks=4, grid_size=7)      # four masks of 7x7 cells
    """
    size, n_masks, grid_size, p = _check_geometry(image_shape, n_masks, grid_size, p)
    grids, shifts = _grids(size, n_masks, grid_size, p, _checks.seed(seed))
    return np.asarray(_upsampled_crops(grids, shifts, size))


# --------------------------------------------------------------------------- the map


def _float_spec(model):
    """The model's input spec, float32 for a model that takes integer pixels (a masked pixel is
    a fraction of one): the model casts its input as it does for every image."""
    spec = _graph.input_spec(model)
    return spec if spec.dtype.is_floating else _graph.input_spec(model, "float32")


def _step(model, feature, size: tuple, grid_size: int, at: bool):
    """Compiled: (images (B, H, W, C), fills (B, H, W, C), grids (B, s, s), shifts (B, 2),
    channel[, locations]) -> the target on each image masked by its mask (B,). One trace per
    (target layer, pool, image size, grid size); the batch size and the channel are tensors."""
    import tensorflow as tf

    def build():
        tap = _graph.tap(model, [feature.layer])
        image = _float_spec(model)
        n_spatial = len(_graph.output_shape(model, feature.layer)) - 1
        specs = [image, image, tf.TensorSpec((None, grid_size, grid_size), tf.float32),
                 tf.TensorSpec((None, 2), tf.int32), tf.TensorSpec((), tf.int32)]
        specs += [tf.TensorSpec((None, n_spatial), tf.int64)] if at else []

        @tf.function(autograph=False, input_signature=specs)
        def step(x, fill, grids, shifts, channel, locations=None):
            kept = tf.cast(_upsampled_crops(grids, shifts, size)[..., None], x.dtype)
            y = tap(x * kept + (1 - kept) * fill)[0]
            return [tf.cast(features.read(y, channel, feature.pool, locations)[0], tf.float32)]

        return step

    key = ("rise step", _graph.path_name(model, feature.layer), feature.pool, size, grid_size, at)
    return _graph.memo(model, key, build)


def _fills(fill, x) -> np.ndarray:
    """``fill`` as an array broadcast like x (N, H, W, C): a number, one per channel (C,), one image
    (H, W, C) for all, or one per image (N, H, W, C)."""
    if isinstance(fill, bool) or not isinstance(fill, (int, float, np.integer, np.floating,
                                                       list, tuple, np.ndarray)):
        raise TypeError(f"fill must be a number or an array (one per channel, one image or one "
                        f"per image), got {type(fill).__name__}")
    value = np.asarray(fill, dtype=x.dtype)
    shapes = [(), x.shape[-1:], x.shape[1:], x.shape]
    if value.shape not in shapes:
        raise ValueError(f"fill has shape {value.shape}; give a number, {x.shape[-1]} values (one "
                         f"per channel), one image {x.shape[1:]} or one per image {x.shape}")
    if not np.all(np.isfinite(value)):
        raise ValueError("fill has NaN or infinite values")
    return np.broadcast_to(value, x.shape)


def _scores(model, feature, x, fills, grids, shifts, at, batch_size) -> np.ndarray:
    """V (N, n): the target on image i masked by mask j, for every pair (i, j), ``batch_size``
    pairs per compiled call."""
    n_masks = len(grids)
    step = _step(model, feature, x.shape[1:3], grids.shape[1], at is not None)
    image, mask = np.divmod(np.arange(len(x) * n_masks), n_masks)
    channel = np.int32(feature.channel)

    def run(i, j):
        where = () if at is None else (at[i],)
        return step(x[i], fills[i], grids[j], shifts[j], channel, *where)

    scores, = _graph.run_batched(run, batch_size, image, mask)
    return scores.reshape(len(x), n_masks).astype(np.float64)


def rise(model, x, target, n_masks: int = 4000, grid_size: int = 7, p: float = 0.5, fill=0.0,
         seed: int = 0, keep_location: bool = False, batch_size=BATCH_SIZE) -> np.ndarray:
    r"""The RISE saliency map of ``target`` for each image of x (Petsiuk et al. 2018):
    :math:`S = \frac{1}{n p} \sum_j s(\x \odot M_j + (1 - M_j) \odot f) M_j` over ``n_masks``
    random masks (module docstring).

    target    : a head class index (the model's output; our CNN's is the probability) or a Feature
    n_masks   : n, the number of masks (the paper uses 4000 to 8000 for ImageNet); the map
                converges to its expectation as n grows
    grid_size : s, the masks are s x s grids of cells (the paper: 7; smaller cells, finer maps)
    p         : the probability of keeping a cell, in (0, 1] (the paper: 0.5)
    fill      : what a masked pixel becomes: 0 (default; the black background of MNIST), a number,
                one value per channel, or a baseline image (one for all, or one per image), e.g. a
                blurred copy of x
    seed      : the masks' seed: the same seed, the same masks for every image and batch_size
    keep_location : read a max-pooled Feature at the clean image's argmax (default: pool afresh)
    batch_size: (image, mask) pairs per compiled call; the result does not depend on it

    Returns float32 maps (N, H, W, 1), or (H, W, 1) for one image: one channel, like Grad-CAM's.

    >>> s = rise(model, x_test[:4], 8, n_masks=2000)
    """
    feature = features.check_feature(model, target)
    images, single = _graph.check_images(model, x)
    images = images.astype(_float_spec(model).dtype.as_numpy_dtype, copy=False)
    size, n_masks, grid_size, p = _check_geometry(images.shape[1:], n_masks, grid_size, p)
    fills = _fills(fill, images)
    batch_size = _graph.batch_size(model, batch_size)
    at = features.fixed_locations(model, images, feature, keep_location, batch_size)
    grids, shifts = _grids(size, n_masks, grid_size, p, _checks.seed(seed))
    scores = _scores(model, feature, images, fills, grids, shifts, at, batch_size)
    total = np.zeros((len(images), size[0] * size[1]))
    for start in range(0, n_masks, MASK_CHUNK):
        chunk = slice(start, start + MASK_CHUNK)
        kept = np.asarray(_upsampled_crops(grids[chunk], shifts[chunk], size), np.float64)
        total += scores[:, chunk] @ kept.reshape(len(kept), -1)
    maps = (total / (n_masks * p)).reshape((len(images),) + size + (1,)).astype(np.float32)
    return maps[0] if single else maps
