"""The catalogue of layer kinds (private): what each Keras layer or operation does to the locations
of a feature map, written once. The receptive fields, incremental occlusion and its cost, the
linear twin and the guided rules all ask it.

``kind(op)`` sorts a layer, or an operation recorded when ``s + h`` or ``keras.ops.relu(x)`` is
written on symbolic tensors, into one of these kinds:

- ``POINTWISE``  : the output at a location depends only on the input there (activations,
  batch normalization and dropout at inference, Rescaling, a Dense layer applied to a map, which
  acts on the channels of each location, ...); an elementwise operation of several tensors
  (``x > y``) is a merge.
- ``WINDOW``     : a sliding window: convolutions, pooling, zero padding, cropping; ``window(op)``
  gives its kernel, strides, dilation and padding.
- ``MERGE``      : elementwise over several aligned tensors (Add, Concatenate on channels,
  Multiply, ``s + h``, ...). A *gate* is an input of a merge that is a 1x1 map seen from the whole
  input (squeeze-and-excitation multiplies the map by such a vector): ``is_gate``.
- ``GLOBAL``     : every output depends on every location (global pooling, GroupNormalization,
  Dot).
- ``RESHAPE``    : moves values between locations (Flatten, Reshape, Permute): as far as
  locations go, global too.
- ``ALONG_AXIS`` : acts along one axis (Softmax, LayerNormalization): pointwise when that axis is
  the channels', global otherwise.
- ``REDUCTION``  : an operation reducing over axes (``ops.mean``, ``ops.max``): pointwise over the
  channels (keepdims=True), global over a spatial axis.

None is an unknown kind: no rule fits it. Where the non-linearities are: ``relu_of(layer)`` (the
ReLU a layer applies), ``other_nonlinearity(layer)`` (an element-wise non-linearity that is not
a ReLU), ``is_activation(op)`` (a layer or operation that only applies a non-linearity).

>>> kind(keras.layers.Conv2D(8, 3)), kind(keras.layers.Flatten())
('window', 'reshape')
>>> window(keras.layers.MaxPooling2D(2)).op
'max_pool'
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

POINTWISE, WINDOW, MERGE, GLOBAL, RESHAPE = "pointwise", "window", "merge", "global", "reshape"
ALONG_AXIS, REDUCTION = "along_axis", "reduction"

WINDOWS = (
    ("conv_transpose", "Conv{}DTranspose"), ("conv", "Conv{}D"),
    ("depthwise_conv", "DepthwiseConv{}D"), ("separable_conv", "SeparableConv{}D"),
    ("max_pool", "MaxPooling{}D"), ("average_pool", "AveragePooling{}D"),
    ("pad", "ZeroPadding{}D"), ("crop", "Cropping{}D"),
)
"""(what the window computes, its class name for 1, 2 and 3 spatial axes)."""

ELEMENTWISE_ACTIVATIONS = ("ReLU", "LeakyReLU", "PReLU", "ELU")
"""Layers that only apply an element-wise non-linearity."""

LAYERS = (
    (GLOBAL, ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
              "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
              "GroupNormalization", "Dot")),
    (RESHAPE, ("Flatten", "Reshape", "Permute", "RepeatVector")),
    (POINTWISE, ("InputLayer", "Activation") + ELEMENTWISE_ACTIVATIONS + (
        "BatchNormalization", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
        "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
        "ActivityRegularization", "Rescaling", "Normalization", "Identity", "Masking", "Dense")),
    (ALONG_AXIS, ("Softmax", "LayerNormalization", "UnitNormalization")),
    (MERGE, ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")),
    (WINDOW, tuple(name.format(n) for _, name in WINDOWS for n in (1, 2, 3))),
)
"""(kind, keras.layers class names) in lookup order: a layer is of the kind of the first row it
is an instance of (names this Keras lacks are skipped)."""

APPLICATION_LAYERS = {"LayerScale": POINTWISE, "StochasticDepth": POINTWISE,
                      "CustomScaleLayer": MERGE}
"""Layers that keras.applications defines for itself, by class name (only for classes of a
``keras.`` module): ConvNeXt's LayerScale (y = gamma_k x, a per-channel scale) and
StochasticDepth (the identity at inference), Inception-ResNet's CustomScaleLayer (a + scale b)."""

OP_ACTIVATIONS = (
    "Relu", "Relu6", "Sigmoid", "HardSigmoid", "Silu", "HardSilu", "Gelu", "Elu", "Selu", "Celu",
    "LeakyRelu", "Softplus", "Softsign", "LogSigmoid", "HardTanh", "HardShrink", "SoftShrink",
    "TanhShrink", "Squareplus", "SparsePlus", "SparseSigmoid", "Threshold", "Tanh", "Clip", "Abs",
    "Absolute", "Sign", "Floor", "Ceil", "Round", "Trunc", "StopGradient")
