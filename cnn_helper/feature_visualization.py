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
from .features import Feature

PARAMETRIZATIONS = ("fourier", "pixel")
INITIAL_SD = 0.01        # the standard deviation of the random start (Fourier or pixel logits)
COLOUR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
"""Square root of ImageNet's RGB colour covariance (lucid): decorrelated -> RGB, for 3 channels."""
COLOUR_SQRT = COLOUR_SQRT / np.max(np.linalg.norm(COLOUR_SQRT, axis=0))


@dataclass(frozen=True)
class Transforms:
    """The random transformations T of each step (transformation robustness), drawn once per step
    for the whole batch. Sizes are fractions of the image side, so one setting fits 28x28 and
    224x224 alike.

    jitter   : largest shift, as a fraction of the side (0.06: 1.7 pixels of 28, 13 of 224)
    scale    : (smallest, largest) zoom factor
    rotation : largest rotation, in degrees
    pad      : what the model sees outside the image (the padding the shifts uncover): "constant"
               (the low end of the range: black for MNIST) or "reflect" (the image mirrored)
    """

    jitter: float = 0.06
    scale: tuple = (0.95, 1.05)
    rotation: float = 5.0
    pad: str = "constant"

    def __post_init__(self):
        _checks.non_negative(self.jitter, "Transforms jitter", " (a fraction of the side)")
        _checks.non_negative(self.rotation, "Transforms rotation", " (degrees)")
        _checks.one_of(self.pad, "Transforms pad", ("constant", "reflect"))
        scale = tuple(self.scale) if isinstance(self.scale, (tuple, list)) else ()
        if len(scale) != 2 or not 0 < _checks.non_negative(scale[0], "Transforms scale[0]") \
                <= _checks.non_negative(scale[1], "Transforms scale[1]"):
            raise ValueError(f"Transforms scale must be (smallest, largest) zoom factors with "
                             f"0 < smallest <= largest, got {self.scale!r}")
        object.__setattr__(self, "scale", (float(scale[0]), float(scale[1])))


@dataclass(frozen=True)
class ImageSpec:
    """How parameters become images: shape (H, W, C), parametrization, Fourier decay, range."""

    shape: tuple
    parametrization: str
    decay: float
    low: tuple           # per channel: the range [low, high] of the model's input
    high: tuple

    def parameter_shape(self) -> tuple:
        """The shape of one image's parameters: (C, H, W//2 + 1, 2) Fourier coefficients (real,
        imaginary), or (H, W, C) pixel logits."""
        h, w, c = self.shape
        return (c, h, w // 2 + 1, 2) if self.parametrization == "fourier" else (h, w, c)


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


# --------------------------------------------------------------------------- input checks


def value_range(model, value="auto", n_channels: int = 1) -> tuple:
    """The model's input range as per-channel (low, high) tuples. "auto": [0, 255] for a model
    that scales its input itself (``_graph.takes_integer_images``), else [0, 1]; or a pair
    (low, high) of numbers or of per-channel arrays (a caffe-style model: 0 - mean, 255 - mean)."""
    if isinstance(value, str) and value == "auto":
        value = (0.0, 255.0) if _graph.takes_integer_images(model) else (0.0, 1.0)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"value_range must be 'auto' or a pair (low, high), got {value!r}")
    try:
        low, high = (np.broadcast_to(np.asarray(v, np.float64), (n_channels,)) for v in value)
    except (ValueError, TypeError):
        raise ValueError(f"value_range {value!r}: low and high must be numbers or arrays of "
                         f"{n_channels} values, one per channel") from None
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low < high)):
        raise ValueError(f"value_range {value!r} must have finite low < high in every channel")
    return tuple(low.tolist()), tuple(high.tolist())


def image_spec(model, parametrization: str, decay, value_range_, size=None) -> ImageSpec:
    """The images to optimize for ``model``: its input shape (``size`` (H, W) for a model whose
    input size is free), checked settings."""
    _checks.one_of(parametrization, "parametrization", PARAMETRIZATIONS)
    decay = _checks.non_negative(decay, "decay", " (the Fourier decay power)")
    shape = _graph.input_shape(model)
    if len(shape) != 3 or shape[-1] is None:
        raise ValueError(f"model {model.name!r} takes inputs of shape {shape}; feature "
                         "visualization optimizes images (H, W, C) with a known channel count")
    if size is not None:
        h_w = _checks.index_tuple(size, "size")
        if len(h_w) != 2 or min(h_w) < 1 or any(s not in (None, v) for s, v in zip(shape, h_w)):
            raise ValueError(f"size {size!r} must be (H, W), positive, and fit the model's "
                             f"input shape {shape}")
        shape = h_w + shape[2:]
    if None in shape:
        raise ValueError(f"model {model.name!r} takes images of any size {shape}: give the size "
                         "to optimize at, e.g. size=(224, 224)")
    low, high = value_range(model, value_range_, shape[-1])
    return ImageSpec(tuple(int(s) for s in shape), parametrization, decay, low, high)


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


