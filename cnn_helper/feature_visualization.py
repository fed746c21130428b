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

**Starts.** The ascent is local: from faint noise, a max-pooled target (its gradient flows
through one location) often stops below the value the best data set example gives, so the image
loses to search. ``starts`` noise starts (seeds seed, seed + 1, ...) and, with data ``x``, the
target's ``example_starts`` maximally activating examples of x (``max_activation``) as starts
make it search and then climb: each image is the best of its target's starts, and the result
says which start it came from (``starts``: "noise seed 2", "example #1234"). ``plain_steps`` is a
schedule: the last steps see the image untransformed, polishing the value of the image itself.

**Directions.** A target may also be a ``Direction`` v in a layer's activations (a concept's
CAV, a CRAFT concept: :mod:`cnn_helper.concepts`): the image then maximises the projection
:math:`v \cdot \y_{(l)}` (v of the layer's size, flattened) or its mean over the locations,
:math:`\frac{1}{|idx|}\sum_{idx} v \cdot \y_{(l),idx}` (v of one value per channel).

Every target is optimized at once, one image each, in batches of ``batch_size`` through ONE
compiled step (the target's layer, channel and pooling are tensors: no retracing per target). The
optimizer is Adam, written out in :func:`adam`. Seeded: the start of image i and the transformation
of step t depend on (seed, i) and (seed, t) only (an example start: on the example and the call's
seed), so the same seed gives the same images, whatever ``batch_size``.

The parametrization, the transformations, the priors and Adam are the image-optimization toolkit
that :func:`cnn_helper.inverting.invert` shares (the private module ``cnn_helper._image_optim``);
``Transforms``, ``value_range``, ``total_variation``, ``transform`` and ``adam`` are importable
from here as well.

Example
-------
>>> vis = visualize(model, [Feature("logits", k) for k in range(10)])   # the 10 class images
>>> vis.images.shape, vis.values                 # (10, 28, 28, 1); the logit each image reaches
>>> units = visualize(model, "conv3")            # every channel of conv3 (max-pooled), one batch
>>> better = visualize(model, "conv3", x=x_test)  # each the best of noise and 3 top test digits
>>> better.starts[:2]                             # e.g. ('example #4113', 'example #28')
>>> fig, axes = cnn_helper.plot.visualizations(units)
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from . import _checks, _graph, _quiet, features, max_activation
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
    parameters_of,
    to_images,
    total_variation,
    transform,
)
from ._reference import value_range  # noqa: F401 (feature_visualization.value_range)
from .features import Feature

__all__ = ["visualize", "FeatureVisualization", "Direction", "objective", "Transforms",
           "value_range", "PARAMETRIZATIONS", "total_variation", "transform", "adam"]


@dataclass(frozen=True, eq=False)
class Direction:
    r"""A direction v in the activations of ``layer``, as a target of :func:`visualize`: the
    value is :math:`v \cdot \y_{(l)}` with v of the layer's size (its output flattened), or
    :math:`\frac{1}{|idx|}\sum_{idx} v \cdot \y_{(l),idx}` with v of one value per channel.

    layer  : the layer l, by name or as the layer object
    vector : v, (d,) numbers (e.g. ``CAV.direction``, a row of ``Craft.bank``)
    name   : what figures and messages call it

    >>> visualize(model, Direction("conv3", cav.direction, "loop CAV"), steps=128)
    """

    layer: object
    vector: np.ndarray
    name: str = "direction"

    def __post_init__(self):
        vector = np.asarray(self.vector, np.float32).ravel()
        if vector.size == 0 or not np.all(np.isfinite(vector)):
            raise ValueError(f"Direction {self.name!r} needs a non-empty vector of finite "
                             f"numbers, got {self.vector!r}")
        object.__setattr__(self, "vector", vector)

    @property
    def layer_name(self) -> str:
        return self.layer if isinstance(self.layer, str) else self.layer.name

    def __str__(self):
        return f"{self.name} at {self.layer_name}"


def _check_direction(model, direction: Direction) -> Direction:
    """A Direction whose vector has the layer's size or its number of channels."""
    shape = tuple(_graph.output_shape(model, direction.layer))
    size, n = int(np.prod(shape)), direction.vector.size
    if n != size and (n != shape[-1] or len(shape) < 2):
        raise ValueError(f"Direction {direction.name!r} has {n} values, but layer "
                         f"{direction.layer_name!r} has output shape {shape}: give {size} values "
                         f"(the output flattened) or {shape[-1]} (one per channel)")
    return direction


@dataclass(frozen=True)
class FeatureVisualization:
    """Images optimized to excite each target.

    targets        : tuple of Features, one per image (an int target as its head Feature)
    images         : (N, H, W, C) float32, inside the model's input range
    values         : (N,) the target's value on its image (untransformed): what the ascent reached
    initial_values : (N,) the target's value on the start its image came from
    settings       : the call's settings (steps, parametrization, decay, learning_rate,
                     transforms, l2, tv, value_range, seed, starts, example_starts (0 without
                     x), plain_steps)
    starts         : (N,) the start each image came from, the best of the call's starts:
                     "noise seed s" (the random start of ``seed=s``) or "example #i" (``x[i]``)
    start_examples : (N,) int64, the index i into ``x`` of that example; -1 for a noise start
    values_by_start: (N, S) the value each start reached: the noise seeds in order, then the
                     targets' top examples of ``x``, highest first
    """

    targets: tuple
    images: np.ndarray
    values: np.ndarray
    initial_values: np.ndarray
    settings: dict
    starts: tuple
    start_examples: np.ndarray
    values_by_start: np.ndarray

    def __len__(self):
        return len(self.targets)

    def __repr__(self) -> str:
        """One line, not the arrays: FeatureVisualization(3 images 28x28x1 of y_(conv2),k=0,
        y_(conv2),k=1, y_(conv2),k=2; 256 steps fourier, values 1.2..4.5)."""
        shown = ", ".join(str(target) for target in self.targets[:3])
        more = f", ..., {self.targets[-1]} ({len(self)} targets)" if len(self) > 3 else ""
        values = f"{np.min(self.values):.3g}..{np.max(self.values):.3g}" if len(self) else "none"
        return (f"FeatureVisualization({len(self)} images "
                f"{'x'.join(map(str, self.images.shape[1:]))} of {shown}{more}; "
                f"{self.settings.get('steps')} steps {self.settings.get('parametrization')}, "
                f"values {values})")


# --------------------------------------------------------------------------- the targets


def _targets(model, targets) -> tuple:
    """Targets as checked Features: an int, a Feature, a list of them, or a layer name (every
    channel of that layer, max-pooled)."""
    if isinstance(targets, str):
        shape = _graph.output_shape(model, targets)
        if len(shape) == 0:
            raise ValueError(f"layer {targets!r} has a scalar output; it has no channels")
        targets = [Feature(targets, k) for k in range(shape[-1])]
    elif _checks.is_int(targets) or isinstance(targets, (Feature, Direction)):
        targets = [targets]
    if not isinstance(targets, (list, tuple)) or not targets:
        raise TypeError(f"targets must be an int, a Feature, a Direction, a layer name or a "
                        f"non-empty list of them, got {targets!r}")
    return tuple(_check_direction(model, t) if isinstance(t, Direction)
                 else features.check_feature(model, t) for t in targets)


# --------------------------------------------------------------------------- the objective


def _kinds(model, targets: tuple):
    """How each target is read: the distinct (layer path, pool, location) "kinds", and per
    target (kind index, channel)."""
    kinds, rows = [], []
    for t in targets:
        if isinstance(t, Direction):             # the vector's bytes: part of the compiled key
            kind = (_graph.path_name(model, t.layer), "direction", t.vector.tobytes())
        else:
            kind = (_graph.path_name(model, t.layer), t.pool, t.location)
        if kind not in kinds:
            kinds.append(kind)
        rows.append((kinds.index(kind), 0 if isinstance(t, Direction) else t.channel))
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
            if pool == "direction":
                total += ops.where(kind_ids == j, projection(y, location), 0.0)
                continue
            mine = ops.minimum(channels, y.shape[-1] - 1)     # rows of other kinds: any channel
            # y times 1 at k and 0 elsewhere, summed: exactly y_k (take_along_axis would make
            # int64 indices, which oneDNN has no kernels for on most CPUs)
            pick = ops.reshape(ops.one_hot(mine, y.shape[-1]),
                               (-1,) + (1,) * (len(y.shape) - 2) + (y.shape[-1],))
            own = ops.sum(y * pick, axis=-1, keepdims=True)                # (N, *spatial, 1)
            at = None if location is None else ops.broadcast_to(
                np.int32([location]), (ops.shape(y)[0], len(location)))  # every image's idx
            value, _ = features.read(own, 0, pool, at)
            total += ops.where(kind_ids == j, value, 0.0)
        return total

    return values


def projection(y, vector_bytes: bytes):
    r""":math:`v \cdot \y_{(l)}` of each example of y (N, ...), v given as float32 bytes: v of
    y's size (flattened), or of its channels (the mean over the locations of
    :math:`v \cdot \y_{(l),idx}`)."""
    from keras import ops

    v = np.frombuffer(vector_bytes, np.float32)
    flat = ops.reshape(y, (ops.shape(y)[0], -1))
    if v.size == flat.shape[-1]:
        return ops.sum(flat * v, axis=-1)
    per_channel = ops.mean(ops.reshape(flat, (ops.shape(y)[0], -1, v.size)), axis=1)   # (N, K)
    return ops.sum(per_channel * v, axis=-1)


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


# --------------------------------------------------------------------------- the starts


def _top_indices(model, targets: tuple, x, count: int, batch_size: int) -> np.ndarray:
    """(n, count) int64: each target's ``count`` top examples of ``x``, highest first, ties by
    lower index (``max_activation``: one scan per pooling for the pooled targets, whatever their
    layers; ``top_examples`` for a target at a location)."""
    pooled = [t for t in targets if t.location is None]
    scans = {}
    for pool in dict.fromkeys(t.pool for t in pooled):
        layers = {t.layer_name: t.layer for t in pooled if t.pool == pool}
        scans[pool] = max_activation.scan(model, x, list(layers.values()), count, pool,
                                          batch_size, progress=False)
    return np.stack([
        scans[t.pool][t.layer_name].high.indices[t.channel] if t.location is None else
        max_activation.top_examples(model, x, t, count, batch_size=batch_size).high.indices
        for t in targets]).astype(np.int64)


def _starts(model, targets: tuple, spec: ImageSpec, seed: int, starts, x, example_starts,
            batch_size: int) -> list:
    """Every start of the ascent, one per group of images: [(labels (n,), example indices (n,),
    parameters (n, ...), seed of the transformations)]. First ``starts`` noise starts, drawn
    from seed, seed + 1, ... (noise seed s is what ``seed=s`` alone gives), then, with data
    ``x``, each target's ``example_starts`` top examples of x, highest first."""
    if not _checks.is_int(starts) or starts < 0 or (starts == 0 and x is None):
        raise ValueError(f"starts must be an int >= 1 (noise starts), or >= 0 when x gives "
                         f"example starts, got {starts!r}")
    n = len(targets)
    groups = [([f"noise seed {seed + j}"] * n, np.full(n, -1, np.int64),
               initial_parameters(spec, 0, n, seed + j), seed + j) for j in range(starts)]
    if x is None:
        return groups
    if any(isinstance(t, Direction) for t in targets):
        raise ValueError("example starts (x=...) are found for Feature targets; a Direction "
                         "starts from noise: leave x out (use starts= for more noise starts)")
    x, _ = _graph.check_images(model, x, "x")
    if x.shape[1:] != spec.shape:
        raise ValueError(f"x holds images of shape {x.shape[1:]}, but the images optimized have "
                         f"shape {spec.shape}: give examples of that size")
    if not _checks.is_int(example_starts) or not 1 <= example_starts <= len(x):
        raise ValueError(f"example_starts must be an int from 1 to the {len(x)} examples of x, "
                         f"got {example_starts!r}")
    top = _top_indices(model, targets, x, int(example_starts), batch_size)
    return groups + [([f"example #{i}" for i in top[:, r]], top[:, r],
                      parameters_of(spec, x[top[:, r]]), seed) for r in range(example_starts)]


# --------------------------------------------------------------------------- the method


def visualize(model, targets, steps: int = 256, parametrization: str = "fourier",
              decay: float = 1.0, learning_rate: float = 0.05,
              transforms=Transforms(),  # noqa: B008 (a frozen dataclass: immutable, safe to share)
              l2: float = 0.0, tv: float = 0.0, value_range="auto", size=None, seed: int = 0,
              starts: int = 1, x=None, example_starts: int = 3, plain_steps: int = 0,
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
    starts          : random starts per target, from seed, seed + 1, ...;  x : data (N, H, W, C):
                      each target also starts from its ``example_starts`` top examples of x
                      (``max_activation``). Each image is the best of its target's starts
                      (highest value; ties to the first); ``starts`` in the result names it
    plain_steps     : the last ``plain_steps`` steps see the image untransformed (a schedule:
                      transformation robustness first, then the value of the image itself)
    batch_size      : images per compiled step; bounds memory, never changes a result
    progress        : show a progress bar of the steps (on a terminal or in Jupyter only)

    >>> vis = visualize(model, [Feature("conv3", k) for k in (3, 12)], steps=128, seed=1)
    >>> vis = visualize(model, "conv3", x=x_test)   # best of noise and the 3 top test digits
    >>> vis.starts[:2]                                  # e.g. ('example #4113', 'noise seed 0')
    """
    steps, learning_rate, transforms, seed = check_settings(steps, learning_rate, transforms, seed)
    targets = _targets(model, targets)
    spec = image_spec(model, parametrization, decay, value_range, size)
    l2, tv = _checks.non_negative(l2, "l2"), _checks.non_negative(tv, "tv")
    plain_steps = _plain_steps(plain_steps, steps)
    batch_size = _graph.batch_size(model, batch_size)
    groups = _starts(model, targets, spec, seed, starts, x, example_starts, batch_size)
    runs = _ascents(model, targets, spec, groups, transforms, (steps, plain_steps),
                    (l2, tv, learning_rate), batch_size, progress)
    settings = dict(steps=steps, parametrization=parametrization, decay=spec.decay,
                    learning_rate=learning_rate, transforms=transforms, l2=l2, tv=tv,
                    value_range=(spec.low, spec.high), seed=seed, starts=int(starts),
                    example_starts=0 if x is None else int(example_starts),
                    plain_steps=plain_steps)
    return _best_of(targets, groups, runs, settings)


def _plain_steps(plain_steps, steps: int) -> int:
    """``plain_steps`` checked: an int from 0 to ``steps``."""
    if not _checks.is_int(plain_steps) or not 0 <= plain_steps <= steps:
        raise ValueError(f"plain_steps must be an int from 0 to steps={steps}, got "
                         f"{plain_steps!r}")
    return int(plain_steps)


def _ascents(model, targets: tuple, spec: ImageSpec, groups: list, transforms, schedule: tuple,
             weights: tuple, batch_size: int, progress: bool) -> list:
    """[images, values, initial values] of each start of ``groups``: the ascent from it, with
    ``schedule`` = (steps, of which the last are plain: untransformed)."""
    kinds, kind_ids, channels = _kinds(model, targets)
    (step, measure), (plain, _) = (_compiled(model, kinds, spec, t) for t in (transforms, None))
    (steps, plain_steps), n, runs = schedule, len(targets), []
    with _quiet.progress_bar(progress, total=steps * len(groups) * -(-n // batch_size),
                             unit="step", desc=f"visualize {n} targets") as bar:
        for *_, start, seed in groups:
            params = ascend(step, spec, n, [kind_ids, channels], steps, seed, batch_size, bar,
                            weights, start, (plain, plain_steps))
            runs.append(_measured(spec, measure, params, kind_ids, channels, batch_size)
                        + _measured(spec, measure, start, kind_ids, channels, batch_size)[1:])
    return runs


def _best_of(targets: tuple, groups: list, runs: list, settings: dict) -> FeatureVisualization:
    """Per target, the image of the start that reached the highest value (ties: the first start);
    ``runs`` holds [images, values, initial values] of each start."""
    values_by_start = np.stack([values for _, values, _ in runs], axis=1)        # (n, S)
    best = np.argmax(values_by_start, axis=1)
    row = np.arange(len(targets))
    images, values, initial_values = (np.stack([run[part] for run in runs], axis=1)[row, best]
                                      for part in range(3))
    starts = tuple(groups[g][0][i] for i, g in enumerate(best))
    start_examples = np.stack([group[1] for group in groups], axis=1)[row, best]
    _warn_stuck(targets, values, initial_values)
    return FeatureVisualization(targets, images, values, initial_values, settings, starts,
                                start_examples, values_by_start)


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
