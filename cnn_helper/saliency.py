r"""Saliency maps: how much a target moves when each input value moves.

The lecture's saliency map of a target :math:`s` for example :math:`\x^\ip` is the derivative

.. math::  S = \frac{\partial s}{\partial \y_{(0)}} \Big|_{\y_{(0)} = \x^\ip}

with the same shape as the input. The target :math:`s` is a head output :math:`\y_{(L),k}` (an int
``target``: our CNN's head is the softmax probability; ``Feature("logits", k)`` is the logit), or a
feature of an inner layer (a :class:`cnn_helper.Feature`): for a spatial layer with
``location=None`` (reduce "max") or ``"argmax"``, the value :math:`\y_{(l),idx,k}` at idx, the
location of the max, exactly as the lecture does after global max pooling; ``reduce="mean"``
differentiates the mean of the map; ``location=(r, c)`` a fixed idx.

It is back propagation with the loss replaced by the target: :math:`\loss'_{(l')} =
\partial s / \partial \y_{(l')}`, carried from layer l down to :math:`l' = 0`.

Methods (all ``(model, x, target, ...)``, x a batch (N, H, W, C) or one image (H, W, C); each
returns float32 with x's shape, except ``grad_cam``)::

    gradient              dS/dx                                   (Simonyan et al. 2013)
    gradient_x_input      x * dS/dx
    smoothgrad            mean of dS/dx over noisy copies of x    (Smilkov et al. 2017)
    integrated_gradients  (x - x') * mean of dS/dx on the path x' -> x   (Sundararajan et al. 2017)
    grad_cam              ReLU(sum_k alpha_k A_k), upsampled      (Selvaraju et al. 2017)
    guided_backprop       backward rule at each ReLU: pass g where input > 0 and g > 0
                                                                  (Springenberg et al. 2015)
    deconvnet             backward rule at each ReLU: pass ReLU(g) (Zeiler & Fergus 2014)

``sign`` is an option of every method: "signed" (the raw map), "abs" (the lecture's "ignore the
sign": look for strong positive or negative influence), "positive", "negative" (the negative part,
still <= 0, so signed = positive + negative). ``to_map`` collapses channels for display.

Guided backprop and deconvnet change only the backward pass of the ReLUs, so they run on a
*clone* of the model (``keras.models.clone_model``, weights copied, made once and cached) whose
ReLUs carry a ``tf.custom_gradient``; your model is never modified. Max pooling keeps its ordinary
gradient, which routes g to the max of each window: the lecture's "switches".

Work is batched (``batch_size`` images per compiled gradient step); results do not depend on it.

Example
-------
>>> s = gradient(model, x_test[:16], Feature("logits", 8))              # (16, 28, 28, 1)
>>> g = guided_backprop(model, x_test[0], Feature("conv2", 5), sign="abs")   # (28, 28, 1)
>>> plot.saliency_maps(x_test[:4], {"gradient": gradient(model, x_test[:4], 8)})
"""
from __future__ import annotations

import hashlib
import warnings
import weakref

import numpy as np

from . import features
from .features import (Feature, as_feature, batches, check_batch_size, check_feature, check_input,
                       find_layer, model_inputs, output_shape, tap_model)

SIGNS = ("signed", "abs", "positive", "negative")
MAP_REDUCTIONS = ("sum", "max_abs")
RULES = ("gradient", "guided", "deconvnet")

# model -> {key: compiled step}; model -> {rule: (clone, names of the ReLUs it changed)}.
# The values never reference the model object itself, so an entry dies with its model.
_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CLONES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------- checks and helpers


def _check_sign(sign):
    if not isinstance(sign, str) or sign not in SIGNS:
        raise ValueError(f"sign {sign!r} is not one of {SIGNS}")
    return sign


def apply_sign(s, sign: str = "signed"):
    """The signed map, its magnitude ("abs"), or only its positive / negative part."""
    _check_sign(sign)
    if sign == "abs":
        return np.abs(s)
    if sign == "positive":
        return np.maximum(s, 0)
    if sign == "negative":
        return np.minimum(s, 0)
    return s


