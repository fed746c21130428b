r"""The per-layer rules: how one layer maps the receptive field of its input(s) to its output's.

A rule is a function ``(layer, fields of its inputs, Keras' output shape) -> field of the
output``. There is one rule per kind of layer (``RULES``); what kind a layer or operation is,
the catalogue :mod:`cnn_helper._layers` says (:func:`rule_for` asks it). A window of kernel k,
stride s, dilation d and left padding p maps (size, jump, start) per spatial axis as

.. math::  k_{eff} = d(k-1)+1,\quad size' = size + (k_{eff}-1)\,jump,\quad jump' = jump\cdot s,
           \quad start' = start + \left(\tfrac{k_{eff}-1}{2} - p\right) jump

and every other rule is this one in disguise (zero padding: k = 1 and p > 0; cropping: p < 0; a
stride-1 transposed convolution: a padded "valid" convolution) or keeps the field (pointwise
layers) or unites the fields of aligned branches (merges).

Keras 3 records ``s + h``, ``x * g``, ``keras.ops.relu(x)`` or ``ops.mean(x, axis=(1, 2))`` on
symbolic tensors as operations (not layers); the catalogue sorts them too: an elementwise
operation of several tensors is a merge, a reduction over a spatial axis mixes all locations. A
layer's rule that fails does not stop the walk: the output's field becomes "unknown"
(``Field.unknown`` says why), and only the layers that depend on it are unknown.
"""
from __future__ import annotations

import dataclasses
import math

from .. import _layers


@dataclasses.dataclass(frozen=True)
class Field:
    """The field carried along one tensor of the graph, per spatial axis of the input.

    start, size, jump : as in the module docstring (() when the field is the whole input)
    shape             : the tensor's shape without the batch axis (spatial axes, then channels)
    whole             : None for a local field; else why every location sees the whole input
    gates             : names of the merges where a global gate was left out (gates="local")
    unknown           : None, or why the field is not known (a layer no rule fits)
    """

    start: tuple
    size: tuple
    jump: tuple
    shape: tuple
    whole: str | None = None
    gates: tuple = ()
    unknown: str | None = None

    @property
    def spatial(self) -> tuple:
        return tuple(self.shape[:-1])

    @property
    def is_gate(self) -> bool:
        """Whether this tensor, broadcast in a merge, is a global gate: a 1x1 map whose field is
        the whole input (squeeze-and-excitation's pooled vector) or unknown."""
        return _layers.is_gate(self.spatial, local=not (self.whole or self.unknown))

    def whole_from(self, reason, shape) -> Field:
        """The whole-input field of a tensor of ``shape`` (keeping the first reason given)."""
        return Field((), (), (), tuple(shape), self.whole or reason)

    def unknown_from(self, reason, shape) -> Field:
        """The unknown field of a tensor of ``shape`` (keeping the first reason given)."""
        return Field((), (), (), tuple(shape), unknown=self.unknown or reason)


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


def _named(op) -> str:
    """How messages name ``op``: "layer 'conv1' (Conv2D)" or "operation 'add' (Add)"."""
    what = "operation" if _layers.is_operation(op) else "layer"
    return f"{what} {op.name!r} ({type(op).__name__})"


def _differ(a, b) -> bool:
    """Whether two shapes differ (in rank, or on an axis whose length both know)."""
    return len(a) != len(b) or any(m is not None and n is not None and m != n
                                   for m, n in zip(a, b))


def _same(f: Field, out_shape, op) -> Field:
    """The field ``f`` kept on an output of ``out_shape`` (its spatial shape must not change)."""
    if len(out_shape) != len(f.shape) or _differ(tuple(out_shape[:-1]), f.spatial):
        raise ValueError(f"{_named(op)} changes the spatial shape "
                         f"{f.spatial} -> {tuple(out_shape[:-1])}; it is not elementwise")
    return Field(f.start, f.size, f.jump, tuple(f.spatial) + tuple(out_shape[-1:]))


def _local(start, size, jump, spatial, out_shape, op) -> Field:
    """A local field, its spatial shape checked against Keras' (and filled in where unknown)."""
    keras_spatial = tuple(out_shape[:-1])
    if len(keras_spatial) != len(spatial) or any(
            a is not None and b is not None and a != b for a, b in zip(spatial, keras_spatial)):
        raise ValueError(f"{_named(op)}: Keras gives spatial shape "
                         f"{keras_spatial} but the receptive-field rules give {spatial}")
    spatial = tuple(a if a is not None else b for a, b in zip(spatial, keras_spatial))
    return Field(tuple(start), tuple(size), tuple(jump), spatial + tuple(out_shape[-1:]))


