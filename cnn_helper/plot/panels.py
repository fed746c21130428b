r"""One-figure views of one image: the drawing pad's live panels and the explanation sheet of
``cnn-helper explain``.

Each draws, in one figure, what the package computed for one input: the input as the model sees
it, its predicted probabilities, and maps (saliency, occlusion, activations). One figure, not
several, because the drawing pad redraws it after every stroke and one figure is drawn in about
half the time of three.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from ._common import squeeze_image
from .attribution import (
    covered_pixels,
    hatch_uncovered,
    occlusion_limit,
    relative_or_delta,
    show_map,
)
from .core import SIGNED_CMAP, finish, show_image, show_signed, symmetric_limit, to_map
from .layers import tile_channels


def _inches(fig, box):
    """Axes at ``box`` = (left, bottom, width, height) in inches."""
    w, h = fig.get_size_inches()
    return fig.add_axes((box[0] / w, box[1] / h, box[2] / w, box[3] / h))


class DrawingPanels:
    r"""The drawing pad's view, as one figure made once and updated in place after each stroke:
    the input as the CNN sees it, the saliency map of the target, the class probabilities and
    every activation map of one layer.

    Making a figure costs as much as drawing it; the pad redraws after every stroke, so it makes
    the figure (axes, bars, images, texts) once per layer and ``update`` only changes their data.

    n_classes  : how many bars;  maps_shape : (h, w, K) of the layer's output;  layer : its name;
    image_shape : (H, W) of the input and of the saliency map

    >>> view = DrawingPanels(10, (14, 14, 32), "conv2")
    >>> fig = view.update(x, p, acts["conv2"], saliency.gradient(model, x, c), c)
    """

    def __init__(self, n_classes: int, maps_shape, layer: str, image_shape=(28, 28),
                 width: float = 8.0):
        self.layer, self.n_maps = layer, maps_shape[-1]
        self.cols = 8 if self.n_maps >= 16 else 4
        blank = tile_channels(np.zeros(maps_shape), self.cols)[0]
        self.fig = fig = plt.figure(figsize=(width, 3.1))
        self.image_ax = _inches(fig, (0.1, 1.6, 1.25, 1.25))
        self.image = show_image(self.image_ax, np.zeros(image_shape), "what the CNN sees", vmin=0,
                                vmax=1)
        self.saliency_ax = _inches(fig, (0.1, 0.05, 1.25, 1.25))
        self.saliency = show_signed(self.saliency_ax, np.zeros(image_shape), "saliency")
        self.bars_ax = _inches(fig, (1.75, 0.35, 1.5, 2.45))
        self.bars, self.values = self._make_bars(n_classes)
        mosaic_w = width - 3.55
        mosaic_h = min(2.5, mosaic_w * blank.shape[0] / blank.shape[1])
        self.maps_ax = _inches(fig, (3.45, 0.1 + (2.55 - mosaic_h) / 2, mosaic_w, mosaic_h))
        self.maps = self.maps_ax.imshow(blank, interpolation="nearest")
        self.maps_ax.set_xticks([])
        self.maps_ax.set_yticks([])
        self.axes = [self.image_ax, self.saliency_ax, self.bars_ax, self.maps_ax]
        finish(fig)

    def _make_bars(self, n: int):
        """Horizontal bars for n classes, class 0 on top, a value text beside each."""
        ax = self.bars_ax
        bars = ax.barh(range(n), np.zeros(n), color="tab:blue")
        ax.set_yticks(range(n), [str(i) for i in range(n)], fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1], ["0", "0.5", "1"], fontsize=7)
        ax.invert_yaxis()
        values = [ax.text(0, i, "", va="center", fontsize=7) for i in range(n)]
        return bars, values

    def update(self, image, probabilities, maps, saliency, target: int):
        """Show new data (shapes as at construction); returns the figure."""
        p = np.asarray(probabilities, dtype=float).ravel()
        self.image.set_data(squeeze_image(image))
        s = squeeze_image(saliency)
        s = s.sum(axis=-1) if s.ndim == 3 else s
        lim = symmetric_limit(s)
        self.saliency.set_data(s)
        self.saliency.set_clim(-lim, lim)
        self.saliency_ax.set_title(f"saliency of p({target})", fontsize=9)
        for i, (bar, text) in enumerate(zip(self.bars, self.values)):
            bar.set_width(p[i])
            bar.set_color("tab:orange" if i == target else "tab:blue")
            text.set_position((min(p[i], 0.78) + 0.02, i))
            text.set_text(f"{p[i]:.2f}" if p[i] >= 0.01 else "")
        self.bars_ax.set_title(f"predicted {int(np.argmax(p))}", fontsize=9)
        self._update_maps(np.asarray(maps, dtype=float))
        return self.fig

    def _update_maps(self, maps):
        """The K maps tiled on one colour scale: viridis from 0, or diverging around 0 when some
        are negative."""
        signed, lim = bool(np.nanmin(maps) < 0), symmetric_limit(maps)
        self.maps.set_data(tile_channels(maps, self.cols)[0])
        self.maps.set_cmap(SIGNED_CMAP if signed else "viridis")
        self.maps.set_clim(-lim if signed else 0.0, lim)
        self.maps_ax.set_title(f"{self.layer}: its {self.n_maps} maps, one colour scale "
                               f"({-lim if signed else 0:.2f} to {lim:.2f})", fontsize=9)


def drawing_panels(image, probabilities, maps, saliency, layer: str, target: int,
                   title=None, width: float = 8.0):
    r"""The drawing pad's view of one input, as a new figure (``DrawingPanels`` once).

    image         : (H, W, 1) the input (after ``drawing.mnist_input``)
    probabilities : (C,) the head's output; bar ``target`` in orange
    maps          : (h, w, K) the layer's output :math:`\y_{(l)}`, all K maps tiled on one colour
                    scale from 0 (or centred at 0 when some are negative) to their max
    saliency      : (H, W, 1) :math:`\partial \y_{(L),c} / \partial \x` for c = ``target``
                    (diverging, red positive, blue negative)
    layer         : the layer's name, for the title

    >>> fig, axes = drawing_panels(x, p, acts["conv2"], saliency.gradient(model, x, c), "conv2", c)
    """
    view = DrawingPanels(np.size(probabilities), np.shape(maps), layer,
                         squeeze_image(image).shape[:2], width)
    fig = view.update(image, probabilities, maps, saliency, target)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, view.axes


def _bars(ax, p, highlight, names):
    """Horizontal bars of the probabilities p, the first on top, ``highlight`` in orange, each
    value written beside its bar."""
    colours = ["tab:orange" if i == highlight else "tab:blue" for i in range(len(p))]
    ax.barh(range(len(p)), p, color=colours)
    ax.set_yticks(range(len(p)), names, fontsize=8)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=7)
    for i, v in enumerate(p):
        ax.text(min(v, 0.78) + 0.02, i, f"{v:.2f}", va="center", fontsize=7)


LEGEND = ("colours: red, the explained score rises with the pixel (occlusion: when the patch "
          "there is hidden); blue, it falls; white, 0.\nEach map has its own scale (its colour "
          "bar): compare shapes across maps, not colours.")


def _colour_bar(fig, ax, image, label=None):
    """A slim colour bar beside ``ax`` for ``image``: its limits as ticks (0 in the middle of a
    signed map), in short numbers (3e-14, 0.12)."""
    low, high = image.get_clim()
    ticks = [low, 0.0, high] if low < 0 < high else [low, high]
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, ticks=ticks)
    bar.ax.set_yticklabels([f"{t:.2g}" for t in ticks], fontsize=7)
    if label:
        bar.set_label(label, fontsize=7)


def _occlusion_on(fig, ax, result, image_shape, title):
    """An occlusion map (``OcclusionMap`` of one image) drawn on the image's pixel grid
    ``image_shape``, each pixel the value of its nearest patch centre (pixels inside no patch
    hatched), with its colour bar; relative change where defined, else the change. Its scale is
    at least 1 % of the score, so a negligible map is pale (``occlusion_map``)."""
    values, name = relative_or_delta(result, True)
    lim = occlusion_limit(values, result, name == "relative change")
    covered = covered_pixels(result, image_shape)
    image = ax.imshow(np.ma.masked_where(~covered, result.on_pixels(values, image_shape)),
                      cmap=SIGNED_CMAP, vmin=-lim, vmax=lim, interpolation="nearest")
    hatch_uncovered(ax, covered)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    _colour_bar(fig, ax, image, name.split(" (")[0])


def _blank(ax, title, message):
    """A panel that shows ``message`` instead of a map (a map of about 0 is not drawn)."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_box_aspect(1)
    ax.set_facecolor("0.93")
    ax.set_title(title, fontsize=8)
    ax.text(0.5, 0.5, textwrap.fill(message, 24), ha="center", va="center", fontsize=8,
            transform=ax.transAxes, color="darkred")


