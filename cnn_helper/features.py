r"""Features of a model in the lecture's vocabulary, and their activations.

The lecture writes :math:`\y_{(l),k}` for feature map k of layer l, :math:`\y_{(l),idx,k}` for its
value at one spatial location idx, and reduces a whole map to a scalar by global pooling:

.. math::  \max_{(l),k} = \max_{idx} \y_{(l),idx,k}  \qquad
           \mathrm{mean}_{(l),k} = \frac{1}{|idx|}\sum_{idx} \y_{(l),idx,k}

``Feature(layer, channel, location=None, pool="max")`` names such a scalar:

- ``location=None``     : pool the whole map, ``pool="max"`` or ``"mean"``
- ``location=(r, c)``   : the value :math:`\y_{(l),idx,k}` at idx = (r, c)
- ``location="argmax"`` : another spelling of ``pool="max"``: the value at the location of the
  max is the max. Methods that need one location (saliency, Zeiler & Fergus) use that idx.

A Dense layer has no spatial axes: its feature ``k`` is the scalar :math:`\y_{(l),k}` itself.

Every method reads its target through :func:`read`, the one place where a layer output becomes
:math:`\y_{(l),k}`. Methods that perturb the input (occlusion, SmoothGrad, Integrated Gradients)
take ``keep_location``: False (default) re-finds the argmax on every perturbed copy, so the target
is the max-pooled feature itself; True keeps the location found on the clean input, so the target
is :math:`\y_{(l),idx,k}` at that fixed idx (see :func:`fixed_locations`).

Example
-------
>>> f = Feature("conv2", 5)                            # max over the map of channel 5 of conv2
>>> acts = activations(model, x, ["conv1", "conv2"])   # one forward pass, both layers
>>> fv = feature_values(model, x, f)                   # fv.values (N,), fv.locations (N, 2)
>>> means = class_means(acts["conv2"][..., 5], y)     # the mean map y_(conv2),k=5 of each class
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks, _graph
from ._graph import layer_names, output_shape  # noqa: F401  (public: the layers a Feature names)

POOLS = ("max", "mean")


@dataclass(frozen=True)
class Feature:
    r"""The scalar :math:`\y_{(l),k}` (pooled), or :math:`\y_{(l),idx,k}` at one location.

    layer    : the layer l, by name ("outer/inner" inside a nested model) or as the layer object
    channel  : the lecture's k, 0-based
    location : None (pool the map), a tuple idx, or "argmax" (the same as pool="max")
    pool     : "max" or "mean", the global pooling used when location is None
    """

    layer: object
    channel: int
    location: object = None
    pool: str = "max"

    def __post_init__(self):
        if not isinstance(self.layer, str) and not hasattr(self.layer, "name"):
            raise TypeError(f"Feature layer must be a layer name or a keras layer, got "
                            f"{self.layer!r}")
        if not _checks.is_int(self.channel):
            raise TypeError(f"Feature channel must be an int, got {self.channel!r}")
        _checks.one_of(self.pool, "Feature pool", POOLS)
        location = self.location
        if isinstance(location, str):
            if location != "argmax":
                raise TypeError(f"Feature location must be None, 'argmax' or a tuple of ints, got "
                                f"{location!r}")
            if self.pool != "max":
                raise ValueError("Feature location 'argmax' reads the max of the map; it cannot "
                                 f"be combined with pool={self.pool!r}")
            location = None
        elif location is not None:
            location = _checks.index_tuple(location, "Feature location")
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "channel", int(self.channel))

    @property
    def layer_name(self) -> str:
        return self.layer if isinstance(self.layer, str) else self.layer.name

    def __str__(self):
        """The lecture's notation: y_(conv2),k=5; y_(conv2),idx=(3, 4),k=5; y_(conv2),k=5 (mean)."""
        if self.location is not None:
            return f"y_({self.layer_name}),idx={self.location},k={self.channel}"
        pooled = " (mean)" if self.pool == "mean" else ""
        return f"y_({self.layer_name}),k={self.channel}{pooled}"


@dataclass(frozen=True)
class FeatureValues:
    """Per-example values of a Feature and, for spatial maps, the location each came from.

    values    : (N,) float32
    locations : (N, n_spatial) int64: the argmax location (or the fixed location); (N, 0) for a
                layer without spatial axes
    """

    values: np.ndarray
    locations: np.ndarray


