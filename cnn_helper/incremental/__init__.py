r"""Exact incremental occlusion: recompute each layer only where the patch can change it.

An occluding patch changes only part of each layer's output: its *projective field*, the
locations whose receptive field meets the patch (Krypton: Nakandala, Kumar & Papakonstantinou,
"Incremental and Approximate Inference for Faster Occlusion-based Deep CNN Explanations",
SIGMOD 2019). Per spatial axis, location i of a layer whose receptive field
(:mod:`.receptive_field`) has size n and jump j sees the input pixels
:math:`[L + i j,\ L + i j + n)` (L: where location 0's box starts), so a patch covering the input
rows :math:`[a, b)` can change it only when

.. math::  L + i j < b \quad\text{and}\quad L + i j + n > a
           \iff \left\lfloor \tfrac{a - L - n}{j} \right\rfloor + 1 \le i \le
           \left\lceil \tfrac{b - L}{j} \right\rceil - 1 .

Each tensor of the graph gets a *window*: one size for all occluded copies (the largest such
interval over every patch position), placed per copy over its interval. Layer by layer, a
window of the output is computed from the matching region of the input: the un-occluded
image's activations (computed once per image), with the input's own recomputed window pasted
in. A convolution or pooling reads the region its window needs, padded as the layer pads, and
runs with padding "valid"; elementwise layers and merges (Add, Concatenate, ...) run on the
windows. At the first layer whose output depends on every location (Flatten, global pooling,
a squeeze-and-excitation gate) or that no rule covers, the windows are pasted into full tensors
and the rest of the network runs as usual. Outside its window a tensor equals the un-occluded
one, so the result is the full re-inference's, up to float rounding.

Example
-------
``occlusion.sensitivity_map`` runs it; ``occlusion.incremental_cost`` says what it saves:

>>> print(occlusion.incremental_cost(model, Feature("logits", 8), patch=4))   # the course CNN
layer                                output   recomputed fraction MFLOPs full incremental
conv1                              28x28x16          6x6    0.046        0.23        0.01
...
patch 4x4 on (28, 28, 1): predicted FLOP ratio 2.05, time ratio 1.87 (incremental pays)

The time ratio also counts the values each copy reads and writes (gathers and pastes included);
``speedup`` adds the fixed costs of a call, which "auto" weighs (one image, stride 1: 784 copies
in one compiled step, 1.66; stride 4: 49 copies, 0.74, so "auto" runs those in full):

>>> occlusion.incremental_cost(model, 8, patch=4).speedup(copies=784)
1.66...

The same by hand, from the plan (the target layer by its "outer/inner" name):

>>> plan = incremental.make_plan(model, "logits", patch=(4, 4), image_shape=(28, 28, 1))
>>> incremental.cost(plan).flop_ratio
2.05...
"""
from __future__ import annotations

from .cost import AUTO_MIN_RATIO, CALL_COST, LAYER_COST, VALUE_COST, Cost, LayerCost, cost
from .plan import Plan, make_plan
from .run import auto_batch_size, occluded_values, step_batch_size

__all__ = ["Plan", "make_plan", "occluded_values", "auto_batch_size", "step_batch_size", "cost",
           "Cost", "LayerCost", "AUTO_MIN_RATIO", "VALUE_COST", "CALL_COST", "LAYER_COST"]
