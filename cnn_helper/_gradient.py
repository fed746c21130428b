r"""The gradient core (private): one resolved request, one compiled gradient step, the backward
rules. Every gradient method (:mod:`cnn_helper.saliency`, :mod:`cnn_helper.cam`) is a few lines
over it.

A saliency map is back propagation with the loss replaced by the target :math:`s`:
:math:`\loss'_{(l')} = \partial s / \partial \y_{(l')}`, carried from the target's layer l down
to :math:`l' = 0` (the input) or to a chosen layer's output A (the CAM family)::

    req = request(model, x, target, batch_size, sign, rule)   # everything checked, once
    dx = gradients(model, req, req.x)                          # ds/dx, (N, ...) like x
    A, dA = gradients(model, req, req.x, wrt="conv3")          # A and ds/dA

The target is resolved once (:func:`cnn_helper.features.resolve`: layer path, channel, pool and
the locations where it is read), so a located ``Feature`` reads the same idx on the clean image
and on every perturbed copy a method feeds (SmoothGrad's noisy copies, IG's path).

**Backward rules** at each ReLU ("gradient", "guided", "deconvnet": the formulas are in
:mod:`cnn_helper.saliency`'s docstring, which students read) run on a clone of the model whose
ReLUs carry a ``tf.custom_gradient`` (``POLICIES``: one clone per rule, made once by
``_override``, weights refreshed on every call); the user's model is never modified.

**Signs**: "signed" (the raw map), "abs" (the lecture's "ignore the sign"), "positive",
"negative" (the negative part, still <= 0, so signed = positive + negative).
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np

from . import _checks, _graph, _layers, _override, features

SIGNS = ("signed", "abs", "positive", "negative")
RULES = ("gradient", "guided", "deconvnet")


def apply_sign(s, sign: str = "signed"):
    """The signed map, its magnitude ("abs"), or only its positive / negative part.

    >>> apply_sign(np.array([-2.0, 3.0]), "negative")       # array([-2., 0.])"""
    _checks.one_of(sign, "sign", SIGNS)
    if sign == "abs":
        return np.abs(s)
    if sign == "positive":
        return np.maximum(s, 0)
    if sign == "negative":
        return np.minimum(s, 0)
    return s


# --------------------------------------------------------------------------- backward rules


def _relu_with_rule(rule: str, forward):
    """The ReLU ``forward`` whose backward pass follows ``rule`` ("guided" or "deconvnet").

    guided    : g * f'(z) * [g > 0]: the forward ReLU is kept as it is (so TensorFlow still fuses
                it into the convolution) and followed by an identity whose backward pass lets only
                g > 0 through; the ReLU's own gradient then masks by z > 0.
    deconvnet : ReLU(g), whatever z.
    """
    import tensorflow as tf

    @tf.custom_gradient
    def positive_gradient(y):
        return tf.identity(y), tf.nn.relu

    @tf.custom_gradient
    def rectified_gradient(z):
        return forward(z), tf.nn.relu

    def relu(z):
        return positive_gradient(forward(z)) if rule == "guided" else rectified_gradient(z)

    relu.__name__ = f"{rule}_relu"
    return relu


def _replace_relus(rule: str):
    """A clone policy: every ReLU (a layer's activation, a ReLU layer or a ``keras.ops.relu``
    node) gets backward ``rule``."""
    def replace(layer, config):
        import keras

        forward = _layers.relu_of(layer)
        if forward is None:
            return None
        if isinstance(layer, keras.layers.ReLU) or _layers.is_operation(layer):
            # a ReLU layer or a keras.ops.relu(h) node: an Activation of the same name
            return keras.layers.Activation(_relu_with_rule(rule, forward), name=layer.name,
                                           dtype=getattr(layer, "dtype_policy", None))
        config["activation"] = _relu_with_rule(rule, forward)
        return layer.__class__.from_config(config)

    return _override.Policy(rule, replace)


POLICIES = {rule: _replace_relus(rule) for rule in RULES[1:]}


def other_nonlinearities(model) -> tuple:
    """Names of the layers with an element-wise non-linearity that is not a ReLU (tanh, GELU,
    swish, ELU, LeakyReLU, a sigmoid gate...; the catalogue ``_layers.other_nonlinearity``):
    guided backpropagation and the deconvnet change only ReLUs, so these keep their plain
    gradient.

    >>> other_nonlinearities(model)                  # () for the course CNN: ReLUs only"""
    return _graph.memo(model, ("other non-linearities",), lambda: tuple(
        name for name, path in _graph.walk_operations(model)
        if _layers.other_nonlinearity(path[-1])))


