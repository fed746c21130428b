"""A practitioner's own model: nested bases (transfer learning) in one graph, subclassed models,
channels_first and integer-input models refused clearly, non-ReLU activations named under the
guided rules."""
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from cnn_helper import (  # internal contract: the replayed forward pass
    Feature,
    _graph,
    features,
    inverting,
    max_activation,
    occlusion,
    receptive_field,
    saliency,
)


def _images(n, shape, seed=0):
    return np.random.default_rng(seed).random((n,) + shape).astype("float32")


def _tape_gradient(model, x, k):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = model(x, training=False)[:, k]
    return tape.gradient(s, x).numpy()


# --------------------------------------------------------------------------- transfer learning


def _small_base(name="base"):
    """A functional feature extractor, the shape of MobileNetV2(include_top=False) in small."""
    keras.utils.set_random_seed(1)
    i = keras.Input((12, 12, 3))
    x = layers.Conv2D(6, 3, activation="relu", name="b_conv1")(i)
    x = layers.Conv2D(8, 3, strides=2, name="b_conv2")(x)
    x = layers.ReLU(name="out_relu")(x)
    return keras.Model(i, x, name=name)


def _functional_head(base):
    i = keras.Input((12, 12, 3))
    out = layers.Dense(3, name="head")(layers.GlobalAveragePooling2D(name="gap")(base(i)))
    return keras.Model(i, out, name="transfer")


def _sequential_head(base):
    return keras.Sequential([keras.Input((12, 12, 3)), base, layers.GlobalAveragePooling2D(),
                             layers.Dense(3, name="head")], name="transfer_seq")


@pytest.fixture(scope="module", params=["functional", "sequential"])
def transfer(request):
    base = _small_base()
    return (_functional_head if request.param == "functional" else _sequential_head)(base)


def _brute_grad_cam(model, base, x, k, inner):
    """Grad-CAM by hand: the base split at ``inner`` into A = f(x) and the rest, run by Keras."""
    a_model = keras.Model(base.inputs[0], base.get_layer(inner).output)
    a = tf.constant(a_model(x))
    rest_in = keras.Input(a.shape[1:])
    y, after = rest_in, False
    for layer in base.layers:
        if after:
            y = layer(y)
        after = after or layer.name == inner
    head = [layer for layer in model.layers if layer is not base and
            not isinstance(layer, keras.layers.InputLayer)]
    for layer in head:
        y = layer(y)
    rest = keras.Model(rest_in, y)
    with tf.GradientTape() as tape:
        tape.watch(a)
        s = rest(a)[:, k]
    g = tape.gradient(s, a).numpy()
    cam = np.maximum((g.mean(axis=(1, 2), keepdims=True) * a.numpy()).sum(-1), 0)
    return cam


@pytest.mark.parametrize("inner", ["out_relu", "b_conv1"])
def test_grad_cam_on_an_inner_layer_of_a_transfer_learning_model(transfer, inner):
    base = transfer.layers[0] if isinstance(transfer, keras.Sequential) else transfer.layers[1]
    x = _images(4, (12, 12, 3))
    by_name = saliency.grad_cam(transfer, x, 2, layer=inner)
    by_path = saliency.grad_cam(transfer, x, 2, layer=f"{base.name}/{inner}")
    np.testing.assert_array_equal(by_name, by_path)
    expected = _brute_grad_cam(transfer, base, x, 2, inner)
    got = tf.image.resize(tf.constant(expected[..., None]), (12, 12), "bilinear").numpy()
    np.testing.assert_allclose(by_name, got, rtol=1e-4, atol=1e-6 * np.abs(got).max())
    assert np.ptp(by_name) > 0


def test_the_default_grad_cam_layer_is_the_bases_last_feature_map(transfer):
    base_name = [n for n in _graph.layer_names(transfer) if n.endswith("/out_relu")][0]
    assert saliency.cam_layer(transfer, 2) == base_name
    x = _images(3, (12, 12, 3))
    np.testing.assert_array_equal(saliency.grad_cam(transfer, x, 2),
                                  saliency.grad_cam(transfer, x, 2, layer=base_name))


