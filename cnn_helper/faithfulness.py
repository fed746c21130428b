r"""Faithfulness: does removing what a map calls important change the model's output?

Three measures of a map :math:`S` (N maps, one per image; the target's score :math:`s` is read
as every method reads it: for an int target the model's head output, our CNN's softmax
*probability*; ``Feature("logits", k)`` for the logit; any Feature works, a max-pooled one is
pooled afresh on every changed image). A pixel is a spatial location: all its channels change
together, and its importance is the map summed over channels, :math:`\sum_c S_{r,c',c}`.

**Deletion** (:func:`deletion`, Petsiuk et al. 2018, "RISE"). Rank the P pixels by importance,
largest first (equal values: the lower row-major index first, a stable sort). For
:math:`j = 0, \dots, J` (J = ``steps``) replace the first :math:`n_j = \lfloor jP/J \rfloor`
pixels by the baseline's and read :math:`c_j = s(\x^{(j)})`. The curve has J + 1 points, from
the image itself (j = 0) to the baseline (j = J). Its area, over the fraction removed
:math:`t_j = n_j / P` by the trapezoid rule,

.. math::  \mathrm{AUC} = \sum_{j=0}^{J-1} (t_{j+1} - t_j) \, \frac{c_j + c_{j+1}}{2},

is *low* for a faithful map: the score falls as soon as its top pixels go.

**Insertion** (:func:`insertion`): the same with the roles swapped: start from the baseline and
put the image's pixels back, most important first; a faithful map gets a *high* AUC.

**MuFidelity** (:func:`mufidelity`, Bhatt et al. 2020, "Evaluating and aggregating
feature-based model explanations", def. 3; xplique's ``MuFidelity``). Cut the image into a
``grid`` x ``grid`` grid of cells (pixel (r, c) is in cell :math:`(\lfloor r g / H \rfloor,
\lfloor c g / W \rfloor)`, the nearest-neighbour upsampling of the grid). Draw ``n_subsets``
random subsets :math:`S_1, \dots, S_M` of exactly ``subset_size`` cells (seeded, the same
subsets for every image); remove each (its pixels set to the baseline) and take

.. math::  \mu F = \mathrm{corr}_{j=1..M}\Big(\sum_{i \in S_j} S_i,\;
                   s(\x) - s(\x_{[\x_{S_j} = \x'_{S_j}]})\Big),

the Pearson correlation between the attribution mass removed and the drop of the score: near 1
when the map's values predict what removing the pixels costs. (xplique removes each cell with a
probability and uses the Spearman correlation; Bhatt et al. fix the subset size, as here, and
use Pearson's.) NaN when either side is constant.

**Baselines** (what a removed pixel becomes): ``"zero"`` (black; on MNIST the background
itself, so deleting a background pixel changes nothing), ``"mean"`` (each image's own mean value
per channel: a flat grey image), ``"blur"`` (the image blurred by a Gaussian of standard
deviation ``BLUR_SIGMA`` = 3 pixels, per channel, edges extended: the strokes' place stays, their
shape goes), or an array: one image for all or one per image, in the model's input range.

Everything is batched: all steps (or subsets) of all images go through one compiled step,
``batch_size`` changed images per call; the results do not depend on it.

Example
-------
>>> g = saliency.gradient(model, eights, 8)
>>> d = deletion(model, eights, 8, g, steps=28)       # d.scores (N, 29), d.auc (N,)
>>> i = insertion(model, eights, 8, g, baseline="blur")
>>> mu = mufidelity(model, eights, 8, g, n_subsets=128)
>>> print(ranking({"gradient": [d, i, mu]}))
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks, _graph, features, saliency
from ._checks import BATCH_SIZE

BASELINES = ("zero", "mean", "blur")
BLUR_SIGMA = 3.0


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve per image.

    kind      : "deletion" (lower AUC is better) or "insertion" (higher is better)
    counts    : (steps + 1,) pixels removed / inserted at each step, 0 to P
    fractions : (steps + 1,) counts / P, the x axis
    scores    : (N, steps + 1) the target's score at each step
    auc       : (N,) the area under each curve (trapezoid over ``fractions``)
    baseline  : "zero", "mean", "blur" or "array"
    """

    kind: str
    counts: np.ndarray
    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    baseline: str

    @property
    def higher_is_better(self) -> bool:
        return self.kind == "insertion"


