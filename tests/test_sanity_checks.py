"""Model and data randomization: the copy randomized layer by layer (weights checked at every
step), the user's model untouched, and the measures against scipy and scikit-image."""
import keras
import numpy as np
import pytest
from keras import layers
from scipy.stats import spearmanr
from skimage.feature import hog as skimage_hog

from cnn_helper import plot, saliency, sanity_checks, similarity


def _tiny(seed=5, nested=False):
    """A small functional CNN with batch norm and a kernel initializer of its own (std 5)."""
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(3, 3, padding="same", activation="relu", name="conv1")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv2",
                      kernel_initializer=keras.initializers.RandomNormal(stddev=5.0))(x)
    if nested:
        base = keras.Model(inputs, x, name="base")
        inputs = keras.Input((8, 8, 1))
        x = base(inputs)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, layers.Activation("softmax")(x), name="tiny")
    bn = model.get_layer("base").get_layer("bn") if nested else model.get_layer("bn")
    bn.set_weights([w + 0.5 for w in bn.get_weights()])      # not the initial values
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).random((5, 8, 8, 1)).astype(np.float32)


def _recording():
    """A method that records the weights of every layer of the model it explains."""
    seen = []

    def recorded(model, x, target, **options):
        seen.append({layer.name: [np.array(w) for w in layer.weights] for layer in model.layers})
        return saliency.gradient(model, x, target)

    return recorded, seen


def _changed(before: dict, after: dict) -> list:
    return sorted(name for name in before if any(
        not np.array_equal(a, b) for a, b in zip(before[name], after[name])))


def test_cascading_randomizes_top_down_with_each_layer_own_initializers(images):
    model = _tiny()
    weights = [np.array(w) for w in model.weights]
    method, seen = _recording()
    r = sanity_checks.model_randomization(model, images, 1, method, seed=3)
    assert r.layers == ("logits", "conv2", "bn", "conv1") and r.mode == "cascading"
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(weights, model.weights))
    trained = seen[0]
    assert [_changed(trained, step) for step in seen[1:]] == [
        ["logits"], ["conv2", "logits"], ["bn", "conv2", "logits"],
        ["bn", "conv1", "conv2", "logits"]]
    gamma, beta, mean, variance = seen[-1]["bn"]
    assert np.all(gamma == 1) and np.all(beta == 0) and np.all(mean == 0) and \
        np.all(variance == 1)
    kernel, bias = seen[2]["conv2"]
    assert np.all(bias == 0) and 3 < kernel.std() < 7           # RandomNormal(stddev=5)
    assert np.abs(seen[1]["logits"][0]).max() <= np.sqrt(6 / (16 * 4 + 3))   # Glorot uniform
    # each step's maps are the gradient of a model holding exactly those weights
    for step, recorded in enumerate(seen[1:]):
        clone = keras.models.clone_model(model)
        for layer in clone.layers:
            layer.set_weights(recorded[layer.name])
        np.testing.assert_allclose(r.maps[step], saliency.gradient(clone, images, 1), atol=1e-6)


def test_independent_mode_randomizes_one_layer_with_the_same_new_weights(images):
    model = _tiny()
    cascade_method, cascade = _recording()
    sanity_checks.model_randomization(model, images, 1, cascade_method, seed=3)
    method, seen = _recording()
    r = sanity_checks.model_randomization(model, images, 1, method, mode="independent", seed=3)
    assert [_changed(seen[0], step) for step in seen[1:]] == [[name] for name in r.layers]
    for i, name in enumerate(r.layers):
        assert all(np.array_equal(a, b) for a, b in zip(seen[i + 1][name],
                                                          cascade[i + 1][name]))
    again = sanity_checks.model_randomization(model, images, 1, "gradient", mode="independent",
                                              seed=3)
    np.testing.assert_allclose(again.maps, r.maps, atol=1e-6)      # the copy was restored
    other = sanity_checks.model_randomization(model, images, 1, "gradient", mode="independent",
                                              seed=4)
    assert not np.allclose(other.maps, r.maps)


def test_measures_equal_scipy_and_scikit_image(images):
    model = _tiny()
    r = sanity_checks.model_randomization(model, images, 2, "gradient", layers=["logits", "bn"],
                                          batch_size=2)
    assert r.layers == ("logits", "bn") and r.spearman.shape == (2, 5)
    for step in range(2):
        for n in range(5):
            a, b = r.maps[step, n, ..., 0], r.original[n, ..., 0]
            assert r.spearman[step, n] == pytest.approx(spearmanr(a.ravel(), b.ravel())[0])
            assert r.spearman_abs[step, n] == pytest.approx(
                spearmanr(np.abs(a).ravel(), np.abs(b).ravel())[0])
            ua, ub = np.abs(a) / np.abs(a).max(), np.abs(b) / np.abs(b).max()
            assert r.ssim[step, n] == pytest.approx(similarity.ssim(ua, ub, data_range=1.0))
            features = [skimage_hog(m, pixels_per_cell=(1, 1), cells_per_block=(2, 2))
                        for m in (ua, ub)]
            assert r.hog[step, n] == pytest.approx(np.corrcoef(*features)[0, 1], abs=1e-6)


