"""The CAM family and the gradient statistics against their papers' formulas, computed here
independently: nested tf.GradientTape for Grad-CAM++'s 2nd and 3rd derivatives, a Keras tape for
LayerCAM, a loop over channels for Score-CAM, a loop over the same noisy copies for VarGrad and
SquareGrad."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from cnn_helper import Feature, cam, occlusion, saliency

NEW_CAMS = [saliency.grad_cam_plus_plus, saliency.layer_cam, saliency.score_cam]


def _images(n, shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n,) + shape).astype(np.float32)


def tiny(pool: bool, seed=0, softmax=False, size=6):
    """conv "A" (ReLU) [-> max pool "P"] -> conv (ReLU) -> GAP -> dense "logits" [-> softmax]:
    the target is piecewise linear in A (or P), the case Grad-CAM++'s closed form is exact for."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 1))
    a = layers.Conv2D(3, 3, padding="same", activation="relu", name="A")(inp)
    if pool:
        a = layers.MaxPooling2D(2, name="P")(a)
    b = layers.Conv2D(4, 3, padding="same", activation="relu", name="B")(a)
    out = layers.Dense(3, name="logits")(layers.GlobalAveragePooling2D(name="gap")(b))
    if softmax:
        out = layers.Activation("softmax", name="probability")(out)
    return keras.Model(inp, out)


def split(model, at: str):
    """(x -> A, A -> target outputs): the model cut after layer ``at``, run by Keras."""
    first = keras.Model(model.inputs[0], model.get_layer(at).output)
    rest_in = keras.Input(first.output.shape[1:])
    y, after = rest_in, False
    for layer in model.layers[1:]:
        if after:
            y = layer(y)
        after = after or layer.name == at
    return first, keras.Model(rest_in, y)


def gradient_at(rest, A, k):
    """dS/dA by a plain tape, S = rest(A)[:, k]."""
    A = tf.constant(A)
    with tf.GradientTape() as tape:
        tape.watch(A)
        s = rest(A)[:, k]
    return tape.gradient(s, A).numpy()


def diagonal_derivatives(rest, a, k):
    """For Y = exp(S) of ONE map a (h, w, K): dY/dA, and the diagonal 2nd and 3rd derivatives
    d2Y/dA_i^2, d3Y/dA_i^3 of every value i, from nested tapes (jacobians)."""
    a = tf.constant(a[None])
    n = int(np.prod(a.shape))
    with tf.GradientTape() as t3:
        t3.watch(a)
        with tf.GradientTape() as t2:
            t2.watch(a)
            with tf.GradientTape() as t1:
                t1.watch(a)
                y = tf.exp(rest(a)[0, k])
            d1 = t1.gradient(y, a)
        d2 = tf.linalg.diag_part(tf.reshape(t2.jacobian(d1, a), (n, n)))
    d3 = tf.linalg.diag_part(tf.reshape(t3.jacobian(d2, a), (n, n)))
    return d1.numpy()[0], d2.numpy().reshape(a.shape[1:]), d3.numpy().reshape(a.shape[1:]), \
        float(y)


def test_grad_cam_plus_plus_is_the_papers_formula_with_exp():
    # the paper: Y = exp(S); a = Y'' / (2 Y'' + sum_idx A * Y'''); w_k = sum_idx a ReLU(Y');
    # cam = ReLU(sum_k w_k A_k). Ours leaves out the factor exp(S) of w_k.
    model = tiny(pool=False, size=4)
    x = _images(1, (4, 4, 1))
    first, rest = split(model, "A")
    A = first(x).numpy()
    ours = saliency.grad_cam_plus_plus(model, x, Feature("logits", 1), layer="A")
    for i in range(len(x)):
        d1, d2, d3, y = diagonal_derivatives(rest, A[i], 1)
        assert np.abs(d2).max() > 0 and np.abs(d3).max() > 0          # exp makes them non-zero
        denominator = 2 * d2 + A[i].sum(axis=(0, 1)) * d3
        a = np.where(denominator != 0, d2 / np.where(denominator != 0, denominator, 1), 0)
        w = (a * np.maximum(d1, 0)).sum(axis=(0, 1))
        paper = np.maximum((w * A[i]).sum(axis=-1), 0)                # 4x4 like the input
        assert paper.max() > 0
        np.testing.assert_allclose(ours[i, ..., 0] * y, paper, rtol=1e-4, atol=1e-6 * paper.max())


