r"""How alike two maps are: the structural similarity index (SSIM).

Wang, Bovik, Sheikh & Simoncelli (2004), "Image quality assessment: from error visibility to
structural similarity". For two maps a and b, over every ``window`` x ``window`` square that fits
inside them, with the local means :math:`\mu`, variances :math:`\sigma^2` and covariance
:math:`\sigma_{ab}` (sample statistics, divided by :math:`w^2 - 1`),

.. math::

    \mathrm{SSIM} = \frac{(2 \mu_a \mu_b + C_1)(2 \sigma_{ab} + C_2)}
                         {(\mu_a^2 + \mu_b^2 + C_1)(\sigma_a^2 + \sigma_b^2 + C_2)},
    \qquad C_1 = (0.01 L)^2,\ C_2 = (0.03 L)^2,

averaged over the squares; L is the data range (default: the range of values of b, the
reference). 1 means identical; it falls with differences of structure, contrast and brightness.
Scikit-image's ``structural_similarity`` with its defaults (a 7x7 uniform window) computes the
same number.

>>> ssim(approximate_map, exact_map)            # 0.97: close
"""
from __future__ import annotations

import numpy as np

K1, K2 = 0.01, 0.03


def _local_means(x, window: int):
    """Means of x over every window x window square that fits inside it."""
    from scipy.ndimage import uniform_filter

    half = window // 2
    means = uniform_filter(x, size=window, mode="reflect")
    return means[half:x.shape[0] - half, half:x.shape[1] - half]


def ssim(a, b, data_range=None, window: int = 7) -> float:
    """The mean SSIM of two 2-D maps of the same shape; ``b`` is the reference. ``window`` (odd)
    shrinks to the largest odd size that fits a small map."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim compares two 2-D maps of the same shape, got {a.shape} and "
                         f"{b.shape}")
    window = min(window, min(a.shape) - (1 - min(a.shape) % 2))
    if window < 1:
        raise ValueError(f"the maps {a.shape} are too small for a window")
    L = float(np.ptp(b)) if data_range is None else float(data_range)
    if L == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    n = window * window
    scale = n / (n - 1) if n > 1 else 1.0
    mu_a, mu_b = _local_means(a, window), _local_means(b, window)
    var_a = scale * (_local_means(a * a, window) - mu_a ** 2)
    var_b = scale * (_local_means(b * b, window) - mu_b ** 2)
    cov = scale * (_local_means(a * b, window) - mu_a * mu_b)
    c1, c2 = (K1 * L) ** 2, (K2 * L) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
             / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return float(index.mean())