"""Elementwise operations that are not linear (or have no gradient)."""

OPERATIONS = (
    (POINTWISE, OP_ACTIVATIONS + (
        "Negative", "Exp", "Exp2", "Expm1", "Log", "Log2", "Log10", "Log1p", "Sqrt", "Rsqrt",
        "Square", "Reciprocal", "Cbrt", "Sin", "Cos", "Tan", "Sinh", "Cosh", "Arctan", "Erf",
        "Erfc", "Cast", "Copy", "NanToNum", "Greater", "GreaterEqual", "Less", "LessEqual",
        "Equal", "NotEqual", "LogicalNot", "LogicalAnd", "LogicalOr", "LogicalXor")),
    (MERGE, ("Add", "Subtract", "Multiply", "Divide", "TrueDivide", "FloorDivide", "DivideNoNan",
             "Maximum", "Minimum", "Fmax", "Fmin", "Power", "Mod", "Fmod", "Where", "Hypot",
             "Arctan2", "Logaddexp", "Heaviside", "Concatenate")),
    (REDUCTION, ("Mean", "Sum", "Max", "Min", "Amax", "Amin", "Prod", "Std", "Var", "Logsumexp",
                 "Median", "All", "Any", "Nanmean", "Nansum", "Nanmax", "Nanmin")),
    (ALONG_AXIS, ("Softmax", "LogSoftmax", "Normalize")),
    (RESHAPE, ("Reshape", "Transpose", "Ravel", "Moveaxis", "Swapaxes")),
)
"""(kind, operation class names): the keras.ops operations Keras records on symbolic tensors,
looked up by class name."""


def classes(*names) -> tuple:
    """The keras.layers classes of these names that this Keras has."""
    import keras

    return tuple(c for c in (getattr(keras.layers, n, None) for n in names) if c is not None)


@functools.cache
def _layer_table() -> tuple:
    """LAYERS with the class names resolved in this Keras."""
    return tuple((kind, classes(*names)) for kind, names in LAYERS)


def is_operation(op) -> bool:
    """Whether ``op`` is a keras.ops operation node (``s + h``), not a layer."""
    import keras

    return not isinstance(op, keras.layers.Layer)


def _kind_by_name(op):
    """The kind of an operation (OPERATIONS) or of a keras.applications layer, by class name."""
    name = type(op).__name__
    if is_operation(op):
        return next((kind for kind, names in OPERATIONS if name in names), None)
    if type(op).__module__.startswith("keras."):
        return APPLICATION_LAYERS.get(name)
    return None


def kind(op, pointwise=()) -> str | None:
    """The kind of layer or operation ``op`` (one of the constants above), or None when unknown.

    One named in ``pointwise`` (by class name or name) is pointwise, unless its class is global
    or a reshape.

    >>> kind(keras.layers.Add()), kind(keras.layers.GlobalAveragePooling2D())
    ('merge', 'global')
    """
    named = type(op).__name__ in pointwise or op.name in pointwise
    found = _kind_by_name(op)
    if found is not None:
        return found
    for row, row_classes in _layer_table():
        if isinstance(op, row_classes) or (named and row == POINTWISE):
            return row
    return POINTWISE if named else None


def is_gate(spatial, local: bool) -> bool:
    """Whether a tensor of ``spatial`` shape, broadcast in a merge, is a gate: a 1x1 map whose
    value is not local (it sees the whole input, as squeeze-and-excitation's pooled vector)."""
    return not local and all(n == 1 for n in spatial)


# --------------------------------------------------------------------------- windows


def _tuple(value, n) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _pairs(value, n) -> tuple:
    """A ZeroPadding or Cropping argument as n (left, right) pairs."""
    if n == 1:
        value = value if isinstance(value, (tuple, list)) else (value, value)
        return (tuple(value),)
    return tuple(tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in _tuple(value, n))


@dataclass(frozen=True)
class Window:
    """A sliding-window layer, per spatial axis.

    layer      : the layer
    op         : what it computes: "conv", "depthwise_conv", "separable_conv", "conv_transpose",
                 "max_pool", "average_pool", "pad" (zero padding) or "crop"
    rank       : its number of spatial axes
    keras_call : whether it computes as its Keras class does (a subclass may override ``call``)

    Its ``kernel``, ``strides``, ``dilation`` (tuples) and ``padding`` ("valid", "same",
    "causal"; for "pad" and "crop" the (left, right) pairs added per axis, negative for
    cropping) are read from the layer when asked.
    """

    layer: object
    op: str
    rank: int
    keras_call: bool

    @property
    def kernel(self) -> tuple:
        if self.op in ("pad", "crop"):
            return (1,) * self.rank
        size = self.layer.pool_size if self.op.endswith("pool") else self.layer.kernel_size
        return _tuple(size, self.rank)

    @property
    def strides(self) -> tuple:
        if self.op in ("pad", "crop"):
            return (1,) * self.rank
        strides = self.layer.strides
        if strides is None:                                  # pooling: the pool size
            strides = self.layer.pool_size
        return _tuple(strides, self.rank)

    @property
    def dilation(self) -> tuple:
        if self.op.startswith(("conv", "depthwise", "separable")):
            return _tuple(self.layer.dilation_rate, self.rank)
        return (1,) * self.rank

    @property
    def padding(self):
        if self.op == "pad":
            return _pairs(self.layer.padding, self.rank)
        if self.op == "crop":
            return tuple((-a, -b) for a, b in _pairs(self.layer.cropping, self.rank))
        return str(self.layer.padding).lower()