# --------------------------------------------------------------------------- the rules


def mixes_all_locations(op, ins, out_shape) -> Field:
    """Flatten, Reshape, global pooling, ...: every output sees the whole input."""
    return ins[0].whole_from(f"{_named(op)} mixes all spatial locations", out_shape)


def elementwise(op, ins, out_shape) -> Field:
    """Activations, batch normalization, dropout, a Dense on a map, ...: the field is kept.
    An elementwise function of several tensors (``s + h``) is a merge: the union of theirs."""
    if len(ins) > 1:
        return merge(op, ins, out_shape)
    return _same(ins[0], out_shape, op)


def reduction(op, ins, out_shape) -> Field:
    """``ops.mean``, ``ops.max``, ...: over a spatial axis (or all axes) every output sees the
    whole input; over the channels only (keepdims=True) the field is kept."""
    f, rank = ins[0], len(ins[0].shape)
    axis = getattr(op, "axis", None)
    axes = set(range(rank)) if axis is None else _axes(axis, rank)
    if axes & set(range(rank - 1)):
        return mixes_all_locations(op, ins, out_shape)
    if len(out_shape) != rank:
        raise ValueError(f"{_named(op)} reduces the channel axis without keepdims=True, which "
                         "drops it; write it with keepdims=True")
    return _same(f, out_shape, op)


def along_axis(op, ins, out_shape) -> Field:
    """Softmax and normalizations: elementwise over channels, the whole input over space."""
    f = ins[0]
    if _axes(getattr(op, "axis", -1), len(f.shape)) == {len(f.shape) - 1}:
        return _same(f, out_shape, op)
    return f.whole_from(f"{_named(op)} normalizes over spatial axes", out_shape)


def merge(op, ins, out_shape) -> Field:
    """Union of aligned branches: same jump and spatial shape; Concatenate only on channels."""
    rank = len(ins[0].shape)
    if type(op).__name__ == "Concatenate" and _axes(op.axis, rank) != {rank - 1}:
        raise ValueError(f"{_named(op)} concatenates along axis {op.axis}, not the channel "
                         "axis; receptive fields support concatenation along channels only")
    for g in ins[1:]:
        if g.jump != ins[0].jump:
            raise ValueError(f"{_named(op)} merges branches with different jumps "
                             f"{[i.jump for i in ins]}: their locations are not aligned")
        if g.spatial != ins[0].spatial:
            raise ValueError(f"{_named(op)} merges branches of spatial shapes "
                             f"{[i.spatial for i in ins]}; receptive fields need equal shapes")
    start, size = [], []
    for a in range(len(ins[0].spatial)):
        lo = min(g.start[a] - (g.size[a] - 1) / 2 for g in ins)
        hi = max(g.start[a] - (g.size[a] - 1) / 2 + g.size[a] for g in ins)
        size.append(round(hi - lo))
        start.append(lo + (hi - lo - 1) / 2)
    return _local(start, size, ins[0].jump, ins[0].spatial, out_shape, op)