# --------------------------------------------------------------------------- parameters -> image


def fourier_scale(h: int, w: int, decay: float) -> np.ndarray:
    r"""The weight :math:`w_f = 1 / \max(|f|, 1/\max(H, W))^{d}` of each frequency of
    ``np.fft.rfft2`` of an (h, w) image, times :math:`\sqrt{hw}` (lucid's normalisation)."""
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    frequency = np.sqrt(fx ** 2 + fy ** 2)
    return (np.sqrt(h * w) / np.maximum(frequency, 1.0 / max(h, w)) ** decay).astype(np.float32)


def initial_parameters(spec: ImageSpec, start: int, stop: int, seed: int) -> np.ndarray:
    """The random start of images start..stop-1: image i is drawn from (seed, i) alone, so it
    does not depend on which batch it falls in."""
    return np.stack([np.random.default_rng([seed, i]).normal(0, INITIAL_SD, spec.parameter_shape())
                     for i in range(start, stop)]).astype(np.float32)


def to_images(spec: ImageSpec, params):
    r"""Parameters (N, *parameter_shape) -> images (N, H, W, C) in the range (TensorFlow):
    inverse FFT of the scaled coefficients (or the logits), decorrelated colour for 3 channels,
    then :math:`lo + (hi - lo)\,\sigma(\cdot)`."""
    import tensorflow as tf

    h, w, c = spec.shape
    if spec.parametrization == "fourier":
        scale = fourier_scale(h, w, spec.decay)
        spectrum = tf.complex(params[..., 0] * scale, params[..., 1] * scale)   # (N, C, H, W')
        logits = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=[h, w]), (0, 2, 3, 1)) / 4
    else:
        logits = params
    if c == 3:
        logits = tf.tensordot(logits, tf.constant(COLOUR_SQRT.T), axes=1)
    low, high = np.float32(spec.low), np.float32(spec.high)
    return low + (high - low) * tf.sigmoid(logits)


# --------------------------------------------------------------------------- transformations


def transform(images, transforms: Transforms, seed, low):
    """T(images): one random shift, zoom and rotation (drawn from the int32 pair ``seed``) for
    the whole batch, bilinear, the same size out; outside the image the ``pad`` of
    ``transforms`` ("constant": the range's per-channel ``low``)."""
    import tensorflow as tf

    if transforms is None:
        return images
    h, w = images.shape[1], images.shape[2]
    u = tf.random.stateless_uniform([4], seed, -1.0, 1.0)
    angle = u[0] * transforms.rotation * np.pi / 180
    smallest, largest = transforms.scale
    zoom = smallest + (largest - smallest) * (u[1] + 1) / 2
    shift = u[2:] * transforms.jitter * np.float32([h, w])
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    cy, cx = (h - 1) / 2, (w - 1) / 2      # output (x, y) -> input (a0 x + a1 y + a2, b0 x + ...)
    matrix = tf.stack([cos, -sin, cx + shift[1] - cos * cx + sin * cy,
                       sin, cos, cy + shift[0] - sin * cx - cos * cy, 0.0, 0.0])
    low = np.float32(low)
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=images - low, transforms=tf.tile(matrix[None], [tf.shape(images)[0], 1]),
        output_shape=[h, w], fill_value=0.0, interpolation="BILINEAR",
        fill_mode=transforms.pad.upper())
    return moved + low


# --------------------------------------------------------------------------- priors and Adam


def total_variation(images, beta: float = 2.0):
    r""":math:`TV^\beta(\x) = \text{mean}_{idx} ((\x_{r+1,c} - \x_{r,c})^2 + (\x_{r,c+1} -
    \x_{r,c})^2)^{\beta/2}` per image (N,) (Mahendran & Vedaldi's :math:`V^\beta`)."""
    import tensorflow as tf

    down = images[:, 1:, :-1] - images[:, :-1, :-1]
    right = images[:, :-1, 1:] - images[:, :-1, :-1]
    squared = down ** 2 + right ** 2 + 1e-8           # + 1e-8: a finite gradient at 0, beta < 2
    return tf.reduce_mean(squared ** (beta / 2), axis=[1, 2, 3])


def normalised(spec: ImageSpec, images):
    """Images mapped to [-1, 1] by the range (the middle of the range is 0): the priors' scale,
    the same for [0, 1], [-1, 1] or [0, 255] inputs."""
    low, high = np.float32(spec.low), np.float32(spec.high)
    return (2 * images - (low + high)) / (high - low)


