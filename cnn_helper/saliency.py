r"""Saliency maps: how much a target moves when each input value moves.

The lecture's saliency map of a target :math:`s` for example :math:`\x\ip` is the derivative

.. math::  S = \frac{\partial s}{\partial \y_{(0)}} \Big|_{\y_{(0)} = \x\ip}

with the same shape as the input. The target :math:`s` is a head output :math:`\y_{(L),k}` (an
int ``target``: our CNN's head is the softmax probability; ``Feature("logits", k)`` is the logit)
or a feature of an inner layer (a :class:`cnn_helper.Feature`): for a max-pooled map, the value
:math:`\y_{(l),idx,k}` at idx, the location of the max, exactly as the lecture does after global
max pooling; ``pool="mean"`` differentiates the mean of the map; ``location=(r, c)`` a fixed idx.

It is back propagation with the loss replaced by the target: :math:`\loss'_{(l')} =
\partial s / \partial \y_{(l')}`, carried from layer l down to :math:`l' = 0`. Every method below
is a few lines over the package's one gradient core (``cnn_helper._gradient``: the target
resolved once, one compiled gradient step, the backward rules), which returns
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
gradient, which routes g to the max of each window: the lecture's "switches". Only the ReLUs the
package can see are changed (``relus_changed``): other non-linearities
(``other_nonlinearities``) and layers it cannot see inside, a ``Lambda`` or a custom layer
(``opaque_layers``), keep their plain gradient, and a warning names them.

``sign`` is an option of every method: "signed" (the raw map), "abs" (the lecture's "ignore the
sign": strong positive or negative influence), "positive", "negative" (the negative part, still
<= 0, so signed = positive + negative). Every method returns float32 maps shaped like x: (N, H, W,
C) for a batch, (H, W, C) for one image; Grad-CAM's map has one channel, (N, H, W, 1). A Conv1D
model's sequences (N, L, C) and a Conv3D model's volumes (N, D, H, W, C) get maps of their shape.

Work is batched (``batch_size`` images per compiled step); results do not depend on it.

Example
-------
>>> s = gradient(model, x_test[:16], Feature("logits", 8))              # (16, 28, 28, 1)
>>> g = guided_backprop(model, x_test[0], Feature("conv2", 5), sign="abs")   # (28, 28, 1)
>>> sg = smoothgrad(model, x_test[:4], 8, rule="guided")                 # guided SmoothGrad
"""
from __future__ import annotations

import dataclasses

from . import _checks, _noise, _reference
from ._checks import BATCH_SIZE
from ._gradient import (  # noqa: F401 (public here: the rules and signs every method takes)
    RULES,
    SIGNS,
    apply_sign,
    gradients,
    image_keys,
    opaque_layers,
    other_nonlinearities,
    relus_changed,
    request,
    standard_noise,
)
from .cam import (  # noqa: F401 (the CAM family, importable from here too: saliency.grad_cam)
    cam_layer,
    grad_cam,
    grad_cam_plus_plus,
    layer_cam,
    score_cam,
)

# --------------------------------------------------------------------------- the methods


def gradient(model, x, target, rule: str = "gradient", batch_size=BATCH_SIZE,
             sign: str = "signed"):
    r"""The saliency map :math:`\partial s / \partial \y_{(0)}` at :math:`\y_{(0)} = \x\ip`.

    ``target``: a head class index k (the model's output y_(L),k; the softmax probability for our
    CNN) or a Feature. For a max-pooled spatial Feature it is :math:`\partial \y_{(l),idx,k} /
    \partial \y_{(0)}` with idx the location of the max in this example (the choice of idx is not
    differentiated); with pool="mean" the mean of the map. ``rule``: see the module docstring.

    >>> s = gradient(model, x_test[:8], Feature("logits", 8))    # (8, 28, 28, 1)
    >>> s = gradient(model, x_test[0], Feature("conv2", 5), sign="abs")
    """
    req = request(model, x, target, batch_size, sign, rule)
    return req.finish(gradients(model, req, req.x))


def gradient_x_input(model, x, target, rule: str = "gradient", batch_size=BATCH_SIZE,
                     sign: str = "signed"):
    r"""Gradient times input, :math:`\x \odot \partial s / \partial \y_{(0)}` (each input's share
    in a first-order Taylor expansion around 0). Same arguments as :func:`gradient`.

    >>> a = gradient_x_input(model, x_test[:8], 8)
    """
    req = request(model, x, target, batch_size, sign, rule)
    return req.finish(req.x * gradients(model, req, req.x))


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


