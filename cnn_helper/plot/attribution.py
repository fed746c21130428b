r"""Attribution figures: saliency maps beside their images, occlusion sensitivity maps and the
lecture's grid of occluded inputs.

They draw what ``cnn_helper.saliency`` and ``cnn_helper.occlusion`` computed; the results carry
everything a figure needs (an ``OcclusionMap`` knows the patch bounds and the fill it used).
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter

from .. import _checks
from ._common import (
    check_result,
    describe,
    display_colour,
    image_array,
    value_text,
)
from .core import (
    IMAGE_CMAP,
    MAGNITUDE_CMAP,
    SIGNED_CMAP,
    finish,
    grid,
    show_image,
    show_signed,
    symmetric_limit,
    to_map,
)

# --------------------------------------------------------------------------- saliency maps


def _named_maps(maps, method_names):
    """(names, arrays) from {name: maps}, a list of maps named by ``method_names``, or the maps
    of one method (an array)."""
    if isinstance(maps, dict):
        return list(maps), list(maps.values())
    if hasattr(maps, "unoccluded"):
        raise TypeError("maps is an OcclusionMap; draw it with plot.occlusion_map(x, result)")
    if hasattr(maps, "shape"):
        arrays = [image_array(maps, "maps")]          # the maps of one method
    elif hasattr(maps, "__iter__") and not isinstance(maps, str):
        arrays = list(maps)
    else:
        raise TypeError(f"maps must be {{method name: maps}}, a list of maps or the maps of one "
                        f"method, got {describe(maps)}")
    names = list(method_names) if method_names is not None else \
        [f"map {i + 1}" for i in range(len(arrays))]
    if len(names) != len(arrays):
        raise ValueError(f"{len(arrays)} maps but {len(names)} method_names {names}")
    return names, arrays


def _display_map(name, m, xs, single: bool, magnitude: bool) -> np.ndarray:
    """Maps of one method as 2-D maps (N, H, W): channels collapsed by ``to_map`` (summed, or
    max |.| with ``magnitude``) for maps shaped like the images or with one channel (Grad-CAM),
    kept for maps without the channel axis."""
    m = image_array(m, f"map {name!r}").astype(float)
    m = m[None] if single else m
    if m.shape in (xs.shape, xs.shape[:-1] + (1,)):
        m = to_map(m, "max_abs" if magnitude else "sum")
    if m.shape != xs.shape[:-1]:
        raise ValueError(f"map {name!r} has shape {m.shape[1:] if single else m.shape}; it must "
                         f"be like the images {xs.shape[1:] if single else xs.shape}, with one "
                         "channel, or without the channel axis")
    return np.abs(m) if magnitude else m


def _other_inputs_advice(x) -> str:
    """How to draw the maps of inputs that are not images: volumes by a slice, a sequence by
    matplotlib's plot."""
    if x.ndim == 5:
        return ("; saliency_maps draws 2-D images: for volumes (N, D, H, W, C) draw one depth "
                "slice d, saliency_maps(x[:, d], {name: m[:, d] for name, m in maps.items()})")
    if x.ndim == 2:
        return ("; saliency_maps draws 2-D images: for one sequence (L, C) plot its map with "
                "matplotlib, e.g. plt.plot(m[:, c]) for channel c")
    return ""


SALIENCY_SCALES = ("each", "row", "column", "shared")
SCALE_CAPTIONS = {
    "each": "each map on its own colour scale: white 0, its strongest colour that map's largest "
            "|value|",
    "row": "one colour scale per row (per example), shown by its colour bar",
    "column": "one colour scale per column (per method), shown by its colour bar",
    "shared": "every map on one colour scale, shown by the colour bar",
}


