"""CRAFT and the Sobol indices: the estimator against closed forms and a brute-force
quadrature; the NMF's reported error against its own factors; concept importance against the
closed form of a model that is linear after the layer; the registry's "craft" maps; the model
untouched; clear errors."""
import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import Feature, methods
from cnn_helper.concepts import craft, sobol

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def linear_head():
    """input (8, 8, 1) -> "feat" conv 3x3, 4 maps, ReLU -> flatten -> "logits" (3): every
    logit is linear in feat."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((8, 8, 1))
    feat = layers.Conv2D(4, 3, padding="same", activation="relu", name="feat")(inp)
    out = layers.Dense(3, name="logits")(layers.Flatten(name="flatten")(feat))
    return keras.Model(inp, out)


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 8, 8, 1)).astype(np.float32)


def test_jansen_matches_the_closed_form_of_an_additive_function():
    """f = sum_i a_i m_i with m_i uniform: S_Ti = a_i^2 / sum_j a_j^2."""
    a = np.array([1.0, 2.0, 0.5, 0.0])
    got = sobol.total_indices(lambda m: m @ a, 4, n=4096, seed=0)
    assert np.allclose(got, a ** 2 / np.sum(a ** 2), atol=0.01)


def brute_force_total(f, d: int, grid: int = 40) -> np.ndarray:
    """E_{m~i}[Var_{m_i} f] / Var f by midpoint quadrature on a grid^d lattice."""
    points = (np.arange(grid) + 0.5) / grid
    mesh = np.stack(np.meshgrid(*[points] * d, indexing="ij"), axis=-1)
    values = f(mesh.reshape(-1, d)).reshape((grid,) * d)
    return np.array([values.var(axis=i).mean() for i in range(d)]) / values.var()


def test_jansen_matches_a_brute_force_quadrature_with_interactions():
    def f(m):
        return m[:, 0] * m[:, 1] + 2 * m[:, 2] ** 2 + m[:, 0]

    expected = brute_force_total(f, 3)
    got = sobol.total_indices(f, 3, n=8192, seed=3)
    assert np.allclose(got, expected, atol=0.02)
    assert np.array_equal(got, sobol.total_indices(f, 3, n=8192, seed=3))     # seeded


def test_the_bank_reconstructs_the_crops_activations_with_the_reported_error(linear_head):
    x = _images(6)
    bank = craft(linear_head, x, "feat", n_concepts=3, crop=4, stride=2, seed=0)
    assert len(bank.crops) == 6 * 9 and bank.crops.shape[1:] == (8, 8, 1)
    assert np.all(bank.bank >= 0) and np.all(bank.crop_coefficients >= 0)
    a = keras.Model(linear_head.inputs[0], linear_head.get_layer("feat").output)(bank.crops)
    a = np.asarray(a).mean(axis=(1, 2))
    error = np.linalg.norm(a - bank.crop_coefficients @ bank.bank) / np.linalg.norm(a)
    assert bank.reconstruction_error == pytest.approx(error, rel=1e-4)
    image, row, col = bank.crop_origins[10]
    crop = keras.ops.image.resize(x[image:image + 1, row:row + 4, col:col + 4], (8, 8))
    assert np.allclose(bank.crops[10], np.asarray(crop)[0], atol=1e-6)
    more = craft(linear_head, x, "feat", n_concepts=4, crop=4, stride=2, seed=0)
    assert more.reconstruction_error < 1e-3        # 4 concepts of 4 channels: exact


def test_concept_maps_are_the_coefficients_of_each_location(linear_head):
    x = _images(6)
    bank = craft(linear_head, x, "feat", n_concepts=2, crop=4, stride=2)
    maps = bank.transform(x[:3], batch_size=2)
    assert maps.shape == (3, 8, 8, 2) and np.all(maps >= 0)
    assert np.allclose(maps, bank.transform(x[:3]), atol=1e-5)
    assert np.allclose(maps[1], bank.transform(x[1:2])[0], atol=1e-5)   # rows are independent
    top = bank.top_crops(1, count=5)
    assert np.all(np.diff(bank.crop_coefficients[top, 1]) <= 0)


def test_importance_matches_the_closed_form_of_a_linear_head(linear_head):
    """logit k = sum_idx (u_idx * m) W . v_idx: additive in m, so S_Ti = c_i^2 / sum c_j^2 with
    c_i = sum_idx u_idx,i (W_i . v_idx), for each image."""
    x = _images(8)
    bank = craft(linear_head, x, "feat", n_concepts=3, crop=4, stride=2)
    ranked = bank.importance(x[:3], 2, n_designs=1024, seed=0)
    v = linear_head.get_layer("logits").get_weights()[0][:, 2].reshape(8, 8, 4)
    u = bank.transform(x[:3])
    c = np.einsum("nhwc,ck,hwk->nc", u, bank.bank, v)
    expected = c ** 2 / np.sum(c ** 2, axis=1, keepdims=True)
    assert np.allclose(ranked.per_image, expected, atol=0.02)
    assert np.array_equal(ranked.order, np.argsort(-ranked.totals, kind="stable"))
    again = bank.importance(x[:3], Feature("logits", 2), n_designs=1024, seed=0,
                            batch_size=100)
    assert np.allclose(again.per_image, ranked.per_image, atol=1e-6)


def test_craft_maps_in_the_registry_and_the_model_untouched(linear_head):
    """Each image's map is its most important concept's map, from its own bank or a given one,
    whatever other images come with it."""
    x = _images(4)
    weights = [w.copy() for w in linear_head.get_weights()]
    before = np.asarray(linear_head(x))
    maps = methods.get("craft")(linear_head, x, 0, n_designs=16)
    assert maps.shape == (4, 8, 8, 1) and maps.dtype == np.float32 and np.all(maps >= 0)
    assert np.allclose(methods.get("craft")(linear_head, x[2], 0, n_designs=16), maps[2],
                       atol=1e-5)
    bank = craft(linear_head, _images(6, seed=1), "feat", n_concepts=3, crop=4)
    shared = methods.get("craft")(linear_head, x, 0, bank=bank, n_designs=16)
    ranked = bank.importance(x[1:2], 0, n_designs=16)
    best = int(np.argmax(ranked.per_image[0]))
    expected = keras.ops.image.resize(bank.transform(x[1:2])[..., best:best + 1], (8, 8))
    assert np.allclose(shared[1], np.asarray(expected)[0], atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(weights, linear_head.get_weights()))
    assert np.array_equal(before, np.asarray(linear_head(x)))


def test_bad_input_gets_a_clear_error(linear_head):
    x = _images(4)
    with pytest.raises(ValueError, match="no .*|maps"):
        craft(linear_head, x, "flatten", n_concepts=2)
    with pytest.raises(ValueError, match="shape"):
        craft(linear_head, np.zeros((4, 28, 28, 1), np.float32), "feat")
    with pytest.raises(ValueError, match="crop must be"):
        craft(linear_head, x, "feat", crop=20)
    with pytest.raises(ValueError, match="n_concepts=9"):
        craft(linear_head, x, "feat", n_concepts=9, crop=4)
    inp = keras.Input((8, 8, 1))
    signed = keras.Model(inp, layers.Dense(2)(layers.Flatten()(layers.Conv2D(
        2, 3, name="plain")(inp))))
    with pytest.raises(ValueError, match="negative activations"):
        craft(signed, _images(4) - 0.5, "plain", n_concepts=2, crop=4)
    h = layers.Conv2D(2, 3, padding="same", activation="relu", name="a")(inp)
    skip = layers.Add()([layers.Conv2D(2, 3, padding="same", activation="relu", name="b")(h), h])
    residual = keras.Model(inp, layers.Dense(2)(layers.Flatten()(skip)))
    bank = craft(residual, x, "b", n_concepts=2, crop=4)
    with pytest.raises(ValueError, match="skip connection"):
        bank.importance(x, 0, n_designs=4)
