r"""Receptive fields: which input locations a location of layer l "sees".

The lecture's receptive field of spatial location idx of layer l is

.. math::  \mathcal{R}_{(l),idx} = \{ idx' \text{ at layer 0} \mid y_{(l),idx,k}
           \text{ depends on } y_{(0),idx',k'} \}

For the layers of a CNN it is a box, described per spatial axis by three numbers:

- ``size``  : the box's length in input pixels,
- ``jump``  : input pixels between adjacent locations of layer l (the effective stride),
- ``start`` : the input coordinate of the CENTRE of location 0 (fractional for even sizes,
  negative when padding adds locations left of the image).

Location i then sees input pixels ``[start + i*jump - (size-1)/2, ... + size)`` (clipped to the
image). A layer with kernel k, stride s, dilation d and left padding p maps (size, jump, start) as

.. math::  k_{eff} = d(k-1)+1,\quad size' = size + (k_{eff}-1)\,jump,\quad jump' = jump\cdot s,
           \quad start' = start + \left(\tfrac{k_{eff}-1}{2} - p\right) jump

"same" padding is TensorFlow's: ``pad_total = max((ceil(n/s)-1)*s + k_eff - n, 0)``, ``p =
pad_total // 2``, so it depends on the layer's input length n (taken from the model's shapes).
Zero padding by p is a 1-wide kernel with left padding p; cropping by c a 1-wide kernel with left
padding -c. Elementwise layers (activations, batch normalization, dropout, rescaling, a Dense layer
applied to a spatial map, ...) keep the field. Merge layers (Add, Concatenate on channels, ...) of
branches with the same jump take the union of their fields (the smallest box holding them).
Flatten, Reshape, global pooling and what follows them see the whole input: :func:`compute` marks
them (``whole_input`` says why) and :func:`field` / :func:`region` refuse them with a ValueError.

The graph of a functional model is walked node by node (ResNet's adds, Inception's concatenations),
nested models are entered (their layers named "outer/inner", as ``features.layer_names``), and a
Sequential model is a chain. Channels-last data only.

Example
-------
>>> fields = compute(model)                  # {layer name: ReceptiveField}, input first
>>> fields["conv3"].size, fields["conv3"].jump
((18, 18), (4, 4))
>>> region(model, "conv3", (3, 3))           # the input slices location (3, 3) sees
(slice(5, 23, None), slice(5, 23, None))
>>> print(summary(model))                    # the table, one layer a row
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from .features import find_layer, index_tuple, layer_names, model_inputs, walk


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of every location of one layer, per spatial axis of the input.

    layer       : the layer's name ("outer/inner" inside a nested model)
    kind        : the layer's class name
    size        : receptive field length in input pixels, per axis (the input's shape when the field
                  is the whole input)
    jump        : input pixels between adjacent locations of this layer (effective stride); () when
                  the field is the whole input
    start       : input coordinate of the centre of location 0 (may be fractional or negative); ()
                  when the field is the whole input
    shape       : spatial shape of the layer's output (() for Flatten, Dense after Flatten, global
                  pooling)
    input_shape : spatial shape of the model's input
    whole_input : None for a local field; else why every location sees the whole input
    """

    layer: str
    kind: str
    size: tuple
    jump: tuple
    start: tuple
    shape: tuple
    input_shape: tuple
    whole_input: str | None = None

    @property
    def is_local(self) -> bool:
        """True when each location sees a box of the input, False when it sees all of it."""
        return self.whole_input is None

    def _need_local(self):
        if self.whole_input is not None:
            own = f"layer {self.layer.split('/')[-1]!r} ({self.kind})"
            raise ValueError(f"layer {self.layer!r} ({self.kind}) has no local receptive field: "
                             "the field is the whole input, because "
                             f"{self.whole_input.replace(own, 'it')}")

    def centre(self, idx) -> tuple:
        """Input coordinates of the centre of location ``idx``: start + idx * jump."""
        self._need_local()
        return tuple(s + i * j for s, i, j in zip(self.start, idx, self.jump))

    def bounds(self, idx) -> tuple:
        """Per axis (lo, hi): the half-open input interval location ``idx`` sees, NOT clipped."""
        self._need_local()
        lo = (round(c - (n - 1) / 2) for c, n in zip(self.centre(idx), self.size))
        return tuple((a, a + n) for a, n in zip(lo, self.size))


# --------------------------------------------------------------------------- layer rules


