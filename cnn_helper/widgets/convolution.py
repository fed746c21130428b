"""The convolution explorer: choose or edit a 3x3 filter and an input; see input, filter and the
output of ``convolution.apply_filt_2d`` (drawn by ``plot.convolutions``)."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .. import convolution, plot
from .. import data as data_mod
from .base import Explorer, header, image_widget, tag


def _teaching_filters(filters) -> dict:
    """The filters to offer (default: ``convolution.filters()``), each 3x3."""
    filters = convolution.filters() if filters is None else dict(filters)
    for name, f in filters.items():
        if np.shape(f) != (3, 3):
            raise ValueError(f"filter {name!r} has shape {np.shape(f)}; the explorer edits 3x3 "
                             "filters")
    return filters


class ConvolutionExplorer(Explorer):
    """Choose (or edit) a 3x3 filter and an input; see input, filter and output of the convolution.

    out[r, c] = sum_ij F[i, j] img_pad[r + i, c + j]  (``convolution.apply_filt_2d``: the filter
    centred at every input location, zero padding).

    digits  : MNIST images (N, 28, 28[, 1]) to offer as input (default: loaded from
              ``cnn_helper.data`` when "MNIST digit" is first chosen)
    filters : {name: 3x3 array} (default: ``convolution.filters()``, the teaching filters)

    Controls: ``filter`` (Dropdown of the filter names and "custom"), ``weights`` (9 FloatText,
    row by row; editing one makes the filter "custom"), ``source`` ("synthetic image" /
    "MNIST digit"), ``digit`` (IntSlider).
    state: filter_name, filter (3x3), input (2-D), output (2-D), png.
    """

    css_class = "cnnh-convolution-explorer"
    SOURCES = ("synthetic image", "MNIST digit")
    CUSTOM = "custom"

    def __init__(self, digits=None, filters=None, img=None):
        super().__init__()
        self.filters = _teaching_filters(filters)
        self.img = convolution.create_img() if img is None else np.asarray(img, dtype=np.float32)
        self._digits = digits
        weights = self._make_controls()
        self.widget = widgets.VBox([
            widgets.HBox([widgets.VBox([self.filter, self.source, self.digit]),
                          widgets.VBox([header("filter weights F (edit me)"), weights])]),
            self.message,
            self.image,
        ])
        self.widget.add_class(self.css_class)
        self._observe({self.filter: self._on_filter, self.source: self._on_source,
                       self.digit: self._draw, **{w: self._on_weight for w in self.weights}})
        self._guard(self._draw)

    def _make_controls(self):
        """The controls and the image; returns the 3x3 grid of weight boxes."""
        first = next(iter(self.filters))
        self.filter = widgets.Dropdown(options=list(self.filters) + [self.CUSTOM], value=first,
                                       description="filter")
        self.weights = [widgets.FloatText(value=float(v), step=0.5,
                                          layout=widgets.Layout(width="70px"))
                        for v in np.asarray(self.filters[first]).ravel()]
        self.source = widgets.ToggleButtons(options=self.SOURCES, value=self.SOURCES[0],
                                            description="input")
        last = 0 if self._digits is None else len(self._digits) - 1
        self.digit = widgets.IntSlider(0, 0, last, description="digit", continuous_update=False,
                                       disabled=True)
        tag({"filter": self.filter, "source": self.source, "digit": self.digit})
        self.image = image_widget("cnnh-convolution")
        weights = widgets.GridBox(self.weights, layout=widgets.Layout(
            grid_template_columns="repeat(3, 75px)", grid_gap="2px"))
        weights.add_class("cnnh-weights")
        return weights

    def __repr__(self):
        digit = f", digit={self.digit.value}" if self.source.value == self.SOURCES[1] else ""
        return (f"ConvolutionExplorer(filter={self.filter.value!r}, "
                f"input={self.source.value!r}{digit})")

    def digits(self):
        """The MNIST digits offered as input (loaded once, on first use)."""
        if self._digits is None:
            self._digits = data_mod.load_mnist(verbose=False)[1][0]
            self.digit.max = len(self._digits) - 1
        return self._digits

    def _on_filter(self):
        if self.filter.value != self.CUSTOM:
            with self._quiet():
                for w, v in zip(self.weights, np.asarray(self.filters[self.filter.value]).ravel()):
                    w.value = float(v)
        self._draw()

    def _on_weight(self):
        name = self.filter.value
        if name != self.CUSTOM and not np.array_equal(self._filter(), self.filters[name]):
            with self._quiet():
                self.filter.value = self.CUSTOM
        self._draw()

    def _on_source(self):
        self.digit.disabled = self.source.value != self.SOURCES[1]
        self._draw()

    def _filter(self):
        return np.array([w.value for w in self.weights], dtype=np.float32).reshape(3, 3)

    def _input(self):
        if self.source.value == self.SOURCES[0]:
            return self.img
        img = np.asarray(self.digits()[self.digit.value], dtype=np.float32)
        return img[..., 0] if img.ndim == 3 else img

    def _draw(self):
        name, filt, img = self.filter.value, self._filter(), self._input()
        if not np.all(np.isfinite(filt)):
            raise ValueError(f"the filter weights must be numbers, got {filt.tolist()}")
        out = convolution.apply_filt_2d(img, filt)
        self.state.update(filter_name=name, filter=filt, input=img, output=out)
        self._show(self.image, "png", (name, filt.tobytes(), self.source.value, self.digit.value),
                   lambda: plot.convolutions(img, {name: out}, {name: filt},
                                             labels=max(img.shape) <= 12))
