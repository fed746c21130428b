r"""Interpretation by inverting: the Zeiler & Fergus "saliency + patch" figure in one call.

For a feature map k of layer l:

1. find its K maximally activating examples,
   :math:`\text{MaxAct}_{(l),k}[:K]`, ranked by :math:`\max_{idx} \y_{(l),idx,k}^{(i)}`;
2. for each, take the location of the max, :math:`idx^{(i)} = \arg\max_{idx} \y_{(l),idx,k}^{(i)}`;
3. compute the saliency of that single location,

   .. math::  s^{(i)}_{(l),idx,k,(0),idx',k'} =
              \frac{\partial \y_{(l),idx,k}^{(i)}}{\partial \y_{(0),idx',k'}^{(i)}}

   (or its guided-backprop / deconvnet variant), which is non-zero only inside the receptive
   field :math:`\mathcal{R}_{(l),idx}`;
4. crop both the saliency map and the input to :math:`\mathcal{R}_{(l),idx}`: the patch of
   :math:`\x^{(i)}` that location sees, and how each of its pixels moves the feature.

``rule`` chooses the backward pass of step 3: "gradient" (the saliency), "guided" (guided
backpropagation) or "deconvnet", as in :mod:`cnn_helper.saliency`.

Example
-------
>>> zf = zeiler_fergus(model, x_test, Feature("conv2", 5), count=9)
>>> zf.patches[0].shape          # the receptive field of conv2, clipped to the image
(8, 8, 1)
>>> fig, axes = cnn_helper.plot.zeiler_fergus(zf)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks, _graph, features, max_activation, receptive_field, saliency
from ._checks import BATCH_SIZE
from .features import Feature


@dataclass(frozen=True)
class ZeilerFergus:
    """The ``count`` maximally activating examples of a feature, each with saliency and patch.

    target    : the Feature whose top examples are shown (ranked by its max or mean pooling, or
                its value at a fixed location)
    rule      : the backward rule of the saliency: "gradient", "guided" or "deconvnet"
    indices   : (count,) indices into the data set, highest activation first
    values    : (count,) the feature's value for each
    locations : (count, n_spatial) idx of the max (or the fixed location) in the layer's map
    regions   : tuples of slices: the receptive field of each location, clipped to the image
    windows   : tuples of (lo, hi) per axis: the same fields NOT clipped (a field near the border
                reaches outside the image; plots use it to draw every patch at one scale)
    saliency  : (count, H, W, C) the full saliency map of each example (zero outside the field,
                unless ``gates`` is not empty)
    patches   : arrays: the input cropped to each region
    saliency_patches : arrays: the saliency cropped to each region
    gates     : the global gates the regions leave out (``gates="local"``, e.g. EfficientNet's
                squeeze-and-excitation): the regions are the field of the local path, and the
                saliency also has the (small) share that reaches the whole image through each
                gate's channel scale; () when there is none
    """

    target: Feature
    rule: str
    indices: np.ndarray
    values: np.ndarray
    locations: np.ndarray
    regions: tuple
    windows: tuple
    saliency: np.ndarray
    patches: tuple
    saliency_patches: tuple
    gates: tuple = ()

    def __len__(self):
        return len(self.indices)


def _spatial(model, target) -> Feature:
    """The target, checked: a Feature of a layer with a spatial map."""
    if not isinstance(target, Feature):
        raise TypeError(f"target must be a cnn_helper.Feature of a layer with a spatial map, got "
                        f"{target!r}")
    features.check_feature(model, target)
    shape = _graph.output_shape(model, target.layer)
    if len(shape) < 2:
        raise ValueError(f"layer {target.layer_name!r} has no spatial map (its output shape is "
                         f"{shape}); the Zeiler & Fergus figure needs a convolutional or pooling "
                         "layer")
    return target


def _check_examples(examples, target: Feature, count):
    """Given top examples must rank this very feature and hold ``count`` of them."""
    ranked = examples.target
    if (ranked.layer_name, ranked.channel, ranked.location, ranked.pool) != \
            (target.layer_name, target.channel, target.location, target.pool):
        raise ValueError(f"the given examples rank {ranked}, not the target {target}")
    _checks.positive_int(count, "count")
    if len(examples.high) < count:
        raise ValueError(f"the given examples are {len(examples.high)}, fewer than count={count}")


def _field_of(model, x, target: Feature, gates, pointwise):
    """(the receptive field of the target's layer, the keyword arguments of ``region``): the
    input size taken from ``x`` when the model's is free. Raises before any work is done when
    the layer has no local field (and says why)."""
    kwargs = {"gates": gates, "pointwise": pointwise}
    if None in _graph.input_shape(model):
        kwargs["input_shape"] = x.shape[1:]
    return receptive_field.field(model, target.layer, **kwargs), kwargs


def zeiler_fergus(model, x, target: Feature, count: int = 9, rule: str = "gradient",
                  batch_size=BATCH_SIZE, examples=None, gates: str = "whole",
                  pointwise=()) -> ZeilerFergus:
    """Saliency of the max location, cropped to its receptive field, for the top examples.

    model    : a Keras model; target: a Feature of a layer with a spatial map
    x        : the data set to search (N, H, W, C); it also gives the input size of a model whose
               input size is free (None)
    count    : how many maximally activating examples (the lecture shows 9)
    rule     : "gradient" (the saliency), "guided" (guided backprop) or "deconvnet"
    examples : ``max_activation.top_examples`` (or ``scan(...)[layer].channel(k)``) already
               computed for this feature on ``x``, to skip the ranking pass
    gates, pointwise : as in ``receptive_field.region``: gates="local" crops a layer after a
               squeeze-and-excitation gate to the field of its local path (``result.gates``
               names the gates left out); pointwise declares layers that work per location
    """
    _checks.one_of(rule, "rule", saliency.RULES)
    target = _spatial(model, target)
    x, _ = _graph.check_images(model, x)
    field, kwargs = _field_of(model, x, target, gates, pointwise)
    if examples is None:
        examples = max_activation.top_examples(model, x, target, count=count, batch_size=batch_size)
    else:
        _check_examples(examples, target, count)
    indices = examples.high.indices[:count]
    chosen = x[indices]
    # the saliency of ONE location: the fixed one, or the max of the map (its argmax idx)
    located = target if target.location is not None else Feature(target.layer, target.channel)
    maps = saliency.gradient(model, chosen, located, rule=rule, batch_size=batch_size)
    locations = np.asarray(examples.high.locations[:count])
    idxs = [tuple(int(i) for i in loc) for loc in locations]
    regions = tuple(receptive_field.region(model, located.layer, idx, **kwargs) for idx in idxs)
    return ZeilerFergus(target=target, rule=rule, indices=indices,
                        values=np.asarray(examples.high.values[:count]), locations=locations,
                        regions=regions, windows=tuple(field.bounds(idx) for idx in idxs),
                        saliency=maps, patches=tuple(ex[r] for ex, r in zip(chosen, regions)),
                        saliency_patches=tuple(m[r] for m, r in zip(maps, regions)),
                        gates=field.gates)
