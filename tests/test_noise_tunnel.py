"""The noise tunnel is SmoothGrad, SquareGrad and VarGrad for the gradient (the same copies, the
same numbers), wraps any method in one batched call per few images, is seeded and independent of
where an image sits; Guided Grad-CAM is the product of its two maps."""
import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import Feature, cam, guided_grad_cam, methods, noise_tunnel, saliency


@pytest.fixture(scope="module")
def model():
    """conv "c1" (ReLU) -> conv "c2" (ReLU) -> GAP -> dense "logits" -> softmax, 8x8 RGB."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 3))
    c = layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    c = layers.Conv2D(4, 3, padding="same", activation="relu", name="c2")(c)
    logits = layers.Dense(3, name="logits")(layers.GlobalAveragePooling2D()(c))
    return keras.Model(inp, layers.Activation("softmax")(logits))


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 8, 8, 3)).astype(np.float32)


@pytest.mark.parametrize("statistic, same", [("mean", saliency.smoothgrad),
                                             ("square", saliency.squaregrad),
                                             ("var", saliency.vargrad)])
def test_around_the_gradient_it_is_smoothgrad_squaregrad_vargrad(model, statistic, same):
    x = _images(3)
    for target in (1, Feature("c2", 2, location=(3, 4))):
        tunnel = noise_tunnel.noise_tunnel("gradient", n_samples=6, noise=0.2,
                                           statistic=statistic, seed=4)
        np.testing.assert_array_equal(tunnel(model, x, target),
                                      same(model, x, target, n_samples=6, noise=0.2, seed=4))
    guided = noise_tunnel.noise_tunnel(saliency.guided_backprop, n_samples=4, statistic=statistic)
    np.testing.assert_array_equal(guided(model, x, 0),
                                  same(model, x, 0, n_samples=4, rule="guided"))


def test_any_method_in_one_call_per_group_of_images(model):
    calls = []

    def identity(model, x, target):                  # the map of a copy is the copy itself
        calls.append(len(x))
        return x
    x = _images(2, seed=1)
    stats = {s: noise_tunnel.noise_tunnel(identity, n_samples=400, noise=0.1, statistic=s)(
        model, x, 0) for s in ("mean", "square", "var")}
    assert calls == [800] * 3                               # both images' copies in one call
    sigma = 0.1 * np.ptp(x.reshape(2, -1), axis=1)
    np.testing.assert_allclose(stats["mean"], x, atol=5 * sigma.max() / np.sqrt(400))
    np.testing.assert_allclose(stats["var"].mean(axis=(1, 2, 3)), sigma ** 2, rtol=0.05)
    np.testing.assert_allclose(stats["square"], stats["var"] + stats["mean"] ** 2, rtol=1e-5)


def test_seeded_and_independent_of_where_the_image_is(model):
    x = _images(3, seed=2)
    tunnel = noise_tunnel.noise_tunnel("grad_cam", n_samples=5, noise=0.3, seed=1)
    a = tunnel(model, x, 2)
    assert a.shape == (3, 8, 8, 1) and a.dtype == np.float32
    np.testing.assert_allclose(tunnel(model, x[::-1], 2)[::-1], a, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(tunnel(model, x[1], 2), a[1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(tunnel(model, x, 2, batch_size=2), a, rtol=1e-5, atol=1e-7)
    other = noise_tunnel.noise_tunnel("grad_cam", n_samples=5, noise=0.3, seed=2)
    assert not np.allclose(other(model, x, 2), a)
    quiet = noise_tunnel.noise_tunnel("grad_cam", n_samples=3, noise=0.0)
    np.testing.assert_allclose(quiet(model, x, 2), cam.grad_cam(model, x, 2), rtol=1e-5,
                               atol=1e-7)


def test_its_name_and_clear_errors(model):
    tunnel = noise_tunnel.noise_tunnel("integrated_gradients", statistic="var")
    assert methods.name_of(tunnel) == "var_integrated_gradients"
    with pytest.raises(ValueError, match="statistic 'std' is not one of"):
        noise_tunnel.noise_tunnel("gradient", statistic="std")
    with pytest.raises(ValueError, match="method 'smooth' is not one of"):
        noise_tunnel.noise_tunnel("smooth")
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        noise_tunnel.noise_tunnel("gradient", n_samples=0)
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        noise_tunnel.noise_tunnel("gradient", noise=-1)
    bad = noise_tunnel.noise_tunnel(lambda m, z, t: z[:1], n_samples=2)
    with pytest.raises(ValueError, match="noise_tunnel needs one map per image"):
        bad(model, _images(2), 0)


def test_guided_grad_cam_is_guided_backprop_times_grad_cam(model):
    x = _images(2, seed=5)
    weights, before = [w.copy() for w in model.get_weights()], np.asarray(model(x))
    for target, layer in ((1, None), (Feature("logits", 2), "c1")):
        got = guided_grad_cam.guided_grad_cam(model, x, target, layer=layer)
        guided = saliency.guided_backprop(model, x, target)
        coarse = cam.grad_cam(model, x, target, layer=layer)
        assert got.shape == (2, 8, 8, 3) and got.dtype == np.float32
        np.testing.assert_allclose(got, guided * coarse, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(guided_grad_cam.guided_grad_cam(model, x[1], 0, sign="positive"),
                               np.maximum(saliency.guided_backprop(model, x[1], 0) *
                                          cam.grad_cam(model, x[1], 0), 0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(guided_grad_cam.guided_grad_cam(model, x, 1, batch_size=1),
                               guided_grad_cam.guided_grad_cam(model, x, 1), rtol=1e-5, atol=1e-8)
    for w, w0 in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(np.asarray(model(x)), before)
    with pytest.raises(ValueError, match="sign 'both' is not one of"):
        guided_grad_cam.guided_grad_cam(model, x, 1, sign="both")