def _transposed(op, f: Field, w, out_shape) -> Field:
    """A stride-1 transposed convolution: a "valid" convolution with kernel k_eff on its input
    zero-padded by k_eff-1 on both sides ("valid"), or by k_eff-1-p left and p right ("same",
    where p = (k_eff-1)//2 is the left padding of the forward convolution it transposes)."""
    n = len(f.spatial)
    if any(s != 1 for s in w.strides):
        raise ValueError(f"{_named(op)} has strides {w.strides}: a "
                         "strided transposed convolution gives a fractional jump, which receptive "
                         "fields do not support (stride 1 is supported)")
    k_eff = [d * (k - 1) + 1 for k, d in zip(w.kernel, w.dilation)]
    valid = w.padding == "valid"
    pads = [(k - 1, k - 1) if valid else (k - 1 - (k - 1) // 2, (k - 1) // 2) for k in k_eff]
    start, spatial = _shift(f, pads)
    padded = Field(start, f.size, f.jump, spatial + f.shape[-1:])
    window = _window(padded, op.name, k_eff, (1,) * n, (1,) * n, "valid")
    return _local(*window, out_shape, op)


def sliding_window(op, ins, out_shape) -> Field:
    """Convolutions (depthwise, separable, stride-1 transposed) and pooling: a window of kernel,
    strides and dilation; zero padding by p: a 1-wide kernel with left padding p (start moves by
    -p jump); cropping by c: left padding -c."""
    f, w = ins[0], _layers.window(op)
    if w.op == "conv_transpose":
        return _transposed(op, f, w, out_shape)
    if w.op in ("pad", "crop"):
        start, spatial = _shift(f, w.padding)
        return _local(start, f.size, f.jump, spatial, out_shape, op)
    window = _window(f, op.name, w.kernel, w.strides, w.dilation, w.padding)
    return _local(*window, out_shape, op)


RULES = {_layers.POINTWISE: elementwise, _layers.WINDOW: sliding_window,
         _layers.MERGE: merge, _layers.GLOBAL: mixes_all_locations,
         _layers.RESHAPE: mixes_all_locations, _layers.ALONG_AXIS: along_axis,
         _layers.REDUCTION: reduction}
"""The rule of each kind of layer (``_layers.kind``)."""


def _unknown(op) -> ValueError:
    return ValueError(
        f"{_named(op)} is not known to receptive fields. Known: convolutions "
        "(incl. depthwise, separable, stride-1 transposed), pooling, ZeroPadding, Cropping, "
        "elementwise layers and operations, merges (Add, s + h, x * g, Concatenate), "
        "Flatten/Reshape/global pooling. If its output at a location depends only on its "
        "input(s) at that location, pass pointwise=[" + repr(type(op).__name__) + "] (to "
        "compute, field, region, empirical_support or zeiler_fergus)")


def rule_for(op, pointwise=()):
    """The rule of layer or operation ``op``: that of its kind in the catalogue
    (``_layers.kind``; one named in ``pointwise``, by class or name, is pointwise unless it
    mixes all locations); a ValueError when no rule fits."""
    kind = _layers.kind(op, pointwise)
    if kind is None:
        raise _unknown(op)
    return RULES[kind]


def _merges(op, pointwise) -> bool:
    """Whether ``op`` is elementwise over several tensors (a merge, ``x * g``)."""
    return _layers.kind(op, pointwise) in (_layers.MERGE, _layers.POINTWISE)


def _gated(op, ins, out_shape, pointwise, gates) -> tuple:
    """(fields of the inputs to use, names of left-out gates, or a field that ends it).

    A gate is an input that is a 1x1 map seeing the whole input, broadcast over the other
    (local) inputs of a merge. gates="local" leaves it out; "whole": the output is the whole
    input (or unknown, when the gate's field is)."""
    if len(ins) < 2 or all(i.is_gate for i in ins) or not any(i.is_gate for i in ins) or \
            not _merges(op, pointwise):
        return ins, (), None
    gate = next(i for i in ins if i.is_gate)
    if gates == "local":
        return [i for i in ins if not i.is_gate], (op.name,), None
    if any(i.whole or i.unknown for i in ins if not i.is_gate):
        return ins, (), None                        # the output is not local anyway
    if gate.unknown:
        return ins, (), gate.unknown_from(None, out_shape)
    reason = (f"a global gate enters at {_named(op)}: a 1x1 branch that sees the whole input "
              f"(there {gate.whole}) is broadcast over the map. Pass gates='local' for the "
              "field of the local path, the gate left out")
    return ins, (), Field((), (), (), tuple(out_shape), reason)


def output_field(op, ins, out_shape, pointwise=(), gates: str = "whole") -> Field:
    """The field of the output of layer (or operation) ``op`` from the fields ``ins`` of its
    inputs; an unknown field (``Field.unknown``) when no rule fits, instead of an error.

    A field that is the whole input stays so through any layer, an unknown one unknown. A gate,
    a 1x1 branch that sees the whole input broadcast over a merge (squeeze-and-excitation's
    pooled vector, which only scales the channels of the local branches), makes the output the
    whole input (gates="whole") or is left out and named in ``Field.gates`` (gates="local").
    """
    ins, held, ended = _gated(op, ins, out_shape, pointwise, gates)
    if ended is not None:
        return ended
    unknown = [i for i in ins if i.unknown]
    if unknown:
        return unknown[0].unknown_from(None, out_shape)
    whole = [i for i in ins if i.whole]
    if whole and _layers.kind(op) not in (_layers.GLOBAL, _layers.RESHAPE):
        return whole[0].whole_from(None, out_shape)
    try:
        result = rule_for(op, pointwise)(op, ins, out_shape)
    except (ValueError, TypeError, AttributeError, IndexError) as e:
        return Field((), (), (), tuple(out_shape), unknown=str(e))
    gates_on_path = tuple(dict.fromkeys(sum((i.gates for i in ins), ()) + held))
    return dataclasses.replace(result, gates=gates_on_path)
