"""A student's first mistakes get an answer that names the fix (issue 29): a class index out of
range, pixel values 0..255 given to a model trained on [0, 1], images without their channel
axis, a mistyped layer name, a location on a layer without spatial axes; and the results print
as one line, not as their arrays."""
import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from cnn_helper import (
    Feature,
    feature_visualization,
    features,
    max_activation,
    occlusion,
    saliency,
    sanity_checks,
)


@pytest.fixture(scope="module")
def small():
    """A small user model: conv 'c1' -> pool -> flatten -> Dense 'hidden' -> 3 classes 'head'."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 1))
    h = layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    h = layers.MaxPooling2D(2, name="pool")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(8, activation="relu", name="hidden")(h)
    outputs = layers.Dense(3, activation="softmax", name="head")(h)
    return keras.Model(inputs, outputs, name="small")


def _small_images(n=4):
    return np.random.default_rng(0).random((n, 12, 12, 1)).astype("float32")


# --------------------------------------------------------------------------- a class index


def test_a_class_index_out_of_range_is_called_a_class(shipped_cnn, bundled, small):
    x = bundled[1][0][:2]
    with pytest.raises(ValueError, match=re.escape(
            "class 10 is out of range: the model has classes 0..9")):
        saliency.gradient(shipped_cnn, x, 10)
    with pytest.raises(ValueError, match=re.escape("class -1 is out of range")):
        features.feature_values(shipped_cnn, x, -1)
    with pytest.raises(ValueError, match=re.escape(
            "class 3 is out of range: the model has classes 0..2")):
        occlusion.sensitivity_map(small, _small_images(1)[0], 3, patch=4)
    # a Feature names a channel of a layer: still a channel
    with pytest.raises(ValueError, match="channel 32 is out of range for layer 'conv2'"):
        features.feature_values(shipped_cnn, x, Feature("conv2", 32))


# --------------------------------------------------------------------------- the value range


def _range_warnings(call) -> list:
    """The messages of the input-range warnings ``call()`` gives, every one of them recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if "trained on" in str(w.message)]


def test_pixel_values_given_to_a_course_model_warn_once_per_call(shipped_cnn, bundled):
    x = bundled[1][0][:16]
    pixels = x * 255.0                                   # float, but in 0..255
    calls = {
        "gradient": lambda: saliency.gradient(shipped_cnn, pixels, 3),
        "feature_values": lambda: features.feature_values(shipped_cnn, pixels, Feature("conv2", 1)),
        "smoothgrad, location kept": lambda: saliency.smoothgrad(
            shipped_cnn, pixels[:2], Feature("conv2", 1), n_samples=2, keep_location=True),
        "occlusion": lambda: occlusion.sensitivity_map(shipped_cnn, pixels[:2], 3, patch=7,
                                                        stride=7),
        "scan of a dataset": lambda: max_activation.scan(
            shipped_cnn, tf.data.Dataset.from_tensor_slices(pixels).batch(4), "conv1",
            count=2, progress=False),
    }
    for name, call in calls.items():
        found = _range_warnings(call)
        assert len(found) == 1, (name, found)
        assert "[0, 255]" in found[0] and "[0, 1]" in found[0], found
        assert re.search(r"\b(x|images) / 255\b", found[0]), found   # a dataset's: images
    assert _range_warnings(lambda: saliency.gradient(shipped_cnn, x, 3)) == []


def test_a_users_model_of_unknown_range_never_warns_and_one_that_records_it_does(small):
    pixels = _small_images() * 255.0
    assert _range_warnings(lambda: saliency.gradient(small, pixels, 1)) == []
    recorded = keras.models.clone_model(small)
    recorded.training_range = (0.0, 1.0)
    found = _range_warnings(lambda: saliency.gradient(recorded, pixels, 1))
    assert len(found) == 1 and "x / 255" in found[0], found


# --------------------------------------------------------------------------- shapes and names


def test_images_without_their_channel_axis_name_the_fix(shipped_cnn, bundled, small):
    x = bundled[1][0][:3, ..., 0]                          # (3, 28, 28)
    with pytest.raises(ValueError, match=re.escape("x[..., None]")):
        saliency.gradient(shipped_cnn, x, 3)
    with pytest.raises(ValueError, match=re.escape("x[..., None]")):
        features.feature_values(shipped_cnn, x[0], 3)      # one (28, 28) image
    with pytest.raises(ValueError, match=re.escape("x[..., None]")):
        features.activations(small, _small_images()[..., 0], "c1")