def show_map(ax, m, title, limit=None, signed=None):
    """Draw one 2-D saliency map on ``ax`` as ``saliency_maps`` draws it; returns the image.

    A signed map diverges around 0 (``show_signed``), a magnitude goes from 0 (white) to
    ``limit`` (red). ``signed`` and ``limit`` default to the map's own: whether it has negative
    values, and max |m|. The sanity-check figures and ``explanation`` draw their maps with it.

    >>> show_map(ax, to_map(saliency.gradient(model, x, 8))[0], "gradient")
    """
    signed = m.min() < 0 if signed is None else signed
    limit = symmetric_limit(m) if limit is None else limit
    if signed:
        return show_signed(ax, m, title, limit)
    return show_image(ax, m, title, cmap=MAGNITUDE_CMAP, vmin=0, vmax=limit)


def _scale_groups(scale: str, n: int, n_methods: int) -> list:
    """The tiles (example i, method j) that share one colour scale, group by group."""
    tiles = [(i, j) for i in range(n) for j in range(n_methods)]
    if scale == "each":
        return [[tile] for tile in tiles]
    if scale == "shared":
        return [tiles]
    if scale == "row":
        return [[(i, j) for j in range(n_methods)] for i in range(n)]
    return [[(i, j) for i in range(n)] for j in range(n_methods)]


OVERLAY_ALPHA = 0.6      # a map over its input: the input shows through


def _draw_maps(fig, axes, names, columns, scale: str, under=None):
    """Every map on the scale of its group; one colour bar per group unless ``scale`` is
    "each" (then the caption says that each map has its own scale). With ``under`` (the
    images), each map is drawn half-transparent over its image."""
    for group in _scale_groups(scale, len(axes), len(columns)):
        tiles = [columns[j][i] for i, j in group]
        signed = any(t.min() < 0 for t in tiles) if scale != "each" else None
        limit = max(symmetric_limit(t) for t in tiles) if scale != "each" else None
        for i, j in group:
            if under is not None:
                show_image(axes[i, j + 1], under[i])
            im = show_map(axes[i, j + 1], columns[j][i], names[j] if i == 0 else None, limit,
                          signed)
            im.set_alpha(1.0 if under is None else OVERLAY_ALPHA)
        if scale != "each":
            bar = fig.colorbar(im, ax=[axes[i, j + 1] for i, j in group], shrink=0.8,
                               location="bottom" if scale == "column" else "right")
            bar.ax.tick_params(labelsize=7)
    width = fig.get_size_inches()[0]
    caption = SCALE_CAPTIONS[scale] + ("; each map drawn half-transparent over its input"
                                       if under is not None else "")
    fig.supxlabel(textwrap.fill(caption, int(14 * width)), fontsize=8)


