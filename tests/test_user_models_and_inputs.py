"""Plausible user inputs: a layer or base model reused in a second model, locations given as
NumPy rows, first layers inside nested models, top examples of another feature, an empty
layer list."""
import keras
import numpy as np
import pytest

from cnn_helper import (
    Feature,
    features,
    inverting,
    max_activation,
    patterns,
    receptive_field,
    saliency,
)


def _base():
    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 1))
    return keras.Model(i, keras.layers.Conv2D(3, 3, activation="relu", name="ic")(i), name="base")


def _on_top(base):
    return keras.Sequential([keras.Input((8, 8, 1)), base, keras.layers.Flatten(),
                             keras.layers.Dense(2, name="head")])


def test_a_base_model_reused_in_a_second_model():
    """Re-running a notebook cell builds a second model on the same base: the second works too."""
    base = _base()
    first, second = _on_top(base), _on_top(base)
    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype("float32")
    expected = np.asarray(
        keras.Model(base.inputs[0], base.get_layer("ic").output)(x))[..., 1].max(axis=(1, 2))
    for model in (first, second):
        np.testing.assert_allclose(features.feature_values(model, x, Feature("ic", 1)).values,
                                   expected, rtol=1e-6)
        assert saliency.gradient(model, x, 0).shape == x.shape


def test_layers_of_a_trained_model_reused_in_a_sequential(shipped_cnn, bundled):
    (_, _), (x_test, _) = bundled
    sub = keras.Sequential([keras.Input((28, 28, 1))] +
                           [shipped_cnn.get_layer(n) for n in ("conv1", "pool1", "conv2")])
    got = features.activations(sub, x_test[:8], ["conv2"])["conv2"]
    np.testing.assert_allclose(got,
                               features.activations(shipped_cnn, x_test[:8], ["conv2"])["conv2"],
                               rtol=1e-5, atol=1e-6)


def test_locations_from_results_are_accepted_as_arrays(shipped_cnn, bundled):
    (_, _), (x_test, _) = bundled
    fv = features.feature_values(shipped_cnn, x_test[:20], Feature("conv2", 5))
    loc = fv.locations[0]                                   # a NumPy row, as results give them
    at = Feature("conv2", 5, location=loc)
    assert at.location == tuple(int(i) for i in loc)
    assert (features.feature_values(shipped_cnn, x_test[:1], at).values[0]
            == pytest.approx(fv.values[0]))
    assert receptive_field.region(shipped_cnn, "conv2", loc) == receptive_field.region(
        shipped_cnn, "conv2", tuple(int(i) for i in loc))
    with pytest.raises(TypeError, match="tuple of ints"):
        Feature("conv2", 5, location=np.array([1.5, 2.0]))
    with pytest.raises(TypeError, match="'center'"):
        Feature("conv2", 5, location="center")


def test_feature_layer_must_be_a_name_or_layer():
    with pytest.raises(TypeError, match="layer name or a keras layer, got 3"):
        Feature(3, 5)


def test_first_conv_kernels_inside_a_nested_model():
    base = _base()
    outer = keras.Sequential([keras.Input((8, 8, 1)), base, keras.layers.Conv2D(6, 3, name="late")])
    k = patterns.conv_kernels(outer)
    np.testing.assert_array_equal(k, np.moveaxis(np.asarray(base.get_layer("ic").kernel), -1, 0))


def test_zeiler_fergus_refuses_examples_of_another_feature(shipped_cnn, bundled):
    (_, _), (x_test, _) = bundled
    top = max_activation.top_examples(shipped_cnn, x_test[:50], Feature("conv3", 7), count=3)
    with pytest.raises(ValueError, match="rank y_\\(conv3\\),k=7, not the target"):
        inverting.zeiler_fergus(shipped_cnn, x_test[:50], Feature("conv2", 1), count=2,
                                examples=top)
    same = max_activation.top_examples(shipped_cnn, x_test[:50], Feature("conv2", 1), count=3)
    with pytest.raises(ValueError, match="count must be a positive int, got 0"):
        inverting.zeiler_fergus(shipped_cnn, x_test[:50], Feature("conv2", 1), count=0,
                                examples=same)


def test_an_empty_layer_list_is_a_clear_error(shipped_cnn, bundled):
    (_, _), (x_test, _) = bundled
    with pytest.raises(ValueError, match="layers is empty"):
        features.activations(shipped_cnn, x_test[:2], [])