def _map_panel(fig, ax, image, m, title, message):
    """One method's panel: an ``OcclusionMap`` or a saliency map with its colour bar, or
    ``message`` when one is given instead."""
    if message:
        _blank(ax, title, message)
    elif hasattr(m, "unoccluded"):
        _occlusion_on(fig, ax, m, squeeze_image(image).shape, title)
    else:
        m = np.asarray(m, dtype=float)
        _colour_bar(fig, ax, show_map(ax, to_map(m) if m.ndim == 3 else m, None))
        ax.set_title(title, fontsize=8)


def _grid(n_panels: int, columns: int, size: float, header: float, footer: float):
    """A figure of ``n_panels`` axes in rows of at most ``columns`` (constrained layout: titles
    and colour bars never overlap), ``header`` and ``footer`` inches kept free for text; the
    unused axes hidden."""
    cols = min(columns, n_panels)
    rows = -(-n_panels // cols)
    height = (size + 0.7) * rows + header + footer
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * size * cols, height), squeeze=False,
                             layout="constrained")
    fig.get_layout_engine().set(rect=(0, footer / height, 1, 1 - (header + footer) / height))
    for ax in axes.flat[n_panels:]:
        ax.axis("off")
    return fig, list(axes.flat[:n_panels])


def explanation(image, probabilities, maps: dict, target: int, class_names=None, title=None,
                size: float = 2.3, top: int = 5, titles=None, notes=(), blank=None,
                columns: int = 4):
    """One image explained: the image, its ``top`` most probable classes, and one panel per
    method (``{name: map}``), in rows of at most ``columns`` panels, with a colour legend.

    A map is a saliency map shaped like the image ((H, W, C) summed over channels, or (H, W, 1)
    like Grad-CAM's), drawn signed (diverging, centred at 0: red positive, blue negative) when it
    has negative values and as a magnitude (white 0 to red) otherwise, each on its own scale with
    its colour bar; or an ``OcclusionMap`` of the image (``occlusion.sensitivity_map``), drawn as
    the relative change of the target when the patch centred there is hidden (blue: hiding lowers
    it).

    titles : {name: title} (default "name of p(target)"), what each map explains
    notes  : lines written under the title in red (warnings: a tie, the ink covers the image)
    blank  : {name: message} maps not drawn, the message shown instead (a map of about 0)

    >>> fig, axes = explanation(x, p, {"gradient": saliency.gradient(model, x, c),
    ...                                "occlusion": occlusion.sensitivity_map(model, x, c)}, c)
    """
    p = np.asarray(probabilities, dtype=float).ravel()
    names = [str(i) for i in range(len(p))] if class_names is None else list(class_names)
    titles, blank, notes = titles or {}, blank or {}, list(notes)
    order = np.argsort(-p)[:top]
    header = 0.35 + 0.2 * len(notes)
    fig, axes = _grid(2 + len(maps), columns, size, header, footer=0.4)
    show_image(axes[0], image, f"input {'x'.join(map(str, np.shape(image)[:2]))}")
    _bars(axes[1], p[order], highlight=int(np.where(order == target)[0][0])
          if target in order else None, names=[names[i] for i in order])
    axes[1].set_title(f"top {len(order)} classes", fontsize=9)
    axes[1].set_box_aspect(1)
    for ax, (name, m) in zip(axes[2:], maps.items()):
        _map_panel(fig, ax, image, m, titles.get(name, f"{name} of p({names[target]})"),
                   blank.get(name))
    heading = title or (f"predicted {names[int(np.argmax(p))]} (p = {p.max():.2f}); the maps "
                        f"explain class {names[target]}")
    inches = fig.get_size_inches()[1]
    fig.text(0.5, 1 - 0.08 / inches, heading, ha="center", va="top", fontsize=10)
    for i, note in enumerate(notes):
        fig.text(0.5, 1 - (0.35 + 0.2 * i) / inches, note, ha="center", va="top", fontsize=8,
                 color="darkred")
    fig.text(0.5, 0.05 / inches, LEGEND, ha="center", va="bottom", fontsize=7.5)
    return finish(fig), axes
