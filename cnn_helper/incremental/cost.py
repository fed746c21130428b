"""What incremental occlusion saves: per layer, the fraction of its output recomputed and the
floating-point operations (FLOPs) of one occluded copy, full re-inference vs incremental."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import _layers
from .plan import Plan

AUTO_MIN_RATIO = 1.5
"""strategy="auto" runs incrementally when the predicted FLOP ratio full / incremental is at
least this (the gathers and pastes that a window costs are not FLOPs; see benchmarks/)."""


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
    full), the fraction of its output recomputed, and the FLOPs of one occluded copy, full
    re-inference and incremental."""

    layer: str
    shape: tuple
    kind: str
    window: tuple | None
    fraction: float
    flops_full: int
    flops_incremental: int
    reason: str = ""


@dataclass(frozen=True)
class Cost:
    """The geometry of incremental occlusion for one target, patch and image shape.

    layers     : LayerCost of every layer call up to the target
    flop_ratio : predicted speed-up, FLOPs full / incremental per occluded copy
    pays       : whether strategy="auto" runs incrementally (flop_ratio >= AUTO_MIN_RATIO)
    """

    layers: tuple
    patch: tuple
    image_shape: tuple
    flop_ratio: float
    pays: bool

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
                    f"FLOP ratio full / incremental {self.flop_ratio:.2f} "
                    f"({'incremental pays' if self.pays else 'full re-inference is used'})")
        if first is not None:
            rows.append(f"whole tensors from {first.layer!r} on: {first.reason}")
        return "\n".join(rows)


def cost(plan: Plan) -> Cost:
    """The Cost of ``plan``: per layer call, the values recomputed times ``flops_per_value``."""
    layers = []
    for step in plan.steps:
        out = step.call.outputs[0]
        shape = tuple(plan.fields[out].shape)
        full = math.prod(n or 1 for n in shape)
        window = plan.lengths.get(out)
        part = full if window is None else math.prod(window) * shape[-1]
        per_value = flops_per_value(step.call.layer)
        layers.append(LayerCost(step.call.name, shape, step.kind, window, part / full,
                                per_value * full, per_value * part, step.reason))
    total_full = sum(c.flops_full for c in layers)
    ratio = total_full / max(1, sum(c.flops_incremental for c in layers))
    return Cost(tuple(layers), plan.patch, plan.image_shape, ratio, ratio >= AUTO_MIN_RATIO)
