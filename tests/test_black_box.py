"""KernelSHAP and LIME: exact Shapley values by brute force over all coalitions, closed forms on
models linear in the regions or in the masks, efficiency, seeds, batch_size, the user's model
untouched, clear errors."""
import itertools
import math

import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import Feature, black_box, superpixels


@pytest.fixture(scope="module")
def tiny():
    """conv "c1" (ReLU) -> max pool -> dense -> softmax, on 8x8 grey images."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    c = layers.Conv2D(3, 3, padding="same", activation="relu", name="c1")(inp)
    logits = layers.Dense(3, name="logits")(layers.Flatten()(layers.MaxPooling2D()(c)))
    return keras.Model(inp, layers.Activation("softmax")(logits))


@pytest.fixture(scope="module")
def linear():
    """s(x) = w . x + b: one Dense unit on the flattened 8x8x2 image."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((8, 8, 2))
    return keras.Model(inp, layers.Dense(1, name="out")(layers.Flatten()(inp)))


def _images(n, channels=1, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 8, 8, channels)).astype(np.float32)


def brute_force_shapley(score, x, labels, baseline):
    """phi_i = sum over S not containing i of |S|! (M - |S| - 1)! / M! (f(S + i) - f(S)), with f
    scored on every one of the 2^M masked images by ``score`` (one Keras call)."""
    m = int(labels.max()) + 1
    coalitions = list(itertools.product([0, 1], repeat=m))
    kept = np.array(coalitions, np.float32)[:, labels][..., None]           # (2^M, H, W, 1)
    f = dict(zip(coalitions, np.asarray(score(x * kept + (1 - kept) * baseline), np.float64)))
    phi = np.zeros(m)
    for z in coalitions:
        for i in np.flatnonzero(np.array(z) == 0):
            with_i = tuple(1 if j == i else v for j, v in enumerate(z))
            s = sum(z)
            phi[i] += math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) * \
                (f[with_i] - f[z])
    return phi


def test_kernel_shap_is_the_exact_shapley_value_on_a_tiny_net(tiny):
    x = _images(2)
    labels = superpixels.segments(x[0], "grid", n_segments=(2, 5))             # M = 10
    r = black_box.kernel_shap_values(tiny, x, 1, segments=labels, n_samples=1024, baseline=0.3)
    assert r.exact.all() and (r.n_coalitions == 1024).all() and r.values.shape == (2, 10)
    for i in range(2):
        expected = brute_force_shapley(lambda z: tiny(z)[:, 1], x[i], labels, 0.3)
        np.testing.assert_allclose(r.values[i], expected, atol=1e-6)


def test_kernel_shap_is_the_exact_shapley_value_on_the_course_cnn(shipped_cnn, bundled):
    (_, _), (x_test, y_test) = bundled
    eights = x_test[y_test == 8][:2]
    r = black_box.kernel_shap_values(shipped_cnn, eights, Feature("logits", 8), n_segments=(2, 4),
                                     n_samples=256)
    assert r.exact.all() and (r.n_segments == 8).all()
    logits = keras.Model(shipped_cnn.inputs[0], shipped_cnn.get_layer("logits").output)
    for i in range(2):
        expected = brute_force_shapley(lambda z: logits(z)[:, 8], eights[i], r.segments[i], 0.0)
        np.testing.assert_allclose(r.values[i], expected, atol=1e-4)
        assert abs(r.values[i].sum() - (r.score[i] - r.reference_score[i])) < 1e-9


def test_on_a_linear_model_the_values_are_w_times_x_minus_baseline_per_region(linear):
    x = _images(3, channels=2, seed=4)
    w = linear.get_layer("out").get_weights()[0][:, 0].reshape(8, 8, 2)
    baseline = _images(1, channels=2, seed=5)[0]
    labels = superpixels.segments(x, "grid", n_segments=(4, 4))                # M = 16, sampled
    r = black_box.kernel_shap_values(linear, x, 0, segments=labels, n_samples=200,
                                     baseline=baseline)
    assert not r.exact.any()
    for i in range(3):
        product = (w * (x[i] - baseline)).sum(axis=-1)
        expected = np.bincount(labels[i].ravel(), product.ravel())
        np.testing.assert_allclose(r.values[i], expected, atol=2e-5)


def test_sampled_kernel_shap_keeps_efficiency_and_nears_the_exact_values(tiny):
    x = _images(1, seed=2)
    labels = superpixels.segments(x[0], "grid", n_segments=(2, 5))
    exact = black_box.kernel_shap_values(tiny, x, 2, segments=labels, n_samples=1024)
    sampled = black_box.kernel_shap_values(tiny, x, 2, segments=labels, n_samples=600, seed=3)
    assert not sampled.exact[0] and sampled.n_coalitions[0] == 600
    assert abs(sampled.values[0].sum() - (sampled.score[0] - sampled.reference_score[0])) < 1e-9
    spread = np.abs(exact.values[0]).max()
    assert np.abs(sampled.values[0] - exact.values[0]).max() < 0.1 * spread


def test_the_map_holds_each_region_value_and_the_registry_form(tiny):
    x = _images(2, seed=6)
    r = black_box.kernel_shap_values(tiny, x, 0, n_segments=(2, 2), n_samples=64)
    maps = black_box.kernel_shap(tiny, x, 0, n_segments=(2, 2), n_samples=64)
    assert maps.shape == (2, 8, 8, 1) and maps.dtype == np.float32
    np.testing.assert_allclose(maps[1, :4, :4, 0], r.values[1, 0], rtol=1e-6)
    np.testing.assert_allclose(maps[1, 4:, 4:, 0], r.values[1, 3], rtol=1e-6)
    one = black_box.kernel_shap(tiny, x[1], 0, n_segments=(2, 2), n_samples=64, sign="abs")
    np.testing.assert_allclose(one, np.abs(maps[1]), rtol=1e-6)


