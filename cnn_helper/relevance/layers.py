r"""The layers of the relevance clone: Keras layers whose backward pass carries relevance.

Each one computes the same forward pass as the layer it replaces; only its ``tf.custom_gradient``
changes, so that what flows backward from layer to layer is the relevance :math:`R` itself
(zennit's design: a rule is a hook that changes the gradient):

- ``RuleLayer``     : a linear layer (Dense, Conv, depthwise, separable) with its rule
  (:mod:`.rules`); a BatchNormalization after it is folded in (:mod:`.canonization`); its
  activation passes the relevance.
- ``ProportionalLayer`` : average pooling and Add: :math:`R_j = a_j R_k / \sum_{j'} a_{j'}`.
- ``PassLayer``     : activations, Rescaling, Normalization, a folded BatchNormalization: the
  relevance goes through unchanged.

Layers that only move or select values (Flatten, Reshape, padding, cropping, max pooling,
Concatenate, Dropout) keep their gradient: it routes each output's relevance to the input it
came from (max pooling: the winner takes all).
"""
from __future__ import annotations

import keras

from . import canonization, rules


def passed(a, y):
    """y (computed from a) whose backward pass hands the relevance of y to a unchanged."""
    import tensorflow as tf

    @tf.custom_gradient
    def identity_backward(a, y):
        return tf.identity(y), lambda g: (g, tf.zeros_like(y))

    return identity_backward(a, y)


def with_rule(found, linear, a, kernel, bias, bn=None):
    r"""``linear(a, kernel, bias)``, whose backward pass is the rule ``found`` (the relevance R
    of the output in, :math:`R_j` of a out), on the layer folded with BatchNormalization ``bn``
    when one follows it."""
    import tensorflow as tf

    rule_kernel, rule_bias = (kernel, bias) if bn is None else canonization.fold(kernel, bias, bn)
    scale, shift = (None, None) if bn is None else canonization.bn_scale_shift(bn)
    given = {k: v for k, v in dict(kernel=kernel, bias=bias, rule_kernel=rule_kernel,
                                   rule_bias=rule_bias, scale=scale, shift=shift).items()
             if v is not None}

    @tf.custom_gradient
    def propagate(a, *tensors):   # the weights as arguments: no variable is read inside
        p = dict.fromkeys(("kernel", "bias", "rule_kernel", "rule_bias", "scale", "shift"))
        p.update(zip(given, tensors))
        z = linear(a, p["kernel"], p["bias"])

        def backward(R):
            z_rule = z if bn is None else p["scale"] * z + p["shift"]  # = linear(a, W', b')
            return [rules.relevance(found, linear, a, p["rule_kernel"], p["rule_bias"], R,
                                    z_rule)] + [None] * len(tensors)

        return z, backward

    return propagate(a, *given.values())


def _tensor(variable):
    return None if variable is None else keras.ops.convert_to_tensor(variable)


class RuleLayer(keras.layers.Layer):
    """A linear layer (``inner``, rebuilt without its activation) whose backward pass applies
    ``rule``; ``activation`` after it passes relevance; ``bn``: the BatchNormalization folded
    into it (its weights stay the BatchNormalization layer's)."""

    def __init__(self, inner, activation, rule, bn=None):
        super().__init__(name=inner.name, dtype=inner.dtype_policy)
        self.inner, self.activation, self.rule = inner, activation, rule
        self._folded = (lambda: bn) if bn is not None else None   # untracked: not our weights

    def build(self, input_shape):
        self.inner.build(input_shape)
        bn = self._folded() if self._folded else None
        if bn is not None and not bn.built:
            bn.build(self.inner.compute_output_shape(input_shape))

    def compute_output_shape(self, input_shape):
        return self.inner.compute_output_shape(input_shape)

    def call(self, a, mask=None):
        maps = canonization.stages(self.inner)
        for i, (linear, kernel, bias) in enumerate(maps):
            bn = self._folded() if self._folded and i == len(maps) - 1 else None
            a = with_rule(self.rule, linear, a, _tensor(kernel), _tensor(bias), bn)
        return a if self.activation is None else passed(a, self.activation(a))


class ProportionalLayer(keras.layers.Layer):
    r"""Average pooling (of any rank, global too) or Add (``inner``): the relevance of each
    output shared in proportion to each input's part, :math:`R_j = a_j R_k / \sum_{j'}
    a_{j'}` (zennit's ``Norm`` rule)."""

    def __init__(self, inner):
        super().__init__(name=inner.name, dtype=inner.dtype_policy)
        self.inner = inner

    def build(self, input_shape):
        if not self.inner.built:
            self.inner.build(input_shape)

    def compute_output_shape(self, input_shape):
        return self.inner.compute_output_shape(input_shape)

    def call(self, inputs, mask=None):
        if isinstance(inputs, (list, tuple)):
            return proportional_sum(list(inputs))
        rule = rules.Rule("norm")
        return with_rule(rule, lambda a, w, b: self.inner(a), inputs, None, None)


def proportional_sum(inputs):
    r""":math:`\sum_i a_i`, backward :math:`R_i = a_i R / \sum_{i'} a_{i'}` (stabilized)."""
    import tensorflow as tf

    @tf.custom_gradient
    def add(*inputs):
        z = tf.add_n(list(inputs))
        return z, lambda R: [a * R / rules.stabilize(z) for a in inputs]

    return add(*inputs)


class SumLayer(keras.layers.Layer):
    """The node ``h + r`` of a functional graph (a keras.ops Add) as ``proportional_sum``."""

    def compute_output_shape(self, a_shape, b_shape):
        return a_shape

    def call(self, a, b):
        return proportional_sum([a, b])


class PassLayer(keras.layers.Layer):
    """``inner`` (an activation, Rescaling, Normalization, a folded BatchNormalization or a
    keras.ops activation node) as it is forward, the relevance passed unchanged backward."""

    def __init__(self, inner):
        super().__init__(name=inner.name, dtype=getattr(inner, "dtype_policy", None))
        self.inner = inner

    def build(self, input_shape):
        if getattr(self.inner, "built", True) is False:
            self.inner.build(input_shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, a, mask=None):
        return passed(a, self.inner(a, training=False) if _takes_training(self.inner)
                      else self.inner(a))


def _takes_training(layer) -> bool:
    return type(layer).__name__ == "BatchNormalization"