def test_every_method_takes_inner_layers_of_a_nested_model(transfer):
    x = _images(6, (12, 12, 3))
    target = Feature("b_conv2", 5)
    expected = np.asarray(keras.Model(transfer.inputs[0], _inner_output(transfer, "b_conv2"))(
        x))[..., 5].max((1, 2))
    np.testing.assert_allclose(features.feature_values(transfer, x, target).values, expected,
                               rtol=1e-5)
    np.testing.assert_allclose(_tape_gradient(transfer, x, 1), saliency.gradient(transfer, x, 1),
                               rtol=1e-4, atol=1e-7)
    assert saliency.gradient(transfer, x, target).shape == x.shape
    assert occlusion.sensitivity_map(transfer, x[0], target, patch=4, stride=4).values.shape \
        == (3, 3)
    scans = max_activation.scan(transfer, x, ["b_conv2", "head"], count=2, progress=False)
    np.testing.assert_allclose(scans["b_conv2"].channel(5).high.values, np.sort(expected)[::-1][:2],
                               rtol=1e-5)
    assert receptive_field.region(transfer, "b_conv2", (1, 1)) == (slice(2, 7), slice(2, 7))
    zf = inverting.zeiler_fergus(transfer, x, target, count=2)
    assert zf.regions[0] == receptive_field.region(transfer, "b_conv2", zf.locations[0])


def _inner_output(model, name):
    """The inner layer's output in ``model``'s own graph, built by hand with Keras."""
    y = model.inputs[0]
    base = [layer for layer in model.layers if isinstance(layer, keras.Model)][0]
    for layer in base.layers[1:]:
        y = layer(y)
        if layer.name == name:
            return y
    raise AssertionError(name)


