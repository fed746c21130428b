r"""Occlusion sensitivity: how much a target changes when a patch of the input is hidden.

For one input :math:`\x^{(i)}` and a target :math:`\y_{(l),k}` (a head output such as the
probability of class 8, or a ``Feature``), the patch of size :math:`f_r \times f_c` centred at each
location (r, c) is painted with an extreme value (the lecture's "hiding" of the sub-region), giving
an occluded copy :math:`\x^{(i)}_{\setminus (r,c)}`. The *occlusion sensitivity map* holds

.. math::

    \text{values}_{r,c} = \y_{(l),k} |_{\y_{(0)} = \x^{(i)}_{\setminus (r,c)}} \qquad
    \text{delta}_{r,c} = \text{values}_{r,c} - \y_{(l),k} |_{\y_{(0)} = \x^{(i)}} \qquad
    \text{relative}_{r,c} = \frac{\text{delta}_{r,c}}{|\y_{(l),k} |_{\y_{(0)} = \x^{(i)}}|}

(``relative`` is the lecture's "proportional change": -0.3 means the target lost 30 % of its
un-occluded value). Like a convolution with one kernel and "same" padding, stride 1 gives a map
of the input's spatial size.

Patch placement (per spatial axis, patch size f, stride s, image size n):

- centres are 0, s, 2s, ... < n, so the map has ceil(n / s) entries (n for stride 1);
- the patch centred at c covers rows ``c - (f - 1) // 2`` to ``c + f // 2`` inclusive, the same
  split as Keras' "same" padding: an odd f is symmetric, an even f has one more row after the
  centre than before (f = 4 at c covers c-1, c, c+1, c+2);
- at the border the patch is clipped to the image (a patch centred at 0 of size 4 covers 0..2).

The occluded copies are built in the compiled graph from boolean masks (an outer product of a row
and a column interval per centre), ``batch_size`` copies at a time, so memory is bounded and the
cost is that of the forward passes. The result does not depend on ``batch_size``.

Example
-------
>>> r = sensitivity_map(model, x_test[0], 8, patch=4, stride=1)    # target: P(class 8)
>>> r.relative.shape                # (28, 28): same spatial size as the image
>>> occlude(x_test[0], [(14, 14)], patch=4)                        # the occluded input itself
"""
from __future__ import annotations

import dataclasses
import warnings
import weakref
from dataclasses import dataclass

import numpy as np

from . import features
from .features import Feature

FILLS = ("extreme", "zero", "mean")
EXTREME = 1.0   # the top of the [0, 1] range of the package's images: a bright square


@dataclass(frozen=True)
class OcclusionMap:
    r"""An occlusion sensitivity map of one image.

    target   : the Feature explained (a class index becomes the head's Feature)
    baseline : the un-occluded value :math:`\y_{(l),k}|_{\y_{(0)}=\x}`
    values   : (len(rows), len(cols)) the target with the patch centred at (rows[i], cols[j])
    delta    : values - baseline (the absolute change)
    relative : delta / |baseline| (the proportional change); all NaN when baseline is 0, where
               the proportional change is undefined (use delta then)
    centers  : (rows, cols), the pixel coordinates of the patch centres along each axis
    patch    : (f_r, f_c);  stride: (s_r, s_c)
    fill     : (C,) the value painted into each channel of the patch
    """

    target: Feature
    baseline: float
    values: np.ndarray
    delta: np.ndarray
    relative: np.ndarray
    centers: tuple
    patch: tuple
    stride: tuple
    fill: np.ndarray


# --------------------------------------------------------------------------- checks


