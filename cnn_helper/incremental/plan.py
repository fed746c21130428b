"""The plan: which layers are recomputed in windows, each tensor's window, from the model's
program (``_graph.program``), the receptive fields of its tensors
(:func:`..receptive_field.walk.tensor_fields`) and the layers' kinds (``_layers``)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _graph, _layers
from ..receptive_field import rules
from ..receptive_field.walk import tensor_fields

# --------------------------------------------------------------------------- windows


def changed_interval(box_start, size, jump, n, a, b) -> tuple:
    """(lo, hi), inclusive: the locations of a tensor of length n whose receptive box
    [box_start + i jump, ... + size) meets the input interval [a, b) (arrays of patches)."""
    lo = np.maximum((np.asarray(a) - box_start - size) // jump + 1, 0)
    hi = np.minimum(-((box_start - np.asarray(b)) // jump) - 1, n - 1)
    return lo, hi


def window_length(box_start, size, jump, n, patch, image_length, threshold=1.0) -> int:
    """The window length on one axis: the longest changed interval over every position of a
    patch of length ``patch`` (clipped at the image's border), at least 1, at most
    ``ceil(threshold * n)`` (``threshold`` < 1: Krypton's approximate projective field)."""
    a = np.arange(-(patch - 1), image_length)
    lo, hi = changed_interval(box_start, size, jump, n, np.maximum(a, 0),
                              np.minimum(a + patch, image_length))
    return int(np.clip((hi - lo + 1).max(), 1, max(1, math.ceil(threshold * n))))


def window_offsets(box_start, size, jump, n, length, a, b) -> np.ndarray:
    """Where each copy's window of ``length`` starts: over the changed interval of its patch
    [a, b), kept inside [0, n); centred on the interval when it is longer (threshold < 1)."""
    lo, hi = changed_interval(box_start, size, jump, n, a, b)
    start = np.where(hi - lo + 1 > length, (lo + hi + 1 - length) // 2, lo)
    return np.clip(start, 0, n - length)


def _box_start(field: rules.Field, axis: int) -> int:
    """Where location 0's receptive box starts: start - (size - 1) / 2, an integer."""
    return round(field.start[axis] - (field.size[axis] - 1) / 2)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Geometry:
    """A sliding window (convolution, pooling, padding, cropping) on one spatial axis pair, read
    off the receptive fields of its input and output: kernel (effective, dilation included),
    stride, left padding (negative: cropping), and the padding of the clean input (before,
    after) per axis so that every window it reads lies inside."""

    kernel: tuple
    stride: tuple
    left: tuple
    pad: tuple


@dataclass(frozen=True)
class Step:
    """One layer call of the plan.

    call    : the ``_graph.Call``
    kind    : "window" (a sliding window), "pointwise" (elementwise, one input), "merge"
              (elementwise over several inputs), or "full" (runs on whole tensors)
    reason  : for "full", why the layer is not recomputed in windows
    geometry: for "window", its Geometry
    """

    call: object
    kind: str
    reason: str = ""
    geometry: Geometry | None = None

    @property
    def inputs(self) -> tuple:
        """The numbers of the tensors it reads."""
        return self.call.inputs


def sliding_window(layer):
    """The ``_layers.Window`` of a layer recomputed in windows: a 2-D convolution (plain,
    depthwise or separable), pooling, zero padding or cropping that computes as its Keras class
    does (a subclass that changes ``call`` runs in full: its computation is not known); else
    None."""
    window = _layers.window(layer)
    if window is None or window.rank != 2 or not window.keras_call or \
            window.op == "conv_transpose":
        return None
    return window


def _geometry(fin: rules.Field, fout: rules.Field) -> Geometry:
    """The window's kernel, stride and left padding from the fields of its input and output
    (size' = size + (k - 1) jump, jump' = jump s, box start' = box start - p jump)."""
    kernel, stride, left, pad = [], [], [], []
    for a, (n_in, n_out) in enumerate(zip(fin.spatial, fout.spatial)):
        k = (fout.size[a] - fin.size[a]) // fin.jump[a] + 1
        s = fout.jump[a] // fin.jump[a]
        p = (_box_start(fin, a) - _box_start(fout, a)) // fin.jump[a]
        kernel.append(k), stride.append(s), left.append(p)
        pad.append((max(p, 0), max((n_out - 1) * s + k - p - n_in, 0)))
    return Geometry(tuple(kernel), tuple(stride), tuple(left), tuple(pad))


def _elementwise(layer, fins, fout) -> bool:
    """Whether ``layer`` is elementwise over its inputs, all aligned with its output, and holds
    no weight laid out over space (a PReLU with a slope per location is not)."""
    aligned = all(f.spatial == fout.spatial and f.jump == fout.jump for f in fins)
    local = _layers.kind(layer) in (_layers.POINTWISE, _layers.MERGE)
    spatial_weight = any(len(w.shape) >= 3 for w in getattr(layer, "weights", []))
    return aligned and local and not spatial_weight


def _classify(call, fields, windowed) -> Step:
    """The Step of one call, given the tensors that are windowed."""
    fins = [fields.get(t) for t in call.inputs]
    fout = fields.get(call.outputs[0])
    if not call.inputs or not all(t in windowed for t in call.inputs):
        return Step(call, "full", "it reads a whole tensor")
    if fout is None or fout.whole or fout.unknown or len(fout.spatial) != 2:
        why = "its output is not a 2-D map" if fout is None or not (fout.whole or fout.unknown) \
            else (fout.whole or fout.unknown)
        return Step(call, "full", why)
    if len(call.outputs) == 1 and sliding_window(call.layer) is not None and len(fins) == 1:
        return Step(call, "window", geometry=_geometry(fins[0], fout))
    if len(call.outputs) == 1 and _elementwise(call.layer, fins, fout):
        return Step(call, "pointwise" if len(fins) == 1 else "merge")
    return Step(call, "full", f"{type(call.layer).__name__} is not a known local layer")


@dataclass(frozen=True)
class Plan:
    """How incremental occlusion computes one target for one patch size and image shape.

    steps    : the Steps, in run order, up to the one writing the target's layer
    lengths  : {tensor number: window size (h, w)} of every windowed tensor
    fields   : {tensor number: rules.Field} (numbers of the model's ``_graph.program``)
    source   : the number of the model's input tensor; target: of the target layer's output
    patch, image_shape, threshold : what the plan was made for
    """

    steps: tuple
    lengths: dict
    fields: dict
    source: int
    target: int
    patch: tuple
    image_shape: tuple
    threshold: float

    def same_window(self, t, u) -> bool:
        """Whether windowed tensors t and u have the same windows (the same receptive fields
        on the same map: an elementwise layer's input and output)."""
        f, g = self.fields[t], self.fields[u]
        return (f.start, f.size, f.jump, f.spatial) == (g.start, g.size, g.jump, g.spatial)

    def region(self, step) -> tuple:
        """The region (h, w) of its input that a "window" step reads to compute its output's
        window of (h', w'): (h' - 1) stride + kernel per axis."""
        g = step.geometry
        return tuple((n - 1) * s + k for n, s, k in
                     zip(self.lengths[step.call.outputs[0]], g.stride, g.kernel))

    @property
    def windowed(self) -> list:
        """Numbers of the windowed tensors, the input first (the order of ``offsets``' rows)."""
        return list(self.lengths)

    def offsets(self, bounds) -> np.ndarray:
        """(T, B, 2) int32: where the window of each windowed tensor starts, for the B patches of
        ``bounds`` (4, B): row start, row stop, col start, col stop."""
        rows = []
        for t, length in self.lengths.items():
            f = self.fields[t]
            rows.append(np.stack([window_offsets(_box_start(f, a), f.size[a], f.jump[a],
                                                 f.spatial[a], length[a], bounds[2 * a],
                                                 bounds[2 * a + 1]) for a in (0, 1)], axis=1))
        return np.stack(rows).astype(np.int32)


def _lengths(field, patch, image_shape, threshold) -> tuple:
    return tuple(window_length(_box_start(field, a), field.size[a], field.jump[a],
                               field.spatial[a], patch[a], image_shape[a], threshold)
                 for a in (0, 1))


def make_plan(model, layer_name: str, patch, image_shape, threshold: float = 1.0) -> Plan:
    """The Plan for the target layer ``layer_name`` (a path name), patch (f_r, f_c), one image
    of ``image_shape`` (H, W, C); threshold < 1 caps every window at that fraction of its map
    (approximate). Built once per (model, arguments). ``Plan.target`` is None when the target
    is not the output of a layer call of the graph (then occlusion runs in full)."""
    def build():
        program = _graph.program(model)
        source, fields = program.inputs[0], tensor_fields(model, image_shape)
        lengths = {source: tuple(min(p, n) for p, n in zip(patch, image_shape))}
        steps, target = [], None
        for call in program.calls:
            if not call.computes:                 # an input, or a nested model's outputs
                continue
            step = _classify(call, fields, lengths)
            if step.kind != "full":
                lengths[call.outputs[0]] = _lengths(fields[call.outputs[0]], patch,
                                                    image_shape, threshold)
            steps.append(step)
            if call.name == layer_name:
                target = call.outputs[0]
                break
        return Plan(tuple(steps), lengths, fields, source, target, tuple(patch),
                    tuple(image_shape), threshold)

    key = ("incremental plan", layer_name, tuple(patch), tuple(image_shape), threshold)
    return _graph.memo(model, key, build)