@dataclass(frozen=True)
class MuFidelity:
    """MuFidelity per image (module docstring).

    correlation : (N,) Pearson correlation of ``masses`` and ``drops`` (higher is better)
    masses      : (N, n_subsets) the map's sum over each removed subset
    drops       : (N, n_subsets) s(x) minus the score with the subset removed
    subsets     : (n_subsets, grid, grid) bool, the removed cells (the same for every image)
    baseline    : "zero", "mean", "blur" or "array"
    """

    correlation: np.ndarray
    masses: np.ndarray
    drops: np.ndarray
    subsets: np.ndarray
    baseline: str

    kind = "mufidelity"
    higher_is_better = True


# --------------------------------------------------------------------------- inputs


def _maps_for(x, maps) -> np.ndarray:
    """Each pixel's importance (N, H, W): the maps summed over channels. Maps may be shaped like
    the images, have one channel (Grad-CAM) or none."""
    maps = _checks.array_of(maps, "maps")
    if not np.issubdtype(maps.dtype, np.number) or not np.all(np.isfinite(maps)):
        raise ValueError("maps must hold finite numbers (no NaN or inf)")
    if maps.shape in (x.shape[1:], x.shape[1:-1] + (1,), x.shape[1:-1]):
        maps = maps[None]                                     # one image's map
    if maps.shape[:1] != x.shape[:1] or maps.shape[1:3] != x.shape[1:3] or \
            maps.shape[1:] not in (x.shape[1:], x.shape[1:-1] + (1,), x.shape[1:-1]):
        raise ValueError(f"maps has shape {maps.shape} but x {x.shape}: give one map per image, "
                         "shaped like the image, with one channel or without the channel axis")
    return maps.reshape(x.shape[:3] + (-1,)).sum(axis=-1)


def _baseline_for(model, x, baseline):
    """(the baseline images (N, H, W, C) float32, its name) for x (module docstring)."""
    if isinstance(baseline, str):
        _checks.one_of(baseline, "baseline", BASELINES + ("an array",))
        if baseline == "zero":
            return np.zeros_like(x), baseline
        if baseline == "mean":
            return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape), baseline
        from scipy.ndimage import gaussian_filter

        blurred = gaussian_filter(x, sigma=(0, BLUR_SIGMA, BLUR_SIGMA, 0), mode="nearest")
        return blurred.astype(np.float32), baseline
    return saliency.baseline_images(model, baseline, x), "array"


def _inputs(model, x, target, maps, baseline, batch_size):
    """Everything checked before any work: (x, feature, importance, baseline, its name, batch)."""
    x, _ = _graph.check_images(model, x)
    feature = features.check_feature(model, target)
    importance = _maps_for(x, maps)
    base, name = _baseline_for(model, x, baseline)
    return x, feature, importance, base, name, _graph.batch_size(model, batch_size)


# --------------------------------------------------------------------------- the one step


def _score_step(model, feature):
    """Compiled: (images a, images b, mask (B, H, W, 1) bool, channel) -> the target's score on
    ``where(mask, b, a)`` (B,): a pixel under the mask takes b's value in every channel."""
    import tensorflow as tf

    def build():
        tap = _graph.tap(model, [feature.layer])
        spec = _graph.input_spec(model, "float32")
        mask = tf.TensorSpec(spec.shape[:-1] + (1,), tf.bool)

        @tf.function(input_signature=[spec, spec, mask, tf.TensorSpec((), tf.int32)])
        def step(a, b, changed, channel):
            y = tap(tf.where(changed, b, a))[0]
            return tf.cast(features.read(y, channel, feature.pool)[0], tf.float32)

        return step

    key = ("faithfulness step", _graph.path_name(model, feature.layer), feature.pool)
    return _graph.memo(model, key, build)


def _scores(model, feature, a, b, masks_of, images, which, batch_size) -> np.ndarray:
    """The score of every changed copy: copy k is image ``images[k]`` with the pixels of
    ``masks_of(which[k])`` (a batch of masks (B, H, W, 1)) taken from b instead of a."""
    step = _score_step(model, feature)
    channel = np.int32(feature.channel)

    def run(index, chosen):
        return [step(a[index], b[index], masks_of(index, chosen), channel)]

    return _graph.run_batched(run, batch_size, images, which)[0]


# --------------------------------------------------------------------------- deletion, insertion