def test_a_mistyped_layer_name_suggests_the_layer(shipped_cnn, bundled, small):
    x = bundled[1][0][:2]
    with pytest.raises(ValueError, match=re.escape("did you mean 'conv2'?")):
        features.feature_values(shipped_cnn, x, Feature("Conv2", 0))
    with pytest.raises(ValueError, match=re.escape("did you mean 'conv2'?")):
        features.activations(shipped_cnn, x, "conv_2")
    with pytest.raises(ValueError, match=re.escape("did you mean 'hidden'?")):
        features.activations(small, _small_images(), "Hiden")
    with pytest.raises(ValueError, match="has no layer 'nope'") as err:      # nothing close
        features.activations(small, _small_images(), "nope")
    assert "did you mean" not in str(err.value)


def test_a_location_on_a_dense_layer_says_to_drop_it(shipped_cnn, bundled, small):
    with pytest.raises(ValueError, match=re.escape("drop location=")):
        features.feature_values(shipped_cnn, bundled[1][0][:2],
                                Feature("dense", 3, location=(1, 1)))
    with pytest.raises(ValueError, match=re.escape("drop location=")):
        saliency.gradient(small, _small_images(), Feature("hidden", 0, location=(0,)))


# --------------------------------------------------------------------------- printing results


def _one_line(result, starts: str) -> str:
    text = repr(result)
    assert text.startswith(starts) and "\n" not in text and len(text) < 200, text
    assert "array(" not in text, text
    return text


def test_a_layer_scan_prints_as_one_line(shipped_cnn, bundled):
    scans = max_activation.scan(shipped_cnn, bundled[1][0][:50], ["conv2", "dense"], count=4,
                                progress=False)
    assert _one_line(scans["conv2"], "LayerScan(") == \
        "LayerScan(layer='conv2', 32 channels, top 4 of 50 examples, pool='max')"
    _one_line(scans["dense"], "LayerScan(layer='dense', 64 channels")


def test_a_feature_visualization_prints_as_one_line(shipped_cnn):
    targets = [Feature("conv2", k) for k in range(5)]
    vis = feature_visualization.visualize(shipped_cnn, targets, steps=2, progress=False)
    text = _one_line(vis, "FeatureVisualization(5 images 28x28x1 of y_(conv2),k=0, ")
    assert "..., y_(conv2),k=4 (5 targets); 2 steps fourier, values" in text, text


def test_the_sanity_checks_print_as_one_line(small):
    x = _small_images()
    random_model = keras.models.clone_model(small)
    data = sanity_checks.data_randomization(small, random_model, x, 1, "gradient")
    text = _one_line(data, "DataRandomization('gradient', 4 maps 12x12x1")
    assert "spearman_abs" in text, text
    cascade = sanity_checks.model_randomization(small, x, 1, "gradient")
    _one_line(cascade, "ModelRandomization('gradient', cascading, 3 steps")


# --------------------------------------------------------------------------- one name


def test_the_data_source_has_one_name_and_the_old_one_still_works():
    from cnn_helper import data

    new = data.load_mnist(data_source="bundled", verbose=False)
    old = data.load_mnist(source="bundled", verbose=False)
    assert np.array_equal(new[1][1], old[1][1])
    assert data.load(data_source="bundled", verbose=False).source == "bundled"
    with pytest.raises(FileNotFoundError, match=re.escape("use data_source='download'")):
        data.load("keras", verbose=False)          # the tests' Keras cache is empty
    with pytest.raises(ValueError, match="name the same argument"):
        data.load_mnist("keras", source="bundled")


def test_the_course_models_record_the_range_they_were_trained_on(shipped_cnn, bundled):
    from cnn_helper import models

    assert shipped_cnn.training_range == (0.0, 1.0)       # shipped info: none, so [0, 1]
    (x_train, y_train), _ = bundled
    fitted = models.fit("cnn", x_train[:32], y_train[:32], epochs=1)
    assert fitted.training_range == (0.0, 1.0)            # the range of its training images
    info = {"data_source": "bundled", "seed": 0, "epochs": 1, "test_accuracy": 0.5,
            "training_range": [0.0, 255.0]}
    models.save(fitted, "cnn", info, models.cache_dir())  # a retrained cnn, on pixel values
    retrained = models.load("cnn")
    assert retrained.training_range == (0.0, 255.0)
    assert _range_warnings(lambda: saliency.gradient(retrained, x_train[:2] * 255, 3)) == []
