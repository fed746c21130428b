r"""The walk: the receptive field of every layer, from the model's input up through its graph.

The input carries size 1, jump 1, start 0 on each spatial axis. :func:`compute` follows the
model's program (``_graph.program``: its layer calls in an order where every tensor is written
before it is read, nested models entered, their layers named "outer/inner"), applying each
layer's rule (:mod:`.rules`) to the fields of the tensors it reads.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import _checks, _graph, _layers
from . import rules

GATES = ("whole", "local")


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of every location of one layer, per spatial axis of the input.

    layer       : the layer's name ("outer/inner" inside a nested model)
    kind        : the layer's class name
    size        : receptive field length in input pixels, per axis (the input's shape when the
                  field is the whole input)
    jump        : input pixels between adjacent locations of this layer (effective stride); ()
                  when the field is the whole input
    start       : input coordinate of the centre of location 0 (may be fractional or negative);
                  () when the field is the whole input
    shape       : spatial shape of the layer's output (() for Flatten, Dense after Flatten,
                  global pooling)
    input_shape : spatial shape of the model's input
    whole_input : None for a local field; else why every location sees the whole input
    gates       : with gates="local", the merges on the way where a global gate was left out
                  (squeeze-and-excitation): the field is that of the local path, and the value
                  also depends, through each gate's channel scale, on the whole input
    unknown     : None, or why the field is not known (a layer or operation on the way that no
                  rule fits; layers that do not depend on it are not affected)
    """

    layer: str
    kind: str
    size: tuple
    jump: tuple
    start: tuple
    shape: tuple
    input_shape: tuple
    whole_input: str | None = None
    gates: tuple = ()
    unknown: str | None = None

    @property
    def is_local(self) -> bool:
        """True when each location sees a known box of the input."""
        return self.whole_input is None and self.unknown is None

    def check_local(self):
        """A ValueError, saying why, unless each location sees a known box of the input."""
        if self.unknown is not None:
            raise ValueError(f"layer {self.layer!r} ({self.kind}) has no known receptive "
                             f"field: {self.unknown}")
        if self.whole_input is not None:
            own = f"layer {self.layer.split('/')[-1]!r} ({self.kind})"
            raise ValueError(f"layer {self.layer!r} ({self.kind}) has no local receptive field: "
                             "the field is the whole input, because "
                             f"{self.whole_input.replace(own, 'it')}")

    def centre(self, location) -> tuple:
        """Input coordinates of the centre of ``location``: start + location * jump."""
        self.check_local()
        return tuple(s + i * j for s, i, j in zip(self.start, location, self.jump))

    def bounds(self, location) -> tuple:
        """Per axis (lo, hi): the half-open input interval ``location`` sees, NOT clipped."""
        self.check_local()
        lo = (round(c - (n - 1) / 2) for c, n in zip(self.centre(location), self.size))
        return tuple((a, a + n) for a, n in zip(lo, self.size))


# --------------------------------------------------------------------------- the walk


def _output_shape(op, ins, graph_shape) -> tuple:
    """Keras' output shape (no batch axis) of ``op`` on inputs of the carried shapes; the shape
    in the model's graph for layers that cannot compute it."""
    shapes = [(None,) + tuple(f.shape) for f in ins]
    try:
        out = op.compute_output_shape(shapes if len(shapes) > 1 else shapes[0])
        if isinstance(out, list) or (isinstance(out, tuple) and out and isinstance(out[0], tuple)):
            out = out[0]
        return tuple(out[1:])
    except Exception:  # noqa: BLE001 — layers without compute_output_shape
        return tuple(graph_shape)