def _pair(value, name: str) -> tuple:
    """An int or a pair of ints, each >= 1, as a pair."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                 for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints (rows, cols), got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return tuple(int(v) for v in pair)


def _check_patch(patch, image_shape) -> tuple:
    patch = _pair(patch, "patch")
    if patch[0] > image_shape[0] or patch[1] > image_shape[1]:
        raise ValueError(f"patch {patch[0]}x{patch[1]} is larger than the image, which is "
                         f"{image_shape[0]}x{image_shape[1]}")
    return patch


def _one_image(x, name: str = "x") -> np.ndarray:
    """One image (H, W, C) or a batch of one -> (H, W, C) float32."""
    x = features.check_float_images(x, name)
    if x.ndim == 4:
        if len(x) != 1:
            raise ValueError(f"{name} has {len(x)} images; occlusion explains one image (H, W, C) "
                             "or a batch of one")
        x = x[0]
    if x.ndim != 3:
        raise ValueError(f"{name} has shape {x.shape}; occlusion needs one image (H, W, C)")
    return x


def fill_value(fill, x) -> np.ndarray:
    """The (C,) value painted into the patch for image ``x`` (H, W, C).

    "extreme": 1.0, the maximum of the [0, 1] range of the package's images (the lecture's extreme
    value: a bright square); "zero": 0.0; "mean": the image's mean of each channel; a number: that
    value in every channel; an array of C numbers: one value per channel.
    """
    n_channels = x.shape[-1]
    if isinstance(fill, str):
        if fill not in FILLS:
            raise ValueError(f"fill {fill!r} is not one of {FILLS} or a number")
        if fill == "mean":
            return x.reshape(-1, n_channels).mean(axis=0).astype(np.float32)
        return np.full(n_channels, EXTREME if fill == "extreme" else 0.0, np.float32)
    if isinstance(fill, bool):
        raise TypeError(f"fill must be one of {FILLS} or a number, got {fill!r}")
    try:
        value = np.asarray(fill, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError(f"fill must be one of {FILLS} or a number, got {fill!r}") from None
    if value.ndim == 0:
        value = np.full(n_channels, value, np.float32)
    if value.shape != (n_channels,):
        raise ValueError(f"fill {fill!r} has shape {value.shape}; give one number or {n_channels} "
                         f"(one per channel of the image)")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"fill {fill!r} is not finite")
    return value


# --------------------------------------------------------------------------- patches


def patch_bounds(centers, size: int, patch: int):
    """[start, stop) of the patch of length ``patch`` centred at each of ``centers``, clipped to
    [0, size): start = c - (patch - 1) // 2, stop = start + patch (Keras "same" split)."""
    start = np.asarray(centers, np.int64) - (patch - 1) // 2
    return np.clip(start, 0, size), np.clip(start + patch, 0, size)


def _occluded(x, fill, bounds):
    """The occluded copies of one image x (H, W, C): (B, H, W, C), built from boolean masks.

    bounds (4, B) int32: row start, row stop, col start, col stop of each patch. Pixel (r, c) of
    copy b is ``fill`` where r0[b] <= r < r1[b] and c0[b] <= c < c1[b], else x[r, c].
    """
    import tensorflow as tf

    r0, r1, c0, c1 = tf.unstack(bounds)
    rows = tf.range(tf.shape(x)[0])[None, :]
    cols = tf.range(tf.shape(x)[1])[None, :]
    in_rows = (rows >= r0[:, None]) & (rows < r1[:, None])                  # (B, H)
    in_cols = (cols >= c0[:, None]) & (cols < c1[:, None])                  # (B, W)
    mask = in_rows[:, :, None, None] & in_cols[:, None, :, None]            # (B, H, W, 1)
    return tf.where(mask, fill, x[None])


def occlude(x, centers, patch=4, fill="extreme") -> np.ndarray:
    """The occluded images that ``sensitivity_map`` feeds the model, for the given centres.

    x       : one image (H, W, C) or a batch of one
    centers : a list of (row, col) pixel coordinates of patch centres
    Returns (len(centers), H, W, C) float32.

    >>> occlude(x_test[0], [(0, 0), (14, 14)], patch=4)     # a bright 3x3 corner, a 4x4 square
    """
    x = _one_image(x)
    patch = _check_patch(patch, x.shape)
    centers = np.asarray(centers, np.int64).reshape(-1, 2)
    for axis, n in enumerate(x.shape[:2]):
        bad = centers[(centers[:, axis] < 0) | (centers[:, axis] >= n), axis]
        if bad.size:
            raise ValueError(f"centre coordinate {int(bad[0])} is outside the image, whose "
                             f"{'rows' if axis == 0 else 'cols'} are 0..{n - 1}")
    bounds = np.stack([*patch_bounds(centers[:, 0], x.shape[0], patch[0]),
                       *patch_bounds(centers[:, 1], x.shape[1], patch[1])]).astype(np.int32)
    return np.asarray(_occluded(x, fill_value(fill, x), bounds))


