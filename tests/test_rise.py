"""RISE against a brute-force loop over its masks, the masks' own properties, convergence as the
masks grow, and independence of batch_size."""
import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import Feature, occlusion, rise


@pytest.fixture(scope="module")
def model():
    """conv "c1" (ReLU) -> GAP -> dense -> softmax, on 8x8 grey images."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    c = layers.Conv2D(3, 3, padding="same", activation="relu", name="c1")(inp)
    logits = layers.Dense(3, name="logits")(layers.GlobalAveragePooling2D()(c))
    return keras.Model(inp, layers.Activation("softmax")(logits))


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 8, 8, 1)).astype(np.float32)


def brute_force(model, x, k, masks, p, fill):
    """sum_j s(x * M_j + (1 - M_j) * fill) M_j / (n p), one masked image at a time, by Keras."""
    total = np.zeros(x.shape[:-1])
    for m in masks:
        kept = m[None, :, :, None]
        s = np.asarray(model(x * kept + (1 - kept) * fill))[:, k]
        total += s[:, None, None] * m[None]
    return (total / (len(masks) * p))[..., None]


def test_rise_is_the_weighted_sum_over_its_masks(model):
    x = _images(3)
    m = rise.masks(x.shape[1:], n_masks=30, grid_size=3, p=0.4, seed=2)
    for fill in (0.0, 0.7, np.full((8, 8, 1), 0.25, np.float32) + x[0] * 0.5):
        expected = brute_force(model, x, 1, m, 0.4, fill)
        got = rise.rise(model, x, 1, n_masks=30, grid_size=3, p=0.4, fill=fill, seed=2)
        assert got.shape == (3, 8, 8, 1) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_feature_target(model):
    x = _images(2, seed=1)
    m = rise.masks(x.shape[1:], n_masks=25, grid_size=4, seed=3)
    c1 = keras.Model(model.inputs[0], model.get_layer("c1").output)
    at = Feature("c1", 2, location=(3, 5))
    expected = brute_force(lambda z: np.asarray(c1(z))[:, 3, 5, :], x, 2, m, 0.5, 0.0)
    np.testing.assert_allclose(rise.rise(model, x, at, n_masks=25, grid_size=4, seed=3),
                               expected, rtol=1e-5, atol=1e-6)
    pooled = rise.rise(model, x, Feature("c1", 2), n_masks=25, grid_size=4, seed=3)
    expected = brute_force(lambda z: np.asarray(c1(z)).max(axis=(1, 2)), x, 2, m, 0.5, 0.0)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


def test_the_masks():
    m = rise.masks((8, 8, 1), n_masks=2000, grid_size=4, p=0.3, seed=1)
    assert m.shape == (2000, 8, 8) and m.dtype == np.float32
    assert m.min() >= 0 and m.max() <= 1
    assert abs(m.mean() - 0.3) < 0.02                            # E[M] = p
    np.testing.assert_array_equal(rise.masks((8, 8, 1), 50, 4, 0.3, seed=1), m[:50])  # prefix
    assert not np.array_equal(rise.masks((8, 8, 1), 50, 4, 0.3, seed=2), m[:50])
    # a 2x2 grid on 8x8 images: cells of 4 pixels, upsampled to 12x12, shifted by 0..3
    assert len(np.unique(rise.masks((8, 8, 1), 400, 2, seed=0)[:, 0, 0].round(6))) > 2
    np.testing.assert_array_equal(rise.masks((8, 8, 1), 5, 4, p=1.0), 1.0)


def test_keeping_everything_gives_the_target_everywhere(model):
    x = _images(2, seed=4)
    s = rise.rise(model, x, 0, n_masks=7, grid_size=2, p=1.0)
    np.testing.assert_allclose(s, np.broadcast_to(np.asarray(model(x))[:, 0, None, None, None],
                                                  s.shape), rtol=1e-5)


def test_converges_as_the_masks_grow_seeded_and_batch_size_free(model):
    x = _images(1, seed=5)
    local = Feature("c1", 2, location=(5, 3))         # a target that depends on a 3x3 patch
    maps = {n: rise.rise(model, x, local, n_masks=n, grid_size=3, seed=0).ravel()
            for n in (100, 2000, 4000)}
    close = np.corrcoef(maps[2000], maps[4000])[0, 1]
    far = np.corrcoef(maps[100], maps[4000])[0, 1]
    assert close > far and close > 0.99
    ref = rise.rise(model, x, 2, n_masks=60, seed=9, batch_size=512)
    np.testing.assert_array_equal(rise.rise(model, x, 2, n_masks=60, seed=9, batch_size=512), ref)
    for batch_size in (1, 7):
        np.testing.assert_allclose(rise.rise(model, x, 2, n_masks=60, seed=9,
                                             batch_size=batch_size), ref, rtol=1e-5, atol=1e-7)
    both = rise.rise(model, np.concatenate([_images(2, seed=6), x]), 2, n_masks=60, seed=9)
    np.testing.assert_allclose(both[2], ref[0], rtol=1e-5, atol=1e-7)   # where x sits
    np.testing.assert_allclose(rise.rise(model, x[0], 2, n_masks=60, seed=9), ref[0], rtol=1e-5)
    assert not np.allclose(rise.rise(model, x, 2, n_masks=60, seed=10), ref)


def test_occlusion_re_exports_rise():
    assert occlusion.rise is rise.rise


def test_bad_inputs_are_clear_errors(model):
    x = _images(2)
    with pytest.raises(ValueError, match="n_masks must be a positive int, got 0"):
        rise.rise(model, x, 1, n_masks=0)
    for p in (0, 1.5, -0.2, float("nan")):
        with pytest.raises(ValueError, match=r"p \(the probability of keeping a cell\)"):
            rise.rise(model, x, 1, p=p)
    for grid_size in (0, 9, 2.5):
        with pytest.raises(ValueError, match="grid_size must be an int from 1 to 8"):
            rise.rise(model, x, 1, grid_size=grid_size)
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        rise.rise(model, x, Feature("nope", 0))
    with pytest.raises(ValueError, match="class 3 is out of range: the model has classes 0..2"):
        rise.rise(model, x, 3)
    with pytest.raises(ValueError, match="fill has shape"):
        rise.rise(model, x, 1, fill=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="fill 'bright' is not one of"):
        rise.rise(model, x, 1, fill="bright")
    with pytest.raises(TypeError, match="fill must be one of"):
        rise.rise(model, x, 1, fill=None)
    with pytest.raises(ValueError, match=r"\(N, 8, 8, 1\)"):
        rise.rise(model, np.zeros((2, 9, 9, 1), np.float32), 1)
    with pytest.raises(ValueError, match="seed"):
        rise.rise(model, x, 1, seed=-1)
    with pytest.raises(ValueError, match="batch_size"):
        rise.rise(model, x, 1, batch_size=0)