class _Walk:
    """The fields found so far: ``fields[path name] = (rules.Field, class name)``,
    ``tensors[tensor number]``: the field of every tensor of the program, and
    ``held[id(merge)]``: the positions, among its input tensors, of the gates a merge left out."""

    def __init__(self, pointwise, gates):
        self.pointwise, self.gates = set(pointwise), gates
        self.fields, self.held, self.tensors = {}, {}, {}

    def record(self, name, field, kind):
        old = self.fields.get(name)
        if old is not None and old[0] != field:
            field = old[0].whole_from(f"layer {name!r} is applied at several places with "
                                      "different fields", old[0].shape)
        self.fields[name] = (field, kind)

    def apply(self, call, ins) -> list:
        """The fields of the outputs of one layer call (or block)."""
        op = call.layer
        if call.kind == "block":
            return [ins[0].unknown_from(f"model {op.name!r} is called as one block: its call() "
                                        "cannot be traced, so its layers are not known",
                                        call.shape)]
        out_shape = _output_shape(op, ins, call.shape)
        out = rules.output_field(op, ins, out_shape, self.pointwise, self.gates)
        if op.name in out.gates and not any(op.name in f.gates for f in ins):
            self.held[id(op)] = tuple(k for k, f in enumerate(ins) if f.is_gate)
        return [out]

    def run(self, model, field):
        """Walk ``model``'s program, its input carrying ``field``."""
        program = _graph.program(model)
        self.tensors[program.inputs[0]] = field
        for call in program.calls:
            if not call.computes:                     # an input, or a nested model's outputs
                if call.outputs[0] in self.tensors:
                    self.record(call.name, self.tensors[call.outputs[0]],
                                type(call.layer).__name__)
                continue
            if any(t not in self.tensors for t in call.inputs):
                continue                              # not fed by the model's input
            outs = self.apply(call, [self.tensors[t] for t in call.inputs])
            for t, f in zip(call.outputs, outs * len(call.outputs)):
                self.tensors[t] = f
            if not _layers.is_operation(call.layer):  # s + h: no layer one can name
                self.record(call.name, outs[0], type(call.layer).__name__)


def _input_shape(model, input_shape) -> tuple:
    shape = _graph.input_shape(model)
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if len(input_shape) != len(shape) or any(
                a is not None and a != b for a, b in zip(shape, input_shape)):
            raise ValueError(f"input_shape {input_shape} does not fit model {model.name!r}, "
                             f"whose input shape is {shape}")
        shape = input_shape
    if len(shape) < 2:
        raise ValueError(f"model {model.name!r} has input shape {shape}: no spatial axes, so no "
                         "receptive fields (expected e.g. (H, W, C))")
    return shape


def _walk_model(model, shape, pointwise, gates) -> tuple:
    """({layer name: ReceptiveField} for an input of ``shape``, in the order of layer_names;
    the held gates ``{id(merge): positions}``; the field of every tensor of the model's program
    ``{tensor number: rules.Field}``)."""
    n = len(shape) - 1
    walk = _Walk(pointwise, gates)
    walk.run(model, rules.Field((0.0,) * n, (1,) * n, (1,) * n, shape))
    spatial_in = shape[:-1]
    result = {}
    for name in _graph.layer_names(model):
        if name not in walk.fields:
            continue
        f, kind = walk.fields[name]
        if f.whole or f.unknown:
            result[name] = ReceptiveField(name, kind, spatial_in, (), (), f.spatial, spatial_in,
                                          f.whole, unknown=f.unknown)
        else:
            result[name] = ReceptiveField(name, kind, f.size, f.jump,
                                          tuple(float(s) for s in f.start), f.spatial, spatial_in,
                                          gates=f.gates)
    return result, dict(walk.held), dict(walk.tensors)


def _walked(model, input_shape, pointwise, gates) -> tuple:
    """``_walk_model`` once per (model, input shape, pointwise, gates)."""
    _checks.one_of(gates, "gates", GATES)
    pointwise = (pointwise,) if isinstance(pointwise, str) else tuple(pointwise)
    shape = _input_shape(model, input_shape)
    key = ("receptive_field", shape, tuple(sorted(pointwise)), gates)
    return _graph.memo(model, key, lambda: _walk_model(model, shape, pointwise, gates))


def compute(model, input_shape=None, pointwise=(), gates: str = "whole") -> dict:
    r"""The receptive field of every layer of ``model``: ``{layer name: ReceptiveField}``.

    Walks the model's graph from its input (size 1, jump 1, start 0 on each spatial axis)
    applying the rules of :mod:`.rules`; the order is that of ``features.layer_names(model)``,
    nested models' layers named "outer/inner". Operations written on tensors (``s + h``,
    ``x * g``, ``keras.ops.relu``) are walked too (they have no layer name of their own).
    Layers after Flatten / global pooling are included with ``whole_input`` set (their field is
    the whole input); layers after one that no rule fits with ``unknown`` set (why), which
    does not stop the walk: the layers before it, or on other branches, keep their fields.

    input_shape : one image's shape (H, W, C), for models whose input has unknown (None) sizes
    pointwise   : extra layer class names or layer names whose output at a location depends
                  only on their input(s) at that location (one input: field kept; several: the
                  union, as a merge)
    gates       : what a gate does, a 1x1 branch that sees the whole input broadcast over the
                  map by a merge (squeeze-and-excitation in EfficientNet, MobileNetV3: y_idx,k =
                  x_idx,k * g_k(whole input)). "whole" (default): every later location depends
                  on the whole input, which is the truth; ``field``/``region`` refuse them and
                  say so. "local": the gate is left out (it only rescales channels) and the field
                  is that of the local (convolution) path, the usual "theoretical receptive
                  field"; ``ReceptiveField.gates`` names the gates left out, and
                  ``empirical_support(..., gates="local")`` measures the same thing (the gates
                  held fixed).

    >>> compute(model)["pool2"]
    ReceptiveField(layer='pool2', kind='MaxPooling2D', size=(10, 10), jump=(4, 4),
                   start=(1.5, 1.5), ...)
    >>> compute(effnet, gates="local")["block2b_add"].gates
    ('block1a_se_excite', 'block2a_se_excite', 'block2b_se_excite')
    """
    return dict(_walked(model, input_shape, pointwise, gates)[0])