def to_map(s, reduce: str = "sum"):
    """Collapse the channel axis of saliency maps (..., H, W, C) -> (..., H, W) for display.

    "sum" keeps the sign (sum over channels); "max_abs" is max_k |s_k| (Simonyan et al.'s choice
    for colour images).
    """
    s = np.asarray(s)
    if reduce not in MAP_REDUCTIONS:
        raise ValueError(f"reduce {reduce!r} is not one of {MAP_REDUCTIONS}")
    if s.ndim < 2:
        raise ValueError(f"saliency maps must have a channel axis, got shape {s.shape}")
    return s.sum(axis=-1) if reduce == "sum" else np.abs(s).max(axis=-1)


def _input_spec(model):
    import tensorflow as tf

    tensor = model_inputs(model)[0]
    return tf.TensorSpec((None,) + tuple(tensor.shape[1:]), tf.as_dtype(tensor.dtype))


def _layer_path(model, layer) -> str:
    """The "outer/inner" name of a layer: it names the same layer in a clone of the model."""
    return "/".join(part.name for part in find_layer(model, layer))


def _resolve(model, x, target, batch_size, sign):
    """Validate everything before any work.

    Returns (x batch, single, batch_size, feature, its "outer/inner" layer path, n_spatial).
    """
    x, single = check_input(model, x)
    batch_size = check_batch_size(batch_size)
    _check_sign(sign)
    feature = check_feature(model, as_feature(model, target))
    n_spatial = len(output_shape(model, feature.layer)) - 1
    return x, single, batch_size, feature, _layer_path(model, feature.layer), n_spatial


def _selection(model, x, feature, n_spatial, freeze, batch_size):
    r"""How the target scalar is taken from the layer output, and per-example locations.

    kind "dense": y_(l),k of a layer without spatial axes; "max" / "mean": global pooling of the
    map (the gradient of "max" flows to its argmax, found by the forward pass being
    differentiated); "at": :math:`\y_{(l),idx,k}` with idx given per example. With ``freeze``
    (methods that move the input: SmoothGrad, IG) location="argmax" keeps the idx found at x.
    """
    n = len(x)
    none = np.zeros((n, n_spatial), np.int32)
    if n_spatial == 0:
        return "dense", none
    if isinstance(feature.location, tuple):
        return "at", np.tile(np.asarray(feature.location, np.int32), (n, 1))
    if feature.location is None and feature.reduce == "mean":
        return "mean", none
    if freeze and feature.location == "argmax":
        found = features.feature_values(model, x, feature, batch_size=batch_size).locations
        return "at", found.astype(np.int32)
    return "max", none


def _scalar(activation, kind, channel, locations):
    """The target per example, (N,), from a layer output (N, *spatial, C); see ``_selection``."""
    import tensorflow as tf

    maps = tf.gather(activation, channel, axis=-1)               # y_(l),k : (N, *spatial)
    if kind == "dense":
        return maps
    if kind == "at":
        return tf.gather_nd(maps, locations, batch_dims=1)        # y_(l),idx,k
    values, _ = features.select(maps[..., None], Feature("", 0, None, kind))
    return values


def _single(outputs):
    """A tap model's only output (Keras returns a list for a list of outputs)."""
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def _finish(s, single, sign):
    """float32, the sign option applied, the batch axis dropped for a single image."""
    s = apply_sign(np.asarray(s, dtype=np.float32), sign)
    return s[0] if single else s


# --------------------------------------------------------------------------- the compiled step


def _gradient_step(model, path, kind, n_spatial, rule):
    r"""A tf.function: (x batch, channel k, locations) -> :math:`\partial s / \partial x` per example.

    One trace per (model, layer, selection kind, rule): channel and locations are tensors, so a
    new channel, location or batch size does not retrace.
    """
    import tensorflow as tf

    cache = _STEPS.setdefault(model, {})
    key = ("gradient", rule, path, kind)
    if key not in cache:
        net = model if rule == "gradient" else _rule_clone(model, rule)
        tap = tap_model(net, [path])

        @tf.function(autograph=False, input_signature=[
            _input_spec(model), tf.TensorSpec((), tf.int32), tf.TensorSpec((None, n_spatial), tf.int32)])
        def step(x, channel, locations):
            with tf.GradientTape() as tape:
                tape.watch(x)
                s = _scalar(_single(tap(x, training=False)), kind, channel, locations)
            # examples are independent in inference mode: d(sum_i s_i)/dx_i = ds_i/dx_i
            return tape.gradient(s, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)

        cache[key] = step
    return cache[key]


