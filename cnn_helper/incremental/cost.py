r"""What incremental occlusion saves: per layer, the fraction of its output recomputed, the
floating-point operations (FLOPs) and the values read and written of one occluded copy, full
re-inference vs incremental; and the predicted time of a whole call, which decides "auto".

Time is counted in *work*, FLOP-equivalents: a layer's FLOPs plus ``VALUE_COST`` per value it
reads or writes (a depthwise or 1x1 convolution moves nearly as many values as it computes
FLOPs; the gathers and pastes of incremental inference move values and compute none), and each
compiled call a fixed ``CALL_COST`` (plus ``LAYER_COST`` per layer of an incremental step: the
index arithmetic of its windows). For N images of M occluded copies each, batches of
:math:`B_f` (full) and :math:`B_i` (incremental) copies, per-copy work :math:`W_f`,
:math:`W_i` and L layer calls:

.. math::

    T_\text{full} = N (M + 1) W_f + \lceil N (M + 1) / B_f \rceil K \qquad
    T_\text{incremental} = N (W_f + M W_i) + N (1 + \lceil M / B_i \rceil) (K + L K_L)

(full re-inference runs the un-occluded image as one more copy; incremental runs it once per
image as its clean pass). "auto" runs incrementally when
:math:`T_\text{full} / T_\text{incremental} \ge` ``AUTO_MIN_RATIO``.

>>> cost(plan).speedup(copies=784)          # the course CNN, patch 4, stride 1, one image
1.6...
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import _graph, _layers
from .plan import Plan

AUTO_MIN_RATIO = 1.5
"""strategy="auto" runs incrementally when the predicted time ratio full / incremental of the
whole call is at least this: a margin for what the model of time leaves out (on small images,
where windows soon cover their maps, measured / predicted ratios go down to 0.75; see
benchmarks/RESULTS.md)."""

VALUE_COST = 40
"""Work of reading or writing one float32 value, in FLOP-equivalents (fitted on 2 CPU cores:
about 95 GFLOP/s in a convolution, 0.4 ms per million values moved; benchmarks/RESULTS.md)."""

CALL_COST = 10**8
"""Work of one compiled call's fixed cost, in FLOP-equivalents (about 1 ms here: the Python
around it, its arguments, TensorFlow's dispatch)."""

LAYER_COST = 10**7
"""Work, in FLOP-equivalents, that each layer adds to one compiled incremental step whatever the
batch (about 0.1 ms: the small operations that compute its windows' indices)."""


def flops_per_value(layer) -> int:
    """Multiply-adds (2 FLOPs each) behind one output value of ``layer``: a convolution's
    kernel volume, a Dense layer's inputs; a pooling window's size; 1 for anything else.

    >>> flops_per_value(conv)              # a built Conv2D, 3x3 kernel on 1 channel: 2 * 9
    18
    """
    window = _layers.window(layer)
    kernel = getattr(layer, "kernel", None)
    if window is None:                            # a pointwise layer with a kernel: a Dense
        dense = kernel is not None and _layers.kind(layer) == _layers.POINTWISE
        return 2 * math.prod(kernel.shape[:-1]) if dense else 1
    if window.op == "separable_conv":
        *k, c_in, multiplier = layer.depthwise_kernel.shape
        return 2 * c_in * multiplier + 2 * math.prod(k) * c_in * multiplier // layer.filters
    if window.op == "depthwise_conv":
        return 2 * math.prod(kernel.shape[:-2])
    if window.op == "conv" and kernel is not None:
        return 2 * math.prod(kernel.shape[:-1])
    if window.op in ("max_pool", "average_pool"):
        return math.prod(window.kernel)
    return 1


@dataclass(frozen=True)
class LayerCost:
    """One layer call: its name, its output shape (H, W, C), how it runs ("window": a sliding
    window, "pointwise", "merge", or "full" and why), the window (h, w) recomputed (None for
    full), the fraction of its output recomputed, the FLOPs of one occluded copy, full
    re-inference and incremental, and the values that copy reads and writes there (inputs and
    output; incremental: the regions gathered and the windows pasted too)."""

    layer: str
    shape: tuple
    kind: str
    window: tuple | None
    fraction: float
    flops_full: int
    flops_incremental: int
    reason: str = ""
    values_full: int = 0
    values_incremental: int = 0


