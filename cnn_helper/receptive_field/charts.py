r"""The lecture's charts of a growing receptive field, in numbers: the summary table, the 1-D
growth chart (which locations of each earlier layer feed one location), and the nested 2-D
regions. ``plot.receptive_field_growth`` and ``plot.receptive_field_regions`` draw them.

Location p of layer l is centred on input coordinate start_l + p jump_l and sees size_l pixels.
A location of layer L centred on c depends on the locations of an earlier layer l whose centres
lie within (size_L - size_l) / 2 input pixels of c.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .walk import ReceptiveField, check_location, compute, field, region


def _fmt(values) -> str:
    return "x".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def summary(model, **kwargs) -> str:
    """The fields as a text table, one layer a row (``print(summary(model))``).

    >>> print(summary(model))
    layer     kind          output  size         jump  start
    input     InputLayer    28x28   1x1          1x1   0x0
    conv1     Conv2D        28x28   3x3          1x1   0x0
    pool1     MaxPooling2D  14x14   4x4          2x2   0.5x0.5
    ...
    flatten   Flatten       -       whole input  -     -

    A layer whose field is not known (a layer on the way that no rule fits) shows "unknown";
    ``field(model, layer)`` says why.
    """
    rows = [("layer", "kind", "output", "size", "jump", "start")]
    for rf in compute(model, **kwargs).values():
        local = rf.is_local
        size = _fmt(rf.size) if local else "unknown" if rf.unknown else "whole input"
        rows.append((rf.layer, rf.kind, _fmt(rf.shape) or "-", size,
                     _fmt(rf.jump) if local else "-", _fmt(rf.start) if local else "-"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)


def _grows(rf: ReceptiveField, last) -> bool:
    """Whether layer ``rf`` changes the field of ``last`` without shrinking it."""
    return last is None or (
        (rf.size, rf.jump, rf.start) != (last.size, last.jump, last.start)
        and all(a >= b for a, b in zip(rf.size + rf.jump, last.size + last.jump)))


def _path_layers(model, layer, layers, kwargs) -> tuple:
    """The layers whose fields grow into ``layer``'s: given, or every local layer up to it that
    changes (size, jump, start) without shrinking (which skips e.g. ResNet's shortcut convs)."""
    fields = compute(model, **kwargs)
    target = field(model, layer, **kwargs)
    if layers is not None:
        chosen = [field(model, name, **kwargs) for name in layers]
        return chosen + ([target] if chosen[-1].layer != target.layer else []), target
    chosen = []
    for rf in fields.values():
        if rf.is_local and _grows(rf, chosen[-1] if chosen else None):
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


def _feeding(rf: ReceptiveField, target, centre, size, axis) -> tuple:
    """(first, last): the locations of layer ``rf`` along ``axis`` that feed a location of layer
    ``target`` centred at input coordinate ``centre`` with field ``size`` (not clipped to the
    map): those within (size - size_l) / 2 input pixels of the centre."""
    if rf.size[axis] > size:
        raise ValueError(f"layer {rf.layer!r} has a larger field than {target!r}; it does not "
                         "come before it")
    c = (centre - rf.start[axis]) / rf.jump[axis]
    half = (size - rf.size[axis]) / (2 * rf.jump[axis])
    return math.ceil(c - half - 1e-9), math.floor(c + half + 1e-9)


# --------------------------------------------------------------------------- the growth chart


@dataclass(frozen=True)
class GrowthRow:
    """One layer l in the 1-D growth chart of one location of a deeper layer L (along one axis).

    layer, kind : the layer l
    n           : number of locations of layer l along the axis
    start, jump : location p of layer l is centred on input coordinate start + p * jump
    size        : receptive field size of one location of layer l
    first, last : the locations of layer l that the location of layer L depends on (inclusive,
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


def _growth_row(rf: ReceptiveField, target: ReceptiveField, centre, axis) -> GrowthRow:
    """Layer ``rf``'s row: the locations feeding the location of ``target`` centred on
    ``centre``, and the input pixels they see together."""
    first, last = _feeding(rf, target.layer, centre, target.size[axis], axis)
    n, n_in = rf.shape[axis], target.input_shape[axis]
    first, last = max(first, 0), min(last, n - 1)
    lo = rf.start[axis] + first * rf.jump[axis] - (rf.size[axis] - 1) / 2
    hi = rf.start[axis] + last * rf.jump[axis] + (rf.size[axis] + 1) / 2
    interval = (min(max(round(lo), 0), n_in), min(max(round(hi), 0), n_in))
    return GrowthRow(rf.layer, rf.kind, n, rf.start[axis], rf.jump[axis], rf.size[axis],
                     first, last, interval if first <= last else (0, 0))


def growth(model, layer, location, axis: int = 0, layers=None, **kwargs) -> list:
    r"""The lecture's chart in numbers: which locations of each earlier layer l feed
    ``location`` of ``layer``, along one spatial ``axis``; rows from the input up to ``layer``.

    Layer l's locations feeding :math:`y_{(L),idx}` are those within (size_L - size_l) / 2
    input pixels of its centre (exact for chains; for branched nets, layers on every path).
    ``layers``: the layer names to show (default: every layer that changes the field).

    >>> [(r.layer, r.first, r.last) for r in growth(model, "conv3", (3, 3))]
    [('input', 5, 22), ('conv1', 6, 21), ('pool1', 3, 10), ('conv2', 4, 9), ('pool2', 2, 4), ...]
    """
    rows, target = _path_layers(model, layer, layers, kwargs)
    location = check_location(target, location)
    if not 0 <= axis < len(location):
        raise ValueError(f"axis {axis} is not a spatial axis of layer {target.layer!r} "
                         f"(it has {len(location)})")
    centre = target.centre(location)[axis]
    return [_growth_row(rf, target, centre, axis) for rf in rows]


# --------------------------------------------------------------------------- nested regions


@dataclass(frozen=True)
class NestedRegion:
    """Receptive field of one location of one layer, for the 2-D chart of nested fields.

    layer    : the layer's name
    location : the location of that layer
    size     : its receptive field size per axis
    region   : the input slices it sees (as :func:`region`)
    """

    layer: str
    location: tuple
    size: tuple
    region: tuple


def nearest_location(model, layer, point, **kwargs) -> tuple:
    """The location of ``layer`` whose receptive field is centred closest to input ``point``.

    >>> nearest_location(model, "pool2", (13.5, 13.5))      # centres 1.5 + 4 p
    (3, 3)
    """
    rf = field(model, layer, **kwargs)
    if len(point) != len(rf.shape):
        raise ValueError(f"point {point} has {len(point)} coordinates; the input has "
                         f"{len(rf.shape)} spatial axes")
    return tuple(int(min(max(round((p - s) / j), 0), n - 1))
                 for p, s, j, n in zip(point, rf.start, rf.jump, rf.shape))


def _feeding_location(rf: ReceptiveField, upper: ReceptiveField, location) -> tuple:
    """The location of layer ``rf`` feeding ``location`` of ``upper`` that is nearest its
    centre (the middle of those that feed it)."""
    centre = upper.centre(location)
    where = []
    for a in range(len(centre)):
        first, last = _feeding(rf, upper.layer, centre[a], upper.size[a], a)
        first, last = max(first, 0), min(last, rf.shape[a] - 1)
        where.append(min(max(round((centre[a] - rf.start[a]) / rf.jump[a]), first), last))
    return tuple(where)


def nested_regions(model, layer, location, layers=None, **kwargs) -> list:
    """The lecture's nested receptive fields: for ``location`` of ``layer`` and each earlier
    layer (default: those that change the field), one location feeding the next one (the middle
    of those that do) and the input region it sees; smallest first, each inside the next (one
    layer per field size: a padding layer's or a shortcut's box would repeat a neighbour's).

    >>> [(r.layer, r.location) for r in nested_regions(model, "conv3", (1, 5))]
    [('conv1', (4, 20)), ('pool1', (2, 10)), ('conv2', (2, 10)), ('pool2', (1, 5)), ...]
    """
    rows, target = _path_layers(model, layer, layers, kwargs)
    where = check_location(target, location)
    out = [NestedRegion(target.layer, where, target.size,
                        region(model, target.layer, where, **kwargs))]
    for rf in reversed(rows[:-1]):
        if rf.kind in ("Input", "InputLayer"):
            continue
        where = _feeding_location(rf, field(model, out[-1].layer, **kwargs), out[-1].location)
        out.append(NestedRegion(rf.layer, where, rf.size, region(model, rf.layer, where, **kwargs)))
    nested = []
    for r in reversed(out):   # smallest first; of layers with equal fields keep the first
        if any(n > 1 for n in r.size) and (not nested or r.size != nested[-1].size):
            nested.append(r)
    return nested
