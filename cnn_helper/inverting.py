r"""Interpretation by inverting: the Zeiler & Fergus "saliency + patch" figure in one call.

For a feature map k of layer l:

1. find its K maximally activating examples,
   :math:`\text{MaxAct}_{(l),k}[:K]`, ranked by :math:`\max_{idx} \y_{(l),idx,k}^{(i)}`;
2. for each, take the location of the max, :math:`idx^{(i)} = \arg\max_{idx} \y_{(l),idx,k}^{(i)}`;
3. compute the saliency of that single location,

   .. math::  s^{(i)}_{(l),idx,k,(0),idx',k'} = \frac{\partial \y_{(l),idx,k}^{(i)}}{\partial \y_{(0),idx',k'}^{(i)}}

   (or its guided-backprop / deconvnet variant), which is non-zero only inside the receptive
   field :math:`\mathcal{R}_{(l),idx}`;
4. crop both the saliency map and the input to :math:`\mathcal{R}_{(l),idx}`: the patch of
   :math:`\x^{(i)}` that location sees, and how each of its pixels moves the feature.

Example
-------
>>> zf = zeiler_fergus(model, x_test, Feature("conv2", 5), k=9)
>>> zf.patches[0].shape          # the receptive field of conv2, clipped to the image
(8, 8, 1)
>>> fig, axes = cnn_helper.plot.zeiler_fergus(zf)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import features, max_activation, receptive_field, saliency
from .features import Feature

METHODS = {"saliency": saliency.gradient,
           "guided_backprop": saliency.guided_backprop,
           "deconvnet": saliency.deconvnet}


@dataclass(frozen=True)
class ZeilerFergus:
    """The K maximally activating examples of a feature, each with saliency and patch.

    feature   : the Feature explained (location "argmax" of its layer's map k, or a fixed location)
    method    : "saliency" | "guided_backprop" | "deconvnet"
    indices   : (K,) indices into the data set, highest activation first
    values    : (K,) the feature's value for each
    locations : (K, n_spatial) idx of the max (or the fixed location) in the layer's map
    regions   : K tuples of slices: the receptive field of each location, clipped to the image
    windows   : K tuples of (lo, hi) per axis: the same fields NOT clipped (a field near the border
                reaches outside the image; plots use it to draw every patch at one scale)
    saliency  : (K, H, W, C) the full saliency map of each example (zero outside the field)
    patches   : K arrays: the input cropped to the region
    saliency_patches : K arrays: the saliency cropped to the region
    """

    feature: Feature
    method: str
    indices: np.ndarray
    values: np.ndarray
    locations: np.ndarray
    regions: tuple
    windows: tuple
    saliency: np.ndarray
    patches: tuple
    saliency_patches: tuple

    def __len__(self):
        return len(self.indices)


def _spatial_feature(model, feature) -> Feature:
    """The feature as one location per example: its fixed location, else the argmax of the map."""
    if not isinstance(feature, Feature):
        raise TypeError(f"feature must be a cnn_helper.Feature of a layer with a spatial map, got "
                        f"{feature!r}")
    features.check_feature(model, feature)
    if len(features.output_shape(model, feature.layer)) < 2:
        raise ValueError(f"layer {feature.layer_name!r} has no spatial map (its output shape is "
                         f"{features.output_shape(model, feature.layer)}); the Zeiler & Fergus figure "
                         "needs a convolutional or pooling layer")
    location = feature.location if isinstance(feature.location, tuple) else "argmax"
    return Feature(feature.layer, feature.channel, location=location, reduce=feature.reduce)


def _check_top(top, feature: Feature, k):
    """A precomputed top-K must rank this very feature (layer, channel, pooling) and hold k examples."""
    ranked = top.target
    if (ranked.layer_name, ranked.channel, ranked.reduce) != (feature.layer_name, feature.channel,
                                                              feature.reduce):
        raise ValueError(f"the given top ranks {ranked}, not the feature {feature}")
    features.check_positive_int(k, "k")
    if len(top.high) < k:
        raise ValueError(f"the given top has {len(top.high)} examples, fewer than k={k}")


def zeiler_fergus(model, x, feature: Feature, k: int = 9, method: str = "saliency",
                  batch_size: int = 256, top=None) -> ZeilerFergus:
    """Saliency of the max location, cropped to its receptive field, for the K top examples.

    model   : a Keras model; feature: a Feature of a layer with a spatial map
    x       : the data set to search (N, H, W, C)
    k       : how many maximally activating examples (the lecture shows 9)
    method  : "saliency" (the plain gradient), "guided_backprop" or "deconvnet"
    top     : an already computed ``max_activation.top_k`` result (or ``scan(...).channel(k)``)
              for this feature on ``x``, to skip the ranking pass
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {tuple(METHODS)}")
    located = _spatial_feature(model, feature)
    x, _ = features.check_input(model, x)
    if top is None:
        top = max_activation.top_k(model, x, feature, k=k, batch_size=batch_size)
    else:
        _check_top(top, feature, k)
    indices = top.high.indices[:k]
    examples = x[indices]
    maps = METHODS[method](model, examples, located, batch_size=batch_size)
    locations = np.asarray(top.high.locations[:k])
    rf = receptive_field.field(model, located.layer)
    idxs = [tuple(int(i) for i in loc) for loc in locations]
    regions = tuple(receptive_field.region(model, located.layer, idx) for idx in idxs)
    return ZeilerFergus(feature=located, method=method, indices=indices,
                        values=np.asarray(top.high.values[:k]), locations=locations,
                        regions=regions, windows=tuple(rf.bounds(idx) for idx in idxs), saliency=maps,
                        patches=tuple(ex[r] for ex, r in zip(examples, regions)),
                        saliency_patches=tuple(m[r] for m, r in zip(maps, regions)))
