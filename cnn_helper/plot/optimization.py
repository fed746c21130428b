r"""Interpretation by optimization: images optimized to excite a target
(``feature_visualization.visualize``) and images reconstructed from a layer's representation
(``inverting.invert``).

- ``visualizations``: a grid of the optimized images (e.g. every channel of a layer);
- ``visualization_of``: one of them, alone (the feature explorer's panel);
- ``compare_visualizations``: the same targets optimized with different settings, one row each;
- ``unit_and_examples``: each unit's optimized image beside its maximally activating examples,
  the panel of Yosinski et al.'s deep visualization toolbox;
- ``inversions``: each image beside its reconstructions from every layer inverted.

Every image is drawn on the model's input range (from the result's settings), so two panels with
the same grey mean the same input value. An image that is the best of several starts
(``visualize(..., starts=4)`` or ``x=x_test``) says in its title which start it came from: a noise
seed, or "#i", example i of the data.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._common import check_result, fit_text, image_array
from .core import finish, grid, montage, show_image

VISUALIZATION_FIELDS = ("targets", "images", "values", "settings", "starts",
                        "values_by_start")
INVERSION_FIELDS = ("x", "layers", "images", "distances", "settings")
START_LINE = 0.25       # inches of one more title line (e.g. naming the start an image came from)
MIN_WIDTH = 3.6         # inches: room for the figure's title above one or two images


def _check_visualization(vis, name: str = "vis"):
    return check_result(vis, name, "FeatureVisualization", VISUALIZATION_FIELDS,
                        "feature_visualization.visualize(model, targets)")


def _limits(result) -> tuple:
    """(vmin, vmax): the model's input range the result's images were optimized in."""
    low, high = result.settings["value_range"]
    return float(np.min(low)), float(np.max(high))


def _names(targets) -> list:
    """Short tile titles: "k=5" when every target is a channel of one layer, else the target in
    the lecture's notation (y_(conv3),k=5)."""
    layers = {t.layer_name for t in targets}
    return [f"k={t.channel}" if len(layers) == 1 else str(t) for t in targets]


def _several_starts(vis) -> bool:
    """Whether each image is the best of several starts: its title then names its start."""
    return np.shape(vis.values_by_start)[-1] > 1


def _start_line(vis, i: int, short: bool = True) -> str:
    """A title line naming the start image i came from ("from seed 2", "from #1234"; not short:
    "from noise seed 2", "from example #1234"), or "" when every image had one start."""
    if not _several_starts(vis):
        return ""
    start = vis.starts[i]
    return "\nfrom " + (start.replace("noise ", "").replace("example ", "") if short else start)


def visualizations(vis, cols: int = 8, size: float = 1.2, title=None):
    """The images of ``feature_visualization.visualize``, each titled with its target and the
    value it reaches, on the model's input range. Titles are wrapped to fit: a figure of few
    images is at least ``MIN_WIDTH`` inches wide.

    >>> fig, axes = visualizations(feature_visualization.visualize(model, "conv2"))
    """
    vis = _check_visualization(vis)
    fig, axes = grid(len(vis), min(cols, len(vis)), size)
    fig.set_figwidth(max(fig.get_figwidth(), MIN_WIDTH))
    tile = fig.get_figwidth() / axes.shape[1]
    vmin, vmax = _limits(vis)
    for i, (ax, name) in enumerate(zip(axes.flat, _names(vis.targets))):
        show_image(ax, vis.images[i], fit_text(f"{name}: {vis.values[i]:.1f}", tile, 9)
                   + _start_line(vis, i), vmin=vmin, vmax=vmax)
    lines = max(len(ax.get_title().split("\n")) for ax in axes.flat)
    if title is None:
        layers = sorted({t.layer_name for t in vis.targets})
        starts = ", and the start it came from: a noise seed or #i, example i of x"
        title = (f"images optimized to excite each target of {', '.join(layers)} (title: its "
                 f"value{starts if _several_starts(vis) else ''})")
    title = fit_text(title, fig.get_figwidth(), 10)
    fig.suptitle(title, fontsize=10)
    fig.set_figheight(fig.get_figheight() + START_LINE * (axes.shape[0] * (lines - 1)
                                                          + title.count("\n") + 1))
    fig.tight_layout()
    return finish(fig), axes


def visualization_of(vis, index: int, size: float = 2.2):
    """One image of ``feature_visualization.visualize`` (number ``index``), titled with its
    target and the value it reaches, on the model's input range: what the feature explorer shows.

    >>> fig, ax = visualization_of(feature_visualization.visualize(model, "conv3"), 12)
    """
    vis = _check_visualization(vis)
    if not isinstance(index, (int, np.integer)) or not 0 <= index < len(vis):
        raise ValueError(f"index {index!r} is not an image of vis: 0..{len(vis) - 1}")
    fig, ax = plt.subplots(figsize=(size, size + 0.35 + START_LINE * _several_starts(vis)))
    vmin, vmax = _limits(vis)
    show_image(ax, vis.images[index], f"{vis.targets[index]}\noptimized: {vis.values[index]:.2f}"
               f"{_start_line(vis, index, short=False)}", vmin=vmin, vmax=vmax)
    fig.tight_layout()
    return finish(fig), ax


