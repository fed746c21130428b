"""The models practitioners have: every public method on each, its result checked for plausibility
(shape, finite, not constant) and for batch_size invariance; gradients against GradientTape.

Two zoos: small models of each kind users build (a transfer-learning head on a nested base, a
Rescaling front-end for [0, 255] images, a residual written ``s + h``, a subclassed model, mixed
precision), on which every method runs; and every keras.applications family at 32x32 with
``weights=None``, on which the methods with their own code path run (the gradient, a rule's clone,
Grad-CAM's default layer, the forward pass of a scan).
"""
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from cnn_helper import (
    Feature,
    features,
    inverting,
    max_activation,
    occlusion,
    saliency,
)


def _conv_stack(y, name="conv"):
    y = layers.Conv2D(4, 3, activation="relu", name=name)(y)
    y = layers.MaxPooling2D(name="pool")(y)
    return layers.Conv2D(6, 3, activation="relu", name="conv2")(y)


def _head(y):
    return layers.Dense(3, name="head", dtype="float32")(layers.GlobalAveragePooling2D()(y))


def rescaling():
    """[0, 255] images, scaled inside the model."""
    i = keras.Input((16, 16, 3))
    return keras.Model(i, _head(_conv_stack(layers.Rescaling(1 / 255)(i))), name="rescaling")


def residual_plus():
    """A residual block written with ``+`` (a Keras op, not an Add layer)."""
    i = keras.Input((16, 16, 3))
    s = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(i)
    h = layers.Conv2D(4, 3, padding="same", name="conv_h")(s)
    return keras.Model(i, _head(layers.ReLU()(s + h)), name="residual_plus")


def transfer():
    """A classifier head on a nested functional base."""
    b_in = keras.Input((16, 16, 3))
    base = keras.Model(b_in, _conv_stack(b_in), name="base")
    i = keras.Input((16, 16, 3))
    return keras.Model(i, _head(base(i)), name="transfer")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.conv = layers.Conv2D(4, 3, activation="relu", name="conv")
        self.conv2 = layers.Conv2D(6, 3, activation="relu", name="conv2")
        self.pool = layers.GlobalAveragePooling2D()
        self.head = layers.Dense(3, name="head")

    def call(self, x):
        return self.head(self.pool(self.conv2(self.conv(x))))


def subclassed():
    model = Subclassed()
    model(np.zeros((1, 16, 16, 3), "float32"))
    return model


def mixed_precision():
    """Layers computing in float16 (keras.mixed_precision), a float32 head."""
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        i = keras.Input((16, 16, 3))
        return keras.Model(i, _head(_conv_stack(i)), name="mixed_precision")
    finally:
        keras.config.set_dtype_policy(old)


SMALL = {f.__name__: f for f in (rescaling, residual_plus, transfer, subclassed, mixed_precision)}


@pytest.fixture(scope="module", params=list(SMALL))
def small(request):
    keras.utils.set_random_seed(3)
    model = SMALL[request.param]()
    scale = 255.0 if request.param == "rescaling" else 1.0
    x = np.random.default_rng(3).random((4, 16, 16, 3)).astype("float32") * scale
    return model, x


def _feature(model):
    return Feature("conv", 1)


