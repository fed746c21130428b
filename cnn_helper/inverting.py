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

Inverting a representation (Mahendran & Vedaldi 2015, "Understanding Deep Image Representations
by Inverting Them"): :func:`invert` finds an image :math:`\x'` whose representation at layer l
matches that of :math:`\x`,

.. math::  \x' = \arg\min_{\x'} \frac{\|\phi_l(\x') - \phi_l(\x)\|^2}{\|\phi_l(\x)\|^2}
           + \lambda_\alpha \,\text{mean}|\tilde x'|^\alpha + \lambda_{TV}\, TV^\beta(\tilde x')

(:math:`\tilde x'` the image scaled to [-1, 1] by the model's input range): what the inversion
keeps is what layer l keeps of x; what it loses, the layer discarded.
The image is parametrized, transformed and optimized by Adam as in
:mod:`cnn_helper.feature_visualization` (the toolkit both share).

Example
-------
>>> zf = zeiler_fergus(model, x_test, Feature("conv2", 5), count=9)
>>> zf.patches[0].shape          # the receptive field of conv2, clipped to the image
(8, 8, 1)
>>> fig, axes = cnn_helper.plot.zeiler_fergus(zf)
>>> inv = invert(model, x_test[0], ["conv1", "conv2", "conv3", "dense"])
>>> inv.images["conv3"].shape, inv.distances["conv3"]     # (28, 28, 1); the distance reached
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import (
    _checks,
    _graph,
    _image_optim,
    _quiet,
    features,
    max_activation,
    receptive_field,
    saliency,
)
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
                         "layer. For this feature, draw its top examples with plot.max_activating"
                         "(x, max_activation.top_examples(model, x, target)) and their saliency "
                         "with saliency.gradient(model, images, target)")
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


# --------------------------------------------------------------------------- inverting a layer


@dataclass(frozen=True)
class Inversion:
    r"""Images whose representation at each layer matches that of x (Mahendran & Vedaldi).

    x                 : (N, H, W, C) the images inverted (one image: (H, W, C), and no batch
                        axis below either)
    layers            : the layers inverted, in the order given
    images            : {layer: (N, H, W, C)} the reconstruction from that layer
    distances         : {layer: (N,)} :math:`\|\phi_l(\x') - \phi_l(\x)\|^2 / \|\phi_l(\x)\|^2`
                        reached (untransformed)
    initial_distances : {layer: (N,)} the same for the random start
    settings          : the call's settings
    """

    x: np.ndarray
    layers: tuple
    images: dict
    distances: dict
    initial_distances: dict
    settings: dict


def representation_distance(phi, reference):
    r""":math:`\|\phi - \phi_0\|^2 / \|\phi_0\|^2` per example (tensors or NumPy arrays
    (N, ...), ``keras.ops``); a zero reference counts as 1e-12.

    >>> np.asarray(representation_distance(np.ones((2, 3)), np.full((2, 3), 2.0)))  # 3 / 12
    array([0.25, 0.25], dtype=float32)
    """
    from keras import ops

    axes = list(range(1, len(reference.shape)))
    phi, reference = ops.cast(phi, "float32"), ops.cast(reference, "float32")
    return ops.sum((phi - reference) ** 2, axes) / ops.maximum(
        ops.sum(reference ** 2, axes), 1e-12)


def _inversion_step(model, layer: str, spec, transforms):
    """The compiled step (params, m, v, reference, t, seed, weights) -> (params, m, v): Adam on
    minus the loss of the module docstring (``_image_optim.ascent_step``); one per model, layer
    and image settings (the priors and learning rate are the tensor ``weights``)."""
    from keras import ops

    def build():
        tap = _graph.tap(model, [layer])

        def gain(images, seen, reference, alpha, alpha_weight, beta, tv_weight):
            scaled = _image_optim.normalised(spec, images)
            return -representation_distance(tap(seen)[0], reference) - alpha_weight * \
                ops.mean(ops.abs(scaled) ** alpha, [1, 2, 3]) - \
                tv_weight * _image_optim.total_variation(scaled, beta)

        reference = (_graph.output_shape(model, layer), "float32")
        return _image_optim.ascent_step(spec, transforms, gain, [reference], n_priors=4)

    key = ("invert", layer, spec, transforms)
    return _graph.memo(model, key, build)


def _priors(alpha, alpha_weight, beta, tv_weight) -> tuple:
    """(alpha, alpha_weight, beta, tv_weight) checked: alpha and beta >= 1, weights >= 0."""
    for name, value in (("alpha", alpha), ("beta", beta)):
        if _checks.non_negative(value, name) < 1:
            raise ValueError(f"{name} must be >= 1 (the power of a norm), got {value!r}")
    return (float(alpha), _checks.non_negative(alpha_weight, "alpha_weight"), float(beta),
            _checks.non_negative(tv_weight, "tv_weight"))


def invert(model, x, layers, steps: int = 256, alpha: float = 6.0, alpha_weight: float = 0.05,
           beta: float = 2.0, tv_weight: float = 0.5, parametrization: str = "pixel",
           learning_rate: float = 0.05, transforms=None, value_range="auto", seed: int = 0,
           batch_size=BATCH_SIZE, progress: bool = True) -> Inversion:
    r"""Reconstruct x from its representation at each of ``layers`` (module docstring's loss).

    x       : images (N, H, W, C) or one image, in the model's input range
    layers  : one layer (name, "outer/inner" path) or several; each is inverted on its own
    alpha, alpha_weight : the :math:`\alpha`-norm prior (keeps values away from the range's ends)
    beta, tv_weight     : the total-variation prior :math:`TV^\beta` (smoothness)
    parametrization, learning_rate, transforms, value_range, seed, batch_size, progress : as in
              ``feature_visualization.visualize`` (default: pixels, no transformation, as the paper)
    Returns an ``Inversion``; the same seed gives the same images, whatever ``batch_size``.

    >>> inv = invert(model, x_test[:2], ["conv1", "pool2", "dense"], steps=128)
    >>> inv.distances["dense"]           # (2,): how closely each reconstruction matches
    """
    steps, learning_rate, transforms, seed = _image_optim.check_settings(
        steps, learning_rate, transforms, seed)
    x, single = _graph.check_images(model, x)
    names = [_graph.path_name(model, layer) for layer in _checks.layer_list(layers)]
    spec = _image_optim.image_spec(model, parametrization, 1.0, value_range, x.shape[1:3])
    priors, batch_size = _priors(alpha, alpha_weight, beta, tv_weight), \
        _graph.batch_size(model, batch_size)
    references = features.activations(model, x, names, batch_size)
    images, distances, initial = {}, {}, {}
    with _quiet.progress_bar(progress, total=len(names) * steps * -(-len(x) // batch_size),
                             unit="step", desc=f"invert {len(x)} images") as bar:
        for name in names:
            step = _inversion_step(model, name, spec, transforms)
            params = _image_optim.ascend(step, spec, len(x), [references[name]], steps, seed,
                                         batch_size, bar, priors + (learning_rate,))
            start = _image_optim.initial_parameters(spec, 0, len(x), seed)
            images[name] = _images(spec, params, batch_size)
            distances[name] = _distance(model, name, images[name], references[name], batch_size)
            initial[name] = _distance(model, name, _images(spec, start, batch_size),
                                      references[name], batch_size)
    settings = dict(steps=steps, alpha=priors[0], alpha_weight=priors[1], beta=priors[2],
                    tv_weight=priors[3], parametrization=parametrization,
                    learning_rate=learning_rate, transforms=transforms,
                    value_range=(spec.low, spec.high), seed=seed)
    one = (lambda a: a[0]) if single else (lambda a: a)
    return Inversion(one(x), tuple(names), *({k: one(v) for k, v in d.items()}
                                              for d in (images, distances, initial)), settings)


def _images(spec, params, batch_size: int) -> np.ndarray:
    """The images (N, H, W, C) of the parameters (N, ...), in batches."""
    return _graph.run_batched(lambda p: [_image_optim.to_images(spec, p)], batch_size,
                              params)[0]


def _distance(model, layer: str, images, reference, batch_size: int) -> np.ndarray:
    """The representation distance of each image to its reference at ``layer`` (N,)."""
    phi = features.activations(model, images, [layer], batch_size)[layer]
    return np.asarray(representation_distance(phi, reference), np.float32)
