"""cnn_helper.features: activations, Feature values vs. hand-built sub-models and NumPy pooling."""
import keras
import numpy as np
import pytest
from keras import layers
from model_weights import same_weights, weights_of

from cnn_helper import (
    Feature,
    FeatureValues,
    _graph,  # internal contract: test_one_multi_output_model_is_called_once...
    features,
)

RNG = np.random.default_rng(0)


def sub_model_output(model, layer_name, x):
    """The reference: a hand-built sub-model from the model's input to one layer's output."""
    sub = keras.Model(model.inputs[0], model.get_layer(layer_name).output)
    return np.asarray(sub(x, training=False))


def numpy_feature(a, channel, location=None, pool="max"):
    """Hand-computed Feature values and locations of activations a (N, *spatial, C)."""
    maps = a[..., channel]
    n, spatial = len(maps), maps.shape[1:]
    if not spatial:
        return maps, np.zeros((n, 0), int)
    flat = maps.reshape(n, -1)
    arg = flat.argmax(axis=1)
    locs = np.stack(np.unravel_index(arg, spatial), axis=1)
    if isinstance(location, tuple):
        return maps[(slice(None),) + location], np.tile(location, (n, 1))
    if location is None and pool == "mean":
        return flat.mean(axis=1), locs
    return flat[np.arange(n), arg], locs


# --------------------------------------------------------------------------- models to probe


def sequential_with_input():
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((12, 12, 2)),
                             layers.Conv2D(3, 3, activation="relu", name="sc"),
                             layers.MaxPooling2D(2, name="sp"), layers.Flatten(name="sf"),
                             layers.Dense(4, name="sd")], name="seq")


def nested_model():
    """input -> pre -> [Sequential: s_conv, act] -> [functional: f_conv, act] -> flatten -> head."""
    keras.utils.set_random_seed(2)
    seq_inner = keras.Sequential([keras.Input((10, 10, 3)),
                                  layers.Conv2D(4, 3, padding="same", name="s_conv"),
                                  layers.Activation("relu", name="act")], name="seq_inner")
    i = keras.Input((10, 10, 4))
    f = layers.Conv2D(5, 3, name="f_conv")(i)
    f = layers.Activation("tanh", name="act")(f)
    func_inner = keras.Model(i, f, name="func_inner")
    inputs = keras.Input((10, 10, 1), name="image")
    y = layers.Conv2D(3, 3, padding="same", name="pre")(inputs)
    y = seq_inner(y)
    y = func_inner(y)
    y = layers.Flatten(name="flatten")(y)
    outputs = layers.Dense(6, name="head")(y)
    return keras.Model(inputs, outputs, name="outer")


def conv1d_model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((20, 3))
    y = layers.Conv1D(4, 5, name="c1")(inputs)
    y = layers.GlobalMaxPooling1D(name="gp")(y)
    return keras.Model(inputs, layers.Dense(2, name="out")(y))


def conv3d_model():
    keras.utils.set_random_seed(4)
    return keras.Sequential([keras.Input((6, 7, 8, 2)),
                             layers.Conv3D(3, 3, padding="same", name="c3"),
                             layers.Flatten(), layers.Dense(2, name="out")])


def dense_model():
    keras.utils.set_random_seed(5)
    inputs = keras.Input((16,))
    y = layers.Dense(8, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, layers.Dense(3, name="out")(y))


def images_for(model, n=11, seed=0):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).random((n,) + shape).astype(np.float32)


# --------------------------------------------------------------------------- values


CNN_LAYERS = ["conv1", "pool1", "conv2", "conv3", "dense", "logits", "softmax"]


