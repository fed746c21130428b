"""Inputs as users give them: integer pixels, datasets, (images, labels) pairs, one-hot labels,
empty arrays, and results passed to the wrong figure. Each is a clear TypeError / ValueError that
names the value and the fix, or it just works."""
import numpy as np
import pytest

from cnn_helper import (
    Feature,
    _checks,  # internal contract: the one image check every method goes through
    features,
    inverting,
    occlusion,
    plot,
    saliency,
)
from cnn_helper import max_activation as ma


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(11)
    return keras.Sequential([keras.Input((8, 8, 1)),
                             keras.layers.Conv2D(3, 3, activation="relu", name="c1"),
                             keras.layers.Flatten(), keras.layers.Dense(3, name="head")],
                            name="small")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(12)
    x = rng.random((12, 8, 8, 1), dtype=np.float32)
    y = np.arange(12) % 3
    x.setflags(write=False)
    return x, y


# --------------------------------------------------------------------------- integer images


def test_integer_images_are_cast_unscaled_for_a_model_that_scales_its_input():
    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 1)).astype(np.uint8)
    for dtype in (np.uint8, np.int64):
        got, single = _checks.images_for(pixels.astype(dtype), (8, 8, 1), "m",  # internal contract
                                         integers_ok=True)
        assert got.dtype == np.float32 and not single
        np.testing.assert_array_equal(got, pixels)                     # not divided by 255
    with pytest.raises(TypeError, match="dtype bool"):
        _checks.images_for(pixels > 9, (8, 8, 1), "m", integers_ok=True)  # internal contract


def test_integer_images_advice_fits_the_model():
    """A model without a Rescaling layer: /255 only if it was trained on [0, 1] images. Unknown:
    both cases, and casting alone for a model that scales its input."""
    pixels = np.full((2, 8, 8, 1), 200, np.uint8)
    pixels[0, 0, 0, 0] = 3
    with pytest.raises(TypeError) as no_scaling:
        _checks.images_for(pixels, (8, 8, 1), "m", integers_ok=False)     # internal contract
    text = str(no_scaling.value)
    assert "dtype uint8, values in [3, 200]" in text and "model 'm' does not scale" in text
    assert "trained on [0, 1] images give x.astype('float32') / 255" in text
    assert "if on [0, 255] give x.astype('float32')" in text and "preprocess_input" in text
    with pytest.raises(TypeError, match=r"If model 'm' scales its input itself \(a Rescaling "
                                        r"layer at its front\) give x\.astype\('float32'\); "
                                        r"otherwise, if it was trained on \[0, 1\]"):
        _checks.images_for(pixels, (8, 8, 1), "m")                        # internal contract


# --------------------------------------------------------------------------- not an array


def _methods(model, x):
    """Every method that takes images, called on ``x``."""
    return {"activations": lambda: features.activations(model, x, ["c1"]),
            "feature_values": lambda: features.feature_values(model, x, 0),
            "top_examples": lambda: ma.top_examples(model, x, 0, count=1),
            "sensitivity_map": lambda: occlusion.sensitivity_map(model, x, 0, patch=3, stride=4),
            "gradient": lambda: saliency.gradient(model, x, 0),
            "smoothgrad": lambda: saliency.smoothgrad(model, x, 0, n_samples=2),
            "grad_cam": lambda: saliency.grad_cam(model, x, 0),
            "zeiler_fergus": lambda: inverting.zeiler_fergus(model, x, Feature("c1", 0), count=1)}


def test_a_dataset_where_arrays_are_expected(model, data):
    import tensorflow as tf

    x, y = data
    batched = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    for call in _methods(model, batched).values():
        with pytest.raises(TypeError, match=r"x is a tf\.data\.Dataset; give an array of images "
                                            r"instead, e.g\. images = np\.concatenate\(\[element"
                                            r"\[0\] for element in x\.as_numpy_iterator\(\)\]\)"):
            call()
    with pytest.raises(TypeError, match=r"np\.stack\(\[element for element"):
        features.feature_values(model, tf.data.Dataset.from_tensor_slices(x), 0)


