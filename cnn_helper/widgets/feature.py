r"""The feature explorer: choose a layer l, a channel k and the pooling of the feature
:math:`\y_{(l),k}`; see the layer's maps, the feature's maximally activating examples and their
receptive-field patches with the saliency of the max (Zeiler & Fergus), and the image optimized
to excite it (feature visualization)."""
from __future__ import annotations

import ipywidgets as widgets

from .. import (
    _checks,
    _graph,
    feature_visualization,
    features,
    inverting,
    max_activation,
    plot,
    saliency,
)
from ..features import Feature
from .base import LRU, Explorer, header, image_widget, panels, tag


def map_layers(model) -> list[str]:
    """Names of the layers whose output is a stack of 2-D maps (H, W, C): conv and pooling
    layers."""
    import keras

    return [name for name, path in _graph.walk(model)
            if not isinstance(path[-1], keras.layers.InputLayer)
            and len(features.output_shape(model, name)) == 3]


def _offered_layers(model, layers) -> list[str]:
    """The layers to offer: ``layers`` (default: every map layer), each one with 2-D maps."""
    offered = map_layers(model)
    chosen = offered if layers is None else list(layers)
    bad = [layer for layer in chosen if layer not in offered]
    if bad or not chosen:
        raise ValueError(f"layers {bad or chosen} have no 2-D maps to explore; choose among "
                         f"{offered}")
    return chosen


