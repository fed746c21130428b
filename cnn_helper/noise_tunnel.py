r"""The noise tunnel (Captum's NoiseTunnel): any attribution method run on n noisy copies of x,
and a statistic of the n maps taken value by value.

With :math:`a_j` the method's map of copy :math:`\x\ip + \epsilon_j`:

.. math::  \text{mean: } \frac{1}{n} \sum_j a_j \qquad \text{square: } \frac{1}{n} \sum_j
           a_j^2 \qquad \text{var: } \frac{1}{n} \sum_j a_j^2 - \Big(\frac{1}{n} \sum_j
           a_j\Big)^2

(SmoothGrad, Smilkov et al. 2017; SmoothGrad-squared, Hooker et al. 2019; VarGrad, Adebayo et
al. 2018). The copies and the statistics are ``cnn_helper._noise``, the one implementation that
:func:`cnn_helper.saliency.smoothgrad`, ``squaregrad`` and ``vargrad`` use too:
``noise_tunnel("gradient")`` *is* SmoothGrad. It lives above the registry (it takes a method by
its name), so it is not itself in ``methods.METHODS``: it makes methods.

Example
-------
>>> smooth_cam = noise_tunnel("grad_cam", n_samples=10)       # a method like any other
>>> maps = smooth_cam(model, x_test[:4], 8)                    # (4, 28, 28, 1)
>>> vg = noise_tunnel("gradient", statistic="var")(model, x_test[:4], 8)   # = vargrad
"""
from __future__ import annotations

import numpy as np

from . import _graph, _noise, methods

STATISTIC_NAMES = {"mean": "smooth", "square": "square", "var": "var"}


def noise_tunnel(method, n_samples: int = 25, noise: float = 0.15, statistic: str = "mean",
                 seed: int = 0):
    r"""``method`` (a name in ``methods.METHODS`` or your function ``f(model, x, target,
    **options)``) averaged over noisy copies: a new method of the same form, which

    1. makes ``n_samples`` copies :math:`\x\ip + \epsilon_j` of each image,
       :math:`\epsilon_j \sim N(0, \sigma^2)`, :math:`\sigma = \text{noise} \cdot (\max \x\ip -
       \min \x\ip)` (the noise of :func:`cnn_helper.saliency.smoothgrad`: copy j of an image is
       the same for the same seed wherever the image is and whatever the batch size);
    2. calls the method ONCE on the copies of a few images together (a batch of n x G images;
       the method batches them itself), with the target and options it is given;
    3. returns, value by value, the ``statistic`` of the n maps of each image: "mean"
       (SmoothGrad), "square" (the mean of squares, SmoothGrad-squared) or "var" (VarGrad).

    The method's options apply to each copy's map: ``sign="abs"`` averages :math:`|a_j|`
    (SmoothGrad's own ``sign`` applies to the mean). A located target is read at its fixed idx
    on every copy; a max-pooled one is pooled afresh on each copy.

    >>> smooth = noise_tunnel("gradient", n_samples=25)         # smooth(model, x, 8) = smoothgrad
    >>> var_ig = noise_tunnel("integrated_gradients", statistic="var", noise=0.1)
    >>> maps = var_ig(model, x_test[:4], 8, n_samples=16)      # IG's options pass through
    """
    function, name = methods.get(method), methods.name_of(method)
    n_samples, noise, seed, statistic = _noise.check(n_samples, noise, seed, statistic)

    def tunnel(model, x, target, **options):
        images, single = _graph.check_images(model, x)

        def explain(copies, image_of_copy):
            maps = np.asarray(function(model, copies, target, **options))
            if maps.shape[:1] != copies.shape[:1]:
                raise ValueError(f"method {name!r} returned maps of shape {maps.shape} for "
                                 f"{len(copies)} images: noise_tunnel needs one map per image")
            return maps

        result = _noise.statistic_of(explain, images, n_samples, noise, seed, statistic)
        result = result.astype(np.float32)
        return result[0] if single else result

    tunnel.__name__ = f"{STATISTIC_NAMES[statistic]}_{name}"
    tunnel.__doc__ = (f"{name} under a noise tunnel: the {statistic} over {n_samples} noisy "
                      f"copies (noise={noise}, seed={seed}); f(model, x, target, **options).")
    return tunnel
