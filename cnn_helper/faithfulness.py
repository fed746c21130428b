r"""Faithfulness: does removing what a map calls important change the model's output?

Three measures of a map :math:`S` (N maps, one per image; the target's score :math:`s` is read
as every method reads it: for an int target the model's head output, our CNN's softmax
*probability*; ``Feature("logits", k)`` for the logit; any Feature works: a located one is read
at its location, a max-pooled one is pooled afresh on every changed image). A pixel is a spatial
location: all its channels change together, and its importance is the map summed over channels,
:math:`\sum_c S_{r,c',c}`.

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

**Baselines** (what a removed pixel becomes; the package's reference forms,
``cnn_helper._reference``): ``"zero"`` (black; on MNIST the background itself, so deleting a
background pixel changes nothing), ``"mean"`` (each image's own mean value per channel: a flat
grey image; the default), ``"blur"`` (the image blurred by a Gaussian of standard deviation
``BLUR_SIGMA`` = 3 pixels, per channel, edges extended: the strokes' place stays, their shape
goes), ``"extreme"`` (the top of the input's range), a number, one per channel, or an image: one
for all or one per image, in the model's input range.

Everything is batched: all steps (or subsets) of all images go through the package's
perturbation engine (``cnn_helper._perturb``), ``batch_size`` changed images per compiled call;
the results do not depend on it.

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

from . import _checks, _graph, _perturb, _reference, features, methods
from ._checks import BATCH_SIZE
from ._reference import BLUR_SIGMA  # noqa: F401 (faithfulness.BLUR_SIGMA: the "blur" baseline)

BASELINES = _reference.FORMS
"""The named baselines (a number, one per channel or an image work too)."""


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve per image.

    kind      : "deletion" (lower AUC is better) or "insertion" (higher is better)
    counts    : (steps + 1,) pixels removed / inserted at each step, 0 to P
    fractions : (steps + 1,) counts / P, the x axis
    scores    : (N, steps + 1) the target's score at each step
    auc       : (N,) the area under each curve (trapezoid over ``fractions``)
    baseline  : the baseline's kind: "zero", "mean", "extreme", "blur", "number",
                "per channel" or "array"
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
    unchanged   : (N,) s(x), the target on each unchanged image
    subsets     : (n_subsets, grid, grid) bool, the removed cells (the same for every image)
    baseline    : the baseline's kind (as ``Curve.baseline``)
    """

    correlation: np.ndarray
    masses: np.ndarray
    drops: np.ndarray
    unchanged: np.ndarray
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


def _inputs(model, x, target, maps, baseline, batch_size):
    """Everything checked before any work: (x, the resolved target, importance, baseline images,
    the baseline's kind, batch size)."""
    x, _ = _graph.check_images(model, x)
    x = x.astype(_perturb.image_dtype(model), copy=False)
    batch_size = _graph.batch_size(model, batch_size)
    target = features.resolve(model, x, target, batch_size=batch_size)
    importance = _maps_for(x, maps)
    base = _reference.reference(model, x, baseline)
    return x, target, importance, base.values, base.kind, batch_size


# --------------------------------------------------------------------------- the changed copies


def _swapped_copies(a, b, keys, key_of_copy, threshold) -> _perturb.Copies:
    """Copies for the perturbation engine: copy c is image ``image_of_copy[c]`` of ``a`` with the
    pixels where ``keys[key_of_copy[c]] < threshold[c]`` taken from ``b`` (in every channel).

    keys (K, H, W) int32 is a table sent once: deletion's pixel ranks (one per image, the
    threshold the number of pixels removed), or MuFidelity's subsets (0 where a subset removes a
    cell, 1 elsewhere; the threshold 1)."""
    from keras import ops

    def make(shared, image, rows):
        changed = ops.take(shared[2], rows[0], axis=0) < rows[1][:, None, None]   # (B, H, W)
        return ops.where(changed[..., None], ops.take(shared[1], image, axis=0),
                         ops.take(shared[0], image, axis=0))

    return _perturb.Copies(("swap pixels",), make, shared=(a, b.astype(a.dtype),
                                                           keys.astype(np.int32)),
                           per_copy=(np.asarray(key_of_copy, np.int32),
                                     np.asarray(threshold, np.int32)))


# --------------------------------------------------------------------------- deletion, insertion


