r"""Occlusion sensitivity: how much a target changes when a patch of the input is hidden.

Written below for an image (H, W, C); a sequence (L, C) (a Conv1D model) or a volume
(D, H, W, C) (a Conv3D model) works alike, with one patch size and stride per spatial axis and
a map of one value per patch centre on its grid (a 1-D or a 3-D map).

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

Patch placement (per spatial axis, patch size f, stride s, input length n along it):

- centres are 0, s, 2s, ... < n, so the map has ceil(n / s) entries (n for stride 1);
- the patch centred at c covers rows ``c - (f - 1) // 2`` to ``c + f // 2`` inclusive, the same
  split as Keras' "same" padding: an odd f is symmetric, an even f has one more row after the
  centre than before (f = 4 at c covers c-1, c, c+1, c+2);
- at the border the patch is clipped to the image (a patch centred at 0 of size 4 covers 0..2).

The fill is one of the package's reference forms that is one value per channel ("extreme",
"zero", "mean", a number, one per channel; ``cnn_helper._reference``): for occluding with a
blurred copy or another image, use RISE's ``fill`` or the faithfulness metrics' ``baseline``.

A max-pooled Feature is pooled afresh on every occluded copy (``keep_location=False``, how much
the feature itself changes); ``keep_location=True`` reads it at the clean image's argmax instead.

The occluded copies are built in the compiled graph from boolean masks (an outer product of one
interval per spatial axis per centre), ``batch_size`` copies at a time, so memory is bounded: run in
full, they go through the package's perturbation engine (``cnn_helper._perturb``) and cost their
forward passes; :mod:`cnn_helper.incremental` recomputes each layer only where the patch changes
it (the same map, several times faster on deep CNNs: ``strategy="auto"`` uses it where
``incremental_cost`` predicts a gain; it follows images only, so a sequence or a volume is run
in full). The result does not depend on ``batch_size``.

Example
-------
>>> r = sensitivity_map(model, x_test[0], 8, patch=4, stride=1)    # target: P(class 8)
>>> r.relative.shape                # (28, 28): same spatial size as the image
>>> occlude(x_test[0], [(14, 14)], patch=4)                        # the occluded input itself
>>> sensitivity_map(model, x_test[:5], 8).values.shape             # (5, 28, 28): a batch
>>> print(incremental_cost(model, 8, patch=4))     # what incremental inference recomputes
>>> attribution(model, x_test[:5], 8).shape   # (5, 28, 28, 1): the drop, as a saliency map
>>> sensitivity_map(conv1d_model, sequence, 2, patch=8, stride=4).values.shape   # (16,)
>>> sensitivity_map(conv3d_model, volume, 2, patch=(2, 4, 4), stride=4).values.shape  # 3-D grid
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

from . import _checks, _graph, _patches, _perturb, _reference, features, incremental, similarity
from ._checks import BATCH_SIZE
from ._patches import (  # noqa: F401 (public here: the patches and fills occlusion paints)
    extreme_value,
    fill_value,
    occlude,
    patch_bounds,
)
from .features import Feature
from .incremental import approximate
from .incremental.approximate import Approximate  # noqa: F401 (occlusion.Approximate)
from .rise import rise  # noqa: F401 (occlusion.rise: random masks instead of one patch)

FILLS = _reference.FORMS[:3]
"""The named fills: "zero", "mean", "extreme" (a number or one per channel work too)."""
STRATEGIES = ("auto", "full", "incremental", "approximate")
"""How the occluded values are computed (``sensitivity_map(strategy=...)``)."""


@dataclass(frozen=True)
class OcclusionMap:
    r"""Occlusion sensitivity maps of one image, or of a batch (then every field but ``target``,
    ``locations``, ``bounds``, ``patch``, ``stride`` and ``strategy`` has a leading image axis
    N).

    target     : the Feature explained (a class index becomes the head's Feature)
    unoccluded : the un-occluded value :math:`\y_{(l),k}|_{\y_{(0)}=\x}`
    values     : (R, C) the target with the patch centred at (rows[i], cols[j]); for a sequence
                 (L, C) or a volume (D, H, W, C) one axis per spatial axis of the input
    delta      : values - unoccluded (the absolute change)
    relative   : delta / |unoccluded| (the proportional change); all NaN when the un-occluded
                 value is 0, where it is undefined (use delta then)
    locations  : (rows (R,), cols (C,)): the pixel coordinates of the patch centres, one array
                 per spatial axis
    bounds     : (rows (R, 2), cols (C, 2)): [start, stop) of each patch along each axis, clipped
    patch      : (f_r, f_c), one size per spatial axis;  stride: (s_r, s_c), the same
    fill       : (channels,) the value painted into each channel of the patch: the number that
                 was used, whatever ``fill`` asked for (for "extreme": the top of the input's
                 range, 1.0 for [0, 1] images, 255.0 for [0, 255] ones, see ``fill_value``)
    strategy   : how the values were computed: "full" (every occluded copy through the whole
                 network), "incremental" (only the layers' changed regions, the same numbers up
                 to float rounding) or "approximate" (see ``sensitivity_map``)

    Its repr is a summary that says which fill was used; the arrays are its fields.
    """

    target: Feature
    unoccluded: object
    values: np.ndarray
    delta: np.ndarray
    relative: np.ndarray
    locations: tuple
    bounds: tuple
    patch: tuple
    stride: tuple
    fill: np.ndarray
    strategy: str = "full"

    def on_pixels(self, values, image_shape) -> np.ndarray:
        r"""A map's ``values`` (..., R, C), one per patch centre, on the pixel grid
        ``image_shape`` (H, W, ...) of its image (for a sequence or a volume: its spatial axes
        first, likewise): every pixel takes the value of its nearest patch centre. Along an axis
        of n pixels with stride s (centres 0, s, 2s, ...), pixel p takes the centre of index

        .. math::  j(p) = \min(\lfloor (p + \lfloor s/2 \rfloor) / s \rfloor,\; n_{centres} - 1)

        (halfway between two centres, the later one), so the map covers every pixel, the last
        row and column included; with stride 1 it is the map itself.

        >>> r = sensitivity_map(model, x_test[0], 8, stride=2)     # a (14, 14) map
        >>> r.on_pixels(r.relative, (28, 28)).shape
        (28, 28)
        """
        values, n_axes = np.asarray(values), len(self.stride)
        for axis, (n, s, centres) in enumerate(zip(image_shape, self.stride, self.locations)):
            nearest = np.minimum((np.arange(n) + s // 2) // s, len(centres) - 1)
            values = np.take(values, nearest, axis=values.ndim - n_axes + axis)
        return values

    def example(self, i: int) -> "OcclusionMap":
        """The map of image i of a batch result."""
        if np.ndim(self.unoccluded) == 0:
            raise ValueError("this occlusion map is of one image; it has no example to choose")
        return replace(self, unoccluded=float(self.unoccluded[i]), values=self.values[i],
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
        if np.ndim(self.unoccluded) == 0:
            raise ValueError("this occlusion map is of one image; there is nothing to average")
        chosen = np.arange(len(self.unoccluded)) if which is None else np.asarray(which)
        if chosen.dtype == bool:
            chosen = np.flatnonzero(chosen)
        if chosen.size == 0:
            raise ValueError("which selects no image: give indices or a mask of the images to "
                             "average (e.g. y == 8)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN relative: stays NaN
            relative = np.nanmean(self.relative[chosen], axis=0)
        return replace(self, unoccluded=float(np.mean(self.unoccluded[chosen])),
                       values=self.values[chosen].mean(axis=0),
                       delta=self.delta[chosen].mean(axis=0), relative=relative,
                       fill=self.fill[chosen].mean(axis=0))

    def __repr__(self) -> str:
        images = "one image" if np.ndim(self.unoccluded) == 0 else f"{len(self.unoccluded)} images"
        fill = np.array2string(np.asarray(self.fill), precision=4, separator=", ",
                               threshold=12)
        grid = _patches.size_text(np.shape(self.values)[-len(self.patch):])
        return (f"OcclusionMap({self.target}, {images}, map {grid}, patch "
                f"{_patches.size_text(self.patch)}, stride {_patches.size_text(self.stride)}, "
                f"fill={fill}, {self.strategy})")


def occluded_inputs(x, result: OcclusionMap, locations) -> np.ndarray:
    """The occluded inputs behind entries of ``result``: ``occlude`` with its patch and fill."""
    return occlude(x, locations, result.patch, result.fill)


# --------------------------------------------------------------------------- the map

def _relative(feature, unoccluded, delta):
    """delta / |unoccluded|; NaN (with a warning) where the un-occluded value is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = delta / np.abs(unoccluded)
    zero = np.asarray(unoccluded) == 0
    if np.any(zero):
        warnings.warn(f"the un-occluded value of {feature} is 0 (in {int(np.sum(zero))} image(s)): "
                      "the proportional change is undefined (relative is NaN); use delta",
                      RuntimeWarning, stacklevel=3)
        relative = np.where(zero, np.nan, relative).astype(np.float32)
    return relative


def _full_values(model, target, images, fills, copies, batch_size) -> tuple:
    """Full re-inference: (the target on every copy of every image (N, M), the un-occluded
    values (N,)), by the perturbation engine, ``batch_size`` copies per compiled call; the
    un-occluded image is one more copy of each, with an empty patch."""
    copies = np.concatenate([copies, np.zeros((len(copies), 1), np.int32)], axis=1)  # (2n, M+1)
    n_images, n_copies = len(images), copies.shape[1]
    bounds = np.tile(copies.T, (n_images, 1))                                  # (N (M + 1), 2n)
    values = _perturb.scores(model, target, _patches.occluded_copies(images, fills, bounds),
                             np.repeat(np.arange(n_images), n_copies),
                             _graph.batch_size(model, batch_size))
    values = values.reshape(n_images, n_copies)
    return values[:, :-1], values[:, -1]


def _plan(model, feature, image_shape, patch, threshold=1.0):
    """(the incremental Plan, None) or (None, why the geometry cannot handle this model)."""
    if len(image_shape) != 3:
        n = len(image_shape) - 1
        axes = f"{n} spatial ax" + ("is" if n == 1 else "es")
        return None, (f"its input {tuple(image_shape)} has {axes}; incremental occlusion "
                      "follows images (H, W, C) only")
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


def _choose(model, feature, image_shape, patch, strategy, counts, batch_size):
    """(the strategy to run: "full", "incremental" or an Approximate, its plan or None).
    counts: (images, occluded copies per image), whose fixed costs "auto" weighs too."""
    if strategy == "approximate":
        strategy = approximate.Approximate()
    if not isinstance(strategy, approximate.Approximate):
        _checks.one_of(strategy, "strategy", STRATEGIES)
    if strategy == "full":
        return "full", None
    threshold = strategy.threshold if isinstance(strategy, approximate.Approximate) else 1.0
    plan, why = _plan(model, feature, image_shape, patch, threshold)
    if plan is None:
        if strategy != "auto":
            warnings.warn(f"incremental occlusion cannot follow model {model.name!r} ({why}); "
                          "the map is computed by full re-inference", UserWarning, stacklevel=3)
        return "full", None
    if strategy == "auto":
        batches = (_graph.batch_size(model, batch_size),
                   incremental.step_batch_size(plan, batch_size, counts[1]))
        pays = incremental.cost(plan).pays_for(counts[1], counts[0], *batches)
        return ("incremental", plan) if pays else ("full", None)
    return strategy, plan


def _values(model, how, plan, target, images, fills, copies, batch_size, grid_shape):
    """(the target on every occluded copy (N, M), the un-occluded values (N,)) by the chosen
    strategy."""
    if how == "full":
        return _full_values(model, target, images, fills, copies, batch_size)
    if how == "incremental":
        return incremental.occluded_values(model, plan, target.feature, images, fills, copies,
                                           target.locations, batch_size)
    return approximate.occluded_values(model, plan, target.feature, images, fills, copies,
                                       target.locations, batch_size, how, grid_shape)


def _result(feature, unoccluded, values, geometry, fills, how) -> OcclusionMap:
    """The OcclusionMap of a batch from the target's values (N, R, C) (one axis per spatial
    axis) and un-occluded values (N,); ``geometry`` is (locations, bounds, patch, stride)."""
    unoccluded_per_entry = unoccluded.reshape((-1,) + (1,) * (values.ndim - 1))
    delta = values - unoccluded_per_entry
    return OcclusionMap(feature, unoccluded, values, delta,
                        _relative(feature, unoccluded_per_entry, delta), *geometry,
                        fills.astype(np.float32), how if isinstance(how, str) else "approximate")


def sensitivity_map(model, x, target, patch=4, stride=1, fill="extreme",
                    keep_location: bool = False, batch_size=BATCH_SIZE,
                    strategy="auto") -> OcclusionMap:
    r"""The occlusion sensitivity map of ``target`` for each image of ``x``.

    x      : one image (H, W, C) or a batch (N, H, W, C), in the range the model takes (the
             package's MNIST: float in [0, 1]); a sequence (L, C) or volume (D, H, W, C) too
    target : a head class index k (:math:`\y_{(L),k}`, the model's output, e.g. the probability of
             class k) or a ``Feature``
    patch  : f, or (f_r, f_c): the size of the occluding square (clipped at the border); one
             int per spatial axis in general ((f,) for a sequence, (f_d, f_r, f_c) for a volume)
    stride : s, or (s_r, s_c): centres every s pixels, starting at 0 (see the module docstring)
    fill   : "extreme" (the top of the input's range: a bright square), "zero", "mean", a
             number, or one per channel; see ``fill_value`` (``result.fill`` says what was
             painted)
    keep_location : read a max-pooled Feature at the clean image's argmax (default: pool afresh)
    batch_size : occluded copies per compiled call; the result does not depend on it
    strategy : how the values are computed (the map is the same): "full": every occluded copy
             runs through the whole network; "incremental": each layer is recomputed only where
             the patch changes it (:mod:`cnn_helper.incremental`: the same map up to float
             rounding, several times faster on deep CNNs, see ``incremental_cost``); "auto"
             (default): incremental where it pays, else full; "approximate" or
             ``Approximate(threshold, coarse, drill_down)``: faster, not exact (``compare`` it
             with an exact map). A graph incremental occlusion cannot follow (a sequence, a
             volume) is computed in full (with a warning if "incremental" was asked for).

    Returns an ``OcclusionMap``, with a leading image axis for a batch; ``result.strategy``
    says how it was computed. When an un-occluded value is 0 its proportional change is
    undefined: ``relative`` is NaN and a warning says to use ``delta``.

    >>> r = sensitivity_map(model, x_test[0], 8)      # patch 4, stride 1, bright patch
    >>> r.fill                                        # array([1.], dtype=float32): [0, 1] images
    >>> r.relative.min()                              # the largest proportional drop of P(8)
    """
    images, single = _graph.check_images(model, x)
    images = images.astype(_perturb.image_dtype(model), copy=False)
    batch_size = _checks.batch_size(batch_size)
    resolved = features.resolve(model, images, target, keep_location, batch_size)
    patch = _patches.check_patch(patch, images.shape[1:])
    stride = _patches.per_axis(stride, "stride", images.shape[1:])
    fills = _patches.channel_fills(model, images, fill)                         # (N, C)
    locations, bounds, copies = _patches.grid(images.shape[1:], patch, stride)
    how, plan = _choose(model, resolved.feature, images.shape[1:], patch, strategy,
                        (len(images), copies.shape[1]), batch_size)
    grid_shape = tuple(len(centres) for centres in locations)
    values, unoccluded = _values(model, how, plan, resolved, images, fills, copies, batch_size,
                                 grid_shape)
    result = _result(resolved.feature, unoccluded, values.reshape((len(images),) + grid_shape),
                     (locations, bounds, patch, stride), fills, how)
    return result.example(0) if single else result


def attribution(model, x, target, patch=4, stride=1, fill="extreme",
                keep_location: bool = False, batch_size=BATCH_SIZE,
                strategy="auto") -> np.ndarray:
    r"""Occlusion as an attribution map, one value per pixel like every method of
    :mod:`cnn_helper.methods`: the drop of the target when the patch centred there is hidden,

    .. math::  S_{r,c} = -\text{delta}_{r,c} = \y_{(l),k}|_{\x} - \y_{(l),k}|_{\x_{\setminus (r,c)}}

    (positive where hiding the patch lowers the target: evidence for it). With stride s each
    pixel takes the value of its nearest patch centre. Same arguments as
    :func:`sensitivity_map`; returns float32 (N, H, W, 1), or (H, W, 1) for one image ((N, L, 1)
    for sequences, (N, D, H, W, 1) for volumes).

    >>> s = attribution(model, x_test[:4], 8, patch=4, stride=2)       # (4, 28, 28, 1)
    """
    result = sensitivity_map(model, x, target, patch, stride, fill, keep_location, batch_size,
                             strategy)
    drop = -np.asarray(result.delta, np.float32)
    spatial = np.shape(x)[-len(result.patch) - 1:-1]
    return result.on_pixels(drop, spatial)[..., None]


def incremental_cost(model, target, patch=4, image_shape=None) -> incremental.Cost:
    """What incremental occlusion recomputes for ``target`` and a ``patch``, per layer: the
    window of its output, the fraction of the output that is, the FLOPs and the values moved
    of one occluded copy, full vs incremental. ``.time_ratio`` is the predicted speed-up per
    copy and ``.pays`` whether it reaches ``incremental.AUTO_MIN_RATIO`` for a map of many
    copies; strategy="auto" decides for the call at hand with ``.pays_for(copies, images)``,
    which adds the fixed costs of a call (a single image's few copies may run in full).
    ``image_shape`` (H, W, C): for a model of free input size. A ValueError says why when the
    model's graph cannot be followed.

    >>> cost = incremental_cost(model, 8, patch=4)
    >>> cost.pays, cost.pays_for(784, 1)                 # the explorer's map of one image
    """
    feature = features.check_feature(model, target)
    image_shape = tuple(image_shape or _graph.input_shape(model))
    if None in image_shape:
        raise ValueError(f"model {model.name!r} takes images of any size {image_shape}; give "
                         "image_shape=(H, W, C)")
    plan, why = _plan(model, feature, image_shape, _patches.check_patch(patch, image_shape))
    if plan is None:
        raise ValueError(f"incremental occlusion cannot follow model {model.name!r}: {why}")
    return incremental.cost(plan)


def compare(result: OcclusionMap, exact: OcclusionMap) -> tuple:
    """How close an (approximate) map is to an exact one of the same grid: (SSIM of their
    ``values``, the largest absolute difference), image by image for batch results (then two
    arrays). SSIM: ``similarity.ssim`` with the exact map's range of values as data range (2-D
    maps; for others, compare their values directly)."""
    if np.shape(result.values) != np.shape(exact.values):
        raise ValueError(f"the maps have different grids {np.shape(result.values)} and "
                         f"{np.shape(exact.values)}; compute them with the same patch and stride")
    if len(exact.patch) != 2:
        raise ValueError(f"compare measures the SSIM of 2-D maps; these are "
                         f"{len(exact.patch)}-D maps: compare their values directly, e.g. "
                         "np.abs(result.values - exact.values).max()")
    a = np.reshape(result.values, (-1,) + np.shape(result.values)[-2:])
    b = np.reshape(exact.values, a.shape)
    ssim = np.array([similarity.ssim(x, y) for x, y in zip(a, b)])
    worst = np.abs(a - b).reshape(len(a), -1).max(axis=1)
    return (float(ssim[0]), float(worst[0])) if np.ndim(exact.unoccluded) == 0 else (ssim, worst)
