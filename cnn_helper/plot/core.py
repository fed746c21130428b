"""The building blocks of every figure: drawing one image or signed map, grids of them, montages.

Colour conventions of the package:

- an image: grey for one channel (``IMAGE_CMAP``), colour rescaled to [0, 1] for three;
- a signed map (a saliency, a change): ``SIGNED_CMAP``, diverging and centred at 0, red positive,
  blue negative, white 0;
- a magnitude (a map without negative values): ``MAGNITUDE_CMAP``, white 0 to dark red.
"""
from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from .. import _checks
from ._common import describe, image_array, rescale, squeeze_image

SIGNED_CMAP = "RdBu_r"      # red: positive, blue: negative, white: 0
IMAGE_CMAP = "gray"
MAGNITUDE_CMAP = "Reds"     # 0: white, large: dark red (the positive half of SIGNED_CMAP)
FRAME_COLOUR = "0.55"       # the frame of a crop: mid grey, seen on white and on black
MAP_CHANNELS = ("sum", "max_abs")


def finish(fig):
    """Close the pyplot handle so notebooks do not draw the figure twice; return the figure.

    Every figure function ends with it: the figure lives on in the returned ``fig`` (a notebook
    shows it once, as the cell's value or through ``display(fig)``).
    """
    plt.close(fig)
    return fig


def symmetric_limit(values) -> float:
    """max |values| (1 when all are 0), the colour limit that centres a diverging map at 0."""
    values = image_array(values, "values")
    m = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return m if m > 0 else 1.0


def to_map(s, channels: str = "sum") -> np.ndarray:
    r"""Collapse the channel axis of maps (..., H, W, C) -> (..., H, W) for display.

    "sum" keeps the sign: :math:`\sum_k s_k`; "max_abs" is :math:`\max_k |s_k|` (Simonyan et
    al.'s choice for colour images, a magnitude).

    >>> to_map(saliency.gradient(model, x, 8)).shape        # (N, H, W) from (N, H, W, C)
    """
    s = image_array(s, "s")
    if channels not in MAP_CHANNELS:
        raise ValueError(f"channels {channels!r} is not one of {MAP_CHANNELS}")
    if s.ndim < 2:
        raise ValueError(f"maps must have a channel axis, got shape {s.shape}")
    return s.sum(axis=-1) if channels == "sum" else np.abs(s).max(axis=-1)


def show_image(ax, img, title=None, cmap=IMAGE_CMAP, vmin=None, vmax=None):
    """Draw one image on ``ax`` without ticks and return the ``AxesImage``.

    A one-channel image is drawn with ``cmap`` over [vmin, vmax] (default: its own range); a
    colour image is rescaled from [vmin, vmax] (default: its own min and max) to [0, 1].
    """
    img = squeeze_image(img)
    if img.ndim == 3:
        img = rescale(img, vmin, vmax)
        im = ax.imshow(img, interpolation="nearest")
    else:
        im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    return im


def show_signed(ax, values, title=None, limit=None):
    """Draw a signed 2-D map (channels summed) with the diverging colormap centred at 0."""
    values = squeeze_image(values)
    if values.ndim == 3:
        values = values.sum(axis=-1)
    limit = symmetric_limit(values) if limit is None else limit
    return show_image(ax, values, title, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit)


def grid(n: int, cols: int | None = None, size: float = 1.6, title=None):
    """A figure with n small axes in rows of ``cols``; the unused axes are hidden.

    Each row is ``size`` inches plus room for its tiles' titles (square images shrink inside their
    boxes, so tight_layout alone would let a title run into the row above).
    """
    for name, value in (("n", n), ("cols", cols)):
        if value is not None and not _checks.is_int(value):
            raise TypeError(f"{name} must be an int, got {describe(value)}")
    n = _checks.positive_int(n, "n")
    cols = _checks.positive_int(cols, "cols") if cols is not None else min(n, 8)
    rows = max(1, math.ceil(n / cols))
    height = (size + 0.3) * rows + (0.4 if title else 0)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, height), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig, axes