def saliency_maps(x, maps, titles=None, method_names=None, magnitude: bool = False,
                  size: float = 1.8, title=None, scale: str = "each", overlay: bool = False):
    """Images beside their saliency maps: one row per example, one column per method.

    x            : images (N, H, W, C), or one image (H, W, C)
    maps         : {method name: maps} or a list of maps (named by ``method_names``); each is
                   (N, H, W, C) like x (``saliency.gradient`` etc.), (N, H, W, 1) (one channel,
                   ``saliency.grad_cam``) or (N, H, W); without the N axis for one image
    titles       : one title per example (column 0)
    magnitude    : draw |map| (channels by max |.|) instead of the signed map
    scale        : which maps share a colour scale: "each" (every map its own), "row" (the
                   methods of one example), "column" (one method over the examples) or
                   "shared" (all); each shared scale gets a colour bar
    overlay      : draw each map half-transparent over its input (the input still in column 0)

    A map with negative values is drawn signed: diverging colormap centred at 0, red positive,
    blue negative (channels summed). A map without negative values (a magnitude, the "abs" or
    "positive" sign option, Grad-CAM) and every map when ``magnitude`` is drawn from 0 (white) to
    the max (red); maps sharing a scale are all drawn signed if one of them is. A caption under
    the figure says which maps share a scale.

    >>> maps = {"gradient": saliency.gradient(model, x, 8),
    ...         "Grad-CAM": saliency.grad_cam(model, x, 8)}
    >>> fig, axes = saliency_maps(x, maps, titles=[f"label {y}" for y in labels], scale="row")
    >>> fig, axes = saliency_maps(x, maps, overlay=True)        # each map over its input
    """
    x = image_array(x)
    single = x.ndim == 3
    xs = x[None] if single else x
    if xs.ndim != 4 or len(xs) == 0:
        raise ValueError(f"x has shape {x.shape}; give images (N, H, W, C) or one image (H, W, C)"
                         + _other_inputs_advice(x))
    scale = _checks.one_of(scale, "scale", SALIENCY_SCALES)
    names, arrays = _named_maps(maps, method_names)
    columns = [_display_map(name, m, xs, single, magnitude) for name, m in zip(names, arrays)]
    n, cols = len(xs), len(columns) + 1
    bar_width = 0.7 if scale in ("row", "shared") else 0.0          # colour bars on the right
    bar_height = 0.6 if scale == "column" else 0.0                    # colour bars below
    fig, axes = plt.subplots(n, cols, squeeze=False, layout="constrained", figsize=(
        size * cols + bar_width, size * n + 0.4 + bar_height + (0.4 if title else 0)))
    for i in range(n):
        show_image(axes[i, 0], xs[i], None if titles is None else titles[i])
    _draw_maps(fig, axes, names, columns, scale, xs if overlay else None)
    if title:
        fig.suptitle(title)
    return finish(fig), axes


# --------------------------------------------------------------------------- occlusion


OCCLUSION_FIELDS = ("target", "unoccluded", "values", "delta", "relative", "locations",
                    "bounds", "patch", "stride", "fill")


def _flat_map_advice(result, figure: str) -> str:
    """Why ``figure`` cannot draw the 1-D or 3-D map ``result``, and how to draw it instead."""
    grid = np.shape(result.values)[-len(result.patch):]
    if len(grid) == 1:
        return (f"plot.{figure} shows 2-D maps; this map is 1-D over {grid[0]} steps: plot it "
                "with matplotlib, e.g. plt.plot(result.locations[0], result.relative) (the "
                "patch centres and the relative change at each)")
    return (f"plot.{figure} shows 2-D maps; this map is {len(grid)}-D "
            f"({'x'.join(str(n) for n in grid)}): draw one slice d of its first axis with "
            "matplotlib, e.g. plt.imshow(result.relative[d], cmap='RdBu_r') (the patch centres "
            "along each axis are result.locations)")


def _one_map(result, x, figure: str):
    """An occlusion map of ONE image, 2-D; a batch result is an error saying how to choose one,
    a 1-D or 3-D map one saying how to draw it, and anything else (an array, the arguments
    swapped) a TypeError saying what to give."""
    hint = "the arguments are swapped: give (x, result)" if hasattr(x, "unoccluded") else \
        "give the OcclusionMap itself, not one of its arrays"
    check_result(result, "result", "OcclusionMap", OCCLUSION_FIELDS,
                 "occlusion.sensitivity_map", hint)
    if np.ndim(result.unoccluded) != 0:
        raise ValueError(f"this occlusion map holds {len(result.unoccluded)} images; draw one of "
                         "them: pass result.example(i) for image i")
    if len(result.patch) != 2:
        raise ValueError(_flat_map_advice(result, figure))
    return result


def _one_image(x, result) -> np.ndarray:
    """The image (H, W, C) the map was computed for, from (H, W, C) or a batch of one; an
    image of another size than the map's is an error."""
    x = image_array(x)
    x = x[0] if x.ndim == 4 and len(x) == 1 else x
    if x.ndim not in (2, 3):
        raise ValueError(f"x has shape {x.shape}; give the one image (H, W, C) the map was "
                         "computed for (for a batch: x[i] with result.example(i))")
    for axis, (centres, s) in enumerate(zip(result.locations, result.stride)):
        if not centres[-1] < x.shape[axis] <= centres[-1] + s:
            raise ValueError(f"x has shape {x.shape} but the map was computed for an image of "
                             f"{len(centres)} centres {s} apart along axis {axis}: give the "
                             "image the map was computed for")
    return x