def test_an_images_labels_pair_a_dict_or_none(model, data):
    x, y = data
    for call in _methods(model, (x, y)).values():
        with pytest.raises(TypeError, match=r"x is a tuple of 2 arrays of shapes \(12, 8, 8, 1\), "
                                            r"\(12,\), like \(images, labels\); give the images "
                                            r"alone: x\[0\]"):
            call()
    with pytest.raises(TypeError, match="x is a dict with keys"):
        features.feature_values(model, {"image": x}, 0)
    with pytest.raises(TypeError, match="x is NoneType None, not an array"):
        saliency.gradient(model, None, 0)
    with pytest.raises(TypeError, match=r"x\[0\]"):
        occlusion.occlude((x[0], 1), [(0, 0)])


def test_empty_images_are_a_clear_error(model, data):
    x, _ = data
    for call in _methods(model, x[:0]).values():
        with pytest.raises(ValueError, match=r"x is empty \(shape \(0, 8, 8, 1\)\): give at least "
                                             "one image"):
            call()


def test_a_list_of_images_or_a_tensor_is_an_array(model, data):
    import tensorflow as tf

    x, _ = data
    ref = features.feature_values(model, x, Feature("c1", 1)).values
    for given in (list(x), tf.constant(x)):
        np.testing.assert_array_equal(features.feature_values(model, given, Feature("c1", 1))
                                      .values, ref)


# --------------------------------------------------------------------------- figures


@pytest.fixture(scope="module")
def results(model, data):
    x, _ = data
    return {"scans": ma.scan(model, x, ["c1"], count=2, progress=False),
            "top": ma.top_examples(model, x, Feature("c1", 1), count=2),
            "occ": occlusion.sensitivity_map(model, x[0], 1, patch=3),
            "zf": inverting.zeiler_fergus(model, x, Feature("c1", 1), count=2)}


def test_max_activating_names_the_right_object(data, results):
    x, y = data
    scans = results["scans"]
    with pytest.raises(TypeError, match=r"result must be a TopExamples .* got a LayerScan; .* "
                                        r"plot\.max_activating\(x, scans\['c1'\]\.channel\(k\)\)"):
        plot.max_activating(x, scans["c1"])
    with pytest.raises(TypeError, match=r"got a dict with keys \['c1'\]; it is the dict scan "
                                        r"returns.*scans\['c1'\]\.channel\(k\)"):
        plot.max_activating(x, scans)
    with pytest.raises(TypeError, match="arguments are swapped"):
        plot.max_activating(results["top"], x)
    with pytest.raises(ValueError, match="result refers to example .* but x has 2 images"):
        plot.max_activating(x[:2], results["top"])
    top = results["top"]
    fig, axes = plot.max_activating(x, top, np.eye(3)[y])              # one-hot labels
    assert axes[0, 0].get_title().endswith(f"| y={y[top.high.indices[0]]}")


def test_occlusion_figures_name_the_right_object(data, results):
    x, _ = data
    occ = results["occ"]
    for draw in (plot.occlusion_map, plot.occlusion_grid):
        with pytest.raises(TypeError, match=r"result must be an OcclusionMap \(from occlusion"
                                            r"\.sensitivity_map\), got an array of shape \(8, 8\); "
                                            "give the OcclusionMap itself"):
            draw(x[0], occ.relative)
        with pytest.raises(TypeError, match="arguments are swapped"):
            draw(occ, x[0])
        with pytest.raises(ValueError, match=r"x has shape \(12, 8, 8, 1\); give the one image"):
            draw(x, occ)
        with pytest.raises(ValueError, match="the map was computed for an image of 8 centres"):
            draw(np.zeros((10, 10, 1)), occ)
    with pytest.raises(TypeError, match="maps is an OcclusionMap"):
        plot.saliency_maps(x[0], occ)


def test_zeiler_fergus_and_receptive_field_figures_name_the_right_object(model, results):
    from cnn_helper import receptive_field as rf

    for draw in (plot.zeiler_fergus, plot.zeiler_fergus_montage):
        with pytest.raises(TypeError, match=r"zf must be a ZeilerFergus .* got a TopExamples; .*"
                                            r"inverting\.zeiler_fergus\(model, x, result\.target, "
                                            r"examples=result\)"):
            draw(results["top"])
        draw(results["zf"])
    region = rf.region(model, "c1", (0, 0))
    with pytest.raises(TypeError, match="each row must be a GrowthRow .* got a slice"):
        plot.receptive_field_growth(region)
    with pytest.raises(TypeError, match="each region must be a NestedRegion .* got a slice; that "
                                        "is one region"):
        plot.receptive_field_regions(region, input_shape=(8, 8))
    with pytest.raises(TypeError, match="each row must be a GrowthRow .* got a dict"):
        plot.receptive_field_growth({"c1": 3})


