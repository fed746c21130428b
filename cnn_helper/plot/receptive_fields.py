r"""The lecture's receptive-field charts: a field growing layer by layer along one axis, and the
nested fields of one location drawn over an image (from ``receptive_field.growth`` and
``receptive_field.nested_regions``).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from ._common import check_result
from .core import finish, show_image

FIELD_COLOUR, TARGET_COLOUR, CELL_COLOUR = "tab:orange", "tab:red", "0.85"


def _items(value) -> list:
    """The results in a list, a tuple or a generator; anything else as one item (to be named in
    the error when it is not a result)."""
    if hasattr(value, "__iter__") and not isinstance(value, (str, dict, np.ndarray)):
        return list(value)
    return [value]


def _draw_growth_row(ax, y: int, row, top: bool):
    """The cells of one layer at height y; returns the (lo, hi) input coordinates they cover."""
    lo, hi = np.inf, -np.inf
    for p in range(row.n):
        centre = row.start + p * row.jump
        fed = row.first <= p <= row.last
        colour = (TARGET_COLOUR if top else FIELD_COLOUR) if fed else CELL_COLOUR
        edge = 0.8 if row.jump > 1 or row.n < 60 else 0
        ax.add_patch(Rectangle((centre - row.jump / 2, y - 0.35), row.jump, 0.7,
                               facecolor=colour, edgecolor="white", linewidth=edge))
        lo, hi = min(lo, centre - row.jump / 2), max(hi, centre + row.jump / 2)
    ax.text(1.01, y, f"size {row.size}, jump {row.jump}", transform=ax.get_yaxis_transform(),
            va="center", fontsize=8)
    return lo, hi


def receptive_field_growth(rows, title=None, ax=None):
    """The lecture's 1-D chart of a receptive field growing layer by layer.

    ``rows`` comes from ``receptive_field.growth(model, layer, location, axis)``: one row per
    layer, the input at the bottom. Each location p of a layer is drawn as a cell centred on the
    input coordinate it is centred on (start + p * jump, width jump), so deeper rows have fewer,
    wider cells. The locations that feed the chosen location of the top layer are coloured (the
    chosen one in red); the shaded band is the input interval they all see.
    """
    rows = _items(rows)
    if not rows:
        raise ValueError("rows is empty; give the output of receptive_field.growth(...)")
    for row in rows:
        check_result(row, "each row", "GrowthRow", ("layer", "kind", "n", "start", "jump",
                                                    "size", "first", "last", "interval"),
                     "receptive_field.growth(model, layer, location, axis), a list of them")
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.4))
    spans = [_draw_growth_row(ax, y, r, y == len(rows) - 1) for y, r in enumerate(rows)]
    lo, hi = rows[-1].interval
    ax.axvspan(lo - 0.5, hi - 0.5, color=FIELD_COLOUR, alpha=0.12, zorder=0)
    ax.set_xlim(min(min(s[0] for s in spans), -0.5) - 0.5,
                max(max(s[1] for s in spans), rows[0].n - 0.5) + 0.5)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r.layer} ({r.kind})" for r in rows], fontsize=8)
    ax.set_xlabel("input position (pixels); a cell is one location of that layer")
    ax.set_title(title or f"receptive field of {rows[-1].layer}, location {rows[-1].first} on this "
                          f"axis: input {lo}..{hi - 1} ({hi - lo} pixels)", fontsize=10)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig = fig or ax.figure
    fig.tight_layout()
    return finish(fig), ax


def _check_regions(regions, image, input_shape) -> list:
    """The NestedRegions to draw; clear errors for anything else or nothing to draw on."""
    regions = _items(regions)
    if not regions:
        raise ValueError("regions is empty; give the output of receptive_field.nested_regions(...)")
    for r in regions:
        hint = "that is one region (slices); draw the nested regions of one location" \
            if isinstance(r, slice) else None
        check_result(r, "each region", "NestedRegion", ("layer", "location", "size", "region"),
                     "receptive_field.nested_regions(model, layer, location), a list of them",
                     hint)
    n_axes = len(regions[0].region)
    if n_axes != 2:
        axis = "" if n_axes == 1 else ", axis=a"
        raise ValueError(f"plot.receptive_field_regions draws boxes on a 2-D image; these regions "
                         f"are {n_axes}-D: draw the field growing along one axis with "
                         "plot.receptive_field_growth(receptive_field.growth(model, layer, "
                         f"location{axis}))")
    if image is None and input_shape is None:
        raise ValueError("give the image to draw on, or its input_shape (H, W)")
    return regions


def receptive_field_regions(regions, image=None, input_shape=None, title=None, ax=None,
                            cmap="tab10"):
    """The lecture's 2-D chart: nested rectangles, the receptive field of one location at each
    layer.

    ``regions`` comes from ``receptive_field.nested_regions(model, layer, location)`` (smallest
    first); each is drawn as a rectangle of its own colour over ``image`` (an (H, W) or (H, W, C)
    image) or, without one, over a blank canvas of ``input_shape`` (H, W). The legend names
    layer, location and field size.
    """
    regions = _check_regions(regions, image, input_shape)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
    if image is not None:
        show_image(ax, image)
    else:
        show_image(ax, np.ones(tuple(input_shape)[:2]), vmin=0, vmax=1)
    colours = plt.get_cmap(cmap)(np.arange(len(regions)) % 10)
    for i, (r, colour) in enumerate(zip(regions, colours)):
        rows, cols = r.region
        ax.add_patch(Rectangle((cols.start - 0.5, rows.start - 0.5), cols.stop - cols.start,
                               rows.stop - rows.start, fill=False, edgecolor=colour, linewidth=2,
                               zorder=3 + len(regions) - i,   # a smaller box over a larger one
                               label=f"{r.layer} idx={r.location}: {r.size[0]}x{r.size[1]}"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    ax.set_title(title or "receptive field of one location, layer by layer", fontsize=10)
    if fig is not None:   # our figure: leave the right third to the legend
        fig.tight_layout(rect=(0, 0, 0.66, 1))
    return finish(fig or ax.figure), ax
