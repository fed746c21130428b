r"""Conceptual diagrams of the lectures, drawn with matplotlib (no data, no model).

The lecture notebooks embed these as static images from ``images/``;
``python -m cnn_helper figures`` rewrites them all (see ``FIGURES`` and ``write_all``). Each
function returns ``(fig, ax)`` and closes the pyplot figure, like the functions of
``cnn_helper.plot``.

- ``dense_layer``     a Dense layer :math:`\y_{(l)}`, optionally with neuron :math:`\y_{(l),j}`
                      selected
- ``conv_layer``      a layer with non-feature dimensions: its feature maps :math:`\y_{(l),k}`, one
                      optionally selected, optionally reduced to scalars by global pooling
- ``probe``           "interpreting feature k of layer l": probe :math:`\y_{(l),k}` while
                      :math:`\x^{(i)}` flows through the network
- ``saliency_pass``   forward pass to one location :math:`\y_{(l),idx,k}`, backward pass to the
                      saliency map over its receptive field

Example
-------
>>> fig, ax = conv_layer(selected=2, pooled=True)
>>> paths = write_all("images")
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, Polygon, Rectangle

from .plot import finish

SELECTED = "#f28e2b"      # orange: the feature being probed
MAP = "#c6dbef"           # light blue: a feature map / neuron
EDGE = "#4a4a4a"
BACKWARD = "#d62728"      # red: the backward (saliency) pass

Y = r"\mathbf{y}"
X = r"\mathbf{x}"


def _canvas(width, height, xlim, ylim):
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _arrow(ax, start, end, color=EDGE, style="-|>", lw=1.5, ls="-", rad=0.0):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=14, color=color,
                                 lw=lw, linestyle=ls, connectionstyle=f"arc3,rad={rad}", zorder=5))


def _neurons(ax, x, ys, selected=None, radius=0.32, label_selected=None):
    """A column of neurons at height ys; the selected one (an index into ys) in orange."""
    for i, y in enumerate(ys):
        hit = i == selected
        ax.add_patch(Circle((x, y), radius, facecolor=SELECTED if hit else MAP, edgecolor=EDGE,
                            lw=2.0 if hit else 1.0, zorder=3))
        if hit and label_selected:
            ax.text(x + radius + 0.2, y, label_selected, va="center", fontsize=13, color="black")


def _map(ax, x, y, size=2.0, cells=5, shear=0.8, color=MAP, lw=1.0, mark=None, mark_color=SELECTED):
    """One feature map: a (cells x cells) grid seen obliquely, lower-left corner at (x, y).

    ``mark=(r, c)`` fills one cell (a location idx). Returns a function mapping grid (r, c) to the
    centre of that cell on the canvas.
    """
    h = size * 0.75

    def at(u, v):          # u: across (0..1), v: up (0..1)
        return x + u * size + v * shear, y + v * h

    ax.add_patch(Polygon([at(0, 0), at(1, 0), at(1, 1), at(0, 1)], closed=True, facecolor=color,
                         edgecolor=EDGE, lw=lw, zorder=2))
    for i in range(1, cells):
        t = i / cells
        ax.plot(*zip(at(t, 0), at(t, 1)), color=EDGE, lw=0.4, zorder=2)
        ax.plot(*zip(at(0, t), at(1, t)), color=EDGE, lw=0.4, zorder=2)
    if mark is not None:
        r, c = mark
        u0, v0 = c / cells, 1 - (r + 1) / cells
        d = 1 / cells
        ax.add_patch(Polygon([at(u0, v0), at(u0 + d, v0), at(u0 + d, v0 + d), at(u0, v0 + d)],
                             closed=True, facecolor=mark_color, edgecolor=EDGE, lw=1.2, zorder=3))

    return lambda r, c: at((c + 0.5) / cells, 1 - (r + 0.5) / cells)


# --------------------------------------------------------------------------- the diagrams


def dense_layer(n: int = 6, selected=None):
    r"""A Dense layer :math:`\y_{(l)}`: a column of neurons; ``selected`` (0-based) in orange."""
    fig, ax = _canvas(3.4, 4.2, (-1.6, 3.0), (-0.9, n * 0.85 + 0.5))
    ys = [n * 0.85 - 0.4 - i * 0.85 for i in range(n)]
    ax.add_patch(Rectangle((-0.6, -0.45), 1.2, n * 0.85 + 0.1, facecolor="none", edgecolor=EDGE,
                           lw=1.0, ls="--", zorder=1))
    _neurons(ax, 0.0, ys, selected, label_selected=None if selected is None else f"${Y}_{{(l),j}}$")
    ax.text(0.0, -0.75, f"Dense layer ${Y}_{{(l)}}$", ha="center", fontsize=12)
    for y in ys:
        _arrow(ax, (-1.5, y), (-0.34, y), lw=0.8, color="#999999")
    return finish(fig), ax


def conv_layer(n_maps: int = 5, selected=None, pooled: bool = False):
    r"""A layer with non-feature dimensions: its feature maps :math:`\y_{(l),k}`, side by side.

    ``selected`` (0-based) draws map k in orange; ``pooled`` adds the global pooling of every map
    to one scalar :math:`\max_{idx} \y_{(l),idx,k}`, the selected one in orange.
    """
    step = 3.3
    width = n_maps * step + 0.6
    fig, ax = _canvas(width * 0.95, 4.4 if pooled else 2.9, (-0.4, width),
                      (-3.1 if pooled else -1.0, 2.5))
    names = [f"$k={i}$" for i in range(n_maps - 1)] + ["$k=n_{(l)}-1$"]    # 0-based, as in code
    for i in range(n_maps):
        x = i * step
        hit = i == selected
        _map(ax, x, 0.3, color=SELECTED if hit else MAP, lw=2.0 if hit else 1.0)
        ax.text(x + 1.4, -0.25, f"${Y}_{{(l),k}}$" if hit else names[i], ha="center", va="top",
                fontsize=12 if hit else 10)
        if pooled:
            _arrow(ax, (x + 1.4, -0.75), (x + 1.4, -1.75), lw=1.0)
            ax.add_patch(Circle((x + 1.4, -2.15), 0.32, facecolor=SELECTED if hit else MAP,
                                edgecolor=EDGE, lw=2.0 if hit else 1.0, zorder=3))
    if pooled:
        ax.text(width / 2 - 0.3, -2.95,
                f"global max pooling: ${Y}_{{(l),k}} = \\max_{{idx}}\\; {Y}_{{(l),idx,k}}$",
                ha="center", fontsize=11)
    ax.text(width / 2 - 0.3, 2.2, f"feature maps of ${Y}_{{(l)}}$: one per channel $k$, "
            "each with the non-feature dimensions of the layer", ha="center", fontsize=10)
    return finish(fig), ax


def probe(n_units: int = 5, unit: int = 1):
    r"""Interpreting feature k of layer l: feed :math:`\x^{(i)}`, read :math:`\y_{(l),k}`.

    Layers (1), (l) and the head (L) as columns of ``n_units`` neurons, with the layers between
    them elided; ``unit`` (0-based) is feature k of layer l.
    """
    fig, ax = _canvas(8.4, 4.6, (-2.4, 9.6), (-1.6, n_units * 0.8 + 1.6))
    ys = [n_units * 0.8 - 0.4 - i * 0.8 for i in range(n_units)]
    top, bottom = ys[0] + 0.4, ys[-1] - 0.4
    mid = (top + bottom) / 2
    # the input: a sketch of a digit 8 on a light square
    ax.add_patch(Rectangle((-2.2, mid - 0.9), 1.3, 1.8, facecolor="#eeeeee", edgecolor=EDGE,
                           zorder=1))
    for dy, r in ((0.38, 0.3), (-0.33, 0.36)):
        ax.add_patch(Circle((-1.55, mid + dy), r, facecolor="none", edgecolor="black", lw=4,
                            zorder=2))
    ax.text(-1.55, bottom - 0.55, f"${Y}_{{(0)}} = {X}^{{(i)}}$", ha="center", fontsize=12)
    columns = {"(1)": 0.6, "(l)": 4.6, "(L)": 8.6}
    for ya in ys:
        ax.plot([-0.9, 0.6], [mid, ya], color="#bbbbbb", lw=0.5, zorder=1)
    for (xa, xb) in ((0.6, 4.6), (4.6, 8.6)):        # the elided layers between
        for y in ys:
            ax.plot([xa, xa + 0.9], [y, y + 0.15], color="#bbbbbb", lw=0.5, zorder=1)
            ax.plot([xb - 0.9, xb], [y - 0.15, y], color="#bbbbbb", lw=0.5, zorder=1)
        ax.text((xa + xb) / 2, mid, r"$\cdots$", ha="center", va="center", fontsize=18)
    for name, x in columns.items():
        _neurons(ax, x, ys, unit if name == "(l)" else None)
        ax.text(x, bottom - 0.55, f"layer ${name}$", ha="center", fontsize=11)
    px, py = columns["(l)"], ys[unit]
    ax.text(px + 0.9, top + 0.75, f"activation ${Y}_{{(l),k}}\\,|_{{{Y}_{{(0)}} = {X}^{{(i)}}}}$",
            ha="left", va="center", fontsize=12)
    _arrow(ax, (px + 0.25, py + 0.25), (px + 0.85, top + 0.6), color=SELECTED, lw=2.0, rad=-0.2)
    ax.text(px + 0.45, py - 0.05, f"${Y}_{{(l),k}}$", va="center", fontsize=11)
    ax.text(columns["(L)"] + 0.45, ys[0], "head", va="center", fontsize=10)
    return finish(fig), ax


def saliency_pass(location=(1, 3), cells=6, field=3):
    r"""Forward pass to one location :math:`\y_{(l),idx,k}`; backward pass to its saliency map.

    The input grid shows the receptive field of ``location`` (``field`` x ``field`` cells, red):
    the only input locations the backward pass :math:`\partial \y_{(l),idx,k} / \partial \y_{(0)}`
    can reach.
    """
    fig, ax = _canvas(8.0, 4.6, (-0.3, 10.2), (-2.2, 4.4))
    r, c = location
    at_in = _map(ax, 0.0, 0.2, size=3.2, cells=cells + 4, shear=1.2, color="white")
    # the receptive field of (r, c) on the (larger) input grid: a field x field block of cells
    r0, c0 = r + 2 - field // 2, c + 2 - field // 2
    corners = [at_in(r0 - 0.5 + dr, c0 - 0.5 + dc) for dr, dc in
               ((field, 0), (field, field), (0, field), (0, 0))]
    ax.add_patch(Polygon(corners, closed=True, facecolor=BACKWARD, alpha=0.35, edgecolor=BACKWARD,
                         lw=1.5, zorder=3))
    ax.text(2.2, -0.2, f"${Y}_{{(0)}} = {X}^{{(i)}}$", ha="center", va="top", fontsize=12)
    ax.text(2.2, -0.8, r"red: receptive field $\mathcal{R}_{(l),idx}$", ha="center", va="top",
            fontsize=10, color=BACKWARD)
    at_out = _map(ax, 6.6, 0.7, size=2.2, cells=cells, shear=0.8, mark=location)
    ax.text(8.0, 0.3, f"${Y}_{{(l),k}}$; orange: location $idx$", ha="center", va="top",
            fontsize=11)
    src, dst = at_in(r0 + field / 2 - 0.5, c0 + field / 2 - 0.5), at_out(r, c)
    _arrow(ax, (src[0], src[1] + 0.35), (dst[0], dst[1] + 0.25), lw=1.8, rad=-0.45)
    ax.text(5.0, 4.05, "forward pass (convolution)", ha="center", fontsize=10)
    _arrow(ax, (dst[0], dst[1] - 0.25), (src[0] + 0.3, src[1] - 0.35), color=BACKWARD, lw=1.8,
           ls="--", rad=-0.3)
    ax.text(5.0, -1.7, f"backward pass: $\\partial {Y}_{{(l),idx,k}}\\, /\\, \\partial {Y}_{{(0)}}$"
            " (deconvolution), non-zero only inside the receptive field",
            ha="center", fontsize=10, color=BACKWARD)
    return finish(fig), ax


# --------------------------------------------------------------------------- the images/ folder

#: file name (without .png) -> function drawing it; the notebooks embed ``images/<name>.png``
FIGURES = {
    "dense_layer": lambda: dense_layer(),
    "dense_layer_select": lambda: dense_layer(selected=2),
    "conv_layer": lambda: conv_layer(),
    "conv_layer_select": lambda: conv_layer(selected=2),
    "conv_layer_pool": lambda: conv_layer(selected=2, pooled=True),
    "probe": lambda: probe(),
    "saliency_pass": lambda: saliency_pass(),
}


def write_all(out="images", dpi: int = 80, names=None) -> list:
    """Draw each of ``FIGURES`` (or only ``names``) to ``out/<name>.png``; return the paths."""
    names = list(FIGURES) if names is None else list(names)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; the figures are {list(FIGURES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        fig, _ = FIGURES[name]()
        path = out / f"{name}.png"
        # fixed metadata: the same drawing gives the same bytes (no date, no version stamp)
        fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
        paths.append(path)
    return paths
