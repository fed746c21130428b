r"""The LRP rules: how a linear layer :math:`z_k = \sum_j a_j w_{jk} + b_k` shares the relevance
:math:`R_k` of its outputs among its inputs :math:`a_j` (Montavon et al. 2019, "Layer-wise
relevance propagation: an overview"; the definitions are zennit's, so that both agree):

- ``"zero"`` (LRP-0): :math:`R_j = \sum_k \frac{a_j w_{jk}}{z_k} R_k`, the share of each input
  in :math:`z_k`. On a ReLU network it equals gradient x input.
- ``"epsilon"``: :math:`R_j = \sum_k \frac{a_j w_{jk}}{z_k + \epsilon\,\mathrm{sign}(z_k)}
  R_k` (sign(0) = 1): weak or contradictory contributions absorb relevance, the map is sparser.
- ``"gamma"``: :math:`R_j = \sum_k \frac{a_j (w_{jk} + \gamma w_{jk}^+)}{\sum_{j'} a_{j'}
  (w_{j'k} + \gamma w_{j'k}^+)} R_k` for :math:`a \ge 0` (positive contributions favoured); for
  signed inputs zennit's generalization: the parts that agree with the sign of :math:`z_k` get
  the :math:`\gamma` bonus.
- ``"alpha_beta"``: :math:`R_j = \sum_k \Big(\alpha \frac{(a_j w_{jk})^+}{\sum_{j'}
  (a_{j'} w_{j'k})^+} - \beta \frac{(a_j w_{jk})^-}{\sum_{j'} (a_{j'} w_{j'k})^-}\Big) R_k`
  with :math:`\alpha - \beta = 1`; alpha=1, beta=0 (the z+ rule) gives :math:`R_j \ge 0`.
- ``"zb"`` (:math:`z^\mathcal{B}`, the first layer, inputs in a box :math:`l \le x \le h`):
  :math:`R_j = \sum_k \frac{x_j w_{jk} - l_j w_{jk}^+ - h_j w_{jk}^-}{\sum_{j'} x_{j'} w_{j'k}
  - l_{j'} w_{j'k}^+ - h_{j'} w_{j'k}^-} R_k`.
- ``"flat"``: :math:`R_j = \sum_k \frac{1}{\sum_{j'} 1} R_k`, every input of the window alike.
- ``"w_square"``: :math:`R_j = \sum_k \frac{w_{jk}^2}{\sum_{j'} w_{j'k}^2 + b_k^2} R_k`.

Two more are not chosen by the user: ``"norm"`` (average pooling and Add: the LRP-0 share
:math:`R_j = a_j R_k / \sum_{j'} a_{j'}`, no weights) and "pass" (activations, Rescaling,
folded BatchNormalization: the relevance goes through unchanged).

Every denominator is stabilized as zennit does: :math:`z + \epsilon\,\mathrm{sign}(z)` with
``STABILIZER`` = 1e-6 (the epsilon rule's own epsilon instead), except LRP-0, whose 0/0 is 0.
Each rule is a sum of "gradient x input" terms: a product :math:`W'^\top v` is the gradient of
the linear map with modified weights :math:`W'` at the vector v (``_back``).

>>> Rule("gamma", gamma=0.25)
>>> rule("epsilon", epsilon=0.1).epsilon
0.1
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import _checks

RULES = ("zero", "epsilon", "gamma", "alpha_beta", "zb", "flat", "w_square")
"""The rules a user chooses (``rule=`` or in a composite)."""
STABILIZER = 1e-6
EPSILON, GAMMA = 0.25, 0.25


@dataclass(frozen=True)
class Rule:
    """One LRP rule and its parameters.

    name    : one of ``RULES`` (or "norm" for average pooling and Add)
    epsilon : the epsilon rule's :math:`\\epsilon`
    gamma   : the gamma rule's :math:`\\gamma`
    alpha, beta : the alpha-beta rule's weights (alpha - beta = 1)
    low, high   : the :math:`z^\\mathcal{B}` rule's bounds, one per channel of the layer's input
    """

    name: str
    epsilon: float = EPSILON
    gamma: float = GAMMA
    alpha: float = 1.0
    beta: float = 0.0
    low: tuple = None
    high: tuple = None


def rule(value, epsilon: float = EPSILON, gamma: float = GAMMA) -> Rule:
    """A ``Rule`` from a name of ``RULES`` (with these epsilon and gamma) or a ``Rule`` as it is.

    >>> rule("alpha_beta")                       # alpha=1, beta=0: the z+ rule"""
    if isinstance(value, Rule):
        found = value
    else:
        found = Rule(_checks.one_of(value, "rule", RULES), float(epsilon), float(gamma))
    if found.name == "alpha_beta" and (found.alpha < 0 or found.beta < 0
                                       or abs(found.alpha - found.beta - 1) > 1e-9):
        raise ValueError(f"alpha={found.alpha}, beta={found.beta}: the alpha-beta rule needs "
                         "alpha >= 0, beta >= 0 and alpha - beta = 1 (e.g. alpha=1, beta=0 or "
                         "alpha=2, beta=1)")
    if found.name in ("epsilon", "gamma") and min(found.epsilon, found.gamma) < 0:
        raise ValueError(f"epsilon={found.epsilon}, gamma={found.gamma}: both must be >= 0")
    return found


