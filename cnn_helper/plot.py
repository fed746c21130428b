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
    """A figure with n small axes in rows of ``cols``; the unused axes are hidden.

    Each row is ``size`` inches plus room for its tiles' titles (square images shrink inside their
    boxes, so tight_layout alone would let a title run into the row above).
    """
    cols = cols or min(n, 8)
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, (size + 0.3) * rows + (0.4 if title else 0)),
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


# --------------------------------------------------------------------------- saliency maps

MAGNITUDE_CMAP = "Reds"   # 0: white, large: dark red (the positive half of SIGNED_CMAP)


def saliency_maps(x, maps, titles=None, method_names=None, magnitude: bool = False,
                  size: float = 1.8, title=None):
    """Images beside their saliency maps: one row per example, one column per method.

    x            : images (N, H, W, C), or one image (H, W, C)
    maps         : {method name: maps} or a list of maps (named by ``method_names``); each is
                   (N, H, W, C) like x (from ``saliency.gradient`` etc.) or (N, H, W) (Grad-CAM),
                   without the N axis for one image
    titles       : one title per example (column 0)
    magnitude    : draw |map| (channels by max |.|) instead of the signed map

    A map with negative values is drawn signed: diverging colormap centred at 0, red positive,
    blue negative (channels summed). A map without negative values (a magnitude, the "abs" or
    "positive" sign option, Grad-CAM) and every map when ``magnitude`` is drawn from 0 (white) to
    its max (red). Each tile has its own scale.

    >>> maps = {"gradient": saliency.gradient(model, x, 8), "guided": saliency.guided_backprop(model, x, 8)}
    >>> fig, axes = saliency_maps(x, maps, titles=[f"label {y}" for y in labels])
    """
    from .saliency import to_map

    x = np.asarray(x)
    single = x.ndim == 3
    xs = x[None] if single else x
    if isinstance(maps, dict):
        names, arrays = list(maps), list(maps.values())
    else:
        arrays = list(maps)
        names = list(method_names) if method_names is not None else \
            [f"map {i + 1}" for i in range(len(arrays))]
        if len(names) != len(arrays):
            raise ValueError(f"{len(arrays)} maps but {len(names)} method_names {names}")
    columns = []
    for name, m in zip(names, arrays):
        m = np.asarray(m, dtype=float)
        m = m[None] if single else m
        if m.shape == xs.shape:
            m = to_map(m, "max_abs" if magnitude else "sum")
        if m.shape != xs.shape[:-1]:
            raise ValueError(f"map {name!r} has shape {m.shape[1:] if single else m.shape}; it must "
                             f"be like the images {x.shape} or that without the channel axis")
        columns.append(np.abs(m) if magnitude else m)
    n, cols = len(xs), len(columns) + 1
    fig, axes = plt.subplots(n, cols, figsize=(size * cols, size * n + (0.4 if title else 0)),
                             squeeze=False)
    for i in range(n):
        show_image(axes[i, 0], xs[i], None if titles is None else titles[i])
        for j, (name, m) in enumerate(zip(names, columns), start=1):
            head = name if i == 0 else None
            if m[i].min() < 0:
                show_signed(axes[i, j], m[i], head)
            else:
                show_image(axes[i, j], m[i], head, cmap=MAGNITUDE_CMAP, vmin=0,
                           vmax=symmetric_limit(m[i]))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig), axes


# --------------------------------------------------------------------------- explorers (widgets)
# Figures the explorers redraw on every click: one axes each (few artists), so they draw in a
# fraction of a second.