def test_hog_and_rank_correlation_against_scikit_image_and_scipy():
    rng = np.random.default_rng(0)
    for shape, cell, block, orientations in [((28, 28), (4, 4), (2, 2), 9),
                                             ((30, 27), (8, 8), (3, 3), 9),
                                             ((33, 40), (5, 7), (2, 3), 6)]:
        m = rng.random(shape)
        np.testing.assert_allclose(
            similarity.hog(m, orientations, cell, block),
            skimage_hog(m, orientations, cell, block), atol=1e-6)
    stack = rng.random((3, 16, 16))
    assert similarity.hog(stack, pixels_per_cell=4, cells_per_block=2).shape == (3, 324)
    ties = np.round(rng.random((4, 30)), 1)
    other = rng.random((4, 30))
    expected = [spearmanr(a, b)[0] for a, b in zip(ties, other)]
    np.testing.assert_allclose(similarity.spearman_rows(ties, other), expected)
    assert np.isnan(similarity.spearman_rows(np.ones((1, 5)), other[:1, :5])[0])
    np.testing.assert_allclose(similarity.ssims(stack, stack[::-1]),
                               [similarity.ssim(a, b) for a, b in zip(stack, stack[::-1])])
    with pytest.raises(ValueError, match="too small"):
        similarity.hog(rng.random((10, 10)))


def test_nested_and_subclassed_models_are_copied_not_changed(images):
    model = _tiny(nested=True)
    weights = [np.array(w) for w in model.weights]
    r = sanity_checks.model_randomization(model, images, 0, "guided_backprop")
    assert r.layers == ("logits", "base/conv2", "base/bn", "base/conv1")
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(weights, model.weights))

    class Small(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv2D(2, 3, activation="relu", name="conv")
            self.flat = layers.Flatten()
            self.head = layers.Dense(2, name="head")

        def call(self, x):
            return self.head(self.flat(self.conv(x)))

    small = Small()
    small(images[:1])
    before = [np.array(w) for w in small.weights]
    r = sanity_checks.model_randomization(small, images, 1, "gradient")
    assert r.layers == ("head", "conv") and r.maps.shape == (2, 5, 8, 8, 1)
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(before, small.weights))


def test_data_randomization_compares_two_models_and_plots(images):
    model, other = _tiny(seed=5), _tiny(seed=6)
    d = sanity_checks.data_randomization(model, other, images, 1, "gradient")
    np.testing.assert_allclose(d.original, saliency.gradient(model, images, 1), atol=1e-7)
    np.testing.assert_allclose(d.maps, saliency.gradient(other, images, 1), atol=1e-7)
    assert d.spearman[3] == pytest.approx(spearmanr(d.maps[3].ravel(),
                                                    d.original[3].ravel())[0])
    fig, _ = plot.data_randomization_grid(images, {"gradient": d}, examples=(0, 1))
    r = sanity_checks.model_randomization(model, images, 1, "grad_cam")
    fig, axes = plot.randomization_grid(images, {"Grad-CAM": r}, example=1)
    assert axes.shape == (1, 6)
    fig, axes = plot.similarity_curves({"Grad-CAM": r})
    assert axes.shape == (1, 4)


@pytest.mark.parametrize("call, message", [
    (lambda m, x: sanity_checks.model_randomization(m, x, 1, "gradient", mode="cascade"),
     "mode 'cascade'"),
    (lambda m, x: sanity_checks.model_randomization(m, x, 1, "gradients"), "method 'gradients'"),
    (lambda m, x: sanity_checks.model_randomization(m, x, 1, 3),
     r"or a function f\(model, x, target"),
    (lambda m, x: sanity_checks.model_randomization(m, x, 1, "gradient", layers=["pool"]),
     "hold no weights"),
    (lambda m, x: sanity_checks.model_randomization(m, x, 1, "gradient", options="abs"),
     "options must be a dict"),
    (lambda m, x: sanity_checks.model_randomization(m, x, 1, lambda *a: np.zeros(3)),
     "one map"),
    (lambda m, x: sanity_checks.model_randomization(m, x, 1, "gradient", seed=-1), "seed"),
    (lambda m, x: sanity_checks.data_randomization(m, "random", x, 1, "gradient"),
     "random_model must be a keras.Model"),
])
def test_bad_input_is_refused_with_a_message(images, call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(_tiny(), images)


def test_train_on_permuted_labels_hands_the_seeded_trainer_permuted_labels(monkeypatch, images):
    from cnn_helper import models

    seen = {}

    def fit(name, x, y, epochs=None, seed=0):
        seen.update(name=name, x=x, y=y, epochs=epochs, seed=seed)
        return "trained"

    monkeypatch.setattr(models, "fit", fit)
    labels = np.arange(5) % 3
    assert sanity_checks.train_on_permuted_labels("cnn", images, labels, epochs=2,
                                                  seed=7) == "trained"
    np.testing.assert_array_equal(seen["y"], models.permuted_labels(labels, 7))
    assert sorted(seen["y"]) == sorted(labels) and seen["seed"] == 7 and seen["epochs"] == 2
    assert seen["x"] is not None and seen["name"] == "cnn"
