r"""What a layer holds and computes: matrices, convolutions, activation maps :math:`\y_{(l)}`,
first-layer kernels and patterns, predicted probabilities, and maximally activating examples.
"""
from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from .. import _checks
from ._common import check_result, describe, image_array, value_text
from .core import SIGNED_CMAP, finish, grid, images, show_image, show_signed, symmetric_limit


def showmat(mat, ax=None, labels=True, title=None, fmt="{:.1f}", cmap="gray"):
    """A matrix as a grey image with its values written in each cell (``labels``)."""
    mat = image_array(mat, "mat").astype(float)
    if mat.ndim != 2:
        raise ValueError(f"mat has shape {mat.shape}; showmat draws a 2-D matrix")
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
    return finish(fig), ax


def convolutions(img, results: dict, filters: dict, labels=True):
    """One row per filter: input, filter, output (from ``convolution.apply_filt_2d``).

    results, filters : {name: output}, {name: filter}, with the same names
    """
    for name, value in (("results", results), ("filters", filters)):
        if not isinstance(value, dict):
            raise TypeError(f"{name} must be a dict {{filter name: array}}, got "
                            f"{describe(value)}")
    if set(results) - set(filters):
        raise ValueError(f"results has names {sorted(set(results) - set(filters))} that filters "
                         f"lacks; filters has {list(filters)}")
    n = len(results)
    fig, axes = plt.subplots(n, 3, figsize=(10, 3.3 * n), squeeze=False)
    for row, name in zip(axes, results):
        showmat(img, row[0], labels, "input")
        showmat(filters[name], row[1], True, f"filter: {name}")
        showmat(results[name], row[2], labels, "output")
    fig.tight_layout()
    return finish(fig), axes


# --------------------------------------------------------------------------- max-pool switches

WINDOW_COLOUR, SWITCH_COLOUR = "tab:blue", "tab:orange"