def montage(tiles, titles=None, cols=None, title=None, signed=False, size=1.1, ax=None):
    """Images (of possibly different sizes) tiled into ONE axes, each with its own scale.

    A grey tile is stretched to its own [min, max]; a ``signed`` tile is drawn with the diverging
    colormap, centred at 0 by its own max |value|. ``titles`` go above the tiles. One axes and one
    image however many tiles, so it is quick to redraw (the explorers use it).
    """
    tiles = [_squeeze_image(t) for t in tiles]
    tiles = [t.sum(axis=-1) if t.ndim == 3 else t for t in tiles] if signed else tiles
    n = len(tiles)
    if n == 0:
        raise ValueError("montage needs at least one tile")
    cols = cols or min(n, 8)
    rows = math.ceil(n / cols)
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    gap = max(1, round(0.08 * w))
    top = max(gap, round(0.3 * h)) if titles is not None else gap
    colour = not signed and any(t.ndim == 3 for t in tiles)
    canvas = np.full((rows * (h + top), cols * (w + gap) - gap) + ((3,) if colour else ()), np.nan)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        t = np.asarray(t, dtype=float)
        if signed:
            t = t / symmetric_limit(t)
        else:
            lo, hi = float(t.min()), float(t.max())
            t = (t - lo) / (hi - lo) if hi > lo else np.zeros_like(t)
            if colour and t.ndim == 2:
                t = np.repeat(t[..., None], 3, axis=-1)
        y0, x0 = r * (h + top) + top, c * (w + gap)
        canvas[y0:y0 + t.shape[0], x0:x0 + t.shape[1]] = t
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(size * cols, size * cols * canvas.shape[0] / canvas.shape[1]))
        fig.subplots_adjust(0, 0, 1, 0.88 if title else 1)
    if colour:
        ax.imshow(np.nan_to_num(canvas, nan=1.0), interpolation="nearest")
    else:
        cmap = matplotlib.colormaps[SIGNED_CMAP if signed else IMAGE_CMAP].with_extremes(bad="white")
        ax.imshow(canvas, cmap=cmap, vmin=-1 if signed else 0, vmax=1, interpolation="nearest")
    ax.axis("off")
    for i, text in enumerate(titles or []):
        r, c = divmod(i, cols)
        ax.text(c * (w + gap) + (w - 1) / 2, r * (h + top) + top - 1.5, text, ha="center",
                va="bottom", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return _finish(fig or ax.figure), ax


def activation_mosaic(maps, image=None, highlight=None, cols=None, title=None, width=6.0):
    """Every channel k of one layer output y_(l) (H, W, C) tiled into ONE image, quick to redraw.

    All tiles share the layer's colour scale, so weak channels look dark next to strong ones
    (a signed layer uses the diverging map centred at 0). Channel k sits at row k // cols,
    column k % cols (cols: a power of 2 near sqrt(C)); ``highlight`` frames channel k in orange.
    With ``image`` (the input) a panel on the left shows it. ``width`` in inches.
    """
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3:
        raise ValueError(f"activation maps must be (H, W, C) for one example, got shape {maps.shape}")
    h, w, c = maps.shape
    cols = cols or (2 ** math.ceil(math.log2(math.sqrt(c))) if c > 1 else 1)
    rows = math.ceil(c / cols)
    sep = 1 if max(h, w) < 8 else 2
    tiled = np.full((rows * (h + sep) - sep, cols * (w + sep) - sep), np.nan)
    for k in range(c):
        r, q = divmod(k, cols)
        tiled[r * (h + sep):r * (h + sep) + h, q * (w + sep):q * (w + sep) + w] = maps[..., k]
    signed = np.nanmin(maps) < 0
    cmap = matplotlib.colormaps[SIGNED_CMAP if signed else "viridis"].with_extremes(bad="white")
    lim = symmetric_limit(maps)
    # lay the axes out in inches: [input] mosaic colorbar, the mosaic as wide as there is room
    side = 1.5 if image is not None else 0.0
    mosaic_w = width - side - (0.3 if image is not None else 0.0) - 0.75
    mosaic_h = mosaic_w * tiled.shape[0] / tiled.shape[1]
    body = max(mosaic_h, side)
    top = 0.45 if title else 0.1
    fig_h = body + top + 0.1
    fig = plt.figure(figsize=(width, fig_h))
    frac = lambda x0, y0, dx, dy: (x0 / width, y0 / fig_h, dx / width, dy / fig_h)  # noqa: E731
    axes = []
    if image is not None:
        axes.append(fig.add_axes(frac(0.05, 0.1 + (body - side) / 2, side, side)))
        show_image(axes[0], image, "input")
    x0 = side + (0.3 if image is not None else 0.05)
    ax = fig.add_axes(frac(x0, 0.1 + (body - mosaic_h) / 2, mosaic_w, mosaic_h))
    cax = fig.add_axes(frac(x0 + mosaic_w + 0.1, 0.1 + (body - mosaic_h) / 2, 0.12, mosaic_h))
    axes.append(ax)
    im = ax.imshow(tiled, cmap=cmap, vmin=-lim if signed else 0.0, vmax=lim, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if highlight is not None:
        r, q = divmod(int(highlight), cols)
        ax.add_patch(matplotlib.patches.Rectangle(
            (q * (w + sep) - 0.5 - sep / 2, r * (h + sep) - 0.5 - sep / 2), w + sep, h + sep,
            fill=False, edgecolor="orange", linewidth=2.5, clip_on=False))
    fig.colorbar(im, cax=cax)
    cax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 / fig_h, va="top")
    return _finish(fig), axes


def zeiler_fergus_montage(zf, cols: int = 3, title=None, size=1.1):
    """The Zeiler & Fergus figure (``inverting.zeiler_fergus``) drawn quickly: two montages.

    Left: the saliency of each example's max location cropped to its receptive field (diverging,
    centred at 0 per tile); right: the matching input patches titled with example index and value.
    """
    fig, axes = plt.subplots(1, 2)
    montage(zf.saliency_patches, [""] * len(zf), cols=cols, signed=True, ax=axes[0])
    montage(zf.patches, [f"#{i}: {v:.2f}" for i, v in zip(zf.indices, zf.values)], cols=cols,
            ax=axes[1])
    h, w = axes[1].images[0].get_array().shape[:2]       # size the figure to the montages
    width = 2 * size * cols + 0.2
    height = (width / 2.06) * h / w + 0.4                 # each axes: width / (2 + wspace) wide
    fig.set_size_inches(width, height)
    fig.subplots_adjust(0, 0, 1, 1 - 0.4 / height, wspace=0.06)
    what = {"saliency": "saliency", "guided_backprop": "guided backprop",
            "deconvnet": "deconvnet"}.get(zf.method, zf.method)
    fig.suptitle(title or f"{zf.feature.layer_name}, k={zf.feature.channel}: {what} (left) and "
                 "patch (right) in the receptive field of the max", fontsize=9)
    return _finish(fig), axes


def probabilities(p, highlight=None, labels=None, title="predicted probabilities", size=(3.6, 2.4)):
    """A bar chart of class probabilities p (C,); bar ``highlight`` (e.g. the explained class) in orange."""
    p = np.asarray(p, dtype=float).ravel()
    labels = [str(i) for i in range(len(p))] if labels is None else [str(s) for s in labels]
    colors = ["tab:blue"] * len(p)
    if highlight is not None:
        colors[int(highlight)] = "tab:orange"
    fig, ax = plt.subplots(figsize=size)
    fig.subplots_adjust(0.14, 0.12, 0.98, 0.88)
    ax.bar(range(len(p)), p, color=colors)
    ax.set_xticks(range(len(p)), labels)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    return _finish(fig), ax


# --------------------------------------------------------------------------- Zeiler & Fergus figure


def _place_in_window(ax, im, region, window):
    """Draw a crop at its input coordinates inside the whole (unclipped) receptive field window, so
    a field cut by the image border keeps the scale of the others (the outside stays blank)."""
    (r_slice, c_slice), ((r_lo, r_hi), (c_lo, c_hi)) = region[:2], window[:2]
    im.set_extent((c_slice.start - 0.5, c_slice.stop - 0.5, r_slice.stop - 0.5, r_slice.start - 0.5))
    ax.set_xlim(c_lo - 0.5, c_hi - 0.5)
    ax.set_ylim(r_hi - 0.5, r_lo - 0.5)
    ax.patch.set_hatch("///")           # hatched: outside the image
    ax.patch.set_edgecolor("0.75")


def zeiler_fergus(zf, cols: int = 3, magnitude: bool = False, size: float = 1.5, title=None):
    """The Zeiler & Fergus figure from ``inverting.zeiler_fergus``: saliency | patch grids.

    Left: the saliency of each example's max location, cropped to its receptive field (signed,
    diverging and centred at 0 per tile; or its magnitude with ``magnitude=True``). Right: the
    matching input patches, titled with the example index and the feature's value.
    """
    n = len(zf)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, 2 * cols + 1, figsize=(size * (2 * cols + 0.4), size * rows + 0.6),
                             squeeze=False, gridspec_kw={"width_ratios": [1] * cols + [0.3] + [1] * cols})
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, cols)
        left, right = axes[r, c], axes[r, cols + 1 + c]
        left.axis("on")
        right.axis("on")
        s = zf.saliency_patches[i]
        if magnitude:
            mag = np.abs(_squeeze_image(s))
            im = show_image(left, mag.sum(axis=-1) if mag.ndim == 3 else mag, cmap="gray")
        else:
            im = show_signed(left, s)
        _place_in_window(left, im, zf.regions[i], zf.windows[i])
        im = show_image(right, zf.patches[i], f"#{zf.indices[i]}: {zf.values[i]:.2f}")
        _place_in_window(right, im, zf.regions[i], zf.windows[i])
    what = {"saliency": "saliency", "guided_backprop": "guided backprop",
            "deconvnet": "deconvnet"}[zf.method]
    fig.suptitle(title or f"{zf.feature.layer_name}, map k={zf.feature.channel}: {what} (left) and "
                 f"patch (right) of the {n} maximally activating examples", fontsize=10)
    fig.tight_layout()
    return _finish(fig), axes


