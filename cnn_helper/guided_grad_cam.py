r"""Guided Grad-CAM (Selvaraju et al. 2017, Section 3.1): guided backpropagation, sharp but not
class-discriminative, times the upsampled Grad-CAM, coarse but class-discriminative,

.. math::  S = \frac{\partial^{\,guided} s}{\partial \x} \odot
           \mathrm{up}\big(\mathrm{ReLU}(\textstyle\sum_k \alpha_k A_k)\big),

value by value: fine detail only where Grad-CAM finds evidence for the target. Both factors come
from the package's gradient core (:mod:`cnn_helper.saliency`, :mod:`cnn_helper.cam`).

Example
-------
>>> ggc = guided_grad_cam(model, x_test[:4], 8)                # (4, 28, 28, 1)
>>> ggc = guided_grad_cam(model, x_test[0], Feature("conv3", 2), layer="conv2")
"""
from __future__ import annotations

import numpy as np

from . import _checks, cam, saliency
from ._checks import BATCH_SIZE


def guided_grad_cam(model, x, target, layer=None, batch_size=BATCH_SIZE, sign: str = "signed"):
    r"""Guided Grad-CAM (Selvaraju et al. 2017): :func:`cnn_helper.saliency.guided_backprop`
    times :func:`cnn_helper.cam.grad_cam` (upsampled to the input's size, ReLU applied), value
    by value; the one-channel Grad-CAM multiplies every channel of the guided map.

    layer : Grad-CAM's layer (default: ``cam.cam_layer``, the last spatial map before the target)
    sign  : applied to the product (both factors are computed signed)

    Returns float32 maps shaped like x: (N, H, W, C), or (H, W, C) for one image.

    >>> ggc = guided_grad_cam(model, x_test[:8], Feature("logits", 8))
    """
    sign = _checks.one_of(sign, "sign", saliency.SIGNS)
    guided = saliency.guided_backprop(model, x, target, batch_size=batch_size)
    coarse = cam.grad_cam(model, x, target, layer=layer, batch_size=batch_size)
    return saliency.apply_sign(guided * coarse, sign).astype(np.float32)