def _pixel_ranks(importance) -> np.ndarray:
    """(N, H, W, 1) int: each pixel's place in the order of importance (0: the most important;
    ties by row-major index, a stable sort)."""
    n = len(importance)
    flat = importance.reshape(n, -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None].repeat(n, 0), axis=1)
    return ranks.reshape(importance.shape + (1,))


def _curve(kind, model, x, target, maps, steps, baseline, batch_size) -> Curve:
    """The deletion (a = x, b = baseline) or insertion (a = baseline, b = x) curve."""
    x, feature, importance, base, name, batch_size = _inputs(model, x, target, maps, baseline,
                                                             batch_size)
    steps = _checks.positive_int(steps, "steps")
    pixels = importance[0].size
    counts = np.arange(steps + 1) * pixels // steps
    ranks = _pixel_ranks(importance)
    a, b = (x, base) if kind == "deletion" else (base, x)
    images = np.repeat(np.arange(len(x)), steps + 1)
    which = np.tile(counts, len(x))
    scores = _scores(model, feature, a, b, lambda i, n: ranks[i] < n[:, None, None, None],
                     images, which, batch_size).reshape(len(x), steps + 1)
    fractions = counts / pixels
    auc = np.sum(np.diff(fractions) * (scores[:, 1:] + scores[:, :-1]) / 2, axis=1)
    return Curve(kind, counts, fractions, scores, auc, name)


def deletion(model, x, target, maps, steps: int = 28, baseline="mean",
             batch_size=BATCH_SIZE) -> Curve:
    """The deletion curve and its AUC for each image of ``x`` and its map (module docstring):
    the most important pixels replaced by the ``baseline``'s, ``steps`` equal steps. ``maps``:
    one per image, like the image, with one channel, or (N, H, W).

    >>> d = deletion(model, eights, 8, saliency.gradient(model, eights, 8))
    >>> d.auc.mean()                    # lower: the score falls sooner
    """
    return _curve("deletion", model, x, target, maps, steps, baseline, batch_size)


def insertion(model, x, target, maps, steps: int = 28, baseline="mean",
              batch_size=BATCH_SIZE) -> Curve:
    """The insertion curve and its AUC (module docstring): from the ``baseline``, the image's
    most important pixels put back first.

    >>> i = insertion(model, eights, 8, saliency.grad_cam(model, eights, 8), baseline="blur")
    >>> i.auc.mean()                    # higher: the score rises sooner
    """
    return _curve("insertion", model, x, target, maps, steps, baseline, batch_size)


# --------------------------------------------------------------------------- MuFidelity


def _subsets(n_subsets: int, grid: int, subset_size: int, seed: int) -> np.ndarray:
    """(n_subsets, grid, grid) bool: ``subset_size`` cells drawn without replacement for each
    subset, from ``seed`` alone."""
    rng = np.random.default_rng(seed)
    chosen = rng.random((n_subsets, grid * grid)).argsort(axis=1)[:, :subset_size]
    subsets = np.zeros((n_subsets, grid * grid), bool)
    np.put_along_axis(subsets, chosen, True, axis=1)
    return subsets.reshape(n_subsets, grid, grid)


def _check_grid(grid, subset_size, image_shape) -> tuple:
    grid = _checks.positive_int(grid, "grid")
    if grid > min(image_shape[:2]):
        raise ValueError(f"grid {grid} has more cells per side than the image has pixels "
                         f"{image_shape[:2]}")
    subset_size = round(0.2 * grid * grid) if subset_size is None else subset_size
    if not _checks.is_int(subset_size) or not 1 <= subset_size < grid * grid:
        raise ValueError(f"subset_size must be an int from 1 to {grid * grid - 1} (cells of the "
                         f"{grid}x{grid} grid removed at once), got {subset_size!r}")
    return grid, int(subset_size)


