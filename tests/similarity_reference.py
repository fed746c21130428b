"""The test oracle of ``cnn_helper.similarity`` and of the four measures of
``cnn_helper.sanity_checks``: their NumPy / SciPy implementation as it stood before the measures
moved into compiled TensorFlow steps (commit 630d107), kept here so that the compiled measures
are checked against it to float rounding. Not package code: nothing in cnn_helper imports it.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import uniform_filter
from scipy.stats import rankdata

K1, K2 = 0.01, 0.03
HOG_EPSILON = 1e-5


def _local_means(x, window):
    half = window // 2
    means = uniform_filter(x, size=(1, window, window), mode="reflect")
    return means[:, half:x.shape[1] - half, half:x.shape[2] - half]


def ssims(a, b, data_range=None, window=7):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    side = min(a.shape[1:])
    window = min(window, side - (1 - side % 2))
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


def _cell_histograms(maps, orientations, cell):
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


def hog(maps, orientations=9, cell=(8, 8), block=(3, 3)):
    """HOG features of maps (N, H, W): (N, features)."""
    maps = np.asarray(maps, np.float64)
    cells = _cell_histograms(maps, orientations, cell)
    fits = (cells.shape[1] - block[0] + 1, cells.shape[2] - block[1] + 1)
    blocks = sliding_window_view(cells, block, axis=(1, 2))     # (N, R, C, o, b0, b1)
    blocks = blocks.transpose(0, 1, 2, 4, 5, 3).reshape(len(maps), fits[0] * fits[1], -1)
    blocks = blocks / np.sqrt(np.sum(blocks ** 2, axis=-1, keepdims=True) + HOG_EPSILON ** 2)
    blocks = np.minimum(blocks, 0.2)
    blocks = blocks / np.sqrt(np.sum(blocks ** 2, axis=-1, keepdims=True) + HOG_EPSILON ** 2)
    return blocks.reshape(len(maps), -1)


def pearson_rows(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, np.sum(a * b, axis=1) / norms, np.nan)


def spearman_rows(a, b):
    return pearson_rows(rankdata(a, axis=1), rankdata(b, axis=1))


def _hog_of_unit(unit):
    """sanity_checks' HOG: cells of a 7th of each side, blocks of 2x2 cells; None if too small."""
    cells = tuple(max(1, side // 7) for side in unit.shape[1:])
    if any(side // c < 2 for side, c in zip(unit.shape[1:], cells)):
        return None
    return hog(unit, 9, cells, (2, 2))


def _unit_max(m):
    top = m.max(axis=(1, 2), keepdims=True)
    return np.divide(m, top, out=np.zeros_like(m), where=top > 0)


def similarities(reference, maps):
    """sanity_checks.similarities: {measure: (N,)} of maps (N, H, W, C) against reference."""
    reference, maps = np.asarray(reference, np.float64), np.asarray(maps, np.float64)
    signed = [m.sum(axis=-1) for m in (reference, maps)]
    magnitudes = [np.abs(m).sum(axis=-1) for m in (reference, maps)]
    units = [_unit_max(m) for m in magnitudes]
    rows = [m.reshape(len(m), -1) for m in signed + magnitudes]
    hogs = [_hog_of_unit(u) for u in units]
    return {"spearman": spearman_rows(rows[1], rows[0]),
            "spearman_abs": spearman_rows(rows[3], rows[2]),
            "ssim": ssims(units[1], units[0], data_range=1.0),
            "hog": np.full(len(maps), np.nan) if hogs[0] is None else
            pearson_rows(hogs[1], hogs[0])}
