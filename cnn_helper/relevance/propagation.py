r"""Layer-wise relevance propagation: the relevance of the target carried back to the pixels,
layer by layer, by each layer's rule (Bach et al. 2015; Montavon et al. 2019).

It starts at the target's layer with :math:`R_{(l)} = \y_{(l)} \odot \partial s / \partial
\y_{(l)}` (for a class, the output :math:`\y_{(L),k}` itself at k, 0 elsewhere) and at each layer
hands the relevance of the outputs to the inputs: a linear layer by its rule (:mod:`.rules`,
chosen by :mod:`.composites`), BatchNormalization folded into the layer before it
(:mod:`.canonization`), average pooling and Add in proportion to each input's part, max pooling
to the winner, activations, Flatten, Reshape, padding, Dropout and Concatenate as they are. The
result, :math:`R_{(0)}`, has the input's shape; with zero biases and :math:`\epsilon \to 0` it
sums to s (conservation).

It is one gradient step (:mod:`cnn_helper._gradient`) on a clone of the model whose layers carry
the relevance in their backward pass (:mod:`.layers`; one clone per assignment of rules, made
once). The user's model is not changed. Layers it cannot propagate through are refused by name.
"""
from __future__ import annotations

import dataclasses
import hashlib

from .. import _checks, _gradient, _graph, _layers, _override, features
from . import canonization, composites, layers
from .rules import EPSILON, GAMMA

KEPT = ("InputLayer", "Flatten", "Reshape", "Permute", "Dropout", "SpatialDropout1D",
        "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
        "AlphaDropout", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D",
        "Cropping2D", "Cropping3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "Concatenate",
        "UpSampling1D", "UpSampling2D", "UpSampling3D", "Identity", "ActivityRegularization",
        "Reshape", "Transpose")
"""Layers (and keras.ops nodes) whose gradient already routes relevance where it came from."""
PASSED = ("ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Activation", "Rescaling",
          "Normalization")
