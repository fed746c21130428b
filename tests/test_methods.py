"""The one registry of attribution methods: every method by name, one map per image, and the
places that take a method by name (sanity checks, faithfulness.measure) use it."""
import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import cam, faithfulness, methods, occlusion, rise, saliency, sanity_checks

H, W = 8, 7


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(2)
    x = inputs = keras.Input((H, W, 1))
    x = layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(2, activation="softmax", name="head")(x))


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).random((2, H, W, 1)).astype(np.float32)


OPTIONS = {"smoothgrad": {"n_samples": 2}, "squaregrad": {"n_samples": 2},
           "vargrad": {"n_samples": 2}, "integrated_gradients": {"n_samples": 2},
           "rise": {"n_masks": 8, "grid_size": 2}}


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_every_method_gives_one_map_per_image(model, x, name):
    maps = methods.get(name)(model, x, 1, **OPTIONS.get(name, {}))
    assert maps.dtype == np.float32 and maps.shape == (2, H, W, 1)
    one = methods.get(name)(model, x[0], 1, **OPTIONS.get(name, {}))
    np.testing.assert_allclose(one, maps[0], rtol=1e-5, atol=1e-6)


def test_names_lead_to_the_modules_functions():
    assert methods.get("guided_backprop") is saliency.guided_backprop
    assert methods.get("score_cam") is cam.score_cam and methods.get("rise") is rise.rise
    assert methods.get("occlusion") is occlusion.attribution
    assert methods.name_of(cam.grad_cam) == "grad_cam" and methods.name_of("rise") == "rise"

    def mine(model, x, target):
        return x
    assert methods.get(mine) is mine and methods.name_of(mine) == "mine"


def test_the_registry_is_read_only():
    with pytest.raises(TypeError):
        methods.METHODS["mine"] = saliency.gradient


def test_unknown_methods_are_clear_errors():
    with pytest.raises(ValueError, match="method 'gradients' is not one of"):
        methods.get("gradients")
    with pytest.raises(TypeError, match="method must be a name among"):
        methods.get(3)


def test_occlusion_as_a_map_is_the_drop_at_the_nearest_centre(model, x):
    full = occlusion.sensitivity_map(model, x, 1, patch=3, stride=1, fill="zero")
    np.testing.assert_array_equal(occlusion.attribution(model, x, 1, patch=3, fill="zero"),
                                  -full.delta[..., None])
    coarse = occlusion.sensitivity_map(model, x, 1, patch=3, stride=3, fill="zero")
    maps = occlusion.attribution(model, x, 1, patch=3, stride=3, fill="zero")
    rows, cols = coarse.locations              # centres 0, 3, 6: an odd stride has no ties
    for r in range(H):
        for c in range(W):
            i, j = int(np.argmin(np.abs(rows - r))), int(np.argmin(np.abs(cols - c)))
            assert maps[1, r, c, 0] == -coarse.delta[1, i, j]


def test_faithfulness_measure_runs_the_three_measures_by_name(model, x):
    results = faithfulness.measure(model, x, 1, {"g": "gradient", "occ": ("occlusion",
                                                                        {"fill": "zero"})},
                                   steps=4, n_subsets=8, grid=3)
    g = saliency.gradient(model, x, 1)
    np.testing.assert_array_equal(results["g"][0].auc,
                                  faithfulness.deletion(model, x, 1, g, steps=4).auc)
    np.testing.assert_array_equal(results["g"][2].correlation,
                                  faithfulness.mufidelity(model, x, 1, g, n_subsets=8,
                                                          grid=3).correlation)
    occ = occlusion.attribution(model, x, 1, fill="zero")
    np.testing.assert_array_equal(results["occ"][1].auc,
                                  faithfulness.insertion(model, x, 1, occ, steps=4).auc)
    assert [r.kind for r in results["occ"]] == ["deletion", "insertion", "mufidelity"]
    assert faithfulness.ranking(results).methods[0] in ("g", "occ")


def test_sanity_checks_take_perturbation_methods_by_name(model, x):
    r = sanity_checks.model_randomization(model, x, 1, "rise", options={"n_masks": 8,
                                                                        "grid_size": 2})
    assert r.layers == ("head", "conv") and r.maps.shape[:2] == (2, 2)