METHODS = {
    "activations": lambda m, x, b: features.activations(m, x, ["conv"], batch_size=b)["conv"],
    "feature_values": lambda m, x, b: features.feature_values(m, x, _feature(m), b).values,
    "gradient": lambda m, x, b: saliency.gradient(m, x, 1, batch_size=b),
    "gradient_x_input": lambda m, x, b: saliency.gradient_x_input(m, x, 1, batch_size=b),
    "guided_backprop": lambda m, x, b: saliency.guided_backprop(m, x, 1, batch_size=b),
    "deconvnet": lambda m, x, b: saliency.deconvnet(m, x, 1, batch_size=b),
    "smoothgrad": lambda m, x, b: saliency.smoothgrad(m, x, 1, n_samples=3, batch_size=b),
    "integrated_gradients": lambda m, x, b: saliency.integrated_gradients(
        m, x, 1, n_samples=4, batch_size=b),
    "grad_cam": lambda m, x, b: saliency.grad_cam(m, x, 1, relu=False, batch_size=b),
    "grad_cam_inner": lambda m, x, b: saliency.grad_cam(m, x, 1, layer="conv", relu=False,
                                                        batch_size=b),
    "sensitivity_map": lambda m, x, b: occlusion.sensitivity_map(
        m, x, 1, patch=4, stride=4, batch_size=b).delta,
    "top_examples": lambda m, x, b: max_activation.top_examples(
        m, x, _feature(m), count=2, batch_size=b).high.values,
    "scan": lambda m, x, b: max_activation.scan(
        m, x, ["conv", "head"], count=2, batch_size=b, progress=False)["conv"].high.values,
    "zeiler_fergus": lambda m, x, b: inverting.zeiler_fergus(
        m, x, _feature(m), count=2, batch_size=b).saliency,
}


def plausible(result, batch_result):
    """Finite, not constant, the same whatever the batch size (up to float16 rounding)."""
    result = np.asarray(result, dtype=np.float64)
    assert np.isfinite(result).all()
    assert np.ptp(result) > 0
    np.testing.assert_allclose(batch_result, result, rtol=2e-3, atol=2e-3 * np.abs(result).max())


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_on_every_kind_of_small_model(small, method):
    model, x = small
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # mixed precision: guided rules name its layers
        one_by_one = METHODS[method](model, x, 1)
        together = METHODS[method](model, x, "auto")
    plausible(one_by_one, together)


def tape_gradient(model, x, k):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.cast(model(x, training=False)[:, k], tf.float32)
    return tape.gradient(s, x).numpy()


def test_gradients_of_small_models_equal_gradient_tape(small):
    model, x = small
    expected = tape_gradient(model, x, 2)
    np.testing.assert_allclose(saliency.gradient(model, x, 2), expected, rtol=1e-3,
                               atol=1e-3 * np.abs(expected).max())


# --------------------------------------------------------------------------- keras.applications


FAMILIES = ["VGG16", "ResNet50", "MobileNetV2", "EfficientNetB0", "DenseNet121", "ConvNeXtTiny"]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    keras.utils.set_random_seed(4)
    model = getattr(keras.applications, request.param)(weights=None, input_shape=(32, 32, 3),
                                                       classes=3)
    x = np.random.default_rng(4).random((2, 32, 32, 3)).astype("float32") * 255
    return model, x


def _guided_warnings(model, x):
    """guided_backprop on ``model``: its result and the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = saliency.guided_backprop(model, x, 1)
    return s, [str(w.message) for w in caught]


def test_a_family_gradient_rule_clone_grad_cam_and_scan(family):
    model, x = family
    expected = tape_gradient(model, x, 1)
    got = saliency.gradient(model, x, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    plausible(got, saliency.gradient(model, x, 1, batch_size=1))

    guided, messages = _guided_warnings(model, x)
    assert guided.shape == x.shape and np.isfinite(guided).all()
    others = saliency.other_nonlinearities(model)
    if model.name in ("efficientnetb0", "convnext_tiny"):     # swish, GELU: not one ReLU
        assert any("has no ReLU that guided can change" in m for m in messages)
        np.testing.assert_array_equal(guided, got)
    elif others:                                  # ReLU networks with other non-linearities
        assert any("ReLUs only" in m and others[0] in m for m in messages)
    else:
        assert messages == []
        assert np.abs(guided - got).max() > 1e-3 * np.abs(got).max()      # the rule acted

    cam = saliency.grad_cam(model, x, 1, relu=False)       # batch_size invariance: small zoo
    assert cam.shape == x.shape[:3] + (1,) and np.isfinite(cam).all() and np.ptp(cam) > 0

    head = model.layers[-1].name
    scans = max_activation.scan(model, x, [model.layers[3].name, head], count=1, progress=False)
    np.testing.assert_allclose(scans[head].high.values[:, 0], np.asarray(model(x)).max(axis=0),
                               rtol=1e-5)