def as_feature(model, target) -> Feature:
    """A target is a class index of the head (int) or a Feature; return it as a Feature."""
    if isinstance(target, Feature):
        return target
    if _checks.is_int(target):
        return Feature(_graph.output_layer(model).name, int(target))
    raise TypeError(f"target must be a class index (int) or a cnn_helper.Feature, got {target!r}")


def check_feature(model, target) -> Feature:
    """The target as a Feature checked against ``model``: its layer, channel and location exist.

    An int target is a class of the head, and its error says so:

    >>> check_feature(model, 10)
    ValueError: class 10 is out of range: the model has classes 0..9
    """
    feature = as_feature(model, target)
    shape = _graph.output_shape(model, feature.layer)
    if len(shape) == 0:
        raise ValueError(f"layer {feature.layer_name!r} has a scalar output; it has no channels")
    spatial, n_channels = shape[:-1], shape[-1]
    if not 0 <= feature.channel < n_channels and _checks.is_int(target):
        raise ValueError(f"class {target} is out of range: the model has classes "
                         f"0..{n_channels - 1}")
    if not 0 <= feature.channel < n_channels:
        raise ValueError(f"channel {feature.channel} is out of range for layer "
                         f"{feature.layer_name!r}: it has channels 0..{n_channels - 1}")
    if feature.location is not None:
        if not spatial:
            raise ValueError(f"layer {feature.layer_name!r} has no spatial axes (output shape "
                             f"{tuple(shape)}): its feature {feature.channel} is one number, not a "
                             f"map; drop location={feature.location}: "
                             f"Feature({feature.layer_name!r}, {feature.channel})")
        if len(feature.location) != len(spatial):
            raise ValueError(f"location {feature.location} has {len(feature.location)} indices "
                             f"but layer {feature.layer_name!r} has spatial shape {spatial}")
        if any(not 0 <= i < n for i, n in zip(feature.location, spatial) if n is not None):
            raise ValueError(f"location {feature.location} is outside the map of layer "
                             f"{feature.layer_name!r}, whose spatial shape is {spatial}")
    return feature


# --------------------------------------------------------------------------- reading y_(l),k
# keras.ops functions, used inside the package's compiled steps (and differentiable there).


def pool_maps(y, pool: str):
    """Global pooling of every map: (N, *spatial, C) -> (N, C) by max or mean over idx."""
    from keras import ops

    axes = tuple(range(1, len(y.shape) - 1))
    if not axes:
        return y
    return ops.max(y, axis=axes) if pool == "max" else ops.mean(y, axis=axes)


def _flat(maps):
    """Maps (N, *spatial) as rows (N, prod(spatial))."""
    from keras import ops

    return ops.reshape(maps, (ops.shape(maps)[0], -1))


def location_of(flat_index, spatial):
    """The idx (..., n_spatial) of row-major positions ``flat_index`` (...) in a map of shape
    ``spatial``: the last axis varies fastest.

    Inside TensorFlow indices are int32 and never transposed: oneDNN prints "oneDNN supports
    DT_INT32 (or DT_INT64) only on platforms with AVX-512" for an integer transpose, and on some
    CPUs for other int64 ops; the arrays the package returns hold int64.

    >>> np.asarray(location_of(np.int32([5, 7]), (3, 4)))      # 5 = 1*4 + 1, 7 = 1*4 + 3
    array([[1, 1],
           [1, 3]], dtype=int32)
    """
    from keras import ops

    rest, idx = ops.cast(flat_index, "int32"), []
    for size in reversed(tuple(spatial)[1:]):
        idx.insert(0, rest % size)
        rest = rest // size
    return ops.stack([rest] + idx, axis=-1)


def argmax_location(maps):
    """idx of the max of each map (N, *spatial) -> (N, n_spatial) int32; the first in row-major
    order when several are equal. Not differentiated: it only chooses where to read."""
    from keras import ops

    return location_of(ops.argmax(_flat(maps), axis=1), ops.shape(maps)[1:])