def adam(params, gradient, m, v, t, learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    r"""One Adam step of gradient ASCENT (Kingma & Ba 2015): :math:`m \leftarrow b_1 m + (1-b_1)
    g`, :math:`v \leftarrow b_2 v + (1-b_2) g^2`, :math:`p \leftarrow p + \eta\,\hat m /
    (\sqrt{\hat v} + \epsilon)` with the bias corrections :math:`\hat m = m / (1 - b_1^t)`,
    :math:`\hat v = v / (1 - b_2^t)`; t counts from 1. Element-wise, so images never interact."""
    import tensorflow as tf

    m = b1 * m + (1 - b1) * gradient
    v = b2 * v + (1 - b2) * gradient ** 2
    t = tf.cast(t, tf.float32)
    step = learning_rate * (m / (1 - b1 ** t)) / (tf.sqrt(v / (1 - b2 ** t)) + eps)
    return params + step, m, v


def ascend(step, spec: ImageSpec, n: int, per_image: list, steps: int, seed: int, batch_size: int,
           bar, weights: tuple) -> np.ndarray:
    """Run the compiled ``step`` (params, m, v, *per-image tensors, t, seed, weights) -> (params,
    m, v) ``steps`` times on each batch of images; returns the final parameters (n, ...).
    ``weights`` (learning rate, prior weights) are a tensor: changing them never retraces."""
    import tensorflow as tf

    finished, weights = [], tf.constant(weights, tf.float32)
    for rows in _checks.batches(n, batch_size):
        params = tf.constant(initial_parameters(spec, rows.start, rows.stop, seed))
        m = v = tf.zeros_like(params)
        args = [tf.constant(a[rows]) for a in per_image]
        for t in range(1, steps + 1):
            params, m, v = step(params, m, v, *args, tf.constant(t), tf.constant(seed), weights)
            bar.update(1)
        finished.append(params.numpy())
    return np.concatenate(finished)


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
    ``features.read`` with its kind's pooling or location."""
    import tensorflow as tf

    layers = list(dict.fromkeys(layer for layer, _, _ in kinds))
    outputs = _graph.tap(model, layers)

    def values(images, kind_ids, channels):
        found = dict(zip(layers, outputs(images)))
        total = tf.zeros(tf.shape(images)[:1])
        for j, (layer, pool, location) in enumerate(kinds):
            y = tf.cast(found[layer], tf.float32)
            mine = tf.minimum(channels, y.shape[-1] - 1)      # rows of other kinds: any channel
            own = tf.gather(y, mine, axis=-1, batch_dims=1)[..., None]     # (N, *spatial, 1)
            at = None if location is None else tf.tile([location], [tf.shape(y)[0], 1])
            value, _ = features.read(own, 0, pool, at)
            total += tf.where(kind_ids == j, value, 0.0)
        return total

    return values


def _compiled(model, kinds, spec, transforms):
    """(the compiled ascent step, the compiled measure of the untransformed images), built once
    per model, kinds and image settings; targets, batch size, step number and the weights
    (l2, tv, learning_rate) are tensors."""
    import tensorflow as tf

    def build():
        values = objective(model, kinds)
        per_image = [tf.TensorSpec((None,), tf.int32)] * 2
        params = tf.TensorSpec((None,) + spec.parameter_shape(), tf.float32)
        scalars = [tf.TensorSpec((), tf.int32)] * 2 + [tf.TensorSpec((3,), tf.float32)]

        @tf.function(input_signature=[params, params, params] + per_image + scalars)
        def step(params, m, v, kind_ids, channels, t, seed, weights):
            l2, tv, learning_rate = tf.unstack(weights)
            with tf.GradientTape() as tape:
                tape.watch(params)
                images = to_images(spec, params)
                seen = transform(images, transforms, tf.stack([seed, t]), spec.low)
                gain = values(seen, kind_ids, channels) - l2 * tf.reduce_mean(
                    normalised(spec, images) ** 2, axis=[1, 2, 3]) - tv * total_variation(
                    normalised(spec, images))
            return adam(params, tape.gradient(gain, params), m, v, t, learning_rate)

        measure = tf.function(values, input_signature=[
            tf.TensorSpec((None,) + spec.shape, tf.float32)] + per_image)
        return step, measure

    key = ("visualize", kinds, spec, transforms)
    return _graph.memo(model, key, build)


# --------------------------------------------------------------------------- the method


def check_settings(steps, learning_rate, transforms, seed) -> tuple:
    """(steps, learning_rate, transforms, seed) checked: a positive int of steps, a positive
    learning rate, a ``Transforms`` or None, a seed >= 0."""
    steps = _checks.positive_int(steps, "steps")
    if _checks.non_negative(learning_rate, "learning_rate") == 0:
        raise ValueError("learning_rate must be > 0, got 0")
    if transforms is not None and not isinstance(transforms, Transforms):
        raise TypeError(f"transforms must be a feature_visualization.Transforms or None (no "
                        f"transformation), got {transforms!r}")
    return steps, float(learning_rate), transforms, _checks.seed(seed)


def visualize(model, targets, steps: int = 256, parametrization: str = "fourier",
              decay: float = 1.0, learning_rate: float = 0.05, transforms=Transforms(),
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
