"""Superpixels drawn over their images, and per-region values drawn as a map with the regions'
outlines: what ``cnn_helper.superpixels`` and ``cnn_helper.black_box`` computed."""
from __future__ import annotations

import numpy as np

from ._common import image_array
from .core import finish, grid, show_image, show_signed, symmetric_limit

OUTLINE = (1.0, 0.85, 0.0)           # the regions' outlines: yellow, seen on grey and on colour


def outlines(labels) -> np.ndarray:
    """(H, W) bool: the pixels of a label map (H, W) whose right or lower neighbour lies in
    another region.

    >>> outlines(np.array([[0, 0, 1], [0, 0, 1]]))      # the middle column is an outline
    """
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edge


def _draw_outlines(ax, labels):
    """The outlines of ``labels`` over what ``ax`` shows (transparent elsewhere)."""
    overlay = np.zeros(np.shape(labels) + (4,))
    overlay[outlines(labels)] = OUTLINE + (1.0,)
    ax.imshow(overlay, interpolation="nearest")


def segment_outlines(x, labels, titles=None, cols=None, size=1.6, title=None):
    """Each image of x (N, H, W, C) or one image, with the outlines of its regions (label maps
    (N, H, W) or (H, W)) and their count in the tile's title. Returns (fig, axes).

    >>> labels = superpixels.segments(x_test[:4], "slic", n_segments=8)
    >>> fig, axes = segment_outlines(x_test[:4], labels)
    """
    x, labels = image_array(x, "x"), np.asarray(labels)
    x = x[None] if labels.ndim == 2 else x
    labels = labels[None] if labels.ndim == 2 else labels
    if x.shape[:3] != labels.shape:
        raise ValueError(f"labels {labels.shape} do not fit images {x.shape}: one label map "
                         "(H, W) per image")
    fig, axes = grid(len(x), cols, size, title)
    for i, ax in enumerate(axes.flat[:len(x)]):
        name = titles[i] if titles is not None else f"{int(labels[i].max()) + 1} regions"
        show_image(ax, x[i], name)
        _draw_outlines(ax, labels[i])
    fig.tight_layout()
    return finish(fig), axes


def segment_values(x, labels, maps, titles=None, size=1.6, title=None):
    """One row per image: the image with its regions' outlines, then each map of ``maps``
    ({name: (N, H, W, 1) maps}, e.g. KernelSHAP's and LIME's) with the same outlines, each on its
    own colour scale centred at 0 (red positive, blue negative). Returns (fig, axes).

    >>> fig, axes = segment_values(x, r.segments, {"KernelSHAP": r.maps()})
    """
    x, labels = image_array(x, "x"), np.asarray(labels)
    names = list(maps)
    fig, axes = grid(len(x) * (1 + len(names)), 1 + len(names), size, title)
    for i in range(len(x)):
        row = axes[i]
        show_image(row[0], x[i], "image" if i == 0 else None)
        _draw_outlines(row[0], labels[i])
        for ax, name in zip(row[1:], names):
            values = np.asarray(maps[name][i])
            heading = (titles or {}).get(name, name) if i == 0 else None
            show_signed(ax, values, heading, limit=symmetric_limit(values))
            _draw_outlines(ax, labels[i])
    fig.tight_layout()
    return finish(fig), axes