@functools.cache
def _window_table() -> tuple:
    """(class, op, rank) of every window class this Keras has."""
    return tuple((cls, op, n) for op, name in WINDOWS for n in (1, 2, 3)
                 for cls in classes(name.format(n)))


def window(layer) -> Window | None:
    """The Window of a sliding-window layer (the first class of WINDOWS it is an instance of),
    else None.

    >>> w = window(keras.layers.Conv2D(8, 3, strides=2, padding="same"))
    >>> w.op, w.kernel, w.strides, w.padding
    ('conv', (3, 3), (2, 2), 'same')
    """
    for cls, op, n in _window_table():
        if isinstance(layer, cls):
            return Window(layer, op, n, type(layer).call is cls.call)
    return None


# --------------------------------------------------------------------------- non-linearities


OPERATION_RELUS = {"Relu": "relu", "Relu6": "relu6"}
"""The ``keras.ops`` nodes of a functional graph that are ReLUs (``keras.ops.relu(h)``), with the
``tf.nn`` function each applies."""


def relu_of(layer):
    """The forward ReLU that ``layer`` applies, or None.

    Four forms: a ReLU as a layer's activation (``Conv2D(..., activation="relu")``,
    ``Activation("relu")``), a ``ReLU`` layer (possibly with max_value, negative_slope or
    threshold, whose own forward function is returned), or a ``keras.ops.relu`` (or relu6) node of
    a functional graph.

    >>> relu_of(keras.layers.Conv2D(8, 3, activation="relu"))        # tf.nn.relu
    """
    import keras
    import tensorflow as tf

    if is_operation(layer):
        name = OPERATION_RELUS.get(type(layer).__name__)
        return None if name is None else getattr(tf.nn, name)
    if isinstance(layer, keras.layers.ReLU):
        c = layer.get_config()
        if c.get("max_value") is None and not c.get("negative_slope") and not c.get("threshold"):
            return tf.nn.relu
        return lambda z: keras.activations.relu(z, negative_slope=c["negative_slope"],
                                                max_value=c["max_value"], threshold=c["threshold"])
    activation = getattr(layer, "activation", None)
    if any(activation is f for f in (keras.activations.relu, keras.ops.relu, tf.nn.relu)):
        return tf.nn.relu
    return None


def other_nonlinearity(layer) -> str | None:
    """The element-wise non-linearity ``layer`` applies that is not a ReLU (tanh, GELU, swish,
    ELU, LeakyReLU, a sigmoid gate...), by name; None for a ReLU, a linear layer, a softmax
    (not element-wise) or a nested model (whose own layers are asked instead).

    >>> other_nonlinearity(keras.layers.Conv2D(8, 3, activation="gelu"))
    'gelu'
    >>> other_nonlinearity(keras.layers.LeakyReLU()), other_nonlinearity(keras.layers.ReLU())
    ('LeakyReLU', None)
    """
    import keras

    if isinstance(layer, keras.Model) or relu_of(layer) is not None:
        return None
    if is_operation(layer):                   # keras.ops.sigmoid(h), ...: OP_ACTIVATIONS
        return type(layer).__name__ if is_activation(layer) else None
    if isinstance(layer, classes(*ELEMENTWISE_ACTIVATIONS)):
        return type(layer).__name__
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    return None if name in ("linear", "softmax") else name


def is_activation(op) -> bool:
    """Whether layer or operation ``op`` only applies a non-linearity: an activation layer
    (ReLU, LeakyReLU, PReLU, ELU, Softmax; an ``Activation`` layer is a layer with an
    ``activation``) or an operation of OP_ACTIVATIONS (``ops.relu``, ``ops.tanh``...)."""
    if is_operation(op):
        return type(op).__name__ in OP_ACTIVATIONS
    return isinstance(op, classes(*ELEMENTWISE_ACTIVATIONS, "Softmax"))


def is_max_or_min(op) -> bool:
    """Whether layer or operation ``op`` takes the elementwise maximum or minimum of tensors."""
    if is_operation(op):
        return type(op).__name__ in ("Maximum", "Minimum")
    return isinstance(op, classes("Maximum", "Minimum"))