def test_lime_recovers_the_coefficients_of_a_model_linear_in_the_masks(linear):
    x = _images(2, channels=2, seed=7)
    labels = superpixels.segments(x, "grid", n_segments=(3, 3))
    w = linear.get_layer("out").get_weights()[0][:, 0].reshape(8, 8, 2)
    fit = black_box.lime_values(linear, x, 0, segments=labels, n_samples=300, ridge=0.0)
    for i in range(2):
        expected = np.bincount(labels[i].ravel(), (w * x[i]).sum(axis=-1).ravel())
        np.testing.assert_allclose(fit.values[i], expected, atol=1e-5)
        np.testing.assert_allclose(fit.intercept[i], fit.reference_score[i], atol=1e-5)
    np.testing.assert_allclose(fit.r2, 1.0, atol=1e-6)
    ridged = black_box.lime_values(linear, x, 0, segments=labels, n_samples=300)
    assert np.abs(ridged.values - fit.values).max() < 0.2 * np.abs(fit.values).max()


def test_lime_is_scikit_learns_weighted_ridge(tiny):
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, (50, 6)).astype(np.float64)
    f, weights = rng.normal(size=50), rng.uniform(0.1, 1, 50)
    phi, phi_0, r2 = black_box.ridge_fit(z, f, weights, 1.0)
    reference = Ridge(alpha=1.0).fit(z, f, sample_weight=weights)
    np.testing.assert_allclose(phi, reference.coef_, atol=1e-10)
    np.testing.assert_allclose(phi_0, reference.intercept_, atol=1e-10)
    np.testing.assert_allclose(r2, reference.score(z, f, sample_weight=weights), atol=1e-10)


@pytest.mark.parametrize("method", [black_box.kernel_shap, black_box.lime])
def test_seeded_independent_of_batch_size_and_the_model_untouched(tiny, method):
    x = _images(3, seed=8)
    weights, before = [w.copy() for w in tiny.get_weights()], np.asarray(tiny(x))
    a = method(tiny, x, 1, n_segments=16, n_samples=100, seed=2, batch_size=7)
    np.testing.assert_allclose(a, method(tiny, x, 1, n_segments=16, n_samples=100, seed=2),
                               rtol=1e-5, atol=1e-7)
    assert not np.allclose(a, method(tiny, x, 1, n_segments=16, n_samples=100, seed=3))
    np.testing.assert_allclose(method(tiny, x[2], 1, n_segments=16, n_samples=100, seed=2), a[2],
                               rtol=1e-5, atol=1e-7)
    for w, w0 in zip(tiny.get_weights(), weights):
        np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(np.asarray(tiny(x)), before)


def test_clear_errors(tiny):
    x = _images(2)
    with pytest.raises(ValueError, match=r"segments has shape \(7, 8\).*one label map \(8, 8\)"):
        black_box.kernel_shap(tiny, x, 0, segments=np.zeros((7, 8), int))
    with pytest.raises(ValueError, match="segments has shape"):
        black_box.lime(tiny, x, 0, segments=np.zeros((3, 8, 8), int))
    with pytest.raises(TypeError, match="integer label maps"):
        black_box.kernel_shap(tiny, x, 0, segments=np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"n_samples=20 is too small for 49 segments.*at least "
                                         r"51"):
        black_box.kernel_shap(tiny, x, 0, n_segments=(7, 7), n_samples=20)
    with pytest.raises(ValueError, match="n_samples=10 is too small for 16 segments"):
        black_box.lime(tiny, x, 0, n_segments=16, n_samples=10)
    with pytest.raises(ValueError, match="method 'felzenszwalb' is not one of"):
        black_box.kernel_shap(tiny, x, 0, segments="felzenszwalb")
    with pytest.raises(ValueError, match="kernel_width must be > 0"):
        black_box.lime(tiny, x, 0, n_segments=4, kernel_width=0)
    with pytest.raises(ValueError, match="sign 'both' is not one of"):
        black_box.kernel_shap(tiny, x, 0, sign="both")


def test_a_located_feature_is_read_at_its_location_on_every_copy(tiny):
    x = _images(2, seed=9)
    located = Feature("c1", 2, location=(3, 4))
    labels = superpixels.segments(x, "grid", n_segments=(2, 2))
    r = black_box.kernel_shap_values(tiny, x, located, segments=labels, n_samples=16)
    c1 = keras.Model(tiny.inputs[0], tiny.get_layer("c1").output)
    np.testing.assert_allclose(r.score, np.asarray(c1(x))[:, 3, 4, 2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.reference_score, np.asarray(c1(np.zeros_like(x)))[:, 3, 4, 2],
                               rtol=1e-5, atol=1e-6)
    for i in range(2):
        expected = brute_force_shapley(lambda z: c1(z)[:, 3, 4, 2], x[i], labels[i], 0.0)
        np.testing.assert_allclose(r.values[i], expected, atol=1e-6)
    fit = black_box.lime_values(tiny, x, located, segments=labels, n_samples=16)
    np.testing.assert_allclose(fit.score, r.score, rtol=1e-6)
