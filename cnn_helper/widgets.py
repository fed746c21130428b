r"""Interactive explorers for class: ipywidgets built from the package's functions (no maths here).

Three explorers, each a class with

- ``.widget``   the ipywidgets container to display (``display(explorer)`` or ``explorer.show()``),
- its controls as attributes (``.layer``, ``.channel``, ``.patch``, ...): set ``.value`` from code
  or move them in the notebook, and the view updates,
- ``.state``    a dict of what it computed and drew last (arrays, values, the PNG bytes shown),
- ``.message``  an HTML area that shows a bad value (an empty label selection, a patch larger than
  the image, ...) instead of raising.

``FeatureExplorer(model, x, y)``
    choose a layer l, a channel k and the pooling (max / mean) of the feature
    :math:`\y_{(l),k}`; it shows the layer's activation maps :math:`\y_{(l)}` for one example, the
    feature's 9 maximally activating examples, and their receptive-field patches with the saliency
    of the max location (Zeiler & Fergus).
``OcclusionExplorer(model, x, y)``
    choose an example (by index, or the n-th example of a label), the patch size, the stride, the
    fill value and the class c; it shows the occlusion sensitivity map of :math:`\y_{(L),c}` over
    the image and the predicted probabilities.
``ConvolutionExplorer(digits)``
    choose a teaching filter or edit a 3x3 filter, and an input (the synthetic image or an MNIST
    digit); it shows input, filter and output.

Everything that can be cached is: the activations of an example for every layer, one scan of the
data set for the top-K of every channel of every layer (per pooling), predictions, Zeiler & Fergus
results and occlusion maps. Figures are drawn by ``cnn_helper.plot`` and shown as PNG bytes in an
``ipywidgets.Image`` (so a browser test can compare what is rendered).

Example
-------
>>> cnnh = cnn_helper.CNN_Helper()
>>> fe = FeatureExplorer(cnnh.model(), cnnh.x_test, cnnh.y_test)
>>> fe                                   # in a notebook cell: the explorer
>>> fe.channel.value = 5                 # the view follows
>>> fe.state["top"].high.indices         # the 9 maximally activating examples of conv1, k=5
"""
from __future__ import annotations

import contextlib
import html
import io
from collections import OrderedDict

import ipywidgets as widgets
import numpy as np

from . import convolution, features, inverting, max_activation, occlusion, plot
from . import data as data_mod
from .features import Feature

DPI = 80            # resolution of the PNGs shown in the widgets: sharp enough, quick to draw
CACHE_SIZE = 64     # examples (activations) or occlusion maps kept per explorer


