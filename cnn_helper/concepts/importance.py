r"""How much a target depends on each of CRAFT's concepts: Sobol total indices (Fel et al.,
NeurIPS 2021 and CVPR 2023).

For one image, CRAFT writes the activations of layer l at every location idx as a mix of the
concepts, :math:`\y_{(l),idx} \approx u_{idx} W` (:meth:`Craft.transform`). A mask
:math:`m \in [0, 1]^c` keeps a fraction :math:`m_i` of each concept everywhere, and the rest of
the network (the layers after l) reads the target from the masked activations:

.. math::  f(m) = s\big(\, (u \odot m) W \,\big)

The importance of concept i is its Sobol total index :math:`S_{T_i}` for f, with the masks
uniform on [0, 1]^c (:mod:`.sobol`: quasi-Monte Carlo designs, Jansen's estimator): the share of
the target's variance that concept i accounts for, alone or with others. It is computed for each
image and averaged over the images. The layers after l must read l's output alone (a model cut
there in two, as CRAFT's "input to latent" and "latent to logit"): a skip connection across l
is refused with an error.

Example
-------
>>> ranked = importance(bank, x_eights, Feature("logits", 8))
>>> ranked.totals                          # (c,) mean total index of each concept
>>> ranked.order                           # the concepts, most important first
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks, _graph, _image_optim, features
from .._checks import BATCH_SIZE
from . import sobol


@dataclass(frozen=True)
class ConceptImportance:
    """Sobol total indices of a Craft bank's concepts for a target.

    target    : the target, as text;  layer : the bank's layer
    totals    : (c,) the mean over the images of each concept's total index
    per_image : (N, c) the total indices of each image
    order     : (c,) the concepts by decreasing mean total index
    n_designs : the Sobol designs per image (n (c + 2) masked copies);  seed : their seed
    """

    target: str
    layer: str
    totals: np.ndarray
    per_image: np.ndarray
    order: np.ndarray
    n_designs: int
    seed: int


def _rest_of_model(model, layer: str, target_layer: str):
    """The function y_(l) batch -> the output of ``target_layer``: the model's calls after
    ``layer`` run on the layer's output (keras), or a ValueError when a call after it reads a
    tensor from before it (a skip connection) or the target comes first."""
    calls = _graph.program(model).calls
    start = next(i for i, call in enumerate(calls) if call.name == layer and call.computes)
    known = set(calls[start].outputs)
    for call in calls[start + 1:]:
        if call.computes:
            bypass = set(call.inputs) - known
            if bypass:
                raise ValueError(f"layer {call.name!r} reads a tensor computed before layer "
                                 f"{layer!r} (a skip connection): the model cannot be cut at "
                                 f"{layer!r}; choose a layer that every later layer depends on "
                                 "through it alone")
            known |= set(call.outputs)
        if call.name == target_layer:
            break
    else:
        raise ValueError(f"the target's layer {target_layer!r} does not come after layer "
                         f"{layer!r}: choose a layer before the target")

    def rest(a):
        values = {calls[start].outputs[0]: a}
        for call in calls[start + 1:]:
            if call.computes:
                values.update(zip(call.outputs, call.apply(values)))
            if call.name == target_layer:
                return values[call.outputs[0]]

    return rest


def head_step(model, layer: str, target: features.Target):
    """The compiled step (activations (B, *spatial, K), locations (B, n_spatial)) -> the target
    (B,) read from the rest of the model; one per (layer, target layer, pool)."""
    from keras import ops

    shape = tuple(_graph.output_shape(model, layer))
    n_spatial = len(_graph.output_shape(model, target.layer)) - 1

    def build():
        rest = _rest_of_model(model, layer, target.layer)

        def values(a, channel, locations):
            return features.read(ops.cast(rest(a), "float32"), channel[0], target.pool,
                                 locations if target.located else None)[0]

        return _image_optim.compiled_for_batches(values, (shape, "float32"), ((), "int32"),
                                                 ((n_spatial,), "int64"))

    return _graph.memo(model, ("craft head", layer, target.layer, target.pool, target.located),
                       build)


def importance(craft, x, target, n_designs: int = 32, seed: int = 0,
               batch_size=BATCH_SIZE) -> ConceptImportance:
    r"""The Sobol total index of each concept of ``craft`` (a ``Craft``) for ``target`` (an int
    or a ``Feature`` after the bank's layer) on images x (module docstring), averaged over x.

    n_designs  : Sobol designs per image: n_designs (c + 2) masked copies of its activations
    seed       : the designs' seed (the same masks for every image)
    batch_size : copies per compiled call; never changes the result

    >>> ranked = importance(bank, x_eights[:50], Feature("logits", 8), n_designs=32)
    """
    model, c = craft.model, craft.n_concepts
    n_designs, seed = _checks.positive_int(n_designs, "n_designs"), _checks.seed(seed)
    x, _ = _graph.check_images(model, x)
    resolved = features.resolve(model, x, target)
    step = head_step(model, craft.layer, resolved)
    u = craft.transform(x, batch_size)                                     # (N, h, w, c)
    masks = sobol.masks(*sobol.design(c, n_designs, seed)).astype(np.float32)   # (m, c)
    n_spatial = len(_graph.output_shape(model, resolved.layer)) - 1
    batch = _graph.batch_size(model, batch_size)
    per_image = []
    for i in range(len(x)):
        def run(rows, image=i):
            a = np.einsum("...c,mc,ck->m...k", u[image], rows, craft.bank, optimize=True)
            where = np.zeros((len(rows), n_spatial), np.int64) if not resolved.located \
                else np.repeat(resolved.locations[image:image + 1], len(rows), axis=0)
            return [step(a.astype(np.float32), np.full(len(rows), resolved.channel, np.int32),
                         where)]

        values, = _graph.run_batched(run, batch, masks)
        per_image.append(sobol.jansen_total(values, n_designs, c))
    per_image = np.array(per_image)
    totals = per_image.mean(axis=0)
    return ConceptImportance(str(resolved.feature), craft.layer, totals, per_image,
                             np.argsort(-totals, kind="stable"), n_designs, seed)