def mufidelity(model, x, target, maps, n_subsets: int = 128, grid: int = 9, subset_size=None,
               baseline="mean", seed: int = 0, batch_size=BATCH_SIZE) -> MuFidelity:
    """MuFidelity (module docstring) of each image's map: ``n_subsets`` random subsets of
    ``subset_size`` cells (default: 20% of the ``grid`` x ``grid`` cells, rounded) set to the
    ``baseline``. The subsets depend on ``seed`` only: every image and method meets the same.

    >>> mu = mufidelity(model, eights, 8, saliency.gradient_x_input(model, eights, 8))
    >>> mu.correlation.mean()          # higher: the map predicts what removal costs
    """
    x, feature, importance, base, name, batch_size = _inputs(model, x, target, maps, baseline,
                                                             batch_size)
    n_subsets = _checks.positive_int(n_subsets, "n_subsets")
    grid, subset_size = _check_grid(grid, subset_size, x.shape[1:])
    subsets = _subsets(n_subsets, grid, subset_size, _checks.seed(seed))
    rows, cols = (np.arange(n) * grid // n for n in x.shape[1:3])
    pixels = subsets[:, rows][:, :, cols]                         # (M, H, W)
    pixels = np.concatenate([pixels, np.zeros((1,) + pixels.shape[1:], bool)])   # + x itself
    copies = n_subsets + 1
    scores = _scores(model, feature, x, base, lambda i, j: pixels[j][..., None],
                     np.repeat(np.arange(len(x)), copies), np.tile(np.arange(copies), len(x)),
                     batch_size).reshape(len(x), copies)
    drops = scores[:, -1:] - scores[:, :-1]
    masses = np.einsum("nhw,mhw->nm", importance.astype(np.float64), pixels[:-1].astype(float))
    from .similarity import pearson_rows

    return MuFidelity(pearson_rows(masses, drops), masses, drops, subsets, name)


# --------------------------------------------------------------------------- ranking


@dataclass(frozen=True)
class Ranking:
    """Methods ranked by faithfulness measures.

    methods          : the method names, best first (by mean rank over the measures)
    measures         : the measures, e.g. ("deletion", "insertion", "mufidelity")
    means            : (methods, measures) each measure's mean over the images (NaNs left out)
    ranks            : (methods, measures) 1 for the best method of each measure
    higher_is_better : per measure
    """

    methods: tuple
    measures: tuple
    means: np.ndarray
    ranks: np.ndarray
    higher_is_better: tuple

    def __str__(self):
        """A text table: one row per method, best first, each mean with its rank."""
        heads = [f"{m} ({'higher' if h else 'lower'} is better)"
                 for m, h in zip(self.measures, self.higher_is_better)]
        width = max(len(m) for m in self.methods + ("method",))
        lines = ["  ".join(["method".ljust(width)] + heads)]
        for name, means, ranks in zip(self.methods, self.means, self.ranks):
            cells = [f"{v:.3f} (#{r})".ljust(len(h)) for v, r, h in zip(means, ranks, heads)]
            lines.append("  ".join([name.ljust(width)] + cells))
        return "\n".join(lines)


def _value(result) -> np.ndarray:
    """The per-image number of a Curve (auc) or a MuFidelity (correlation)."""
    if isinstance(result, Curve):
        return result.auc
    if isinstance(result, MuFidelity):
        return result.correlation
    raise TypeError(f"results must be Curve (deletion, insertion) or MuFidelity results, got "
                    f"a {type(result).__name__}")


def ranking(results: dict) -> Ranking:
    """Rank methods: ``results`` is {method name: [its results]}, each list the same measures
    in the same order (a deletion Curve, an insertion Curve, a MuFidelity...). Each measure's
    mean over the images ranks the methods (1: the best; a NaN mean ranks last); the methods
    are listed by their mean rank (ties: the order given).

    >>> print(ranking({"gradient": [d_g, i_g, mu_g], "grad_cam": [d_c, i_c, mu_c]}))
    """
    if not isinstance(results, dict) or not results:
        raise TypeError("results must be a non-empty dict {method name: [results]}")
    for rs in results.values():
        for result in rs:
            _value(result)                         # a TypeError for anything else
    kinds = [tuple(r.kind for r in rs) for rs in results.values()]
    if len(set(kinds)) != 1:
        raise ValueError(f"every method needs the same measures in the same order, got "
                         f"{dict(zip(results, kinds))}")
    better = tuple(r.higher_is_better for r in next(iter(results.values())))
    means = np.array([[np.nanmean(_value(r)) if np.any(np.isfinite(_value(r))) else np.nan
                       for r in rs] for rs in results.values()])
    keys = np.where(np.array(better), -means, means)
    keys = np.where(np.isnan(keys), np.inf, keys)
    ranks = np.argsort(np.argsort(keys, axis=0, kind="stable"), axis=0, kind="stable") + 1
    order = np.argsort(ranks.mean(axis=1), kind="stable")
    names = list(results)
    return Ranking(tuple(names[i] for i in order), kinds[0], means[order], ranks[order], better)
