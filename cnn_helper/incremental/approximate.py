r"""Approximate occlusion (Krypton's two approximations), for when a close map is enough.

- **Projective-field threshold** :math:`\tau`: every window is capped at :math:`\lceil \tau n
  \rceil` of its map's n locations per axis, centred on the locations the patch changes. Deep
  layers, whose projective field covers most of the map, are then recomputed only near the
  patch, and their far locations keep the un-occluded values: small changes far away are
  dropped.
- **Adaptive drill-down**: the map is first computed on a coarse grid (every ``coarse``-th
  patch position per axis), interpolated (bilinearly) to the full grid, and only the
  ``drill_down`` fraction of the other positions where the interpolated change
  :math:`|\text{values} - \text{baseline}|` is largest is computed; the rest keep the
  interpolation.

``occlusion.compare(approximate, exact)`` says how far the result is from the exact map (SSIM and
the largest absolute difference); ``benchmarks/bench_incremental_occlusion.py`` measures both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _checks
from .run import occluded_values as exact_values


@dataclass(frozen=True)
class Approximate:
    """The settings of approximate occlusion (pass as ``sensitivity_map(..., strategy=...)``).

    threshold  : :math:`\\tau` in (0, 1]: the largest fraction of a map, per axis, that a window
                 may cover (1: exact windows)
    coarse     : the coarse grid takes every ``coarse``-th patch position per axis (1: no
                 drill-down, every position is computed)
    drill_down : the fraction, in [0, 1], of the remaining positions computed after the coarse
                 pass, those where the interpolated map changes most

    >>> sensitivity_map(model, x, 8, patch=16, stride=4, strategy=Approximate(threshold=0.4))
    """

    threshold: float = 0.75
    coarse: int = 2
    drill_down: float = 0.25

    def __post_init__(self):
        if not (_checks.is_number(self.threshold) and 0 < self.threshold <= 1):
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold!r}")
        if not (_checks.is_int(self.coarse) and self.coarse >= 1):
            raise ValueError(f"coarse must be an int >= 1, got {self.coarse!r}")
        if not (_checks.is_number(self.drill_down) and 0 <= self.drill_down <= 1):
            raise ValueError(f"drill_down must be in [0, 1], got {self.drill_down!r}")


def interpolate(coarse_values, coarse_rows, coarse_cols, n_rows: int, n_cols: int):
    """Bilinear interpolation of a map known on the grid coarse_rows x coarse_cols (indices of
    the full grid) to the full (n_rows, n_cols) grid; constant beyond the last coarse row/col."""
    rows = np.stack([np.interp(np.arange(n_rows), coarse_rows, column)
                     for column in np.asarray(coarse_values).T], axis=1)
    return np.stack([np.interp(np.arange(n_cols), coarse_cols, row) for row in rows])


def drill_down(values_at, grid_shape, settings: Approximate) -> tuple:
    """(the (R, C) map of one image by adaptive drill-down, its baseline).

    values_at : function (flat indices (M,) of grid positions, row-major) -> (their values (M,),
                the un-occluded value)
    """
    n_rows, n_cols = grid_shape
    coarse_rows = np.arange(0, n_rows, settings.coarse)
    coarse_cols = np.arange(0, n_cols, settings.coarse)
    coarse = (coarse_rows[:, None] * n_cols + coarse_cols[None, :]).ravel()
    result = np.full(n_rows * n_cols, np.nan)
    result[coarse], baseline = values_at(coarse)
    estimate = interpolate(result[coarse].reshape(len(coarse_rows), len(coarse_cols)),
                           coarse_rows, coarse_cols, n_rows, n_cols).ravel()
    rest = np.setdiff1d(np.arange(n_rows * n_cols), coarse)
    count = math.ceil(settings.drill_down * len(rest))
    chosen = rest[np.argsort(-np.abs(estimate[rest] - baseline), kind="stable")[:count]]
    if count:
        result[chosen] = values_at(chosen)[0]
    return np.where(np.isnan(result), estimate, result).reshape(grid_shape), baseline


def occluded_values(model, plan, feature, images, fills, bounds, at, batch_size,
                    settings: Approximate, grid_shape) -> tuple:
    """``run.occluded_values`` (with ``plan`` made for ``settings.threshold``) on the positions
    that adaptive drill-down chooses: the same (values (N, M), baselines (N,)), each image's map
    drilled down from the coarse grid; M = R * C positions in row-major order."""
    maps, baselines = [], []
    for i, image in enumerate(images):
        where = None if at is None else at[i:i + 1]

        def values_at(flat, i=i, image=image, where=where):
            found, baseline = exact_values(model, plan, feature, image[None], fills[i:i + 1],
                                           bounds[:, flat], where, batch_size)
            return found[0], baseline[0]

        found, baseline = drill_down(values_at, grid_shape, settings)
        maps.append(found.ravel())
        baselines.append(baseline)
    return np.stack(maps).astype(np.float32), np.asarray(baselines, np.float32)
