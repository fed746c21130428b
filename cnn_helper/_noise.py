r"""The noisy copies of SmoothGrad and the statistics over them (private): the one implementation
of "average a method over noisy copies of x" behind :func:`cnn_helper.saliency.smoothgrad`,
``squaregrad``, ``vargrad`` and :func:`cnn_helper.combined.noise_tunnel`.

Copy j of image :math:`\x\ip` is :math:`\x\ip + \epsilon_j`, :math:`\epsilon_j \sim N(0,
\sigma^2)` value by value, :math:`\sigma = \text{noise} \cdot (\max \x\ip - \min \x\ip)`, drawn
from (seed, a hash of the image's bytes, j) by a stateless generator: the same copies for an
image wherever it sits in x, for every batch size and every split into calls. With :math:`a_j`
the map of copy j, the statistics, value by value::

    "mean"    (1/n) sum_j a_j                           SmoothGrad  (Smilkov et al. 2017)
    "square"  (1/n) sum_j a_j^2                         SquareGrad  (Hooker et al. 2019)
    "var"     (1/n) sum_j a_j^2 - ((1/n) sum_j a_j)^2   VarGrad     (Adebayo et al. 2018)

(the variance divided by n, as xplique; clipped at 0 against rounding). The sums are kept in
float64, copy after copy.

Example
-------
>>> copies = noisy_copies(x_test[:4], n_samples=10, noise=0.15, seed=0)   # (10 * 4, 28, 28, 1)
>>> smooth = over_copies(gradient(model, copies, 8), 10, "mean")          # (4, 28, 28, 1)
>>> smooth = statistic_of(lambda c, i: gradient(model, c, 8), x_test[:4], 10, 0.15, 0, "mean")
"""
from __future__ import annotations

import numpy as np

from . import _checks, _gradient

STATISTICS = ("mean", "square", "var")
VALUES_PER_CALL = 2 ** 24   # input values of the noisy copies made and explained at once: 64 MB
                            # of float32 (memory, never results): 856 MNIST images x 25 copies


def check(n_samples, noise, seed, statistic="mean") -> tuple:
    """(n_samples, noise, seed, statistic) checked; ValueErrors name the argument."""
    n_samples = _checks.positive_int(n_samples, "n_samples")
    noise = _checks.non_negative(noise, "noise", " (a fraction of the input range)")
    return n_samples, noise, _checks.seed(seed), _checks.one_of(statistic, "statistic",
                                                                 STATISTICS)


def noisy_copies(x, n_samples: int, noise: float, seed: int) -> np.ndarray:
    r"""The n noisy copies of every image of x (N, ...): (n * N, ...) in x's dtype, copy j of
    image i at row j * N + i (module docstring: :math:`\x\ip + \epsilon_j`).

    >>> noisy_copies(x_test[:4], 10, 0.15, 0).shape          # (40, 28, 28, 1)
    """
    x = np.asarray(x)
    flat = x.reshape(len(x), -1)
    sigma = (noise * (flat.max(axis=1) - flat.min(axis=1))).reshape((-1,) + (1,) * (x.ndim - 1))
    keys = _gradient.image_keys(x)
    return np.concatenate([
        x + (sigma * _gradient.standard_noise(keys, seed, j, x.shape[1:])).astype(x.dtype)
        for j in range(n_samples)])


def over_copies(maps, n_samples: int, statistic: str) -> np.ndarray:
    """The ``statistic`` ("mean", "square", "var"; module docstring) of the maps of the noisy
    copies (n * N, ...), copy j of image i at row j * N + i: (N, ...) float64.

    >>> over_copies(np.ones((6, 2)), 3, "var")               # zeros, shape (2, 2)
    """
    maps = np.asarray(maps)
    per_copy = maps.reshape((n_samples, len(maps) // n_samples) + maps.shape[1:])
    total, total_of_squares = 0.0, 0.0
    for a in per_copy:
        a = a.astype(np.float64)
        total, total_of_squares = total + a, total_of_squares + a * a
    mean, mean_of_squares = total / n_samples, total_of_squares / n_samples
    if statistic == "mean":
        return mean
    if statistic == "square":
        return mean_of_squares
    return np.maximum(mean_of_squares - mean ** 2, 0)          # >= 0 despite rounding


def statistic_of(explain, x, n_samples: int, noise: float, seed: int, statistic: str):
    """The ``statistic`` over n noisy copies of each image of x (N, ...) of the maps
    ``explain(copies, image_of_copy)`` returns (one map per copy; ``image_of_copy`` (n * G,) are
    the indices in x of the images the copies were made from): (N, ...) float64. The copies of
    as many images as fit in ``VALUES_PER_CALL`` input values (at least one image) are made and
    explained at once; they and the result do not depend on that split.

    >>> statistic_of(lambda c, i: gradient(model, c, 8), x_test[:4], 10, 0.15, 0, "var")
    """
    group = max(1, VALUES_PER_CALL // (n_samples * int(np.prod(x.shape[1:]))))
    parts = []
    for start in range(0, len(x), group):
        images = np.arange(start, min(start + group, len(x)))
        copies = noisy_copies(x[images], n_samples, noise, seed)
        maps = explain(copies, np.tile(images, n_samples))
        parts.append(over_copies(maps, n_samples, statistic))
    return np.concatenate(parts)
