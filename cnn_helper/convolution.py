r"""Hand-made convolution, the teaching tools of the course's earlier lectures.

A 2-D filter F of odd size f x f centred at input location (r, c) gives

.. math::  \mathrm{out}[r, c] = \sum_{i, j} F[i, j] \; \mathrm{img}_{pad}[r + i, c + j]

where img_pad is the input zero-padded by (f - 1) / 2 on every side, so the output has the
input's size (this is cross-correlation, which is what deep-learning "convolution" computes).

Example
-------
>>> img = create_img()
>>> out = apply_filt_2d(img, filters()["vertical edge: light to dark"])
>>> out.shape == img.shape
True
"""
from __future__ import annotations

import numpy as np


def create_img(size: int = 10) -> np.ndarray:
    """A small synthetic grey image: dark background, a light square with a light bar below it.

    It has vertical and horizontal light-to-dark and dark-to-light edges, a light horizontal band
    and an "L"-shaped corner, so each teaching filter finds something.
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 to hold the shapes, got {size}")
    img = np.zeros((size, size), dtype=np.float32)
    q = size // 5
    img[q:3 * q, q:3 * q] = 1.0            # a light square
    img[size - 2 * q:size - q, q:size - q] = 1.0   # a light horizontal band
    return img


def filters() -> dict:
    """The named 3x3 teaching filters.

    - "vertical edge: light to dark"   : +1 left column, -1 right column
    - "horizontal edge: light to dark" : +1 top row, -1 bottom row
    - "horizontal light band"          : +1 middle row, -1/2 the rows around it
    - "vertical light band"            : the transpose
    - "L"                              : +1 on an L (left column and bottom row), -1/2 elsewhere
    """
    vertical = np.array([[1, 0, -1]] * 3, dtype=np.float32)
    band = np.array([[-0.5] * 3, [1] * 3, [-0.5] * 3], dtype=np.float32)
    ell = np.full((3, 3), -0.5, dtype=np.float32)
    ell[:, 0] = 1
    ell[2, :] = 1
    return {"vertical edge: light to dark": vertical,
            "horizontal edge: light to dark": vertical.T.copy(),
            "horizontal light band": band,
            "vertical light band": band.T.copy(),
            "L": ell}


def _check_2d(name, a):
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, cols), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real numbers, got dtype {a.dtype}")
    return a.astype(np.float32)


def pad(img, n: int = 1) -> np.ndarray:
    """Zero padding: ``n`` rows/columns of zeros on every side of a 2-D image."""
    img = _check_2d("img", img)
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"padding n must be a non-negative int, got {n!r}")
    return np.pad(img, n, mode="constant")


def apply_filt_2d(img, filt) -> np.ndarray:
    """Apply ``filt`` (odd size f x f) centred at every location of ``img``; same size output.

    Vectorised: every f x f window of the padded image is viewed at once (no copies) and
    multiplied with the filter; out[r, c] is the filter centred at img[r, c].
    """
    img, filt = _check_2d("img", img), _check_2d("filt", filt)
    f_rows, f_cols = filt.shape
    if f_rows % 2 == 0 or f_cols % 2 == 0:
        raise ValueError(f"filter must have odd sides so it has a centre, got shape {filt.shape}")
    padded = np.pad(img, ((f_rows // 2,), (f_cols // 2,)), mode="constant")
    windows = np.lib.stride_tricks.sliding_window_view(padded, filt.shape)
    return np.einsum("rcij,ij->rc", windows, filt)
