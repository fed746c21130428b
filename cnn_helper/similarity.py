r"""How alike two maps are: rank correlation (Spearman), the structural similarity index (SSIM),
and histograms of oriented gradients (HOG) compared by correlation.

**Spearman.** The Pearson correlation of the ranks of two vectors (:func:`spearman_rows`). The
rank of :math:`x_i` among the D values of x is 1 for the smallest; tied values share the mean of
the ranks they cover, so that rank :math:`x_i` = (number of values below :math:`x_i`) + (number
equal to it, :math:`x_i` included, + 1) / 2, as ``scipy.stats.rankdata`` gives it.

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

**Computing them.** Each measure is written once, in TensorFlow, on float64 tensors of a whole
stack of maps: ``ranks_of``, ``pearson_of``, ``ssim_of``, ``hog_of``. They run inside compiled
steps (:func:`compiled`: a ``tf.function``, traced once per shape of maps and then reused), so
that ``sanity_checks`` can measure a step's maps in the same compiled call. The functions without
``_of`` take and return NumPy arrays: they check their input and run the compiled step.

>>> ssim(approximate_map, exact_map)            # 0.97: close
>>> hog(maps).shape                              # (N, features) for maps (N, H, W)
"""
from __future__ import annotations

import functools

import numpy as np

K1, K2 = 0.01, 0.03
HOG_EPSILON = 1e-5


@functools.cache
def compiled(fn, any_size: bool = False):
    """``fn`` compiled by TensorFlow (``tf.function``), one per function: traced on its first
    call for each shape of its tensors and each value of its Python arguments (a window size,
    cells), then reused. ``any_size``: after a second shape, one trace serves tensors of every
    size (for a function that reads no size from its tensors: rows of any length).

    >>> compiled(ssim_of)(a, b, ranges, window=7)     # a, b: float64 stacks (N, H, W)
    """
    import tensorflow as tf

    return tf.function(fn, autograph=False, reduce_retracing=any_size)


def _run(fn, *arrays, any_size: bool = False, **static):
    """``fn`` compiled, called on ``arrays`` as float64 and ``static`` Python values: NumPy."""
    step = compiled(fn, any_size)
    return step(*(np.asarray(a, np.float64) for a in arrays), **static).numpy()


# --------------------------------------------------------------------------- correlations


def ranks_of(x):
    """The rank of each value among the values of its row of x (N, D), ties their mean rank
    (module docstring): (N, D), as ``scipy.stats.rankdata(x, axis=1)``. A row holding a NaN is
    all NaN.

    The rows are sorted; in sorted order, a run of equal values at positions first..last (from
    0) all get the rank (first + last) / 2 + 1; the ranks then go back to the values' own
    places. The rows are laid end to end, so that every row starts a new run."""
    import tensorflow as tf

    n, d = tf.shape(x)[0], tf.shape(x)[1]
    row_starts = tf.reshape(tf.broadcast_to(tf.range(n)[:, None] * d, (n, d)), [-1])
    order = tf.reshape(tf.argsort(x, axis=1), [-1]) + row_starts     # one permutation of N * D
    ordered = tf.gather(tf.reshape(x, [-1]), order)
    new_run = tf.concat([[True], ordered[1:] != ordered[:-1]], 0) | (row_starts == tf.range(n * d))
    firsts = tf.cast(tf.where(new_run)[:, 0], tf.int32)               # where each run starts
    run = tf.cumsum(tf.cast(new_run, tf.int32)) - 1                   # the run of each position
    first, last = tf.gather(firsts, run), tf.gather(tf.concat([firsts[1:], [n * d]], 0) - 1, run)
    ranks = tf.cast(first + last - 2 * row_starts, x.dtype) / 2 + 1
    ranks = tf.reshape(tf.gather(ranks, tf.math.invert_permutation(order)), (n, d))
    has_nan = tf.reduce_any(tf.math.is_nan(x), axis=1, keepdims=True)
    return tf.where(has_nan, tf.constant(np.nan, x.dtype), ranks)


def pearson_of(a, b):
    """The Pearson correlation of each row of a with the same row of b, tensors (N, D) -> (N,)
    (:func:`pearson_rows`)."""
    import tensorflow as tf

    a = a - tf.reduce_mean(a, axis=1, keepdims=True)
    b = b - tf.reduce_mean(b, axis=1, keepdims=True)
    norms = tf.sqrt(tf.reduce_sum(a * a, axis=1) * tf.reduce_sum(b * b, axis=1))
    return tf.where(norms > 0, tf.reduce_sum(a * b, axis=1) / norms,
                    tf.constant(np.nan, a.dtype))


def _spearman_of(a, b):
    """The Spearman correlation of each row of a with the same row of b: (N,)."""
    return pearson_of(ranks_of(a), ranks_of(b))


