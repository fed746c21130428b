"""LRP and DeepLIFT on keras.applications (VGG16, ResNet50: weights=None, 32x32), a transfer
head (MobileNetV2 base inside a Sequential, a Rescaling front), and through the registry's
entry points (CLI, sanity checks, faithfulness; distributed.explain: tests/test_distributed.py)."""
import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import cli_explain, faithfulness, methods, saliency, sanity_checks
from cnn_helper.relevance import composites, deeplift, lrp

X = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize("name", ["VGG16", "ResNet50"])
def test_keras_applications_conserve_the_logit(name):
    """The head's logit (the softmax taken off by classifier_activation=None) is conserved by
    LRP-epsilon with a tiny epsilon: the biases of a weights=None net and of its folded
    BatchNormalizations are 0."""
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(32, 32, 3), classes=4,
                                              classifier_activation=None)
    R = lrp(model, X, 1, rule="epsilon", epsilon=1e-9)
    logit = model.predict(X, verbose=0)[:, 1]
    assert R.shape == X.shape and np.isfinite(R).all()
    np.testing.assert_allclose(R.sum(axis=(1, 2, 3)), logit, rtol=0.02, atol=1e-6)


def test_a_transfer_head_on_a_mobilenet_base_with_a_rescaling_front():
    """MobileNetV2's first blocks (BatchNormalizations folded, ReLU6, depthwise convolutions, a
    residual Add) nested in a Sequential head with a Rescaling front: LRP-0 is gradient x input
    at the first convolution's input x' = x / 127.5 - 1 (the Rescaling passes relevance as it
    is), and the zb bounds are the Rescaling's image of [0, 255]."""
    keras.utils.set_random_seed(1)
    net = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35,
                                         input_shape=(32, 32, 3))
    base = keras.Model(net.input, net.get_layer("block_2_add").output, name="base")
    model = keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 127.5, offset=-1),
                              base, layers.GlobalAveragePooling2D(),
                              layers.Dense(3, bias_initializer="ones", name="head")])
    x = X * 255
    assert composites.first_layer_bounds(model, x=x) == ((-1.0,) * 3, (1.0,) * 3)
    expected = saliency.gradient(model, x, 2) * 127.5 * (x / 127.5 - 1)
    # to the 1e-6 stabilizer of the Add and the average pooling (this net's sums are ~1e-4)
    np.testing.assert_allclose(lrp(model, x, 2, rule="zero"), expected, rtol=0.05,
                               atol=0.02 * np.abs(expected).max())
    R = lrp(model, x, 2, composite="montavon")
    assert R.shape == x.shape and np.isfinite(R).all() and np.abs(R).max() > 0
    D = deeplift(model, x, 2, baseline="mean")
    mean = np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape)
    delta = model.predict(x, verbose=0)[:, 2] - model.predict(mean, verbose=0)[:, 2]
    np.testing.assert_allclose(D.sum(axis=(1, 2, 3)), delta, rtol=1e-3, atol=1e-5)


@pytest.fixture(scope="module")
def small():
    keras.utils.set_random_seed(2)
    x = inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(2, name="head")(x))


NAMES = ["lrp", "lrp_epsilon_plus", "lrp_montavon", "deeplift"]


def test_the_registry_names_them():
    assert set(NAMES) <= set(methods.METHODS)
    assert methods.get("lrp") is lrp and methods.get("deeplift") is deeplift


@pytest.mark.parametrize("name", NAMES)
def test_sanity_checks_and_faithfulness_run_them(small, name):
    x = np.random.default_rng(3).random((2, 8, 8, 1)).astype(np.float32)
    r = sanity_checks.model_randomization(small, x, 1, name)
    assert r.layers == ("head", "conv") and np.isfinite(r.maps).all()
    results = faithfulness.measure(small, x, 1, [name], steps=4, n_subsets=8, grid=3)
    assert [m.kind for m in results[name]] == ["deletion", "insertion", "mufidelity"]


def test_the_command_line_explains_with_them(shipped_cnn, bundled, tmp_path):
    from PIL import Image

    (_, _), (x_test, _) = bundled
    Image.fromarray((x_test[0, ..., 0] * 255).astype(np.uint8)).save(tmp_path / "two.png")
    e, = cli_explain.explain("course-cnn", [tmp_path / "two.png"], tmp_path / "out",
                             methods="lrp,deeplift")
    np.testing.assert_allclose(e.maps["lrp"], lrp(shipped_cnn, e.x, 2), rtol=1e-4, atol=1e-7)
    assert set(e.maps) == {"lrp", "deeplift"}
