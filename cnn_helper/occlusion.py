r"""Occlusion sensitivity: how much a target changes when a patch of the input is hidden.

For an input :math:`\x^{(i)}` and a target :math:`\y_{(l),k}` (a head output such as the
probability of class 8, or a ``Feature``), the patch of size :math:`f_r \times f_c` centred at each
location (r, c) is painted with a fill value (the lecture's "hiding" of the sub-region), giving
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

A max-pooled Feature is pooled afresh on every occluded copy (``keep_location=False``, how much
the feature itself changes); ``keep_location=True`` reads it at the clean image's argmax instead.

The occluded copies are built in the compiled graph from boolean masks (an outer product of a row
and a column interval per centre), ``batch_size`` copies at a time, so memory is bounded. Run in
full, the cost is that of their forward passes; :mod:`cnn_helper.incremental` recomputes each
layer only where the patch changes it (the same map, several times faster on deep CNNs:
``method="auto"`` uses it where ``incremental_cost`` predicts a gain). The result does not depend
on ``batch_size``.

Example
-------
>>> r = sensitivity_map(model, x_test[0], 8, patch=4, stride=1)    # target: P(class 8)
>>> r.relative.shape                # (28, 28): same spatial size as the image
>>> occlude(x_test[0], [(14, 14)], patch=4)                        # the occluded input itself
>>> sensitivity_map(model, x_test[:5], 8).values.shape             # (5, 28, 28): a batch
>>> print(incremental_cost(model, 8, patch=4))     # what incremental inference recomputes
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

from . import _checks, _graph, features, incremental, similarity
from ._checks import BATCH_SIZE
from .features import Feature
from .incremental import approximate
from .incremental.approximate import Approximate  # noqa: F401 (occlusion.Approximate)
from .rise import rise  # noqa: F401 (occlusion.rise: random masks instead of one patch)

FILLS = ("extreme", "zero", "mean")
METHODS = ("auto", "full", "incremental", "approximate")
RANGES = ((-1.0, 1.0), (0.0, 255.0))
"""The usual ranges of image values, smallest first: [0, 1] (the package's MNIST) or [-1, 1]
(e.g. MobileNetV2's preprocess_input), then [0, 255] (raw pixels, models with a Rescaling layer).
The fill "extreme" is the top of the first one that holds the image."""
RANGE_TOLERANCE = 1e-3   # float rounding: an image in [0, 1.0000001] is still a [0, 1] image


@dataclass(frozen=True)
class OcclusionMap:
    r"""Occlusion sensitivity maps of one image, or of a batch (then every field but ``target``,
    ``locations``, ``bounds``, ``patch`` and ``stride`` has a leading image axis N).

    target    : the Feature explained (a class index becomes the head's Feature)
    baseline  : the un-occluded value :math:`\y_{(l),k}|_{\y_{(0)}=\x}`
    values    : (R, C) the target with the patch centred at (rows[i], cols[j])
    delta     : values - baseline (the absolute change)
    relative  : delta / |baseline| (the proportional change); all NaN when baseline is 0, where
                it is undefined (use delta then)
    locations : (rows (R,), cols (C,)): the pixel coordinates of the patch centres
    bounds    : (rows (R, 2), cols (C, 2)): [start, stop) of each patch along each axis, clipped
    patch     : (f_r, f_c);  stride: (s_r, s_c)
    fill      : (channels,) the value painted into each channel of the patch: the number that
                was used, whatever ``fill`` asked for (for "extreme": the top of the image's
                range, 1.0 for [0, 1] images, 255.0 for [0, 255] ones, see ``fill_value``)
    method    : how the values were computed: "full" (every occluded copy through the whole
                network), "incremental" (only the layers' changed regions, the same numbers up
                to float rounding) or "approximate" (see ``sensitivity_map``)

    Its repr is a summary that says which fill was used; the arrays are its fields.
    """

    target: Feature
    baseline: object
    values: np.ndarray
    delta: np.ndarray
    relative: np.ndarray
    locations: tuple
    bounds: tuple
    patch: tuple
    stride: tuple
    fill: np.ndarray
    method: str = "full"

    def example(self, i: int) -> "OcclusionMap":
        """The map of image i of a batch result."""
        if np.ndim(self.baseline) == 0:
            raise ValueError("this occlusion map is of one image; it has no example to choose")
        return replace(self, baseline=float(self.baseline[i]), values=self.values[i],
                       delta=self.delta[i], relative=self.relative[i], fill=self.fill[i])

    def mean(self, which=None) -> "OcclusionMap":
        r"""The average map of the images ``which`` of a batch result (default: all of them).

        Every array field becomes its mean over those images, e.g. for the set :math:`S` of
        chosen images :math:`\bar{\Delta}_{r,c} = \frac{1}{|S|} \sum_{i \in S} \Delta^{(i)}_{r,c}`
        (``relative`` averages the images where it is defined). Drawn over the mean image, it
        shows what hiding each place does on average, not for one chosen example.

        >>> r = sensitivity_map(model, x_test[y_test == 8], 8, stride=2)
        >>> plot.occlusion_map(x_test[y_test == 8].mean(axis=0), r.mean())
        """
        if np.ndim(self.baseline) == 0:
            raise ValueError("this occlusion map is of one image; there is nothing to average")
        chosen = np.arange(len(self.baseline)) if which is None else np.asarray(which)
        if chosen.dtype == bool:
            chosen = np.flatnonzero(chosen)
        if chosen.size == 0:
            raise ValueError("which selects no image: give indices or a mask of the images to "
                             "average (e.g. y == 8)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN relative: stays NaN
            relative = np.nanmean(self.relative[chosen], axis=0)
        return replace(self, baseline=float(np.mean(self.baseline[chosen])),
                       values=self.values[chosen].mean(axis=0),
                       delta=self.delta[chosen].mean(axis=0), relative=relative,
                       fill=self.fill[chosen].mean(axis=0))

    def __repr__(self) -> str:
        images = "one image" if np.ndim(self.baseline) == 0 else f"{len(self.baseline)} images"
        fill = np.array2string(np.asarray(self.fill), precision=4, separator=", ",
                               threshold=12)
        return (f"OcclusionMap({self.target}, {images}, map {self.values.shape[-2]}x"
                f"{self.values.shape[-1]}, patch {self.patch[0]}x{self.patch[1]}, stride "
                f"{self.stride[0]}x{self.stride[1]}, fill={fill}, {self.method})")


# --------------------------------------------------------------------------- checks


def _pair(value, name: str) -> tuple:
    """An int or a pair of ints, each >= 1, as a pair."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(_checks.is_int(v) for v in pair):
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
    """One image (H, W, C) or a batch of one -> (H, W, C) float32 (integers cast, unscaled)."""
    x = _checks.float_images(x, name, integers_ok=True)
    if x.ndim == 4:
        if len(x) != 1:
            raise ValueError(f"{name} has {len(x)} images; give one image (H, W, C) or a batch "
                             "of one")
        x = x[0]
    if x.ndim != 3:
        raise ValueError(f"{name} has shape {x.shape}; it must be one image (H, W, C)")
    return x


def extreme_value(x) -> np.ndarray:
    """The (C,) "extreme" fill of image ``x`` (H, W, C): the top of its range of values.

    1.0 when every value lies in [-1, 1] (an image in [0, 1] or [-1, 1]), 255.0 when they lie in
    [0, 255] (``RANGES``); otherwise (a range without a convention, e.g. caffe-style
    preprocessing in [-124, 151], or standardised values) the image's own maximum of each channel.
    It is read from the one image, so a batch gives every image the fill it would get alone:
    the result never depends on how the data is split or on ``batch_size``.

    >>> extreme_value(x_test[0])                     # MNIST in [0, 1]: array([1.], dtype=float32)
    """
    n_channels = x.shape[-1]
    lo, hi = float(x.min()), float(x.max())
    for bottom, top in RANGES:
        if lo >= bottom - RANGE_TOLERANCE and hi <= top + RANGE_TOLERANCE:
            return np.full(n_channels, top, np.float32)
    return x.reshape(-1, n_channels).max(axis=0).astype(np.float32)


def fill_value(fill, x) -> np.ndarray:
    """The (C,) value painted into the patch for image ``x`` (H, W, C).

    "extreme": the top of the image's range (``extreme_value``: 1.0 for the package's [0, 1]
    images, a bright square, as in the lecture; 255.0 for [0, 255] images); "zero": 0.0; "mean":
    the image's mean of each channel; a number: that value in every channel; an array of C
    numbers: one value per channel.

    Choosing: on MNIST "extreme" paints ink (it *adds* a stroke); "zero" paints the background
    (it erases). Other ranges take a number: caffe-style ``preprocess_input`` (VGG16, ResNet50)
    ``fill=255 - np.array([103.939, 116.779, 123.68])`` for white or ``fill=0.0`` for the mean
    colour, standardised inputs ``fill=0.0``.
    """
    n_channels = x.shape[-1]
    if isinstance(fill, str):
        _checks.one_of(fill, "fill", FILLS)
        if fill == "mean":
            return x.reshape(-1, n_channels).mean(axis=0).astype(np.float32)
        return extreme_value(x) if fill == "extreme" else np.zeros(n_channels, np.float32)
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


def patch_bounds(locations, size: int, patch: int):
    """[start, stop) of the patch of length ``patch`` centred at each of ``locations`` along an
    axis of length ``size``, clipped to [0, size): start = c - (patch - 1) // 2, stop = start +
    patch (Keras "same" split)."""
    start = np.asarray(locations, np.int64) - (patch - 1) // 2
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


def _bounds_of(locations, image_shape, patch) -> np.ndarray:
    """(4, B) int32 patch bounds of the patches centred at ``locations`` (B, 2)."""
    return np.stack([*patch_bounds(locations[:, 0], image_shape[0], patch[0]),
                     *patch_bounds(locations[:, 1], image_shape[1], patch[1])]).astype(np.int32)


def occlude(x, locations, patch=4, fill="extreme") -> np.ndarray:
    """The occluded images that ``sensitivity_map`` feeds the model, for the given locations.

    x         : one image (H, W, C) or a batch of one
    locations : a list of (row, col) pixel coordinates of patch centres
    Returns (len(locations), H, W, C) float32.

    >>> occlude(x_test[0], [(0, 0), (14, 14)], patch=4)     # a bright 3x3 corner, a 4x4 square
    """
    x = _one_image(x)
    patch = _check_patch(patch, x.shape)
    locations = np.asarray(locations, np.int64).reshape(-1, 2)
    for axis, n in enumerate(x.shape[:2]):
        bad = locations[(locations[:, axis] < 0) | (locations[:, axis] >= n), axis]
        if bad.size:
            raise ValueError(f"centre coordinate {int(bad[0])} is outside the image, whose "
                             f"{'rows' if axis == 0 else 'cols'} are 0..{n - 1}")
    return np.asarray(_occluded(x, fill_value(fill, x), _bounds_of(locations, x.shape, patch)))


def occluded_inputs(x, result: OcclusionMap, locations) -> np.ndarray:
    """The occluded inputs behind entries of ``result``: ``occlude`` with its patch and fill."""
    return occlude(x, locations, result.patch, result.fill)


# --------------------------------------------------------------------------- the map


def _step(model, feature: Feature, at: bool):
    """Compiled: (image, fill, patch bounds of B copies, channel[, locations]) -> the target on
    each copy (B,). One trace per layer and pooling: a new channel does not trace again."""
    import tensorflow as tf

    def build():
        tap = _graph.tap(model, [feature.layer])
        image_shape = _graph.input_shape(model)
        n_spatial = len(_graph.output_shape(model, feature.layer)) - 1
        # the fill's static channel count keeps the occluded batch's shape static, which the
        # convolutions need to run at full speed
        specs = [tf.TensorSpec(image_shape, tf.float32),
                 tf.TensorSpec(image_shape[-1:], tf.float32),
                 tf.TensorSpec((4, None), tf.int32), tf.TensorSpec((), tf.int32)]
        specs += [tf.TensorSpec((None, n_spatial), tf.int64)] if at else []

        @tf.function(input_signature=specs)
        def step(x, fill, bounds, channel, locations=None):
            y = tap(_occluded(x, fill, bounds))[0]
            value = features.read(y, channel, feature.pool, locations)[0]
            return tf.cast(value, tf.float32)        # a mixed-precision layer computes in float16

        return step

    key = ("occlusion step", _graph.path_name(model, feature.layer), feature.pool, at)
    return _graph.memo(model, key, build)


def _grid(image_shape, patch, stride):
    """The patch centres (rows, cols), their bounds, and the (4, R*C) bounds of every copy in
    row-major order."""
    rows, cols = (np.arange(0, n, s) for n, s in zip(image_shape[:2], stride))
    row_bounds = np.stack(patch_bounds(rows, image_shape[0], patch[0]), axis=1)
    col_bounds = np.stack(patch_bounds(cols, image_shape[1], patch[1]), axis=1)
    r, c = np.repeat(np.arange(len(rows)), len(cols)), np.tile(np.arange(len(cols)), len(rows))
    copies = np.concatenate([row_bounds[r], col_bounds[c]], axis=1).T.astype(np.int32)
    return (rows, cols), (row_bounds, col_bounds), copies


def _relative(feature, baseline, delta):
    """delta / |baseline|; NaN (with a warning) where the baseline is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = delta / np.abs(baseline)
    zero = np.asarray(baseline) == 0
    if np.any(zero):
        warnings.warn(f"the un-occluded value of {feature} is 0 (in {int(np.sum(zero))} image(s)): "
                      "the proportional change is undefined (relative is NaN); use delta",
                      RuntimeWarning, stacklevel=3)
        relative = np.where(zero, np.nan, relative).astype(np.float32)
    return relative


def _full_values(model, feature, images, fills, copies, at, batch_size) -> tuple:
    """Full re-inference: (the target on every copy of every image (N, M), baselines (N,)),
    ``batch_size`` copies per call of the compiled ``_step``; the baseline is one more copy,
    with an empty patch."""
    step = _step(model, feature, at is not None)
    copies = np.concatenate([copies, np.zeros((4, 1), np.int32)], axis=1)
    values = []
    for i, image in enumerate(images):
        where = () if at is None else (np.repeat(at[i:i + 1], copies.shape[1], axis=0),)
        out, = _graph.run_batched(lambda b, *w: [step(image, fills[i], b.T, feature.channel, *w)],
                                  _graph.batch_size(model, batch_size), copies.T, *where)
        values.append(out)
    values = np.stack(values)
    return values[:, :-1], values[:, -1]


def _plan(model, feature, image_shape, patch, threshold=1.0):
    """(the incremental Plan, None) or (None, why the geometry cannot handle this model)."""
    try:
        plan = incremental.make_plan(model, _graph.path_name(model, feature.layer), patch,
                                     image_shape, threshold)
    except (ValueError, TypeError) as e:
        return None, str(e)
    if plan.target is None:
        return None, f"layer {feature.layer!r} is not one layer call of the model's graph"
    if len(plan.lengths) == 1:
        first = plan.steps[0]
        return None, f"its first layer {first.call.name!r} runs on the whole image: {first.reason}"
    return plan, None


def _choose(model, feature, image_shape, patch, method):
    """(the method to run: "full", "incremental" or an Approximate, its plan or None)."""
    if method == "approximate":
        method = approximate.Approximate()
    if not isinstance(method, approximate.Approximate):
        _checks.one_of(method, "method", METHODS)
    if method == "full":
        return "full", None
    threshold = method.threshold if isinstance(method, approximate.Approximate) else 1.0
    plan, why = _plan(model, feature, image_shape, patch, threshold)
    if plan is None:
        if method != "auto":
            warnings.warn(f"incremental occlusion cannot follow model {model.name!r} ({why}); "
                          "the map is computed by full re-inference", UserWarning, stacklevel=3)
        return "full", None
    if method == "auto":
        return ("incremental", plan) if incremental.cost(plan).pays else ("full", None)
    return method, plan


def _values(model, how, plan, feature, images, fills, copies, at, batch_size, grid_shape):
    """(the target on every occluded copy (N, M), the baselines (N,)) by the chosen method."""
    if how == "full":
        return _full_values(model, feature, images, fills, copies, at, batch_size)
    if how == "incremental":
        return incremental.occluded_values(model, plan, feature, images, fills, copies, at,
                                           batch_size)
    return approximate.occluded_values(model, plan, feature, images, fills, copies, at,
                                       batch_size, how, grid_shape)


def sensitivity_map(model, x, target, patch=4, stride=1, fill="extreme",
                    keep_location: bool = False, batch_size=BATCH_SIZE,
                    method="auto") -> OcclusionMap:
    r"""The occlusion sensitivity map of ``target`` for each image of ``x``.

    x      : one image (H, W, C) or a batch (N, H, W, C), in the range the model takes (the
             package's MNIST: float in [0, 1])
    target : a head class index k (:math:`\y_{(L),k}`, the model's output, e.g. the probability of
             class k) or a ``Feature``
    patch  : f, or (f_r, f_c): the size of the occluding square (clipped at the border)
    stride : s, or (s_r, s_c): centres every s pixels, starting at 0 (see the module docstring)
    fill   : "extreme" (the top of the image's range: a bright square), "zero", "mean", a number,
             or one per channel; see ``fill_value`` (``result.fill`` says what was painted)
    keep_location : read a max-pooled Feature at the clean image's argmax (default: pool afresh)
    batch_size : occluded copies per compiled call; the result does not depend on it
    method : "full": every occluded copy runs through the whole network; "incremental": each
             layer is recomputed only where the patch changes it (:mod:`cnn_helper.incremental`:
             the same map up to float rounding, several times faster on deep CNNs, see
             ``incremental_cost``); "auto" (default): incremental where it pays, else full;
             "approximate" or ``Approximate(threshold, coarse, drill_down)``: faster, not
             exact (``compare`` it with an exact map). A graph incremental occlusion cannot
             follow is computed in full (with a warning if "incremental" was asked for).

    Returns an ``OcclusionMap``, with a leading image axis for a batch; ``result.method`` says
    how it was computed. When a baseline is 0 its proportional change is undefined:
    ``relative`` is NaN and a warning says to use ``delta``.

    >>> r = sensitivity_map(model, x_test[0], 8)      # patch 4, stride 1, bright patch
    >>> r.fill                                        # array([1.], dtype=float32): [0, 1] images
    >>> r.relative.min()                              # the largest proportional drop of P(8)
    """
    feature = features.check_feature(model, target)
    images, single = _graph.check_images(model, x)
    patch = _check_patch(patch, images.shape[1:])
    stride = _pair(stride, "stride")
    batch_size = _checks.batch_size(batch_size)
    fills = np.stack([fill_value(fill, image) for image in images])      # (N, C), per image
    at = features.fixed_locations(model, images, feature, keep_location, batch_size)
    how, plan = _choose(model, feature, images.shape[1:], patch, method)

    locations, bounds, copies = _grid(images.shape[1:], patch, stride)
    grid_shape = (len(locations[0]), len(locations[1]))
    values, baseline = _values(model, how, plan, feature, images, fills, copies, at,
                               batch_size, grid_shape)
    values = values.reshape((len(images),) + grid_shape)
    delta = values - baseline[:, None, None]
    result = OcclusionMap(feature, baseline, values, delta,
                          _relative(feature, baseline[:, None, None], delta), locations, bounds,
                          patch, stride, fills, how if isinstance(how, str) else "approximate")
    return result.example(0) if single else result


def incremental_cost(model, target, patch=4, image_shape=None) -> incremental.Cost:
    """What incremental occlusion recomputes for ``target`` and a ``patch``, per layer: the
    window of its output, the fraction of the output that is, and the FLOPs of one occluded
    copy, full vs incremental; ``.flop_ratio`` is the predicted speed-up and ``.pays`` says
    whether method="auto" uses it. ``image_shape`` (H, W, C): for a model of free input size.
    A ValueError says why when the model's graph cannot be followed.

    >>> print(incremental_cost(model, 8, patch=4))
    """
    feature = features.check_feature(model, target)
    image_shape = tuple(image_shape or _graph.input_shape(model))
    if None in image_shape:
        raise ValueError(f"model {model.name!r} takes images of any size {image_shape}; give "
                         "image_shape=(H, W, C)")
    plan, why = _plan(model, feature, image_shape, _check_patch(patch, image_shape))
    if plan is None:
        raise ValueError(f"incremental occlusion cannot follow model {model.name!r}: {why}")
    return incremental.cost(plan)


def compare(result: OcclusionMap, exact: OcclusionMap) -> tuple:
    """How close an (approximate) map is to an exact one of the same grid: (SSIM of their
    ``values``, the largest absolute difference), image by image for batch results (then two
    arrays). SSIM: ``similarity.ssim`` with the exact map's range of values as data range."""
    if np.shape(result.values) != np.shape(exact.values):
        raise ValueError(f"the maps have different grids {np.shape(result.values)} and "
                         f"{np.shape(exact.values)}; compute them with the same patch and stride")
    a = np.reshape(result.values, (-1,) + np.shape(result.values)[-2:])
    b = np.reshape(exact.values, a.shape)
    ssim = np.array([similarity.ssim(x, y) for x, y in zip(a, b)])
    worst = np.abs(a - b).reshape(len(a), -1).max(axis=1)
    return (float(ssim[0]), float(worst[0])) if np.ndim(exact.baseline) == 0 else (ssim, worst)