def _pool_arrays(img, pooled, switches, size):
    """The three arrays of a max pooling by size x size windows, checked against each other (every
    switch must lie inside its own window)."""
    img, pooled = image_array(img, "img").astype(float), image_array(pooled, "pooled")
    switches = image_array(switches, "switches")
    size = _checks.positive_int(size, "size")
    if img.ndim != 2 or pooled.ndim != 2:
        raise ValueError(f"img and pooled must be 2-D matrices, got shapes {img.shape} and "
                         f"{pooled.shape}")
    if pooled.shape != (img.shape[0] // size, img.shape[1] // size):
        raise ValueError(f"pooled {pooled.shape} is not img {img.shape} pooled by {size}x{size} "
                         "windows: give the size you gave convolution.max_pool_with_switches")
    if switches.shape != pooled.shape + (2,) or \
            np.any(switches // size != np.moveaxis(np.indices(pooled.shape), 0, -1)):
        raise ValueError(f"switches {switches.shape} must hold, for each of the {pooled.shape} "
                         f"windows of side {size}, a (row, col) inside that window: give the "
                         "switches max_pool_with_switches returned with pooled")
    return img, pooled.astype(float), switches


def _mark_switches(ax, switches, s: int):
    """Outline every s x s window (blue) and frame the switch, the max, in each (orange)."""
    for i, j in np.ndindex(switches.shape[:2]):
        ax.add_patch(matplotlib.patches.Rectangle((j * s - 0.5, i * s - 0.5), s, s, fill=False,
                                                  edgecolor=WINDOW_COLOUR, linewidth=2.5,
                                                  gid="window"))
        r, c = switches[i, j]
        ax.add_patch(matplotlib.patches.Rectangle((c - 0.38, r - 0.38), 0.76, 0.76, fill=False,
                                                  edgecolor=SWITCH_COLOUR, linewidth=3,
                                                  gid="switch"))


def pool_switches(img, pooled, switches, upstream=None, gradient=None, size=2, fmt="{:.3g}"):
    """Max pooling on a small matrix: the switches of the forward pass, and (given) the backward
    pass that routes the gradient to the switches only.

    img, pooled, switches : from ``convolution.max_pool_with_switches(img, size)``, same size
    upstream : the gradient arriving at the pooled map (pooled's shape), drawn when given
    gradient : ``convolution.unpool(upstream, switches, img.shape)``, drawn when given: each
               upstream value at its window's switch, 0 elsewhere
    Panels: the input with each size x size window outlined (blue) and its max framed (orange,
    the switch); the pooled matrix; upstream; gradient, with the same windows and switches.
    Returns (fig, axes), one axes per panel.

    >>> pooled, switches = convolution.max_pool_with_switches(img)
    >>> g = np.arange(1.0, pooled.size + 1).reshape(pooled.shape)
    >>> fig, axes = pool_switches(img, pooled, switches, g, convolution.unpool(g, switches,
    ...                                                                        img.shape))
    """
    img, pooled, switches = _pool_arrays(img, pooled, switches, size)
    s = int(size)
    panels = [(img, "input: windows (blue)\nand switches (orange)", True),
              (pooled, f"max-pooled\n{s}x{s} windows", False)]
    for name, value, shape in (("upstream", upstream, pooled.shape),
                               ("gradient", gradient, img.shape)):
        if value is not None:
            value = image_array(value, name).astype(float)
            if value.shape != shape:
                raise ValueError(f"{name} has shape {value.shape}; it must have shape {shape}")
            title = "upstream\ngradient" if name == "upstream" else "gradient to the input:\n" \
                "at the switches only"
            panels.append((value, title, name == "gradient"))
    widths = [p[0].shape[1] for p in panels]
    fig, axes = plt.subplots(1, len(panels), width_ratios=widths, figsize=(
        0.55 * sum(widths) + 0.6 * len(panels), 0.55 * img.shape[0] + 1.4))
    for ax, (mat, title, marked) in zip(axes, panels):
        showmat(mat, ax, True, title, fmt)
        if marked:
            _mark_switches(ax, switches, s)
    fig.suptitle("max pooling: the switches record where each max was; the backward pass routes "
                 "the gradient there only" if gradient is not None else
                 "max pooling: the switches record where each max was", fontsize=10)
    fig.tight_layout()
    return finish(fig), axes


def _one_example_maps(maps) -> np.ndarray:
    """The maps (H, W, C) of one layer for one example; an error saying how to get them."""
    if isinstance(maps, dict):
        raise TypeError(f"maps is a dict with keys {list(maps)[:5]} (features.activations' "
                        "result?); give one layer's maps of one example, e.g. maps['conv1'][0]")
    maps = image_array(maps, "maps").astype(float)
    if maps.ndim != 3:
        hint = "; for example i of a batch give maps[i]" if maps.ndim == 4 else ""
        raise ValueError(f"activation maps must be (H, W, C) for one example, got shape "
                         f"{maps.shape}{hint}")
    return maps


def activation_maps(maps, title=None, cols=8, signed=False):
    r"""Every channel k of one layer output :math:`\y_{(l)}` of shape (H, W, C) as a grid of maps.

    >>> fig, axes = activation_maps(features.activations(model, x, ["conv1"])["conv1"])
    """
    channels = np.moveaxis(_one_example_maps(maps), -1, 0)
    return images(channels[..., None], [f"k={k}" for k in range(len(channels))], cols=cols,
                  title=title, signed=signed)


def _one_map(values) -> np.ndarray:
    """One 2-D feature map (H, W) from (H, W) or (H, W, 1); an error saying how to pick one."""
    values = image_array(values, "values").astype(float)
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim != 2:
        hint = {3: "; for channel k give maps[..., k]",
                4: "; for example i and channel k give maps[i, ..., k]"}.get(values.ndim, "")
        raise ValueError(f"values has shape {values.shape}; feature_map draws one 2-D map "
                         f"y_(l),k (H, W){hint}")
    return values


def feature_map(values, location=None, title=None, ax=None):
    r"""One feature map :math:`\y_{(l),k}` (H, W) with its colour bar and, given ``location``,
    the location idx = (row, col) framed in orange and written with its value in the title.

    A map with negative values uses the diverging colormap centred at 0, else viridis from 0.

    >>> maps = features.activations(model, x[i], ["conv3"])["conv3"]        # (H, W, C)
    >>> fv = features.feature_values(model, x[i:i + 1], Feature("conv3", 3))
    >>> fig, ax = feature_map(maps[..., 3], fv.locations[0], title="y_(conv3),k=3")
    """
    values = _one_map(values)
    if location is not None:
        location = _checks.index_tuple(location, "location")
        if len(location) != 2 or not all(0 <= i < n for i, n in zip(location, values.shape)):
            raise ValueError(f"location {location} is not a (row, col) inside the map of shape "
                             f"{values.shape}")
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.4, 3.0))
    signed = values.min() < 0
    lim = symmetric_limit(values)
    im = show_image(ax, values, title or "feature map", cmap=SIGNED_CMAP if signed else "viridis",
                    vmin=-lim if signed else 0.0, vmax=lim)
    fig = fig or ax.figure
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if location is not None:
        r, c = location
        ax.add_patch(matplotlib.patches.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False,
                                                  edgecolor=SWITCH_COLOUR, linewidth=2.5,
                                                  clip_on=False, gid="location"))
        ax.set_title(f"{title or 'feature map'}\nidx=({r}, {c}): {value_text(values[r, c])}",
                     fontsize=9)
    return finish(fig), ax