# --------------------------------------------------------------------------- receptive fields

FIELD_COLOUR, TARGET_COLOUR, CELL_COLOUR = "tab:orange", "tab:red", "0.85"


def receptive_field_growth(rows, title=None, ax=None):
    """The lecture's 1-D chart of a receptive field growing layer by layer.

    ``rows`` comes from ``receptive_field.growth(model, layer, idx, axis)``: one row per layer, the
    input at the bottom. Each location p of a layer is drawn as a cell centred on the input
    coordinate it is centred on (start + p * jump, width jump), so deeper rows have fewer, wider
    cells. The locations that feed the chosen location of the top layer are coloured (the chosen
    one in red); the shaded band is the input interval they all see.
    """
    from matplotlib.patches import Rectangle

    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; give the output of receptive_field.growth(...)")
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.4))
    lo_x, hi_x = np.inf, -np.inf
    for y, r in enumerate(rows):
        top = y == len(rows) - 1
        for p in range(r.n):
            centre = r.start + p * r.jump
            fed = r.first <= p <= r.last
            colour = (TARGET_COLOUR if top else FIELD_COLOUR) if fed else CELL_COLOUR
            ax.add_patch(Rectangle((centre - r.jump / 2, y - 0.35), r.jump, 0.7, facecolor=colour,
                                   edgecolor="white", linewidth=0.8 if r.jump > 1 or r.n < 60 else 0))
            lo_x, hi_x = min(lo_x, centre - r.jump / 2), max(hi_x, centre + r.jump / 2)
        ax.text(1.01, y, f"size {r.size}, jump {r.jump}", transform=ax.get_yaxis_transform(),
                va="center", fontsize=8)
    lo, hi = rows[-1].interval
    ax.axvspan(lo - 0.5, hi - 0.5, color=FIELD_COLOUR, alpha=0.12, zorder=0)
    ax.set_xlim(min(lo_x, -0.5) - 0.5, max(hi_x, rows[0].n - 0.5) + 0.5)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r.layer} ({r.kind})" for r in rows], fontsize=8)
    ax.set_xlabel("input position (pixels); a cell is one location of that layer")
    ax.set_title(title or f"receptive field of {rows[-1].layer}, location {rows[-1].first} on this "
                          f"axis: input [{lo}, {hi}) ({hi - lo} pixels)", fontsize=10)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig = fig or ax.figure
    fig.tight_layout()
    return _finish(fig), ax