def relative_or_delta(result, relative: bool):
    """The values of an ``OcclusionMap`` to draw, and their name: ``result.relative`` when
    ``relative`` and it is defined, else ``result.delta`` (the name says why: an un-occluded
    value of 0)."""
    if relative and not np.all(np.isnan(result.relative)):
        return np.asarray(result.relative, dtype=float), "relative change"
    why = "" if not relative else " (un-occluded value 0: relative undefined)"
    return np.asarray(result.delta, dtype=float), "change" + why


NEGLIGIBLE = 0.01     # a largest change under 1 % of the score: the map says it is negligible
UNCOVERED = "pixels inside no patch (hatched) were never hidden: the map has no value there"


def covered_pixels(result, image_shape) -> np.ndarray:
    """(H, W) True where a pixel lies inside at least one patch of ``result`` (its
    ``bounds``). A stride larger than the patch leaves pixels that no patch ever hid: the map
    says nothing about them."""
    inside = []
    for bounds, n in zip(result.bounds, image_shape[:2]):
        axis = np.zeros(n, dtype=bool)
        for start, stop in bounds:
            axis[start:stop] = True
        inside.append(axis)
    return np.outer(*inside)


def _runs(inside) -> list:
    """[start, stop) of each run of False in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[1], inside.astype(int), [1]]))
    return list(zip(np.where(edges == -1)[0], np.where(edges == 1)[0]))


def hatch_uncovered(ax, covered) -> bool:
    """Hatch the pixels ``covered`` leaves out (whole rows and columns, as patches lie on a grid)
    on ``ax``, above its images; whether there were any."""
    rows, cols = covered.any(axis=1), covered.any(axis=0)
    (h, w), strips = covered.shape, []
    strips += [(-0.5, r0 - 0.5, w, r1 - r0) for r0, r1 in _runs(rows)]
    strips += [(c0 - 0.5, -0.5, c1 - c0, h) for c0, c1 in _runs(cols)]
    for x0, y0, dx, dy in strips:
        ax.add_patch(Rectangle((x0, y0), dx, dy, facecolor="0.85", edgecolor="0.45", hatch="////",
                               linewidth=0, gid="not covered"))
    return bool(strips)


def occlusion_limit(values, result, relative: bool, limit=None) -> float:
    """The colour scale's end for an occlusion map: ``limit`` when given, else the map's largest
    |value| but at least ``NEGLIGIBLE`` of the score (1 % for the relative change), so that a
    negligible map is drawn pale instead of stretched to full colour."""
    if limit is not None:
        if not _checks.is_number(limit) or not limit > 0:
            raise ValueError(f"limit must be a positive number (the colour scale's end, in the "
                             f"map's units), got {limit!r}")
        return float(limit)
    floor = NEGLIGIBLE * (1.0 if relative else abs(float(result.unoccluded)))
    return max(float(np.nanmax(np.abs(values))) if np.any(np.isfinite(values)) else 0.0,
               floor) or 1.0


def largest_change_text(values, result, relative: bool) -> str:
    """The map's largest change in the score's units, e.g. "largest change -26.1% of the score
    0.912"; "negligible" when it is under ``NEGLIGIBLE`` of the score."""
    v = float(values.flat[np.nanargmax(np.abs(values))])
    share = v if relative else v / abs(float(result.unoccluded) or np.nan)
    change = _share_text(v) if relative else f"{v:+.3g}"
    text = f"largest change {change} of the score {value_text(result.unoccluded)}"
    if abs(share) < NEGLIGIBLE:
        text += f": negligible (under {NEGLIGIBLE:.0%} of the score)"
    return text


