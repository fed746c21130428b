r"""The occlusion explorer: hide a patch of an example everywhere in turn and see how the
probability of a class changes (``occlusion.sensitivity_map``, drawn by ``plot.occlusion_map``)."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .. import _checks, _graph, features, occlusion, plot
from .. import data as data_mod
from .base import LRU, Explorer, image_widget, panels, tag


class OcclusionExplorer(Explorer):
    r"""Hide a patch of an example everywhere in turn; see how the class probability changes.

    The map (``occlusion.sensitivity_map``, drawn by ``plot.occlusion_map``) shows the relative
    change :math:`(\y_{(L),c}|_{\x \setminus (r,c)} - \y_{(L),c}|_{\x}) / \y_{(L),c}|_{\x}`: blue
    where hiding the patch centred at (r, c) lowers the probability of class c; beside it, the
    predicted probabilities. Each map is computed by the fastest exact strategy
    (``strategy="auto"``: incremental inference, which recomputes each layer only where the patch
    changes it, when ``occlusion.incremental_cost`` predicts a gain; ``result.strategy`` says
    which ran) and cached.

    model : a Keras classifier;  x : images (N, H, W, C);  y : their labels (to choose by label)

    Controls: ``label`` ("all" or a class: which examples ``example`` walks through), ``example``
    (IntSlider: the n-th example of that selection), ``patch`` and ``stride`` (IntText),
    ``fill`` (Dropdown: the value painted into the patch), ``target`` (Dropdown: "predicted",
    "true label" or a class index).
    state: index (into x), label, target (the class explained), patch, stride, fill,
    result (``OcclusionMap``), probabilities (C,), and the PNGs map_png, probs_png.
    """

    css_class = "cnnh-occlusion-explorer"
    FILLS = (("extreme: 1.0 (bright)", "extreme"), ("zero: 0.0 (dark)", "zero"),
             ("the image's mean", "mean"), ("grey: 0.5", 0.5))

    def __init__(self, model, x, y=None, patch: int = 4, stride: int = 1, example: int = 0,
                 batch_size=_checks.BATCH_SIZE):
        super().__init__()
        self._use_data(model, x, y)
        self.batch_size = batch_size
        head = _graph.output_layer(model).name
        self.probabilities = features.activations(model, self.x, [head], batch_size)[head]
        self._maps = LRU()
        self._make_controls(self.probabilities.shape[-1], patch, stride, example)
        self.widget = widgets.VBox([
            widgets.HBox([self.label, self.example, self.info]),
            widgets.HBox([self.patch, self.stride, self.fill, self.target]),
            self.message,
            panels(self.map_image, self.probs_image),
        ])
        self.widget.add_class(self.css_class)
        self._observe({self.label: self._on_label, **{c: self._draw for c in (
            self.example, self.patch, self.stride, self.fill, self.target)}})
        self._guard(self._draw)

    def _make_controls(self, n_classes: int, patch: int, stride: int, example: int):
        classes = [(str(c), c) for c in range(n_classes)]
        narrow = widgets.Layout(width="150px")
        self.label = widgets.Dropdown(options=[("all", "all")] + classes, value="all",
                                      description="label", disabled=self.y is None, layout=narrow)
        self.example = widgets.IntSlider(int(example), 0, len(self.x) - 1, description="example",
                                         continuous_update=False)
        self.patch = widgets.IntText(int(patch), description="patch", layout=narrow)
        self.stride = widgets.IntText(int(stride), description="stride", layout=narrow)
        self.fill = widgets.Dropdown(options=self.FILLS, value="extreme", description="fill")
        targets = [("predicted", "predicted")] + ([("true label", "true")] if self.y is not None
                                                  else [])
        self.target = widgets.Dropdown(options=targets + classes, value="predicted",
                                       description="class", layout=widgets.Layout(width="200px"))
        tag({"label": self.label, "example": self.example, "patch": self.patch,
             "stride": self.stride, "fill": self.fill, "target": self.target})
        self.info = widgets.HTML()
        self.map_image = image_widget("cnnh-occlusion")
        self.probs_image = image_widget("cnnh-probabilities")

    def __repr__(self):
        return (f"OcclusionExplorer(label={self.label.value!r}, example={self.example.value}, "
                f"patch={self.patch.value}, stride={self.stride.value}, fill={self.fill.value!r}, "
                f"class={self.target.value!r})")

    def selection(self):
        """Indices into x of the examples the ``example`` slider walks through (by ``label``)."""
        if self.label.value == "all":
            return np.arange(len(self.x))
        return data_mod.select_labels(self.x, self.y, self.label.value)[2]

    def sensitivity(self, index: int, target: int, patch: int, stride: int, fill):
        """The occlusion map of class ``target`` for example ``index`` (cached)."""
        def compute():
            return occlusion.sensitivity_map(self.model, self.x[index], target, patch=patch,
                                             stride=stride, fill=fill, batch_size=self.batch_size,
                                             strategy="auto")

        return self._maps.get((index, target, patch, stride, fill), compute)

    def _on_label(self):
        n = len(self.selection())      # a label no example has: ValueError, shown in the message
        with self._quiet():
            self.example.value = 0
            self.example.max = n - 1
        self._draw()

    def _explained_class(self, index: int, predicted: int) -> int:
        """The class the ``target`` control names for example ``index``."""
        if self.target.value == "predicted":
            return predicted
        if self.target.value == "true":
            return int(self.y[index])
        return self.target.value

    def _draw(self):
        index = int(self.selection()[self.example.value])
        probs = self.probabilities[index]
        predicted = int(np.argmax(probs))
        target = self._explained_class(index, predicted)
        patch, stride, fill = self.patch.value, self.stride.value, self.fill.value
        result = self.sensitivity(index, target, patch, stride, fill)
        label = "" if self.y is None else f", label {self.y[index]}"
        self.info.value = (f"example #{index}{label}: predicted {predicted} "
                           f"(p = {probs[predicted]:.2f})")
        self.state.update(index=index, label=None if self.y is None else int(self.y[index]),
                          target=target, patch=patch, stride=stride, fill=fill, result=result,
                          probabilities=probs)
        self._show(self.map_image, "map_png", (index, target, patch, stride, fill),
                   lambda: plot.occlusion_map(self.x[index], result, size=2.2, title=(
                       f"p({target}) when a {patch}x{patch} patch hides the pixels around each "
                       "location")))
        self._show(self.probs_image, "probs_png", (index, target), lambda: plot.probabilities(
            probs, highlight=target, title=f"probabilities (orange: class {target})"))
