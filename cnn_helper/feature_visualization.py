r"""Interpretation by optimization: an image synthesised to excite a target (feature visualization).

Maximally activating examples *search* a data set for the inputs that excite a feature most. Here
we *optimize* an input instead, by gradient ascent on the target s (a head class
:math:`\y_{(L),k}`, a pooled feature :math:`\y_{(l),k}` or one location :math:`\y_{(l),idx,k}`):

.. math::  \x^* = \arg\max_{\x} \; \mathbb{E}_T\, s(T(\x)) - \lambda_2 \|\x - \bar x\|^2
                  - \lambda_{TV}\, TV(\x)

(Erhan et al. 2009; Simonyan et al. 2013; Yosinski et al. 2015; Olah et al. 2017, "Feature
Visualization"). Plain gradient ascent on the pixels finds high-frequency patterns that excite
the network but look like noise; four choices make the images readable:

- **parametrization**: the image is :math:`\x = lo + (hi - lo)\,\sigma(\mathcal{F}^{-1}(w \odot
  c))`, Fourier coefficients c scaled by :math:`w_f = 1 / \max(|f|, 1/\max(H, W))^{d}` (``decay``
  d): low frequencies move first ("fourier", default; "pixel": the pixels' logits directly);
- **range**: the sigmoid keeps every value inside the model's input range [lo, hi] (``value_range``:
  [0, 1] for the course CNN, [0, 255] for a model that scales its input itself, (-1, 1) for
  MobileNetV2's ``preprocess_input``);
- **colour**: for 3 channels the colours are decorrelated (the ImageNet colour covariance's square
  root, as lucid does); grayscale images are optimized as they are, at their own size;
- **transformation robustness**: at every step the model sees the image jittered, scaled and
  slightly rotated at random (``Transforms``): a pattern that excites the target only at one exact
  pixel offset is not rewarded.

Every target is optimized at once, one image each, in batches of ``batch_size`` through ONE
compiled step (the target's layer, channel and pooling are tensors: no retracing per target). The
optimizer is Adam, written out in :func:`adam`. Seeded: the start of image i and the transformation
of step t depend on (seed, i) and (seed, t) only, so the same seed gives the same images, whatever
``batch_size``.

The parametrization, the transformations, the priors and Adam are the image-optimization toolkit
that :func:`cnn_helper.inverting.invert` shares (the private module ``cnn_helper._image_optim``);
``Transforms``, ``value_range``, ``total_variation``, ``transform`` and ``adam`` are importable
from here as well.

Example
-------
>>> vis = visualize(model, [Feature("logits", k) for k in range(10)])   # the 10 class images
>>> vis.images.shape, vis.values                 # (10, 28, 28, 1); the logit each image reaches
>>> units = visualize(model, "conv3")            # every channel of conv3 (max-pooled), one batch
>>> fig, axes = cnn_helper.plot.visualizations(units)
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from . import _checks, _graph, features
from ._checks import BATCH_SIZE
from ._image_optim import (
    PARAMETRIZATIONS,
    ImageSpec,
    Transforms,
    adam,
    ascend,
    ascent_step,
    check_settings,
    compiled_for_batches,
    image_spec,
    initial_parameters,
    normalised,
    to_images,
    total_variation,
    transform,
)
from ._reference import value_range  # noqa: F401 (feature_visualization.value_range)
from .features import Feature

__all__ = ["visualize", "FeatureVisualization", "objective", "Transforms", "value_range",
           "PARAMETRIZATIONS", "total_variation", "transform", "adam"]


@dataclass(frozen=True)
class FeatureVisualization:
    """Images optimized to excite each target.

    targets        : tuple of Features, one per image (an int target as its head Feature)
    images         : (N, H, W, C) float32, inside the model's input range
    values         : (N,) the target's value on its image (untransformed): what the ascent reached
    initial_values : (N,) the target's value on the random start
    settings       : the call's settings (steps, parametrization, decay, learning_rate,
                     transforms, l2, tv, value_range, seed)
    """

    targets: tuple
    images: np.ndarray
    values: np.ndarray
    initial_values: np.ndarray
    settings: dict

    def __len__(self):
        return len(self.targets)


# --------------------------------------------------------------------------- the targets


def _targets(model, targets) -> tuple:
    """Targets as checked Features: an int, a Feature, a list of them, or a layer name (every
    channel of that layer, max-pooled)."""
    if isinstance(targets, str):
        shape = _graph.output_shape(model, targets)
        if len(shape) == 0:
            raise ValueError(f"layer {targets!r} has a scalar output; it has no channels")
        targets = [Feature(targets, k) for k in range(shape[-1])]
    elif _checks.is_int(targets) or isinstance(targets, Feature):
        targets = [targets]
    if not isinstance(targets, (list, tuple)) or not targets:
        raise TypeError(f"targets must be an int, a Feature, a layer name or a non-empty list "
                        f"of ints and Features, got {targets!r}")
    return tuple(features.check_feature(model, t) for t in targets)


# --------------------------------------------------------------------------- the objective


def _kinds(model, targets: tuple):
    """How each target is read: the distinct (layer path, pool, location) "kinds", and per
    target (kind index, channel)."""
    kinds, rows = [], []
    for t in targets:
        kind = (_graph.path_name(model, t.layer), t.pool, t.location)
        if kind not in kinds:
            kinds.append(kind)
        rows.append((kinds.index(kind), t.channel))
    kind_ids, channels = (np.asarray(col, np.int32) for col in zip(*rows))
    return tuple(kinds), kind_ids, channels


def objective(model, kinds: tuple):
    """The function (images, kind_ids, channels) -> (N,) target values: ONE forward pass to
    every layer the kinds read (``_graph.tap``), then each image's own channel read by
    ``features.read`` with its kind's pooling or location (``keras.ops``: it runs inside the
    compiled step).

    >>> kinds = (("conv3", "max", None), ("logits", "max", None))
    >>> values = objective(model, kinds)
    >>> values(images, np.int32([0, 1]), np.int32([12, 4]))   # conv3 k=12, then logit 4
    """
    from keras import ops

    layers = list(dict.fromkeys(layer for layer, _, _ in kinds))
    outputs = _graph.tap(model, layers)

    def values(images, kind_ids, channels):
        found = dict(zip(layers, outputs(images)))
        total = ops.zeros(ops.shape(images)[:1])
        for j, (layer, pool, location) in enumerate(kinds):
            y = ops.cast(found[layer], "float32")
            mine = ops.minimum(channels, y.shape[-1] - 1)     # rows of other kinds: any channel
            at_mine = ops.reshape(mine, (-1,) + (1,) * (len(y.shape) - 1))
            own = ops.take_along_axis(y, at_mine, axis=-1)                # (N, *spatial, 1)
            at = None if location is None else ops.broadcast_to(
                np.int32([location]), (ops.shape(y)[0], len(location)))  # every image's idx
            value, _ = features.read(own, 0, pool, at)
            total += ops.where(kind_ids == j, value, 0.0)
        return total

    return values


def _compiled(model, kinds, spec, transforms):
    r"""(the compiled ascent step, the compiled measure of the untransformed images), built once
    per model, kinds and image settings; targets, batch size, step number and the weights
    (l2, tv, learning_rate) are tensors. The step ascends the gain
    :math:`s(T(\x)) - \lambda_2\, \text{mean}(\tilde x^2) - \lambda_{TV}\, TV^2(\tilde x)`."""
    from keras import ops

    def build():
        values = objective(model, kinds)

        def gain(images, seen, kind_ids, channels, l2, tv):
            # x~ is computed for each prior: one shared x~ would add the priors' gradients in
            # another order, and Adam grows that last-bit change (seeded images would move)
            return values(seen, kind_ids, channels) - l2 * ops.mean(
                normalised(spec, images) ** 2, axis=[1, 2, 3]) - tv * total_variation(
                normalised(spec, images))

        per_image = [((), "int32")] * 2                               # kind_ids, channels
        step = ascent_step(spec, transforms, gain, per_image, n_priors=2)
        measure = compiled_for_batches(values, (spec.shape, "float32"), *per_image)
        return step, measure

    key = ("visualize", kinds, spec, transforms)
    return _graph.memo(model, key, build)


# --------------------------------------------------------------------------- the method


def visualize(model, targets, steps: int = 256, parametrization: str = "fourier",
              decay: float = 1.0, learning_rate: float = 0.05,
              transforms=Transforms(),  # noqa: B008 (a frozen dataclass: immutable, safe to share)
              l2: float = 0.0, tv: float = 0.0, value_range="auto", size=None, seed: int = 0,
              batch_size=BATCH_SIZE, progress: bool = True) -> FeatureVisualization:
    r"""Images that excite each target: gradient ascent on the target's value (module docstring).

    targets         : an int (head class :math:`\y_{(L),k}`), a ``Feature`` (pooled by max or
                      mean, or at a location), a list of them, or a layer name: every channel of
                      that layer, max-pooled. For class images give the logits, e.g.
                      ``Feature("logits", k)``: a softmax output also rises by lowering the
                      other classes
    steps           : Adam steps per image;  learning_rate : Adam's step size
    parametrization : "fourier" (default) or "pixel";  decay : the Fourier decay power d
    transforms      : ``Transforms()`` (default) or None for none
    l2, tv          : weights of :math:`\text{mean}(\tilde x^2)` and of :math:`TV^2(\tilde x)`,
                      with :math:`\tilde x` the image scaled to [-1, 1] by the range
    value_range     : "auto" ([0, 1], or [0, 255] for a model that scales its input) or
                      (low, high), numbers or per-channel arrays
    size            : (H, W) to optimize at, for a model whose input size is free
    batch_size      : images per compiled step; bounds memory, never changes a result
    progress        : show a progress bar of the steps

    >>> vis = visualize(model, [Feature("conv3", k) for k in (3, 12)], steps=128, seed=1)
    """
    from tqdm.auto import tqdm

    steps, learning_rate, transforms, seed = check_settings(steps, learning_rate, transforms, seed)
    targets = _targets(model, targets)
    spec = image_spec(model, parametrization, decay, value_range, size)
    l2, tv = _checks.non_negative(l2, "l2"), _checks.non_negative(tv, "tv")
    batch_size = _graph.batch_size(model, batch_size)
    kinds, kind_ids, channels = _kinds(model, targets)
    step, measure = _compiled(model, kinds, spec, transforms)
    n = len(targets)
    with tqdm(total=steps * -(-n // batch_size), unit="step", desc=f"visualize {n} targets",
              disable=not progress) as bar:
        params = ascend(step, spec, n, [kind_ids, channels], steps, seed, batch_size, bar,
                        (l2, tv, learning_rate))
    images, values = _measured(spec, measure, params, kind_ids, channels, batch_size)
    _, initial_values = _measured(spec, measure, initial_parameters(spec, 0, n, seed), kind_ids,
                                  channels, batch_size)
    _warn_stuck(targets, values, initial_values)
    settings = dict(steps=steps, parametrization=parametrization, decay=spec.decay,
                    learning_rate=learning_rate, transforms=transforms, l2=l2, tv=tv,
                    value_range=(spec.low, spec.high), seed=seed)
    return FeatureVisualization(targets, images, values, initial_values, settings)


def _warn_stuck(targets: tuple, values, initial_values):
    """A warning naming the targets that started at 0 and never rose: behind a ReLU that is off
    wherever they are read on the (nearly uniform) start image, no gradient reaches the image."""
    stuck = [str(t) for t, v, v0 in zip(targets, values, initial_values) if v0 == 0 and v <= 0]
    if stuck:
        warnings.warn(f"targets {stuck} were 0 on the start image and never rose: their ReLU is "
                      "off wherever they are read, so no gradient reaches the image. Try another "
                      "seed, or a pooled Feature (the max or mean of the map) instead of one "
                      "location", stacklevel=3)


def _measured(spec: ImageSpec, measure, params, kind_ids, channels, batch_size: int) -> list:
    """[images (N, H, W, C), target values (N,)] of the parameters, untransformed, in batches."""
    def run(p, k, c):
        images = to_images(spec, p)
        return [images, measure(images, k, c)]

    return _graph.run_batched(run, batch_size, params, kind_ids, channels)