def _noisy_gradient_statistic(statistic: str, model, x, target, n_samples, noise, seed, rule,
                              keep_location, batch_size, sign):
    r"""The one computation behind smoothgrad, squaregrad and vargrad, and the noise tunnel's
    (``cnn_helper._noise``): with :math:`g_j` the gradient at noisy copy j (the copies of a few
    images in one batched gradient call), the ``statistic`` over the n copies, value by value:

    "mean" :math:`\frac{1}{n}\sum_j g_j`; "square" :math:`\frac{1}{n}\sum_j g_j^2`; "var"
    :math:`\frac{1}{n}\sum_j g_j^2 - (\frac{1}{n}\sum_j g_j)^2` (divided by n, as xplique).
    A located target is read at image i's idx on every copy of image i.
    """
    req = request(model, x, target, batch_size, sign, rule, keep_location)
    n_samples, noise, seed, statistic = _noise.check(n_samples, noise, seed, statistic)

    def gradients_of(copies, image_of_copy):
        located = req.target.locations
        if located is not None:
            copy_target = dataclasses.replace(req.target, locations=located[image_of_copy])
            return gradients(model, dataclasses.replace(req, target=copy_target), copies)
        return gradients(model, req, copies)

    return req.finish(_noise.statistic_of(gradients_of, req.x, n_samples, noise, seed,
                                          statistic))


def smoothgrad(model, x, target, n_samples: int = 25, noise: float = 0.15, seed: int = 0,
               rule: str = "gradient", keep_location: bool = False, batch_size=BATCH_SIZE,
               sign: str = "signed"):
    r"""SmoothGrad: the gradient averaged over ``n_samples`` noisy copies of each example.

    .. math::  \hat S = \frac{1}{n} \sum_{j=1}^{n} \frac{\partial s}{\partial \y_{(0)}}
               \Big|_{\x\ip + \epsilon_j}, \qquad \epsilon_j \sim N(0, \sigma^2),
               \quad \sigma = \text{noise} \cdot (\max \x\ip - \min \x\ip)

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
    :math:`\frac{1}{n} \sum_j (\partial s / \partial \y_{(0)} |_{\x\ip + \epsilon_j})^2`.
    It is >= 0: the sign of the evidence is gone. Same arguments and the same copies as
    :func:`smoothgrad`; noise=0 gives the gradient squared.

    >>> s = squaregrad(model, x_test[:4], Feature("logits", 8), n_samples=50)
    """
    return _noisy_gradient_statistic("square", model, x, target, n_samples, noise, seed,
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
    return _noisy_gradient_statistic("var", model, x, target, n_samples, noise, seed, rule,
                                     keep_location, batch_size, sign)


def integrated_gradients(model, x, target, baseline="zero", n_samples: int = 32,
                         rule: str = "gradient", keep_location: bool = False,
                         batch_size=BATCH_SIZE, sign: str = "signed"):
    r"""Integrated Gradients from a baseline :math:`\x'` (default: zeros, a black image).

    .. math::  IG = (\x - \x') \odot \frac{1}{m} \sum_{j=0}^{m-1}
               \frac{\partial s}{\partial \y_{(0)}} \Big|_{\x' + \alpha_j (\x - \x')},
               \qquad \alpha_j = \frac{j + 1/2}{m}

    (m = ``n_samples`` points on the path, the midpoint rule). Completeness:
    :math:`\sum IG \approx s(\x) - s(\x')`, better as m grows. ``baseline``: a reference input
    in any of the package's forms ("zero", "mean", "extreme", "blur", a number, one per channel,
    one image for every example or a batch like x). ``keep_location`` reads a max-pooled Feature
    at the argmax found at x along the whole path; by default the max is taken afresh at every
    point of it.

    >>> ig = integrated_gradients(model, x_test[:4], Feature("logits", 8), n_samples=64)
    """
    req = request(model, x, target, batch_size, sign, rule, keep_location)
    n_samples = _checks.positive_int(n_samples, "n_samples")
    x = req.x
    base = _reference.reference(model, x, baseline).values
    total = 0.0
    for j in range(n_samples):
        alpha = (j + 0.5) / n_samples
        total = total + gradients(model, req, base + alpha * (x - base))
    return req.finish((x - base) * total / n_samples)