_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _step(model, feature: Feature):
    """Compiled: (image, fill, patch bounds of B copies, channel) -> the target on each copy (B,).

    One function per layer and kind of selection (reduce / location): the channel is an argument,
    so stepping through the channels of a layer does not trace again.
    """
    import tensorflow as tf

    tap = features.tap_model(model, [feature.layer])
    key = dataclasses.replace(feature, channel=0)     # the selection, applied to the gathered channel
    cache = _STEPS.setdefault(tap, {})
    if key not in cache:
        image_shape = tuple(tap.inputs[0].shape[1:])
        # a static channel count for the fill keeps the occluded batch's shape static, which the
        # convolutions need to run at full speed
        specs = [tf.TensorSpec(image_shape, tf.float32), tf.TensorSpec(image_shape[-1:], tf.float32),
                 tf.TensorSpec((4, None), tf.int32), tf.TensorSpec((), tf.int32)]
        tap_ref = weakref.ref(tap)      # the cache must not keep the sub-model alive

        @tf.function(input_signature=specs)
        def step(x, fill, bounds, channel):
            out = tap_ref()(_occluded(x, fill, bounds), training=False)
            out = out[0] if isinstance(out, (list, tuple)) else out
            return features.select(tf.gather(out, channel[None], axis=-1), key)[0]

        cache[key] = step
    return cache[key]


def sensitivity_map(model, x, target, patch=4, stride=1, fill="extreme",
                    batch_size: int = 256) -> OcclusionMap:
    r"""The occlusion sensitivity map of ``target`` for one image ``x``.

    x      : one image (H, W, C) or a batch of one, float in [0, 1]
    target : a head class index k (:math:`\y_{(L),k}`, the model's output, e.g. the probability of
             class k) or a ``Feature``
    patch  : f, or (f_r, f_c): the size of the occluding square (clipped at the border)
    stride : s, or (s_r, s_c): centres every s pixels, starting at 0 (see the module docstring for
             exactly where an even patch sits)
    fill   : "extreme" (1.0, the maximum of the [0, 1] image range: a bright square), "zero",
             "mean" (the image's channel means), a number, or one number per channel
    batch_size : occluded copies per forward pass; the result does not depend on it

    Returns an ``OcclusionMap`` (baseline, values, delta, relative, centers, patch, stride, fill).
    When the baseline is 0 the proportional change is undefined: ``relative`` is NaN and a
    warning says to use ``delta``.

    >>> r = sensitivity_map(model, x_test[0], 8)      # patch 4, stride 1, bright patch
    >>> r.relative.min()                              # the largest proportional drop of P(8)
    """
    feature = features.check_feature(model, features.as_feature(model, target))
    x = _one_image(x)
    features.check_input(model, x)                 # the model's input shape
    patch = _check_patch(patch, x.shape)
    stride = _pair(stride, "stride")
    batch_size = features.check_batch_size(batch_size)
    fill = fill_value(fill, x)

    rows = np.arange(0, x.shape[0], stride[0])
    cols = np.arange(0, x.shape[1], stride[1])
    r0, r1 = patch_bounds(rows, x.shape[0], patch[0])
    c0, c1 = patch_bounds(cols, x.shape[1], patch[1])
    grid_r, grid_c = np.repeat(np.arange(len(rows)), len(cols)), np.tile(np.arange(len(cols)), len(rows))
    # one copy per centre, row-major; the last one has an empty patch: the un-occluded baseline
    bounds = np.stack([np.append(r0[grid_r], 0), np.append(r1[grid_r], 0),
                       np.append(c0[grid_c], 0), np.append(c1[grid_c], 0)]).astype(np.int32)

    step = _step(model, feature)
    out = np.concatenate([np.asarray(step(x, fill, bounds[:, s], feature.channel))
                          for s in features.batches(bounds.shape[1], batch_size)])
    baseline = float(out[-1])
    values = out[:-1].reshape(len(rows), len(cols))
    delta = values - np.float32(baseline)
    if baseline == 0:
        warnings.warn(f"the un-occluded value of {feature} is 0: the proportional change is "
                      "undefined (relative is NaN); use delta", RuntimeWarning, stacklevel=2)
        relative = np.full_like(delta, np.nan)
    else:
        relative = delta / np.float32(abs(baseline))
    return OcclusionMap(feature, baseline, values, delta, relative, (rows, cols), patch, stride, fill)


def occluded_inputs(x, result: OcclusionMap, centers) -> np.ndarray:
    """The occluded inputs behind chosen entries of ``result``: ``occlude`` with its patch and fill."""
    return occlude(x, centers, result.patch, result.fill)
