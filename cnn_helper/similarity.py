r"""How alike two maps are: the structural similarity index (SSIM), and histograms of oriented
gradients (HOG) compared by correlation.

**SSIM.** Wang, Bovik, Sheikh & Simoncelli (2004), "Image quality assessment: from error
visibility to structural similarity". For two maps a and b, over every ``window`` x ``window``
square that fits inside them, with the local means :math:`\mu`, variances :math:`\sigma^2` and
covariance :math:`\sigma_{ab}` (sample statistics, divided by :math:`w^2 - 1`),

.. math::

    \mathrm{SSIM} = \frac{(2 \mu_a \mu_b + C_1)(2 \sigma_{ab} + C_2)}
                         {(\mu_a^2 + \mu_b^2 + C_1)(\sigma_a^2 + \sigma_b^2 + C_2)},
    \qquad C_1 = (0.01 L)^2,\ C_2 = (0.03 L)^2,

averaged over the squares; L is the data range (default: the range of values of b, the
reference). 1 means identical; it falls with differences of structure, contrast and brightness.
Scikit-image's ``structural_similarity`` with its defaults (a 7x7 uniform window) computes the
same number.

**HOG** (Dalal & Triggs 2005, "Histograms of oriented gradients for human detection"), as
scikit-image's ``feature.hog`` computes it (its defaults, no square-root compression):

1. gradients by central differences, :math:`g_r = m_{r+1,c} - m_{r-1,c}`, :math:`g_c = m_{r,c+1}
   - m_{r,c-1}` (0 on the border rows / columns), magnitude :math:`|g|` and unsigned orientation
   :math:`\theta = \mathrm{atan2}(g_r, g_c) \bmod 180°`;
2. cells of ``pixels_per_cell`` pixels (the rows and columns that do not fill a cell are left
   out): in each, a histogram of ``orientations`` bins of :math:`180°/n` each, every pixel adding
   its magnitude to the bin of its orientation (no interpolation), divided by the cell's area;
3. blocks of ``cells_per_block`` cells, one at every cell position where it fits, each block's
   histograms normalized by L2-Hys: :math:`v / \sqrt{\|v\|^2 + \epsilon^2}`, clipped at 0.2,
   normalized again (:math:`\epsilon = 10^{-5}`);
4. all blocks concatenated into one feature vector.

Adebayo et al. (2018) compare two saliency maps by the Pearson correlation of their HOG
features (:func:`hog_similarity`): it sees whether the same edges run in the same directions
in the same places, whatever their exact intensities.

>>> ssim(approximate_map, exact_map)            # 0.97: close
>>> hog(maps).shape                              # (N, features) for maps (N, H, W)
"""
from __future__ import annotations

import numpy as np

K1, K2 = 0.01, 0.03
HOG_EPSILON = 1e-5


def _local_means(x, window: int):
    """Means of each map of x (N, H, W) over every window x window square that fits inside it."""
    from scipy.ndimage import uniform_filter

    half = window // 2
    means = uniform_filter(x, size=(1, window, window), mode="reflect")
    return means[:, half:x.shape[1] - half, half:x.shape[2] - half]


def _stacks(a, b, what: str):
    """a and b as float64 stacks of 2-D maps (N, H, W) of the same shape."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"{what} compares maps of the same shape, (N, H, W) for a stack; got "
                         f"{a.shape} and {b.shape}")
    return a, b


def ssims(a, b, data_range=None, window: int = 7) -> np.ndarray:
    """The mean SSIM of each pair of 2-D maps of two stacks (N, H, W): (N,) float64. ``b`` is the
    reference; ``data_range`` None takes each reference map's own range of values. Every pair is
    computed in one pass of the filters (the same numbers as :func:`ssim` pair by pair)."""
    a, b = _stacks(a, b, "ssims")
    side = min(a.shape[1:])
    window = min(window, side - (1 - side % 2))
    if window < 1:
        raise ValueError(f"the maps {a.shape[1:]} are too small for a window")
    L = np.ptp(b.reshape(len(b), -1), axis=1) if data_range is None else \
        np.full(len(b), float(data_range))
    n = window * window
    scale = n / (n - 1) if n > 1 else 1.0
    mu_a, mu_b = _local_means(a, window), _local_means(b, window)
    var_a = scale * (_local_means(a * a, window) - mu_a ** 2)
    var_b = scale * (_local_means(b * b, window) - mu_b ** 2)
    cov = scale * (_local_means(a * b, window) - mu_a * mu_b)
    c1, c2 = ((K1 * L) ** 2)[:, None, None], ((K2 * L) ** 2)[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                 / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    equal = np.all(a == b, axis=(1, 2))
    return np.where(L == 0, equal.astype(float), index.mean(axis=(1, 2)))


def ssim(a, b, data_range=None, window: int = 7) -> float:
    """The mean SSIM of two 2-D maps of the same shape; ``b`` is the reference. ``window`` (odd)
    shrinks to the largest odd size that fits a small map. A constant reference (range 0) gives
    1 when a equals it, else 0."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim compares two 2-D maps of the same shape, got {a.shape} and "
                         f"{b.shape}")
    return float(ssims(a[None], b[None], data_range, window)[0])


