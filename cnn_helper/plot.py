"""Every figure of the package. Functions take computed arrays/results and return ``(fig, axes)``.

They never compute attributions. Each closes the pyplot figure it makes (so a notebook shows it
once, through the returned ``fig``), and signed maps use a diverging colormap centred at 0.
"""
from __future__ import annotations

import math

import matplotlib

import matplotlib.pyplot as plt
import numpy as np

SIGNED_CMAP = "RdBu_r"   # red: positive, blue: negative, white: 0
IMAGE_CMAP = "gray"


def _finish(fig):
    """Close the pyplot handle so notebooks do not draw the figure twice; return it."""
    plt.close(fig)
    return fig


def _squeeze_image(img):
    """(H, W, 1) -> (H, W); (H, W, 3) stays; anything else is an error naming the shape."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3):
        raise ValueError(f"cannot draw an array of shape {img.shape} as an image")
    return img


def symmetric_limit(values) -> float:
    """max |values| (1 when all are 0), the colour limit that centres a diverging map at 0."""
    m = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return m if m > 0 else 1.0


def show_image(ax, img, title=None, cmap=IMAGE_CMAP, vmin=None, vmax=None):
    """Draw one image (grey for 1 channel) on ``ax`` without ticks."""
    img = _squeeze_image(img)
    if img.ndim == 3:   # colour: rescale to [0, 1] for display
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    im = ax.imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    return im


def show_signed(ax, values, title=None, limit=None):
    """Draw a signed 2-D map with the diverging colormap centred at 0."""
    values = _squeeze_image(values)
    if values.ndim == 3:
        values = values.sum(axis=-1)
    limit = symmetric_limit(values) if limit is None else limit
    return show_image(ax, values, title, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit)


def grid(n: int, cols: int | None = None, size: float = 1.6, title=None):
    """A figure with n small axes in rows of ``cols``; the unused axes are hidden."""
    cols = cols or min(n, 8)
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + (0.4 if title else 0)),
                             squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig, axes


def images(x, titles=None, cols=None, title=None, size=1.6, signed=False):
    """A grid of images (or signed maps when ``signed``), each with an optional title."""
    x = np.asarray(x)
    fig, axes = grid(len(x), cols, size, title)
    draw = show_signed if signed else show_image
    for i, ax in enumerate(axes.flat[:len(x)]):
        draw(ax, x[i], None if titles is None else titles[i])
    fig.tight_layout()
    return _finish(fig), axes


def showmat(mat, ax=None, labels=True, title=None, fmt="{:.1f}", cmap="gray"):
    """A matrix as a grey image with its values written in each cell (``labels``)."""
    mat = np.asarray(mat, dtype=float)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.45 * mat.shape[1] + 1, 0.45 * mat.shape[0] + 1))
    show_image(ax, mat, title, cmap=cmap)
    if labels:
        mid = (mat.max() + mat.min()) / 2
        for (r, c), v in np.ndenumerate(mat):
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7,
                    color="black" if v > mid else "white")
    fig = fig or ax.figure
    return _finish(fig), ax


def convolutions(img, results: dict, filters: dict, labels=True):
    """One row per filter: input, filter, output (from ``convolution.apply_filt_2d``)."""
    n = len(results)
    fig, axes = plt.subplots(n, 3, figsize=(10, 3.3 * n), squeeze=False)
    for row, name in zip(axes, results):
        showmat(img, row[0], labels, "input")
        showmat(filters[name], row[1], True, f"filter: {name}")
        showmat(results[name], row[2], labels, "output")
    fig.tight_layout()
    return _finish(fig), axes


def activation_maps(maps, title=None, cols=8, signed=False):
    """Every channel k of one layer output y_(l) of shape (H, W, C) as a grid of maps."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"activation maps must be (H, W, C) for one example, got shape {maps.shape}")
    channels = np.moveaxis(maps, -1, 0)
    return images(channels[..., None], [f"k={k}" for k in range(len(channels))], cols=cols,
                  title=title, signed=signed)


def kernels(k, title="first-layer kernels", cols=8):
    """Every kernel (rows) and input channel of a conv layer, from ``weights.conv_kernels``.

    Each tile has its own diverging scale centred at 0 (a pattern's sign matters); RGB kernels
    are drawn in colour, rescaled to [0, 1] as in Zeiler & Fergus.
    """
    k = np.asarray(k)
    n, _, _, n_in = k.shape
    if n_in == 3:
        return images(k, [f"k={i}" for i in range(n)], cols=cols, title=title)
    tiles = np.moveaxis(k, -1, 1).reshape((n * n_in,) + k.shape[1:3])
    names = [f"k={i}" + (f", in {c}" if n_in > 1 else "") for i in range(n) for c in range(n_in)]
    return images(tiles, names, cols=cols, title=title, signed=True)


def patterns(p, titles=None, title="patterns", cols=5):
    """Dense weight patterns (one per unit) as signed images: red = positive weight."""
    p = np.asarray(p)
    titles = titles if titles is not None else [str(i) for i in range(len(p))]
    return images(p, titles, cols=cols, title=title, size=2.0, signed=True)
