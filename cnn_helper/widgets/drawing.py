r"""The drawing-pad explorer: draw a digit (or erase part of one) and watch the CNN follow.

The lecture's toolbox runs live on a webcam; for MNIST the webcam is a drawing pad. After each
stroke the explorer shows the 28x28 input as the CNN sees it (``drawing.mnist_input``: scaled into
20x20 and centred by mass, as MNIST's digits were), the class probabilities, the saliency map of
the explained class and every activation map of the chosen layer, in one figure
(``plot.panels.drawing_panels``); the occlusion map on demand (a button: it runs 784 forward
passes). The pad is an anywidget (``DrawingPad``): its JavaScript (``drawing_pad.js``, shipped in
the package) runs in JupyterLab without internet.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import anywidget
import ipywidgets as widgets
import numpy as np
import traitlets
from ipywidgets.widgets.trait_types import bytes_serialization

from .. import _checks, _graph, drawing, features, occlusion, plot, saliency
from ..plot import panels
from .base import Explorer, figure_png, header, image_widget, tag
from .base import panels as side_by_side
from .feature import map_layers


class DrawingPad(anywidget.AnyWidget):
    """A square canvas to draw on (``side`` pixels); its ink comes back to Python as ``pixels``.

    Traits: ``tool`` ("pen" or "eraser"), ``pen_width`` (pixels), ``debounce_ms`` (the pause
    after a stroke before the ink is sent), ``pixels`` (from the browser: side x side bytes, 0
    paper, 255 ink), ``strokes`` (how many times the ink was sent), ``image`` / ``image_side`` /
    ``loads`` (from Python: an image drawn enlarged on the pad, see ``show``).
    """

    _esm = Path(__file__).with_name("drawing_pad.js")
    _css = """
    .cnnh-pad-canvas { width: 280px; height: 280px; border: 1px solid #888; background: white;
                       cursor: crosshair; touch-action: none; }
    """
    side = traitlets.Int(280).tag(sync=True)
    tool = traitlets.Unicode("pen").tag(sync=True)
    pen_width = traitlets.Float(20.0).tag(sync=True)
    debounce_ms = traitlets.Int(60).tag(sync=True)
    pixels = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)   # bytes, not memoryview
    strokes = traitlets.Int(0).tag(sync=True)
    image = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)
    image_side = traitlets.Int(0).tag(sync=True)
    loads = traitlets.Int(0).tag(sync=True)

    def ink(self) -> np.ndarray:
        """The ink the browser sent last, (side, side) float32 in [0, 1] (zeros before any)."""
        if len(self.pixels) != self.side ** 2:
            return np.zeros((self.side, self.side), np.float32)
        return np.frombuffer(self.pixels, np.uint8).reshape(self.side, self.side) / np.float32(255)

    def show(self, image=None):
        """Put ``image`` (n, n) or (n, n, 1) with ink in [0, 1] on the pad, enlarged to fill it;
        None clears the pad."""
        if image is None:
            data, n = b"", 0
        else:
            a = np.asarray(image, dtype=np.float32).reshape(np.shape(image)[:2])
            data, n = (np.clip(a, 0, 1) * 255).round().astype(np.uint8).tobytes(), a.shape[0]
        with self.hold_sync():
            self.image, self.image_side = data, n
            self.loads += 1


class DrawingExplorer(Explorer):
    r"""Draw a digit; see what the CNN sees, predicts, looks at and computes, after each stroke.

    model : a Keras CNN for 28x28 grey digits in [0, 1] (the course CNN)
    x, y  : digits to start from ("start from test digit #i") and their labels (optional)
    layer : the layer whose maps are shown first (default: the second map layer, conv2 for ours)
    rule  : the saliency's backward rule: "gradient", "guided" or "deconvnet"
    start : index of the digit of x on the pad at first (default: an empty pad)
    side, pen_width : the pad's size and the pen's width in pixels (the pad is scaled by
            ``drawing.mnist_input``, so only the ratio of the two matters: 280 and 20 give MNIST's
            strokes, about 2 pixels wide in the 20-pixel box)

    Controls: ``pad`` (the ``DrawingPad``), ``tool`` (pen / eraser), ``pen_width`` (IntSlider),
    ``clear`` (Button), ``digit`` (BoundedIntText) and ``load`` (Button: put x[digit] on the
    pad), ``layer`` (Dropdown), ``target`` (Dropdown: "predicted" or a class), ``occlude``
    (Button: compute the occlusion map of the current drawing).
    state: ink (side, side), input (28, 28, 1), probabilities (10,), predicted, target, layer,
    maps (h, w, K), saliency (28, 28, 1), occlusion (``OcclusionMap`` or None), and the PNGs
    panels_png, occlusion_png.

    >>> de = DrawingExplorer(cnnh.model(), cnnh.x_test, cnnh.y_test, start=0)
    >>> de                                              # in a notebook cell: draw on it
    >>> de.draw(drawing.stroke(de.state["ink"], [(60, 40), (60, 240)], width=20))   # from code
    """

    css_class = "cnnh-drawing-explorer"

    def __init__(self, model, x=None, y=None, layer=None, rule: str = "gradient", start=None,
                 side: int = 280, pen_width: int = 20, batch_size=_checks.BATCH_SIZE):
        super().__init__()
        self._check_model(model)
        if x is not None:
            self._use_data(model, x, y)
        else:
            self.model, self.x, self.y = model, None, None
        self.rule = _checks.one_of(rule, "rule", saliency.RULES)
        self.batch_size = batch_size
        self.head = _graph.output_layer(model).name
        layers = map_layers(model)
        first = layer if layer is not None else layers[min(2, len(layers) - 1)]
        if first not in layers:
            raise ValueError(f"layer {first!r} has no 2-D maps to show; choose among {layers}")
        self._make_controls(layers, first, _checks.positive_int(side, "side"), pen_width)
        self.widget = self._layout()
        self._connect()
        self.ink = np.zeros((side, side), np.float32)
        self.state["occlusion"] = None
        self._views = {}                 # layer -> DrawingPanels
        if start is not None:
            self.digit.value = self._check_digit(start)
            self._guard(self._load)
        else:
            self._guard(self._draw)

    @staticmethod
    def _check_model(model):
        shape = _graph.input_shape(model)
        if tuple(shape) != (drawing.SIZE, drawing.SIZE, 1):
            raise ValueError(f"model {model.name!r} takes inputs of shape {shape}; the drawing "
                             "pad makes MNIST digits, (28, 28, 1) grey images in [0, 1]")

    def _check_digit(self, index) -> int:
        if self.x is None:
            raise ValueError("no digits to start from: give x (e.g. cnnh.x_test)")
        if not _checks.is_int(index) or not 0 <= index < len(self.x):
            raise ValueError(f"start {index!r} is not an index of x: 0..{len(self.x) - 1}")
        return int(index)

    def _make_controls(self, layers, first, side, pen_width):
        self.pad = DrawingPad(side=side, pen_width=float(pen_width))
        self.tool = widgets.ToggleButtons(options=["pen", "eraser"], value="pen",
                                          style={"button_width": "70px"})
        self.pen_width = widgets.IntSlider(int(pen_width), 4, 60, description="width",
                                           continuous_update=False,
                                           layout=widgets.Layout(width="240px"))
        self.clear = widgets.Button(description="clear", layout=widgets.Layout(width="80px"))
        n = 0 if self.x is None else len(self.x) - 1
        self.digit = widgets.BoundedIntText(0, min=0, max=n, description="test digit #",
                                            disabled=self.x is None,
                                            layout=widgets.Layout(width="180px"))
        self.load = widgets.Button(description="start from it", disabled=self.x is None,
                                   layout=widgets.Layout(width="110px"))
        self.layer = widgets.Dropdown(options=layers, value=first, description="layer l",
                                      layout=widgets.Layout(width="200px"))
        self.target = widgets.Dropdown(options=[("predicted", "predicted")] + [
            (str(c), c) for c in range(features.output_shape(self.model, self.head)[-1])],
            value="predicted", description="class", layout=widgets.Layout(width="200px"))
        self.occlude = widgets.Button(description="occlusion map", icon="th")
        tag({"pad": self.pad, "tool": self.tool, "pen-width": self.pen_width,
             "clear": self.clear, "digit": self.digit, "load": self.load, "layer": self.layer,
             "target": self.target, "occlude": self.occlude})
        self.info = widgets.HTML()
        self.panels_image = image_widget("cnnh-panels")
        self.occlusion_image = image_widget("cnnh-occlusion")
        self.occlusion_image.layout.display = "none"

    def _layout(self):
        box = widgets.VBox([
            widgets.HBox([self.tool, self.pen_width, self.clear, self.digit, self.load]),
            widgets.HBox([self.layer, self.target, self.occlude]),
            self.message,
            side_by_side(widgets.VBox([header("draw a digit"), self.pad]),
                         widgets.VBox([self.info, self.panels_image, self.occlusion_image])),
        ])
        box.add_class(self.css_class)
        return box

    def _connect(self):
        widgets.link((self.tool, "value"), (self.pad, "tool"))
        widgets.link((self.pen_width, "value"), (self.pad, "pen_width"))
        self.pad.observe(lambda change: self._guard(self._on_pixels), names="pixels")
        self._observe({self.layer: self._draw, self.target: self._draw})
        self.clear.on_click(lambda _: self._guard(self._clear))
        self.load.on_click(lambda _: self._guard(self._load))
        self.occlude.on_click(lambda _: self._guard(self._occlude))

    def __repr__(self):
        return (f"DrawingExplorer(layer={self.layer.value!r}, class={self.target.value!r}, "
                f"tool={self.tool.value!r})")

    # -------------------------------------------------------------- what the user does

    def draw(self, ink):
        """Replace the pad's ink by ``ink`` (side, side) in [0, 1] and update, as a stroke in
        the browser does (``drawing.stroke`` draws one from code)."""
        ink = np.asarray(ink, dtype=np.float32)
        if ink.shape != self.ink.shape:
            raise ValueError(f"ink has shape {ink.shape}; the pad is {self.ink.shape}")
        data = (np.clip(ink, 0, 1) * 255).round().astype(np.uint8).tobytes()
        self.pad.pixels = data                         # what the browser sends after a stroke

    def _on_pixels(self):
        self.ink = self.pad.ink()
        self._draw()

    def _clear(self):
        self.pad.show(None)
        self.ink = np.zeros_like(self.ink)
        self._draw()

    def _load(self):
        index = self._check_digit(self.digit.value)
        digit = self.x[index, ..., 0]
        self.pad.show(digit)
        self.ink = drawing.enlarge(digit, self.ink.shape[0])
        self._draw()

    # -------------------------------------------------------------- computing and drawing

    def _draw(self):
        x = drawing.mnist_input(self.ink)
        layer = self.layer.value
        acts = features.activations(self.model, x, [layer, self.head], self.batch_size)
        p = acts[self.head]
        predicted = int(np.argmax(p))
        target = predicted if self.target.value == "predicted" else int(self.target.value)
        s = saliency.gradient(self.model, x, target, rule=self.rule, batch_size=self.batch_size)
        empty = " (the pad is empty: draw a digit)" if not x.any() else ""
        self.info.value = f"predicted {predicted} (p = {p[predicted]:.2f}){empty}"
        self.state.update(ink=self.ink, input=x, probabilities=p, predicted=predicted,
                          target=target, layer=layer, maps=acts[layer], saliency=s,
                          occlusion=None)
        self.occlusion_image.layout.display = "none"
        key = ("panels_png", hashlib.sha1(x.tobytes()).hexdigest(), layer, target)
        png = self._pngs.get(key, lambda: figure_png(self._view(layer).update(
            x, p, acts[layer], s, target), compress_level=1))
        self.state["panels_png"] = self.panels_image.value = png

    def _view(self, layer: str):
        """The panels' figure of ``layer`` (``plot.panels.DrawingPanels``), made once."""
        if layer not in self._views:
            self._views[layer] = panels.DrawingPanels(
                len(self.state["probabilities"]), self.state["maps"].shape, layer,
                self.state["input"].shape[:2])
        return self._views[layer]

    def _occlude(self):
        x, target = self.state["input"], self.state["target"]
        result = occlusion.sensitivity_map(self.model, x, target, patch=4, stride=1,
                                           fill="extreme", batch_size=self.batch_size)
        self.state["occlusion"] = result
        key = (hashlib.sha1(x.tobytes()).hexdigest(), target)
        self._show(self.occlusion_image, "occlusion_png", key, lambda: plot.occlusion_map(
            x, result, size=2.0, title=f"p({target}) when a bright 4x4 patch hides the pixels "
                                       "around each location"))
        self.occlusion_image.layout.display = None