@dataclass(frozen=True)
class Cost:
    """The geometry and predicted time of incremental occlusion for one target, patch and image
    shape.

    layers     : LayerCost of every layer call up to the target
    flop_ratio : FLOPs full / incremental per occluded copy
    work_full, work_incremental : work (FLOP-equivalents) of one occluded copy
    time_ratio : work_full / work_incremental, the speed-up of a map of many copies
    pays       : whether strategy="auto" runs incrementally on a map of many copies
                 (time_ratio >= AUTO_MIN_RATIO); ``pays_for`` counts a call's fixed costs
    """

    layers: tuple
    patch: tuple
    image_shape: tuple
    flop_ratio: float
    pays: bool
    work_full: float
    work_incremental: float
    time_ratio: float

    def speedup(self, copies: int, images: int = 1, batch_full: int = _graph.MAX_BATCH,
                batch_incremental: int = _graph.MAX_BATCH) -> float:
        """The predicted time of full re-inference over incremental inference for ``images``
        images of ``copies`` occluded copies each (the module docstring's model).

        >>> incremental_cost(model, 8, patch=4).speedup(copies=784)
        """
        calls_full = math.ceil(images * (copies + 1) / batch_full)
        calls_incremental = images * (1 + math.ceil(copies / batch_incremental))
        full = images * (copies + 1) * self.work_full + calls_full * CALL_COST
        incremental = images * (self.work_full + copies * self.work_incremental) + \
            calls_incremental * (CALL_COST + len(self.layers) * LAYER_COST)
        return full / incremental

    def pays_for(self, copies: int, images: int = 1, batch_full: int = _graph.MAX_BATCH,
                 batch_incremental: int = _graph.MAX_BATCH) -> bool:
        """Whether strategy="auto" runs incrementally for such a call: its ``speedup`` is at
        least ``AUTO_MIN_RATIO``."""
        return self.speedup(copies, images, batch_full, batch_incremental) >= AUTO_MIN_RATIO

    def __str__(self) -> str:
        rows = [f"{'layer':<28} {'output':>14} {'recomputed':>12} {'fraction':>8} "
                f"{'MFLOPs full':>11} {'incremental':>11}"]
        for c in self.layers:
            window = "x".join(map(str, c.window)) if c.window else "all"
            rows.append(f"{c.layer[:28]:<28} {'x'.join(map(str, c.shape)):>14} {window:>12} "
                        f"{c.fraction:>8.3f} {c.flops_full / 1e6:>11.2f} "
                        f"{c.flops_incremental / 1e6:>11.2f}")
        first = next((c for c in self.layers if c.kind == "full"), None)
        rows.append(f"patch {self.patch[0]}x{self.patch[1]} on {self.image_shape}: predicted "
                    f"FLOP ratio {self.flop_ratio:.2f}, time ratio {self.time_ratio:.2f} "
                    f"({'incremental pays' if self.pays else 'full re-inference is used'})")
        if first is not None:
            rows.append(f"whole tensors from {first.layer!r} on: {first.reason}")
        return "\n".join(rows)


def _size(plan: Plan, t, spatial=None) -> int:
    """Values of tensor t for one copy, or of a region of it (h, w) when ``spatial`` is given."""
    shape = plan.fields[t].shape
    return math.prod(n or 1 for n in shape) if spatial is None else \
        math.prod(spatial) * shape[-1]


def _values_read(plan: Plan, step) -> int:
    """Values one occluded copy reads for ``step``, incrementally: each input's region (its
    window where it is the same, else gathered with the window pasted in) or whole tensor."""
    out, total = step.call.outputs[0], 0
    for t in step.inputs:
        if t not in plan.lengths:
            total += _size(plan, t)                                  # a whole tensor
            continue
        window = _size(plan, t, plan.lengths[t])
        if step.kind == "window":
            total += 2 * _size(plan, t, plan.region(step)) + window
        elif step.kind == "full":
            total += 2 * _size(plan, t) + window                     # pasted into the clean one
        else:
            same = plan.same_window(t, out)
            total += window if same else 2 * _size(plan, t, plan.lengths[out]) + window
    return total


def cost(plan: Plan) -> Cost:
    """The Cost of ``plan``: per layer call, the values recomputed times ``flops_per_value``,
    and the values read and written."""
    layers = []
    for step in plan.steps:
        out = step.call.outputs[0]
        shape = tuple(plan.fields[out].shape)
        full = _size(plan, out)
        window = plan.lengths.get(out)
        part = full if window is None else _size(plan, out, window)
        per_value = flops_per_value(step.call.layer)
        moved = _values_read(plan, step) + part
        if out == plan.target and window is not None:
            moved += 2 * full + part                          # the target pasted whole
        layers.append(LayerCost(step.call.name, shape, step.kind, window, part / full,
                                per_value * full, per_value * part, step.reason,
                                full + sum(_size(plan, t) for t in step.inputs), moved))
    flops_full = sum(c.flops_full for c in layers)
    work_full = flops_full + VALUE_COST * (sum(c.values_full for c in layers) +
                                           math.prod(plan.image_shape))   # the copy painted
    flops = sum(c.flops_incremental for c in layers)
    work = max(1, flops + VALUE_COST * sum(c.values_incremental for c in layers))
    ratio = work_full / work
    return Cost(tuple(layers), plan.patch, plan.image_shape, flops_full / max(1, flops),
                ratio >= AUTO_MIN_RATIO, work_full, work, ratio)