@dataclass(frozen=True)
class _Field:
    """The field carried along one tensor of the graph (shape: without the batch axis)."""

    start: tuple
    size: tuple
    jump: tuple
    shape: tuple
    whole: str | None = None

    @property
    def spatial(self):
        return tuple(self.shape[:-1])

    def whole_from(self, reason, shape):
        return _Field((), (), (), tuple(shape), self.whole or reason)


def _keras():
    import keras
    return keras


def _classes(*names):
    """The keras.layers classes of these names that this Keras has."""
    layers = _keras().layers
    return tuple(c for c in (getattr(layers, n, None) for n in names) if c is not None)


def _tuple(value, n):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _axes(axis, rank):
    """Keras axis argument(s) (counting the batch axis) as positive axes of a rank-``rank`` shape."""
    axes = axis if isinstance(axis, (tuple, list)) else [axis]
    return {(a % (rank + 1)) - 1 for a in axes}


def _window(f: _Field, name, kernel, strides, dilation, padding):
    """Apply a sliding window (conv or pooling) to field ``f``; return (start, size, jump, spatial)."""
    padding = str(padding).lower()
    start, size, jump, spatial = [], [], [], []
    for a, n in enumerate(f.spatial):
        k_eff = dilation[a] * (kernel[a] - 1) + 1
        s = strides[a]
        if padding == "valid":
            left, total = 0, 0
        elif padding == "causal":
            left = total = k_eff - 1
        elif padding == "same":
            if n is None:
                if s > 1:
                    raise ValueError(f"layer {name!r} uses 'same' padding with stride {s} on an axis "
                                     "of unknown length, so its padding is unknown; give "
                                     "compute(model, input_shape=(H, W, C))")
                left, total = (k_eff - 1) // 2, k_eff - 1
            else:
                total = max((math.ceil(n / s) - 1) * s + k_eff - n, 0)
                left = total // 2
        else:
            raise ValueError(f"layer {name!r} has padding {padding!r}; receptive fields know "
                             "'valid', 'same' and 'causal'")
        start.append(f.start[a] + ((k_eff - 1) / 2 - left) * f.jump[a])
        size.append(f.size[a] + (k_eff - 1) * f.jump[a])
        jump.append(f.jump[a] * s)
        spatial.append(None if n is None else (n + total - k_eff) // s + 1)
    return tuple(start), tuple(size), tuple(jump), tuple(spatial)


def _shift(f: _Field, pads):
    """Zero padding (left, right) per axis; cropping is a negative padding."""
    start = tuple(s - left * j for s, (left, _), j in zip(f.start, pads, f.jump))
    spatial = tuple(None if n is None else n + left + right for n, (left, right) in zip(f.spatial, pads))
    return start, spatial


def _pairs(value, n):
    """ZeroPadding/Cropping argument as n (left, right) pairs."""
    if n == 1:
        value = value if isinstance(value, (tuple, list)) else (value, value)
        return (tuple(value),)
    return tuple(tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in _tuple(value, n))


def _check_channels_last(op):
    fmt = getattr(op, "data_format", None)
    if fmt not in (None, "channels_last"):
        raise ValueError(f"layer {op.name!r} uses data_format={fmt!r}; receptive fields are "
                         "computed for channels-last models only")


_MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")


def _rule(op, ins, out_shape, pointwise, gates):
    """The field of the output of operation ``op`` from the fields ``ins`` of its inputs."""
    L = _keras().layers
    name, kind = op.name, type(op).__name__
    if gates == "local" and isinstance(op, _classes(*_MERGES)) and not all(i.whole for i in ins):
        # a gate (e.g. squeeze-and-excitation: a globally pooled vector broadcast over the map)
        # only scales the local branch: keep the local branches' field
        ins = [i for i in ins if not (i.whole and all(n == 1 for n in i.spatial))]
    f = ins[0]
    n_sp = len(f.spatial)

    if isinstance(op, _classes("Flatten", "Reshape", "Permute", "RepeatVector", "GroupNormalization",
                               "GlobalAveragePooling1D", "GlobalAveragePooling2D",
                               "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
                               "GlobalMaxPooling3D", "Dot")):
        return f.whole_from(f"layer {name!r} ({kind}) mixes all spatial locations", out_shape)
    if any(i.whole for i in ins):
        return next(i for i in ins if i.whole).whole_from(None, out_shape)

    if isinstance(op, (L.InputLayer, *_classes(
            "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "BatchNormalization", "Dropout",
            "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
            "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Rescaling", "Normalization",
            "Identity", "Masking", "Dense"))) or kind in pointwise or name in pointwise:
        return _same(f, out_shape, op)
    if isinstance(op, _classes("Softmax", "LayerNormalization", "UnitNormalization")):
        axes = _axes(getattr(op, "axis", -1), len(f.shape))
        if axes == {len(f.shape) - 1}:
            return _same(f, out_shape, op)
        return f.whole_from(f"layer {name!r} ({kind}) normalizes over spatial axes", out_shape)

    if isinstance(op, _classes(*_MERGES)):
        return _merge(op, ins, out_shape)

    if isinstance(op, _classes("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")):
        _check_channels_last(op)
        strides = _tuple(op.strides, n_sp)
        if any(s != 1 for s in strides):
            raise ValueError(f"layer {name!r} ({kind}) has strides {strides}: a strided transposed "
                             "convolution gives a fractional jump, which receptive fields do not "
                             "support (stride 1 is supported)")
        kernel, dil = _tuple(op.kernel_size, n_sp), _tuple(op.dilation_rate, n_sp)
        k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dil)]
        valid = str(op.padding).lower() == "valid"
        # a stride-1 transposed conv is a "valid" conv with kernel k_eff on its input zero-padded
        # by k_eff-1 on both sides ("valid"), or by k_eff-1-p left and p right ("same", where
        # p = (k_eff-1)//2 is the left padding of the forward conv it transposes)
        pads = [(k - 1, k - 1) if valid else (k - 1 - (k - 1) // 2, (k - 1) // 2) for k in k_eff]
        start, spatial = _shift(f, pads)
        g = _Field(start, f.size, f.jump, spatial + f.shape[-1:])
        start, size, jump, spatial = _window(g, name, k_eff, (1,) * n_sp, (1,) * n_sp, "valid")
        return _local(start, size, jump, spatial, out_shape, op)

    if isinstance(op, _classes("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
                               "SeparableConv1D", "SeparableConv2D")):
        _check_channels_last(op)
        start, size, jump, spatial = _window(
            f, name, _tuple(op.kernel_size, n_sp), _tuple(op.strides, n_sp),
            _tuple(op.dilation_rate, n_sp), op.padding)
        return _local(start, size, jump, spatial, out_shape, op)

    if isinstance(op, _classes("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
                               "AveragePooling2D", "AveragePooling3D")):
        _check_channels_last(op)
        pool = _tuple(op.pool_size, n_sp)
        strides = _tuple(op.strides if op.strides is not None else op.pool_size, n_sp)
        start, size, jump, spatial = _window(f, name, pool, strides, (1,) * n_sp, op.padding)
        return _local(start, size, jump, spatial, out_shape, op)

    if isinstance(op, _classes("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")):
        _check_channels_last(op)
        start, spatial = _shift(f, _pairs(op.padding, n_sp))
        return _local(start, f.size, f.jump, spatial, out_shape, op)
    if isinstance(op, _classes("Cropping1D", "Cropping2D", "Cropping3D")):
        _check_channels_last(op)
        start, spatial = _shift(f, [(-a, -b) for a, b in _pairs(op.cropping, n_sp)])
        return _local(start, f.size, f.jump, spatial, out_shape, op)

    raise ValueError(
        f"layer {name!r} ({kind}) is not known to receptive fields. Known: convolutions (incl. "
        "depthwise, separable, stride-1 transposed), pooling, ZeroPadding, Cropping, elementwise "
        "layers, merge layers, Flatten/Reshape/global pooling. If this layer works on each location "
        f"separately, pass compute(model, pointwise=[{kind!r}])")


def _same(f: _Field, out_shape, op):
    if len(out_shape) != len(f.shape) or tuple(out_shape[:-1]) != f.spatial and None not in f.spatial:
        raise ValueError(f"layer {op.name!r} ({type(op).__name__}) changes the spatial shape "
                         f"{f.spatial} -> {tuple(out_shape[:-1])}; it is not elementwise")
    return _Field(f.start, f.size, f.jump, tuple(f.spatial) + tuple(out_shape[-1:]))


def _local(start, size, jump, spatial, out_shape, op):
    keras_spatial = tuple(out_shape[:-1])
    if len(keras_spatial) != len(spatial) or any(
            a is not None and b is not None and a != b for a, b in zip(spatial, keras_spatial)):
        raise ValueError(f"layer {op.name!r} ({type(op).__name__}): Keras gives spatial shape "
                         f"{keras_spatial} but the receptive-field rules give {spatial}")
    spatial = tuple(a if a is not None else b for a, b in zip(spatial, keras_spatial))
    return _Field(tuple(start), tuple(size), tuple(jump), spatial + tuple(out_shape[-1:]))


def _merge(op, ins, out_shape):
    """Union of aligned branches: same jump and spatial shape; Concatenate only on channels."""
    name, kind = op.name, type(op).__name__
    rank = len(ins[0].shape)
    if kind == "Concatenate" and _axes(op.axis, rank) != {rank - 1}:
        raise ValueError(f"layer {name!r} concatenates along axis {op.axis}, a spatial axis; "
                         "receptive fields support concatenation along channels only")
    for g in ins[1:]:
        if g.jump != ins[0].jump:
            raise ValueError(f"layer {name!r} ({kind}) merges branches with different jumps "
                             f"{[i.jump for i in ins]}: their locations are not aligned")
        if g.spatial != ins[0].spatial:
            raise ValueError(f"layer {name!r} ({kind}) merges branches of spatial shapes "
                             f"{[i.spatial for i in ins]}; receptive fields need equal shapes")
    start, size = [], []
    for a in range(len(ins[0].spatial)):
        lo = min(g.start[a] - (g.size[a] - 1) / 2 for g in ins)
        hi = max(g.start[a] - (g.size[a] - 1) / 2 + g.size[a] for g in ins)
        size.append(round(hi - lo))
        start.append(lo + (hi - lo - 1) / 2)
    return _local(start, size, ins[0].jump, ins[0].spatial, out_shape, op)


# --------------------------------------------------------------------------- graph walk


def _output_shape(op, ins, node):
    """Keras' output shape (no batch axis) of ``op`` on inputs of the carried shapes."""
    shapes = [(None,) + tuple(f.shape) for f in ins]
    try:
        out = op.compute_output_shape(shapes if len(shapes) > 1 else shapes[0])
        if isinstance(out, list) or (isinstance(out, tuple) and out and isinstance(out[0], tuple)):
            out = out[0]
        return tuple(out[1:])
    except Exception:  # noqa: BLE001 — layers without compute_output_shape: use the graph's shape
        if node is None:
            raise
        return tuple(node.outputs[0].shape[1:])


class _Walk:
    def __init__(self, pointwise, gates):
        self.pointwise, self.gates = set(pointwise), gates
        self.fields = {}    # name -> (_Field, kind)

    def record(self, name, field, kind):
        old = self.fields.get(name)
        if old is not None and old[0] != field:
            field = old[0].whole_from(f"layer {name!r} is applied at several places with different "
                                      "fields", old[0].shape)
        self.fields[name] = (field, kind)

    def apply(self, op, ins, prefix, node=None):
        keras = _keras()
        if isinstance(op, keras.Model):
            outs = self.run(op, ins, prefix + op.name + "/")
        else:
            outs = [_rule(op, ins, _output_shape(op, ins, node), self.pointwise, self.gates)]
        self.record(prefix + op.name, outs[0], type(op).__name__)
        return outs

    def run(self, model, ins, prefix=""):
        """Walk ``model`` (its inputs carry the fields ``ins``); return its outputs' fields."""
        keras = _keras()
        if isinstance(model, keras.Sequential):
            f = ins[0]
            for layer in model.layers:
                f = self.apply(layer, [f], prefix)[0]
            return [f]
        if not hasattr(model, "_nodes_by_depth"):
            raise TypeError(f"model {model.name!r} is a subclassed model; receptive fields need a "
                            "functional or Sequential model (their graph is known)")
        tensors = {id(t): f for t, f in zip(model.inputs, ins)}
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                op = node.operation
                if node.is_input:
                    if id(node.outputs[0]) in tensors:
                        self.record(prefix + op.name, tensors[id(node.outputs[0])], type(op).__name__)
                    continue
                if any(id(t) not in tensors for t in node.input_tensors):
                    continue   # not fed by the model's input
                outs = self.apply(op, [tensors[id(t)] for t in node.input_tensors], prefix, node)
                for t, f in zip(node.outputs, outs * len(node.outputs)):
                    tensors[id(t)] = f
        return [tensors[id(t)] for t in model.outputs]


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _input_shape(model, input_shape):
    shape = tuple(model_inputs(model)[0].shape[1:])
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if len(input_shape) != len(shape) or any(
                a is not None and a != b for a, b in zip(shape, input_shape)):
            raise ValueError(f"input_shape {input_shape} does not fit model {model.name!r}, whose "
                             f"input shape is {shape}")
        shape = input_shape
    if len(shape) < 2:
        raise ValueError(f"model {model.name!r} has input shape {shape}: no spatial axes, so no "
                         "receptive fields (expected e.g. (H, W, C))")
    return shape


def compute(model, input_shape=None, pointwise=(), gates: str = "whole") -> dict:
    r"""The receptive field of every layer of ``model``: ``{layer name: ReceptiveField}``.

    Walks the model's graph from its input (size 1, jump 1, start 0 on each spatial axis) applying
    the rules of the module docstring; the order is that of ``features.layer_names(model)``, nested
    models' layers named "outer/inner". Layers after Flatten / global pooling are included with
    ``whole_input`` set (their field is the whole input).

    input_shape : one image's shape (H, W, C), for models whose input has unknown (None) sizes
    pointwise   : extra layer class names or layer names to treat as elementwise (field unchanged)
    gates       : "whole" (default): a merge with a globally pooled branch broadcast over the map
                  (squeeze-and-excitation in EfficientNet, MobileNetV3) sees the whole input, which
                  is the truth; "local": ignore such gates (they only rescale channels) and keep the
                  field of the convolution path, the usual "theoretical receptive field"

    >>> compute(model)["pool2"]
    ReceptiveField(layer='pool2', kind='MaxPooling2D', size=(10, 10), jump=(4, 4), start=(1.5, 1.5), ...)
    """
    if gates not in ("whole", "local"):
        raise ValueError(f"gates {gates!r} is not one of ('whole', 'local')")
    pointwise = (pointwise,) if isinstance(pointwise, str) else tuple(pointwise)
    shape = _input_shape(model, input_shape)
    key = (shape, tuple(sorted(pointwise)), gates)
    cache = _CACHE.setdefault(model, {})
    if key not in cache:
        n = len(shape) - 1
        walk = _Walk(pointwise, gates)
        walk.run(model, [_Field((0.0,) * n, (1,) * n, (1,) * n, shape)])
        spatial_in = shape[:-1]
        result = {}
        for name in layer_names(model):
            if name not in walk.fields:
                continue
            f, kind = walk.fields[name]
            if f.whole:
                result[name] = ReceptiveField(name, kind, spatial_in, (), (), f.spatial, spatial_in,
                                              f.whole)
            else:
                result[name] = ReceptiveField(name, kind, f.size, f.jump,
                                              tuple(float(s) for s in f.start), f.spatial, spatial_in)
        cache[key] = result
    return dict(cache[key])


def _name(model, layer):
    return "/".join(part.name for part in find_layer(model, layer))


def field(model, layer, **kwargs) -> ReceptiveField:
    """The ReceptiveField of one layer (name, "outer/inner" path, or the layer object).

    A ValueError when the layer's field is the whole input (Flatten, Dense after Flatten, global
    pooling and what follows them) or the layer is not fed by the model's input.
    ``kwargs`` go to :func:`compute`.
    """
    name = _name(model, layer)
    fields = compute(model, **kwargs)
    if name not in fields:
        raise ValueError(f"layer {name!r} is not connected to the input of model {model.name!r}; "
                         f"layers with a field: {list(fields)}")
    result = fields[name]
    result._need_local()
    return result


def _check_idx(rf: ReceptiveField, idx):
    if isinstance(idx, (int, np.integer)) and not isinstance(idx, bool):
        idx = (idx,)
    idx = index_tuple(idx, "location idx")
    if len(idx) != len(rf.shape):
        raise ValueError(f"location {idx} has {len(idx)} indices but layer {rf.layer!r} has "
                         f"{len(rf.shape)} spatial axes (its map is {rf.shape})")
    if any(i < 0 or (n is not None and i >= n) for i, n in zip(idx, rf.shape)):
        raise ValueError(f"location {idx} is outside the map of layer {rf.layer!r}, whose spatial "
                         f"shape is {rf.shape}")
    return idx


def region(model, layer, idx, **kwargs) -> tuple:
    r"""The input slices that location ``idx`` of ``layer`` sees: :math:`\mathcal{R}_{(l),idx}`.

    One Python ``slice`` per spatial axis, clipped to the image (a location over padding may see
    fewer pixels, or none: an empty slice). ``x[(slice(None),) + region(...)]`` is the patch of a
    batch ``x``.

    >>> region(model, "conv3", (0, 0))        # near the corner: clipped
    (slice(0, 10, None), slice(0, 10, None))
    """
    rf = field(model, layer, **kwargs)
    idx = _check_idx(rf, idx)
    if None in rf.input_shape:
        raise ValueError(f"model {model.name!r} has input of unknown size {rf.input_shape}; give "
                         "input_shape=(H, W, C) to clip the region to the image")
    return tuple(slice(min(max(lo, 0), n), min(max(hi, 0), n))
                 for (lo, hi), n in zip(rf.bounds(idx), rf.input_shape))


# --------------------------------------------------------------------------- tables and charts


def table(model, **kwargs) -> list:
    """The fields as rows (dicts): layer, kind, shape, size, jump, start, whole_input."""
    return [{"layer": rf.layer, "kind": rf.kind, "shape": rf.shape, "size": rf.size,
             "jump": rf.jump, "start": rf.start, "whole_input": rf.whole_input}
            for rf in compute(model, **kwargs).values()]


def summary(model, **kwargs) -> str:
    """The fields as a text table, one layer a row (``print(summary(model))``)."""
    def fmt(values):
        return "x".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)

    rows = [("layer", "kind", "output", "size", "jump", "start")]
    for r in table(model, **kwargs):
        local = r["whole_input"] is None
        rows.append((r["layer"], r["kind"], fmt(r["shape"]) or "-",
                     fmt(r["size"]) if local else "whole input",
                     fmt(r["jump"]) if local else "-", fmt(r["start"]) if local else "-"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)


def _path_layers(model, layer, layers, kwargs):
    """The layers whose fields grow into ``layer``'s: given, or every local layer up to it that
    changes (size, jump, start) without shrinking (which skips e.g. ResNet's shortcut convs)."""
    fields = compute(model, **kwargs)
    target = field(model, layer, **kwargs)
    if layers is not None:
        chosen = [field(model, name, **kwargs) for name in layers]
        return chosen + ([target] if chosen[-1].layer != target.layer else []), target
    chosen = []
    for rf in fields.values():
        last = chosen[-1] if chosen else None
        if rf.is_local and (last is None or (
                (rf.size, rf.jump, rf.start) != (last.size, last.jump, last.start)
                and all(a >= b for a, b in zip(rf.size + rf.jump, last.size + last.jump)))):
            chosen.append(rf)
        if rf.layer == target.layer:
            break
    if chosen[-1].layer != target.layer:
        chosen[-1] = target
    if chosen[0].size != (1,) * len(chosen[0].size):   # a Sequential model: no input layer
        n = len(target.input_shape)
        chosen.insert(0, ReceptiveField("input", "Input", (1,) * n, (1,) * n, (0.0,) * n,
                                        target.input_shape, target.input_shape))
    return chosen, target


@dataclass(frozen=True)
class GrowthRow:
    """One layer l in the 1-D growth chart of location idx of a deeper layer L (along one axis).

    layer, kind : the layer l
    n           : number of locations of layer l along the axis
    start, jump : location p of layer l is centred on input coordinate start + p * jump
    size        : receptive field size of one location of layer l
    first, last : the locations of layer l that location idx of layer L depends on (inclusive,
                  clipped to the map; first > last when none)
    interval    : (lo, hi) the input pixels they see together, half-open, clipped to the image
    """

    layer: str
    kind: str
    n: int
    start: float
    jump: int
    size: int
    first: int
    last: int
    interval: tuple


def growth(model, layer, idx, axis: int = 0, layers=None, **kwargs) -> list:
    r"""The lecture's chart in numbers: which locations of each earlier layer l feed location
    ``idx`` of ``layer``, along one spatial ``axis``; rows from the input up to ``layer``.

    Layer l's locations feeding :math:`y_{(L),idx}` are those within (size_L - size_l) / 2 input
    pixels of its centre (exact for chains; for branched nets, layers on every path).
    ``layers``: the layer names to show (default: every layer that changes the field).

    >>> [(r.layer, r.first, r.last) for r in growth(model, "conv3", (3, 3))]
    [('input', 5, 22), ('conv1', 6, 21), ('pool1', 3, 10), ('conv2', 4, 9), ('pool2', 2, 4), ...]
    """
    rows, target = _path_layers(model, layer, layers, kwargs)
    idx = _check_idx(target, idx)
    if not 0 <= axis < len(idx):
        raise ValueError(f"axis {axis} is not a spatial axis of layer {target.layer!r} "
                         f"(it has {len(idx)})")
    centre, size_L = target.centre(idx)[axis], target.size[axis]
    n_in = target.input_shape[axis]
    out = []
    for rf in rows:
        first, last = _feeding(rf, target.layer, centre, size_L, axis)
        n = rf.shape[axis]
        first, last = max(first, 0), min(last, n - 1)
        lo = rf.start[axis] + first * rf.jump[axis] - (rf.size[axis] - 1) / 2
        hi = rf.start[axis] + last * rf.jump[axis] + (rf.size[axis] + 1) / 2
        interval = (min(max(round(lo), 0), n_in), min(max(round(hi), 0), n_in))
        out.append(GrowthRow(rf.layer, rf.kind, n, rf.start[axis], rf.jump[axis], rf.size[axis],
                             first, last, interval if first <= last else (0, 0)))
    return out


def _feeding(rf: ReceptiveField, target, centre, size, axis):
    """(first, last): the locations of layer ``rf`` along ``axis`` that feed a location of layer
    ``target`` centred at input coordinate ``centre`` with field ``size`` (not clipped to the map):
    those within (size - size_l) / 2 input pixels of the centre."""
    if rf.size[axis] > size:
        raise ValueError(f"layer {rf.layer!r} has a larger field than {target!r}; it does not come "
                         "before it")
    c = (centre - rf.start[axis]) / rf.jump[axis]
    half = (size - rf.size[axis]) / (2 * rf.jump[axis])
    return math.ceil(c - half - 1e-9), math.floor(c + half + 1e-9)


@dataclass(frozen=True)
class NestedRegion:
    """Receptive field of one location of one layer, for the 2-D chart of nested fields."""

    layer: str
    idx: tuple
    size: tuple
    region: tuple


def nearest_location(model, layer, point, **kwargs) -> tuple:
    """The location of ``layer`` whose receptive field is centred closest to input ``point``."""
    rf = field(model, layer, **kwargs)
    if len(point) != len(rf.shape):
        raise ValueError(f"point {point} has {len(point)} coordinates; the input has "
                         f"{len(rf.shape)} spatial axes")
    return tuple(int(min(max(round((p - s) / j), 0), n - 1))
                 for p, s, j, n in zip(point, rf.start, rf.jump, rf.shape))


def nested_regions(model, layer, idx, layers=None, **kwargs) -> list:
    """The lecture's nested receptive fields: for location ``idx`` of ``layer`` and each earlier
    layer (default: those that change the field), one location feeding the next one (the middle
    of those that do) and the input region it sees; smallest first, each inside the next (one
    layer per field size: a padding layer's or a shortcut's box would repeat a neighbour's)."""
    rows, target = _path_layers(model, layer, layers, kwargs)
    where = _check_idx(target, idx)
    out = [NestedRegion(target.layer, where, target.size, region(model, target.layer, where, **kwargs))]
    for rf in reversed(rows[:-1]):
        if rf.kind in ("Input", "InputLayer"):
            continue
        upper = field(model, out[-1].layer, **kwargs)
        centre = upper.centre(out[-1].idx)
        where = []
        for a in range(len(centre)):
            first, last = _feeding(rf, upper.layer, centre[a], upper.size[a], a)
            first, last = max(first, 0), min(last, rf.shape[a] - 1)
            where.append(min(max(round((centre[a] - rf.start[a]) / rf.jump[a]), first), last))
        where = tuple(where)
        out.append(NestedRegion(rf.layer, where, rf.size, region(model, rf.layer, where, **kwargs)))
    nested = []
    for r in reversed(out):   # smallest first; of layers with equal fields keep the first
        if any(n > 1 for n in r.size) and (not nested or r.size != nested[-1].size):
            nested.append(r)
    return nested


# --------------------------------------------------------------------------- empirical check

_LINEAR: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _linear_twin(model):
    """A clone of ``model`` with the same weights, every activation linear, max pooling replaced by
    average pooling and Maximum/Minimum merges by Average: every dependency of the original shows
    up as a non-zero gradient, for every input."""
    keras = _keras()
    L = keras.layers
    if model in _LINEAR:
        return _LINEAR[model]

    def linear(layer):
        cfg = layer.get_config()
        kind = type(layer).__name__
        if isinstance(layer, _classes("ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax")):
            return L.Activation("linear", name=layer.name)
        if kind.startswith("MaxPooling"):
            return getattr(L, kind.replace("Max", "Average")).from_config(cfg)
        if isinstance(layer, _classes("Maximum", "Minimum")):
            return L.Average(name=layer.name)
        if "activation" in cfg:
            cfg["activation"] = "linear"
        return layer.__class__.from_config(cfg)

    twin = keras.models.clone_model(model, clone_function=linear, recursive=True)
    originals = {name: path[-1] for name, path in walk(model)}
    for name, path in walk(twin):
        layer, src = path[-1], originals.get(name)
        if src is not None and layer.weights and len(layer.weights) == len(src.weights) \
                and not isinstance(layer, keras.Model):
            layer.set_weights(src.get_weights())
    _LINEAR[model] = twin
    return twin


def empirical_support(model, layer, idx, x=None, channel=None, mode: str = "linear",
                      n_samples: int = 4, seed: int = 0, batch_size: int = 64, **kwargs):
    r"""Where the gradient of :math:`y_{(l),idx}` w.r.t. the input is non-zero: the measured field.

    The scalar is :math:`\sum_k w_k\, y_{(l),idx,k}` with fixed random weights :math:`w_k \in
    [0.5, 1.5]` (channel=None; random weights so that no sum over channels cancels, e.g. after a
    softmax) or :math:`y_{(l),idx,k}` for ``channel=k``. The mask is True where
    :math:`\sum \lvert \partial / \partial x \rvert` over the input's channels and the examples is > 0.

    mode "linear" (default): evaluated on a twin of the model with the same weights but linear
        activations and average instead of max pooling, so a ReLU that is off or a max that is
        elsewhere hides no dependency: the support is the structural receptive field (up to exact
        cancellations of weights, which random weights do not have).
    mode "model": the model as it is, on ``x`` (an image or a batch) or ``n_samples`` random inputs
        uniform in [0, 1]: the pixels that matter for those inputs, a subset of the field.

    ``idx`` is one location (returns a bool mask of the input's spatial shape) or a list of
    locations (returns a stacked mask, one per location, computed in batches of ``batch_size``).
    It always lies inside :func:`region` (the test suite checks it on many architectures).
    """
    import tensorflow as tf

    from .features import check_batch_size, check_input, tap_model

    if mode not in ("linear", "model"):
        raise ValueError(f"mode {mode!r} is not one of ('linear', 'model')")
    rf = field(model, layer, **kwargs)
    many = isinstance(idx, list)
    idxs = [_check_idx(rf, i) for i in (idx if many else [idx])]
    batch_size = check_batch_size(batch_size)
    net = _linear_twin(model) if mode == "linear" else model
    sub = tap_model(net, [rf.layer])
    n_channels = sub.outputs[0].shape[-1]
    if channel is not None and not 0 <= channel < n_channels:
        raise ValueError(f"channel {channel} is out of range for layer {rf.layer!r}: it has "
                         f"channels 0..{n_channels - 1}")
    rng = np.random.default_rng(seed)
    if x is None:
        if None in rf.input_shape:
            raise ValueError("the model's input size is unknown; pass x (an image or a batch)")
        n_x = 1 if mode == "linear" else n_samples
        x = rng.uniform(0, 1, (n_x,) + tuple(model_inputs(model)[0].shape[1:])).astype("float32")
    else:
        x, _ = check_input(model, x)
    weights = np.zeros(n_channels, np.float32)
    if channel is None:
        weights[:] = rng.uniform(0.5, 1.5, n_channels)
    else:
        weights[channel] = 1.0
    weights = tf.constant(weights)

    per_loc = max(1, batch_size // len(x))
    masks = []
    for s in range(0, len(idxs), per_loc):
        chunk = idxs[s:s + per_loc]
        xb = tf.constant(np.repeat(x[None], len(chunk), axis=0).reshape((-1,) + x.shape[1:]))
        picks = np.repeat(np.asarray(chunk), len(x), axis=0)
        gather = np.concatenate([np.arange(len(picks))[:, None], picks], axis=1)
        with tf.GradientTape() as tape:
            tape.watch(xb)
            y = sub(xb, training=False)
            y = y[0] if isinstance(y, (list, tuple)) else y
            value = tf.reduce_sum(tf.gather_nd(y, gather) * weights)
        g = np.abs(tape.gradient(value, xb).numpy()).sum(axis=-1)
        g = g.reshape((len(chunk), len(x)) + g.shape[1:]).sum(axis=1)
        masks.append(g > 0)
    masks = np.concatenate(masks)
    return masks if many else masks[0]
