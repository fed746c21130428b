r"""KernelSHAP's coalitions and its constrained fit (private; NumPy only, no model).

For M players (regions) the Shapley kernel weighs a coalition :math:`z \in \{0, 1\}^M` of size
:math:`|z| = s` by

.. math::  \pi(z) = \frac{M - 1}{\binom{M}{s}\, s\, (M - s)}, \qquad 0 < s < M,

so all coalitions of size s together weigh :math:`\frac{M - 1}{s (M - s)}`: the small and the
large coalitions matter most. The empty and the full coalition weigh infinitely much: the fit
passes through them exactly (:func:`kernel_fit`). Lundberg & Lee (2017, Theorem 2): the weighted
least-squares fit over all :math:`2^M` coalitions is the vector of Shapley values.

Example
-------
>>> z, w, exact = kernel_coalitions(4, 2000, np.random.default_rng(0))   # all 16, exact
>>> phi, phi_0, f_full, f_empty, r2 = kernel_fit(z, f, w)
"""
from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

EXACT_UP_TO = 20           # M beyond which 2^M coalitions are never listed, whatever n_samples


def size_mass(m: int) -> np.ndarray:
    r"""The kernel's total weight of each size s = 1..M-1, :math:`\frac{M - 1}{s (M - s)}`,
    normalised to sum to 1.

    >>> size_mass(4)                                   # array([0.375, 0.25 , 0.375])
    """
    sizes = np.arange(1, m)
    mass = (m - 1) / (sizes * (m - sizes))
    return mass / mass.sum()


def _all_of_size(m: int, size: int) -> np.ndarray:
    """Every coalition of ``size`` players out of m, (C(m, size), m) uint8."""
    rows = np.zeros((comb(m, size), m), np.uint8)
    for row, kept in zip(rows, combinations(range(m), size)):
        row[list(kept)] = 1
    return rows


def _ends(m: int) -> np.ndarray:
    """The full and the empty coalition (2, m)."""
    return np.array([[1] * m, [0] * m], np.uint8)


def _enumerated(m: int, budget: int) -> tuple:
    """(rows, weights, the sizes left, their mass left): the sizes (s, M - s), from s = 1
    inwards, whose every coalition the budget covers at the kernel's rate, listed whole with
    weight pi(z) each (normalised mass)."""
    mass = size_mass(m)
    rows, weights, left = [], [], list(range(1, m))
    mass_left, budget_left = 1.0, budget
    for size in range(1, m // 2 + 1):
        pair = sorted({size, m - size})
        count = sum(comb(m, s) for s in pair)
        share = sum(mass[s - 1] for s in pair)
        if budget_left * share / mass_left < count * (1 - 1e-9):
            break
        for s in pair:
            rows.append(_all_of_size(m, s))
            weights.append(np.full(comb(m, s), mass[s - 1] / comb(m, s)))
            left.remove(s)
        mass_left, budget_left = mass_left - share, budget_left - count
    return rows, weights, left, mass_left


def _sampled(m: int, budget: int, sizes: list, mass_left: float, rng) -> tuple:
    """``budget`` distinct coalitions of the ``sizes`` left, drawn from the kernel (a size with
    probability proportional to its mass, then the players uniformly), each followed by its
    complement; the first ``budget`` distinct ones in the order drawn are kept, and a coalition
    drawn again adds to its count. Weights: the counts, scaled to ``mass_left``."""
    p = size_mass(m)[np.array(sizes) - 1]
    draws, distinct = [], 0
    for _ in range(8):                                    # rounds of draws; rarely more than one
        n = max(1, budget - distinct)
        chosen = rng.choice(sizes, size=n, p=p / p.sum())
        kept = (np.argsort(rng.random((n, m)), axis=1) < chosen[:, None]).astype(np.uint8)
        draws.append(np.stack([kept, 1 - kept], axis=1).reshape(-1, m))   # z, then 1 - z
        every = np.concatenate(draws)
        packed = np.packbits(every, axis=1)                 # one byte string per coalition
        keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        distinct = len(first)
        if distinct >= budget:
            break
    order = np.argsort(first)[:budget]
    weights = counts[order].astype(np.float64)
    return every[first[order]], weights * mass_left / weights.sum()


def kernel_coalitions(m: int, n_samples: int, rng) -> tuple:
    r"""(coalitions (n, M) uint8, kernel weights (n,), exact) for M players and a budget of
    ``n_samples`` coalitions, the full and the empty one first (weight inf). Exact: all
    :math:`2^M` when they fit. Else the sizes the budget covers are listed whole, from 1 and
    M - 1 inwards, and the rest are sampled from the kernel (paired; repeats merged), as the
    ``shap`` package's KernelExplainer does.

    >>> z, w, exact = kernel_coalitions(10, 2000, np.random.default_rng(0))  # 1024 rows, exact
    """
    if m == 1:
        return _ends(1), np.array([np.inf, np.inf]), True
    exact = m <= EXACT_UP_TO and 2 ** m <= n_samples
    budget = 2 ** m - 2 if exact else n_samples - 2
    rows, weights, sizes, mass_left = _enumerated(m, budget)
    listed = sum(len(r) for r in rows)
    if sizes and budget > listed:
        sampled, sampled_weights = _sampled(m, budget - listed, sizes, mass_left, rng)
        rows, weights = rows + [sampled], weights + [sampled_weights]
    z = np.concatenate([_ends(m)] + rows)
    return z, np.concatenate([[np.inf, np.inf]] + weights), exact


def kernel_fit(z, f, weights) -> tuple:
    r"""(phi (M,), phi_0, f(1), f(0), NaN) of the constrained weighted least squares of
    Lundberg & Lee: :math:`\min_\phi \sum_j \pi_j (f_j - \phi_0 - z_j \cdot \phi)^2` over the
    coalitions of finite weight, subject to :math:`\phi_0 = f(\mathbf 0)` and
    :math:`\sum_i \phi_i = f(\mathbf 1) - f(\mathbf 0)`. The constraint removes the last
    unknown, :math:`\phi_M = \Delta - \sum_{i<M} \phi_i` with :math:`\Delta = f(\mathbf 1) -
    f(\mathbf 0)`, leaving an ordinary weighted least squares in :math:`\phi_1..\phi_{M-1}`.

    >>> phi, phi_0, f_full, f_empty, _ = kernel_fit(z, f, w)      # phi.sum() == f_full - f_empty
    """
    z, f = np.asarray(z, np.float64), np.asarray(f, np.float64)
    m = z.shape[1]
    sizes = z.sum(axis=1)
    f_full, f_empty = f[sizes == m][0], f[sizes == 0][0]
    delta = f_full - f_empty
    inner = np.isfinite(weights)
    if m == 1 or not inner.any():
        return np.full(m, delta / m), f_empty, f_full, f_empty, np.nan
    zi, root = z[inner], np.sqrt(weights[inner])
    design = (zi[:, :-1] - zi[:, -1:]) * root[:, None]
    rhs = (f[inner] - f_empty - zi[:, -1] * delta) * root
    # the normal equations (M - 1 unknowns): LAPACK's least squares on the tall (n, M - 1)
    # design is slow when the CPU is shared, and a 0/1 design is well conditioned
    rest = np.linalg.lstsq(design.T @ design, design.T @ rhs, rcond=None)[0]
    return np.append(rest, delta - rest.sum()), f_empty, f_full, f_empty, np.nan