# --------------------------------------------------------------------------- HOG


def _pair_of_ints(value, name: str) -> tuple:
    """An int or a pair of ints >= 1, as a pair."""
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                 and v >= 1 for v in pair):
        raise ValueError(f"{name} must be an int >= 1 or a pair of them, got {value!r}")
    return tuple(int(v) for v in pair)


def _cell_histograms(maps, orientations: int, cell: tuple):
    """Step 1 and 2: (N, cell rows, cell cols, orientations), each cell's mean magnitude per bin."""
    g_row, g_col = np.zeros_like(maps), np.zeros_like(maps)
    g_row[:, 1:-1] = maps[:, 2:] - maps[:, :-2]
    g_col[:, :, 1:-1] = maps[:, :, 2:] - maps[:, :, :-2]
    magnitude = np.hypot(g_row, g_col)
    angle = np.rad2deg(np.arctan2(g_row, g_col)) % 180
    bins = np.minimum((angle / (180 / orientations)).astype(int), orientations - 1)
    n, rows, cols = len(maps), maps.shape[1] // cell[0], maps.shape[2] // cell[1]
    votes = np.zeros((n, rows * cell[0], cols * cell[1], orientations))
    kept = (slice(None), slice(0, rows * cell[0]), slice(0, cols * cell[1]))
    np.put_along_axis(votes, bins[kept][..., None], magnitude[kept][..., None], axis=-1)
    votes = votes.reshape(n, rows, cell[0], cols, cell[1], orientations)
    return votes.sum(axis=(2, 4)) / (cell[0] * cell[1])


def hog(maps, orientations: int = 9, pixels_per_cell=(8, 8), cells_per_block=(3, 3)):
    """HOG features (module docstring) of each 2-D map of ``maps`` (N, H, W), or of one map
    (H, W): (N, features) float64, or (features,). Defaults and numbers are those of
    ``skimage.feature.hog(m)`` (L2-Hys blocks); all maps are computed together.

    >>> hog(np.random.rand(28, 28), pixels_per_cell=4, cells_per_block=2).shape
    (1296,)
    """
    maps = np.asarray(maps, np.float64)
    if maps.ndim not in (2, 3):
        raise ValueError(f"maps must be 2-D maps (N, H, W) or one map (H, W), got {maps.shape}")
    single = maps.ndim == 2
    maps = maps[None] if single else maps
    if not isinstance(orientations, (int, np.integer)) or orientations < 1:
        raise ValueError(f"orientations must be an int >= 1, got {orientations!r}")
    cell = _pair_of_ints(pixels_per_cell, "pixels_per_cell")
    block = _pair_of_ints(cells_per_block, "cells_per_block")
    cells = _cell_histograms(maps, int(orientations), cell)
    fits = (cells.shape[1] - block[0] + 1, cells.shape[2] - block[1] + 1)
    if min(fits) < 1:
        raise ValueError(f"maps of {maps.shape[1:]} are too small for blocks of {block} cells "
                         f"of {cell} pixels; they need at least {block[0] * cell[0]} rows and "
                         f"{block[1] * cell[1]} columns")
    from numpy.lib.stride_tricks import sliding_window_view

    blocks = sliding_window_view(cells, block, axis=(1, 2))     # (N, R, C, o, b0, b1)
    blocks = blocks.transpose(0, 1, 2, 4, 5, 3).reshape(len(maps), fits[0] * fits[1], -1)
    blocks = blocks / np.sqrt(np.sum(blocks ** 2, axis=-1, keepdims=True) + HOG_EPSILON ** 2)
    blocks = np.minimum(blocks, 0.2)
    blocks = blocks / np.sqrt(np.sum(blocks ** 2, axis=-1, keepdims=True) + HOG_EPSILON ** 2)
    features = blocks.reshape(len(maps), -1)
    return features[0] if single else features


def pearson_rows(a, b) -> np.ndarray:
    r"""The Pearson correlation of each row of a with the same row of b, (N, D) -> (N,):
    :math:`\sum (a - \bar a)(b - \bar b) / \sqrt{\sum (a - \bar a)^2 \sum (b - \bar b)^2}`;
    NaN where a row is constant (the correlation is undefined)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, np.sum(a * b, axis=1) / norms, np.nan)


def spearman_rows(a, b) -> np.ndarray:
    """The Spearman rank correlation of each row of a with the same row of b, (N, D) -> (N,):
    the Pearson correlation of their ranks (ties get their mean rank), as
    ``scipy.stats.spearmanr`` computes it; NaN where a row is constant."""
    from scipy.stats import rankdata

    return pearson_rows(rankdata(a, axis=1), rankdata(b, axis=1))


def hog_similarity(a, b, orientations: int = 9, pixels_per_cell=(8, 8),
                   cells_per_block=(3, 3)) -> np.ndarray:
    """The Pearson correlation of the HOG features of each pair of maps of two stacks (N, H, W):
    (N,) (Adebayo et al. 2018). NaN where a map has no gradient at all (constant)."""
    a, b = _stacks(a, b, "hog_similarity")
    return pearson_rows(hog(a, orientations, pixels_per_cell, cells_per_block),
                        hog(b, orientations, pixels_per_cell, cells_per_block))
