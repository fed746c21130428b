r"""Class activation maps (the CAM family): coarse maps of where the evidence for a target lies.

Each method weighs the maps :math:`A_k = \y_{(l),k}` of one layer l (``layer``; by default
:func:`cam_layer`, the last spatial map before the target) and sums them over the channels k,
at the layer's resolution; the result is bilinearly upsampled to the input's size (linearly for
a Conv1D model's sequences, trilinearly for a Conv3D model's volumes)::

    grad_cam            ReLU(sum_k alpha_k A_k), alpha_k = mean_idx dS/dA_idx,k   (Selvaraju 2017)
    grad_cam_plus_plus  alpha_k = sum_idx a_idx,k ReLU(dS/dA_idx,k), a from the
                        2nd/3rd derivatives of exp(S)                (Chattopadhyay et al. 2018)
    layer_cam           ReLU(sum_k ReLU(dS/dA_idx,k) A_idx,k), per location  (Jiang et al. 2021)
    score_cam           ReLU(sum_k w_k A_k), w_k = S on x masked by the map A_k  (Wang 2020)

The gradient methods run on the package's gradient core (``cnn_helper._gradient``), whose one
compiled step returns the pair :math:`A, \partial S / \partial A` in one pass; Score-CAM needs no
gradient, only the target on masked copies of x, from the perturbation engine
(``cnn_helper._perturb``).

Every method returns float32 maps with one channel, (N, H, W, 1) for a batch or (H, W, 1) for
one image ((N, L, 1) for sequences, (N, D, H, W, 1) for volumes), takes ``target`` (a head
class index or a ``Feature``), ``layer``, ``relu`` (False keeps the negative evidence),
``batch_size`` (never changes the result) and ``sign``. They are
also importable from :mod:`cnn_helper.saliency` (``saliency.grad_cam`` is this ``grad_cam``).

Example
-------
>>> cam = grad_cam_plus_plus(model, x_test[:8], Feature("logits", 8))     # (8, 28, 28, 1)
>>> cam = layer_cam(model, x_test[:8], 8, layer="conv2")
>>> cam = score_cam(model, x_test[:8], 8, batch_size=256)
"""
from __future__ import annotations

import numpy as np

from . import _gradient, _graph, _perturb, features
from ._checks import BATCH_SIZE


def cam_layer(model, target) -> str:
    """The layer the CAM methods use by default: the last layer with a spatial map called at or
    before the target's layer, in the model's run order (``_graph.program``: nested models
    entered, a subclassed one through its functional twin; for a head class, the last spatial
    layer before the head). Maps of size 1 (a global pooling with keepdims, MobileNet's 1x1
    "conv_preds" head) show nothing: skipped.

    >>> cam_layer(model, 8)                         # the course CNN
    'conv3'
    """
    import keras

    feature = features.check_feature(model, target)
    target_name = _graph.path_name(model, feature.layer)
    calls = _graph.program(model).calls
    stop = next(i for i, call in enumerate(calls) if call.name == target_name)
    called = list(dict.fromkeys(call.name for call in calls[:stop + 1]
                                if call.computes and isinstance(call.layer, keras.layers.Layer)))
    for name in reversed(called):
        shape = _graph.output_shape(model, name)
        if len(shape) >= 2 and any(n is None or n > 1 for n in shape[:-1]):
            return name
    shapes = {name: _graph.output_shape(model, name) for name in called}
    raise ValueError(f"model {model.name!r} has no layer with a spatial map at or before layer "
                     f"{feature.layer_name!r}; the layers it calls up to there have output "
                     f"shapes {shapes}: give a Feature of a layer with a map (H, W, C)")


def _resize_axis(maps, axis: int, n: int):
    """Maps (N, *spatial) linearly resized to length n along ``axis`` (1 is the first spatial
    axis): the axis seen as the rows of (N, length, rest, 1) images, resized as
    ``ops.image.resize`` does (half-pixel centres; the other axes keep their size)."""
    from keras import ops

    moved = ops.moveaxis(maps, axis, 1)
    rest = tuple(moved.shape[2:])
    size = int(np.prod(rest))
    up = ops.image.resize(ops.reshape(moved, (-1, moved.shape[1], size, 1)), (n, size))
    return ops.moveaxis(ops.reshape(up, (-1, n) + rest), 1, axis)


def _upsample(cam, size):
    """Maps (N, *spatial) at a layer's resolution, resized to the input's ``size`` (1, 2 or 3
    axes): (N, *size, 1), one channel like a grey image. Bilinear for an image; linear along
    each axis in turn for a sequence or a volume (trilinear: linear interpolation is separable).
    A NumPy array in, an array out; a tensor in (inside a compiled step), a tensor out."""
    from keras import ops

    grid = ops.cast(cam, "float32")
    if len(size) == 2:                                        # (N, h, w)
        up = ops.image.resize(grid[..., None], tuple(size))
    else:
        for axis, n in enumerate(size):
            grid = _resize_axis(grid, axis + 1, n)
        up = grid[..., None]
    return ops.convert_to_numpy(up) if isinstance(cam, np.ndarray) else up


