r"""Concepts (``cnn_helper.concepts``): TCAV's scores against random CAVs, CRAFT's concepts by
their top crops, their maps on images, and a concept seen by feature visualization beside the
crops that show it.

- ``tcav_scores``     : one bar per test (concept, layer, class...): the mean TCAV score, each
  run's score as a dot, the random CAVs' scores beside it in grey, and the p-value;
- ``concept_crops``   : one row per CRAFT concept: its top crops, its importance in the title;
- ``concept_maps``    : images, each beside the map of every concept (one magnitude scale per
  concept, shared by the images);
- ``concept_and_crops``: each concept's optimized image (``visualize`` with a ``Direction``)
  beside its top crops.

Example
-------
>>> fig, ax = tcav_scores({k: tcav(model, x[y == k], Feature("logits", k), "loop", "conv3")
...                        for k in range(10)})
>>> fig, axes = concept_crops(bank, bank.importance(x_eights, Feature("logits", 8)))
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._common import check_result, fit_text
from .core import MAGNITUDE_CMAP, finish, grid, show_image

TCAV_FIELDS = ("score", "scores", "random_scores", "p_value", "significant")
CRAFT_FIELDS = ("bank", "crops", "crop_coefficients", "top_crops")
RANDOM_COLOUR = "0.6"
CONCEPT_COLOUR = "tab:blue"


def p_text(p: float) -> str:
    """A p-value at the precision a figure needs: "p < 0.001", "p < 0.01", else "p = 0.23"."""
    for bound in (0.001, 0.01):
        if p < bound:
            return f"p < {bound}"
    return f"p = {p:.2f}"


def tcav_scores(results, title=None, ax=None):
    """Bars of TCAV scores: for each result (a ``TCAV``; ``results`` a dict {label: TCAV}, e.g.
    from ``tcav`` or one per class, or a list), the mean score (blue bar, each run a dot) and
    the random CAVs' scores (grey bar beside it), "*" above a significant one, its p-value below
    the axis. Scores are shares of images: the axis runs from 0 to 1.

    >>> fig, ax = tcav_scores(tcav(model, nines, Feature("logits", 9), ["loop", "vertical_bar"],
    ...                            ["conv2", "conv3"]))
    """
    items = list(results.items()) if isinstance(results, dict) else \
        [(f"{r.concept} {r.layer}", r) for r in results]
    for _, r in items:
        check_result(r, "results", "TCAV", TCAV_FIELDS, "concepts.tcav")
    labels = [" ".join(map(str, k)) if isinstance(k, tuple) else str(k) for k, _ in items]
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(items) + 1.5), 3.2))
    fig = ax.figure
    at = np.arange(len(items))
    for offset, field, colour, name in ((-0.18, "scores", CONCEPT_COLOUR, "concept CAVs"),
                                        (0.18, "random_scores", RANDOM_COLOUR, "random CAVs")):
        values = [getattr(r, field) for _, r in items]
        ax.bar(at + offset, [np.mean(v) for v in values], 0.34, color=colour, alpha=0.55,
               label=name)
        for i, v in enumerate(values):
            ax.plot(np.full(len(v), at[i] + offset), v, ".", color=colour, markersize=3)
    for i, (_, r) in enumerate(items):
        if r.significant:
            ax.text(at[i] - 0.18, 1.03, "*", ha="center", fontsize=13)
    ax.set_xticks(at, [f"{label}\n{p_text(r.p_value)}" for label, (_, r) in zip(labels, items)],
                  fontsize=8)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("TCAV score")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title or "TCAV: concept CAVs vs random CAVs (* significant)", fontsize=10)
    fig.tight_layout()
    return finish(fig), ax


def concept_crops(craft, importance=None, count: int = 8, concepts=None, size: float = 0.9):
    """One row per concept of ``craft`` (a ``Craft``): its ``count`` top crops (the crops with
    the largest coefficient), each crop on the image range of the crops. With ``importance``
    (from ``Craft.importance``) the rows follow it, most important first, and say its total
    index.

    >>> fig, axes = concept_crops(bank, bank.importance(x_eights, Feature("logits", 8)))
    """
    check_result(craft, "craft", "Craft", CRAFT_FIELDS, "concepts.craft")
    order = list(range(len(craft.bank))) if importance is None else list(importance.order)
    order = order if concepts is None else list(concepts)
    fig, axes = grid(len(order) * count, count, size)
    low, high = float(np.min(craft.crops)), float(np.max(craft.crops))
    for row, concept in enumerate(order):
        for j, index in enumerate(craft.top_crops(concept, count)):
            show_image(axes[row, j], craft.crops[index], vmin=low, vmax=high)
        label = f"concept {concept}" + ("" if importance is None else
                                        f"\nimportance {importance.totals[concept]:.2f}")
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"CRAFT at {craft.layer}: top crops of each concept", fontsize=10)
    fig.tight_layout()
    return finish(fig), axes


def concept_maps(x, maps, concepts=None, names=None, size: float = 1.2):
    """Each image of x (N, H, W, C) beside its concept maps ``maps`` (N, h, w, c), from
    ``Craft.transform``; concept j's maps share one magnitude scale (0 to its max over the
    images), so a paler map holds less of it.

    >>> fig, axes = concept_maps(x_eights[:4], bank.transform(x_eights[:4]))
    """
    x, maps = np.asarray(x), np.asarray(maps)
    if maps.ndim != 4 or len(maps) != len(x):
        raise ValueError(f"maps has shape {maps.shape}: give one (h, w, c) stack of maps per "
                         f"image of x ({len(x)}), from Craft.transform(x)")
    concepts = list(range(maps.shape[-1])) if concepts is None else list(concepts)
    names = [f"concept {c}" for c in concepts] if names is None else list(names)
    fig, axes = grid(len(x) * (len(concepts) + 1), len(concepts) + 1, size)
    for i, image in enumerate(x):
        show_image(axes[i, 0], image, "image" if i == 0 else None)
        for j, c in enumerate(concepts):
            top = float(maps[..., c].max()) or 1.0
            show_image(axes[i, j + 1], maps[i, ..., c], names[j] if i == 0 else None,
                       cmap=MAGNITUDE_CMAP, vmin=0, vmax=top)
    fig.tight_layout()
    return finish(fig), axes


def concept_and_crops(vis, crops, names=None, size: float = 1.1):
    """Each concept seen two ways: the image optimized for its direction (``vis``, a
    ``FeatureVisualization`` of ``Direction`` targets, one per concept; titled by its name, or
    ``names``) and, beside it, the crops or examples that show it (``crops``: one array
    (n, H, W, C) per concept).

    >>> fig, axes = concept_and_crops(visualize(model, directions), [bank.crops[bank.top_crops(c)]
    ...                                                              for c in range(3)])
    """
    check_result(vis, "vis", "FeatureVisualization", ("targets", "images", "settings"),
                 "feature_visualization.visualize(model, Direction(...))")
    if len(crops) != len(vis.images):
        raise ValueError(f"crops holds {len(crops)} sets; give one per image of vis "
                         f"({len(vis.images)})")
    cols = 1 + max(len(c) for c in crops)
    fig, axes = grid(len(crops) * cols, cols, size)
    low, high = vis.settings["value_range"]
    low, high = float(np.min(low)), float(np.max(high))
    for row, (image, examples) in enumerate(zip(vis.images, crops)):
        name = str(vis.targets[row]) if names is None else names[row]
        show_image(axes[row, 0], image, fit_text(name, size, 9), vmin=low, vmax=high)
        for j, crop in enumerate(examples):
            show_image(axes[row, j + 1], crop, "examples" if j == 0 else None)
        for ax in axes[row, len(examples) + 1:]:
            ax.axis("off")
    fig.tight_layout()
    return finish(fig), axes