def compare_visualizations(results: dict, size: float = 1.1, title=None):
    """Rows of optimized images, one row per ``{label: FeatureVisualization}`` (the same targets
    with different settings), the label at the left of its row.

    >>> fig, axes = compare_visualizations({"pixels": visualize(model, t, parametrization="pixel",
    ...                                     transforms=None), "default": visualize(model, t)})
    """
    if not isinstance(results, dict) or not results:
        raise TypeError(f"results must be a non-empty dict {{label: FeatureVisualization}}, got "
                        f"{type(results).__name__}")
    rows = [_check_visualization(vis, f"results[{label!r}]") for label, vis in results.items()]
    cols = max(len(vis) for vis in rows)
    row_height = size + 0.3 + START_LINE * any(_several_starts(vis) for vis in rows)
    fig, axes = plt.subplots(len(rows), cols, squeeze=False,
                             figsize=(size * cols + 0.4, row_height * len(rows) + 0.4))
    for r, (label, vis) in enumerate(zip(results, rows)):
        vmin, vmax = _limits(vis)
        for c, ax in enumerate(axes[r]):
            if c >= len(vis):
                ax.axis("off")
                continue
            show_image(ax, vis.images[c], f"{_names(vis.targets)[c]}: {vis.values[c]:.1f}"
                       f"{_start_line(vis, c)}", vmin=vmin, vmax=vmax)
        axes[r, 0].set_ylabel(label, fontsize=9)
    fig.suptitle(title or "the same targets, optimized with different settings (title: the "
                          "value reached)", fontsize=10)
    fig.tight_layout()
    return finish(fig), axes


def _check_examples(vis, x, examples) -> list:
    """The examples as a list aligned with the visualization's targets, each ranking the same
    feature, with indices into ``x``."""
    if not isinstance(examples, (list, tuple)) or len(examples) != len(vis):
        raise ValueError(f"examples must be a list of {len(vis)} TopExamples, one per target of "
                         f"vis (top_examples or scan(...)[layer].channel(k)), got "
                         f"{type(examples).__name__} of length {len(examples)}"
                         if hasattr(examples, "__len__") else
                         f"examples must be a list of {len(vis)} TopExamples, got {examples!r}")
    for i, (target, top) in enumerate(zip(vis.targets, examples)):
        top = check_result(top, f"examples[{i}]", "TopExamples", ("target", "high"),
                           "max_activation.top_examples or scan(...)[layer].channel(k)")
        if (top.target.layer_name, top.target.channel) != (target.layer_name, target.channel):
            raise ValueError(f"examples[{i}] ranks {top.target}, but vis.targets[{i}] is "
                             f"{target}: give the examples of the same unit")
        if int(np.max(top.high.indices)) >= len(x):
            raise ValueError(f"examples[{i}] refers to example {int(np.max(top.high.indices))} "
                             f"but x has {len(x)} images: give the data set they were ranked on")
    return list(examples)


def unit_and_examples(vis, x, examples, y=None, size: float = 1.9, title=None):
    """Each unit's optimized image (left) beside its maximally activating examples (right, a
    3-column montage titled with example index and label): the deep visualization toolbox's
    panel (Yosinski et al. 2015). What optimization finds next to what search finds.

    vis      : ``feature_visualization.visualize`` of some units
    x, y     : the data set the examples were ranked on, and its labels (optional)
    examples : one ``TopExamples`` per target of ``vis``, e.g. ``scan(...)[layer].channel(k)``

    >>> fig, axes = unit_and_examples(vis, x_test, [scans["conv3"].channel(k) for k in (3, 12)])
    """
    vis = _check_visualization(vis)
    x = image_array(x)
    examples = _check_examples(vis, x, examples)
    fig, axes = plt.subplots(len(vis), 2, squeeze=False, gridspec_kw={"width_ratios": [1, 1.6]},
                             figsize=(2.8 * size, (size + 0.5 + START_LINE * _several_starts(vis))
                                      * len(vis) + 0.5))
    vmin, vmax = _limits(vis)
    for i, (row, target, top) in enumerate(zip(axes, vis.targets, examples)):
        show_image(row[0], vis.images[i], f"{target}\noptimized: {vis.values[i]:.2f}"
                   f"{_start_line(vis, i, short=False)}", vmin=vmin, vmax=vmax)
        index = top.high.indices
        titles = [f"#{i}" + ("" if y is None else f" ({y[i]})") for i in index]
        montage(x[index], titles, cols=3, ax=row[1])
        row[1].set_title(f"top {len(index)} of {top.target}:\n{top.high.values[0]:.2f} .. "
                         f"{top.high.values[-1]:.2f}", fontsize=9)
    fig.suptitle(title or "optimized image (left),\nmaximally activating examples (right)",
                 fontsize=10)
    fig.tight_layout()
    return finish(fig), axes


def inversions(inv, size: float = 1.3, title=None):
    """Each image (left) and its reconstructions from every layer of ``inverting.invert``, each
    titled with the layer and the representation distance the reconstruction reaches.

    >>> fig, axes = inversions(inverting.invert(model, x_test[0], ["conv1", "conv3", "dense"]))
    """
    inv = check_result(inv, "inv", "Inversion", INVERSION_FIELDS,
                       "inverting.invert(model, x, layers)")
    single = np.ndim(inv.x) == np.ndim(inv.images[inv.layers[0]])
    originals = inv.x[None] if single else inv.x
    fig, axes = plt.subplots(len(originals), len(inv.layers) + 1, squeeze=False,
                             figsize=(size * (len(inv.layers) + 1), (size + 0.45) *
                                      len(originals) + 0.3))
    vmin, vmax = _limits(inv)
    for i, row in enumerate(axes):
        show_image(row[0], originals[i], "x", vmin=vmin, vmax=vmax)
        for ax, layer in zip(row[1:], inv.layers):
            image, distance = (inv.images[layer], np.atleast_1d(inv.distances[layer]))
            show_image(ax, image if single else image[i], f"{layer}\n{distance[i]:.3f}",
                       vmin=vmin, vmax=vmax)
    fig.suptitle(title or "x and its reconstruction from each layer (title: the relative "
                          "representation distance reached)", fontsize=10)
    fig.tight_layout()
    return finish(fig), axes
