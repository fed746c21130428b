r"""Superpixels: an image cut into M regions, the "features" LIME and KernelSHAP switch on and off.

A black-box explanation does not move single pixels (too many, and one pixel changes nothing);
it hides whole regions :math:`R_1, \dots, R_M` of the image at once. Their label map
:math:`L` (H, W) holds, for each pixel, the index :math:`i \in \{0, \dots, M - 1\}` of its
region. Three ways to cut an image:

- "grid"       : rows x cols rectangles of (nearly) equal size; needs nothing, the same for every
                 image (the default of :func:`cnn_helper.black_box.kernel_shap` and ``lime``);
- "slic"       : SLIC (Achanta et al. 2012), k-means on (colour, position) from a regular grid of
                 centres: compact regions that follow edges; deterministic;
- "quickshift" : quick shift (Vedaldi & Soatto 2008), mode seeking in (colour, position), LIME's
                 own choice; ``seed`` breaks its ties.

"slic" and "quickshift" are scikit-image's (``pip install "cnn_helper[superpixels]"``). Each
image is scaled to [0, 1] (its own min and max) before it is cut, so the model's input range
does not matter; an RGB image is cut in CIELAB colours, a grey one on its intensity.

Example
-------
>>> labels = segments(x_test[0], "slic", n_segments=8)     # (28, 28) int32, labels 0..M-1
>>> labels = segments(x_test[:4], "grid", n_segments=(2, 4))    # (4, 28, 28), 8 cells each
>>> n_segments_of(labels)                                  # array([8, 8, 8, 8])
"""
from __future__ import annotations

import inspect

import numpy as np

from . import _checks

METHODS = ("slic", "quickshift", "grid")
EXTRA = "superpixels"        # the extra that installs scikit-image: cnn_helper[superpixels]


def _images(x, name: str = "x") -> tuple:
    """(images (N, H, W, C) float64, single) from an image (H, W), (H, W, C) or a batch."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf" or x.dtype.kind == "b":
        raise TypeError(f"{name} must be an array of numbers (images), got dtype {x.dtype}")
    if x.ndim == 2:
        return x[None, ..., None].astype(np.float64), True
    if x.ndim == 3 and x.shape[-1] not in (1, 3, 4):
        return x[..., None].astype(np.float64), False                  # (N, H, W) grey
    if x.ndim not in (3, 4):
        raise ValueError(f"{name} must be an image (H, W), (H, W, C) or a batch (N, H, W, C); "
                         f"got shape {x.shape}")
    return (x[None] if x.ndim == 3 else x).astype(np.float64), x.ndim == 3


def _unit_range(image) -> np.ndarray:
    """The image scaled to [0, 1] by its own min and max (a constant image is all 0)."""
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def _skimage_segmentation():
    """scikit-image's ``segmentation`` module, or an ImportError naming the extra."""
    try:
        from skimage import segmentation
    except ImportError:
        raise ImportError('superpixels "slic" and "quickshift" need scikit-image: pip install '
                          f'"cnn_helper[{EXTRA}]" (or pip install scikit-image), or use '
                          'method="grid", which needs nothing') from None
    return segmentation


def grid_shape(image_size, n_segments) -> tuple:
    """(rows, cols) of a grid of about ``n_segments`` cells of about square shape for an image
    of ``image_size`` (H, W); a pair (rows, cols) is checked and kept.

    >>> grid_shape((28, 28), 49)                    # (7, 7)
    """
    h, w = image_size
    if np.ndim(n_segments) == 1 and len(n_segments) == 2:
        rows, cols = (int(n) for n in n_segments)
    elif isinstance(n_segments, (int, np.integer)) and not isinstance(n_segments, bool) \
            and n_segments >= 1:
        rows = min(h, max(1, round(np.sqrt(n_segments * h / w))))
        cols = min(w, max(1, round(n_segments / rows)))
    else:
        raise ValueError(f"n_segments must be a positive int or a pair (rows, cols) for "
                         f"method='grid', got {n_segments!r}")
    if not (1 <= rows <= h and 1 <= cols <= w):
        raise ValueError(f"a grid of {rows} x {cols} cells does not fit an image of {h} x {w} "
                         "pixels: give from 1 to H rows and 1 to W columns")
    return rows, cols


def _grid(image_size, n_segments) -> np.ndarray:
    """The label map (H, W) of a rows x cols grid: cell (r, c) is label r * cols + c."""
    (h, w), (rows, cols) = image_size, grid_shape(image_size, n_segments)
    row = np.arange(h) * rows // h
    col = np.arange(w) * cols // w
    return row[:, None] * cols + col[None, :]


