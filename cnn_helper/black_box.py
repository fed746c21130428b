r"""Black-box explanations: KernelSHAP and LIME switch superpixels on and off and fit a linear
model to the target on the masked copies. They never look inside the model.

The image is cut into M regions :math:`R_1, \dots, R_M` (:mod:`cnn_helper.superpixels`). A
*coalition* :math:`z \in \{0, 1\}^M` keeps region i where :math:`z_i = 1` and replaces it by the
reference input :math:`\x'` (``baseline``) where :math:`z_i = 0`:

.. math::  h_\x(z) = z_{L} \odot \x + (1 - z_{L}) \odot \x', \qquad f(z) = s(h_\x(z))

(:math:`z_L` is z read through the label map L, pixel by pixel; s is the target). Both methods
score many coalitions (masked copies made and scored inside the package's perturbation engine,
``cnn_helper._perturb``, ``batch_size`` copies per compiled call) and fit
:math:`f(z) \approx \phi_0 + \sum_i \phi_i z_i` by weighted least squares; they differ in the
coalitions and the weights:

- :func:`kernel_shap` (Lundberg & Lee 2017): the Shapley kernel
  :math:`\pi(z) = \frac{M - 1}{\binom{M}{|z|}\, |z|\, (M - |z|)}`, infinite for the empty and the
  full coalition: they become constraints, :math:`\phi_0 = f(\mathbf 0) = s(\x')` and
  :math:`\sum_i \phi_i = f(\mathbf 1) - f(\mathbf 0) = s(\x) - s(\x')` (efficiency). With all
  :math:`2^M` coalitions the fit *is* the Shapley values,
  :math:`\phi_i = \sum_{S \not\ni i} \frac{|S|!\,(M - |S| - 1)!}{M!}\,(f(S \cup i) - f(S))`.
- :func:`lime` (Ribeiro et al. 2016): coalitions uniform at random, weights from an exponential
  kernel on the cosine distance to the full image, a ridge penalty, and the fit's weighted
  :math:`R^2` to say how linear the model looks around x.

The map gives every pixel of region i the value :math:`\phi_i` (as Captum and xplique do):
(N, H, W, 1). :func:`kernel_shap_values` and :func:`lime_values` return the per-region values
with everything that defines them (:class:`SegmentValues`).

Example
-------
>>> s = kernel_shap(model, x_test[:4], 8, n_samples=2000)              # (4, 28, 28, 1)
>>> r = kernel_shap_values(model, x_test[0], 8, segments="grid", n_segments=(2, 4))
>>> r.values[0].sum(), r.score[0] - r.reference_score[0]              # equal: efficiency
>>> fit = lime_values(model, x_test[:2], 8, segments="slic", n_segments=12)
>>> fit.r2                                                             # the fit's R^2 per image
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks, _gradient, _graph, _perturb, _reference, features, superpixels
from ._checks import BATCH_SIZE
from ._shapley import kernel_coalitions, kernel_fit


@dataclass(frozen=True)
class SegmentValues:
    r"""The per-region values of a black-box explanation of N images.

    method          : "kernel_shap" or "lime"
    values          : (N, M_max) float64, :math:`\phi_i` of region i (0 past an image's M)
    segments        : (N, H, W) int32, the label maps (regions 0..M-1)
    n_segments      : (N,) M of each image
    intercept       : (N,) :math:`\phi_0` (KernelSHAP: s(x') exactly; LIME: the fit's)
    score           : (N,) s(x), the target on the image
    reference_score : (N,) s(x'), the target on the reference input (every region replaced)
    r2              : (N,) the weighted :math:`R^2` of the fit (LIME; NaN for KernelSHAP)
    n_coalitions    : (N,) coalitions scored per image, the two full ones included
    exact           : (N,) bool, KernelSHAP scored all 2^M coalitions: the exact Shapley values
    """

    method: str
    values: np.ndarray
    segments: np.ndarray
    n_segments: np.ndarray
    intercept: np.ndarray
    score: np.ndarray
    reference_score: np.ndarray
    r2: np.ndarray
    n_coalitions: np.ndarray
    exact: np.ndarray

    def maps(self) -> np.ndarray:
        r"""(N, H, W, 1) float32: every pixel of region i holds :math:`\phi_i`."""
        rows = np.arange(len(self.values))[:, None, None]
        return self.values[rows, self.segments][..., None].astype(np.float32)


# --------------------------------------------------------------------------- the masked copies


def _masked_copies(images, fills, labels, rows) -> _perturb.Copies:
    r"""The copies for the perturbation engine: copy c is :math:`z_L \odot \x + (1 - z_L) \odot
    \x'` for image ``image_of_copy[c]`` and coalition ``rows[c]`` (M_max,), read through the
    image's label map inside the compiled step (one trace per image size and M_max)."""
    from keras import ops

    size = labels.shape[1:]

    def make(shared, image, per_copy):
        x, fill = ops.take(shared[0], image, axis=0), ops.take(shared[1], image, axis=0)
        label = ops.reshape(ops.take(shared[2], image, axis=0), (-1, size[0] * size[1]))
        z = ops.cast(per_copy[0], x.dtype)
        kept = ops.reshape(ops.take_along_axis(z, label, axis=1), (-1,) + size + (1,))
        return x * kept + (1 - kept) * fill

    return _perturb.Copies(("black box", size), make,
                           shared=(images, fills.astype(images.dtype), labels.astype(np.int32)),
                           per_copy=(rows.astype(np.uint8),))


@dataclass(frozen=True)
class _Problem:
    """A checked call: the images, the resolved target, the reference, the label maps."""

    model: object
    images: np.ndarray
    single: bool
    target: features.Target
    fills: np.ndarray
    labels: np.ndarray
    batch_size: int
    sign: str

    @property
    def n_segments(self) -> np.ndarray:
        return superpixels.n_segments_of(self.labels).reshape(-1)


def _problem(model, x, target, segments, n_segments, baseline, batch_size,
             sign="signed") -> _Problem:
    """Everything checked before any work; ``segments`` resolved to label maps (N, H, W)."""
    sign = _checks.one_of(sign, "sign", _gradient.SIGNS)
    images, single = _graph.check_images(model, x)
    if images.ndim != 4:
        raise ValueError(f"black-box methods switch regions of images (H, W, C) on and off; the "
                         f"input has shape {images.shape[1:]}")
    images = images.astype(_perturb.image_dtype(model), copy=False)
    batch_size = _graph.batch_size(model, batch_size)
    resolved = features.resolve(model, images, target, False, batch_size)
    options = {} if not isinstance(segments, str) else {"n_segments": n_segments}
    labels = superpixels.label_maps(segments, images, **options)
    fills = _reference.reference(model, images, baseline, "baseline").values
    return _Problem(model, images, single, resolved, fills, labels, batch_size, sign)


def _scores(problem: _Problem, coalitions: list) -> list:
    """f(z) for each image's coalitions (a list of (n_i, M_i) 0/1 arrays): all copies of all
    images scored in one run of the engine, ``batch_size`` copies per compiled call."""
    width = int(problem.n_segments.max())
    rows = np.zeros((sum(len(z) for z in coalitions), width), np.uint8)
    image_of_copy = np.repeat(np.arange(len(coalitions)), [len(z) for z in coalitions])
    start = 0
    for z in coalitions:
        rows[start:start + len(z), :z.shape[1]] = z
        start += len(z)
    copies = _masked_copies(problem.images, problem.fills, problem.labels, rows)
    values = _perturb.scores(problem.model, problem.target, copies, image_of_copy,
                             problem.batch_size)
    return np.split(values, np.cumsum([len(z) for z in coalitions])[:-1])


def _result(problem: _Problem, method: str, fits: list, n_coalitions, exact) -> SegmentValues:
    """The SegmentValues of the per-image ``fits`` (values, intercept, score, reference score,
    r2)."""
    m = problem.n_segments
    values = np.zeros((len(m), int(m.max())))
    for i, fit in enumerate(fits):
        values[i, :m[i]] = fit[0]
    column = [np.array([fit[k] for fit in fits], np.float64) for k in range(1, 5)]
    return SegmentValues(method, values, problem.labels, m, *column,
                         np.asarray(n_coalitions, np.int64), np.asarray(exact, bool))


def _finish(result: SegmentValues, problem: _Problem):
    """The registry's map: (N, H, W, 1) float32 with the sign option, (H, W, 1) for one image."""
    maps = _gradient.apply_sign(result.maps(), problem.sign)
    return maps[0] if problem.single else maps


# --------------------------------------------------------------------------- KernelSHAP


def kernel_shap_values(model, x, target, segments="grid", n_segments=49, n_samples: int = 2000,
                       baseline="zero", seed: int = 0, batch_size=BATCH_SIZE) -> SegmentValues:
    r"""KernelSHAP's values :math:`\phi_i` of the regions of each image of x (module docstring),
    with efficiency exact: :math:`\sum_i \phi_i = s(\x) - s(\x')`.

    target     : a head class index or a Feature (as every method)
    segments   : "grid" (default), "slic" or "quickshift" (:func:`cnn_helper.superpixels.segments`
                 with ``n_segments``), one integer label map (H, W) for all images or one per
                 image (N, H, W)
    n_samples  : coalitions scored per image, the empty and the full one included. When
                 :math:`2^M \le` n_samples all :math:`2^M` are scored: the exact Shapley values.
                 Else the sizes whose coalitions the budget covers are enumerated (from 1 and
                 M - 1 inwards) and the rest drawn from the Shapley kernel, each with its
                 complement (paired sampling), repeats merged (as the ``shap`` package does).
                 At least M + 2.
    baseline   : the reference input x' that hidden regions become, in any of the package's
                 forms ("zero", "mean", "blur", a number, one per channel, an image...)
    seed       : the coalitions drawn for M regions depend only on (seed, M): not on batch_size
    batch_size : masked copies per compiled call; the values do not depend on it

    >>> r = kernel_shap_values(model, x_test[:2], 8, n_segments=(2, 4))      # exact: 2^8 <= 2000
    >>> r.values.shape, r.exact                        # (2, 8), array([ True,  True])
    """
    problem = _problem(model, x, target, segments, n_segments, baseline, batch_size)
    return _kernel_shap(problem, n_samples, seed)


def kernel_shap(model, x, target, segments="grid", n_segments=49, n_samples: int = 2000,
                baseline="zero", seed: int = 0, batch_size=BATCH_SIZE, sign: str = "signed"):
    r"""The KernelSHAP map of ``target`` for each image of x (Lundberg & Lee 2017): every pixel
    of region i holds its Shapley value :math:`\phi_i`, the target's change from the reference
    :math:`s(\x')` to :math:`s(\x)` shared fairly among the regions (module docstring). Arguments
    as :func:`kernel_shap_values`; ``sign`` as every method's.

    Returns float32 maps (N, H, W, 1), or (H, W, 1) for one image.

    >>> s = kernel_shap(model, x_test[:4], 8)                     # 7 x 7 grid, 2000 coalitions
    >>> s = kernel_shap(model, x_test[0], 8, segments="slic", n_segments=10)     # exact, 2^M
    """
    problem = _problem(model, x, target, segments, n_segments, baseline, batch_size, sign)
    return _finish(_kernel_shap(problem, n_samples, seed), problem)


def _kernel_shap(problem: _Problem, n_samples, seed) -> SegmentValues:
    """KernelSHAP on a checked problem: draw, score, fit (``_shapley``)."""
    n_samples, seed = _checks.positive_int(n_samples, "n_samples"), _checks.seed(seed)
    _enough_samples(n_samples, problem.n_segments, 2, "KernelSHAP")
    drawn = [kernel_coalitions(int(m), n_samples, np.random.default_rng((seed, int(m))))
             for m in problem.n_segments]
    scores = _scores(problem, [z for z, _, _ in drawn])
    fits = [kernel_fit(z, f, w) for (z, w, _), f in zip(drawn, scores)]
    return _result(problem, "kernel_shap", fits, [len(z) for z, _, _ in drawn],
                   [exact for _, _, exact in drawn])


def _enough_samples(n_samples: int, n_segments, extra: int, method: str):
    """A ValueError when n_samples < M + extra for the image with the most regions."""
    most = int(np.max(n_segments))
    if n_samples < most + extra:
        raise ValueError(f"n_samples={n_samples} is too small for {most} segments: {method} "
                         f"fits {most} values and needs at least {most + extra} coalitions "
                         f"(n_samples >= M + {extra}; ten times M or more for a stable fit); "
                         "raise n_samples or use fewer segments (n_segments)")


# --------------------------------------------------------------------------- LIME


def _lime_weights(z, kernel_width: float) -> np.ndarray:
    r"""LIME's weights :math:`\sqrt{\exp(-d^2 / w^2)}` with d the cosine distance between z and
    the full coalition :math:`\mathbf 1`, :math:`d = 1 - \sqrt{|z| / M}` (1 for the empty one)."""
    distance = 1 - np.sqrt(z.sum(axis=1) / z.shape[1])
    return np.sqrt(np.exp(-distance ** 2 / kernel_width ** 2))


def ridge_fit(z, f, weights, ridge: float) -> tuple:
    r"""(coefficients, intercept, weighted :math:`R^2`) of the weighted ridge regression
    :math:`\min_{\phi, \phi_0} \sum_j w_j (f_j - \phi_0 - z_j \cdot \phi)^2 + \lambda
    \|\phi\|^2` (the intercept not penalised; scikit-learn's ``Ridge(alpha=ridge)`` with
    ``sample_weight``).

    >>> phi, phi_0, r2 = ridge_fit(z, f, np.ones(len(z)), 1.0)
    """
    w = weights / weights.sum()
    z_mean, f_mean = w @ z, w @ f
    zc, fc = z - z_mean, f - f_mean
    gram = zc.T @ (zc * w[:, None]) + ridge / weights.sum() * np.eye(z.shape[1])
    phi = np.linalg.lstsq(gram, zc.T @ (w * fc), rcond=None)[0]
    residual = w @ (fc - zc @ phi) ** 2
    spread = w @ fc ** 2
    return phi, f_mean - z_mean @ phi, 1 - residual / spread if spread > 0 else 1.0


def lime_values(model, x, target, segments="grid", n_segments=49, n_samples: int = 1000,
                kernel_width: float = 0.25, ridge: float = 1.0, baseline="zero", seed: int = 0,
                batch_size=BATCH_SIZE) -> SegmentValues:
    r"""LIME's coefficients :math:`\phi_i` of the regions of each image of x (module docstring):
    the weighted ridge regression of f(z) on z over ``n_samples`` coalitions (the full one and
    the rest uniform at random, ``lime``'s ``LimeImageExplainer``), weights
    :math:`\sqrt{\exp(-d(z, \mathbf 1)^2 / \text{kernel\_width}^2)}` (d the cosine distance),
    penalty ``ridge`` (lime's default 1; 0 is plain weighted least squares). ``r2`` is the fit's
    weighted :math:`R^2`: near 1, the model is nearly linear in the regions around x.
    Other arguments as :func:`kernel_shap_values`; n_samples >= M + 1.

    >>> fit = lime_values(model, x_test[:2], 8, n_segments=(2, 4), n_samples=500)
    >>> fit.values.shape, fit.r2                       # (2, 8), the R^2 of each image's fit
    """
    problem = _problem(model, x, target, segments, n_segments, baseline, batch_size)
    return _lime(problem, n_samples, kernel_width, ridge, seed)


def _lime(problem: _Problem, n_samples, kernel_width, ridge, seed) -> SegmentValues:
    """LIME on a checked problem: draw (the full coalition first), score (with the empty one,
    for ``reference_score``), fit."""
    n_samples, seed = _checks.positive_int(n_samples, "n_samples"), _checks.seed(seed)
    kernel_width = _checks.non_negative(kernel_width, "kernel_width")
    ridge = _checks.non_negative(ridge, "ridge", " (the ridge penalty; 0: none)")
    if kernel_width == 0:
        raise ValueError("kernel_width must be > 0 (LIME's default: 0.25)")
    _enough_samples(n_samples, problem.n_segments, 1, "LIME")
    drawn = []
    for m in (int(m) for m in problem.n_segments):
        z = np.random.default_rng((seed, m)).integers(0, 2, (n_samples, m), dtype=np.uint8)
        drawn.append(np.concatenate([np.ones((1, m), np.uint8), z[1:], np.zeros((1, m),
                                                                                np.uint8)]))
    fits = []
    for z, f in zip(drawn, _scores(problem, drawn)):
        z, f_empty = z[:-1], f[-1]
        phi, phi_0, r2 = ridge_fit(z.astype(np.float64), f[:-1], _lime_weights(z, kernel_width),
                                   ridge)
        fits.append((phi, phi_0, f[0], f_empty, r2))
    return _result(problem, "lime", fits, [n_samples] * len(drawn), [False] * len(drawn))


def lime(model, x, target, segments="grid", n_segments=49, n_samples: int = 1000,
         kernel_width: float = 0.25, ridge: float = 1.0, baseline="zero", seed: int = 0,
         batch_size=BATCH_SIZE, sign: str = "signed"):
    r"""The LIME map of ``target`` for each image of x (Ribeiro et al. 2016): every pixel of
    region i holds the coefficient :math:`\phi_i` of a weighted linear fit of the target on
    which regions are kept (module docstring). Arguments as :func:`lime_values`; ``sign`` as
    every method's.

    Returns float32 maps (N, H, W, 1), or (H, W, 1) for one image.

    >>> s = lime(model, x_test[:4], 8, segments="slic", n_segments=12)
    """
    problem = _problem(model, x, target, segments, n_segments, baseline, batch_size, sign)
    return _finish(_lime(problem, n_samples, kernel_width, ridge, seed), problem)