"""Layers whose relevance goes through unchanged (element-wise, one input to one output; the
keras.ops activations such as ``keras.ops.relu(h)`` too)."""
PROPORTIONAL = ("AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
                "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                "Add")
"""Sums: relevance shared in proportion to each input's part."""


def _passes(layer) -> bool:
    """Whether the relevance goes through ``layer`` unchanged (``PASSED``)."""
    if _layers.is_operation(layer):
        return _layers.is_activation(layer)
    return type(layer).__name__ in PASSED


def unsupported_layers(model, folded=None) -> list:
    """'name (Class)' of every layer LRP cannot propagate through (nested models entered).

    >>> unsupported_layers(model)                 # [] for the course CNN"""
    import keras

    folded = canonization.foldable_batch_norms(model) if folded is None else folded
    return [f"{name} ({type(path[-1]).__name__})"
            for name, path in _graph.walk_operations(model)
            if not isinstance(path[-1], keras.Model) and not canonization.is_linear(path[-1])
            and type(path[-1]).__name__ not in KEPT + PROPORTIONAL and not _passes(path[-1])
            and name not in folded]


def _check_supported(model, folded: dict):
    unsupported = unsupported_layers(model, folded)
    if unsupported:
        raise ValueError(
            f"LRP cannot propagate relevance through layers {unsupported} of model "
            f"{model.name!r}: it has rules for {canonization.LINEAR}, average and max pooling, "
            "Add, Concatenate, element-wise activations, Rescaling, BatchNormalization right "
            "after a linear layer without activation, and layers that only move values "
            f"({', '.join(KEPT[:6])}, ...). Use a gradient method for this model")


def _replacement(layer, config, assigned: dict, folded_into: dict, made: dict):
    """The clone's layer for ``layer`` (None: rebuilt as it is)."""
    import keras

    kind = type(layer).__name__
    if id(layer) in made:                                 # a BatchNormalization folded in
        return made[id(layer)]
    if canonization.is_linear(layer):
        activation = keras.activations.get(config.get("activation", "linear"))
        config["activation"] = "linear"
        inner = layer.__class__.from_config(config)
        bn = folded_into.get(id(layer))
        bn_copy = None
        if bn is not None:
            bn_copy = bn.__class__.from_config(bn.get_config())
            made[id(bn)] = layers.PassLayer(bn_copy)
        linear = activation is keras.activations.linear
        return layers.RuleLayer(inner, None if linear else activation, assigned[id(layer)],
                                bn_copy)
    if _layers.is_operation(layer):
        if kind == "Add":
            return layers.SumLayer(name=layer.name)
        return layers.PassLayer(layer) if _passes(layer) else None
    if kind in PROPORTIONAL:
        return layers.ProportionalLayer(layer.__class__.from_config(config))
    if kind in PASSED:
        return layers.PassLayer(layer.__class__.from_config(config))
    return None


def policy(model, assigned: dict) -> _override.Policy:
    """The clone policy for ``assigned`` ({path name: Rule} of the linear layers)."""
    folded = canonization.foldable_batch_norms(model)
    _check_supported(model, folded)
    by_id = {id(path[-1]): assigned[name] for name, path in _graph.walk(model)
             if name in assigned}
    folded_into = {id(linear): path[-1] for name, path in _graph.walk(model)
                   for bn_name, linear in folded.items() if name == bn_name}
    made = {}
    rules_text = ", ".join(f"{n}={r}" for n, r in sorted(assigned.items()))
    name = "lrp " + hashlib.blake2b(rules_text.encode(), digest_size=8).hexdigest()
    return _override.Policy(name, lambda layer, config: _replacement(
        layer, config, by_id, folded_into, made))


@dataclasses.dataclass(frozen=True)
class _SeededTarget(features.Target):
    r"""A resolved target whose backward pass starts with the relevance :math:`R_{(l)} =
    \y_{(l)} \odot \partial s / \partial \y_{(l)}` instead of :math:`\partial s / \partial
    \y_{(l)}`."""

    def read(self, y, channel, locations=None):
        return super().read(_seed(y), channel, locations)


def _seed(y):
    import tensorflow as tf

    @tf.custom_gradient
    def times_output(y):
        return tf.identity(y), lambda g: g * y

    return times_output(y)


def lrp(model, x, target, rule="epsilon", composite=None, epsilon: float = EPSILON,
        gamma: float = GAMMA, bounds="auto", keep_location: bool = False,
        batch_size=_checks.BATCH_SIZE, sign: str = "signed"):
    r"""Layer-wise relevance propagation of ``target`` (an int class or a ``Feature``) to the
    pixels of x: (N, H, W, C) maps like x, summing to about s (exactly, by LRP-0 with zero
    biases).

    ``rule``: one of ``rules.RULES`` ("zero", "epsilon", "gamma", "alpha_beta", "flat",
    "w_square"; "zb" only for the first layer) or a ``Rule``, for every linear layer;
    ``composite``: a name of ``composites.COMPOSITES`` ("epsilon_plus", "montavon", ...) or a
    dict {layer name or class: rule}. ``epsilon`` and ``gamma``: the parameters of the named
    rules; ``bounds``: the :math:`z^\mathcal{B}` rule's input range ("auto" or (low, high)).

    >>> R = lrp(model, x_test[:4], Feature("logits", 8), rule="epsilon", epsilon=1e-6)
    >>> R = lrp(model, x_test[:4], 8, composite="montavon")
    """
    req = _gradient.request(model, x, target, batch_size, sign, "gradient", keep_location)
    assigned = composites.assign(model, rule, composite, epsilon, gamma, bounds, req.x)
    found = policy(model, assigned)
    t = req.target
    relevance_req = dataclasses.replace(  # internal contract: a Request on our clone
        req, net=_override.clone_with(model, found), rule=found.name,
        target=_SeededTarget(t.feature, t.layer, t.locations))
    return req.finish(_gradient.gradients(model, relevance_req, relevance_req.x))


def lrp_epsilon_plus(model, x, target, epsilon: float = EPSILON, **options):
    """:func:`lrp` with zennit's EpsilonPlus composite (z+ for convolutions, epsilon for Dense
    layers): the registry's "lrp_epsilon_plus".

    >>> R = lrp_epsilon_plus(model, x_test[:4], 8)"""
    return lrp(model, x, target, composite="epsilon_plus", epsilon=epsilon, **options)


def lrp_montavon(model, x, target, epsilon: float = EPSILON, gamma: float = GAMMA, **options):
    """:func:`lrp` with Montavon et al.'s composite (zb first, gamma low, epsilon middle, LRP-0
    top): the registry's "lrp_montavon".

    >>> R = lrp_montavon(model, x_test[:4], 8)"""
    return lrp(model, x, target, composite="montavon", epsilon=epsilon, gamma=gamma, **options)