def _mean_gradient(step, inputs_of, n_examples, m, channel, locations, batch_size, dtype):
    """Mean over m inputs per example of ``step``: item t is sample t % m of example t // m.

    ``inputs_of(e, j)`` builds the inputs of items (examples e, samples j). Items run in chunks
    of ``batch_size``; each example's m gradients are summed in the same order for every
    batch_size (float64).
    """
    out = None
    for s in batches(n_examples * m, batch_size):
        t = np.arange(s.start, s.stop)
        e, j = t // m, t % m
        g = np.asarray(step(inputs_of(e, j).astype(dtype, copy=False), np.int32(channel),
                            locations[e]), dtype=np.float64)
        if out is None:
            out = np.zeros((n_examples,) + g.shape[1:])
        starts = np.flatnonzero(np.r_[True, e[1:] != e[:-1]])
        out[e[starts]] += np.add.reduceat(g, starts, axis=0)
    return out / m


def _attribute(model, x, target, batch_size, sign, rule="gradient", freeze=False, m=1,
               inputs_of=None):
    """Shared driver: validate, choose the selection, run the compiled step, apply the sign."""
    x, single, batch_size, feature, path, n_spatial = _resolve(model, x, target, batch_size, sign)
    kind, locations = _selection(model, x, feature, n_spatial, freeze, batch_size)
    if len(x) == 0:
        return np.zeros(x.shape), x, single
    step = _gradient_step(model, path, kind, n_spatial, rule)
    if rule != "gradient":
        _sync_weights(model, rule)
    g = _mean_gradient(step, inputs_of(x) if inputs_of else (lambda e, j: x[e]), len(x), m,
                       feature.channel, locations, batch_size, _input_spec(model).dtype.as_numpy_dtype)
    return g, x, single


# --------------------------------------------------------------------------- the methods


def gradient(model, x, target, batch_size: int = 32, sign: str = "signed"):
    r"""The saliency map :math:`\partial s / \partial \y_{(0)}` at :math:`\y_{(0)} = \x^\ip`.

    ``target``: a head class index k (the model's output y_(L),k; the softmax probability for our
    CNN) or a Feature. For a spatial Feature with location None (reduce "max") or "argmax" it is
    :math:`\partial \y_{(l),idx,k} / \partial \y_{(0)}` with idx the location of the max in this
    example (the choice of idx is not differentiated); with reduce="mean" the mean of the map.

    >>> s = gradient(model, x_test[:8], Feature("logits", 8))    # (8, 28, 28, 1)
    >>> s = gradient(model, x_test[0], Feature("conv2", 5), sign="abs")
    """
    g, x, single = _attribute(model, x, target, batch_size, sign)
    return _finish(g, single, sign)


def gradient_x_input(model, x, target, batch_size: int = 32, sign: str = "signed"):
    r"""Gradient times input, :math:`\x \odot \partial s / \partial \y_{(0)}` (each input's share in a
    first-order Taylor expansion around 0). Same arguments as :func:`gradient`.

    >>> a = gradient_x_input(model, x_test[:8], 8)
    """
    g, x, single = _attribute(model, x, target, batch_size, sign)
    return _finish(g * x, single, sign)


def smoothgrad(model, x, target, n: int = 25, noise: float = 0.15, seed: int = 0,
               batch_size: int = 32, sign: str = "signed"):
    r"""SmoothGrad: the gradient averaged over n noisy copies of each example.

    .. math::  \hat S = \frac{1}{n} \sum_{j=1}^{n} \frac{\partial s}{\partial \y_{(0)}}
               \Big|_{\x^\ip + \epsilon_j}, \qquad \epsilon_j \sim N(0, \sigma^2),
               \quad \sigma = \text{noise} \cdot (\max \x^\ip - \min \x^\ip)

    ``noise`` is the standard deviation as a fraction of each example's value range. The noise
    of copy j of an image comes from ``numpy.random.default_rng((seed, hash of the image, j))``:
    the same seed gives the same map for an image wherever it sits in x and for every
    batch_size. For location "argmax" the idx found at the clean example is kept for every copy.
    noise=0 gives :func:`gradient`. ``sign`` applies to the mean.

    >>> s = smoothgrad(model, x_test[:4], Feature("logits", 8), n=50, noise=0.2)
    """
    n = features.check_positive_int(n, "n")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.floating, np.integer)) \
            or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0 (a fraction of the input range), "
                         f"got {noise!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")

    def inputs_of(x):
        flat = x.reshape(len(x), -1)
        sigma = float(noise) * (flat.max(axis=1) - flat.min(axis=1))
        keys = [int.from_bytes(hashlib.blake2b(image.tobytes(), digest_size=8).digest(), "little")
                for image in flat]

        def make(e, j):
            if noise == 0:
                return x[e]
            eps = np.stack([np.random.default_rng((int(seed), keys[i], int(k))).standard_normal(
                x.shape[1:]) for i, k in zip(e, j)])
            return x[e] + (sigma[e].reshape((-1,) + (1,) * (x.ndim - 1)) * eps).astype(x.dtype)
        return make

    g, x, single = _attribute(model, x, target, batch_size, sign, freeze=True, m=n,
                              inputs_of=inputs_of)
    return _finish(g, single, sign)


