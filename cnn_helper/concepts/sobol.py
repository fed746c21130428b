r"""Sobol total indices over random masks, by Jansen's estimator (Fel et al., NeurIPS 2021; the
estimator: Jansen 1999, Saltelli et al. 2010).

A function f of d inputs :math:`m = (m_1, \ldots, m_d)`, each uniform on [0, 1] and independent
(in CRAFT: how much of each concept an image keeps). The total index of input i is the share of
the variance of f that goes away when every input but i is fixed, averaged over those inputs:

.. math::  S_{T_i} = \frac{\mathbb{E}_{m_{\sim i}}\big[\mathrm{Var}_{m_i}(f \mid m_{\sim i})\big]}
                          {\mathrm{Var}(f)}

It counts input i's own effect and all its interactions. Jansen's estimator needs two matrices
A and B of n designs each (rows of d values) and, for each i, :math:`C^{(i)}`: A with its column
i taken from B. Then

.. math::  \hat S_{T_i} = \frac{\frac{1}{2n}\sum_j \big(f(A_j) - f(C^{(i)}_j)\big)^2}
                              {\mathrm{Var}\big(f(A), f(B)\big)}

A and B are drawn from a scrambled Sobol sequence (quasi-Monte Carlo: the designs cover the cube
evenly), seeded: n (d + 2) evaluations of f in all.

Example
-------
>>> a, b = design(3, 1024, seed=0)
>>> values = f(masks(a, b))                       # f on n (d + 2) rows of 3 values
>>> jansen_total(values, 1024, 3)                 # (3,) the total indices
>>> total_indices(lambda m: m @ [1.0, 2.0, 0.0], 3, 1024)    # about (0.2, 0.8, 0)
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import _checks


def design(d: int, n: int, seed: int = 0) -> tuple:
    """Two (n, d) matrices A and B of points in [0, 1]^d: the first and last d columns of n
    points of a scrambled Sobol sequence in 2d dimensions (``scipy.stats.qmc``), seeded. A power
    of 2 for n keeps the sequence balanced.

    >>> a, b = design(4, 32, seed=0)                 # (32, 4) each"""
    from scipy.stats import qmc

    d, n = _checks.positive_int(d, "d"), _checks.positive_int(n, "n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)         # "balance properties" for n != 2^k
        points = qmc.Sobol(2 * d, scramble=True, seed=_checks.seed(seed)).random(n)
    return points[:, :d], points[:, d:]


def masks(a, b) -> np.ndarray:
    """The n (d + 2) rows f is evaluated on: A, B, then :math:`C^{(1)}, \\ldots, C^{(d)}`
    (A with column i taken from B).

    >>> masks(np.zeros((2, 3)), np.ones((2, 3)))[4:6]    # C^(1): [[1, 0, 0], [1, 0, 0]]"""
    a, b = np.asarray(a), np.asarray(b)
    mixed = []
    for i in range(a.shape[1]):
        c = a.copy()
        c[:, i] = b[:, i]
        mixed.append(c)
    return np.concatenate([a, b] + mixed)


def jansen_total(values, n: int, d: int) -> np.ndarray:
    r"""The total indices (d,) from f's values on ``masks(A, B)`` (n (d + 2) values): Jansen's
    estimator (module docstring). A constant f has no variance to share: all zeros.

    >>> jansen_total(f(masks(a, b)), len(a), a.shape[1])"""
    values = np.asarray(values, np.float64)
    if values.shape != (n * (d + 2),):
        raise ValueError(f"values has shape {values.shape}; masks of n={n} designs and d={d} "
                         f"inputs give {n * (d + 2)} values")
    f_a, f_b, f_c = values[:n], values[n:2 * n], values[2 * n:].reshape(d, n)
    variance = np.var(np.concatenate([f_a, f_b]))
    if variance == 0:
        return np.zeros(d)
    return np.mean((f_a[None] - f_c) ** 2, axis=1) / (2 * variance)


def total_indices(f, d: int, n: int = 1024, seed: int = 0) -> np.ndarray:
    """The Sobol total index of each of the d inputs of ``f`` (rows (m, d) in [0, 1] -> (m,)),
    from n designs (Jansen's estimator on a seeded Sobol sequence).

    >>> total_indices(lambda m: m[:, 0] + 2 * m[:, 1], 2)      # about (0.2, 0.8)"""
    a, b = design(d, n, seed)
    return jansen_total(np.asarray(f(masks(a, b))), n, d)