def opaque_layers(model) -> tuple:
    """Names of the layers whose computation cnn_helper cannot see inside: ``Lambda`` layers and
    layers of the user's own classes that declare no activation (a ReLU inside them is not
    found). Guided backpropagation and the deconvnet leave them as they are: whatever ReLU they
    apply keeps its plain gradient.

    >>> opaque_layers(model)          # ('lam',) for a model with Lambda(..., name="lam")"""
    import keras

    def opaque(layer) -> bool:
        if isinstance(layer, keras.layers.Lambda):
            return True
        return not isinstance(layer, keras.Model) and \
            not type(layer).__module__.startswith("keras") and \
            _layers.relu_of(layer) is None and _layers.other_nonlinearity(layer) is None

    return _graph.memo(model, ("opaque layers",), lambda: tuple(
        name for name, path in _graph.walk(model) if opaque(path[-1])))


def _opaque_note(model) -> str:
    """The sentence the guided rules' warnings add about ``opaque_layers`` ("" when none)."""
    found = opaque_layers(model)
    if not found:
        return ""
    return (f"; layers {list(found)} are Lambda or custom layers whose computation cnn_helper "
            "cannot see inside, so a ReLU in them keeps its plain gradient")


def has_relu(model) -> bool:
    """Whether any layer of ``model`` (nested models entered) applies a ReLU."""
    return _graph.memo(model, ("has a ReLU",), lambda: any(
        _layers.relu_of(path[-1]) is not None for _, path in _graph.walk_operations(model)))


def network(model, rule: str):
    """The model itself, or its clone whose ReLUs follow ``rule`` (weights refreshed now).

    A model without any ReLU is its own network for every rule (with a warning): its clone would
    change nothing. The warnings name the layers the rule leaves as they are: other
    non-linearities, and layers it cannot see inside (``opaque_layers``).
    """
    if _checks.one_of(rule, "rule", RULES) == "gradient":
        return model
    if not has_relu(model):
        warnings.warn(f"model {model.name!r} has no ReLU that {rule} can change (ReLU as a layer "
                      "activation, a ReLU layer or an Activation('relu') layer): the result "
                      f"equals the plain gradient{_opaque_note(model)}", stacklevel=4)
        return model
    if other_nonlinearities(model) or opaque_layers(model):
        others = list(other_nonlinearities(model))
        warnings.warn(f"{rule} changes the backward pass of ReLUs only"
                      + (f"; layers {others} of model {model.name!r} have other non-linearities "
                         "and keep their plain gradient" if others else "")
                      + _opaque_note(model), stacklevel=4)
    return _override.clone_with(model, POLICIES[rule])


def relus_changed(model, rule: str = "guided") -> tuple:
    """Names of the layers whose ReLU the clone for ``rule`` ("guided" | "deconvnet") replaced.

    >>> relus_changed(model)                # ('conv1', 'conv2', 'conv3', 'dense') for our CNN"""
    _checks.one_of(rule, "rule", RULES[1:])
    return _override.replaced_layers(model, POLICIES[rule])


# --------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class Request:
    """A validated call: the images in the model's dtype, the resolved target, the network.

    x          : (N, ...) the images
    single     : x was one image: ``finish`` drops the batch axis of the result
    target     : the resolved target (``features.Target``: layer path, channel, pool, locations)
    rule       : the backward rule at the ReLUs ("gradient" when the model has no ReLU)
    net        : the model, or its clone for the rule (weights refreshed once, in ``request``)
    batch_size : images per compiled call
    sign       : what ``finish`` keeps of the map
    """

    x: np.ndarray
    single: bool
    target: features.Target
    rule: str
    net: object
    batch_size: int
    sign: str

    @property
    def feature(self) -> features.Feature:
        return self.target.feature

    def finish(self, s):
        """float32, the sign option applied, the batch axis dropped for a single image."""
        s = apply_sign(np.asarray(s, dtype=np.float32), self.sign)
        return s[0] if self.single else s


def float_input(model):
    """The model's input dtype (NumPy), or a ValueError for an integer input: no gradient."""
    dtype = _graph.input_spec(model).dtype
    if not dtype.is_floating:
        raise ValueError(
            f"model {model.name!r} takes {dtype.name} images (its Input's dtype): there is no "
            "gradient with respect to integers, so every saliency map would be zero. Build the "
            "same layers on keras.Input(shape, dtype='float32') (a Rescaling layer still scales "
            "them) and copy the weights with set_weights(model.get_weights())")
    return dtype.as_numpy_dtype