def figure_png(fig, dpi: int = DPI) -> bytes:
    """The PNG bytes of a matplotlib figure (what an explorer's ``ipywidgets.Image`` shows)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class _LRU(OrderedDict):
    """A small least-recently-used cache: ``get(key, compute)``."""

    def __init__(self, size: int = CACHE_SIZE):
        super().__init__()
        self.size = size

    def get(self, key, compute):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = compute()
        if len(self) > self.size:
            self.popitem(last=False)
        return value


def _image_widget(css_class: str):
    # shown at the PNG's own size (not stretched to the box), shrunk only to fit a narrow window
    img = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto",
                                                            align_self="flex-start"))
    img.add_class(css_class)
    return img


def _panels(*children):
    """Panels side by side, wrapping below each other in a narrow window."""
    return widgets.HBox(list(children), layout=widgets.Layout(flex_flow="row wrap"))


def _header(text: str):
    return widgets.HTML(f"<b>{html.escape(text)}</b>")


class Explorer:
    """What the explorers share: ``widget``, ``state``, the ``message`` area, display and updates.

    A subclass builds its controls and images, ``_observe``s the controls and draws once. An
    update runs inside ``_guard``: a ValueError/TypeError (the package's answer to a bad value)
    is shown in ``message`` and stored in ``state["error"]``; the images keep the last good view.
    Drawn PNGs are cached by what they show, so going back to a view costs no drawing.
    """

    css_class = "cnnh-explorer"

    def __init__(self):
        self.state = {"error": None}
        self.message = widgets.HTML(layout=widgets.Layout(min_height="1.5em"))
        self.message.add_class("cnnh-message")
        self._quiet_depth = 0
        self._pngs = _LRU()

    def _use_data(self, model, x, y):
        """Keep ``model``, the images ``x`` (checked against its input) and their labels ``y``."""
        self.model = model
        self.x, _ = features.check_input(model, x)
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"y has {len(self.y)} labels but x has {len(self.x)} examples")

    # -------------------------------------------------------------- updates

    @contextlib.contextmanager
    def _quiet(self):
        """Change several controls without an update per change."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    def _observe(self, handlers: dict):
        """``{control: handler}``: call handler() when the control's value changes."""
        def make(handler):
            def on_change(change):
                if not self._quiet_depth:
                    self._guard(handler)
            return on_change
        for control, handler in handlers.items():
            control.observe(make(handler), names="value")

    def _guard(self, update):
        try:
            update()
        except (ValueError, TypeError) as e:
            self.state["error"] = str(e)
            self.message.value = (f'<span style="color:#b00020">&#9888; {html.escape(str(e))}</span>')
            return False
        self.state["error"] = None
        self.message.value = ""
        return True

    def _show(self, image, name: str, key, draw):
        """Show in ``image`` the PNG of ``draw()`` (a plot function's (fig, axes)); ``key`` says what
        it shows, so the same view is drawn once. The bytes are kept in ``state[name]``."""
        png = self._pngs.get((name, key), lambda: figure_png(draw()[0]))
        self.state[name] = png
        image.value = png          # the same bytes as shown: no change, nothing sent

    # -------------------------------------------------------------- display

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/plain"] = repr(self)     # short and stable (no widget ids, no image bytes)
        return bundle

    def show(self):
        """Display the explorer (the same as ending a notebook cell with it)."""
        from IPython.display import display
        display(self)

    def close(self):
        """Close the explorer's widgets (they disappear from the notebook; the kernel side is freed)."""
        def close(w):
            for child in getattr(w, "children", ()):
                close(child)
            w.close()
        close(self.widget)


# ======================================================================= feature explorer


def map_layers(model) -> list[str]:
    """Names of the layers whose output is a stack of 2-D maps (H, W, C): conv and pooling layers."""
    import keras

    names = []
    for name in features.layer_names(model):
        if isinstance(features.find_layer(model, name)[-1], keras.layers.InputLayer):
            continue
        if len(features.output_shape(model, name)) == 3:
            names.append(name)
    return names


class FeatureExplorer(Explorer):
    r"""Choose a layer l, a channel k and the pooling; see what :math:`\y_{(l),k}` responds to.

    Panels: the activation maps :math:`\y_{(l)}` of the chosen example (channel k framed); the K
    maximally activating examples of the feature (pooled by max or mean over the map, ranked over
    ``x``); and, for each, the receptive field of its max location with the saliency of that
    location (``inverting.zeiler_fergus``).

    model  : a Keras CNN;  x : the data set (N, H, W, C) to rank;  y : its labels (optional, shown)
    layers : the layers to offer (default: every conv/pooling layer, see ``map_layers``)
    method : the saliency method of the patches: "saliency", "guided_backprop" or "deconvnet"

    Controls: ``layer`` (Dropdown), ``channel`` (IntSlider), ``reduce`` (ToggleButtons max/mean),
    ``example`` (IntSlider, index into x).
    state: layer, channel, reduce, example, feature, maps (H, W, C), top (``TopK``),
    inverted (``ZeilerFergus``), and the PNGs maps_png, top_png, patches_png.
    """

    css_class = "cnnh-feature-explorer"

    def __init__(self, model, x, y=None, layers=None, k: int = 9, method: str = "saliency",
                 example: int = 0, batch_size: int = 256):
        super().__init__()
        self._use_data(model, x, y)
        offered = map_layers(model)
        self.layers = offered if layers is None else list(layers)
        bad = [la for la in self.layers if la not in offered]
        if bad or not self.layers:
            raise ValueError(f"layers {bad or self.layers} have no 2-D maps to explore; choose among "
                             f"{offered}")
        if method not in inverting.METHODS:
            raise ValueError(f"method {method!r} is not one of {tuple(inverting.METHODS)}")
        self.k, self.method, self.batch_size = k, method, batch_size
        self._n_channels = {la: features.output_shape(model, la)[-1] for la in self.layers}
        self._acts = _LRU()          # example -> {layer: maps}
        self._scans = {}             # reduce -> {layer: LayerScan}
        self._inverted = _LRU()      # feature -> ZeilerFergus

        first = self.layers[0]
        self.layer = widgets.Dropdown(options=self.layers, value=first, description="layer l")
        self.channel = widgets.IntSlider(0, 0, self._n_channels[first] - 1, description="channel k",
                                         continuous_update=False)
        self.reduce = widgets.ToggleButtons(options=["max", "mean"], value="max",
                                            description="pooling", style={"button_width": "60px"})
        self.example = widgets.IntSlider(int(example), 0, len(self.x) - 1, description="example",
                                         continuous_update=False)
        for control, name in ((self.layer, "layer"), (self.channel, "channel"),
                              (self.reduce, "reduce"), (self.example, "example")):
            control.add_class(f"cnnh-{name}")
        self.maps_image = _image_widget("cnnh-maps")
        self.top_image = _image_widget("cnnh-top")
        self.patches_image = _image_widget("cnnh-patches")

        self.widget = widgets.VBox([
            widgets.HBox([self.layer, self.channel, self.reduce]),
            self.message,
            _panels(widgets.VBox([_header("activation maps of the layer for one example"),
                                  self.example, self.maps_image]),
                    widgets.VBox([_header(f"the {self.k} maximally activating examples"),
                                  self.top_image,
                                  _header("their receptive fields: patch and saliency"),
                                  self.patches_image])),
        ])
        self.widget.add_class(self.css_class)
        for reduce in self.reduce.options:      # both poolings now, so a click never waits for a scan
            self.scan(reduce)
        self._observe({self.layer: self._on_layer, self.channel: self._draw_feature,
                       self.reduce: self._draw_feature, self.example: self._draw_maps})
        self._guard(self._draw_feature)

    def __repr__(self):
        return (f"FeatureExplorer(layer={self.layer.value!r}, channel={self.channel.value}, "
                f"reduce={self.reduce.value!r}, example={self.example.value})")

    # -------------------------------------------------------------- cached computations

    def activations(self, example: int) -> dict:
        """``{layer: (H, W, C)}`` for one example, every offered layer in one forward pass (cached)."""
        return self._acts.get(example, lambda: features.activations(
            self.model, self.x[example], self.layers, self.batch_size))

    def scan(self, reduce: str) -> dict:
        """Top-K of every channel of every offered layer over ``x`` (one pass per pooling, cached)."""
        if reduce not in self._scans:
            self._scans[reduce] = max_activation.scan(self.model, self.x, self.layers, k=self.k,
                                                      reduce=reduce, batch_size=self.batch_size,
                                                      progress=False)
        return self._scans[reduce]

    def inverted(self, feature: Feature, top):
        """The Zeiler & Fergus saliency + patch result of ``feature`` (cached)."""
        return self._inverted.get(feature, lambda: inverting.zeiler_fergus(
            self.model, self.x, feature, k=self.k, method=self.method,
            batch_size=self.batch_size, top=top))

    # -------------------------------------------------------------- updates

    def _on_layer(self):
        n = self._n_channels[self.layer.value]
        with self._quiet():
            self.channel.value = min(self.channel.value, n - 1)
            self.channel.max = n - 1
        self._draw_feature()

    def _draw_maps(self):
        layer, example, channel = self.layer.value, self.example.value, self.channel.value
        maps = self.activations(example)[layer]
        label = "" if self.y is None else f" (label {self.y[example]})"
        self.state.update(layer=layer, example=example, maps=maps)
        self._show(self.maps_image, "maps_png", (layer, example, channel),
                   lambda: plot.activation_mosaic(
                       maps, image=self.x[example], highlight=channel, width=5.5,
                       title=f"y_({layer}) of example {example}{label}; k={channel} framed"))

    def _draw_feature(self):
        layer, channel, reduce = self.layer.value, self.channel.value, self.reduce.value
        feature = features.check_feature(self.model, Feature(layer, channel, reduce=reduce))
        top = self.scan(reduce)[layer].channel(channel)
        self.state.update(layer=layer, channel=channel, reduce=reduce, feature=feature, top=top)
        self._draw_maps()

        idx = top.high.indices
        titles = [f"#{i}: {v:.2f}" + ("" if self.y is None else f" ({self.y[i]})")
                  for i, v in zip(idx, top.high.values)]
        self._show(self.top_image, "top_png", feature, lambda: plot.montage(
            self.x[idx], titles, cols=3, size=1.25,
            title=f"{reduce} of {Feature(layer, channel)} over the map:\nhighest of {len(self.x)} "
                  f"examples" + ("" if self.y is None else " (label)")))

        zf = self.state["inverted"] = self.inverted(feature, top)
        self._show(self.patches_image, "patches_png", feature,
                   lambda: plot.zeiler_fergus_montage(zf, cols=3, size=0.9))


# ======================================================================= occlusion explorer


class OcclusionExplorer(Explorer):
    r"""Hide a patch of an example everywhere in turn; see how the class probability changes.

    The map (``occlusion.sensitivity_map``, drawn by ``plot.occlusion_map``) shows the relative
    change :math:`(\y_{(L),c}|_{\x \setminus (r,c)} - \y_{(L),c}|_{\x}) / \y_{(L),c}|_{\x}`: blue
    where hiding the patch centred at (r, c) lowers the probability of class c; beside it, the
    predicted probabilities.

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
                 batch_size: int = 256):
        super().__init__()
        self._use_data(model, x, y)
        self.batch_size = batch_size
        head = features.output_layer(model).name
        self.probabilities = features.activations(model, self.x, [head], batch_size)[head]
        n_classes = self.probabilities.shape[-1]
        self._maps = _LRU()

        self.label = widgets.Dropdown(options=[("all", "all")] + [(str(c), c) for c in range(n_classes)],
                                      value="all", description="label", disabled=self.y is None,
                                      layout=widgets.Layout(width="150px"))
        self.example = widgets.IntSlider(int(example), 0, len(self.x) - 1, description="example",
                                         continuous_update=False)
        self.patch = widgets.IntText(int(patch), description="patch", layout=widgets.Layout(width="150px"))
        self.stride = widgets.IntText(int(stride), description="stride", layout=widgets.Layout(width="150px"))
        self.fill = widgets.Dropdown(options=self.FILLS, value="extreme", description="fill")
        targets = [("predicted", "predicted")] + ([("true label", "true")] if self.y is not None else [])
        self.target = widgets.Dropdown(options=targets + [(str(c), c) for c in range(n_classes)],
                                       value="predicted", description="class",
                                       layout=widgets.Layout(width="200px"))
        for control, name in ((self.label, "label"), (self.example, "example"), (self.patch, "patch"),
                              (self.stride, "stride"), (self.fill, "fill"), (self.target, "target")):
            control.add_class(f"cnnh-{name}")
        self.info = widgets.HTML()
        self.map_image = _image_widget("cnnh-occlusion")
        self.probs_image = _image_widget("cnnh-probabilities")

        self.widget = widgets.VBox([
            widgets.HBox([self.label, self.example, self.info]),
            widgets.HBox([self.patch, self.stride, self.fill, self.target]),
            self.message,
            _panels(self.map_image, self.probs_image),
        ])
        self.widget.add_class(self.css_class)
        self._observe({self.label: self._on_label, **{c: self._draw for c in (
            self.example, self.patch, self.stride, self.fill, self.target)}})
        self._guard(self._draw)

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
        return self._maps.get((index, target, patch, stride, fill), lambda: occlusion.sensitivity_map(
            self.model, self.x[index], target, patch=patch, stride=stride, fill=fill,
            batch_size=self.batch_size))

    def _on_label(self):
        n = len(self.selection())      # a label no example has: ValueError, shown in the message
        with self._quiet():
            self.example.value = 0
            self.example.max = n - 1
        self._draw()

    def _draw(self):
        index = int(self.selection()[self.example.value])
        probs = self.probabilities[index]
        predicted = int(np.argmax(probs))
        if self.target.value == "predicted":
            target = predicted
        elif self.target.value == "true":
            target = int(self.y[index])
        else:
            target = self.target.value
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
                       f"p({target}) when a {patch}x{patch} patch hides the pixels around each location")))
        self._show(self.probs_image, "probs_png", (index, target), lambda: plot.probabilities(
            probs, highlight=target, title=f"probabilities (orange: class {target})"))


# ======================================================================= convolution explorer


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
        self.filters = convolution.filters() if filters is None else dict(filters)
        for name, f in self.filters.items():
            if np.shape(f) != (3, 3):
                raise ValueError(f"filter {name!r} has shape {np.shape(f)}; the explorer edits 3x3 filters")
        self.img = convolution.create_img() if img is None else np.asarray(img, dtype=np.float32)
        self._digits = digits
        first = next(iter(self.filters))

        self.filter = widgets.Dropdown(options=list(self.filters) + [self.CUSTOM], value=first,
                                       description="filter")
        self.weights = [widgets.FloatText(value=float(v), step=0.5,
                                          layout=widgets.Layout(width="70px"))
                        for v in np.asarray(self.filters[first]).ravel()]
        self.source = widgets.ToggleButtons(options=self.SOURCES, value=self.SOURCES[0],
                                            description="input")
        self.digit = widgets.IntSlider(0, 0, 0 if digits is None else len(digits) - 1,
                                       description="digit", continuous_update=False, disabled=True)
        for control, name in ((self.filter, "filter"), (self.source, "source"),
                              (self.digit, "digit")):
            control.add_class(f"cnnh-{name}")
        self.image = _image_widget("cnnh-convolution")
        grid = widgets.GridBox(self.weights, layout=widgets.Layout(
            grid_template_columns="repeat(3, 75px)", grid_gap="2px"))
        grid.add_class("cnnh-weights")

        self.widget = widgets.VBox([
            widgets.HBox([widgets.VBox([self.filter, self.source, self.digit]),
                          widgets.VBox([_header("filter weights F (edit me)"), grid])]),
            self.message,
            self.image,
        ])
        self.widget.add_class(self.css_class)
        self._observe({self.filter: self._on_filter, self.source: self._on_source,
                       self.digit: self._draw, **{w: self._on_weight for w in self.weights}})
        self._guard(self._draw)

    def __repr__(self):
        return (f"ConvolutionExplorer(filter={self.filter.value!r}, input={self.source.value!r}"
                + (f", digit={self.digit.value}" if self.source.value == self.SOURCES[1] else "") + ")")

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
        digits = self.digits()
        img = np.asarray(digits[self.digit.value], dtype=np.float32)
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