def test_activations_equal_hand_built_sub_models(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    x = x_test[:20]
    acts = features.activations(shipped_cnn, x, CNN_LAYERS)
    assert list(acts) == CNN_LAYERS
    for name in CNN_LAYERS:
        ref = sub_model_output(shipped_cnn, name, x)
        assert acts[name].shape == ref.shape
        np.testing.assert_allclose(acts[name], ref, rtol=1e-5, atol=1e-5)
    assert acts["conv1"].shape == (20, 28, 28, 16)
    np.testing.assert_allclose(acts["softmax"], np.asarray(shipped_cnn(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("feature", [Feature("conv2", 5), Feature("conv2", 5, pool="mean"),
                                     Feature("conv3", 63, location="argmax"),
                                     Feature("conv1", 0, location=(3, 17)),
                                     Feature("pool2", 31, location=[6, 0]), Feature("dense", 12),
                                     Feature("logits", 8)])
def test_feature_values_equal_hand_computed_pooling(shipped_cnn, bundled, feature):
    _, (x_test, _) = bundled
    x = x_test[:25]
    fv = features.feature_values(shipped_cnn, x, feature)
    assert isinstance(fv, FeatureValues)
    ref = sub_model_output(shipped_cnn, feature.layer, x)
    values, locs = numpy_feature(ref, feature.channel, feature.location, feature.pool)
    assert fv.values.shape == (25,) and fv.values.dtype == np.float32
    np.testing.assert_allclose(fv.values, values, rtol=1e-5, atol=1e-5)
    if feature.location is None and feature.pool == "mean":
        return
    assert fv.locations.shape == locs.shape
    np.testing.assert_array_equal(fv.locations, locs)
    # the reported location holds the reported value
    if locs.shape[1]:
        at = ref[(np.arange(25),) + tuple(fv.locations.T) + (feature.channel,)]
        np.testing.assert_allclose(at, fv.values, rtol=1e-5, atol=1e-5)


def test_max_and_argmax_agree_and_mean_is_smaller(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    x = x_test[:10]
    by_max = features.feature_values(shipped_cnn, x, Feature("conv2", 3))
    by_arg = features.feature_values(shipped_cnn, x, Feature("conv2", 3, location="argmax"))
    by_mean = features.feature_values(shipped_cnn, x, Feature("conv2", 3, pool="mean"))
    np.testing.assert_array_equal(by_max.values, by_arg.values)
    np.testing.assert_array_equal(by_max.locations, by_arg.locations)
    assert np.all(by_mean.values <= by_max.values + 1e-6)


def test_class_index_target_is_the_head_output(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    x = x_test[:8]
    fv = features.feature_values(shipped_cnn, x, 7)
    np.testing.assert_allclose(fv.values, np.asarray(shipped_cnn(x))[:, 7], rtol=1e-5, atol=1e-6)
    assert fv.locations.shape == (8, 0)
    assert features.feature_values(shipped_cnn, x, np.int64(7)).values.shape == (8,)


def test_layer_given_as_a_layer_object(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    conv2 = shipped_cnn.get_layer("conv2")
    a = features.activations(shipped_cnn, x_test[:4], [conv2])
    np.testing.assert_allclose(a["conv2"], sub_model_output(shipped_cnn, "conv2", x_test[:4]),
                               rtol=1e-5, atol=1e-5)
    fv = features.feature_values(shipped_cnn, x_test[:4], Feature(conv2, 1))
    np.testing.assert_allclose(fv.values, a["conv2"][..., 1].reshape(4, -1).max(1), rtol=1e-6)


def test_one_image_in_no_batch_axis_out(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    one = features.activations(shipped_cnn, x_test[3], ["conv1", "dense"])
    batch = features.activations(shipped_cnn, x_test[3:4], ["conv1", "dense"])
    assert one["conv1"].shape == (28, 28, 16) and one["dense"].shape == (64,)
    np.testing.assert_allclose(one["conv1"], batch["conv1"][0], rtol=1e-6)
    assert features.activations(shipped_cnn, x_test[:2], "conv1")["conv1"].shape == (2, 28, 28, 16)


def test_several_layers_equal_separate_sub_models(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    x = x_test[:15]
    together = features.activations(shipped_cnn, x, ["conv3", "conv1", "logits"])
    for name in ("conv3", "conv1", "logits"):
        alone = features.activations(shipped_cnn, x, [name])[name]
        np.testing.assert_allclose(together[name], alone, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(together[name], sub_model_output(shipped_cnn, name, x),
                                   rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- one forward pass


class CountImages(layers.Layer):
    """Identity layer that counts the images flowing through it (inside compiled graphs too)."""

    def build(self, input_shape):
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, dtype="int32",
                                    name="seen")

    def call(self, x):
        self.seen.assign_add(keras.ops.shape(x)[0])
        return x


def counting_model():
    keras.utils.set_random_seed(6)
    inputs = keras.Input((9, 9, 1))
    y = CountImages(name="count")(inputs)
    a = layers.Conv2D(3, 3, name="a")(y)
    b = layers.Conv2D(2, 3, name="b")(a)
    c = layers.Dense(4, name="c")(layers.Flatten(name="flat")(b))
    return keras.Model(inputs, c)


def test_several_layers_take_one_forward_pass():
    model = counting_model()
    x = images_for(model, n=10)
    counter = model.get_layer("count").seen
    features.activations(model, x, ["a", "b", "c"], batch_size=4)
    assert int(counter.numpy()) == 10        # each image went through the network once, not 3 times
    features.activations(model, x, ["a", "b", "c"], batch_size=3)
    assert int(counter.numpy()) == 20


def test_one_multi_output_model_is_called_once_per_batch(shipped_cnn, bundled, monkeypatch):
    """The contract behind "one forward pass": activations asks the graph module for ONE compiled
    function of all the layers and calls it once per batch."""
    _, (x_test, _) = bundled
    calls = []
    real = _graph.forward  # internal contract

    def spy(model, layers):
        fn = real(model, layers)

        def counted(x):
            calls.append((len(layers), len(x)))
            return fn(x)
        return counted

    monkeypatch.setattr(_graph, "forward", spy)
    features.activations(shipped_cnn, x_test[:50], ["conv1", "conv2", "dense"], batch_size=20)
    assert calls == [(3, 20), (3, 20), (3, 10)]        # one 3-output model, one call per batch


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_results_do_not_depend_on_batch_size(shipped_cnn, bundled, batch_size):
    _, (x_test, _) = bundled
    x = x_test[:30]
    ref = features.activations(shipped_cnn, x, ["conv2", "logits"], batch_size=256)
    got = features.activations(shipped_cnn, x, ["conv2", "logits"], batch_size=batch_size)
    for name in ref:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-5)
    f = Feature("conv2", 4, location="argmax")
    a = features.feature_values(shipped_cnn, x, f, batch_size=256)
    b = features.feature_values(shipped_cnn, x, f, batch_size=batch_size)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(a.locations, b.locations)


# ----------------------------------------------------------------------- kinds of models and layers


def test_sequential_model_started_with_keras_input():
    model = sequential_with_input()
    x = images_for(model)
    acts = features.activations(model, x, ["sc", "sp", "sd"])
    for name in ("sc", "sp", "sd"):
        np.testing.assert_allclose(acts[name], sub_model_output(model, name, x),
                                   rtol=1e-5, atol=1e-6)
    fv = features.feature_values(model, x, Feature("sc", 2, pool="mean"))
    np.testing.assert_allclose(fv.values, acts["sc"][..., 2].reshape(len(x), -1).mean(1), rtol=1e-5)
    fv = features.feature_values(model, x, 3)                         # head class index
    np.testing.assert_allclose(fv.values, acts["sd"][:, 3], rtol=1e-5, atol=1e-6)


def test_nested_models_by_path_and_by_unique_bare_name():
    model = nested_model()
    x = images_for(model, n=6)
    seq_inner, func_inner = model.get_layer("seq_inner"), model.get_layer("func_inner")
    pre = sub_model_output(model, "pre", x)
    s_conv_ref = np.asarray(keras.Model(seq_inner.inputs[0],
                                        seq_inner.get_layer("s_conv").output)(pre))
    seq_out = np.asarray(seq_inner(pre))
    f_conv_ref = np.asarray(keras.Model(func_inner.inputs[0],
                                        func_inner.get_layer("f_conv").output)(seq_out))
    names = features.layer_names(model)
    for name in ("pre", "seq_inner", "seq_inner/s_conv", "seq_inner/act", "func_inner/f_conv",
                 "func_inner/act", "head"):
        assert name in names
    acts = features.activations(model, x, ["seq_inner/s_conv", "f_conv", "func_inner/act",
                                           "seq_inner", "func_inner", "head"])
    np.testing.assert_allclose(acts["seq_inner/s_conv"], s_conv_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["f_conv"], f_conv_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["func_inner/act"], np.tanh(f_conv_ref), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["seq_inner"], seq_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["func_inner"], np.tanh(f_conv_ref), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["head"], np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    by_path = features.feature_values(model, x, Feature("func_inner/f_conv", 4))
    by_name = features.feature_values(model, x, Feature("f_conv", 4))
    np.testing.assert_array_equal(by_path.values, by_name.values)
    np.testing.assert_allclose(by_name.values, numpy_feature(f_conv_ref, 4)[0],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(by_name.locations, numpy_feature(f_conv_ref, 4)[1])


def test_a_nested_functional_model_as_the_head():
    """The class index of a model whose last layer is itself a functional model."""
    keras.utils.set_random_seed(7)
    i = keras.Input((6, 6, 1))
    body = keras.Model(
        i, layers.Dense(3, name="scores")(layers.Flatten()(layers.Conv2D(2, 3, name="k")(i))),
        name="body")
    inputs = keras.Input((6, 6, 1))
    model = keras.Model(inputs, body(layers.Rescaling(2.0, name="scale")(inputs)))
    x = images_for(model, n=4)
    fv = features.feature_values(model, x, 2)
    np.testing.assert_allclose(fv.values, np.asarray(model(x))[:, 2], rtol=1e-5, atol=1e-6)
    acts = features.activations(model, x, ["body/k", "body"])
    np.testing.assert_allclose(acts["body"], np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    ref = np.asarray(keras.Model(body.inputs[0], body.get_layer("k").output)(2.0 * x))
    np.testing.assert_allclose(acts["body/k"], ref, rtol=1e-5, atol=1e-6)


def test_ambiguous_bare_name_in_nested_models_lists_the_paths():
    model = nested_model()
    with pytest.raises(ValueError, match="ambiguous") as err:
        features.activations(model, images_for(model, 2), ["act"])
    assert "seq_inner/act" in str(err.value) and "func_inner/act" in str(err.value)


def test_conv1d_layer():
    model = conv1d_model()
    x = images_for(model)
    ref = sub_model_output(model, "c1", x)
    np.testing.assert_allclose(features.activations(model, x, ["c1"])["c1"], ref,
                               rtol=1e-5, atol=1e-6)
    for feature in (Feature("c1", 1), Feature("c1", 3, location=(15,)),
                    Feature("c1", 2, pool="mean")):
        fv = features.feature_values(model, x, feature)
        values, locs = numpy_feature(ref, feature.channel, feature.location, feature.pool)
        np.testing.assert_allclose(fv.values, values, rtol=1e-5, atol=1e-6)
        if feature.pool == "max":
            np.testing.assert_array_equal(fv.locations, locs)
            assert fv.locations.shape == (len(x), 1)


def test_conv3d_layer():
    model = conv3d_model()
    x = images_for(model, n=5)
    ref = sub_model_output(model, "c3", x)
    np.testing.assert_allclose(features.activations(model, x, ["c3"])["c3"], ref,
                               rtol=1e-5, atol=1e-6)
    for feature in (Feature("c3", 0), Feature("c3", 2, location=(5, 0, 7)),
                    Feature("c3", 1, location="argmax")):
        fv = features.feature_values(model, x, feature)
        values, locs = numpy_feature(ref, feature.channel, feature.location, feature.pool)
        np.testing.assert_allclose(fv.values, values, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(fv.locations, locs)
        assert fv.locations.shape == (5, 3)


def test_dense_layers_on_vectors():
    model = dense_model()
    x = images_for(model)
    assert x.shape == (11, 16)
    ref = sub_model_output(model, "hidden", x)
    np.testing.assert_allclose(features.activations(model, x, ["hidden"])["hidden"], ref,
                               rtol=1e-5, atol=1e-6)
    fv = features.feature_values(model, x, Feature("hidden", 5))
    np.testing.assert_allclose(fv.values, ref[:, 5], rtol=1e-5, atol=1e-6)
    assert fv.locations.shape == (11, 0)
    one = features.activations(model, x[0], ["hidden"])["hidden"]       # one vector: no batch axis
    np.testing.assert_allclose(one, ref[0], rtol=1e-5, atol=1e-6)


def test_output_shape(shipped_cnn):
    assert features.output_shape(shipped_cnn, "conv2") == (14, 14, 32)
    assert features.output_shape(shipped_cnn, "logits") == (10,)
    model = nested_model()
    assert features.output_shape(model, "f_conv") == (8, 8, 5)


# --------------------------------------------------------------------------- bad input


def test_unknown_layer_lists_the_valid_names(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    with pytest.raises(ValueError, match="no layer 'conv9'") as err:
        features.activations(shipped_cnn, x_test[:2], ["conv9"])
    for name in ("conv1", "conv2", "conv3", "dense", "logits"):
        assert f"'{name}'" in str(err.value)
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        features.feature_values(shipped_cnn, x_test[:2], Feature("conv9", 0))


def test_a_layer_of_another_model_is_an_error(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    stranger = dense_model().get_layer("hidden")
    with pytest.raises(ValueError, match="not part of model"):
        features.activations(shipped_cnn, x_test[:2], [stranger])


@pytest.mark.parametrize("channel", [16, -1, 100])
def test_channel_out_of_range_says_the_range(shipped_cnn, bundled, channel):
    _, (x_test, _) = bundled
    with pytest.raises(ValueError, match=r"channels 0\.\.15"):
        features.feature_values(shipped_cnn, x_test[:2], Feature("conv1", channel))


def test_class_index_out_of_range(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    with pytest.raises(ValueError, match=r"0\.\.9"):
        features.feature_values(shipped_cnn, x_test[:2], 10)


@pytest.mark.parametrize("shape", [(5, 28, 28), (5, 28, 28, 3), (5, 32, 32, 1), (28, 28), (784,)])
def test_wrong_image_shape_says_the_expected_shape(shipped_cnn, shape):
    x = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 1\)") as err:
        features.activations(shipped_cnn, x, ["conv1"])
    assert str(shape) in str(err.value)
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 1\)"):
        features.feature_values(shipped_cnn, x, Feature("conv1", 0))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, bool])
def test_non_float_images_are_a_type_error(shipped_cnn, dtype):
    x = np.zeros((2, 28, 28, 1), dtype)
    with pytest.raises(TypeError, match="float"):
        features.activations(shipped_cnn, x, ["conv1"])
    with pytest.raises(TypeError, match="float"):
        features.feature_values(shipped_cnn, x, Feature("conv1", 0))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_images_are_an_error(shipped_cnn, bundled, bad):
    _, (x_test, _) = bundled
    x = x_test[:3].copy()
    x[1, 5, 5, 0] = bad
    with pytest.raises(ValueError, match="NaN"):
        features.activations(shipped_cnn, x, ["conv1"])
    with pytest.raises(ValueError, match="NaN"):
        features.feature_values(shipped_cnn, x, Feature("conv1", 0))


@pytest.mark.parametrize("location", [(28, 0), (0, -1), (14, 14)])
def test_location_outside_the_map(shipped_cnn, bundled, location):
    _, (x_test, _) = bundled
    layer = "conv1" if location != (14, 14) else "conv2"               # conv2's map is 14 x 14
    with pytest.raises(ValueError, match="outside the map") as err:
        features.feature_values(shipped_cnn, x_test[:2], Feature(layer, 0, location=location))
    assert "spatial shape" in str(err.value)


def test_location_with_the_wrong_number_of_indices(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    with pytest.raises(ValueError, match="has 3 indices"):
        features.feature_values(shipped_cnn, x_test[:2], Feature("conv1", 0, location=(1, 2, 3)))
    with pytest.raises(ValueError, match=r"'dense' has no spatial axes .* drop location=\(1,\)"):
        features.feature_values(shipped_cnn, x_test[:2], Feature("dense", 0, location=(1,)))


def test_sequential_without_input_says_how_to_fix_it():
    model = keras.Sequential([layers.Conv2D(2, 3, name="c"), layers.Flatten(),
                              layers.Dense(2, name="d")])
    x = np.zeros((2, 8, 8, 1), np.float32)
    for call in (lambda: features.activations(model, x, ["c"]),
                 lambda: features.feature_values(model, x, Feature("c", 0)),
                 lambda: features.feature_values(model, x, 1),
                 lambda: features.output_shape(model, "c")):
        with pytest.raises(TypeError, match=r"keras\.Input") as err:
            call()
        assert "no defined input" in str(err.value)


@pytest.mark.parametrize("target", ["conv1", 2.0, True, None, (1, 2)])
def test_target_must_be_an_int_or_a_feature(shipped_cnn, bundled, target):
    _, (x_test, _) = bundled
    with pytest.raises(TypeError, match="class index"):
        features.feature_values(shipped_cnn, x_test[:2], target)


def test_bad_features():
    with pytest.raises(TypeError, match="channel must be an int"):
        Feature("conv1", 1.0)
    with pytest.raises(TypeError, match="channel must be an int"):
        Feature("conv1", True)
    with pytest.raises(ValueError, match="pool"):
        Feature("conv1", 1, pool="sum")
    with pytest.raises(ValueError, match="argmax"):
        Feature("conv1", 1, location="argmax", pool="mean")
    with pytest.raises(TypeError, match="location"):
        Feature("conv1", 1, location=(1.5, 2))
    with pytest.raises(TypeError, match="location"):
        Feature("conv1", 1, location="center")
    assert Feature("conv1", np.int64(2), location=[1, 2]) == Feature("conv1", 2, location=(1, 2))
    # the max is at the argmax
    assert Feature("conv1", 2, location="argmax") == Feature("conv1", 2)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, None])
def test_bad_batch_size(shipped_cnn, bundled, batch_size):
    _, (x_test, _) = bundled
    with pytest.raises(ValueError, match="batch_size"):
        features.activations(shipped_cnn, x_test[:2], ["conv1"], batch_size=batch_size)


# --------------------------------------------------------------------------- the user's model


@pytest.mark.parametrize("build", [sequential_with_input, nested_model, conv3d_model])
def test_the_users_model_is_not_modified(build):
    model = build()
    x = images_for(model, n=4)
    before_weights = weights_of(model)
    before_layers = list(model.layers)
    before_names = features.layer_names(model)
    before_outputs = list(model.outputs)
    out_before = np.asarray(model(x))
    top = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    features.activations(model, x, top)
    features.feature_values(model, x, 0)
    inner = [n for n in before_names if "/" in n]
    if inner:
        features.activations(model, x, inner)
    assert same_weights(weights_of(model), before_weights)
    assert list(model.layers) == before_layers
    assert features.layer_names(model) == before_names
    assert list(model.outputs) == before_outputs
    np.testing.assert_array_equal(np.asarray(model(x)), out_before)


def test_the_shipped_model_is_not_modified(shipped_cnn, bundled):
    _, (x_test, _) = bundled
    before = weights_of(shipped_cnn)
    layers_before = list(shipped_cnn.layers)
    features.activations(shipped_cnn, x_test[:5], CNN_LAYERS)
    features.feature_values(shipped_cnn, x_test[:5], Feature("conv2", 1, location="argmax"))
    assert same_weights(before, weights_of(shipped_cnn))
    assert list(shipped_cnn.layers) == layers_before
