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
padding -c. Elementwise layers (activations, batch normalization, dropout, rescaling, a Dense
layer applied to a spatial map, per-channel scales such as ConvNeXt's LayerScale, ...) keep the
field. Merges (Add, Concatenate on channels, ``s + h`` written on tensors, ...) of branches with
the same jump take the union of their fields (the smallest box holding them). Flatten, Reshape,
global pooling and what follows them see the whole input: :func:`compute` marks them
(``whole_input`` says why) and :func:`field` / :func:`region` refuse them with a ValueError.

A gate (squeeze-and-excitation: a globally pooled 1x1 branch multiplied into the map) makes
every later location depend on the whole input, and that is what :func:`compute` says by
default; ``gates="local"`` gives instead the field of the local path, naming the gates it leaves
out (``ReceptiveField.gates``), and :func:`empirical_support` with ``gates="local"`` measures
that path, the gates held fixed. A layer no rule fits makes its field, and those of the layers
it feeds, unknown (``ReceptiveField.unknown`` says why, and how to declare it ``pointwise``);
the other layers are not affected.

The graph of a functional or Sequential model is walked call by call (ResNet's adds, Inception's
concatenations, operations such as ``s + h``), nested models are entered (their layers named
"outer/inner", as ``features.layer_names``: ``region(model, "base/block_3_expand_relu", idx)``).
Channels-last data only; a Conv1D model's sequences (L, C) and a Conv3D model's volumes
(D, H, W, C) too, with one (size, jump, start) per spatial axis (``region(seq_model, "c2", 3)``).

- :mod:`.rules`     : the table of per-layer rules
- :mod:`.walk`      : the walk over the graph: :func:`compute`, :func:`field`, :func:`region`
- :mod:`.charts`    : :func:`summary`, :func:`growth`, :func:`nested_regions`,
  :func:`nearest_location`
- :mod:`.empirical` : :func:`empirical_support`, the field measured by the gradient

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

from .charts import GrowthRow, NestedRegion, growth, nearest_location, nested_regions, summary
from .empirical import empirical_support
from .walk import ReceptiveField, compute, field, region

__all__ = ["ReceptiveField", "compute", "field", "region", "summary", "growth", "GrowthRow",
           "nested_regions", "NestedRegion", "nearest_location", "empirical_support"]