def value_at(maps, locations):
    r""":math:`\y_{(l),idx,k}` of each map (N, *spatial) at its own idx, from locations
    (N, n_spatial): the row-major index of idx read from each flattened map (``tf.gather``:
    ``keras.ops.take_along_axis`` makes its indices int64)."""
    import tensorflow as tf
    from keras import ops

    locations = ops.cast(locations, "int32")
    spatial = ops.shape(maps)[1:]
    index = locations[:, 0]
    for axis in range(1, len(spatial)):
        index = index * ops.cast(spatial[axis], "int32") + locations[:, axis]
    return tf.gather(_flat(maps), index, axis=1, batch_dims=1)


def read(y, channel, pool: str = "max", locations=None):
    r"""The feature :math:`\y_{(l),k}` of each example from a layer output y (N, *spatial, C).

    channel   : k (an int or a scalar tensor)
    locations : None: pool the map k, "max" as the value at its argmax idx (found on this y, so
                the derivative is :math:`\partial \y_{(l),idx,k}` at that one idx) or "mean";
                (N, n_spatial): the value :math:`\y_{(l),idx,k}` at each example's given idx
    Returns (values (N,), locations (N, n_spatial) int32): where each value was read (the argmax
    for "mean" too; (N, 0) for a layer without spatial axes).
    """
    from keras import ops

    maps = ops.take(y, channel, axis=-1)                           # y_(l),k: (N, *spatial)
    if len(maps.shape) == 1:
        return maps, ops.zeros((ops.shape(maps)[0], 0), "int32")
    if locations is not None:
        return value_at(maps, locations), ops.cast(locations, "int32")
    where = argmax_location(maps)
    if pool == "mean":
        return ops.mean(_flat(maps), axis=1), where
    return value_at(maps, where), where


def fixed_locations(model, x, feature: Feature, keep_location: bool = False,
                    batch_size=_checks.BATCH_SIZE):
    """Where to read ``feature`` on perturbed copies of each example of x: an (N, n_spatial)
    array to pass to :func:`read`, or None to pool each copy afresh.

    A fixed location is used for every copy; with ``keep_location`` the max-pooled feature is
    read at the argmax idx found on the clean x (the target becomes y_(l),idx,k at that idx).
    """
    if feature.location is not None:
        return np.tile(np.asarray(feature.location, np.int64), (len(x), 1))
    if keep_location and feature.pool == "max":
        return feature_values(model, x, feature, batch_size).locations
    return None


@dataclass(frozen=True)
class Target:
    r"""A target resolved once against a model and a batch of images: what every method's
    compiled step reads, so that a located Feature is honoured by construction.

    feature   : the Feature (an int target as the head's Feature)
    layer     : its layer's "outer/inner" path name (it names the same layer in a clone)
    locations : (N, n_spatial) int64, where :math:`\y_{(l),idx,k}` is read on (every changed copy
                of) image i; None: pool each copy afresh (``fixed_locations``)

    >>> t = resolve(model, x_test[:4], Feature("conv2", 5, location=(3, 4)))
    >>> t.locations                       # array([[3, 4]] * 4)
    """

    feature: Feature
    layer: str
    locations: object

    @property
    def channel(self) -> int:
        return self.feature.channel

    @property
    def pool(self) -> str:
        return self.feature.pool

    @property
    def located(self) -> bool:
        """Whether the value is read at given locations (not pooled afresh on each copy)."""
        return self.locations is not None

    def read(self, y, channel, locations=None):
        r""":math:`\y_{(l),k}` of each example of the layer output y, the pooling and the
        locations of this target (TensorFlow, for a compiled step; ``channel`` as a tensor so
        another k does not trace again)."""
        return read(y, channel, self.pool, locations)[0]


def resolve(model, x, target, keep_location: bool = False,
            batch_size=_checks.BATCH_SIZE) -> Target:
    """``target`` (an int or a Feature) checked against ``model`` and resolved for the images x
    (N, ...): its layer's path name and where it is read (``fixed_locations``).

    >>> resolve(model, x_test[:8], 8).layer                # 'dense_1', the head
    """
    feature = check_feature(model, target)
    return Target(feature, _graph.path_name(model, feature.layer),
                  fixed_locations(model, x, feature, keep_location, batch_size))


# --------------------------------------------------------------------------- over a data set


