"""A located Feature is honoured by every method: on the unchanged image each perturbation
method and metric reads exactly ``features.feature_values`` at that location, and on changed
copies it reads that location too (not the map's max), against brute force.

The first test is parametrized over the registry (``methods.METHODS``) and the metrics: a new
attribution method must say here how it reads its target on the unchanged image, or be a
gradient method (whose target read is tested in test_saliency and test_cam)."""
import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import Feature, black_box, faithfulness, features, methods, occlusion, rise

H, W = 10, 9
LOCATED = Feature("conv2", 2, location=(3, 4))


@pytest.fixture(scope="module")
def model():
    """A small seeded CNN whose conv2 map 2 has its max elsewhere than (3, 4) on every image."""
    keras.utils.set_random_seed(11)
    x = inputs = keras.Input((H, W, 1))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(x)
    x = layers.Conv2D(3, 3, padding="same", name="conv2")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, layers.Activation("softmax", name="softmax")(x))


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(5).random((3, H, W, 1)).astype(np.float32)


def _maps(x):
    return np.random.default_rng(6).normal(size=x.shape).astype(np.float32)


# how each perturbation method or metric reports the target on the unchanged image
UNCHANGED = {
    "occlusion": lambda m, x: occlusion.sensitivity_map(m, x, LOCATED, strategy="full").unoccluded,
    "occlusion (incremental)": lambda m, x: occlusion.sensitivity_map(
        m, x, LOCATED, strategy="incremental").unoccluded,
    "rise": lambda m, x: rise.rise(m, x, LOCATED, n_masks=3, p=1.0)[:, 0, 0, 0],   # all kept
    "deletion": lambda m, x: faithfulness.deletion(m, x, LOCATED, _maps(x), steps=4).scores[:, 0],
    "insertion": lambda m, x: faithfulness.insertion(m, x, LOCATED, _maps(x),
                                                     steps=4).scores[:, -1],
    "mufidelity": lambda m, x: faithfulness.mufidelity(m, x, LOCATED, _maps(x), n_subsets=4,
                                                       grid=3).unchanged,
    "kernel_shap": lambda m, x: black_box.kernel_shap_values(m, x, LOCATED, n_segments=4,
                                                             n_samples=16).score,
    "lime": lambda m, x: black_box.lime_values(m, x, LOCATED, n_segments=4, n_samples=16).score,
}
GRADIENT_METHODS = {"gradient", "gradient_x_input", "guided_backprop", "deconvnet", "smoothgrad",
                    "squaregrad", "vargrad", "integrated_gradients", "grad_cam",
                    "grad_cam_plus_plus", "layer_cam", "guided_grad_cam", "lrp",
                    "lrp_epsilon_plus", "lrp_montavon", "deeplift"}
NO_UNCHANGED_COPY = {"score_cam"}       # only masked copies: tested by brute force below
CONCEPT_METHODS = {"craft"}             # masks concepts, not pixels: tested on its head below


def test_every_registered_method_is_covered():
    covered = (GRADIENT_METHODS | NO_UNCHANGED_COPY | CONCEPT_METHODS
               | {name.split(" ")[0] for name in UNCHANGED})
    assert set(methods.METHODS) <= covered, set(methods.METHODS) - covered


def test_craft_reads_the_located_target_after_its_layer(model, x):
    """CRAFT's importance runs the layers after its bank's layer on masked activations; given the
    layer's own activations it reads the located target itself, not the max of its map."""
    from cnn_helper.concepts.importance import head_step

    resolved = features.resolve(model, x, LOCATED)
    y1 = features.activations(model, x, ["conv1"])["conv1"]
    step = head_step(model, "conv1", resolved)
    read = step(y1.astype(np.float32), np.full(len(x), resolved.channel, np.int32),
                resolved.locations.astype(np.int64))
    expected = features.feature_values(model, x, LOCATED).values
    np.testing.assert_allclose(np.asarray(read), expected, rtol=1e-5, atol=1e-6)


def test_the_location_is_not_the_max(model, x):
    """Else reading the max by mistake would pass every test here."""
    at = features.feature_values(model, x, LOCATED).values
    pooled = features.feature_values(model, x, Feature("conv2", 2)).values
    assert np.all(pooled - at > 0.05)


@pytest.mark.parametrize("name", list(UNCHANGED))
def test_on_the_unchanged_image_the_located_value_is_read(model, x, name):
    expected = features.feature_values(model, x, LOCATED).values
    np.testing.assert_allclose(UNCHANGED[name](model, x), expected, rtol=1e-5, atol=1e-6)


def test_occluded_copies_are_read_at_the_location(model, x):
    result = occlusion.sensitivity_map(model, x[0], LOCATED, patch=3, stride=4, fill="zero",
                                       strategy="full")
    centres = [(r, c) for r in result.locations[0] for c in result.locations[1]]
    copies = occlusion.occlude(x[0], centres, patch=3, fill="zero")
    expected = features.feature_values(model, copies, LOCATED).values
    np.testing.assert_allclose(result.values.ravel(), expected, rtol=1e-5, atol=1e-6)


def test_deletion_steps_are_read_at_the_location(model, x):
    maps = _maps(x)
    curve = faithfulness.deletion(model, x, LOCATED, maps, steps=3, baseline="zero")
    order = np.argsort(-maps[0, ..., 0].ravel(), kind="stable")
    copies = []
    for count in curve.counts:
        image = x[0].copy().reshape(-1)
        image[order[:count]] = 0.0
        copies.append(image.reshape(x[0].shape))
    expected = features.feature_values(model, np.stack(copies), LOCATED).values
    np.testing.assert_allclose(curve.scores[0], expected, rtol=1e-5, atol=1e-6)


def test_score_cam_weighs_maps_by_the_located_value(model, x):
    """Score-CAM's weights by brute force: the located value on x times each normalized map."""
    import tensorflow as tf

    cam = methods.get("score_cam")(model, x[:1], LOCATED, layer="conv1", relu=False)
    A = features.activations(model, x[:1], ["conv1"])["conv1"][0]               # (H, W, K)
    lo, hi = A.min(axis=(0, 1)), A.max(axis=(0, 1))
    masks = np.where(hi > lo, (A - lo) / np.where(hi > lo, hi - lo, 1), 0)       # same size
    copies = np.moveaxis(x[0] * masks, -1, 0)[..., None]                         # (K, H, W, 1)
    weights = features.feature_values(model, copies, LOCATED).values
    expected = tf.image.resize((A @ weights)[None, ..., None], (H, W)).numpy()[0]
    np.testing.assert_allclose(cam[0], expected, rtol=1e-4, atol=1e-5)
