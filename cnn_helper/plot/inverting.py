r"""The Zeiler & Fergus figure: for the maximally activating examples of a feature
:math:`\y_{(l),k}`, the saliency of the max location and the input patch, both cropped to the
location's receptive field (from ``inverting.zeiler_fergus``).
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from ._common import check_result, squeeze_image
from .core import FRAME_COLOUR, finish, montage, show_image, show_signed

RULE_NAMES = {"gradient": "saliency", "guided": "guided backprop", "deconvnet": "deconvnet"}


ZEILER_FERGUS_FIELDS = ("target", "rule", "indices", "values", "regions", "windows",
                        "saliency_patches", "patches")


def _check_zeiler_fergus(zf):
    """``zf`` when it is a ZeilerFergus result; a TypeError saying how to make one otherwise."""
    hint = None
    if hasattr(zf, "high") and hasattr(zf, "target"):                 # TopExamples
        hint = _top_examples_advice(zf)
    return check_result(zf, "zf", "ZeilerFergus", ZEILER_FERGUS_FIELDS,
                        "inverting.zeiler_fergus(model, x, target)", hint)


def _top_examples_advice(examples) -> str:
    """What to do with top examples given instead of the figure's data: compute the data, or,
    for a feature without a spatial map (a class, a dense unit), the figures that fit it."""
    if np.shape(examples.high.locations)[-1] == 0:
        return (f"these are the top examples of {examples.target}, which has no spatial map, so "
                "there is no receptive field to crop: draw them with plot.max_activating(x, "
                "result) and their saliency with plot.saliency_maps(x[result.high.indices], "
                "saliency.gradient(model, x[result.high.indices], result.target)); the Zeiler & "
                "Fergus figure needs a Feature of a convolutional or pooling layer")
    return ("these are top examples: compute the figure's data with inverting.zeiler_fergus("
            "model, x, result.target, examples=result)")


def _rule_name(rule: str) -> str:
    """How a figure names the backward rule of ``saliency``: "gradient" is the saliency."""
    return RULE_NAMES.get(rule, rule)


def _place_in_window(ax, im, region, window):
    """Draw a crop at its input coordinates inside the whole (unclipped) receptive field window, so
    a field cut by the image border keeps the scale of the others (the outside stays blank), with
    a thin grey frame (gid "crop") on the crop's extent: a crop whose border rows are white (or
    black on black) keeps its size."""
    (r_slice, c_slice), ((r_lo, r_hi), (c_lo, c_hi)) = region[:2], window[:2]
    im.set_extent((c_slice.start - 0.5, c_slice.stop - 0.5, r_slice.stop - 0.5,
                   r_slice.start - 0.5))
    ax.add_patch(Rectangle((c_slice.start - 0.5, r_slice.start - 0.5),
                           c_slice.stop - c_slice.start, r_slice.stop - r_slice.start, fill=False,
                           edgecolor=FRAME_COLOUR, linewidth=1.0, gid="crop"))
    ax.set_xlim(c_lo - 0.5, c_hi - 0.5)
    ax.set_ylim(r_hi - 0.5, r_lo - 0.5)
    ax.patch.set_hatch("///")           # hatched: outside the image
    ax.patch.set_edgecolor("0.75")


def _show_saliency_patch(ax, s, magnitude: bool):
    """A saliency crop: signed around 0, or its magnitude (channels summed) in grey."""
    if not magnitude:
        return show_signed(ax, s)
    mag = np.abs(squeeze_image(s))
    return show_image(ax, mag.sum(axis=-1) if mag.ndim == 3 else mag, cmap="gray")


def zeiler_fergus(zf, cols: int = 3, magnitude: bool = False, size: float = 1.5, title=None):
    """The Zeiler & Fergus figure from ``inverting.zeiler_fergus``: saliency | patch grids.

    Left: the saliency of each example's max location, cropped to its receptive field (signed,
    diverging and centred at 0 per tile; or its magnitude with ``magnitude=True``). Right: the
    matching input patches, titled with the example index and the feature's value. A field cut by
    the image border is drawn at its place in the whole field, the outside hatched; a thin grey
    frame marks each crop's extent.

    >>> fig, axes = zeiler_fergus(inverting.zeiler_fergus(model, x_test, Feature("conv2", 5)))
    """
    zf = _check_zeiler_fergus(zf)
    n = len(zf)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, 2 * cols + 1, squeeze=False,
                             figsize=(size * (2 * cols + 0.4), size * rows + 0.6),
                             gridspec_kw={"width_ratios": [1] * cols + [0.3] + [1] * cols})
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, cols)
        left, right = axes[r, c], axes[r, cols + 1 + c]
        left.axis("on")
        right.axis("on")
        im = _show_saliency_patch(left, zf.saliency_patches[i], magnitude)
        _place_in_window(left, im, zf.regions[i], zf.windows[i])
        im = show_image(right, zf.patches[i], f"#{zf.indices[i]}: {zf.values[i]:.2f}")
        _place_in_window(right, im, zf.regions[i], zf.windows[i])
    fig.suptitle(title or f"{zf.target}: "
                          f"{_rule_name(zf.rule)} (left) and patch (right) of the {n} maximally "
                          "activating examples", fontsize=10)
    fig.tight_layout()
    return finish(fig), axes


def zeiler_fergus_montage(zf, cols: int = 3, title=None, size=1.1):
    """The Zeiler & Fergus figure (``inverting.zeiler_fergus``) drawn quickly: two montages.

    Left: the saliency of each example's max location cropped to its receptive field (diverging,
    centred at 0 per tile); right: the matching input patches titled with example index and value,
    each tile in a thin grey frame. Two axes and two images however many examples (the feature
    explorer redraws it on a click).
    """
    zf = _check_zeiler_fergus(zf)
    fig, axes = plt.subplots(1, 2)
    montage(zf.saliency_patches, [""] * len(zf), cols=cols, signed=True, ax=axes[0], frame=True)
    montage(zf.patches, [f"#{i}: {v:.2f}" for i, v in zip(zf.indices, zf.values)], cols=cols,
            ax=axes[1], frame=True)
    h, w = axes[1].images[0].get_array().shape[:2]       # size the figure to the montages
    width = 2 * size * cols + 0.2
    height = (width / 2.06) * h / w + 0.4                 # each axes: width / (2 + wspace) wide
    fig.set_size_inches(width, height)
    fig.subplots_adjust(0, 0, 1, 1 - 0.4 / height, wspace=0.06)
    fig.suptitle(title or f"{zf.target}: {_rule_name(zf.rule)} "
                          "(left) and patch (right) in the receptive field of the max", fontsize=9)
    return finish(fig), axes
