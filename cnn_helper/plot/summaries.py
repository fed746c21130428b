"""Figures that summarise many examples, so that a result is seen not to be cherry-picked: the
labels of a feature's top examples, and maps averaged per class (``features.class_means``).
"""
from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np

from .. import _checks
from ._common import describe, fit_text, image_array, squeeze_image
from .core import MAGNITUDE_CMAP, SIGNED_CMAP, finish, show_image, symmetric_limit

# --------------------------------------------------------------------------- label histograms


def _checked_labels(labels, n_classes, name: str) -> np.ndarray:
    """Class labels 0..n_classes - 1 (N,) from labels or one-hot rows; an error otherwise."""
    labels = _checks.labels_of(labels, name)
    if len(labels) == 0:
        raise ValueError(f"{name} is empty: give the labels of at least one example")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or \
            labels.max() >= n_classes:
        raise ValueError(f"{name} must be class labels 0..{n_classes - 1} (n_classes="
                         f"{n_classes}), got {labels.dtype} values in [{labels.min()}, "
                         f"{labels.max()}]")
    return labels


def label_histogram(labels, n_classes: int = 10, title=None, ax=None):
    """A bar chart of how many examples have each label (e.g. y of a feature's top examples),
    the count written on each bar.

    >>> r = max_activation.top_examples(model, x_test, Feature("conv3", 3), count=50)
    >>> fig, ax = label_histogram(y_test[r.high.indices], title="conv3 map 3: top 50")
    """
    n_classes = _checks.positive_int(n_classes, "n_classes")
    labels = _checked_labels(labels, n_classes, "labels")
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.6, 2.4))
    bars = ax.bar(range(n_classes), np.bincount(labels, minlength=n_classes), color="tab:blue")
    ax.bar_label(bars, labels=[str(int(b.get_height())) if b.get_height() else ""
                               for b in bars], fontsize=7)
    ax.set_xticks(range(n_classes))
    ax.set_xlabel("label", fontsize=8)
    ax.set_ylabel("examples", fontsize=8)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title or f"labels of {len(labels)} examples", fontsize=9)
    fig = fig or ax.figure
    return finish(fig), ax


def label_histograms(groups: dict, n_classes: int = 10, cols=None, title=None, size=2.6):
    """One ``label_histogram`` per named group (e.g. per feature) on a shared count axis.

    >>> fig, axes = label_histograms({"conv3 map 3": y_test[r3.high.indices],
    ...                               "conv3 map 7": y_test[r7.high.indices]})
    """
    if not isinstance(groups, dict) or not groups:
        raise TypeError(f"groups must be a non-empty dict {{name: labels}}, got "
                        f"{describe(groups)}")
    n_classes = _checks.positive_int(n_classes, "n_classes")
    cols = _checks.positive_int(cols, "cols") if cols is not None else min(len(groups), 4)
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, sharey=True, squeeze=False,
                             figsize=(size * cols, 0.7 * size * rows + (0.4 if title else 0.1)))
    for ax, (name, labels) in zip(axes.flat, groups.items()):
        labels = _checked_labels(labels, n_classes, f"groups[{name!r}]")
        label_histogram(labels, n_classes, f"{name} (n={len(labels)})", ax)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return finish(fig), axes


# --------------------------------------------------------------------------- class averages


def _mean_and_count(value, name: str):
    """(mean array, count or None) from a ``features.ClassMean`` or a plain array."""
    if hasattr(value, "mean") and hasattr(value, "count"):
        return image_array(value.mean, name).astype(float), int(value.count)
    return image_array(value, name).astype(float), None


def _class_columns(mean_images, mean_maps, overlay: bool):
    """(label, image, map, count) per class of mean_maps, in its order; maps collapsed to 2-D
    (channels summed); an error for a class without a mean image or a map that cannot overlay."""
    for name, value in (("mean_images", mean_images), ("mean_maps", mean_maps)):
        if not isinstance(value, dict) or not value:
            raise TypeError(f"{name} must be a non-empty dict {{label: mean}} (from "
                            f"features.class_means), got {describe(value)}")
    missing = [c for c in mean_maps if c not in mean_images]
    if missing:
        raise ValueError(f"mean_maps has classes {missing} that mean_images lacks (it has "
                         f"{list(mean_images)}): average the images over the same classes")
    columns = []
    for c, value in mean_maps.items():
        image, _ = _mean_and_count(mean_images[c], f"mean_images[{c!r}]")
        m, count = _mean_and_count(value, f"mean_maps[{c!r}]")
        m = squeeze_image(m, f"mean_maps[{c!r}]")
        m = m.sum(axis=-1) if m.ndim == 3 else m
        if overlay and m.shape != squeeze_image(image).shape[:2]:
            raise ValueError(f"mean_maps[{c!r}] has shape {m.shape} but the image is "
                             f"{image.shape}: overlay needs maps of the image's size, or draw "
                             "them beside (overlay=False)")
        columns.append((c, image, m, count))
    return columns


def class_average_maps(mean_images, mean_maps, map_name: str = "mean map", overlay=False,
                       title=None, size=1.5):
    r"""Per class: its mean image (top row) and its mean map (bottom row), every map on ONE
    colour scale with one colour bar, so classes compare.

    mean_images, mean_maps : {label: ``features.ClassMean`` or array}, from
                 ``features.class_means(x, y)`` and ``features.class_means(maps, y)``; columns
                 follow mean_maps' classes, titled "label" and "n=count" below it (10
                 class names side by side do not crowd)
    map_name   : what the maps are (the bottom row's label and the title's)
    overlay    : draw each map half-transparent over its mean image instead of alone
    Signed maps use the diverging colormap centred at 0, :math:`[-L, L]` with L the largest
    |value| of all classes' maps; maps without negative values go from 0 (white) to L.

    >>> g = saliency.gradient(model, x, Feature("conv3", 3))
    >>> fig, axes = class_average_maps(features.class_means(x, y), features.class_means(g, y),
    ...                                map_name="mean d y_(conv3),k=3 / d x")
    """
    columns = _class_columns(mean_images, mean_maps, overlay)
    limit = max(symmetric_limit(m) for _, _, m, _ in columns)
    signed = any(m.min() < 0 for _, _, m, _ in columns)
    fig, axes = plt.subplots(2, len(columns), squeeze=False, layout="constrained",
                             figsize=(size * len(columns) + 0.8, 2 * size + 0.9))
    for (c, image, m, count), (top, bottom) in zip(columns, axes.T):
        show_image(top, image, fit_text(c, size, 9) + ("" if count is None else f"\nn={count}"))
        if overlay:
            show_image(bottom, image)
        im = show_image(bottom, m, cmap=SIGNED_CMAP if signed else MAGNITUDE_CMAP,
                        vmin=-limit if signed else 0.0, vmax=limit)
        im.set_alpha(0.65 if overlay else 1.0)
    axes[0, 0].set_ylabel("mean image", fontsize=9)
    axes[1, 0].set_ylabel(textwrap.fill(map_name, 22), fontsize=9)
    bar = fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.9)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(title or f"class averages: {map_name}, one colour scale", fontsize=10)
    return finish(fig), axes