def activations(model, x, layers, batch_size=_checks.BATCH_SIZE) -> dict:
    r"""Activations :math:`\y_{(l)}` of several layers for images ``x`` in ONE forward pass.

    One multi-output sub-model runs over ``x`` in batches of ``batch_size`` (memory-bounded).
    Returns ``{layer name: array (N, *layer output shape)}``; one image in, no batch axis out.

    >>> acts = activations(model, x_test[:16], ["conv1", "dense"])
    >>> acts["conv1"].shape
    (16, 28, 28, 16)
    """
    layers = _checks.layer_list(layers)
    x, single = _graph.check_images(model, x)
    outputs = _graph.run_batched(_graph.forward(model, layers),
                                 _graph.batch_size(model, batch_size), x)
    names = [layer if isinstance(layer, str) else layer.name for layer in layers]
    return {name: out[0] if single else out for name, out in zip(names, outputs)}


def feature_values(model, x, target, batch_size=_checks.BATCH_SIZE) -> FeatureValues:
    r"""The scalar of ``target`` (a Feature or a head class index) for every image in ``x``.

    :math:`v^{(i)} = \y_{(l),k} |_{\y_{(0)} = \x^{(i)}}`, pooled or at a location as the Feature
    says.

    >>> fv = feature_values(model, x_test, Feature("conv2", 3))
    >>> fv.values.shape, fv.locations.shape
    ((1000,), (1000, 2))
    """
    feature = check_feature(model, target)
    x, _ = _graph.check_images(model, x)
    forward = _graph.forward(model, [feature.layer])
    at = None if feature.location is None else np.asarray([feature.location], np.int32)

    def values_and_locations(xb):
        return read(forward(xb)[0], feature.channel, feature.pool,
                    None if at is None else np.repeat(at, len(xb), axis=0))

    values, locations = _graph.run_batched(values_and_locations,
                                           _graph.batch_size(model, batch_size), x)
    return FeatureValues(values.astype(np.float32), locations.astype(np.int64))


# --------------------------------------------------------------------------- per class


@dataclass(frozen=True)
class ClassMean:
    """The mean of one class's maps (or images) and the number of examples it averages."""

    mean: np.ndarray
    count: int


def class_means(values, y, classes=None) -> dict:
    r"""The mean of the maps of each class c, so a figure shows every example, not one chosen:

    .. math::  \bar m_c = \frac{1}{n_c} \sum_{i:\, y^{(i)} = c} m^{(i)}, \qquad
               n_c = |\{i : y^{(i)} = c\}|

    values  : (N, ...) one array per example: images, saliency maps, occlusion maps, y_(l),k maps
    y       : the label of each example (N,), or one-hot rows (N, C)
    classes : the labels to average, in this order (default: every label in y, sorted). A
              class with no example has no mean: a ValueError naming it (drop it from classes)
    Returns {label: ClassMean(mean (...) float32, count n_c)}; the sums run in float64.

    >>> means = class_means(x_test, y_test)             # the mean image of each digit
    >>> means[8].mean.shape                             # means[8].count: how many 8s
    (28, 28, 1)
    >>> g = saliency.gradient(model, x_test, Feature("conv3", 3))   # d y_(conv3),k=3 / d x
    >>> g_means = class_means(g, y_test, classes=[0, 6, 8, 9])       # its mean per digit
    """
    values = _checks.array_of(values, "values")
    labels = _checks.labels_of(y)
    if values.ndim == 0 or len(values) != len(labels) or len(labels) == 0:
        raise ValueError(f"values has shape {values.shape} and y {len(labels)} labels: give one "
                         "label per example, at least one example")
    if not np.issubdtype(values.dtype, np.number) and values.dtype != bool:
        raise TypeError(f"values has dtype {values.dtype}; give numbers to average")
    if classes is None:
        classes = _checks.labels_present(labels)
    elif isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
        raise TypeError(f"classes must be a list of labels, got {classes!r}")
    classes = _checks.wanted_labels(labels, classes, "y", "classes")
    missing = [c for c in classes if not np.any(labels == c)]
    if missing:
        raise ValueError(f"classes {missing} have no example in y (labels present: "
                         f"{_checks.labels_present(labels)}); leave them out of classes")
    return {c: ClassMean(values[labels == c].mean(axis=0, dtype=np.float64).astype(np.float32),
                         int(np.sum(labels == c))) for c in classes}