class FeatureExplorer(Explorer):
    r"""Choose a layer l, a channel k and the pooling; see what :math:`\y_{(l),k}` responds to.

    Panels: the activation maps :math:`\y_{(l)}` of the chosen example (channel k framed); the
    ``count`` maximally activating examples of the feature (pooled by max or mean over the map,
    ranked over ``x`` by ``max_activation.scan``); and, for each, the receptive field of its max
    location with the saliency of that location (``inverting.zeiler_fergus``); and the image
    optimized to excite the feature (``feature_visualization.visualize``, computed for every
    channel of the layer in one batch on the layer's first view, then cached).

    model  : a Keras CNN;  x : the data set (N, H, W, C) to rank;  y : its labels (optional, shown)
    layers : the layers to offer (default: every conv/pooling layer, see ``map_layers``)
    count  : how many maximally activating examples (the lecture's K)
    layer, channel : the first view (default: the first offered layer, channel 0)
    rule   : the backward rule of the patches' saliency: "gradient", "guided" or "deconvnet"
    visualize_steps : the optimization steps of the optimized images

    Controls: ``layer`` (Dropdown), ``channel`` (IntSlider), ``pool`` (ToggleButtons max/mean),
    ``example`` (IntSlider, index into x).
    state: layer, channel, pool, example, feature, maps (H, W, C), top (``TopExamples``),
    tied (True when all the examples shown tie: a saturated first-layer map, shown in example
    order, which the title then says), inverted (``ZeilerFergus``), visualization (the layer's
    ``FeatureVisualization``), optimized (the image of channel k), and the PNGs maps_png, top_png,
    patches_png, optimized_png.
    """

    css_class = "cnnh-feature-explorer"

    def __init__(self, model, x, y=None, layers=None, count: int = 9, rule: str = "gradient",
                 example: int = 0, layer=None, channel: int = 0, batch_size=_checks.BATCH_SIZE,
                 visualize_steps: int = 128):
        super().__init__()
        self._use_data(model, x, y)
        self.layers = _offered_layers(model, layers)
        self.rule = _checks.one_of(rule, "rule", saliency.RULES)
        self.count, self.batch_size = count, batch_size
        self.visualize_steps = _checks.positive_int(visualize_steps, "visualize_steps")
        self._n_channels = {la: features.output_shape(model, la)[-1] for la in self.layers}
        self._acts = LRU()           # example -> {layer: maps}
        self._scans = {}             # pool -> {layer: LayerScan}
        self._inverted = LRU()       # feature -> ZeilerFergus
        self._visualized = {}        # (layer, pool) -> FeatureVisualization of every channel
        self._make_controls(example, layer, channel)
        self.widget = self._layout()
        for pool in self.pool.options:      # both poolings now, so a click never waits for a scan
            self.scan(pool)
        self._observe({self.layer: self._on_layer, self.channel: self._draw_feature,
                       self.pool: self._draw_feature, self.example: self._draw_maps})
        self._guard(self._draw_feature)

    def _make_controls(self, example: int, layer, channel: int):
        first = self.layers[0] if layer is None else layer
        if first not in self.layers:
            raise ValueError(f"layer {first!r} is not offered; choose among {self.layers}")
        n = self._n_channels[first]
        if not _checks.is_int(channel) or not 0 <= channel < n:
            raise ValueError(f"channel {channel!r} is not a channel of {first!r}: 0..{n - 1}")
        self.layer = widgets.Dropdown(options=self.layers, value=first, description="layer l")
        self.channel = widgets.IntSlider(int(channel), 0, n - 1, description="channel k",
                                         continuous_update=False)
        self.pool = widgets.ToggleButtons(options=list(features.POOLS), value="max",
                                          description="pooling", style={"button_width": "60px"})
        self.example = widgets.IntSlider(int(example), 0, len(self.x) - 1, description="example",
                                         continuous_update=False)
        tag({"layer": self.layer, "channel": self.channel, "pool": self.pool,
             "example": self.example})
        self.maps_image = image_widget("cnnh-maps")
        self.top_image = image_widget("cnnh-top")
        self.patches_image = image_widget("cnnh-patches")
        self.optimized_image = image_widget("cnnh-optimized")

    def _layout(self):
        box = widgets.VBox([
            widgets.HBox([self.layer, self.channel, self.pool]),
            self.message,
            panels(widgets.VBox([header("activation maps of the layer for one example"),
                                 self.example, self.maps_image]),
                   widgets.VBox([header(f"the {self.count} maximally activating examples"),
                                 self.top_image,
                                 header("their receptive fields: patch and saliency"),
                                 self.patches_image]),
                   widgets.VBox([header("an image optimized to excite it"),
                                 self.optimized_image])),
        ])
        box.add_class(self.css_class)
        return box

    def __repr__(self):
        return (f"FeatureExplorer(layer={self.layer.value!r}, channel={self.channel.value}, "
                f"pool={self.pool.value!r}, example={self.example.value})")

    # -------------------------------------------------------------- cached computations

    def activations(self, example: int) -> dict:
        """``{layer: (H, W, C)}`` for one example, every offered layer in one forward pass
        (cached)."""
        return self._acts.get(example, lambda: features.activations(
            self.model, self.x[example], self.layers, self.batch_size))

    def scan(self, pool: str) -> dict:
        """Top ``count`` of every channel of every offered layer over ``x`` (one pass per pooling,
        cached)."""
        if pool not in self._scans:
            self._scans[pool] = max_activation.scan(self.model, self.x, self.layers,
                                                    count=self.count, pool=pool,
                                                    batch_size=self.batch_size, progress=False)
        return self._scans[pool]

    def inverted(self, feature: Feature, top):
        """The Zeiler & Fergus saliency + patch result of ``feature`` (cached); ``top``: its
        ranking from the scan."""
        return self._inverted.get(feature, lambda: inverting.zeiler_fergus(
            self.model, self.x, feature, count=self.count, rule=self.rule,
            batch_size=self.batch_size, examples=top))

    def visualization(self, layer: str, pool: str):
        """Images optimized to excite every channel of ``layer`` pooled by ``pool``: ONE batched
        ``feature_visualization.visualize`` call per layer and pooling (cached)."""
        if (layer, pool) not in self._visualized:
            targets = [Feature(layer, k, pool=pool) for k in range(self._n_channels[layer])]
            self._visualized[layer, pool] = feature_visualization.visualize(
                self.model, targets, steps=self.visualize_steps, batch_size=self.batch_size,
                progress=False)
        return self._visualized[layer, pool]

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
        layer, channel, pool = self.layer.value, self.channel.value, self.pool.value
        feature = features.check_feature(self.model, Feature(layer, channel, pool=pool))
        top = self.scan(pool)[layer].channel(channel)
        idx = top.high.indices
        tied = bool(len(idx) > 1 and top.high.values[-1] == top.high.values[0])   # all shown tie
        self.state.update(layer=layer, channel=channel, pool=pool, feature=feature, top=top,
                          tied=tied)
        self._draw_maps()

        titles = [f"#{i}: {v:.2f}" + ("" if self.y is None else f" ({self.y[i]})")
                  for i, v in zip(idx, top.high.values)]
        self._show(self.top_image, "top_png", feature, lambda: plot.montage(
            self.x[idx], titles, cols=3, size=1.25,
            title=f"{pool} of {Feature(layer, channel)} over the map:\nhighest of {len(self.x)} "
                  f"examples" + ("" if self.y is None else " (label)")
                  + (f"\nall {len(idx)} tie at {top.high.values[0]:.2f}: shown in example order"
                     if tied else "")))

        zf = self.state["inverted"] = self.inverted(feature, top)
        self._show(self.patches_image, "patches_png", feature,
                   lambda: plot.zeiler_fergus_montage(zf, cols=3, size=0.9))
        self._draw_optimized(feature)

    def _draw_optimized(self, feature: Feature):
        """The optimized image of channel k, last: the other panels are shown while a layer's
        first view computes its images."""
        vis = self.state["visualization"] = self.visualization(feature.layer, feature.pool)
        self.state["optimized"] = vis.images[feature.channel]
        self._show(self.optimized_image, "optimized_png", feature,
                   lambda: plot.visualization_of(vis, feature.channel, size=2.2))
