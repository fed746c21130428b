r"""Saliency maps: how much a target moves when each input value moves.

The lecture's saliency map of a target :math:`s` for example :math:`\x^\ip` is the derivative

.. math::  S = \frac{\partial s}{\partial \y_{(0)}} \Big|_{\y_{(0)} = \x^\ip}

with the same shape as the input. The target :math:`s` is a head output :math:`\y_{(L),k}` (an
int ``target``: our CNN's head is the softmax probability; ``Feature("logits", k)`` is the logit)
or a feature of an inner layer (a :class:`cnn_helper.Feature`): for a max-pooled map, the value
:math:`\y_{(l),idx,k}` at idx, the location of the max, exactly as the lecture does after global
max pooling; ``pool="mean"`` differentiates the mean of the map; ``location=(r, c)`` a fixed idx.

It is back propagation with the loss replaced by the target: :math:`\loss'_{(l')} =
\partial s / \partial \y_{(l')}`, carried from layer l down to :math:`l' = 0`. Every method below
is a few lines over ONE compiled gradient step (:func:`_gradients`), which returns
:math:`\partial s / \partial \x` or, for the CAM family, :math:`\partial s / \partial \y_{(l)}`::

    gradient              dS/dx                                     (Simonyan et al. 2013)
    gradient_x_input      x * dS/dx
    smoothgrad            mean of dS/dx over noisy copies of x      (Smilkov et al. 2017)
    squaregrad            mean of (dS/dx)^2 over the same copies    (Hooker et al. 2019)
    vargrad               variance of dS/dx over the same copies    (Adebayo et al. 2018)
    integrated_gradients  (x - x') * mean of dS/dx on the path x' -> x   (Sundararajan et al. 2017)
    guided_backprop       gradient with rule="guided"               (Springenberg et al. 2015)
    deconvnet             gradient with rule="deconvnet"            (Zeiler & Fergus 2014)

and the CAM family, coarse maps from one layer's maps A_k: grad_cam (Selvaraju et al. 2017),
grad_cam_plus_plus (Chattopadhyay et al. 2018), layer_cam (Jiang et al. 2021) and score_cam
(Wang et al. 2020), in :mod:`cnn_helper.cam` and importable from here (``saliency.grad_cam``).

``rule`` (gradient, gradient_x_input, smoothgrad, squaregrad, vargrad, integrated_gradients) is
the backward rule at each ReLU with forward input z and incoming gradient g:

- "gradient"  : :math:`g \cdot [z > 0]`, ordinary back propagation;
- "guided"    : :math:`g \cdot [z > 0] \cdot [g > 0]`, guided backpropagation;
- "deconvnet" : :math:`\mathrm{ReLU}(g)` whatever z, the deconvnet.

The two rules run on a clone of the model whose ReLUs carry a ``tf.custom_gradient`` (made once,
weights refreshed on every call; your model is never modified). Max pooling keeps its ordinary
gradient, which routes g to the max of each window: the lecture's "switches".

``sign`` is an option of every method: "signed" (the raw map), "abs" (the lecture's "ignore the
sign": strong positive or negative influence), "positive", "negative" (the negative part, still
<= 0, so signed = positive + negative). Every method returns float32 maps shaped like x: (N, H, W,
C) for a batch, (H, W, C) for one image; Grad-CAM's map has one channel, (N, H, W, 1).

Work is batched (``batch_size`` images per compiled step); results do not depend on it.

Example
-------
>>> s = gradient(model, x_test[:16], Feature("logits", 8))              # (16, 28, 28, 1)
>>> g = guided_backprop(model, x_test[0], Feature("conv2", 5), sign="abs")   # (28, 28, 1)
>>> sg = smoothgrad(model, x_test[:4], 8, rule="guided")                 # guided SmoothGrad
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np

from . import _checks, _graph, _override, features
from ._checks import BATCH_SIZE
from .cam import (  # noqa: F401 (the CAM family, importable from here too: saliency.grad_cam)
    cam_layer,
    grad_cam,
    grad_cam_plus_plus,
    layer_cam,
    score_cam,
)
from .features import Feature

SIGNS = ("signed", "abs", "positive", "negative")
RULES = ("gradient", "guided", "deconvnet")


def apply_sign(s, sign: str = "signed"):
    """The signed map, its magnitude ("abs"), or only its positive / negative part."""
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
    """A clone policy: every ReLU (a layer's activation or a ReLU layer) gets backward ``rule``."""
    def replace(layer, config):
        import keras

        forward = _override.relu_of(layer)
        if forward is None:
            return None
        if isinstance(layer, keras.layers.ReLU):
            return keras.layers.Activation(_relu_with_rule(rule, forward), name=layer.name,
                                           dtype=layer.dtype_policy)
        config["activation"] = _relu_with_rule(rule, forward)
        return layer.__class__.from_config(config)

    return _override.Policy(rule, replace)


_POLICIES = {rule: _replace_relus(rule) for rule in RULES[1:]}


def other_nonlinearities(model) -> tuple:
    """Names of the layers with an element-wise non-linearity that is not a ReLU (tanh, GELU,
    swish, ELU, LeakyReLU, a sigmoid gate...): guided backpropagation and the deconvnet change
    only ReLUs, so these keep their plain gradient."""
    import keras

    def find():
        others = []
        for name, path in _graph.walk(model):
            layer = path[-1]
            if isinstance(layer, keras.Model) or _override.relu_of(layer) is not None:
                continue
            activation = getattr(layer, "activation", None)
            if isinstance(layer, (keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU)) \
                    or getattr(activation, "__name__", "linear") not in ("linear", "softmax"):
                others.append(name)
        return tuple(others)

    return _graph.memo(model, ("other non-linearities",), find)


def _network(model, rule: str):
    """The model itself, or its clone whose ReLUs follow ``rule`` (weights refreshed now).

    A model without any ReLU is its own network for every rule (with a warning): its clone would
    change nothing.
    """
    if _checks.one_of(rule, "rule", RULES) == "gradient":
        return model
    has_relu = _graph.memo(model, ("has a ReLU",), lambda: any(
        _override.relu_of(path[-1]) for _, path in _graph.walk(model)))
    if not has_relu:
        warnings.warn(f"model {model.name!r} has no ReLU that {rule} can change (ReLU as a layer "
                      "activation, a ReLU layer or an Activation('relu') layer): the result "
                      "equals the plain gradient", stacklevel=4)
        return model
    if other_nonlinearities(model):
        warnings.warn(f"{rule} changes the backward pass of ReLUs only; layers "
                      f"{list(other_nonlinearities(model))} of model {model.name!r} have other "
                      "non-linearities and keep their plain gradient", stacklevel=4)
    return _override.clone_with(model, _POLICIES[rule])


def relus_changed(model, rule: str = "guided") -> tuple:
    """Names of the layers whose ReLU the clone for ``rule`` ("guided" | "deconvnet") replaced."""
    _checks.one_of(rule, "rule", RULES[1:])
    return _override.replaced_layers(model, _POLICIES[rule])


# --------------------------------------------------------------------------- the gradient step


@dataclass(frozen=True)
class _Request:
    """A validated call: the images in the model's dtype and what to explain."""

    x: np.ndarray            # (N, ...) the images
    single: bool             # x was one image: drop the batch axis of the result
    feature: Feature         # the target s
    layer: str               # its layer's "outer/inner" name (the same in a clone)
    locations: object        # (N, n_spatial) where s is read on each image, or None: pool afresh
    rule: str                # the backward rule at the ReLUs
    net: object              # the model, or its clone for the rule (weights refreshed once)
    batch_size: int
    sign: str

    def finish(self, s):
        """float32, the sign option applied, the batch axis dropped for a single image."""
        s = apply_sign(np.asarray(s, dtype=np.float32), self.sign)
        return s[0] if self.single else s


def _float_input(model):
    """The model's input dtype (NumPy), or a ValueError for an integer input: no gradient."""
    dtype = _graph.input_spec(model).dtype
    if not dtype.is_floating:
        raise ValueError(
            f"model {model.name!r} takes {dtype.name} images (its Input's dtype): there is no "
            "gradient with respect to integers, so every saliency map would be zero. Build the "
            "same layers on keras.Input(shape, dtype='float32') (a Rescaling layer still scales "
            "them) and copy the weights with set_weights(model.get_weights())")
    return dtype.as_numpy_dtype


def _request(model, x, target, batch_size, sign, rule="gradient", keep_location=False):
    """Check everything before any work; find where the target is read (``fixed_locations``)
    and the network the rule runs on (a clone's weights are copied once per call, here)."""
    x, single = _graph.check_images(model, x)
    feature = features.check_feature(model, target)
    batch_size = _graph.batch_size(model, batch_size)
    sign = _checks.one_of(sign, "sign", SIGNS)
    net = _network(model, rule)
    return _Request(x.astype(_float_input(model), copy=False), single, feature,
                    _graph.path_name(model, feature.layer),
                    features.fixed_locations(model, x, feature, keep_location, batch_size),
                    rule if net is not model else "gradient", net, batch_size, sign)


def _gradient_step(model, net, rule: str, layer: str, pool: str, at: bool, wrt):
    r"""The compiled step on ``net`` (the model, or its clone for ``rule``) for a target read
    from ``layer`` by ``pool`` (or ``at`` given locations): (x batch, channel k[, locations]) ->
    [ds/dx], or [A, ds/dA] with A the output of layer ``wrt``. One trace per (rule, layer, pool,
    at, wrt): channel, locations and batch size are tensors, so they never retrace."""
    import tensorflow as tf

    def build():
        tap = _graph.tap(net, [layer] if wrt is None else [wrt, layer])
        n_spatial = len(_graph.output_shape(model, layer)) - 1
        specs = [_graph.input_spec(model), tf.TensorSpec((), tf.int32)]
        specs += [tf.TensorSpec((None, n_spatial), tf.int64)] if at else []

        @tf.function(autograph=False, input_signature=specs)
        def step(x, channel, locations=None):
            with tf.GradientTape() as tape:
                tape.watch(x)
                outputs = tap(x)
                s, _ = features.read(outputs[-1], channel, pool, locations)
            # examples are independent in inference mode: d(sum_i s_i)/dx_i = ds_i/dx_i
            if wrt is None:
                return [tape.gradient(s, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)]
            gradient = tape.gradient(s, outputs[0])
            if gradient is None:
                raise ValueError(f"the target at layer {layer!r} does not depend on layer "
                                 f"{wrt!r}: choose a layer before the target")
            return [outputs[0], gradient]

        return step

    return _graph.memo(model, ("gradient step", rule, layer, pool, at, wrt), build)


def _gradients(model, request: _Request, x, wrt=None):
    r""":math:`\partial s / \partial x` for each image of x (N, ...), in the model's dtype; with
    ``wrt`` (a layer name) the pair [A, :math:`\partial s / \partial A`] for that layer's output A.

    x is ``request.x`` or a perturbed copy of it: the target is read at ``request.locations``.
    """
    step = _gradient_step(model, request.net, request.rule, request.layer, request.feature.pool,
                          request.locations is not None, wrt)
    channel = np.int32(request.feature.channel)
    arrays = (x,) if request.locations is None else (x, request.locations)
    outputs = _graph.run_batched(lambda xb, *where: step(xb, channel, *where), request.batch_size,
                                 *arrays)
    return outputs[0] if wrt is None else outputs


# --------------------------------------------------------------------------- the methods


def gradient(model, x, target, rule: str = "gradient", batch_size=BATCH_SIZE,
             sign: str = "signed"):
    r"""The saliency map :math:`\partial s / \partial \y_{(0)}` at :math:`\y_{(0)} = \x^\ip`.

    ``target``: a head class index k (the model's output y_(L),k; the softmax probability for our
    CNN) or a Feature. For a max-pooled spatial Feature it is :math:`\partial \y_{(l),idx,k} /
    \partial \y_{(0)}` with idx the location of the max in this example (the choice of idx is not
    differentiated); with pool="mean" the mean of the map. ``rule``: see the module docstring.

    >>> s = gradient(model, x_test[:8], Feature("logits", 8))    # (8, 28, 28, 1)
    >>> s = gradient(model, x_test[0], Feature("conv2", 5), sign="abs")
    """
    request = _request(model, x, target, batch_size, sign, rule)
    return request.finish(_gradients(model, request, request.x))


def gradient_x_input(model, x, target, rule: str = "gradient", batch_size=BATCH_SIZE,
                     sign: str = "signed"):
    r"""Gradient times input, :math:`\x \odot \partial s / \partial \y_{(0)}` (each input's share
    in a first-order Taylor expansion around 0). Same arguments as :func:`gradient`.

    >>> a = gradient_x_input(model, x_test[:8], 8)
    """
    request = _request(model, x, target, batch_size, sign, rule)
    return request.finish(request.x * _gradients(model, request, request.x))


def guided_backprop(model, x, target, batch_size=BATCH_SIZE, sign: str = "signed"):
    r"""Guided backpropagation (Springenberg et al. 2015): back propagation where every ReLU passes
    only positive signal, :math:`g \cdot [z > 0] \cdot [g > 0]`; all other layers (convolutions,
    max pooling's switches, ...) keep their ordinary gradient. ``gradient(..., rule="guided")``.

    The clone changes only gradients: its forward values are your model's, so a spatial Feature's
    idx is the argmax your model's forward pass finds. The lecture (after Zeiler & Fergus) also
    calls "ignoring the sign of the derivatives" guided back propagation: that is ``sign="abs"``.

    >>> s = guided_backprop(model, x_test[:8], Feature("conv3", 7))
    """
    return gradient(model, x, target, "guided", batch_size, sign)


def deconvnet(model, x, target, batch_size=BATCH_SIZE, sign: str = "signed"):
    r"""The deconvnet of Zeiler & Fergus (2014): every ReLU passes :math:`\mathrm{ReLU}(g)`
    backwards, whatever its forward input; convolutions are transposed and max pooling uses the
    switches (the location of each max on the forward pass), as in back propagation.
    ``gradient(..., rule="deconvnet")``.

    >>> s = deconvnet(model, x_test[:8], Feature("conv2", 3), sign="abs")
    """
    return gradient(model, x, target, "deconvnet", batch_size, sign)


def _image_keys(x) -> np.ndarray:
    """A 63-bit key per image from its bytes: the same image gets the same noise wherever it is."""
    return np.array([int.from_bytes(hashlib.blake2b(image.tobytes(), digest_size=8).digest(),
                                    "little") >> 1 for image in x], np.int64)


def _noise(keys, seed: int, j: int, shape):
    """Standard normal noise (N, *shape), float32: image i's copy j from seed (key_i, seed, j)."""
    import tensorflow as tf

    def draw(key):
        return tf.random.stateless_normal(shape, seed=tf.stack([key, seed * 1_000_003 + j]))

    return tf.map_fn(draw, tf.constant(keys), fn_output_signature=tf.float32).numpy()


def _noisy_gradient_statistic(statistic: str, model, x, target, n_samples, noise, seed, rule,
                              keep_location, batch_size, sign):
    r"""The one computation behind smoothgrad, squaregrad and vargrad: with :math:`g_j` the
    gradient at noisy copy j (one gradient step per copy, the sums of :math:`g_j` and
    :math:`g_j^2` kept in float64), the ``statistic`` over the n copies, value by value:

    mean :math:`\frac{1}{n}\sum_j g_j`; mean of squares :math:`\frac{1}{n}\sum_j g_j^2`;
    variance :math:`\frac{1}{n}\sum_j g_j^2 - (\frac{1}{n}\sum_j g_j)^2` (divided by n, as xplique).
    """
    request = _request(model, x, target, batch_size, sign, rule, keep_location)
    n_samples = _checks.positive_int(n_samples, "n_samples")
    noise = _checks.non_negative(noise, "noise", " (a fraction of the input range)")
    seed = _checks.seed(seed)
    x = request.x
    flat = x.reshape(len(x), -1)
    sigma = (noise * (flat.max(axis=1) - flat.min(axis=1))).reshape((-1,) + (1,) * (x.ndim - 1))
    keys = _image_keys(x)
    total, total_of_squares = 0.0, 0.0
    for j in range(n_samples):
        noisy = x + (sigma * _noise(keys, seed, j, x.shape[1:])).astype(x.dtype)
        g = _gradients(model, request, noisy).astype(np.float64)
        total, total_of_squares = total + g, total_of_squares + g * g
    mean, mean_of_squares = total / n_samples, total_of_squares / n_samples
    if statistic == "mean":
        return request.finish(mean)
    if statistic == "mean of squares":
        return request.finish(mean_of_squares)
    return request.finish(np.maximum(mean_of_squares - mean ** 2, 0))   # >= 0 despite rounding


def smoothgrad(model, x, target, n_samples: int = 25, noise: float = 0.15, seed: int = 0,
               rule: str = "gradient", keep_location: bool = False, batch_size=BATCH_SIZE,
               sign: str = "signed"):
    r"""SmoothGrad: the gradient averaged over ``n_samples`` noisy copies of each example.

    .. math::  \hat S = \frac{1}{n} \sum_{j=1}^{n} \frac{\partial s}{\partial \y_{(0)}}
               \Big|_{\x^\ip + \epsilon_j}, \qquad \epsilon_j \sim N(0, \sigma^2),
               \quad \sigma = \text{noise} \cdot (\max \x^\ip - \min \x^\ip)

    ``noise`` is the standard deviation as a fraction of each example's value range. Copy j of
    an image draws its noise from (seed, a hash of the image, j): the same seed gives the same map
    for an image wherever it sits in x and for every batch_size. noise=0 gives :func:`gradient`.
    ``rule`` gives guided SmoothGrad and friends; ``keep_location`` reads a max-pooled Feature at
    the clean example's argmax on every copy (``features.fixed_locations``). ``sign`` applies to
    the mean. :func:`squaregrad` and :func:`vargrad` use the same copies.

    >>> s = smoothgrad(model, x_test[:4], Feature("logits", 8), n_samples=50, noise=0.2)
    """
    return _noisy_gradient_statistic("mean", model, x, target, n_samples, noise, seed, rule,
                                     keep_location, batch_size, sign)


def squaregrad(model, x, target, n_samples: int = 25, noise: float = 0.15, seed: int = 0,
               rule: str = "gradient", keep_location: bool = False, batch_size=BATCH_SIZE,
               sign: str = "signed"):
    r"""SquareGrad (SmoothGrad-Squared, Hooker et al. 2019; xplique's SquareGrad): the mean of the
    squared gradient over the noisy copies of :func:`smoothgrad`,
    :math:`\frac{1}{n} \sum_j (\partial s / \partial \y_{(0)} |_{\x^\ip + \epsilon_j})^2`.
    It is >= 0: the sign of the evidence is gone. Same arguments and the same copies as
    :func:`smoothgrad`; noise=0 gives the gradient squared.

    >>> s = squaregrad(model, x_test[:4], Feature("logits", 8), n_samples=50)
    """
    return _noisy_gradient_statistic("mean of squares", model, x, target, n_samples, noise, seed,
                                     rule, keep_location, batch_size, sign)


def vargrad(model, x, target, n_samples: int = 25, noise: float = 0.15, seed: int = 0,
            rule: str = "gradient", keep_location: bool = False, batch_size=BATCH_SIZE,
            sign: str = "signed"):
    r"""VarGrad (Adebayo et al. 2018; xplique's VarGrad): the variance of the gradient over the
    noisy copies of :func:`smoothgrad`, :math:`\frac{1}{n} \sum_j g_j^2 - (\frac{1}{n} \sum_j
    g_j)^2` value by value: where the gradient changes most under noise. It is >= 0 and is 0 for
    noise=0. Same arguments and the same copies as :func:`smoothgrad`.

    >>> v = vargrad(model, x_test[:4], Feature("logits", 8), n_samples=50)
    """
    return _noisy_gradient_statistic("variance", model, x, target, n_samples, noise, seed, rule,
                                     keep_location, batch_size, sign)


def baseline_images(model, baseline, x) -> np.ndarray:
    """A baseline x' as a batch like x (Integrated Gradients' start; where faithfulness takes
    removed pixels from): zeros for None, one image for all, or one per example.

    >>> baseline_images(model, x_test[0], x_test[:4]).shape      # (4, 28, 28, 1)"""
    if baseline is None:
        return np.zeros_like(x)
    base, _ = _graph.check_images(model, baseline, name="baseline")
    if len(base) not in (1, len(x)):
        raise ValueError(f"baseline has {len(base)} images but x has {len(x)}; give one image or "
                         "one per example")
    return np.broadcast_to(base.astype(x.dtype), x.shape)


def integrated_gradients(model, x, target, baseline=None, n_samples: int = 32,
                         rule: str = "gradient", keep_location: bool = False,
                         batch_size=BATCH_SIZE, sign: str = "signed"):
    r"""Integrated Gradients from a baseline :math:`\x'` (default: zeros, a black image).

    .. math::  IG = (\x - \x') \odot \frac{1}{m} \sum_{j=0}^{m-1}
               \frac{\partial s}{\partial \y_{(0)}} \Big|_{\x' + \alpha_j (\x - \x')},
               \qquad \alpha_j = \frac{j + 1/2}{m}

    (m = ``n_samples`` points on the path, the midpoint rule). Completeness:
    :math:`\sum IG \approx s(\x) - s(\x')`, better as m grows. ``baseline``: one image (used for
    every example) or a batch like x. ``keep_location`` reads a max-pooled Feature at the argmax
    found at x along the whole path; by default the max is taken afresh at every point of it.

    >>> ig = integrated_gradients(model, x_test[:4], Feature("logits", 8), n_samples=64)
    """
    request = _request(model, x, target, batch_size, sign, rule, keep_location)
    n_samples = _checks.positive_int(n_samples, "n_samples")
    x = request.x
    base = baseline_images(model, baseline, x)
    total = 0.0
    for j in range(n_samples):
        alpha = (j + 0.5) / n_samples
        total = total + _gradients(model, request, base + alpha * (x - base))
    return request.finish((x - base) * total / n_samples)


# --------------------------------------------------------------------------- by name

METHODS = ("gradient", "gradient_x_input", "guided_backprop", "deconvnet", "smoothgrad",
           "squaregrad", "vargrad", "integrated_gradients", "grad_cam", "grad_cam_plus_plus",
           "layer_cam", "score_cam")
"""Every attribution method of this module by name: each is f(model, x, target, ...) returning
one map per image (the sanity checks, ``distributed.explain`` and ``cnn-helper explain`` take
these names)."""


def method(name):
    """The attribution function called ``name`` (one of ``METHODS``); a function given instead
    (your own f(model, x, target, ...), one map per image) is returned as it is.

    >>> method("guided_backprop") is guided_backprop      # True"""
    if callable(name):
        return name
    if not isinstance(name, str) or name not in METHODS:
        raise (ValueError if isinstance(name, str) else TypeError)(
            f"method {name!r} is not one of {METHODS}; or give a saliency function of your "
            "own, f(model, x, target, **options) returning one map per image")
    return globals()[name]