def _same_shape(a, b, what: str, ndim: int = 2):
    """a and b as float64 arrays of the same shape with ``ndim`` axes: rows (N, D) or a stack of
    2-D maps (N, H, W)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != ndim:
        kind = "rows of two arrays of the same shape (N, D)" if ndim == 2 else \
            "maps of the same shape, (N, H, W) for a stack"
        raise ValueError(f"{what} compares {kind}; got {a.shape} and {b.shape}")
    return a, b


def pearson_rows(a, b) -> np.ndarray:
    r"""The Pearson correlation of each row of a with the same row of b, (N, D) -> (N,):
    :math:`\sum (a - \bar a)(b - \bar b) / \sqrt{\sum (a - \bar a)^2 \sum (b - \bar b)^2}`;
    NaN where a row is constant (the correlation is undefined).

    >>> pearson_rows([[1, 2, 3]], [[2, 4, 7]])       # array([0.99339927])
    """
    return _run(pearson_of, *_same_shape(a, b, "pearson_rows"), any_size=True)


def spearman_rows(a, b) -> np.ndarray:
    """The Spearman rank correlation of each row of a with the same row of b, (N, D) -> (N,):
    the Pearson correlation of their ranks (ties get their mean rank), as
    ``scipy.stats.spearmanr`` computes it; NaN where a row is constant.

    >>> spearman_rows([[1, 2, 3]], [[2, 4, 70]])      # array([1.])
    """
    return _run(_spearman_of, *_same_shape(a, b, "spearman_rows"), any_size=True)


# --------------------------------------------------------------------------- SSIM


def _local_means(x, window: int):
    """Means of each map of x (N, H, W) over every window x window square that fits inside it:
    the sums of ``window`` shifted rows, then of ``window`` shifted columns of those."""
    import tensorflow as tf

    rows, cols = x.shape[1] - window + 1, x.shape[2] - window + 1
    sums = tf.add_n([x[:, i:i + rows] for i in range(window)])
    sums = tf.add_n([sums[:, :, j:j + cols] for j in range(window)])
    return sums / window ** 2


def _fitting_window(shape, window: int = 7) -> int:
    """``window`` (odd), shrunk to the largest odd size that fits maps of ``shape`` (H, W)."""
    side = min(shape)
    return min(window, side - (1 - side % 2))


def ssim_of(a, b, ranges, window: int = 7):
    """The mean SSIM of each pair of maps of two float64 stacks (N, H, W), b the reference, with
    the data ranges L ``ranges`` (N,): (N,) (:func:`ssims`)."""
    import tensorflow as tf

    window = _fitting_window(a.shape[1:], window)
    n = window * window
    scale = n / (n - 1) if n > 1 else 1.0
    mu_a, mu_b = _local_means(a, window), _local_means(b, window)
    var_a = scale * (_local_means(a * a, window) - mu_a ** 2)
    var_b = scale * (_local_means(b * b, window) - mu_b ** 2)
    cov = scale * (_local_means(a * b, window) - mu_a * mu_b)
    c1, c2 = ((K1 * ranges) ** 2)[:, None, None], ((K2 * ranges) ** 2)[:, None, None]
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
             / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    equal = tf.cast(tf.reduce_all(a == b, axis=[1, 2]), a.dtype)
    return tf.where(ranges == 0, equal, tf.reduce_mean(index, axis=[1, 2]))


def ssims(a, b, data_range=None, window: int = 7) -> np.ndarray:
    """The mean SSIM of each pair of 2-D maps of two stacks (N, H, W): (N,) float64. ``b`` is the
    reference; ``data_range`` None takes each reference map's own range of values. All pairs
    are computed in one compiled step (the same numbers as :func:`ssim` pair by pair)."""
    a, b = _same_shape(a, b, "ssims", ndim=3)
    if _fitting_window(a.shape[1:], window) < 1:
        raise ValueError(f"the maps {a.shape[1:]} are too small for a window")
    ranges = np.ptp(b.reshape(len(b), -1), axis=1) if data_range is None else \
        np.full(len(b), float(data_range))
    return _run(ssim_of, a, b, ranges, window=int(window))


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


def _central_differences(maps, axis: int):
    """m[i + 1] - m[i - 1] along ``axis`` (1: rows, 2: columns) of maps (N, H, W); 0 on the
    first and last row or column."""
    import tensorflow as tf

    if maps.shape[axis] < 3:
        return tf.zeros_like(maps)
    ahead, behind = [slice(None)] * 3, [slice(None)] * 3
    ahead[axis], behind[axis] = slice(2, None), slice(None, -2)
    padding = [[0, 0]] * 3
    padding[axis] = [1, 1]
    return tf.pad(maps[tuple(ahead)] - maps[tuple(behind)], padding)


def _cell_histograms(maps, orientations: int, cell: tuple):
    """Step 1 and 2: (N, cell rows, cell cols, orientations), each cell's mean magnitude per bin.
    Every kept pixel adds its magnitude to one bin, numbered across all cells of all maps."""
    import tensorflow as tf

    g_row, g_col = _central_differences(maps, 1), _central_differences(maps, 2)
    magnitude = tf.sqrt(g_row ** 2 + g_col ** 2)
    angle = tf.math.floormod(tf.math.atan2(g_row, g_col) * (180 / np.pi), 180)
    bins = tf.minimum(tf.cast(angle / (180 / orientations), tf.int32), orientations - 1)
    n, rows, cols = tf.shape(maps)[0], maps.shape[1] // cell[0], maps.shape[2] // cell[1]
    kept = (slice(None), slice(0, rows * cell[0]), slice(0, cols * cell[1]))
    cell_row = np.arange(rows * cell[0]) // cell[0]
    cell_col = np.arange(cols * cell[1]) // cell[1]
    cells = (tf.range(n)[:, None, None] * rows + cell_row[:, None]) * cols + cell_col  # (N, h, w)
    votes = tf.math.unsorted_segment_sum(magnitude[kept], cells * orientations + bins[kept],
                                         n * rows * cols * orientations)
    return tf.reshape(votes, (-1, rows, cols, orientations)) / (cell[0] * cell[1])


def _l2_normalized(blocks):
    """Each vector of the last axis of blocks, v / sqrt(||v||^2 + epsilon^2)."""
    import tensorflow as tf

    return blocks / tf.sqrt(tf.reduce_sum(blocks ** 2, axis=-1, keepdims=True) + HOG_EPSILON ** 2)


def hog_of(maps, orientations: int, cell: tuple, block: tuple):
    """HOG features (module docstring) of a float64 stack of maps (N, H, W): (N, features);
    ``cell`` and ``block`` pairs that fit the maps (:func:`hog`)."""
    import tensorflow as tf

    cells = _cell_histograms(maps, orientations, cell)
    fits = (cells.shape[1] - block[0] + 1, cells.shape[2] - block[1] + 1)
    blocks = tf.stack([cells[:, i:i + fits[0], j:j + fits[1]]          # (N, R, C, cells, o)
                       for i in range(block[0]) for j in range(block[1])], axis=3)
    blocks = tf.reshape(blocks, (-1, fits[0] * fits[1], block[0] * block[1] * orientations))
    blocks = _l2_normalized(tf.minimum(_l2_normalized(blocks), 0.2))
    return tf.reshape(blocks, (-1, fits[0] * fits[1] * block[0] * block[1] * orientations))


def _hog_arguments(shape, orientations, pixels_per_cell, cells_per_block) -> dict:
    """The checked arguments of :func:`hog_of` for maps of ``shape`` (H, W)."""
    if not isinstance(orientations, (int, np.integer)) or orientations < 1:
        raise ValueError(f"orientations must be an int >= 1, got {orientations!r}")
    cell = _pair_of_ints(pixels_per_cell, "pixels_per_cell")
    block = _pair_of_ints(cells_per_block, "cells_per_block")
    if any(side // c < b for side, c, b in zip(shape, cell, block)):
        raise ValueError(f"maps of {tuple(shape)} are too small for blocks of {block} cells of "
                         f"{cell} pixels; they need at least {block[0] * cell[0]} rows and "
                         f"{block[1] * cell[1]} columns")
    return {"orientations": int(orientations), "cell": cell, "block": block}


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
    features = _run(hog_of, maps.reshape((-1,) + maps.shape[-2:]),
                    **_hog_arguments(maps.shape[-2:], orientations, pixels_per_cell,
                                     cells_per_block))
    return features[0] if maps.ndim == 2 else features


def _hog_similarity_of(a, b, orientations: int, cell: tuple, block: tuple):
    """The Pearson correlation of the HOG features of each pair of maps: (N,)."""
    return pearson_of(hog_of(a, orientations, cell, block), hog_of(b, orientations, cell, block))


def hog_similarity(a, b, orientations: int = 9, pixels_per_cell=(8, 8),
                   cells_per_block=(3, 3)) -> np.ndarray:
    """The Pearson correlation of the HOG features of each pair of maps of two stacks (N, H, W):
    (N,) (Adebayo et al. 2018). NaN where a map has no gradient at all (constant)."""
    a, b = _same_shape(a, b, "hog_similarity", ndim=3)
    return _run(_hog_similarity_of, a, b, **_hog_arguments(a.shape[1:], orientations,
                                                           pixels_per_cell, cells_per_block))