def request(model, x, target, batch_size, sign="signed", rule="gradient",
            keep_location=False) -> Request:
    """Check everything before any work: the images, the target resolved once (where it is
    read: ``features.resolve``), the batch size, the sign, and the network the rule runs on (a
    clone's weights are copied once per call, here).

    >>> req = request(model, x_test[:4], Feature("conv2", 5), "auto")
    """
    x, single = _graph.check_images(model, x)
    batch_size = _graph.batch_size(model, batch_size)
    resolved = features.resolve(model, x, target, keep_location, batch_size)
    sign = _checks.one_of(sign, "sign", SIGNS)
    net = network(model, rule)
    return Request(x.astype(float_input(model), copy=False), single, resolved,
                   rule if net is not model else "gradient", net, batch_size, sign)


# --------------------------------------------------------------------------- the gradient step


def _step(model, req: Request, wrt):
    r"""The compiled step on ``req.net`` for ``req.target``: (x batch, channel k[, locations])
    -> [ds/dx], or [A, ds/dA] with A the output of layer ``wrt``. One trace per (rule, layer,
    pool, located, wrt): channel, locations and batch size are tensors, so they never retrace."""
    import tensorflow as tf

    target = req.target
    layers = [target.layer] if wrt is None else [wrt, target.layer]

    def build():
        tap = _graph.tap(req.net, layers)
        n_spatial = len(_graph.output_shape(model, target.layer)) - 1
        specs = [_graph.input_spec(model), tf.TensorSpec((), tf.int32)]
        specs += [tf.TensorSpec((None, n_spatial), tf.int64)] if target.located else []

        @tf.function(autograph=False, input_signature=specs)
        def step(x, channel, locations=None):
            with tf.GradientTape() as tape:
                tape.watch(x)
                outputs = tap(x)
                s = target.read(outputs[-1], channel, locations)
            # examples are independent in inference mode: d(sum_i s_i)/dx_i = ds_i/dx_i
            if wrt is None:
                return [tape.gradient(s, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)]
            gradient = tape.gradient(s, outputs[0])
            if gradient is None:
                raise ValueError(f"the target at layer {target.layer!r} does not depend on layer "
                                 f"{wrt!r}: choose a layer before the target")
            return [outputs[0], gradient]

        return step

    key = ("gradient step", req.rule, target.layer, target.pool, target.located, wrt)
    return _graph.memo(model, key, build)


def gradients(model, req: Request, x, wrt=None):
    r""":math:`\partial s / \partial x` for each image of x (N, ...), in the model's dtype; with
    ``wrt`` (a layer's path name) the pair [A, :math:`\partial s / \partial A`] for that layer's
    output A.

    x is ``req.x`` or a perturbed copy of it (noise, a point on a path): the target is read at
    ``req.target.locations`` when it has them, else pooled afresh on x.

    >>> g = gradients(model, req, req.x)                   # (N, 28, 28, 1)
    """
    step = _step(model, req, wrt)
    channel = np.int32(req.target.channel)
    arrays = (x,) if not req.target.located else (x, req.target.locations)
    outputs = _graph.run_batched(lambda xb, *where: step(xb, channel, *where), req.batch_size,
                                 *arrays)
    return outputs[0] if wrt is None else outputs


# --------------------------------------------------------------------------- seeded noise


def image_keys(x) -> np.ndarray:
    """A 63-bit key per image from its bytes: the same image gets the same noise wherever it is
    (SmoothGrad's copies do not depend on the batch or on the image's place in it).

    >>> image_keys(x_test[:2])                      # two int64 keys"""
    return np.array([int.from_bytes(hashlib.blake2b(image.tobytes(), digest_size=8).digest(),
                                    "little") >> 1 for image in x], np.int64)


def standard_noise(keys, seed: int, j: int, shape) -> np.ndarray:
    """Standard normal noise (N, *shape), float32: image i's copy j drawn from (key_i, seed, j)
    by a stateless generator, so it is the same on every call and every machine's batch split.

    >>> standard_noise(image_keys(x_test[:2]), 0, 0, (28, 28, 1)).shape    # (2, 28, 28, 1)"""
    import tensorflow as tf

    def draw(key):
        return tf.random.stateless_normal(shape, seed=tf.stack([key, seed * 1_000_003 + j]))

    return tf.map_fn(draw, tf.constant(keys), fn_output_signature=tf.float32).numpy()
