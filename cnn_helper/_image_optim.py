r"""Image optimization: the toolkit that feature visualization and inversion share.

Both methods look for an image by gradient ascent on a gain g minus a prior R:

.. math::  \x^* = \arg\max_{\x} \; \mathbb{E}_T\, g(T(\x)) - R(\tilde x)

with :math:`\tilde x` the image scaled to [-1, 1] by the model's input range. Feature
visualization: g the target's value, :math:`R = \lambda_2\, \text{mean}(\tilde x^2) +
\lambda_{TV}\, TV^2(\tilde x)`; inversion: g minus the distance of the representations,
:math:`R = \lambda_\alpha\, \text{mean}|\tilde x|^\alpha + \lambda_{TV}\, TV^\beta(\tilde x)`.
The callers write g and R with ``keras.ops``; everything TensorFlow-specific (the FFT, the
image warp, the random draws, the gradient tape and the compiled step) is here, one
implementation of each piece, in the order an image passes through them:

- **parameters -> image** (:func:`to_images`): the optimized parameters p are Fourier
  coefficients c, scaled by :math:`w_f` (:func:`fourier_scale`), or pixel logits; then

  .. math::  \x = lo + (hi - lo)\,\sigma(C\, \mathcal{F}^{-1}(w \odot c) / 4)

  with C the decorrelated-colour matrix (``COLOUR_SQRT``, 3 channels only) and [lo, hi] the
  model's input range (``_reference.value_range``, the package's one range rule);
  ``ImageSpec`` holds these choices (:func:`image_spec`);
- **start** (:func:`initial_parameters`, :func:`parameters_of`): image i starts from
  N(0, ``INITIAL_SD``) noise drawn from (seed, i) alone, or from a given image (e.g. a data set
  example): the parameters that :func:`to_images` maps back to it;
- **transformation** T (:func:`transform`, settings in ``Transforms``): one random shift, zoom and
  rotation per step;
- **priors** (:func:`normalised`, :func:`total_variation`): on :math:`\tilde x`, so one weight
  fits [0, 1], [-1, 1] and [0, 255] inputs;
- **ascent** (:func:`ascent_step`, :func:`adam`, :func:`ascend`): the caller's gain becomes one
  compiled step (tape, gradient, Adam), run batch after batch on the parameters;
  :func:`compiled_for_batches` compiles any other function of batches (the final measures).

Example
-------
>>> spec = image_spec(model, "fourier", 1.0, "auto")   # the course CNN: (28, 28, 1) in [0, 1]
>>> params = initial_parameters(spec, 0, 4, seed=0)   # 4 random starts, (4, 1, 28, 15, 2)
>>> images = to_images(spec, tf.constant(params))     # (4, 28, 28, 1), every value in [0, 1]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks, _graph, _reference

PARAMETRIZATIONS = ("fourier", "pixel")
INITIAL_SD = 0.01        # the standard deviation of the random start (Fourier or pixel logits)
START_MARGIN = 1e-3      # a given start image is kept this fraction of the range inside it
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

    >>> Transforms(jitter=0.1, rotation=0)       # larger shifts, no rotation
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


# --------------------------------------------------------------------------- settings


def image_spec(model, parametrization: str, decay, value_range_, size=None) -> ImageSpec:
    """The images to optimize for ``model``: its input shape (``size`` (H, W) for a model whose
    input size is free), checked settings.

    >>> image_spec(model, "pixel", 1.0, "auto").shape          # the course CNN
    (28, 28, 1)
    """
    _checks.one_of(parametrization, "parametrization", PARAMETRIZATIONS)
    decay = _checks.non_negative(decay, "decay", " (the Fourier decay power)")
    shape = _graph.input_shape(model)
    if len(shape) != 3 or shape[-1] is None:
        raise ValueError(f"model {model.name!r} takes inputs of shape {shape}; feature "
                         "visualization and inversion optimize images (H, W, C) with a known "
                         "channel count")
    if size is not None:
        h_w = _checks.index_tuple(size, "size")
        if len(h_w) != 2 or min(h_w) < 1 or any(s not in (None, v) for s, v in zip(shape, h_w)):
            raise ValueError(f"size {size!r} must be (H, W), positive, and fit the model's "
                             f"input shape {shape}")
        shape = h_w + shape[2:]
    if None in shape:
        raise ValueError(f"model {model.name!r} takes images of any size {shape}: give the size "
                         "to optimize at, e.g. size=(224, 224)")
    low, high = _reference.value_range(model, value_range_, shape[-1])
    return ImageSpec(tuple(int(s) for s in shape), parametrization, decay, low, high)


def check_settings(steps, learning_rate, transforms, seed) -> tuple:
    """(steps, learning_rate, transforms, seed) checked: a positive int of steps, a positive
    learning rate, a ``Transforms`` or None, a seed >= 0.

    >>> steps, learning_rate, transforms, seed = check_settings(256, 0.05, Transforms(), 0)
    """
    steps = _checks.positive_int(steps, "steps")
    if _checks.non_negative(learning_rate, "learning_rate") == 0:
        raise ValueError("learning_rate must be > 0, got 0")
    if transforms is not None and not isinstance(transforms, Transforms):
        raise TypeError(f"transforms must be a feature_visualization.Transforms or None (no "
                        f"transformation), got {transforms!r}")
    return steps, float(learning_rate), transforms, _checks.seed(seed)


# --------------------------------------------------------------------------- parameters -> image


def fourier_scale(h: int, w: int, decay: float) -> np.ndarray:
    r"""The weight :math:`w_f = 1 / \max(|f|, 1/\max(H, W))^{d}` of each frequency of
    ``np.fft.rfft2`` of an (h, w) image, times :math:`\sqrt{hw}` (lucid's normalisation).

    >>> fourier_scale(28, 28, 1.0).shape         # (H, W//2 + 1): the rfft2 frequencies
    (28, 15)
    """
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    frequency = np.sqrt(fx ** 2 + fy ** 2)
    return (np.sqrt(h * w) / np.maximum(frequency, 1.0 / max(h, w)) ** decay).astype(np.float32)


def initial_parameters(spec: ImageSpec, start: int, stop: int, seed: int) -> np.ndarray:
    """The random start of images start..stop-1: image i is drawn from (seed, i) alone, so it
    does not depend on which batch it falls in.

    >>> initial_parameters(spec, 0, 4, seed=0).shape == (4,) + spec.parameter_shape()
    True
    """
    return np.stack([np.random.default_rng([seed, i]).normal(0, INITIAL_SD, spec.parameter_shape())
                     for i in range(start, stop)]).astype(np.float32)


def parameters_of(spec: ImageSpec, images) -> np.ndarray:
    r"""The parameters (N, *parameter_shape) that :func:`to_images` maps to ``images`` (N, H, W, C)
    (NumPy): the inverse of each of its steps, in reverse order. The sigmoid never reaches the
    ends of the range, so each value is first moved ``START_MARGIN`` of the range inside it:

    .. math::  q = \text{clip}((\x - lo) / (hi - lo), m, 1 - m), \qquad
               c = \mathcal{F}(4\, C^{-1} \log(q / (1 - q))) / w

    >>> params = parameters_of(spec, x_test[:3])         # 3 digits as starts of an ascent
    >>> to_images(spec, tf.constant(params))             # the 3 digits (within 0.001)
    """
    low, high = np.float32(spec.low), np.float32(spec.high)
    q = np.clip((np.asarray(images, np.float32) - low) / (high - low), START_MARGIN,
                1 - START_MARGIN)
    logits = np.log(q / (1 - q))
    if spec.shape[-1] == 3:                       # undo the decorrelated colour: rgb = dec C^T
        logits = np.linalg.solve(COLOUR_SQRT, np.moveaxis(logits, -1, -2)).swapaxes(-1, -2)
    if spec.parametrization == "pixel":
        return logits.astype(np.float32)
    h, w, _ = spec.shape
    spectrum = np.fft.rfft2(4 * np.moveaxis(logits, -1, 1)) / fourier_scale(h, w, spec.decay)
    return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)


def to_images(spec: ImageSpec, params):
    r"""Parameters (N, *parameter_shape) -> images (N, H, W, C) in the range (TensorFlow):
    inverse FFT of the scaled coefficients (or the logits), decorrelated colour for 3 channels,
    then :math:`lo + (hi - lo)\,\sigma(\cdot)`.

    >>> to_images(spec, tf.zeros((2,) + spec.parameter_shape()))   # 2 grey images, mid-range
    """
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
    ``transforms`` ("constant": the range's per-channel ``low``).

    >>> seen = transform(images, Transforms(), tf.constant([0, 1]), spec.low)   # step 1, seed 0
    """
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
    \x_{r,c})^2)^{\beta/2}` per image (N,) (Mahendran & Vedaldi's :math:`V^\beta`).

    >>> total_variation(vis.images).numpy()      # (N,): small for a smooth image
    """
    import tensorflow as tf

    down = images[:, 1:, :-1] - images[:, :-1, :-1]
    right = images[:, :-1, 1:] - images[:, :-1, :-1]
    squared = down ** 2 + right ** 2 + 1e-8           # + 1e-8: a finite gradient at 0, beta < 2
    return tf.reduce_mean(squared ** (beta / 2), axis=[1, 2, 3])


def normalised(spec: ImageSpec, images):
    r"""Images mapped to [-1, 1] by the range (the middle of the range is 0): the priors' scale,
    the same for [0, 1], [-1, 1] or [0, 255] inputs,
    :math:`\tilde x = (2\x - (lo + hi)) / (hi - lo)`.

    >>> scaled = normalised(spec, images)        # [0, 1] images: 0 -> -1, 0.5 -> 0, 1 -> 1
    """
    low, high = np.float32(spec.low), np.float32(spec.high)
    return (2 * images - (low + high)) / (high - low)


def adam(params, gradient, m, v, t, learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    r"""One Adam step of gradient ASCENT (Kingma & Ba 2015): :math:`m \leftarrow b_1 m + (1-b_1)
    g`, :math:`v \leftarrow b_2 v + (1-b_2) g^2`, :math:`p \leftarrow p + \eta\,\hat m /
    (\sqrt{\hat v} + \epsilon)` with the bias corrections :math:`\hat m = m / (1 - b_1^t)`,
    :math:`\hat v = v / (1 - b_2^t)`; t counts from 1. Element-wise, so images never interact.

    >>> params, m, v = adam(params, gradient, m, v, tf.constant(1), 0.05)   # the first step
    """
    import tensorflow as tf

    m = b1 * m + (1 - b1) * gradient
    v = b2 * v + (1 - b2) * gradient ** 2
    t = tf.cast(t, tf.float32)
    step = learning_rate * (m / (1 - b1 ** t)) / (tf.sqrt(v / (1 - b2 ** t)) + eps)
    return params + step, m, v


# --------------------------------------------------------------------------- the compiled ascent


def compiled_for_batches(fn, *rows):
    """``fn`` compiled (``tf.function``) once for batches of any size: ``rows`` gives the (shape,
    dtype) of one example of each argument, so another batch size never traces again.

    >>> measure = compiled_for_batches(values, ((28, 28, 1), "float32"), ((), "int32"))
    >>> measure(images, channels)                # images (N, 28, 28, 1), channels (N,)
    """
    import tensorflow as tf

    return tf.function(fn, input_signature=_batch_specs(rows))


def _batch_specs(rows) -> list:
    """A ``tf.TensorSpec`` per argument, for batches of any size of examples of the (shape,
    dtype) in ``rows``."""
    import tensorflow as tf

    return [tf.TensorSpec((None,) + tuple(shape), dtype) for shape, dtype in rows]


def ascent_step(spec: ImageSpec, transforms, gain, rows: list, n_priors: int):
    r"""The compiled step (params, m, v, *per-image tensors, t, seed, weights) -> (params, m, v)
    that :func:`ascend` runs: one Adam step (:func:`adam`) of ascent on

    .. math::  G(p) = \text{gain}(\x, T_{seed,t}(\x), \ldots), \qquad \x = \text{to\_images}(p)

    ``gain(images, seen, *per-image tensors, *priors)`` -> (N,) is the caller's objective, one
    value per image (each image's gradient is its own); ``seen`` is T(images), the transformed
    batch the model should see (:func:`transform`, drawn from (seed, t)). ``rows`` are the
    (shape, dtype) of one image's row of each per-image tensor; ``weights`` (n_priors + 1,) are
    the priors' weights then the learning rate, a tensor: changing them never traces again.

    >>> def gain(images, seen, channels, l2):   # a channel's mean minus an l2 prior
    ...     y = ops.take_along_axis(tap(seen)[0], channels[:, None, None, None], axis=-1)
    ...     return ops.mean(y, axis=[1, 2, 3]) - l2 * ops.mean(images ** 2, axis=[1, 2, 3])
    >>> step = ascent_step(spec, Transforms(), gain, [((), "int32")], n_priors=1)
    """
    import tensorflow as tf

    def step(params, m, v, *args):
        *per_image, t, seed, weights = args
        *priors, learning_rate = tf.unstack(weights)
        with tf.GradientTape() as tape:
            tape.watch(params)
            images = to_images(spec, params)
            seen = transform(images, transforms, tf.stack([seed, t]), spec.low)
            value = gain(images, seen, *per_image, *priors)
        return adam(params, tape.gradient(value, params), m, v, t, learning_rate)

    params = (spec.parameter_shape(), "float32")                   # params, m and v
    scalars = [tf.TensorSpec((), tf.int32)] * 2 + [tf.TensorSpec((n_priors + 1,), tf.float32)]
    return tf.function(step, input_signature=_batch_specs([params] * 3 + list(rows)) + scalars)


def ascend(step, spec: ImageSpec, n: int, per_image: list, steps: int, seed: int, batch_size: int,
           bar, weights: tuple, start=None, last=(None, 0)) -> np.ndarray:
    """Run the compiled ``step`` (:func:`ascent_step`) ``steps`` times on each batch of images;
    returns the final parameters (n, ...). ``per_image`` are arrays (n, ...) cut into the same
    batches; ``weights`` (prior weights, learning rate) become a tensor. ``start``: the first
    parameters (n, ...), by default the random start drawn from (seed, i); ``last`` = (another
    compiled step, k): the last k of the steps are its (a schedule, e.g. no transformations).

    >>> params = ascend(step, spec, n, [kind_ids, channels], 256, 0, 32, bar, (l2, tv, 0.05))
    """
    import tensorflow as tf

    finished, weights = [], tf.constant(weights, tf.float32)
    last_step, last_steps = last
    for rows in _checks.batches(n, batch_size):
        params = tf.constant(initial_parameters(spec, rows.start, rows.stop, seed)
                             if start is None else start[rows])
        m = v = tf.zeros_like(params)
        args = [tf.constant(a[rows]) for a in per_image]
        for t in range(1, steps + 1):
            step_t = last_step if t > steps - last_steps else step
            params, m, v = step_t(params, m, v, *args, tf.constant(t), tf.constant(seed), weights)
            bar.update(1)
        finished.append(params.numpy())
    return np.concatenate(finished)
