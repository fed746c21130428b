r"""The references a participant sees before choosing: one function per condition, in a registry.

A condition is a name and a function ``make(source, units) -> list of References`` (one per
unit, in order). ``source`` is the ``Source`` of the experiment: the model, the data x, the scan
of every layer (``max_activation.scan``: the top and bottom examples of each unit) and the
settings. Add your own condition by adding a function to ``CONDITIONS``:

>>> def blurred_exemplars(source, units):
...     refs = CONDITIONS["exemplars"](source, units)
...     return [References(scipy.ndimage.gaussian_filter(r.images, (0, 1, 1, 0)),
...                        "the top images, blurred", r.indices) for r in refs]
>>> CONDITIONS["blurred"] = blurred_exemplars
>>> study.trials(model, x_test, "conv2", conditions=("exemplars", "blurred"))

The four of the literature (Borowski et al., ICLR 2021; Zimmermann et al., NeurIPS 2021):

- "exemplars": the unit's 9 maximally activating images :math:`\text{MaxAct}_{(l),k}[:9]`;
- "visualizations": 9 feature visualizations of the unit, each from another seed
  (``feature_visualization.visualize``, ``visualization_steps`` Adam steps);
- "none": no references (the participant judges the queries alone: the baseline);
- "exemplars+saliency": the 9 exemplars with the magnitude of their saliency
  :math:`|\partial \y_{(l),idx,k} / \partial \y_{(0)}|` drawn over them (``saliency.gradient``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import feature_visualization, saliency


@dataclass(frozen=True)
class References:
    """What a trial shows above its queries.

    images   : (n, H, W, C) float32, in the data's range (n = 0 for "none")
    caption  : one sentence saying what they are (the participant reads it)
    indices  : (n,) int64, each image's index into x; -1 for a synthesized image
    overlays : None, or (n, H, W) float32 in [0, 1]: a map drawn over each image (saliency)
    """

    images: np.ndarray
    caption: str
    indices: np.ndarray
    overlays: np.ndarray | None = None

    def __post_init__(self):
        for name in ("images", "indices", "overlays"):
            value = getattr(self, name)
            if value is not None:
                value = np.array(value)
                value.flags.writeable = False          # frozen all the way down
                object.__setattr__(self, name, value)

    def __len__(self):
        return len(self.images)


@dataclass(frozen=True)
class Source:
    """What a condition may use to make references: the model, the images x, the scan of each
    layer ({layer: LayerScan}), how many references, and the settings of ``trials``."""

    model: object
    x: np.ndarray
    scans: dict
    n_references: int
    settings: dict = field(default_factory=dict)

    def top_indices(self, unit) -> np.ndarray:
        """The indices into x of the unit's ``n_references`` maximally activating examples."""
        return self.scans[unit.layer_name].high.indices[unit.channel, :self.n_references]


def exemplars(source: Source, units) -> list:
    """The unit's top images of x (Borowski et al.'s natural references), strongest first."""
    caption = f"the {source.n_references} images that activate the unit most"
    return [References(source.x[source.top_indices(unit)], caption, source.top_indices(unit))
            for unit in units]


def visualizations(source: Source, units) -> list:
    """9 feature visualizations per unit, image j from seed ``seed + j``: one ``visualize`` call
    per seed for every unit (another seed moves the start and the random transformations, so
    the 9 differ the way Borowski et al.'s did)."""
    n, settings = source.n_references, source.settings
    if not units:
        return []
    images = np.stack([feature_visualization.visualize(
        source.model, list(units), steps=settings["visualization_steps"],
        seed=settings["seed"] + j, batch_size=settings["batch_size"], progress=False).images
        for j in range(n)], axis=1)                                   # (units, n, H, W, C)
    caption = f"{n} images synthesized to activate the unit (feature visualizations)"
    return [References(images[i], caption, np.full(n, -1, np.int64)) for i in range(len(units))]


def no_references(source: Source, units) -> list:
    """No references: the participant sees the two queries only (Zimmermann et al.'s baseline)."""
    shape = (0,) + source.x.shape[1:]
    return [References(np.zeros(shape, np.float32), "no references: judge the two images alone",
                       np.zeros(0, np.int64)) for _ in units]


def exemplars_with_saliency(source: Source, units) -> list:
    r"""The exemplars, each with its saliency magnitude :math:`|\partial \y_{(l),idx,k} /
    \partial \y_{(0)}|` (max over colour channels), scaled to [0, 1] per image."""
    refs = exemplars(source, units)
    with_maps = []
    for unit, ref in zip(units, refs):
        maps = np.abs(saliency.gradient(source.model, ref.images, unit,
                                        batch_size=source.settings["batch_size"])).max(axis=-1)
        peak = maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
        maps = np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0).astype(np.float32)
        with_maps.append(References(ref.images, "the images that activate the unit most, with "
                                    "where it looks (saliency, red)", ref.indices, maps))
    return with_maps


CONDITIONS = {
    "exemplars": exemplars,
    "visualizations": visualizations,
    "none": no_references,
    "exemplars+saliency": exemplars_with_saliency,
}
"""Condition name -> ``make(source, units)``: add an entry to test your own kind of explanation."""
