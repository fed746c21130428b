r"""The one registry of attribution methods: a name for each, one function behind each name.

Every method is a function ``f(model, x, target, **options)`` that returns one map per image of
x, float32, shaped like the image or with one channel: (N, H, W, C) or (N, H, W, 1) for a batch,
without the batch axis for one image. ``target`` is a head class index or a ``Feature``. The
command line (``cnn-helper explain --methods``), the sanity checks, ``distributed.explain`` and
:func:`cnn_helper.faithfulness.measure` take a method by its name here, or your own function of
that form::

    gradient, gradient_x_input, guided_backprop, deconvnet,            the gradient family
    smoothgrad, squaregrad, vargrad, integrated_gradients                (cnn_helper.saliency)
    grad_cam, grad_cam_plus_plus, layer_cam, score_cam                 the CAM family (cam)
    occlusion                                                          the drop when a patch is
                                                                       hidden (occlusion)
    rise                                                               random masks (rise)
    lrp, lrp_epsilon_plus, lrp_montavon, deeplift                      relevance propagation
                                                                       (relevance)
    kernel_shap, lime                                                  superpixels switched on
                                                                       and off (black_box)
    guided_grad_cam                                                    guided backprop x Grad-CAM
    craft                                                              each image's most important
                                                                       CRAFT concept (concepts)

A new method is one module (over the gradient core ``_gradient`` or the perturbation engine
``_perturb``) plus one line in ``METHODS``.

Example
-------
>>> sorted(METHODS)[:3]                          # ['deconvnet', 'grad_cam', 'grad_cam_plus_plus']
>>> explain = get("guided_backprop")
>>> maps = explain(model, x_test[:4], 8)         # (4, 28, 28, 1)
>>> get("occlusion")(model, x_test[:4], 8, patch=4, fill="zero").shape   # (4, 28, 28, 1)
"""
from __future__ import annotations

from types import MappingProxyType

from . import black_box, cam, concepts, guided_grad_cam, occlusion, relevance, rise, saliency

METHODS = MappingProxyType({
    "gradient": saliency.gradient,
    "gradient_x_input": saliency.gradient_x_input,
    "guided_backprop": saliency.guided_backprop,
    "deconvnet": saliency.deconvnet,
    "smoothgrad": saliency.smoothgrad,
    "squaregrad": saliency.squaregrad,
    "vargrad": saliency.vargrad,
    "integrated_gradients": saliency.integrated_gradients,
    "grad_cam": cam.grad_cam,
    "grad_cam_plus_plus": cam.grad_cam_plus_plus,
    "layer_cam": cam.layer_cam,
    "score_cam": cam.score_cam,
    "occlusion": occlusion.attribution,
    "rise": rise.rise,
    "lrp": relevance.lrp,
    "lrp_epsilon_plus": relevance.propagation.lrp_epsilon_plus,
    "lrp_montavon": relevance.propagation.lrp_montavon,
    "deeplift": relevance.deeplift,
    "kernel_shap": black_box.kernel_shap,
    "lime": black_box.lime,
    "guided_grad_cam": guided_grad_cam.guided_grad_cam,
    "craft": concepts.craft_attribution,
})
"""Every attribution method by name (read-only): name -> f(model, x, target, **options)."""


def get(method):
    """The attribution function called ``method`` (a name in ``METHODS``); a function given
    instead (your own ``f(model, x, target, **options)`` returning one map per image) is
    returned as it is.

    >>> get("guided_backprop") is saliency.guided_backprop
    True
    """
    if callable(method):
        return method
    if not isinstance(method, str):
        raise TypeError(f"method must be a name among {tuple(METHODS)} or a function "
                        f"f(model, x, target, **options) returning one map per image, got "
                        f"{method!r}")
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {tuple(METHODS)}; or give an "
                         "attribution function of your own, f(model, x, target, **options) "
                         "returning one map per image")
    return METHODS[method]


def name_of(method) -> str:
    """The registry name of ``method`` (a name or a registered function), else the function's
    own name: how results are labelled.

    >>> name_of(saliency.grad_cam)
    'grad_cam'
    """
    function = get(method)
    for name, registered in METHODS.items():
        if registered is function:
            return name
    return getattr(function, "__name__", type(function).__name__)
