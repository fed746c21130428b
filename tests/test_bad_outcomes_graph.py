"""Bad outcomes of issue 28 around the model's graph: a Lambda layer under the guided rules, a
called subclassed model wrapped in a functional model, and a list of images of different shapes.
"""
import warnings

import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import Feature, cam, features, saliency, sanity_checks


def _images(n, shape, seed=0):
    return np.random.default_rng(seed).random((n,) + shape).astype("float32")


# --------------------------------------------------------------------------- a Lambda layer


def _with_lambda(rectifier):
    """conv c1 (linear) -> ``rectifier`` named "lam" -> conv c2 (ReLU) -> pooling -> head."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((10, 10, 1))
    h = rectifier(layers.Conv2D(4, 3, name="c1")(inp))
    h = layers.Conv2D(5, 3, activation="relu", name="c2")(h)
    out = layers.Dense(3, name="head")(layers.GlobalAveragePooling2D(name="gap")(h))
    return keras.Model(inp, out, name="with_lambda")


@pytest.mark.parametrize("rule", ["guided_backprop", "deconvnet"])
def test_the_guided_rules_run_on_a_functional_model_with_a_lambda(rule):
    """The Lambda's relu is a function cnn_helper cannot see inside: it keeps its plain gradient
    (the warning names it), as a LeakyReLU of slope 0, the same function, does."""
    model = _with_lambda(layers.Lambda(lambda t: keras.ops.relu(t), name="lam"))
    same = _with_lambda(layers.LeakyReLU(negative_slope=0.0, name="lam"))
    same.set_weights(model.get_weights())
    x = _images(3, (10, 10, 1))
    method = getattr(saliency, rule)
    with pytest.warns(UserWarning, match=r"\['lam'\].*Lambda"):
        s = method(model, x, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = method(same, x, 1)
    np.testing.assert_allclose(s, expected, rtol=1e-5, atol=1e-7)
    assert np.ptp(s) > 0
    assert saliency.relus_changed(model, "guided") == ("c2",)
    assert saliency.opaque_layers(model) == ("lam",)
    assert model.get_layer("c2").activation is keras.activations.relu   # the model is untouched


@pytest.mark.parametrize("rule", ["guided_backprop", "deconvnet"])
def test_a_keras_ops_relu_node_follows_the_guided_rules(rule):
    """``keras.ops.relu(h)`` in a functional graph is an operation node, not a layer: it used to
    keep its plain gradient without a word. It is now a ReLU like a ReLU layer."""
    model = _with_lambda(lambda t: keras.ops.relu(t))
    same = _with_lambda(layers.ReLU(name="r"))
    same.set_weights(model.get_weights())
    x = _images(3, (10, 10, 1))
    method = getattr(saliency, rule)
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # no warning: nothing is left as it was
        s = method(model, x, 1)
    np.testing.assert_allclose(s, method(same, x, 1), rtol=1e-5, atol=1e-7)
    assert len(saliency.relus_changed(model, rule.split("_")[0])) == 2   # the node and c2


def test_a_keras_ops_nonlinearity_node_is_named_by_the_guided_rules():
    model = _with_lambda(lambda t: keras.ops.sigmoid(t))
    found = saliency.other_nonlinearities(model)         # Keras numbers op names: sigmoid_1...
    assert len(found) == 1 and found[0].startswith("sigmoid")
    with pytest.warns(UserWarning, match=r"sigmoid"):
        saliency.guided_backprop(model, _images(2, (10, 10, 1)), 1)


def test_a_layer_with_weights_that_cannot_be_rebuilt_is_refused_with_the_true_reason():
    class Scale(layers.Layer):
        def __init__(self, make, **kwargs):      # a function argument: no config to rebuild it
            super().__init__(**kwargs)
            self.make = make

        def build(self, shape):
            self.gamma = self.add_weight(shape=(shape[-1],), initializer="ones")

        def call(self, t):
            return self.make(t) * self.gamma

    keras.utils.set_random_seed(3)
    inp = keras.Input((10, 10, 1))
    h = Scale(keras.ops.relu, name="scale")(layers.Conv2D(4, 3, activation="relu", name="c1")(inp))
    model = keras.Model(inp, layers.Dense(2)(layers.Flatten()(h)), name="scaled")
    with pytest.raises(TypeError, match=r"layer 'scale' \(Scale\) cannot be rebuilt from its "
                                        r"config.*holds weights"), \
            pytest.warns(UserWarning, match=r"\['scale'\] are Lambda or custom layers"):
        saliency.guided_backprop(model, _images(2, (10, 10, 1)), 1)


# --------------------------------------------------------------------------- wrapped subclassed


class _MyNet(keras.Model):
    def __init__(self):
        super().__init__(name="my_net")
        self.c1 = layers.Conv2D(4, 3, activation="relu", name="c1")
        self.c2 = layers.Conv2D(5, 3, activation="relu", name="c2")
        self.gap = layers.GlobalAveragePooling2D(name="gap")
        self.head = layers.Dense(3, name="head")

    def call(self, t):
        return self.head(self.gap(self.c2(self.c1(t))))


def _bare_and_wrapped():
    """A called subclassed model and the same model wrapped as keras.Model(inp, net(inp))."""
    keras.utils.set_random_seed(4)
    net = _MyNet()
    inp = keras.Input((12, 12, 1))
    return net, keras.Model(inp, net(inp), name="wrapped")


def test_grad_cam_enters_a_wrapped_subclassed_model():
    net, wrapped = _bare_and_wrapped()
    x = _images(3, (12, 12, 1), seed=1)
    assert cam.cam_layer(wrapped, 1) == "my_net/c2" and cam.cam_layer(net, 1) == "c2"
    np.testing.assert_allclose(cam.grad_cam(wrapped, x, 1), cam.grad_cam(net, x, 1),
                               rtol=1e-5, atol=1e-7)
    inner, bare = Feature("my_net/c2", 2), Feature("c2", 2)
    np.testing.assert_allclose(features.feature_values(wrapped, x, inner).values,
                               features.feature_values(net, x, bare).values, rtol=1e-6)
    assert cam.cam_layer(wrapped, Feature("my_net/c1", 0)) == "my_net/c1"
    np.testing.assert_allclose(cam.grad_cam(wrapped, x, inner, layer="my_net/c1"),
                               cam.grad_cam(net, x, bare, layer="c1"), rtol=1e-5, atol=1e-7)


def test_a_head_in_a_nested_functional_model_has_its_cam_layer():
    keras.utils.set_random_seed(5)
    i = keras.Input((12, 12, 1))
    h = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, activation="relu", name="c1")(i))
    inner = keras.Model(i, layers.Dense(3, name="head")(h), name="inner")
    j = keras.Input((12, 12, 1))
    outer = keras.Model(j, inner(j), name="outer")
    x = _images(2, (12, 12, 1), seed=2)
    assert cam.cam_layer(outer, 0) == "inner/c1"
    np.testing.assert_allclose(cam.grad_cam(outer, x, 0), cam.grad_cam(inner, x, 0),
                               rtol=1e-5, atol=1e-7)


def test_the_guided_rules_and_the_randomization_copy_enter_a_wrapped_subclassed_model():
    net, wrapped = _bare_and_wrapped()
    x = _images(3, (12, 12, 1), seed=1)
    for method in (saliency.guided_backprop, saliency.deconvnet):
        np.testing.assert_allclose(method(wrapped, x, 1), method(net, x, 1), rtol=1e-5,
                                   atol=1e-7)
    assert saliency.relus_changed(wrapped) == saliency.relus_changed(net) == ("c1", "c2")
    before = [np.array(w) for w in net.weights]
    r = sanity_checks.model_randomization(wrapped, x, 1, "gradient")
    assert r.layers == ("my_net/head", "my_net/c2", "my_net/c1")
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(before, net.weights))


# --------------------------------------------------------------------------- images of two shapes


def test_a_list_of_images_of_different_shapes_is_not_taken_for_images_and_labels():
    keras.utils.set_random_seed(6)
    inp = keras.Input((28, 28, 1))
    model = keras.Model(inp, layers.Dense(4)(layers.Flatten()(layers.Conv2D(2, 3)(inp))))
    x = _images(2, (28, 28, 1))
    with pytest.raises(ValueError, match=r"x is a list of 2 images of different shapes "
                                         r"\(28, 28, 1\), \(27, 28, 1\): they cannot be stacked "
                                         r"into one batch; give one array \(N, H, W, C\).* or a "
                                         r"list of images of one shape"):
        saliency.gradient(model, [x[0], x[1][:27]], 3)
    with pytest.raises(TypeError, match=r"like \(images, labels\); give the images alone"):
        saliency.gradient(model, (x, np.array([1, 2])), 3)
    assert saliency.gradient(model, [x[0], x[1]], 3).shape == (2, 28, 28, 1)


class _Block(keras.Model):
    def __init__(self, flip=False, **kwargs):
        super().__init__(**kwargs)
        self.flip = flip
        self.dense = layers.Dense(3, activation="relu", name="dense")

    def call(self, t):
        import tensorflow as tf

        return self.dense(tf.reverse(t, [1]) if self.flip else t)


def test_a_nested_subclassed_block_is_entered_or_refused_with_the_true_reason():
    """A block whose call() can be traced on a symbolic input is entered (its ReLU guided as in
    the same layers written functionally); one whose call() uses TensorFlow ops cannot be."""
    keras.utils.set_random_seed(7)
    x = _images(4, (4,))
    inp = keras.Input((4,))
    nested = keras.Model(inp, layers.Dense(2, name="out")(_Block(name="block")(inp)))
    inp = keras.Input((4,))
    flat = keras.Model(inp, layers.Dense(2, name="out")(
        layers.Dense(3, activation="relu", name="dense")(inp)))
    flat.set_weights(nested.get_weights())
    np.testing.assert_allclose(saliency.guided_backprop(nested, x, 0),
                               saliency.guided_backprop(flat, x, 0), rtol=1e-6)
    inp = keras.Input((4,))
    opaque = keras.Model(inp, layers.Dense(2)(_Block(flip=True, name="block")(inp)))
    with pytest.raises(TypeError, match=r"cannot look inside layer 'block', a subclassed _Block: "
                                        r"model 'block' .* call\(\) cannot be traced"):
        saliency.guided_backprop(opaque, x, 0)


def test_a_model_without_a_spatial_layer_names_the_shapes_it_calls():
    inp = keras.Input((6, 6, 1))
    model = keras.Model(inp, layers.Dense(2, name="head")(layers.Flatten(name="flat")(inp)))
    with pytest.raises(ValueError, match=r"no layer with a spatial map at or before layer 'head'; "
                                         r"the layers it calls up to there have output shapes "
                                         r"\{'flat': \(36,\), 'head': \(2,\)\}"):
        cam.grad_cam(model, _images(1, (6, 6, 1)), 0)


def test_the_empirical_field_of_a_model_with_a_lambda_warns_that_it_may_be_too_small():
    from cnn_helper import receptive_field

    inp = keras.Input((12, 12, 1))
    h = layers.Conv2D(2, 3, padding="same", name="c1")(inp)
    h = layers.Lambda(lambda t: keras.ops.relu(t), name="lam")(h)
    out = layers.Conv2D(1, 3, padding="same", name="c2")(h)
    model = keras.Model(inp, out)
    with pytest.warns(UserWarning, match=r"\['lam'\].*may be smaller"):
        mask = receptive_field.empirical_support(model, "c2", (6, 6), pointwise=["Lambda"])
    assert mask.shape == (12, 12)