def kernels(k, title="first-layer kernels", cols=8):
    """Every kernel (rows) and input channel of a conv layer, from ``patterns.conv_kernels``.

    Grey tiles share ONE diverging colour scale centred at 0, :math:`[-L, L]` with L the largest
    |weight| of all kernels, shown by the colour bar: a pattern's sign matters, and on one scale
    kernels compare (a pale kernel has small weights). RGB kernels are drawn in colour, each
    rescaled to [0, 1] as in Zeiler & Fergus (the title says so).

    >>> fig, axes = kernels(patterns.conv_kernels(model), title="conv1: the 16 kernels")
    """
    k = image_array(k, "k")
    if k.ndim != 4:
        raise ValueError(f"k has shape {k.shape}; give kernels (n, h, w, channels in) from "
                         "patterns.conv_kernels(model, layer)")
    n, _, _, n_in = k.shape
    if n_in == 3:
        return images(k, [f"k={i}" for i in range(n)], cols=cols,
                      title=f"{title} (each rescaled to [0, 1])")
    tiles = np.moveaxis(k, -1, 1).reshape((n * n_in,) + k.shape[1:3])
    names = [f"k={i}" + (f", in {c}" if n_in > 1 else "") for i in range(n) for c in range(n_in)]
    limit = symmetric_limit(tiles)
    fig, axes = grid(len(tiles), cols, 1.6, title)
    fig.set_figwidth(fig.get_figwidth() + 0.9)                 # room for the colour bar
    for ax, tile, name in zip(axes.flat, tiles, names):
        im = show_signed(ax, tile, name, limit)
    fig.set_layout_engine("constrained")
    bar = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8)
    bar.set_label("weight (one scale for all kernels; white: 0)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return finish(fig), axes


def patterns(p, titles=None, title="patterns", cols=5):
    """Dense weight patterns (``patterns.dense_patterns``, one per unit) as signed images: red =
    positive weight."""
    p = image_array(p, "p")
    titles = titles if titles is not None else [str(i) for i in range(len(p))]
    return images(p, titles, cols=cols, title=title, size=2.0, signed=True)


# --------------------------------------------------------------------------- activation mosaic


def tile_channels(maps, cols: int):
    """The maps (H, W, C) tiled into one 2-D array, channel k at row k // cols, column k % cols,
    NaN between tiles; returns it and the separation in pixels (the array ``activation_mosaic``
    and the drawing pad draw)."""
    h, w, c = maps.shape
    sep = 1 if max(h, w) < 8 else 2
    tiled = np.full((math.ceil(c / cols) * (h + sep) - sep, cols * (w + sep) - sep), np.nan)
    for k in range(c):
        r, q = divmod(k, cols)
        tiled[r * (h + sep):r * (h + sep) + h, q * (w + sep):q * (w + sep) + w] = maps[..., k]
    return tiled, sep


def _mosaic_figure(tiled_shape, with_image: bool, title, width: float):
    """The figure laid out in inches: [input] mosaic colorbar, the mosaic as wide as there is
    room. Returns fig, the input's axes (or None), the mosaic's axes and the colorbar's."""
    side = 1.5 if with_image else 0.0
    mosaic_w = width - side - (0.3 if with_image else 0.0) - 0.75
    mosaic_h = mosaic_w * tiled_shape[0] / tiled_shape[1]
    body = max(mosaic_h, side)
    fig_h = body + (0.45 if title else 0.1) + 0.1
    fig = plt.figure(figsize=(width, fig_h))

    def inches(x0, y0, dx, dy):
        return fig.add_axes((x0 / width, y0 / fig_h, dx / width, dy / fig_h))

    image_ax = inches(0.05, 0.1 + (body - side) / 2, side, side) if with_image else None
    x0, y0 = side + (0.3 if with_image else 0.05), 0.1 + (body - mosaic_h) / 2
    ax, cax = inches(x0, y0, mosaic_w, mosaic_h), inches(x0 + mosaic_w + 0.1, y0, 0.12, mosaic_h)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 / fig_h, va="top")
    return fig, image_ax, ax, cax