# --------------------------------------------------------------------------- the formulas


def stabilize(z, epsilon: float = STABILIZER):
    r""":math:`z + \epsilon\,\mathrm{sign}(z)`, with sign(0) = 1: a denominator that is never 0."""
    from keras import ops

    return z + epsilon * ops.where(z >= 0, 1.0, -1.0)


def _back(linear, a, kernel, v):
    r""":math:`W^\top v`: the gradient of ``linear(., kernel, 0)`` (a linear map of inputs
    shaped like a) at the output vector v."""
    import tensorflow as tf

    u = tf.zeros_like(a)
    with tf.GradientTape() as tape:
        tape.watch(u)
        z = linear(u, kernel, None)
    return tape.gradient(z, u, output_gradients=v)


def _parts(x):
    """(positive part, negative part) of x."""
    from keras import ops

    return ops.maximum(x, 0.0), ops.minimum(x, 0.0)


def _signed_terms(linear, a, weights, biases, R, denominators):
    r""":math:`a^+ W_1^\top v + a^- W_2^\top v` summed over pairs: each pair (W_1, W_2) with its
    own denominator gives :math:`v = R / \mathrm{stabilize}(z_1 + z_2)`. Where a >= 0 (after a
    ReLU) the :math:`a^-` terms are 0 and are not computed."""
    import tensorflow as tf

    a_pos, a_neg = _parts(a)

    def terms(signed: bool):
        total = 0.0
        for (w1, w2), (b1, b2), mask in zip(weights, biases, denominators):
            z = linear(a_pos, w1, b1) + (linear(a_neg, w2, b2) if signed else 0.0)
            v = R * mask / stabilize(z)
            total = total + a_pos * _back(linear, a, w1, v)
            total = total + (a_neg * _back(linear, a, w2, v) if signed else 0.0)
        return total

    return tf.cond(tf.reduce_any(a < 0), lambda: terms(True), lambda: terms(False))


def relevance(found: Rule, linear, a, kernel, bias, R, z):
    r""":math:`R_j` of the inputs a of the linear map ``linear(a, kernel, bias)`` (whose output
    is z) for the relevance R of its outputs, by rule ``found``."""
    from keras import ops

    if found.name in ("zero", "epsilon", "norm"):
        if found.name == "zero":
            v = ops.where(z == 0, 0.0, R / ops.where(z == 0, 1.0, z))
        else:
            v = R / stabilize(z, found.epsilon if found.name == "epsilon" else STABILIZER)
        return a * _back(linear, a, kernel, v)
    w_pos, w_neg = _parts(kernel)
    b_pos, b_neg = _parts(bias) if bias is not None else (None, None)
    if found.name == "alpha_beta":
        positive = _signed_terms(linear, a, [(w_pos, w_neg)], [(b_pos, None)], R, [1.0])
        if found.beta == 0:
            return positive
        negative = _signed_terms(linear, a, [(w_neg, w_pos)], [(b_neg, None)], R, [1.0])
        return found.alpha * positive - found.beta * negative
    if found.name == "gamma":
        g = found.gamma
        up = (kernel + g * w_pos, kernel + g * w_neg)
        bias_up = (None, None) if bias is None else (bias + g * b_pos, bias + g * b_neg)
        return _signed_terms(linear, a, [up, up[::-1]], [(bias_up[0], None), (bias_up[1], None)],
                             R, [ops.cast(z > 0, z.dtype), ops.cast(z < 0, z.dtype)])
    if found.name == "zb":
        low, high = (ops.broadcast_to(ops.convert_to_tensor(b, a.dtype), ops.shape(a))
                     for b in (found.low, found.high))
        v = R / stabilize(linear(a, kernel, None) - linear(low, w_pos, None)
                          - linear(high, w_neg, None))
        return (a * _back(linear, a, kernel, v) - low * _back(linear, a, w_pos, v)
                - high * _back(linear, a, w_neg, v))
    ones = ops.ones_like(a)
    weights = ops.ones_like(kernel) if found.name == "flat" else kernel ** 2
    squared_bias = None if found.name == "flat" or bias is None else bias ** 2
    return _back(linear, a, weights, R / stabilize(linear(ones, weights, squared_bias)))