def integrated_gradients(model, x, target, baseline=None, steps: int = 32, batch_size: int = 32,
                         sign: str = "signed"):
    r"""Integrated Gradients from a baseline :math:`\x'` (default: zeros, a black image).

    .. math::  IG = (\x - \x') \odot \frac{1}{m} \sum_{j=0}^{m-1}
               \frac{\partial s}{\partial \y_{(0)}} \Big|_{\x' + \alpha_j (\x - \x')},
               \qquad \alpha_j = \frac{j + 1/2}{m}

    (m = ``steps``, the midpoint rule). Completeness: :math:`\sum IG \approx s(\x) - s(\x')`,
    better as steps grow. ``baseline``: one image (used for every example) or a batch like x.
    For location "argmax" the idx found at x is kept along the whole path, so s is one function.

    >>> ig = integrated_gradients(model, x_test[:4], Feature("logits", 8), steps=64)
    """
    steps = features.check_positive_int(steps, "steps")
    x_checked, _ = check_input(model, x)
    if baseline is None:
        base = np.zeros_like(x_checked)
    else:
        base, _ = check_input(model, baseline, name="baseline")
        if len(base) not in (1, len(x_checked)):
            raise ValueError(f"baseline has {len(base)} images but x has {len(x_checked)}; give one "
                             "image or one per example")
        base = np.broadcast_to(base, x_checked.shape)
    alphas = (np.arange(steps) + 0.5) / steps

    def inputs_of(x):
        def make(e, j):
            a = alphas[j].reshape((-1,) + (1,) * (x.ndim - 1))
            return base[e] + (a * (x[e] - base[e])).astype(x.dtype)
        return make

    g, x, single = _attribute(model, x, target, batch_size, sign, freeze=True, m=steps,
                              inputs_of=inputs_of)
    return _finish(g * (x - base), single, sign)


def guided_backprop(model, x, target, batch_size: int = 32, sign: str = "signed"):
    r"""Guided backpropagation: back propagation where every ReLU passes only positive signal.

    At a ReLU with forward input z and incoming gradient g the ordinary rule passes
    :math:`g \cdot [z > 0]`; guided backprop passes :math:`g \cdot [z > 0] \cdot [g > 0]`.
    All other layers (convolutions, max pooling's switches, ...) keep their ordinary gradient.
    Runs on a cached clone of the model (yours is not modified; its current weights are copied in
    on each call). The clone changes only gradients: its forward values are your model's, so a
    spatial Feature's idx is the argmax your model's forward pass finds.

    The lecture (after Zeiler & Fergus) also calls "ignoring the sign of the derivatives" guided
    back propagation: that is ``sign="abs"`` here, available for every method.

    >>> s = guided_backprop(model, x_test[:8], Feature("conv3", 7))
    """
    g, x, single = _attribute(model, x, target, batch_size, sign, rule="guided")
    return _finish(g, single, sign)


def deconvnet(model, x, target, batch_size: int = 32, sign: str = "signed"):
    r"""The deconvnet of Zeiler & Fergus: every ReLU passes :math:`\mathrm{ReLU}(g)` backwards,
    whatever its forward input; convolutions are transposed and max pooling uses the switches
    (the location of each max on the forward pass) as in ordinary back propagation.

    Same mechanics as :func:`guided_backprop` (a clone with custom-gradient ReLUs).

    >>> s = deconvnet(model, x_test[:8], Feature("conv2", 3), sign="abs")
    """
    g, x, single = _attribute(model, x, target, batch_size, sign, rule="deconvnet")
    return _finish(g, single, sign)


