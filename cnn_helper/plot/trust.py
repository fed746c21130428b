r"""Can we trust a saliency map? Figures of ``cnn_helper.sanity_checks`` and
``cnn_helper.faithfulness``: the randomization grid (Adebayo et al.'s figure), the similarity of
the maps as layers are randomized, the data-randomization pairs, deletion / insertion curves and
a ranking table. They draw the results; the numbers are computed there.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._common import check_result, image_array
from .attribution import show_map
from .core import finish, show_image

RANDOMIZATION_FIELDS = ("mode", "method", "layers", "original", "maps", "spearman")
DATA_FIELDS = ("method", "original", "maps", "spearman_abs")
CURVE_FIELDS = ("kind", "fractions", "scores", "auc")
MEASURE_NAMES = {"spearman": "Spearman (signed)", "spearman_abs": "Spearman of |map|",
                 "ssim": "SSIM of |map|", "hog": "HOG similarity of |map|"}
EACH_SCALE = "each map on its own colour scale (red +, blue -, white 0; a map >= 0: white to red)"


def _results(results: dict, fields, kind: str, made_by: str) -> dict:
    """{name: result}, each checked to have the ``fields`` of a ``kind``."""
    if not isinstance(results, dict) or not results:
        raise TypeError(f"results must be a non-empty dict {{method name: {kind}}}, got "
                        f"{type(results).__name__}")
    for name, result in results.items():
        check_result(result, f"results[{name!r}]", kind, fields, made_by)
    return results


def _map_2d(m) -> np.ndarray:
    """One map (H, W, C) as (H, W), channels summed."""
    m = np.asarray(m, float)
    return m.sum(axis=-1) if m.ndim == 3 else m


def _step_titles(result) -> list:
    """Column titles: what is randomized at each step."""
    if result.mode == "cascading":
        return [f"down to\n{layer}" if i else f"{layer}\nrandomized"
                for i, layer in enumerate(result.layers)]
    return [f"only\n{layer}" for layer in result.layers]


def randomization_grid(x, results: dict, example: int = 0, size: float = 1.25, title=None):
    """Adebayo et al.'s figure: one row per method, its map of image ``example`` on the trained
    model, then after each randomization step (``results``: {name: ModelRandomization}, the
    same layers in each). The input is drawn at the top left. Each map has its own colour
    scale, as the caption says.

    >>> fig, axes = randomization_grid(eights, {"gradient": r_g, "guided": r_gb}, example=0)
    """
    results = _results(results, RANDOMIZATION_FIELDS, "ModelRandomization",
                       "sanity_checks.model_randomization")
    first = next(iter(results.values()))
    if any(r.layers != first.layers or r.mode != first.mode for r in results.values()):
        raise ValueError("every result must randomize the same layers in the same mode")
    image = image_array(x, "x")
    image = image[example] if image.ndim == 4 else image
    rows, cols = len(results), len(first.layers) + 2
    fig, axes = plt.subplots(rows, cols, squeeze=False, layout="constrained",
                             figsize=(size * cols, size * rows + 0.9))
    show_image(axes[0, 0], image, "input")
    for ax in axes[1:, 0]:
        ax.set_axis_off()
    titles = ["trained"] + _step_titles(first)
    for i, (name, result) in enumerate(results.items()):
        maps = [result.original[example]] + [step[example] for step in result.maps]
        for j, m in enumerate(maps):
            show_map(axes[i, j + 1], _map_2d(m), titles[j] if i == 0 else None)
        axes[i, 1].set_ylabel(name, fontsize=9)
    fig.suptitle(title or f"{first.mode} randomization, top layer first")
    fig.supxlabel(EACH_SCALE, fontsize=8)
    return finish(fig), axes


def _summary(values) -> tuple:
    """(mean, 25th, 75th percentile) over the images of each step (NaN left out: a step whose
    maps are all 0), the trained model's 1 first."""
    import warnings

    values = np.asarray(values, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)        # a step where every value is NaN
        stats = (np.nanmean(values, axis=1), np.nanpercentile(values, 25, axis=1),
                 np.nanpercentile(values, 75, axis=1))
    return tuple(np.concatenate([[1.0], s]) for s in stats)


def similarity_curves(results: dict, measures=("spearman", "spearman_abs", "ssim", "hog"),
                      size: float = 3.0, title=None):
    """How alike each method's maps stay as layers are randomized: one panel per measure, one
    line per method (``results``: {name: ModelRandomization}): the mean over the images (NaN
    left out), the band between their 25th and 75th percentiles. The first point, the trained
    model, is 1 by definition.

    >>> fig, axes = similarity_curves({"gradient": r_g, "guided backprop": r_gb})
    """
    results = _results(results, RANDOMIZATION_FIELDS, "ModelRandomization",
                       "sanity_checks.model_randomization")
    first = next(iter(results.values()))
    fig, axes = plt.subplots(1, len(measures), squeeze=False, layout="constrained",
                             figsize=(size * len(measures) + 1.6, size + 0.9), sharey=True)
    ticks = ["trained"] + [t.replace("\n", " ") for t in _step_titles(first)]
    steps = np.arange(len(ticks))
    for ax, measure in zip(axes[0], measures):
        for name, result in results.items():
            mean, low, high = _summary(getattr(result, measure))
            line, = ax.plot(steps, mean, marker="o", ms=3, label=name)
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.12)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xticks(steps, ticks, rotation=60, ha="right", fontsize=7)
        ax.set_title(MEASURE_NAMES.get(measure, measure), fontsize=9)
    axes[0, 0].set_ylabel("similarity to the trained model's map")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), fontsize=7, loc="outside right center")
    fig.suptitle(title or f"{first.mode} randomization: mean over images, 25-75% band")
    return finish(fig), axes