def _pixel_ranks(importance) -> np.ndarray:
    """(N, H, W) int: each pixel's place in the order of importance (0: the most important;
    ties by row-major index, a stable sort)."""
    n = len(importance)
    flat = importance.reshape(n, -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None].repeat(n, 0), axis=1)
    return ranks.reshape(importance.shape)


def _curve(kind, model, x, target, maps, steps, baseline, batch_size) -> Curve:
    """The deletion (a = x, b = baseline) or insertion (a = baseline, b = x) curve."""
    x, resolved, importance, base, name, batch_size = _inputs(model, x, target, maps, baseline,
                                                              batch_size)
    steps = _checks.positive_int(steps, "steps")
    pixels = importance[0].size
    counts = np.arange(steps + 1) * pixels // steps
    a, b = (x, base) if kind == "deletion" else (base, x)
    images = np.repeat(np.arange(len(x)), steps + 1)
    copies = _swapped_copies(a, b, _pixel_ranks(importance), images,
                             np.tile(counts, len(x)))
    scores = _perturb.scores(model, resolved, copies, images, batch_size)
    scores = scores.reshape(len(x), steps + 1)
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
    x, resolved, importance, base, name, batch_size = _inputs(model, x, target, maps, baseline,
                                                              batch_size)
    n_subsets = _checks.positive_int(n_subsets, "n_subsets")
    grid, subset_size = _check_grid(grid, subset_size, x.shape[1:])
    subsets = _subsets(n_subsets, grid, subset_size, _checks.seed(seed))
    rows, cols = (np.arange(n) * grid // n for n in x.shape[1:3])
    pixels = subsets[:, rows][:, :, cols]                         # (M, H, W)
    pixels = np.concatenate([pixels, np.zeros((1,) + pixels.shape[1:], bool)])   # + x itself
    n_copies = n_subsets + 1
    images = np.repeat(np.arange(len(x)), n_copies)
    copies = _swapped_copies(x, base, 1 - pixels.astype(np.int32),
                             np.tile(np.arange(n_copies), len(x)), np.ones(len(images)))
    scores = _perturb.scores(model, resolved, copies, images, batch_size)
    scores = scores.reshape(len(x), n_copies)
    drops = scores[:, -1:] - scores[:, :-1]
    masses = np.einsum("nhw,mhw->nm", importance.astype(np.float64), pixels[:-1].astype(float))
    from .similarity import pearson_rows

    return MuFidelity(pearson_rows(masses, drops), masses, drops, scores[:, -1], subsets, name)


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


def _labelled(chosen) -> dict:
    """{label: (attribution function, its options)} from names or functions (labelled by their
    registry name) or from {label: method or (method, options)}."""
    if isinstance(chosen, dict):
        pairs = chosen.items()
    elif isinstance(chosen, (list, tuple)) and chosen:
        pairs = [(methods.name_of(m), m) for m in chosen]
    else:
        raise TypeError(f"methods must be a non-empty list of method names (or functions) or a "
                        f"dict {{label: method or (method, options)}}, got {chosen!r}")
    labelled = {}
    for label, spec in pairs:
        method, options = spec if isinstance(spec, tuple) else (spec, {})
        labelled[label] = (methods.get(method), dict(options))
    return labelled


def measure(model, x, target, chosen, steps: int = 28, baseline="mean", n_subsets: int = 128,
            grid: int = 9, seed: int = 0, batch_size=BATCH_SIZE) -> dict:
    """Deletion, insertion and MuFidelity of several attribution methods on the same images:
    ``{label: [deletion Curve, insertion Curve, MuFidelity]}``, the input of :func:`ranking`.

    ``chosen``: method names of :mod:`cnn_helper.methods` (or functions), or a dict
    ``{label: method or (method, options)}``, e.g. ``{"|gradient|": ("gradient", {"sign":
    "abs"}), "occlusion": ("occlusion", {"fill": "zero"})}``. Every map is computed for ``target``
    on x and measured with the same ``steps``, ``baseline``, ``n_subsets``, ``grid`` and
    ``seed``.

    >>> results = measure(model, eights[:16], 8, ["gradient_x_input", "grad_cam", "rise"])
    >>> print(ranking(results))
    """
    results = {}
    for label, (method, options) in _labelled(chosen).items():
        maps = method(model, x, target, **options)
        results[label] = [deletion(model, x, target, maps, steps, baseline, batch_size),
                          insertion(model, x, target, maps, steps, baseline, batch_size),
                          mufidelity(model, x, target, maps, n_subsets, grid, baseline=baseline,
                                     seed=seed, batch_size=batch_size)]
    return results