# --------------------------------------------------------------------------- Grad-CAM


def cam_layer(model, target):
    """The layer Grad-CAM uses by default: the last layer with a spatial map at or before the
    target's layer (for a head class, the last spatial layer before the head). Maps of size 1
    (a global pooling with keepdims, MobileNet's 1x1 "conv_preds" head) show nothing: skipped."""
    import keras

    feature = check_feature(model, as_feature(model, target))
    walked = list(features.walk(model))
    names = [name for name, _ in walked]
    stop = names.index(_layer_path(model, feature.layer))
    for name, path in reversed(walked[:stop + 1]):
        if isinstance(path[-1], keras.layers.InputLayer):
            continue
        shape = output_shape(model, name)
        if len(shape) >= 2 and any(n is None or n > 1 for n in shape[:-1]):
            return name
    raise ValueError(f"model {model.name!r} has no layer with a spatial map before layer "
                     f"{feature.layer_name!r}; its layers are {names}")


def grad_cam(model, x, target, layer=None, batch_size: int = 32, sign: str = "positive"):
    r"""Grad-CAM: a coarse map of where the evidence for the target lies.

    With :math:`A = \y_{(l)}` the output of ``layer`` (default: :func:`cam_layer`, the last spatial
    map before the head) and :math:`\alpha_k = \frac{1}{|idx|}\sum_{idx}
    \partial s / \partial A_{idx,k}` (the gradient, global-average-pooled):

    .. math::  \text{cam} = \mathrm{ReLU}\Big(\sum_k \alpha_k A_k\Big)

    The ReLU is ``sign="positive"`` (the default); "signed" keeps the negative evidence. The map
    (at the layer's resolution) is bilinearly resized to the input's spatial size.

    Returns (N, H, W) — x's shape without the channel axis — float32; (H, W) for one image.

    >>> cam = grad_cam(model, x_test[:8], 8)          # layer conv3 for our CNN
    """
    import tensorflow as tf

    x, single, batch_size, feature, path, n_spatial = _resolve(model, x, target, batch_size, sign)
    cam_path = _layer_path(model, cam_layer(model, feature) if layer is None else layer)
    cam_shape = output_shape(model, cam_path)
    space = x.shape[1:-1]
    if len(cam_shape) - 1 != len(space) or len(space) not in (1, 2):
        raise ValueError(f"Grad-CAM needs a layer whose map has the input's spatial axes {space} "
                         f"(1 or 2 of them); layer {cam_path!r} has output shape {cam_shape}")
    kind, locations = _selection(model, x, feature, n_spatial, False, batch_size)

    cache = _STEPS.setdefault(model, {})
    key = ("grad_cam", cam_path, path, kind)
    if key not in cache:
        tap = tap_model(model, [cam_path, path])
        axes = tuple(range(1, len(cam_shape)))

        @tf.function(autograph=False, input_signature=[
            _input_spec(model), tf.TensorSpec((), tf.int32), tf.TensorSpec((None, n_spatial), tf.int32)])
        def step(xb, channel, locs):
            with tf.GradientTape() as tape:
                tape.watch(xb)
                a, out = tap(xb, training=False)
                s = _scalar(out, kind, channel, locs)
            da = tape.gradient(s, a)
            if da is None:
                raise ValueError(f"the target at layer {path!r} does not depend on layer "
                                 f"{cam_path!r}: choose a Grad-CAM layer before the target")
            alpha = tf.reduce_mean(da, axis=axes, keepdims=True)
            return tf.reduce_sum(alpha * a, axis=-1)

        cache[key] = step
    step = cache[key]
    dtype = _input_spec(model).dtype.as_numpy_dtype
    cams = [np.asarray(step(x[s].astype(dtype, copy=False), np.int32(feature.channel), locations[s]))
            for s in batches(len(x), batch_size)]
    cam = apply_sign(np.concatenate(cams) if cams else np.zeros((0,) + cam_shape[:-1]), sign)
    image_size = tuple(space) if len(space) == 2 else (space[0], 1)
    grid = cam if len(space) == 2 else cam[:, :, None]
    up = np.asarray(tf.image.resize(grid[..., None].astype(np.float32), image_size))[..., 0]
    up = up if len(space) == 2 else up[:, :, 0]
    return up[0] if single else up