def _map_on(ax, values, lim: float, alpha: float, covered):
    """The map ``values`` (H, W) on ``ax``, masked where ``covered`` is False (hatched)."""
    im = ax.imshow(np.ma.masked_where(~covered, values), cmap=SIGNED_CMAP, vmin=-lim, vmax=lim,
                   alpha=alpha, interpolation="nearest")
    hatch_uncovered(ax, covered)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def occlusion_map(x, result, relative: bool = True, title=None, size=2.6, limit=None):
    """An occlusion sensitivity map (``occlusion.sensitivity_map``) beside and over its image.

    Left: the input; middle: the map (``result.relative``, or ``result.delta`` when ``relative``
    is False or the un-occluded value is 0) with the diverging colormap centred at 0 and its
    colour bar; right: the same map laid half-transparent over the input. Each pixel shows the
    value of its nearest patch centre (``OcclusionMap.on_pixels``, as in
    ``occlusion.attribution``); pixels inside no patch (a stride larger than the patch) are
    hatched: no patch hid them. Blue: hiding the patch there lowers the target; red: raises it.
    For a batch result draw one image: ``result.example(i)``.

    limit : the colour scale's end in the map's units (a share of the score for the relative
            change: 0.1 is +-10 %, 1 the whole score). Default: the map's largest |value|, but at
            least 1 % of the score, so a negligible map is drawn pale, not stretched to full
            colour. The title's last line (under ``title`` when one is given) states the
            largest change in the score's units and says "negligible" when it is under 1 % of
            the score.

    >>> r = occlusion.sensitivity_map(model, x, 8)
    >>> fig, axes = occlusion_map(x, r)
    >>> fig, axes = occlusion_map(x, r, limit=1.0)      # the scale: the whole score
    """
    result = _one_map(result, x, "occlusion_map")
    x = _one_image(x, result)
    values, name = relative_or_delta(result, relative)
    is_share = name == "relative change"
    lim = occlusion_limit(values, result, is_share, limit)
    text = largest_change_text(values, result, is_share)
    covered = covered_pixels(result, x.shape)
    values = result.on_pixels(values, x.shape)        # every pixel, its patch centre's value
    fig, axes = plt.subplots(1, 3, figsize=(3 * size + 0.8, size + 0.9))
    show_image(axes[0], x, f"input: {value_text(result.unoccluded)}")
    im = _map_on(axes[1], values, lim, 1.0, covered)
    show_image(axes[2], x)
    _map_on(axes[2], values, lim, 0.65, covered)
    axes[1].set_title(name, fontsize=9)
    axes[2].set_title("over the input", fontsize=9)
    bar = fig.colorbar(im, ax=axes[1:].tolist(), fraction=0.046, pad=0.03)
    bar.set_label("share of the score" if is_share else "change of the score", fontsize=8)
    if is_share:
        bar.formatter = PercentFormatter(xmax=1.0)
    head = title or (f"occlusion of {result.target}, patch {result.patch[0]}x"
                     f"{result.patch[1]}, stride {result.stride[0]}")
    fig.suptitle(f"{head}\n{text}", fontsize=10)
    if not covered.all():
        fig.text(0.5, 0.01, UNCOVERED, ha="center", va="bottom", fontsize=8)
    return finish(fig), axes


def _share_text(v) -> str:
    """A share of the score as a signed percentage, small ones in 2 significant digits."""
    pct = 100 * float(v)
    return _percent_text(v) if abs(pct) >= 0.01 or pct == 0 else f"{pct:+.2g}%"


def _percent_text(v) -> str:
    """A proportional change as a signed percentage: +12.3%, -4.56%, +0.00%."""
    pct = 100 * float(v)
    return f"{pct:+.1f}%" if abs(pct) >= 10 else f"{pct:+.2f}%"


def _spread(centres, n: int) -> np.ndarray:
    """Indices of the centres nearest to the middles of n equal bands of an axis."""
    return np.unique(np.round((np.arange(n) + 0.5) * len(centres) / n - 0.5).astype(int))


