r"""The per-layer rules: how one layer maps the receptive field of its input(s) to its output's.

A rule is a function ``(layer, fields of its inputs, Keras' output shape) -> field of the
output``. ``RULES`` is the table from layer classes (by name, looked up in ``keras.layers``; names
this Keras lacks are skipped) to rules, and :func:`rule_for` finds a layer's rule: the first row
whose classes it is an instance of. A window of kernel k, stride s, dilation d and left padding p
maps (size, jump, start) per spatial axis as

.. math::  k_{eff} = d(k-1)+1,\quad size' = size + (k_{eff}-1)\,jump,\quad jump' = jump\cdot s,
           \quad start' = start + \left(\tfrac{k_{eff}-1}{2} - p\right) jump

and every other rule is this one in disguise (zero padding: k = 1 and p > 0; cropping: p < 0; a
stride-1 transposed convolution: a padded "valid" convolution) or keeps the field (elementwise
layers) or unites the fields of aligned branches (merges).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """The field carried along one tensor of the graph, per spatial axis of the input.

    start, size, jump : as in the module docstring (() when the field is the whole input)
    shape             : the tensor's shape without the batch axis (spatial axes, then channels)
    whole             : None for a local field; else why every location sees the whole input
    """

    start: tuple
    size: tuple
    jump: tuple
    shape: tuple
    whole: str | None = None

    @property
    def spatial(self) -> tuple:
        return tuple(self.shape[:-1])

    def whole_from(self, reason, shape) -> Field:
        """The whole-input field of a tensor of ``shape`` (keeping the first reason given)."""
        return Field((), (), (), tuple(shape), self.whole or reason)


def _classes(*names) -> tuple:
    """The keras.layers classes of these names that this Keras has."""
    import keras

    return tuple(c for c in (getattr(keras.layers, n, None) for n in names) if c is not None)


def _tuple(value, n) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _axes(axis, rank) -> set:
    """Keras axis argument(s) (counting the batch axis) as axes of a rank-``rank`` shape."""
    axes = axis if isinstance(axis, (tuple, list)) else [axis]
    return {(a % (rank + 1)) - 1 for a in axes}


def _left_padding(name, padding, n, k_eff, s) -> tuple:
    """(left, total) padding of a window on an axis of length n (None: unknown)."""
    padding = str(padding).lower()
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return k_eff - 1, k_eff - 1
    if padding != "same":
        raise ValueError(f"layer {name!r} has padding {padding!r}; receptive fields know "
                         "'valid', 'same' and 'causal'")
    if n is None:
        if s > 1:
            raise ValueError(f"layer {name!r} uses 'same' padding with stride {s} on an axis "
                             "of unknown length, so its padding is unknown; give "
                             "compute(model, input_shape=(H, W, C))")
        return (k_eff - 1) // 2, k_eff - 1
    total = max((math.ceil(n / s) - 1) * s + k_eff - n, 0)   # TensorFlow's "same"
    return total // 2, total


def _window(f: Field, name, kernel, strides, dilation, padding) -> tuple:
    """A sliding window (conv or pooling) on field ``f``: (start, size, jump, spatial)."""
    start, size, jump, spatial = [], [], [], []
    for a, n in enumerate(f.spatial):
        k_eff = dilation[a] * (kernel[a] - 1) + 1
        s = strides[a]
        left, total = _left_padding(name, padding, n, k_eff, s)
        start.append(f.start[a] + ((k_eff - 1) / 2 - left) * f.jump[a])
        size.append(f.size[a] + (k_eff - 1) * f.jump[a])
        jump.append(f.jump[a] * s)
        spatial.append(None if n is None else (n + total - k_eff) // s + 1)
    return tuple(start), tuple(size), tuple(jump), tuple(spatial)


def _shift(f: Field, pads) -> tuple:
    """Zero padding (left, right) per axis; cropping is a negative padding: (start, spatial)."""
    start = tuple(s - left * j for s, (left, _), j in zip(f.start, pads, f.jump))
    spatial = tuple(None if n is None else n + left + right
                    for n, (left, right) in zip(f.spatial, pads))
    return start, spatial


def _pairs(value, n) -> tuple:
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


def _same(f: Field, out_shape, op) -> Field:
    """The field ``f`` kept on an output of ``out_shape`` (its spatial shape must not change)."""
    if len(out_shape) != len(f.shape) or \
            tuple(out_shape[:-1]) != f.spatial and None not in f.spatial:
        raise ValueError(f"layer {op.name!r} ({type(op).__name__}) changes the spatial shape "
                         f"{f.spatial} -> {tuple(out_shape[:-1])}; it is not elementwise")
    return Field(f.start, f.size, f.jump, tuple(f.spatial) + tuple(out_shape[-1:]))


def _local(start, size, jump, spatial, out_shape, op) -> Field:
    """A local field, its spatial shape checked against Keras' (and filled in where unknown)."""
    keras_spatial = tuple(out_shape[:-1])
    if len(keras_spatial) != len(spatial) or any(
            a is not None and b is not None and a != b for a, b in zip(spatial, keras_spatial)):
        raise ValueError(f"layer {op.name!r} ({type(op).__name__}): Keras gives spatial shape "
                         f"{keras_spatial} but the receptive-field rules give {spatial}")
    spatial = tuple(a if a is not None else b for a, b in zip(spatial, keras_spatial))
    return Field(tuple(start), tuple(size), tuple(jump), spatial + tuple(out_shape[-1:]))