# --------------------------------------------------------------------------- backward rules


def _relu_functions():
    import keras
    import tensorflow as tf

    return (keras.activations.relu, keras.ops.relu, tf.nn.relu)


def _rule_relu(rule: str, forward=None):
    """A ReLU (``forward``, default tf.nn.relu) whose backward pass follows ``rule``.

    guided    : g * f'(z) * [g > 0]: the ReLU's own gradient of ReLU(g). The forward ReLU is
                kept as it is (so TensorFlow still fuses it into the convolution) and followed
                by an identity whose backward pass lets only g > 0 through.
    deconvnet : ReLU(g), whatever z.
    """
    import tensorflow as tf

    forward = forward or tf.nn.relu

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


class _NotClonable(TypeError):
    """A model whose ReLUs the backward-rule clone cannot reach."""


def _clone_function(rule: str, changed: list):
    """clone_model's clone_function: each layer from its config, ReLUs given the backward rule."""
    import keras

    def clone(layer):
        if isinstance(layer, keras.Model):   # Functional/Sequential ones are cloned recursively
            raise _NotClonable(f"{rule} cannot look inside layer {layer.name!r}, a subclassed "
                            f"{type(layer).__name__}: only Functional and Sequential models (and "
                            "models nested from them) can have their ReLUs replaced")
        config = layer.get_config()
        if isinstance(layer, keras.layers.ReLU):
            plain = (config.get("max_value") is None and not config.get("negative_slope")
                     and not config.get("threshold"))
            forward = None if plain else (lambda z, c=config: keras.activations.relu(
                z, negative_slope=c["negative_slope"], max_value=c["max_value"],
                threshold=c["threshold"]))
            changed.append(layer.name)
            return keras.layers.Activation(_rule_relu(rule, forward), name=layer.name,
                                           dtype=layer.dtype_policy)
        activation = getattr(layer, "activation", None)
        if "activation" in config and any(activation is f for f in _relu_functions()):
            config["activation"] = _rule_relu(rule)   # Conv/Dense(activation="relu"), Activation("relu")
            changed.append(layer.name)
        return layer.__class__.from_config(config)

    return clone


def _rule_clone(model, rule: str):
    """The cached clone of ``model`` whose ReLUs use backward ``rule`` (weights copied)."""
    import keras

    if rule not in RULES[1:]:
        raise ValueError(f"backward rule {rule!r} is not one of {RULES[1:]}")
    clones = _CLONES.setdefault(model, {})
    if rule not in clones:
        changed = []
        try:
            clone = keras.models.clone_model(model, clone_function=_clone_function(rule, changed),
                                             recursive=True)
        except _NotClonable:
            raise
        except Exception as e:   # a layer that cannot be rebuilt from its config
            raise TypeError(f"cannot clone model {model.name!r} to change its ReLUs for {rule} "
                            f"({type(e).__name__}: {e}); only Functional and Sequential Keras "
                            "models are supported") from e
        clone.set_weights(model.get_weights())
        if not changed:
            warnings.warn(f"model {model.name!r} has no ReLU that {rule} can change (ReLU as a "
                          "layer activation, a ReLU layer or an Activation('relu') layer): the "
                          "result equals the plain gradient", stacklevel=4)
        clones[rule] = (clone, tuple(changed))
    return clones[rule][0]


def relus_changed(model, rule: str = "guided") -> tuple:
    """Names of the layers whose ReLU the clone for ``rule`` ("guided" | "deconvnet") replaced."""
    _rule_clone(model, rule)
    return _CLONES[model][rule][1]


def _sync_weights(model, rule):
    """Copy the model's current weights into its clone (it may have been trained since).

    One compiled call per method call (not per batch); the copy stays on the device.
    """
    import tensorflow as tf

    cache = _STEPS.setdefault(model, {})
    key = ("sync", rule)
    if key not in cache:
        pairs = [(mine.value, theirs.value)
                 for mine, theirs in zip(_CLONES[model][rule][0].weights, model.weights)]

        @tf.function(autograph=False)
        def sync():
            for mine, theirs in pairs:
                mine.assign(theirs)

        cache[key] = sync
    cache[key]()