def test_a_nested_base_runs_once_with_an_inner_layer_and_the_head():
    """Reading an inner layer and the head together runs each convolution of the base once."""
    base = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35,
                                          input_shape=(32, 32, 3))
    i = keras.Input((32, 32, 3))
    model = keras.Model(i, layers.Dense(3)(layers.GlobalAveragePooling2D()(base(i))))
    forward = _graph.forward(model, [f"{base.name}/block_3_expand_relu", model.layers[-1].name])
    graph = forward.get_concrete_function().graph
    convs = [op for op in graph.get_operations()
             if op.type in ("Conv2D", "DepthwiseConv2dNative")]
    n_conv_layers = sum(isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D))
                        for layer in base.layers)
    assert len(convs) == n_conv_layers
    x = _images(2, (32, 32, 3))
    inner, head = forward(x)
    np.testing.assert_allclose(head, model(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(inner, keras.Model(base.inputs[0], base.get_layer(
        "block_3_expand_relu").output)(x), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- subclassed models


class _Net(keras.Model):
    def __init__(self):
        super().__init__(name="net")
        self.c1 = layers.Conv2D(4, 3, activation="relu", name="c1")
        self.c2 = layers.Conv2D(5, 3, activation="relu", name="c2")
        self.pool = layers.GlobalAveragePooling2D(name="gap")
        self.head = layers.Dense(3, name="head")

    def call(self, x):
        return self.head(self.pool(self.c2(self.c1(x))))


class _TfOpsNet(_Net):
    def call(self, x):
        return self.head(self.pool(self.c2(self.c1(tf.image.flip_left_right(x)))))


def test_a_subclassed_model_that_was_called_works_with_every_method():
    keras.utils.set_random_seed(2)
    model, x = _Net(), _images(5, (10, 10, 1))
    model(x[:1])
    np.testing.assert_allclose(saliency.gradient(model, x, 1), _tape_gradient(model, x, 1),
                               rtol=1e-4, atol=1e-7)
    maps = np.asarray(model.c1(x))
    np.testing.assert_allclose(features.feature_values(model, x, Feature("c1", 2)).values,
                               maps[..., 2].max((1, 2)), rtol=1e-6)
    for method in (saliency.guided_backprop, saliency.deconvnet, saliency.grad_cam):
        s = method(model, x, 0)
        assert s.shape[:3] == x.shape[:3] and np.isfinite(s).all() and np.ptp(s) > 0
    assert occlusion.sensitivity_map(model, x[0], 1, patch=3, stride=3).values.shape == (4, 4)
    assert receptive_field.region(model, "c2", (2, 2)) == (slice(2, 7), slice(2, 7))
    assert max_activation.scan(model, x, "c2", count=2, progress=False)["c2"].n_scanned == 5


def test_subclassed_models_get_advice_that_fits_them():
    x = _images(2, (10, 10, 1))
    with pytest.raises(TypeError, match=r"call it once on a batch of images \(model\(x\[:1\]\)\)"):
        saliency.gradient(_Net(), x, 0)
    traced_badly = _TfOpsNet()
    traced_badly(x)
    with pytest.raises(TypeError, match="whose call\\(\\) cannot be traced.*Keras layers and "
                                        "keras.ops only"):
        saliency.gradient(traced_badly, x, 0)


# --------------------------------------------------------------------------- refused clearly


def _channels_first():
    i = keras.Input((1, 8, 8))
    y = layers.Conv2D(3, 3, data_format="channels_first", name="cf")(i)
    return keras.Model(i, layers.Dense(2)(layers.Flatten()(y)))


@pytest.mark.parametrize("call", [
    lambda m, x: saliency.gradient(m, x, 0),
    lambda m, x: saliency.grad_cam(m, x, 0),
    lambda m, x: features.feature_values(m, x, Feature("cf", 1)),
    lambda m, x: max_activation.scan(m, x, "cf", progress=False),
    lambda m, x: occlusion.sensitivity_map(m, x[0], 0),
    lambda m, x: receptive_field.region(m, "cf", (0, 0)),
], ids=["gradient", "grad_cam", "feature_values", "scan", "occlusion", "region"])
def test_channels_first_models_are_refused_everywhere(call):
    with pytest.raises(ValueError, match=r"channels_first layers \['cf'\].*data_format="
                                         r"'channels_last'"):
        call(_channels_first(), _images(2, (1, 8, 8)))


def test_a_uint8_input_model_has_no_gradient_and_says_so():
    i = keras.Input((8, 8, 1), dtype="uint8")
    y = layers.Conv2D(2, 3, activation="relu", name="c")(layers.Rescaling(1 / 255)(i))
    model = keras.Model(i, layers.Dense(2)(layers.Flatten()(y)))
    x = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1)).astype("float32")
    for method in (saliency.gradient, saliency.smoothgrad, saliency.grad_cam):
        with pytest.raises(ValueError, match="takes uint8 images.*no gradient with respect to "
                                             "integers.*dtype='float32'"):
            method(model, x, 0)
    expected = np.asarray(model(x.astype("uint8")))[:, 1]
    np.testing.assert_allclose(features.feature_values(model, x, 1).values, expected, rtol=1e-6)


# --------------------------------------------------------------------------- non-ReLU activations


def test_guided_rules_name_the_non_relu_layers_they_leave_alone():
    i = keras.Input((8, 8, 1))
    y = layers.Conv2D(3, 3, activation="relu", name="r")(i)
    y = layers.Conv2D(3, 3, activation="gelu", name="g")(y)
    y = layers.LeakyReLU(name="leaky")(y)
    y = layers.Activation("tanh", name="t")(y)
    model = keras.Model(i, layers.Dense(2, activation="softmax", name="probs")(layers.Flatten()(y)))
    assert saliency.other_nonlinearities(model) == ("g", "leaky", "t")
    for method in (saliency.guided_backprop, saliency.deconvnet):
        with pytest.warns(UserWarning, match=r"ReLUs only; layers \['g', 'leaky', 't'\]"):
            method(model, _images(1, (8, 8, 1)), 0)
    relu_only = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(2, 3, activation="relu"),
                                  layers.Flatten(), layers.Dense(2, activation="softmax")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saliency.guided_backprop(relu_only, _images(1, (8, 8, 1)), 0)


# --------------------------------------------------------------------------- caches


@pytest.mark.parametrize("kind", ["nested", "subclassed"])
def test_what_the_package_builds_for_a_model_dies_with_it(kind):
    """Twins, clones, compiled steps and replay programs are cached per model but never keep it
    alive: a notebook that builds many models does not pile them up."""
    import gc
    import weakref

    x = _images(3, (12, 12, 3))
    model = _functional_head(_small_base()) if kind == "nested" else _Net()
    model(x[:1])
    for method in (saliency.gradient, saliency.guided_backprop, saliency.grad_cam):
        method(model, x, 1)
    max_activation.scan(model, x, "head", count=2, progress=False)
    occlusion.sensitivity_map(model, x[0], 1, patch=6, stride=6)
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None
