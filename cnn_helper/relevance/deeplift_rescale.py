r"""DeepLIFT with the rescale rule (Shrikumar et al. 2017): what each pixel contributes to the
difference between the target on x and on a reference input :math:`\x'` (the ``baseline``).

Every element-wise non-linearity :math:`y = f(z)` passes back, instead of its derivative, the
multiplier

.. math::  m = \frac{\Delta y}{\Delta z} = \frac{f(z) - f(z')}{z - z'}
           \quad (f'(z) \text{ where } |z - z'| < 10^{-6})

with z' the same unit on the reference input; linear layers keep their gradient. The map is
:math:`(\x - \x') \odot m_{\x}`, the multipliers carried back to the pixels, and it sums to
:math:`s(\x) - s(\x')` (summation-to-delta) when every non-linearity is element-wise. Max pooling
and a softmax keep their gradient at x (the sum is then approximate: explain
``Feature("logits", k)`` for an exact one). On a linear model it is gradient x (x - x').

It is one gradient step (:mod:`cnn_helper._gradient`) on a clone of the model whose
non-linearities carry m, over each batch of images followed by their references in one batch,
so each unit sees its own reference value.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import _checks, _gradient, _layers, _override, _reference, features

RULES = ("rescale",)
TOLERANCE = 1e-6


def rescaled(z, y, derivative):
    r"""y = f(z) forward; backward the multiplier :math:`\Delta y / \Delta z` of each pair of
    rows: a batch is the images, then their references (x_1..x_n, x'_1..x'_n); both halves get
    the same multiplier."""
    import tensorflow as tf

    @tf.custom_gradient
    def multiplier(z, y, derivative):
        n = tf.shape(z)[0] // 2
        dz, dy = z[:n] - z[n:], y[:n] - y[n:]
        near = tf.abs(dz) < TOLERANCE
        m = tf.where(near, derivative[:n], dy / tf.where(near, 1.0, dz))
        m = tf.concat([m, m], axis=0)
        return tf.identity(y), lambda g: (g * m, None, None)

    return multiplier(z, tf.stop_gradient(y), tf.stop_gradient(derivative))


def _with_derivative(f, z):
    """(f(z), f'(z)) of an element-wise f."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(z)
        y = f(z)
    return y, tape.gradient(y, z)


def rescale_layer(inner, activation):
    """A Keras layer: ``inner`` (a layer without its activation, or None) then ``activation``
    (an element-wise function or activation layer) whose backward pass is the multiplier."""
    import keras

    class Rescale(keras.layers.Layer):
        def __init__(self):
            source = inner if inner is not None else activation
            super().__init__(name=source.name if hasattr(source, "name") else None,
                             dtype=getattr(source, "dtype_policy", None))
            self.inner, self.activation = inner, activation

        def build(self, input_shape):
            if self.inner is not None and not self.inner.built:
                self.inner.build(input_shape)
            if isinstance(self.activation, keras.layers.Layer) and not self.activation.built:
                self.activation.build(input_shape)

        def compute_output_shape(self, input_shape):
            inner = self.inner
            return input_shape if inner is None else inner.compute_output_shape(input_shape)

        def call(self, a, mask=None):
            z = a if self.inner is None else self.inner(a)
            return rescaled(z, *_with_derivative(self.activation, z))

    return Rescale()


def _replacement(layer, config):
    """The clone's layer for ``layer``: element-wise non-linearities carry the multiplier."""
    import keras

    if _layers.is_operation(layer):
        return rescale_layer(None, layer) \
            if _layers.is_activation(layer) and type(layer).__name__ != "Softmax" else None
    if _layers.relu_of(layer) is None and _layers.other_nonlinearity(layer) is None:
        return None
    if isinstance(layer, keras.layers.Activation) or _layers.is_activation(layer):
        return rescale_layer(None, layer.__class__.from_config(config))
    activation = keras.activations.get(config["activation"])
    config["activation"] = "linear"
    inner = layer.__class__.from_config(config)
    return rescale_layer(inner, activation)


POLICY = _override.Policy("deeplift rescale", _replacement)


def _paired(x, base, batch_size: int):
    """(2N, ...): for each batch of images, the images then their references; and the rows
    of the images in it."""
    chunks, rows, start = [], [], 0
    for s in _checks.batches(len(x), batch_size):
        chunks += [x[s], base[s]]
        rows.append(np.arange(start, start + len(x[s])))
        start += 2 * len(x[s])
    return np.concatenate(chunks), np.concatenate(rows)


def deeplift(model, x, target, baseline="zero", rule: str = "rescale",
             keep_location: bool = False, batch_size=_checks.BATCH_SIZE, sign: str = "signed"):
    r"""DeepLIFT-rescale maps of ``target`` (an int class or a ``Feature``) for images x,
    against ``baseline`` (the reference input :math:`\x'` in any of Integrated Gradients' forms:
    "zero", "mean", "extreme", "blur", a number, one per channel, an image or one per image):
    :math:`(\x - \x') \odot m`, summing to :math:`s(\x) - s(\x')`.

    >>> d = deeplift(model, x_test[:4], Feature("logits", 8))            # (4, 28, 28, 1)
    >>> d.sum(axis=(1, 2, 3))                   # = logit 8 on x minus logit 8 on black images
    """
    _checks.one_of(rule, "rule", RULES)
    req = _gradient.request(model, x, target, batch_size, sign, "gradient", keep_location)
    base = _reference.reference(model, req.x, baseline).values.astype(req.x.dtype)
    t = req.target
    pairs, rows = _paired(req.x, base, req.batch_size)
    locations = None if t.locations is None else np.concatenate(
        [t.locations[s] for s in _checks.batches(len(req.x), req.batch_size) for _ in (0, 1)])
    pair_req = dataclasses.replace(  # internal contract: a Request on our clone, pairs of rows
        req, net=_override.clone_with(model, POLICY), rule=POLICY.name,
        batch_size=2 * req.batch_size, target=features.Target(t.feature, t.layer, locations))
    m = _gradient.gradients(model, pair_req, pairs)[rows]
    return req.finish((req.x - base) * m)