def images(x, titles=None, cols=None, title=None, size=1.6, signed=False):
    """A grid of images (or signed maps when ``signed``), each with an optional title.

    >>> fig, axes = images(x_test[:8], [f"y={y}" for y in y_test[:8]])
    """
    x = image_array(x)
    if x.ndim < 3 or len(x) == 0:
        raise ValueError(f"x has shape {x.shape}; give a non-empty batch of images (N, H, W) or "
                         "(N, H, W, C)")
    fig, axes = grid(len(x), cols, size, title)
    draw = show_signed if signed else show_image
    for i, ax in enumerate(axes.flat[:len(x)]):
        draw(ax, x[i], None if titles is None else titles[i])
    fig.tight_layout()
    return finish(fig), axes


# --------------------------------------------------------------------------- montage


def _montage_tile(t, signed: bool, colour: bool) -> np.ndarray:
    """One tile on its own scale: [-1, 1] by max |t| when signed, else [0, 1] (grey as RGB on a
    colour montage)."""
    t = np.asarray(t, dtype=float)
    if signed:
        return t / symmetric_limit(t)
    t = rescale(t)
    return np.repeat(t[..., None], 3, axis=-1) if colour and t.ndim == 2 else t


def _montage_canvas(tiles, cols: int, signed: bool, titled: bool):
    """The tiles laid into one array (NaN between them) and (tile height, width, gap, top)."""
    colour = not signed and any(t.ndim == 3 for t in tiles)
    rows = math.ceil(len(tiles) / cols)
    h, w = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    gap = max(1, round(0.08 * w))
    top = max(gap, round(0.3 * h)) if titled else gap       # room for a title above each row
    canvas = np.full((rows * (h + top), cols * (w + gap) - gap) + ((3,) if colour else ()), np.nan)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y0, x0 = r * (h + top) + top, c * (w + gap)
        canvas[y0:y0 + t.shape[0], x0:x0 + t.shape[1]] = _montage_tile(t, signed, colour)
    return canvas, (h, w, gap, top)


def _frame_tiles(ax, tiles, cols: int, geometry):
    """A thin grey frame (a Rectangle, gid "tile frame") around each tile's own extent."""
    h, w, gap, top = geometry
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        ax.add_patch(Rectangle((c * (w + gap) - 0.5, r * (h + top) + top - 0.5), t.shape[1],
                               t.shape[0], fill=False, edgecolor=FRAME_COLOUR, linewidth=0.8,
                               gid="tile frame"))


def montage(tiles, titles=None, cols=None, title=None, signed=False, size=1.1, ax=None,
            frame=False):
    """Images (of possibly different sizes) tiled into ONE axes, each with its own scale.

    A grey tile is stretched to its own [min, max]; a ``signed`` tile is drawn with the diverging
    colormap, centred at 0 by its own max |value|. ``titles`` go above the tiles; ``frame``
    draws a thin grey frame around each tile, so a crop whose border rows are white (or black)
    keeps its extent. One axes and one image however many tiles, so it is quick to redraw (the
    explorers use it).
    """
    if isinstance(tiles, dict) or hasattr(tiles, "element_spec"):
        raise TypeError(f"tiles must be a list of images, got {describe(tiles)}")
    tiles = [squeeze_image(t, "tiles[i]") for t in tiles]
    tiles = [t.sum(axis=-1) if t.ndim == 3 else t for t in tiles] if signed else tiles
    if not tiles:
        raise ValueError("montage needs at least one tile")
    cols = cols or min(len(tiles), 8)
    canvas, (h, w, gap, top) = _montage_canvas(tiles, cols, signed, titles is not None)
    fig = None
    if ax is None:
        aspect = canvas.shape[0] / canvas.shape[1]
        fig, ax = plt.subplots(figsize=(size * cols, size * cols * aspect))
        fig.subplots_adjust(0, 0, 1, 0.88 if title else 1)
    if canvas.ndim == 3:
        ax.imshow(np.nan_to_num(canvas, nan=1.0), interpolation="nearest")
    else:
        cmap = matplotlib.colormaps[SIGNED_CMAP if signed else IMAGE_CMAP]
        ax.imshow(canvas, cmap=cmap.with_extremes(bad="white"), vmin=-1 if signed else 0, vmax=1,
                  interpolation="nearest")
    ax.axis("off")
    if frame:
        _frame_tiles(ax, tiles, cols, (h, w, gap, top))
    for i, text in enumerate(titles or []):
        r, c = divmod(i, cols)
        ax.text(c * (w + gap) + (w - 1) / 2, r * (h + top) + top - 1.5, text, ha="center",
                va="bottom", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return finish(fig or ax.figure), ax