def _grid_index(result, locations) -> list:
    """(i, j) on the map's grid of each (row, col) location; an error for one not on it."""
    rows, cols = result.locations
    where = []
    for r, c in locations:
        i, j = np.searchsorted(rows, r), np.searchsorted(cols, c)
        if i >= len(rows) or j >= len(cols) or rows[i] != r or cols[j] != c:
            raise ValueError(f"centre ({r}, {c}) is not on the map's grid of centres: rows "
                             f"{list(rows[:3])}..., cols {list(cols[:3])}... (stride "
                             f"{result.stride})")
        where.append((int(i), int(j)))
    return where


def _show_occluded(ax, image, result, i: int, j: int, scale, title):
    """The image with patch (i, j) of ``result`` painted over it in the fill's colour: the very
    image the model saw, drawn on the colour scale ``scale`` = (vmin, vmax)."""
    show_image(ax, image, title, vmin=scale[0], vmax=scale[1])
    (r0, r1), (c0, c1) = result.bounds[0][i], result.bounds[1][j]
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, linewidth=0,
                           facecolor=display_colour(result.fill, *scale, cmap=IMAGE_CMAP)))


def _occlusion_axes(result, locations, n: int, cols, size: float, head):
    """The figure, the axes of the input and one axes per location: for the default spread,
    the input then the locations in their spatial arrangement; else a plain grid."""
    if locations is None:     # n x n locations spread evenly over the image
        rows_, cols_ = (_spread(centres, n) for centres in result.locations)
        locations = [(int(result.locations[0][i]), int(result.locations[1][j]))
                     for i in rows_ for j in cols_]
        fig, axes = grid(len(rows_) * (len(cols_) + 1), len(cols_) + 1, size, head)
        for ax in axes[1:, 0]:
            ax.axis("off")
        return fig, axes, axes[:, 1:].ravel()[:len(locations)], locations
    fig, axes = grid(len(locations) + 1, cols or min(len(locations) + 1, 6), size, head)
    return fig, axes, axes.flat[1:len(locations) + 1], locations


def occlusion_grid(x, result, locations=None, n: int = 4, cols=None, title=None, size=1.5):
    """The lecture's grid of occluded inputs, each titled with its relative change of the target.

    x         : the image the map was computed for
    result    : ``occlusion.sensitivity_map(...)`` of that one image (``.example(i)`` of a batch)
    locations : (row, col) patch centres to show, on the map's grid (``result.locations``).
                Default: n x n centres spread evenly over the image, drawn as an n x n grid right
                of the un-occluded input.
    Titles: "(row,col) relative change in %" (the change itself when the un-occluded value is
    0). Each tile is the input with the patch (``result.bounds``) painted in ``result.fill`` on
    the same colour scale: the very image the model saw.

    >>> fig, axes = occlusion_grid(x, occlusion.sensitivity_map(model, x, 8, patch=4))
    """
    result = _one_map(result, x, "occlusion_grid")
    image = _one_image(x, result)
    values, name = relative_or_delta(result, True)
    text = _percent_text if name == "relative change" else (lambda v: f"{v:+.3g}")
    if locations is not None:
        _grid_index(result, locations)           # check them before drawing anything
    head = title or (f"occlusion of {result.target}\n{name} (patch {result.patch[0]}x"
                     f"{result.patch[1]}, input value {value_text(result.unoccluded)})")
    fig, axes, slots, locations = _occlusion_axes(result, locations, n, cols, size, head)
    scale = (min(float(image.min()), float(np.min(result.fill))),
             max(float(image.max()), float(np.max(result.fill))))
    show_image(axes.flat[0], image, "input", vmin=scale[0], vmax=scale[1])
    for ax, (r, c), (i, j) in zip(slots, locations, _grid_index(result, locations)):
        _show_occluded(ax, image, result, i, j, scale, f"({r},{c}) {text(values[i, j])}")
    fig.tight_layout()
    return finish(fig), axes