# --------------------------------------------------------------------------- the rules


def mixes_all_locations(op, ins, out_shape) -> Field:
    """Flatten, Reshape, global pooling, ...: every output sees the whole input."""
    return ins[0].whole_from(f"layer {op.name!r} ({type(op).__name__}) mixes all spatial "
                             "locations", out_shape)


def elementwise(op, ins, out_shape) -> Field:
    """Activations, batch normalization, dropout, a Dense on a map, ...: the field is kept."""
    return _same(ins[0], out_shape, op)


def along_axis(op, ins, out_shape) -> Field:
    """Softmax and normalizations: elementwise over channels, the whole input over space."""
    f = ins[0]
    if _axes(getattr(op, "axis", -1), len(f.shape)) == {len(f.shape) - 1}:
        return _same(f, out_shape, op)
    return f.whole_from(f"layer {op.name!r} ({type(op).__name__}) normalizes over spatial axes",
                        out_shape)


def merge(op, ins, out_shape) -> Field:
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


def transposed_conv(op, ins, out_shape) -> Field:
    """A stride-1 transposed convolution: a "valid" convolution with kernel k_eff on its input
    zero-padded by k_eff-1 on both sides ("valid"), or by k_eff-1-p left and p right ("same",
    where p = (k_eff-1)//2 is the left padding of the forward convolution it transposes)."""
    _check_channels_last(op)
    f, n = ins[0], len(ins[0].spatial)
    strides = _tuple(op.strides, n)
    if any(s != 1 for s in strides):
        raise ValueError(f"layer {op.name!r} ({type(op).__name__}) has strides {strides}: a "
                         "strided transposed convolution gives a fractional jump, which receptive "
                         "fields do not support (stride 1 is supported)")
    kernel, dilation = _tuple(op.kernel_size, n), _tuple(op.dilation_rate, n)
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    valid = str(op.padding).lower() == "valid"
    pads = [(k - 1, k - 1) if valid else (k - 1 - (k - 1) // 2, (k - 1) // 2) for k in k_eff]
    start, spatial = _shift(f, pads)
    padded = Field(start, f.size, f.jump, spatial + f.shape[-1:])
    window = _window(padded, op.name, k_eff, (1,) * n, (1,) * n, "valid")
    return _local(*window, out_shape, op)


def convolution(op, ins, out_shape) -> Field:
    """Conv, depthwise and separable convolutions: a window of kernel, strides and dilation."""
    _check_channels_last(op)
    n = len(ins[0].spatial)
    window = _window(ins[0], op.name, _tuple(op.kernel_size, n), _tuple(op.strides, n),
                     _tuple(op.dilation_rate, n), op.padding)
    return _local(*window, out_shape, op)


def pooling(op, ins, out_shape) -> Field:
    """Max and average pooling: a window of pool_size (strides default to pool_size)."""
    _check_channels_last(op)
    n = len(ins[0].spatial)
    strides = _tuple(op.strides if op.strides is not None else op.pool_size, n)
    window = _window(ins[0], op.name, _tuple(op.pool_size, n), strides, (1,) * n, op.padding)
    return _local(*window, out_shape, op)


def zero_padding(op, ins, out_shape) -> Field:
    """Zero padding by p: a 1-wide kernel with left padding p (start moves by -p jump)."""
    _check_channels_last(op)
    f = ins[0]
    start, spatial = _shift(f, _pairs(op.padding, len(f.spatial)))
    return _local(start, f.size, f.jump, spatial, out_shape, op)


def cropping(op, ins, out_shape) -> Field:
    """Cropping by c: a 1-wide kernel with left padding -c (start moves by +c jump)."""
    _check_channels_last(op)
    f = ins[0]
    start, spatial = _shift(f, [(-a, -b) for a, b in _pairs(op.cropping, len(f.spatial))])
    return _local(start, f.size, f.jump, spatial, out_shape, op)


# --------------------------------------------------------------------------- the table

MIXING = ("Flatten", "Reshape", "Permute", "RepeatVector", "GroupNormalization",
          "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
          "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "Dot")
MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")

RULES = (
    (MIXING, mixes_all_locations),
    (("InputLayer", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "BatchNormalization",
      "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
      "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Rescaling", "Normalization",
      "Identity", "Masking", "Dense"), elementwise),
    (("Softmax", "LayerNormalization", "UnitNormalization"), along_axis),
    (MERGES, merge),
    (("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"), transposed_conv),
    (("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
      "SeparableConv2D"), convolution),
    (("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
      "AveragePooling3D"), pooling),
    (("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"), zero_padding),
    (("Cropping1D", "Cropping2D", "Cropping3D"), cropping),
)
"""(layer class names, rule) in lookup order: a layer takes the rule of the first row it is an
instance of."""


@functools.cache
def _table() -> tuple:
    """RULES with the class names resolved in this Keras."""
    return tuple((_classes(*names), rule) for names, rule in RULES)


def rule_for(op, pointwise=()):
    """The rule of layer ``op``: the first row of RULES it is an instance of. A layer named in
    ``pointwise`` (by class or layer name) is elementwise, unless it mixes all locations."""
    named = type(op).__name__ in pointwise or op.name in pointwise
    for classes, rule in _table():
        if isinstance(op, classes) or (named and rule is elementwise):
            return rule
    kind = type(op).__name__
    raise ValueError(
        f"layer {op.name!r} ({kind}) is not known to receptive fields. Known: convolutions (incl. "
        "depthwise, separable, stride-1 transposed), pooling, ZeroPadding, Cropping, elementwise "
        "layers, merge layers, Flatten/Reshape/global pooling. If this layer works on each "
        f"location separately, pass compute(model, pointwise=[{kind!r}])")


def output_field(op, ins, out_shape, pointwise=(), gates: str = "whole") -> Field:
    """The field of the output of layer ``op`` from the fields ``ins`` of its inputs.

    A field that is the whole input stays so through any layer. With ``gates="local"`` a merge
    ignores gates: branches that are the whole input with a 1x1 map (squeeze-and-excitation's
    globally pooled vector broadcast over the map only scales the local branches).
    """
    if gates == "local" and isinstance(op, _classes(*MERGES)) and not all(i.whole for i in ins):
        ins = [i for i in ins if not (i.whole and all(n == 1 for n in i.spatial))]
    whole = [i for i in ins if i.whole]
    if whole and not isinstance(op, _classes(*MIXING)):
        return whole[0].whole_from(None, out_shape)
    return rule_for(op, pointwise)(op, ins, out_shape)