def data_randomization_grid(x, results: dict, examples=(0, 1, 2), size: float = 1.25,
                            title=None):
    """The data randomization test: one row per method (``results``: {name:
    DataRandomization}), for each image of ``examples`` its map on the true model beside its
    map on the model trained on permuted labels; the row's label gives the mean Spearman
    correlation of |map| over all the images compared. Each map has its own colour scale.

    >>> fig, axes = data_randomization_grid(eights, {"gradient": d_g, "guided": d_gb})
    """
    results = _results(results, DATA_FIELDS, "DataRandomization",
                       "sanity_checks.data_randomization")
    xs = image_array(x, "x")
    examples = list(examples)
    rows, cols = len(results), 3 * len(examples)
    fig, axes = plt.subplots(rows, cols, squeeze=False, layout="constrained",
                             figsize=(size * cols, size * rows + 0.9))
    for i, (name, result) in enumerate(results.items()):
        for e, n in enumerate(examples):
            show_image(axes[i, 3 * e], xs[n], f"image {n}" if i == 0 else None)
            show_map(axes[i, 3 * e + 1], _map_2d(result.original[n]),
                     "true labels" if i == 0 else None)
            show_map(axes[i, 3 * e + 2], _map_2d(result.maps[n]),
                     "random labels" if i == 0 else None)
        score = np.nanmean(result.spearman_abs) if np.any(np.isfinite(result.spearman_abs)) \
            else np.nan
        axes[i, 0].set_ylabel(f"{name}\nrank corr. {score:.2f}", fontsize=8)
    fig.suptitle(title or "maps of the true model and of the model trained on permuted labels")
    fig.supxlabel(EACH_SCALE, fontsize=8)
    return finish(fig), axes


def faithfulness_curves(deletion: dict, insertion=None, size: float = 3.6, title=None):
    """Deletion (and insertion) curves: one panel each, one line per method ({name: Curve}),
    the target's score averaged over the images against the fraction of pixels removed
    (inserted); the legend gives each method's mean AUC.

    >>> fig, axes = faithfulness_curves({"gradient": d_g, "Grad-CAM": d_c},
    ...                                 {"gradient": i_g, "Grad-CAM": i_c})
    """
    panels = [_results(d, CURVE_FIELDS, "Curve", "faithfulness.deletion / insertion")
              for d in ((deletion,) if insertion is None else (deletion, insertion))]
    fig, axes = plt.subplots(1, len(panels), squeeze=False, layout="constrained",
                             figsize=(size * len(panels) + 1.2, size))
    for ax, curves in zip(axes[0], panels):
        kind = next(iter(curves.values())).kind
        for name, curve in curves.items():
            ax.plot(curve.fractions, np.mean(curve.scores, axis=0),
                    label=f"{name} (AUC {np.mean(curve.auc):.3f})")
        verb = "removed" if kind == "deletion" else "inserted"
        ax.set_xlabel(f"fraction of pixels {verb}, most important first")
        ax.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} AUC is better)",
                     fontsize=10)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("target score, mean over the images")
    if title:
        fig.suptitle(title)
    return finish(fig), axes


def ranking_table(ranking, title=None, size: float = 1.0):
    """A ranking (``faithfulness.ranking``) as a table: one row per method, best first; each
    cell a measure's mean over the images and the method's rank for it (#1: the best).

    >>> fig, ax = ranking_table(faithfulness.ranking(results))
    """
    check_result(ranking, "ranking", "Ranking", ("methods", "measures", "means", "ranks"),
                 "faithfulness.ranking")
    heads = [f"{m} ({'higher' if h else 'lower'} is better)"
             for m, h in zip(ranking.measures, ranking.higher_is_better)]
    cells = [[name] + [f"{v:.3f}  (#{r})" for v, r in zip(means, ranks)]
             for name, means, ranks in zip(ranking.methods, ranking.means, ranking.ranks)]
    fig, ax = plt.subplots(figsize=(2.2 + 2.2 * len(heads), size * (0.8 + 0.25 * len(cells))),
                           layout="constrained")             # room for the title above the axes
    ax.set_axis_off()
    table = ax.table(cellText=cells, colLabels=["method (best first)"] + heads,
                     bbox=[0, 0, 1, 1], cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    ax.set_title(title or "faithfulness ranking (mean over the images)", fontsize=10)
    return finish(fig), ax
