"""The batch policy: how many images one call may take ("auto"), and a function run over chunks
of a data set."""
from __future__ import annotations

import numpy as np

from .. import _checks
from .cache import memo
from .traversal import program

MEMORY_PER_CALL = 2**30      # bytes of layer outputs one compiled call may hold (batch_size "auto")
MAX_BATCH = 1024
FREE_SIZE_BATCH = 32         # "auto" for a model whose layer sizes are unknown before it runs


def _values_per_image(model):
    """How many numbers the tensors of ``model``'s program hold for one image, counted once per
    call, input and nested model; None when unknown (a free size, a block)."""
    total = 0
    for call in program(model).calls:
        if call.kind == "block" or None in call.shape:
            return None
        total += int(np.prod(call.shape))
    return total


def batch_size(model, value) -> int:
    """``value`` (checked), or for "auto" the images per call whose layer outputs fit in
    ``MEMORY_PER_CALL`` bytes (float32), between 1 and ``MAX_BATCH``: back propagation keeps about
    that much per image, so this bounds the memory of every method. ``FREE_SIZE_BATCH`` when the
    sizes are unknown (a free input size, a subclassed model that cannot be traced).

    >>> batch_size(model, "auto"), batch_size(model, 64)          # the course CNN
    (1024, 64)
    """
    value = _checks.batch_size(value)
    if value != "auto":
        return value

    def choose():
        try:
            per_image = _values_per_image(model)
        except TypeError:                       # a subclassed model: no graph to read
            per_image = None
        if per_image is None:
            return FREE_SIZE_BATCH
        return int(min(MAX_BATCH, max(1, MEMORY_PER_CALL // (4 * per_image))))

    return memo(model, ("auto batch size",), choose)


def run_batched(fn, batch_size: int, *arrays) -> list:
    """``fn`` over chunks of ``batch_size`` examples of ``arrays`` (sliced alike); its outputs (a
    list of arrays per chunk) concatenated. An empty data set still gives outputs of length 0.

    >>> logits, = run_batched(lambda x: [model(x)], 32, images)
    """
    slices = list(_checks.batches(len(arrays[0]), batch_size)) or [slice(0, 0)]
    chunks = [[np.asarray(out) for out in fn(*(a[s] for a in arrays))] for s in slices]
    return [np.concatenate(parts) for parts in zip(*chunks)]