def activation_mosaic(maps, image=None, highlight=None, cols=None, title=None, width=6.0):
    r"""Every channel k of one layer output :math:`\y_{(l)}` (H, W, C) tiled into ONE image.

    All tiles share the layer's colour scale, so weak channels look dark next to strong ones
    (a signed layer uses the diverging map centred at 0). Channel k sits at row k // cols,
    column k % cols (cols: a power of 2 near sqrt(C)); ``highlight`` frames channel k in orange.
    With ``image`` (the input) a panel on the left shows it. ``width`` in inches. One image
    however many channels, so it is quick to redraw (the feature explorer uses it).
    """
    maps = _one_example_maps(maps)
    h, w, c = maps.shape
    cols = cols or (2 ** math.ceil(math.log2(math.sqrt(c))) if c > 1 else 1)
    tiled, sep = tile_channels(maps, cols)
    signed, lim = np.nanmin(maps) < 0, symmetric_limit(maps)
    cmap = matplotlib.colormaps[SIGNED_CMAP if signed else "viridis"].with_extremes(bad="white")
    fig, image_ax, ax, cax = _mosaic_figure(tiled.shape, image is not None, title, width)
    if image_ax is not None:
        show_image(image_ax, image, "input")
    im = ax.imshow(tiled, cmap=cmap, vmin=-lim if signed else 0.0, vmax=lim,
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if highlight is not None:
        r, q = divmod(int(highlight), cols)
        ax.add_patch(matplotlib.patches.Rectangle(
            (q * (w + sep) - 0.5 - sep / 2, r * (h + sep) - 0.5 - sep / 2), w + sep, h + sep,
            fill=False, edgecolor="orange", linewidth=2.5, clip_on=False))
    fig.colorbar(im, cax=cax)
    cax.tick_params(labelsize=7)
    return finish(fig), [a for a in (image_ax, ax) if a is not None]


# --------------------------------------------------------------------------- the head


def probabilities(p, highlight=None, labels=None, title="predicted probabilities",
                  size=(3.6, 2.4)):
    """A bar chart of class probabilities p (C,); bar ``highlight`` (e.g. the explained class)
    in orange."""
    p = image_array(p, "p").astype(float).ravel()
    labels = [str(i) for i in range(len(p))] if labels is None else [str(s) for s in labels]
    colors = ["tab:blue"] * len(p)
    if highlight is not None:
        if not _checks.is_int(highlight) or not 0 <= highlight < len(p):
            raise ValueError(f"highlight {highlight!r} is not a class index 0..{len(p) - 1}")
        colors[int(highlight)] = "tab:orange"
    fig, ax = plt.subplots(figsize=size)
    fig.subplots_adjust(0.14, 0.12, 0.98, 0.88)
    ax.bar(range(len(p)), p, color=colors)
    ax.set_xticks(range(len(p)), labels)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    return finish(fig), ax


# --------------------------------------------------------------------------- max activation


def _top_examples_hint(result, x):
    """What to give instead of ``result`` when it is the wrong object (None when it is right)."""
    if hasattr(result, "channel") and hasattr(result, "layer"):          # a LayerScan
        return (f"it is the LayerScan of every channel of layer {result.layer!r}: draw channel k "
                f"with plot.max_activating(x, scans[{result.layer!r}].channel(k))")
    if isinstance(result, dict):
        layer = next(iter(result), "conv1")
        return (f"it is the dict scan returns: draw channel k of a layer with "
                f"plot.max_activating(x, scans[{layer!r}].channel(k))")
    if hasattr(x, "high"):
        return "the arguments are swapped: give (x, result)"
    return None


def max_activating(x, result, y=None, title=None, cols=None, size=1.4):
    """The High (top rows) and Low (bottom rows) examples of a ``max_activation`` result.

    x      : the images the result's indices refer to (the full data set)
    result : ``max_activation.top_examples(...)`` or ``scan(...)[layer].channel(k)``
             (a ``TopExamples``)
    y      : labels of x (optional), one per example or one-hot rows: each tile is titled
             "value | y=label"
    High is sorted from the highest value, Low from the lowest; each part starts a new row.

    >>> r = max_activation.top_examples(model, x_test, 8, count=8, labels=8, y=y_test)
    >>> fig, axes = max_activating(x_test, r, y_test, title="best and worst 8s: p(8)")
    """
    result = check_result(result, "result", "TopExamples", ("target", "high", "low", "count"),
                          "max_activation.top_examples or scan(...)[layer].channel(k)",
                          _top_examples_hint(result, x))
    x = image_array(x)
    labels = None if y is None else _checks.labels_of(y)
    used = max(int(np.max(part.indices)) for part in (result.high, result.low))
    if used >= len(x):
        raise ValueError(f"result refers to example {used} but x has {len(x)} images: give the "
                         "data set the result was computed on (the full x, not a subset)")
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"y has {len(labels)} labels but x has {len(x)} images")
    count = result.count
    cols = cols or min(count, 9)
    rows_per_part = math.ceil(count / cols)
    fig, axes = plt.subplots(2 * rows_per_part, cols, squeeze=False, figsize=(
        size * cols + 0.5, (size + 0.25) * 2 * rows_per_part + 0.5))
    for p, (name, part) in enumerate((("High", result.high), ("Low", result.low))):
        block = axes[p * rows_per_part:(p + 1) * rows_per_part]
        for i, ax in enumerate(block.flat):
            if i >= count:
                ax.axis("off")
                continue
            index = int(part.indices[i])
            label = "" if labels is None else f" | y={labels[index]}"
            show_image(ax, x[index], value_text(part.values[i]) + label)
        block[0, 0].set_ylabel(name, fontsize=11)
    fig.suptitle(title or f"{result.target}: High (top) and Low (bottom)", fontsize=11)
    fig.tight_layout()
    return finish(fig), axes