def _check_layer(model, request, layer) -> str:
    """The path name of the CAM layer (given or ``cam_layer``'s), checked: its map has the
    input's spatial axes."""
    layer = _graph.path_name(model, cam_layer(model, request.target.feature) if layer is None
                             else layer)
    space = request.x.shape[1:-1]
    if len(_graph.output_shape(model, layer)) - 1 != len(space) or len(space) not in (1, 2, 3):
        raise ValueError(f"a class activation map needs a layer whose map has the input's spatial "
                         f"axes {space} (1, 2 or 3 of them); layer {layer!r} has output shape "
                         f"{_graph.output_shape(model, layer)}")
    return layer


def _maps_and_gradients(model, x, target, layer, batch_size, sign):
    r"""(the request, A = the layer's output, :math:`\partial S / \partial A`) for every image,
    from the one compiled gradient step; the arrays are (N, *spatial, K)."""
    request = _gradient.request(model, x, target, batch_size, sign)
    layer = _check_layer(model, request, layer)
    A, dA = _gradient.gradients(model, request, request.x, wrt=layer)
    return request, A.astype(np.float64), dA.astype(np.float64)


def _finish(request, cam, relu: bool):
    """The map at the layer's resolution (N, *spatial): ReLU (unless ``relu`` is False), then
    upsampled to the input's size, then the request's sign and single-image rules."""
    if relu:
        cam = np.maximum(cam, 0)
    return request.finish(_upsample(cam, request.x.shape[1:-1]))


def grad_cam(model, x, target, layer=None, relu: bool = True, batch_size=BATCH_SIZE,
             sign: str = "signed"):
    r"""Grad-CAM (Selvaraju et al. 2017): a coarse map of where the evidence for the target lies.

    With :math:`A = \y_{(l)}` the output of ``layer`` (default: :func:`cam_layer`, the last spatial
    map before the target), in three steps:

    1. :math:`\alpha_k = \frac{1}{|idx|}\sum_{idx} \partial s / \partial A_{idx,k}`, the gradient
       global-average-pooled: how much map k matters;
    2. :math:`\text{cam} = \mathrm{ReLU}\big(\sum_k \alpha_k A_k\big)` (``relu=False`` keeps the
       negative evidence);
    3. the map, at the layer's resolution, bilinearly upsampled to the input's spatial size.

    Returns (N, H, W, 1) float32, or (H, W, 1) for one image.

    >>> cam = grad_cam(model, x_test[:8], 8)          # layer conv3 for our CNN
    """
    request, A, dA = _maps_and_gradients(model, x, target, layer, batch_size, sign)
    alpha = dA.mean(axis=tuple(range(1, dA.ndim - 1)), keepdims=True)      # step 1
    return _finish(request, (alpha * A).sum(axis=-1), relu)                  # steps 2 and 3


def grad_cam_plus_plus(model, x, target, layer=None, relu: bool = True, batch_size=BATCH_SIZE,
                       sign: str = "signed"):
    r"""Grad-CAM++ (Chattopadhyay et al. 2018): Grad-CAM whose channel weights count every
    location where the map raises the target, not their average gradient.

    The paper explains :math:`Y = \exp(S)` and weighs map k by
    :math:`w_k = \sum_{idx} a_{idx,k} \, \mathrm{ReLU}(\partial Y / \partial A_{idx,k})` with

    .. math::  a_{idx,k} = \frac{\partial^2 Y / \partial A_{idx,k}^2}
               {2\, \partial^2 Y / \partial A_{idx,k}^2
                + \sum_{idx'} A_{idx',k} \; \partial^3 Y / \partial A_{idx,k}^3}

    When S is piecewise linear in A (ReLUs, max pooling and linear layers after the layer: a
    logit of our CNN), :math:`\partial^n Y / \partial A^n = \exp(S)\, g^n` with :math:`g =
    \partial S / \partial A_{idx,k}`, and the exp(S) cancels in a: the paper's closed form

    .. math::  a_{idx,k} = \frac{g^2}{2 g^2 + g^3 \sum_{idx'} A_{idx',k}}, \qquad
               w_k = \sum_{idx} a_{idx,k} \, \mathrm{ReLU}(g), \qquad
               \text{cam} = \mathrm{ReLU}\Big(\sum_k w_k A_k\Big)

    which is what this function computes, from the one gradient g (a = 0 where the denominator
    is 0; there g = 0 too, except on a set of measure zero). We leave out the factor exp(S) > 0 of
    the paper's w_k: it scales every map of an image alike (the shape is the same), and would
    make the scale grow as :math:`e^S`. For a target after a softmax (our CNN's int target, a
    probability) S is not piecewise linear in A and the closed form is the paper's
    approximation; explain ``Feature("logits", k)`` for the exact formula. The peers differ in
    constants: xplique uses the mean of A instead of the sum and averages a ReLU(g) over idx;
    tf-keras-vis and the authors' code divide a by its sum over idx.

    Returns (N, H, W, 1) float32, or (H, W, 1) for one image.

    >>> cam = grad_cam_plus_plus(model, x_test[:8], Feature("logits", 8))
    """
    request, A, g = _maps_and_gradients(model, x, target, layer, batch_size, sign)
    space = tuple(range(1, A.ndim - 1))
    denominator = 2 * g ** 2 + g ** 3 * A.sum(axis=space, keepdims=True)
    a = np.divide(g ** 2, denominator, out=np.zeros_like(g), where=denominator != 0)
    weights = (a * np.maximum(g, 0)).sum(axis=space, keepdims=True)              # w_k
    return _finish(request, (weights * A).sum(axis=-1), relu)


