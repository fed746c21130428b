r"""Canonization: the linear layers as maps :math:`z = W a + b`, and BatchNormalization folded
into the linear layer before it.

At inference, BatchNormalization is an affine map per channel k,
:math:`\mathrm{BN}(z)_k = \gamma_k \frac{z_k - \mu_k}{\sqrt{\sigma_k^2 + \epsilon}} + \beta_k =
s_k z_k + t_k`, so a linear layer followed by it is one linear layer with

.. math::  W'_{\cdot k} = s_k W_{\cdot k}, \qquad b'_k = s_k (b_k - \mu_k) + \beta_k

(zennit's ``MergeBatchNorm``). The LRP rules see that one layer (:math:`W'`, :math:`b'`): a rule
shares the relevance of :math:`\mathrm{BN}(z)` among the layer's inputs as if it were one
convolution, which is what it is. The forward pass is not changed.

>>> kernel, bias = fold(layer.kernel, layer.bias, bn)        # W', b' of Conv -> BN
"""
from __future__ import annotations

LINEAR = ("Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
          "SeparableConv1D", "SeparableConv2D")
"""The linear layers a rule applies to (by class name; subclasses too)."""


def is_linear(layer) -> bool:
    """Whether ``layer`` is one of the ``LINEAR`` layers (a subclass counts)."""
    return any(type(layer).__name__ == name or
               any(c.__name__ == name and c.__module__.startswith("keras")
                   for c in type(layer).__mro__) for name in LINEAR)


def linear_kind(layer) -> str:
    """The first ``LINEAR`` class name in the layer's class hierarchy."""
    for c in type(layer).__mro__:
        if c.__name__ in LINEAR:
            return c.__name__
    raise TypeError(f"layer {layer.name!r} ({type(layer).__name__}) is not linear")


def stages(layer) -> list:
    r"""The linear maps the layer applies one after the other (before its activation), each as
    (function (a, kernel, bias) -> z, kernel variable, bias variable or None). A separable
    convolution is two: the depthwise one, then the 1x1 pointwise one (with the bias), so a rule
    applies to each as in a network written with two layers.

    >>> [f for f, w, b in stages(keras.layers.Dense(3))]    # one map: a @ W + b"""
    from keras import ops

    def add_bias(z, bias):
        return z if bias is None else z + bias

    kind = linear_kind(layer)
    bias = layer.bias if layer.use_bias else None
    if kind == "Dense":
        return [(lambda a, w, b: add_bias(ops.matmul(a, w), b), layer.kernel, bias)]
    strides, padding, dilation = layer.strides, layer.padding, layer.dilation_rate
    if kind.startswith("Conv"):
        return [(lambda a, w, b: add_bias(layer.convolution_op(a, w), b), layer.kernel, bias)]

    def depthwise(a, w, b):
        return add_bias(ops.depthwise_conv(a, w, strides, padding, "channels_last", dilation), b)

    if kind.startswith("Depthwise"):
        return [(depthwise, layer.kernel, bias)]

    def pointwise(a, w, b):
        return add_bias(ops.conv(a, w, 1, "valid", "channels_last"), b)

    return [(depthwise, layer.depthwise_kernel, None), (pointwise, layer.pointwise_kernel, bias)]


def bn_scale_shift(bn):
    r"""(:math:`s`, :math:`t`) of BatchNormalization ``bn`` at inference:
    :math:`\mathrm{BN}(z) = s z + t` per channel."""
    from keras import ops

    gamma = bn.gamma if bn.scale else 1.0
    beta = bn.beta if bn.center else 0.0
    scale = gamma / ops.sqrt(bn.moving_variance + bn.epsilon)
    return scale, beta - scale * bn.moving_mean


def fold(kernel, bias, bn):
    r"""(:math:`W'`, :math:`b'`): the kernel and bias of a linear layer followed by the
    BatchNormalization ``bn``, as one linear layer (the output channel is the kernel's last
    axis; a depthwise kernel (kh, kw, C, M) has output channel c*M + m).

    >>> kernel, bias = fold(conv.kernel, conv.bias, bn)"""
    from keras import ops

    scale, shift = bn_scale_shift(bn)
    kernel = ops.convert_to_tensor(kernel)
    shape = ops.shape(kernel)
    folded = ops.reshape(ops.reshape(kernel, (-1, ops.size(scale))) * scale, shape)
    bias = 0.0 if bias is None else bias
    return folded, scale * bias + shift


def foldable_batch_norms(model) -> dict:
    """{path name of a BatchNormalization: the linear layer it folds into} for every
    BatchNormalization (nested models entered) whose only input is the output of a linear layer
    without activation that nothing else reads."""
    from .. import _graph

    found = {}
    for name, path in _graph.walk(model):
        layer = path[-1]
        if type(layer).__name__ != "BatchNormalization" or len(layer._inbound_nodes) != 1:
            continue
        inputs = layer._inbound_nodes[0].input_tensors
        source = inputs[0]._keras_history.operation if len(inputs) == 1 else None
        if source is None or not is_linear(source) or len(source._outbound_nodes) != 1:
            continue
        if getattr(source.activation, "__name__", "") != "linear" or layer.axis not in (-1, len(
                source.output.shape) - 1):
            continue
        found[name] = source
    return found