def test_array_figures_name_the_right_object(model, data):
    import tensorflow as tf

    x, _ = data
    acts = features.activations(model, x[:2], ["c1"])
    with pytest.raises(TypeError, match=r"maps is a dict .* maps\['conv1'\]\[0\]"):
        plot.activation_maps(acts)
    with pytest.raises(ValueError, match=r"\(1, 6, 6, 3\); for example i of a batch give maps"):
        plot.activation_mosaic(acts["c1"][:1])
    with pytest.raises(TypeError, match=r"x is a tf\.data\.Dataset"):
        plot.images(tf.data.Dataset.from_tensor_slices(x))
    with pytest.raises(ValueError, match="non-empty batch"):
        plot.images(x[:0])
    with pytest.raises(ValueError, match=r"x has shape \(0, 8, 8, 1\)"):
        plot.saliency_maps(x[:0], {"gradient": x[:0]})
    with pytest.raises(TypeError, match="img is a tuple of 2 arrays"):
        plot.show_image(None, (x, np.arange(12)))
    with pytest.raises(TypeError, match="tiles must be a list of images, got a dict"):
        plot.montage({"a": x[0]})
    with pytest.raises(TypeError, match="s is a dict"):
        plot.to_map({"gradient": x})
    with pytest.raises(TypeError, match="n must be an int, got an array"):
        plot.grid(x)
    with pytest.raises(ValueError, match="k has shape .* patterns.conv_kernels"):
        plot.kernels(np.zeros((3, 3, 1)))
    with pytest.raises(ValueError, match="showmat draws a 2-D matrix"):
        plot.showmat(np.zeros(3))
    with pytest.raises(TypeError, match=r"results must be a dict \{filter name: array\}, got a "
                                        "list"):
        plot.convolutions(np.zeros((4, 4)), [np.zeros((4, 4))], {})
    with pytest.raises(ValueError, match="highlight 3 is not a class index 0..1"):
        plot.probabilities([0.2, 0.8], highlight=3)
    with pytest.raises(TypeError, match="values is a dict"):
        plot.symmetric_limit({"a": 1})


def test_saliency_maps_takes_the_maps_of_one_method_as_an_array(model, data):
    x, _ = data
    maps = saliency.gradient(model, x[:2], 0)
    fig, axes = plot.saliency_maps(x[:2], maps)
    assert axes.shape == (2, 2) and axes[0, 1].get_title() == "map 1"


def test_integer_images_for_a_model_that_scales_its_input():
    """uint8 pixels into a model with Rescaling(1/255) give what the [0, 1] images give the same
    layers without it; the same pixels into a model without Rescaling are refused, with advice."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(13)
    inner = keras.Sequential([keras.Input((8, 8, 1)),
                              keras.layers.Conv2D(3, 3, activation="relu", name="c1"),
                              keras.layers.Flatten(), keras.layers.Dense(3)], name="inner")
    inputs = keras.Input((8, 8, 1))
    outer = keras.Model(inputs, inner(keras.layers.Rescaling(1 / 255)(inputs)), name="outer")
    pixels = np.random.default_rng(14).integers(0, 256, (6, 8, 8, 1)).astype(np.uint8)
    unit = pixels.astype(np.float32) / 255
    np.testing.assert_allclose(features.feature_values(outer, pixels, 1).values,
                               features.feature_values(inner, unit, 1).values, rtol=1e-5)
    np.testing.assert_allclose(saliency.gradient(outer, pixels, 1) * 255,
                               saliency.gradient(inner, unit, 1), rtol=1e-4, atol=1e-6)
    r = occlusion.sensitivity_map(outer, pixels[0], 1, patch=3)
    np.testing.assert_array_equal(r.fill, [255.0])
    np.testing.assert_allclose(r.values, occlusion.sensitivity_map(inner, unit[0], 1, patch=3)
                               .values, rtol=1e-4, atol=1e-6)
    ds = tf.data.Dataset.from_tensor_slices(pixels).batch(4)
    got = ma.scan(outer, ds, "inner/c1", count=2, progress=False)["inner/c1"]
    ref = ma.scan(inner, unit, "c1", count=2, progress=False)["c1"]
    np.testing.assert_array_equal(got.high.indices, ref.high.indices)
    with pytest.raises(TypeError, match=r"model 'inner' does not scale its input .* give "
                                        r"x\.astype\('float32'\) / 255"):
        features.feature_values(inner, pixels, 1)