def layer_cam(model, x, target, layer=None, relu: bool = True, batch_size=BATCH_SIZE,
              sign: str = "signed"):
    r"""LayerCAM (Jiang et al. 2021): every location of every map weighed by its own positive
    gradient, so an early layer's fine map works too.

    .. math::  \text{cam}_{idx} = \mathrm{ReLU}\Big(\sum_k \mathrm{ReLU}\big(\partial S /
               \partial A_{idx,k}\big) \, A_{idx,k}\Big)

    at the layer's resolution, bilinearly upsampled to the input's size. Unlike Grad-CAM there is
    no average over idx: a map counts only where it raises the target.

    Returns (N, H, W, 1) float32, or (H, W, 1) for one image.

    >>> cam = layer_cam(model, x_test[:8], 8, layer="conv1")       # a fine, early-layer map
    """
    request, A, g = _maps_and_gradients(model, x, target, layer, batch_size, sign)
    return _finish(request, (np.maximum(g, 0) * A).sum(axis=-1), relu)


# --------------------------------------------------------------------------- Score-CAM


def _min_max(maps):
    """Each map (B, *spatial, 1) scaled to [0, 1] by its own min and max; a constant map -> 0."""
    from keras import ops

    axes = tuple(range(1, len(maps.shape)))
    lo = ops.min(maps, axis=axes, keepdims=True)
    span = ops.max(maps, axis=axes, keepdims=True) - lo
    return ops.divide_no_nan(maps - lo, span)


def _masked_copies(x, A) -> _perturb.Copies:
    """Score-CAM's copies for the perturbation engine: copy i * K + k is image i of x masked by
    its map k of A (N, *spatial, K), upsampled to the input's size and min-max scaled to
    [0, 1]; the copies are made inside the engine's compiled step."""
    from keras import ops

    size = x.shape[1:-1]

    def make(shared, image, rows):
        images = ops.take(shared[0], image, axis=0)
        masks = _min_max(_upsample(rows[0], size))                   # (B, *size, 1)
        return images * ops.cast(masks, images.dtype)

    maps = np.moveaxis(A, -1, 1).reshape((-1,) + A.shape[1:-1]).astype(np.float32)
    return _perturb.Copies(("score-cam", size), make, shared=(x,), per_copy=(maps,))


def _channel_scores(model, request, A):
    """w (N, K): the target on image i masked by its map k, for every (i, k), ``batch_size``
    masked copies per compiled call."""
    n_images, n_channels = len(A), A.shape[-1]
    image = np.repeat(np.arange(n_images), n_channels)
    scores = _perturb.scores(model, request.target, _masked_copies(request.x, A), image,
                             request.batch_size)
    return scores.reshape(n_images, n_channels)


def score_cam(model, x, target, layer=None, relu: bool = True, batch_size=BATCH_SIZE,
              sign: str = "signed"):
    r"""Score-CAM (Wang et al. 2020): each map weighed by the target on the input it lets through.

    For each channel k of the layer's output :math:`A`:

    1. :math:`H_k` = :math:`A_k` bilinearly upsampled to the input's size, scaled to [0, 1] by its
       own min and max (a constant map becomes 0);
    2. :math:`w_k = s(\x \odot H_k)`: the target on the input masked by :math:`H_k`;
    3. :math:`\text{cam} = \mathrm{ReLU}\big(\sum_k w_k A_k\big)` at the layer's resolution,
       bilinearly upsampled like Grad-CAM's.

    The weight is the target's value itself, as in the authors' code and tf-keras-vis, not its
    increase over a baseline :math:`s(\x \odot H_k) - s(\x_b)` of the paper's definition (that
    would subtract :math:`s(\x_b) \sum_k A_k` from the map). The target is what you ask for: our
    CNN's int target is already the softmax probability (the paper's choice);
    ``Feature("logits", k)`` weighs by logits. No gradient is used: K forward passes per image
    (K = the layer's channels), ``batch_size`` masked copies per compiled call.

    Returns (N, H, W, 1) float32, or (H, W, 1) for one image.

    >>> cam = score_cam(model, x_test[:8], 8)          # 64 masked copies per image on conv3
    """
    request = _gradient.request(model, x, target, batch_size, sign)
    layer = _check_layer(model, request, layer)
    A = features.activations(model, request.x, [layer], request.batch_size)[layer]
    weights = _channel_scores(model, request, A)
    cam = (weights.reshape((len(A),) + (1,) * (A.ndim - 2) + (-1,)) * A).sum(axis=-1)
    return _finish(request, cam, relu)