def test_layer_cam_by_hand_and_upsampled():
    for pool, layer in ((False, "A"), (True, "P")):
        model = tiny(pool, seed=1)
        x = _images(3, (6, 6, 1), seed=1)
        first, rest = split(model, layer)
        A = first(x).numpy()
        g = gradient_at(rest, A, 2)
        expected = np.maximum((np.maximum(g, 0) * A).sum(axis=-1), 0)[..., None]
        expected = tf.image.resize(expected, (6, 6), "bilinear").numpy()
        got = saliency.layer_cam(model, x, Feature("logits", 2), layer=layer)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * expected.max())
        assert expected.max() > 0


def test_score_cam_by_a_loop_over_channels():
    model = tiny(pool=True, seed=2, softmax=True)
    x = _images(3, (6, 6, 1), seed=2)
    A = keras.Model(model.inputs[0], model.get_layer("P").output)(x).numpy()      # (3, 3, 3, 3)
    expected = np.zeros(A.shape[:-1])
    for k in range(A.shape[-1]):
        h = tf.image.resize(A[..., k:k + 1], (6, 6), "bilinear").numpy()
        lo, hi = h.min(axis=(1, 2, 3), keepdims=True), h.max(axis=(1, 2, 3), keepdims=True)
        h = np.where(hi > lo, (h - lo) / np.where(hi > lo, hi - lo, 1), 0)
        w = model(x * h).numpy()[:, 1]                       # P(class 1) on the masked input
        expected += w[:, None, None] * A[..., k]
    expected = tf.image.resize(np.maximum(expected, 0)[..., None], (6, 6), "bilinear").numpy()
    got = saliency.score_cam(model, x, 1, layer="P")
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * expected.max())
    assert expected.max() > 0
    unrelued = saliency.score_cam(model, x, 1, layer="P", relu=False)
    assert (got >= np.maximum(unrelued, 0) - 1e-6).all()


@pytest.mark.parametrize("method", NEW_CAMS, ids=lambda m: m.__name__)
def test_batch_size_invariance_single_image_and_features(method):
    model = tiny(pool=True, seed=3)
    x = _images(5, (6, 6, 1), seed=3)
    for target in (2, Feature("B", 1), Feature("B", 0, location=(1, 2))):
        ref = method(model, x, target, batch_size=64)
        assert ref.shape == (5, 6, 6, 1) and ref.dtype == np.float32 and ref.min() >= 0
        for batch_size in (1, 4):
            np.testing.assert_allclose(method(model, x, target, batch_size=batch_size), ref,
                                       rtol=1e-5, atol=1e-7 * np.abs(ref).max())
        np.testing.assert_allclose(method(model, x[3], target), ref[3], rtol=1e-5,
                                   atol=1e-7 * np.abs(ref).max())


def test_the_cam_family_is_importable_from_saliency():
    for name in ("cam_layer", "grad_cam", "grad_cam_plus_plus", "layer_cam", "score_cam"):
        assert getattr(saliency, name) is getattr(cam, name)


# --------------------------------------------------------------------------- gradient statistics


def noisy_gradients(model, x, k, n_samples, noise, seed):
    """g_j for the copies smoothgrad draws (its noise, by its rule), from an independent tape."""
    from cnn_helper._gradient import image_keys, standard_noise  # internal contract: the copies

    keys = image_keys(x)
    sigma = noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))[:, None, None, None]
    grads = []
    for j in range(n_samples):
        noisy = tf.constant(x + sigma * standard_noise(keys, seed, j, x.shape[1:]))
        with tf.GradientTape() as tape:
            tape.watch(noisy)
            s = model(noisy)[:, k]
        grads.append(tape.gradient(s, noisy).numpy())
    return np.stack(grads)                                   # (n_samples, N, H, W, C)