def held_gates(model, input_shape=None, pointwise=(), gates: str = "whole") -> dict:
    """The gates :func:`compute` leaves out with these arguments (none unless gates="local"):
    ``{id(merge layer or operation): positions of the gates among its input tensors}``."""
    return dict(_walked(model, input_shape, pointwise, gates)[1])


def tensor_fields(model, input_shape=None) -> dict:
    """The field of every tensor of the model's program (``_graph.program``), nested models'
    tensors included: ``{tensor number: rules.Field}`` (gates="whole", no extra pointwise
    layers). Incremental occlusion reads its projective fields from them: one source of truth
    for both."""
    return dict(_walked(model, input_shape, (), "whole")[2])


def layer_field(model, layer, **kwargs) -> ReceptiveField:
    """The ReceptiveField of one layer (name, "outer/inner" path, or the layer object), local
    or not; a ValueError when the layer is not fed by the model's input."""
    name = _graph.path_name(model, layer)
    fields = compute(model, **kwargs)
    if name not in fields:
        raise ValueError(f"layer {name!r} is not connected to the input of model "
                         f"{model.name!r}; layers with a field: {list(fields)}")
    return fields[name]


def field(model, layer, **kwargs) -> ReceptiveField:
    """The local ReceptiveField of one layer (name, "outer/inner" path, or the layer object).

    A ValueError when the layer's field is the whole input (Flatten, Dense after Flatten, global
    pooling and what follows them, a global gate with gates="whole"), is unknown (a layer on
    the way that no rule fits: the message says which, and how to declare it pointwise), or the
    layer is not fed by the model's input. Layers after ``layer``, or on branches that do not
    feed it, do not matter. ``kwargs`` go to :func:`compute`.
    """
    result = layer_field(model, layer, **kwargs)
    result.check_local()
    return result


def check_location(rf: ReceptiveField, location) -> tuple:
    """``location`` (an int on a 1-D map, or a tuple) as a tuple inside the map of ``rf``."""
    if _checks.is_int(location):
        location = (location,)
    location = _checks.index_tuple(location, "location")
    if len(location) != len(rf.shape):
        raise ValueError(f"location {location} has {len(location)} indices but layer "
                         f"{rf.layer!r} has {len(rf.shape)} spatial axes (its map is {rf.shape})")
    if any(i < 0 or (n is not None and i >= n) for i, n in zip(location, rf.shape)):
        raise ValueError(f"location {location} is outside the map of layer {rf.layer!r}, whose "
                         f"spatial shape is {rf.shape}")
    return location


def region(model, layer, location, **kwargs) -> tuple:
    r"""The input slices that ``location`` of ``layer`` sees: :math:`\mathcal{R}_{(l),idx}`.

    One Python ``slice`` per spatial axis, clipped to the image (a location over padding may see
    fewer pixels, or none: an empty slice). ``x[(slice(None),) + region(...)]`` is the patch of
    a batch ``x``.

    >>> region(model, "conv3", (0, 0))        # near the corner: [-7, 11) clipped to [0, 11)
    (slice(0, 11, None), slice(0, 11, None))
    """
    rf = field(model, layer, **kwargs)
    location = check_location(rf, location)
    if None in rf.input_shape:
        raise ValueError(f"model {model.name!r} has input of unknown size {rf.input_shape}; give "
                         "input_shape=(H, W, C) to clip the region to the image")
    return tuple(slice(min(max(lo, 0), n), min(max(hi, 0), n))
                 for (lo, hi), n in zip(rf.bounds(location), rf.input_shape))
