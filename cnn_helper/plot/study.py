"""Figures of the class experiment (``cnn_helper.study``): a trial's screen and the results.

``study_trial(view)`` draws what a participant sees: the references (3 x 3) and the two queries.
``study_results(analysis)`` draws the accuracy per condition (or layer, or participant) with its
Wilson interval, the chance line at 50 % and the published human results beside (Borowski et al.,
ICLR 2021: natural exemplars 92 ± 2 %, feature visualizations 82 ± 4 %; Zimmermann et al.,
NeurIPS 2021: feature visualizations 68 ± 4 %, no references 60 ± 3 %).
"""
from __future__ import annotations

import math
import textwrap

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from ._common import check_result
from .core import MAGNITUDE_CMAP, finish, show_image

QUERY_NAMES = ("left", "right")
BASELINE_MARKERS = ("s", "D", "^", "v")


def _overlay(values) -> np.ndarray:
    """An RGBA image of a map in [0, 1]: dark red, as opaque as the value (0: transparent)."""
    rgba = np.zeros(values.shape + (4,))
    rgba[..., :3] = matplotlib.colormaps[MAGNITUDE_CMAP](1.0)[:3]
    rgba[..., 3] = 0.85 * np.clip(values, 0, 1)
    return rgba


def _references(fig, spec, refs, value_range):
    """The references in a square grid of ``spec`` (a GridSpec cell); a note when there are none."""
    n = len(refs)
    if n == 0:
        ax = fig.add_subplot(spec)
        ax.axis("off")
        ax.text(0.5, 0.5, "no references", ha="center", va="center", fontsize=12, color="0.4")
        return
    side = math.ceil(math.sqrt(n))
    cells = spec.subgridspec(side, side, wspace=0.05, hspace=0.05)
    for i in range(n):
        ax = fig.add_subplot(cells[i // side, i % side])
        show_image(ax, refs.images[i], vmin=value_range[0], vmax=value_range[1])
        if refs.overlays is not None:
            ax.imshow(_overlay(refs.overlays[i]), interpolation="nearest")


def study_trial(view, size: float = 2.2):
    """The screen of one 2-AFC trial: references left (with their caption), the two queries
    right, titled "left" and "right". ``view``: a ``study.TrialView`` (or a Trial). Returns
    (fig, the two queries' axes).

    >>> fig, axes = study_trial(ts[0].view())
    """
    view = check_result(view, "view", "TrialView", ("references", "queries", "value_range"),
                        "Trial.view()")
    fig = plt.figure(figsize=(size * 2.9, size * 1.25))
    outer = fig.add_gridspec(1, 3, width_ratios=(1.25, 0.85, 0.85), wspace=0.12)
    _references(fig, outer[0, 0], view.references, view.value_range)
    fig.text(0.22, 0.99, textwrap.fill(view.references.caption, 44), ha="center", va="top",
             fontsize=8)
    axes = []
    for i, name in enumerate(QUERY_NAMES):
        ax = fig.add_subplot(outer[0, i + 1])
        axes.append(ax)
        show_image(ax, view.queries[i], vmin=view.value_range[0], vmax=view.value_range[1])
        ax.set_title(name, fontsize=12)
    fig.text(0.72, 0.99, "which activates the unit more?", ha="center", va="top", fontsize=10,
             weight="bold")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=0.84)
    return finish(fig), axes


def _rows(analysis, by: str) -> tuple:
    tables = {"condition": "by_condition", "layer": "by_layer", "participant": "by_participant",
              "cell": "by_cell"}
    if by not in tables:
        raise ValueError(f"by {by!r} is not one of {tuple(tables)}")
    return getattr(analysis, tables[by])


def _baselines(ax, analysis, groups: list):
    """The published accuracies (with their ±) beside the matching conditions, one marker per
    paper."""
    papers = list(dict.fromkeys(b.paper for b in analysis.baselines))
    for b in analysis.baselines:
        if b.condition not in groups:
            continue
        j = papers.index(b.paper)
        ax.errorbar(groups.index(b.condition) + 0.18 + 0.14 * j, b.accuracy, yerr=b.error,
                    fmt=BASELINE_MARKERS[j % len(BASELINE_MARKERS)], color="0.45", mfc="white",
                    capsize=3, label=b.paper if b.paper not in ax.get_legend_handles_labels()[1]
                    else None)


def study_results(analysis, by: str = "condition", ax=None, baselines: bool = True):
    """Accuracy with its Wilson interval per group (``by``: "condition", "layer", "participant"
    or "cell"), the chance line, and (by condition) the published human results beside.

    >>> fig, ax = study_results(study.analyze("class.sqlite"))
    """
    analysis = check_result(analysis, "analysis", "Analysis", ("by_condition", "baselines"),
                            "study.analyze")
    rows = _rows(analysis, by)
    groups = [row.group for row in rows]
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(groups) + 2), 3.6))
    fig = ax.figure
    acc = np.array([row.accuracy for row in rows])
    err = np.array([acc - [row.low for row in rows], [row.high for row in rows] - acc])
    err = np.clip(err, 0, None)      # at 100 % the interval's top is 1 - 1e-16: rounding, no bar
    ax.errorbar(range(len(groups)), acc, yerr=err, fmt="o", color="C0", capsize=4,
                label=f"this experiment ({round(100 * rows[0].level)} % Wilson CI)")
    ax.axhline(analysis.chance, color="0.3", linestyle="--", linewidth=1, label="chance")
    if baselines and by == "condition":
        _baselines(ax, analysis, groups)
    ax.set_xticks(range(len(groups)), groups, rotation=30 if len(groups) > 4 else 0,
                  ha="right" if len(groups) > 4 else "center")
    ax.set_xlim(-0.5, len(groups) - 0.2)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title(f"Which query activates the unit more? ({analysis.overall.n} answers)",
                 fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return finish(fig), ax