def test_vargrad_and_squaregrad_over_the_same_noisy_copies():
    model = tiny(pool=True, seed=4)
    x = _images(3, (6, 6, 1), seed=4)
    g = noisy_gradients(model, x, 0, n_samples=6, noise=0.3, seed=5)
    args = dict(n_samples=6, noise=0.3, seed=5)
    mean = saliency.smoothgrad(model, x, Feature("logits", 0), **args)
    square = saliency.squaregrad(model, x, Feature("logits", 0), **args)
    var = saliency.vargrad(model, x, Feature("logits", 0), **args)
    np.testing.assert_allclose(mean, g.mean(axis=0), rtol=1e-4, atol=1e-6 * np.abs(g).max())
    np.testing.assert_allclose(square, (g ** 2).mean(axis=0), rtol=1e-4,
                               atol=1e-6 * (g ** 2).max())
    np.testing.assert_allclose(var, g.var(axis=0), rtol=1e-3, atol=1e-6 * (g ** 2).max())
    assert var.max() > 0
    # no noise: every copy is x itself
    plain = saliency.gradient(model, x, Feature("logits", 0))
    np.testing.assert_allclose(saliency.squaregrad(model, x, Feature("logits", 0), noise=0,
                                                   n_samples=2), plain ** 2, rtol=1e-5)
    assert saliency.vargrad(model, x, Feature("logits", 0), noise=0, n_samples=2).max() == 0
    for method in (saliency.squaregrad, saliency.vargrad):
        np.testing.assert_allclose(method(model, x, 1, n_samples=3, batch_size=1),
                                   method(model, x, 1, n_samples=3), rtol=1e-5, atol=1e-12)


# --------------------------------------------------------------------------- models and errors


def test_every_new_method_on_a_transfer_learning_model():
    # a nested base: MobileNetV2's first blocks (weights=None, 32x32) under a dense head
    mobilenet = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35,
                                               input_shape=(32, 32, 3))
    base = keras.Model(mobilenet.inputs[0], mobilenet.get_layer("block_2_add").output,
                       name="base")
    i = keras.Input((32, 32, 3))
    model = keras.Model(i, layers.Dense(3)(layers.GlobalAveragePooling2D()(base(i))))
    x = _images(2, (32, 32, 3), seed=6)
    assert cam.cam_layer(model, 1) == "base/block_2_add"
    maps = {
        "grad_cam_plus_plus": saliency.grad_cam_plus_plus(model, x, 1),
        "layer_cam": saliency.layer_cam(model, x, 1, layer="block_1_expand_relu"),
        "score_cam": saliency.score_cam(model, x, 1, layer="base/block_1_pad", relu=False),
        "vargrad": saliency.vargrad(model, x, 1, n_samples=2),
        "squaregrad": saliency.squaregrad(model, x, 1, n_samples=2),
        "rise": occlusion.rise(model, x, 1, n_masks=20),
        "layer_cam of a Feature": saliency.layer_cam(model, x, Feature("block_2_add", 3)),
    }
    for name, m in maps.items():
        assert m.shape[:-1] == x.shape[:-1] and np.isfinite(m).all() and np.ptp(m) > 0, name
    np.testing.assert_array_equal(maps["layer_cam"], saliency.layer_cam(
        model, x, 1, layer="base/block_1_expand_relu"))


def test_bad_inputs_are_clear_errors():
    model = tiny(pool=True, seed=7)
    x = _images(2, (6, 6, 1))
    for method in NEW_CAMS:
        with pytest.raises(ValueError, match="has no layer 'nope'"):
            method(model, x, 1, layer="nope")
        with pytest.raises(ValueError, match="spatial"):
            method(model, x, 1, layer="logits")
        with pytest.raises(ValueError, match="'signed', 'abs'"):
            method(model, x, 1, sign="magnitude")
        with pytest.raises(ValueError, match="class 3 is out of range: the model has classes 0..2"):
            method(model, x, 3)
    with pytest.raises(ValueError, match="does not depend on layer 'B'"):
        saliency.layer_cam(model, x, Feature("A", 0), layer="B")
    for method in (saliency.vargrad, saliency.squaregrad):
        with pytest.raises(ValueError, match="n_samples must be"):
            method(model, x, 1, n_samples=0)
        with pytest.raises(ValueError, match="noise"):
            method(model, x, 1, noise=-1)