def receptive_field_regions(regions, image=None, input_shape=None, title=None, ax=None,
                            cmap="tab10"):
    """The lecture's 2-D chart: nested rectangles, the receptive field of one location at each layer.

    ``regions`` comes from ``receptive_field.nested_regions(model, layer, idx)`` (smallest first);
    each is drawn as a rectangle of its own colour over ``image`` (an (H, W) or (H, W, C) image) or,
    without one, over a blank canvas of ``input_shape`` (H, W). The legend names layer, location
    and field size.
    """
    from matplotlib.patches import Rectangle

    regions = list(regions)
    if not regions:
        raise ValueError("regions is empty; give the output of receptive_field.nested_regions(...)")
    if any(len(r.region) != 2 for r in regions):
        raise ValueError("receptive_field_regions draws 2-D inputs; these regions have "
                         f"{len(regions[0].region)} spatial axes")
    if image is None and input_shape is None:
        raise ValueError("give the image to draw on, or its input_shape (H, W)")
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
    if image is not None:
        show_image(ax, image)
    else:
        ax.imshow(np.ones(tuple(input_shape)[:2]), cmap=IMAGE_CMAP, vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    colours = plt.get_cmap(cmap)(np.arange(len(regions)) % 10)
    for i, (r, colour) in enumerate(zip(regions, colours)):
        rows, cols = r.region
        ax.add_patch(Rectangle((cols.start - 0.5, rows.start - 0.5), cols.stop - cols.start,
                               rows.stop - rows.start, fill=False, edgecolor=colour, linewidth=2,
                               zorder=3 + len(regions) - i,   # a smaller box over a larger one
                               label=f"{r.layer} idx={r.idx}: {r.size[0]}x{r.size[1]}"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    ax.set_title(title or "receptive field of one location, layer by layer", fontsize=10)
    if fig is not None:   # our figure: leave the right third to the legend
        fig.tight_layout(rect=(0, 0, 0.66, 1))
    return _finish(fig or ax.figure), ax


# --------------------------------------------------------------------------- max activation, occlusion


def _value_text(v) -> str:
    """A value short enough for a tile title: 3 decimals in the usual range, else 3 digits."""
    v = float(v)
    return f"{v:.3f}" if 1e-3 <= abs(v) < 100 else f"{v:.3g}"


def max_activating(x, result, y=None, title=None, cols=None, size=1.4):
    """The High (top rows) and Low (bottom rows) examples of a ``max_activation`` result.

    x      : the images the result's indices refer to (the full data set)
    result : ``max_activation.top_k(...)`` or ``scan(...)[layer].channel(k)``
    y      : labels of x (optional): each tile is titled "value | y=label"
    High is sorted from the highest value, Low from the lowest; each part starts a new row.

    >>> r = max_activation.top_k(model, x_test, 8, labels=8, y=y_test)
    >>> fig, axes = max_activating(x_test, r, y_test, title="best and worst 8s: p(8)")
    """
    x = np.asarray(x)
    k = len(result.high)
    cols = cols or min(k, 9)
    rows_per_part = math.ceil(k / cols)
    fig, axes = plt.subplots(2 * rows_per_part, cols, figsize=(size * cols + 0.5, (size + 0.25) * 2 * rows_per_part + 0.5),
                             squeeze=False)
    for p, (name, part) in enumerate((("High", result.high), ("Low", result.low))):
        block = axes[p * rows_per_part:(p + 1) * rows_per_part].flat
        for i, ax in enumerate(block):
            if i >= k:
                ax.axis("off")
                continue
            index = int(part.indices[i])
            text = _value_text(part.values[i]) + ("" if y is None else f" | y={np.asarray(y)[index]}")
            show_image(ax, x[index], text)
        first = axes[p * rows_per_part, 0]
        first.set_ylabel(name, fontsize=11)
    fig.suptitle(title or f"{result.target}: High (top) and Low (bottom)", fontsize=11)
    fig.tight_layout()
    return _finish(fig), axes


def _relative_or_delta(result, relative: bool):
    """The map to draw and its name: relative unless asked otherwise or undefined (baseline 0)."""
    if relative and not np.all(np.isnan(result.relative)):
        return np.asarray(result.relative, dtype=float), "relative change"
    why = "" if not relative else " (baseline 0: relative undefined)"
    return np.asarray(result.delta, dtype=float), "change" + why


def occlusion_map(x, result, relative: bool = True, title=None, size=2.6):
    """An occlusion sensitivity map (``occlusion.sensitivity_map``) beside and over its image.

    Left: the input; middle: the map (``result.relative``, or ``result.delta`` when ``relative``
    is False or the baseline is 0) with the diverging colormap centred at 0 and its colour bar;
    right: the same map laid half-transparent over the input. Each cell is centred on its patch
    centre, so a stride > 1 map lines up with the pixels. Blue: hiding the patch there lowers the
    target; red: raises it.

    >>> r = occlusion.sensitivity_map(model, x, 8)
    >>> fig, axes = occlusion_map(x, r)
    """
    values, name = _relative_or_delta(result, relative)
    rows, cols = result.centers
    s_r, s_c = result.stride
    extent = (cols[0] - s_c / 2, cols[-1] + s_c / 2, rows[-1] + s_r / 2, rows[0] - s_r / 2)
    img = _squeeze_image(x)
    lim = symmetric_limit(values)
    fig, axes = plt.subplots(1, 3, figsize=(3 * size + 0.8, size + 0.5))
    show_image(axes[0], x, f"input: {_value_text(result.baseline)}")
    for ax, alpha in ((axes[1], 1.0), (axes[2], 0.65)):
        if alpha < 1:
            show_image(ax, x)
        im = ax.imshow(values, cmap=SIGNED_CMAP, vmin=-lim, vmax=lim, alpha=alpha, extent=extent,
                       interpolation="nearest")
        ax.set_xlim(-0.5, img.shape[1] - 0.5)
        ax.set_ylim(img.shape[0] - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].set_title(f"{name}", fontsize=9)
    axes[2].set_title("over the input", fontsize=9)
    fig.colorbar(im, ax=axes[1:].tolist(), fraction=0.046, pad=0.03)
    fig.suptitle(title or f"occlusion of {result.target}, patch {result.patch[0]}x{result.patch[1]}, "
                          f"stride {result.stride[0]}", fontsize=10)
    return _finish(fig), axes


def _percent_text(v) -> str:
    """A proportional change as a signed percentage: +12.3%, -4.56%, +0.00%."""
    pct = 100 * float(v)
    return f"{pct:+.1f}%" if abs(pct) >= 10 else f"{pct:+.2f}%"


def occlusion_grid(x, result, centers=None, n: int = 4, cols=None, title=None, size=1.5):
    """The lecture's grid of occluded inputs, each titled with its relative change of the target.

    x       : the image the map was computed for
    result  : ``occlusion.sensitivity_map(...)``
    centers : (row, col) patch centres to show, on the map's grid. Default: n x n centres spread
              evenly over the image, drawn as an n x n grid right of the un-occluded input.
    Titles: "(row,col) relative change in %" (the change itself when the baseline is 0). The
    occluded images come from ``occlusion.occluded_inputs``: the very images the model saw.

    >>> fig, axes = occlusion_grid(x, occlusion.sensitivity_map(model, x, 8, patch=4))
    """
    from .occlusion import occluded_inputs

    rows, cols_ = result.centers
    spread = centers is None
    if spread:     # the centres nearest to the middles of n equal bands of each axis
        pick = lambda c: np.unique(np.round((np.arange(n) + 0.5) * len(c) / n - 0.5).astype(int))  # noqa: E731
        picked_rows, picked_cols = pick(rows), pick(cols_)
        centers = [(int(rows[i]), int(cols_[j])) for i in picked_rows for j in picked_cols]
    where = []
    for r, c in centers:
        i, j = np.searchsorted(rows, r), np.searchsorted(cols_, c)
        if i >= len(rows) or j >= len(cols_) or rows[i] != r or cols_[j] != c:
            raise ValueError(f"centre ({r}, {c}) is not on the map's grid of centres: rows "
                             f"{list(rows[:3])}..., cols {list(cols_[:3])}... (stride {result.stride})")
        where.append((i, j))
    images = occluded_inputs(x, result, centers)
    values, name = _relative_or_delta(result, True)
    text = _percent_text if name == "relative change" else (lambda v: f"{v:+.3g}")
    original = np.asarray(x).reshape(images.shape[1:])
    lo, hi = float(min(original.min(), images.min())), float(max(original.max(), images.max()))
    head = title or (f"occlusion of {result.target}\n{name} (patch {result.patch[0]}x{result.patch[1]}, "
                     f"input value {_value_text(result.baseline)})")
    if spread:     # the input, then the occluded copies in their spatial arrangement
        cols = len(picked_cols) + 1
        fig, axes = grid(len(picked_rows) * cols, cols, size, head)
        slots = [axes[a, b + 1] for a in range(len(picked_rows)) for b in range(len(picked_cols))]
        for ax in axes[1:, 0]:
            ax.axis("off")
    else:
        cols = cols or min(len(centers) + 1, 6)
        fig, axes = grid(len(centers) + 1, cols, size, head)
        slots = list(axes.flat[1:len(centers) + 1])
    show_image(axes.flat[0], original, "input", vmin=lo, vmax=hi)
    for ax, img, (r, c), (i, j) in zip(slots, images, centers, where):
        show_image(ax, img, f"({r},{c}) {text(values[i, j])}", vmin=lo, vmax=hi)
    fig.tight_layout()
    return _finish(fig), axes