def _skimage_labels(image, method: str, n_segments, compactness, seed: int, options) -> np.ndarray:
    """The label map of one image (H, W, C) in [0, 1] by scikit-image's slic or quickshift."""
    segmentation = _skimage_segmentation()
    rgb = image.shape[-1] == 3
    if method == "slic":
        if not isinstance(n_segments, (int, np.integer)) or n_segments < 1:
            raise ValueError(f"n_segments must be a positive int for method='slic', "
                             f"got {n_segments!r}")
        compactness = (10.0 if rgb else 0.1) if compactness is None else compactness
        return segmentation.slic(image if rgb else image[..., 0], n_segments=int(n_segments),
                                 compactness=compactness, start_label=0,
                                 channel_axis=-1 if rgb else None, **options)
    settings = dict(dict(kernel_size=4, max_dist=200, ratio=0.2) if rgb else
                    dict(kernel_size=2, max_dist=6, ratio=0.5), **options)
    random = "rng" if "rng" in inspect.signature(segmentation.quickshift).parameters \
        else "random_seed"                                   # scikit-image < 0.23
    image = image if rgb else np.repeat(image[..., :1], 3, axis=-1)
    return segmentation.quickshift(image, convert2lab=rgb, **{random: seed}, **settings)


def consecutive(labels) -> np.ndarray:
    """A label map (H, W) renumbered 0..M-1 in the order of the labels' values (int32).

    >>> consecutive(np.array([[5, 5], [9, 2]]))      # [[1, 1], [2, 0]]
    """
    values, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(np.shape(labels)).astype(np.int32)


def segments(x, method: str = "slic", n_segments=50, compactness=None, seed: int = 0,
             **options) -> np.ndarray:
    """The superpixels of each image of x (module docstring): integer label maps, (H, W) for one
    image ((H, W) grey or (H, W, C)), (N, H, W) for a batch, int32 with labels 0..M-1.

    method      : "slic" (default), "quickshift" or "grid"
    n_segments  : about how many regions: slic's target count (it may return a few more or
                  fewer), the grid's cell count (rows x cols of about square cells) or a pair
                  (rows, cols); quick shift ignores it (its ``kernel_size`` and ``max_dist``,
                  given in ``options``, set the size)
    compactness : slic's balance of colour and position (default 10 for RGB in CIELAB, 0.1 for
                  grey in [0, 1]); larger, more square regions
    seed        : quick shift's random tie-breaking (slic and grid have no randomness)
    options     : more keyword arguments for scikit-image's ``slic`` / ``quickshift``

    >>> segments(x_test[0], "grid", n_segments=(2, 4))           # 8 cells of 14 x 7 pixels
    """
    method = _checks.one_of(method, "method", METHODS)
    seed = _checks.seed(seed)
    images, single = _images(x)
    labels = []
    for image in images:
        if method == "grid":
            labels.append(_grid(image.shape[:2], n_segments))
        else:
            labels.append(consecutive(_skimage_labels(_unit_range(image), method, n_segments,
                                                      compactness, seed, options)))
    labels = np.stack(labels).astype(np.int32)
    return labels[0] if single else labels


def n_segments_of(labels) -> np.ndarray:
    """M, the number of regions, of a label map (H, W) (an int) or of each of (N, H, W).

    >>> n_segments_of(segments(x_test[:2], "grid", n_segments=9))      # array([9, 9])
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return int(labels.max()) + 1
    return labels.reshape(len(labels), -1).max(axis=1) + 1


def label_maps(segments_, images, **options) -> np.ndarray:
    """The label maps (N, H, W) int32, labels 0..M_i-1, for the images (N, H, W, C) that a
    black-box method is given in ``segments_``: a method name (cut each image with
    :func:`segments` and ``options``), one label map (H, W) for all images or one per image
    (N, H, W). Labels are renumbered 0..M-1; a ValueError names a shape that does not fit.

    >>> label_maps("grid", x_test[:4], n_segments=(2, 4)).shape     # (4, 28, 28)
    """
    n, size = len(images), images.shape[1:3]
    if isinstance(segments_, str):
        return segments(images, segments_, **options).reshape((n,) + size)
    labels = np.asarray(segments_)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"segments must be a method name {METHODS} or integer label maps, got "
                        f"{type(segments_).__name__} of dtype {labels.dtype}")
    if labels.shape == size:
        labels = np.broadcast_to(labels, (n,) + size)
    if labels.shape != (n,) + size:
        raise ValueError(f"segments has shape {labels.shape}; the images are {n} of {size[0]} x "
                         f"{size[1]} pixels: give one label map {size} for all, one per image "
                         f"{(n,) + size}, or a method name {METHODS}")
    return np.stack([consecutive(one) for one in labels])
