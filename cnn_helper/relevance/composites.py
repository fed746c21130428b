r"""Composites: which rule each linear layer gets, by its position and kind.

- ``"epsilon_plus"`` (zennit's EpsilonPlus): the alpha1-beta0 (z+) rule for every convolution,
  epsilon for every Dense layer.
- ``"epsilon_plus_flat"`` (zennit's EpsilonPlusFlat): the same with the flat rule on the first
  layer.
- ``"epsilon_gamma_box"`` (zennit's EpsilonGammaBox): :math:`z^\mathcal{B}` on the first layer,
  gamma on the other convolutions, epsilon on the Dense layers.
- ``"montavon"`` (Montavon et al. 2019, their recommendation for VGG-like nets):
  :math:`z^\mathcal{B}` on the first layer, gamma on the lower half of the other convolutions,
  epsilon on the upper half, LRP-0 on the Dense layers at the top.
- a dict ``{layer name, layer class or class name: rule}`` (a rule's name or a ``Rule``): your
  own mapping; the layers it does not name get ``rule``.

The :math:`z^\mathcal{B}` bounds are the input's range (``bounds``: "auto" reads it from the
model and the images, :func:`cnn_helper._reference.value_range`; or (low, high)), carried through
the Rescaling and Normalization layers in front of the first layer.

>>> assign(model, "epsilon", "montavon", x=x_test[:4])["conv1"].name
'zb'
"""
from __future__ import annotations

import numpy as np

from .. import _graph, _reference
from . import canonization
from .rules import EPSILON, GAMMA, Rule, rule

COMPOSITES = ("epsilon_plus", "epsilon_plus_flat", "epsilon_gamma_box", "montavon")


def linear_layers(model) -> list:
    """(path name, layer) of every linear layer, nested models entered, in the model's order."""
    return [(name, path[-1]) for name, path in _graph.walk(model)
            if canonization.is_linear(path[-1])]


def first_layer_bounds(model, bounds="auto", x=None) -> tuple:
    r"""(low, high) per channel at the first linear layer's input: the input's range
    (``_reference.value_range``) through the Rescaling / Normalization layers in front of it."""
    low, high = (np.array(v, np.float64) for v in _reference.value_range(
        model, bounds, _graph.input_shape(model)[-1], x))
    for _, path in _graph.walk_operations(model):
        layer = path[-1]
        if canonization.is_linear(layer):
            break
        kind = type(layer).__name__
        if kind == "Rescaling":
            low, high = (v * np.asarray(layer.scale) + np.asarray(layer.offset)
                         for v in (low, high))
        elif kind == "Normalization":
            mean = np.asarray(layer.mean).reshape(-1)
            std = np.sqrt(np.asarray(layer.variance).reshape(-1))
            low, high = ((v - mean) / std for v in (low, high))
        low, high = np.minimum(low, high), np.maximum(low, high)
    return tuple(low.tolist()), tuple(high.tolist())


def _by_composite(name: str, layers: list, chosen: dict) -> dict:
    """{path name: Rule} of composite ``name`` (``chosen``: the rules it uses, by name)."""
    convs = [n for n, layer in layers if canonization.linear_kind(layer) != "Dense"]
    lower = set(convs[1:1 + (len(convs) - 1) // 2])
    found = {}
    for i, (n, layer) in enumerate(layers):
        dense = canonization.linear_kind(layer) == "Dense"
        if name.startswith("epsilon_plus"):
            found[n] = chosen["epsilon"] if dense else chosen["alpha_beta"]
        elif name == "epsilon_gamma_box":
            found[n] = chosen["epsilon"] if dense else chosen["gamma"]
        else:
            found[n] = chosen["zero"] if dense else (
                chosen["gamma"] if n in lower else chosen["epsilon"])
        if i == 0 and name != "epsilon_plus":
            found[n] = chosen["flat"] if name == "epsilon_plus_flat" else chosen["zb"]
    return found


def _mapped(model, layers: list, mapping: dict, default: Rule, chosen) -> dict:
    """{path name: Rule} of a user's mapping {name | class | class name: rule}."""
    found = {n: default for n, _ in layers}
    for key, value in mapping.items():
        hits = [n for n, layer in layers if key in (n, n.split("/")[-1], type(layer).__name__)
                or (isinstance(key, type) and isinstance(layer, key))]
        if not hits:
            raise ValueError(f"composite key {key!r} names no linear layer of model "
                             f"{model.name!r}: give a layer name, a layer class or its name, "
                             f"among {[n for n, _ in layers]}")
        for n in hits:
            found[n] = chosen(value)
    return found


def assign(model, default="epsilon", composite=None, epsilon: float = EPSILON,
           gamma: float = GAMMA, bounds="auto", x=None) -> dict:
    """{path name of each linear layer: its Rule}: ``default`` everywhere, or by ``composite``.

    >>> assign(model, "epsilon", "epsilon_plus")["conv1"]     # Rule('alpha_beta', ...)"""
    layers = linear_layers(model)
    if not layers:
        raise ValueError(f"model {model.name!r} has no linear layer (Dense, Conv, depthwise or "
                         "separable convolution) for an LRP rule")

    def chosen(value) -> Rule:
        found = rule(value, epsilon, gamma)
        if found.name == "zb" and found.low is None:
            low, high = first_layer_bounds(model, bounds, x)
            found = Rule("zb", low=low, high=high)
        return found

    default_rule = chosen(default)
    if composite is None:
        assigned = {n: default_rule for n, _ in layers}
    elif isinstance(composite, dict):
        assigned = _mapped(model, layers, composite, default_rule, chosen)
    elif composite in COMPOSITES:
        assigned = _by_composite(composite, layers, {r: chosen(r) for r in
                                                     ("zero", "epsilon", "gamma", "alpha_beta",
                                                      "flat", "zb")})
    else:
        raise ValueError(f"composite={composite!r}: use one of {COMPOSITES}, a dict "
                         "{layer name or class: rule}, or None (rule everywhere)")
    first = layers[0][0]
    misplaced = [n for n, r in assigned.items() if r.name == "zb" and n != first]
    if misplaced:
        raise ValueError(f"the zb rule is bounded by the input's range, so it applies to the "
                         f"first layer ({first!r}) only, not to {misplaced}: use a composite "
                         "(e.g. 'montavon') or give zb in a dict for the first layer")
    return assigned
