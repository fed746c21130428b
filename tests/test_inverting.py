"""The Zeiler & Fergus figure: top examples, saliency of the max location, crops to the field."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from cnn_helper import Feature, inverting, max_activation, plot, receptive_field


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    h = keras.layers.MaxPooling2D(2, name="p1")(h)
    h = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="c2")(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(2, name="head")(h)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).random((30, 12, 12, 1)).astype("float32")
    return model, x


def hand_saliency(model, image, layer, channel, idx):
    """d y_(l),idx,k / d x for one image, straight from a sub-model and a tape."""
    sub = keras.Model(model.inputs, model.get_layer(layer).output)
    x = tf.constant(image[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = sub(x)[(0,) + tuple(idx) + (channel,)]
    return tape.gradient(y, x).numpy()[0]


@pytest.mark.parametrize("rule", ["gradient", "guided", "deconvnet"])
def test_crops_are_the_receptive_field_of_the_max_location(tiny, rule):
    model, x = tiny
    feature = Feature("c2", 1)
    zf = inverting.zeiler_fergus(model, x, feature, count=5, rule=rule)
    top = max_activation.top_examples(model, x, feature, count=5)
    np.testing.assert_array_equal(zf.indices, top.high.indices)
    np.testing.assert_array_equal(zf.locations, top.high.locations)
    assert np.all(np.diff(zf.values) <= 0)
    for i in range(5):
        idx = tuple(zf.locations[i])
        region = receptive_field.region(model, "c2", idx)
        assert zf.regions[i] == region
        np.testing.assert_array_equal(zf.patches[i], x[zf.indices[i]][region])
        np.testing.assert_array_equal(zf.saliency_patches[i], zf.saliency[i][region])
        outside = zf.saliency[i].copy()
        outside[region] = 0
        assert np.all(outside == 0), "saliency of one location must vanish outside its field"
        for (lo, hi), s in zip(zf.windows[i], region):
            assert lo <= s.start <= s.stop <= hi and hi - lo == 8   # c2's field is 8 wide


def test_saliency_matches_a_hand_built_tape(tiny):
    model, x = tiny
    zf = inverting.zeiler_fergus(model, x, Feature("c2", 2), count=4)
    for i in range(4):
        expected = hand_saliency(model, x[zf.indices[i]], "c2", 2, zf.locations[i])
        np.testing.assert_allclose(zf.saliency[i], expected, rtol=1e-5, atol=1e-7)
        assert np.abs(expected).max() > 0


def test_a_fixed_location_is_kept_and_examples_can_be_reused(tiny):
    model, x = tiny
    scans = max_activation.scan(model, x, ["c1"], count=6, progress=False)
    zf = inverting.zeiler_fergus(model, x, Feature("c1", 3), count=6,
                                 examples=scans["c1"].channel(3))
    direct = inverting.zeiler_fergus(model, x, Feature("c1", 3), count=6)
    np.testing.assert_array_equal(zf.indices, direct.indices)
    np.testing.assert_allclose(zf.saliency, direct.saliency, rtol=1e-6)
    fixed = inverting.zeiler_fergus(model, x, Feature("c1", 0, location=(4, 5)), count=3)
    assert fixed.target.location == (4, 5)
    assert all(tuple(loc) == (4, 5) for loc in fixed.locations)
    assert all(p.shape == (3, 3, 1) for p in fixed.patches)


def test_mnist_cnn_and_figure(shipped_cnn, bundled):
    (_, _), (x_test, _) = bundled
    zf = inverting.zeiler_fergus(shipped_cnn, x_test[:300], Feature("conv3", 10), count=9,
                                 rule="guided")
    assert len(zf) == 9 and zf.saliency.shape == (9, 28, 28, 1)
    interior = [p for p, w in zip(zf.patches, zf.windows)
                if all(0 <= lo and hi <= 28 for lo, hi in w)]
    assert all(p.shape == (18, 18, 1) for p in interior)      # conv3 sees 18 x 18 pixels
    fig, axes = plot.zeiler_fergus(zf)
    assert axes.shape == (3, 7) and fig.axes


def test_keras_applications_model():
    model = keras.applications.MobileNet(weights=None, input_shape=(64, 64, 3), include_top=False)
    x = np.random.default_rng(1).random((3, 64, 64, 3)).astype("float32")
    zf = inverting.zeiler_fergus(model, x, Feature("conv_pw_2_relu", 5), count=2)
    size = receptive_field.field(model, "conv_pw_2_relu").size
    for i in range(2):
        outside = zf.saliency[i].copy()
        outside[zf.regions[i]] = 0
        assert np.all(outside == 0)
        assert all(hi - lo == n for (lo, hi), n in zip(zf.windows[i], size))


def test_bad_input(tiny):
    model, x = tiny
    with pytest.raises(ValueError, match="rule 'occlusion' is not one of"):
        inverting.zeiler_fergus(model, x, Feature("c2", 0), rule="occlusion")
    with pytest.raises(ValueError, match="no spatial map"):
        inverting.zeiler_fergus(model, x, Feature("head", 0))
    with pytest.raises(TypeError, match="Feature"):
        inverting.zeiler_fergus(model, x, 1)
    with pytest.raises(ValueError, match="channel 7 is out of range"):
        inverting.zeiler_fergus(model, x, Feature("c2", 7))
    with pytest.raises(ValueError, match="count=40 is larger"):
        inverting.zeiler_fergus(model, x, Feature("c2", 0), count=40)
    top = max_activation.top_examples(model, x, Feature("c2", 0), count=2)
    with pytest.raises(ValueError, match="fewer than count=9"):
        inverting.zeiler_fergus(model, x, Feature("c2", 0), count=9, examples=top)
    weights_before = [w.copy() for w in model.get_weights()]
    inverting.zeiler_fergus(model, x, Feature("c2", 0), count=2, rule="deconvnet")
    for a, b in zip(weights_before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_free_input_size_comes_from_x_and_gates_pass_on():
    """Issue 9: a model whose input size is None (EfficientNet's default) has fields that depend
    on the size ("same" padding with stride 2): zeiler_fergus takes it from x. A layer after a
    squeeze-and-excitation gate is the whole input unless gates="local" is passed on."""
    keras.utils.set_random_seed(4)
    ops = keras.ops
    inputs = keras.Input((None, None, 1))
    h = keras.layers.Conv2D(3, 3, strides=2, padding="same", activation="relu", name="s2")(inputs)
    gated = h * ops.sigmoid(ops.mean(h, axis=(1, 2), keepdims=True))
    outputs = keras.layers.Conv2D(2, 3, padding="same", name="after")(gated)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(2).random((8, 11, 11, 1)).astype("float32")
    zf = inverting.zeiler_fergus(model, x, Feature("s2", 1), count=3)
    for location, region, window in zip(zf.locations, zf.regions, zf.windows):
        idx = tuple(int(i) for i in location)
        assert region == receptive_field.region(model, "s2", idx, input_shape=(11, 11, 1))
        assert all(hi - lo == 3 for lo, hi in window)
    with pytest.raises(ValueError, match="global gate.*gates='local'"):
        inverting.zeiler_fergus(model, x, Feature("after", 0), count=2)
    local = inverting.zeiler_fergus(model, x, Feature("after", 0), count=2, gates="local")
    assert len(local.gates) == 1
    # s2 3x3/2 same on 11 (pad_total 2, p 1): 3, jump 2; after 3x3: 3 + 2*2 = 7
    assert all(hi - lo == 7 for window in local.windows for lo, hi in window)
    assert zf.gates == ()


def test_a_layer_after_the_target_does_not_matter():
    """Issue 9: a layer no rule fits (ConvNeXt's LayerScale was one) stopped zeiler_fergus for
    the layers before it too; a layer after it gets a clear error before any work is done."""
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.gamma = self.add_weight(shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.gamma

    keras.utils.set_random_seed(5)
    inputs = keras.Input((10, 10, 1))
    h = keras.layers.Conv2D(2, 3, activation="relu", name="c1")(inputs)
    h = keras.layers.Conv2D(2, 3, padding="same", name="c2")(Scale(name="scale")(h))
    model = keras.Model(inputs, h)
    x = np.random.default_rng(3).random((5, 10, 10, 1)).astype("float32")
    zf = inverting.zeiler_fergus(model, x, Feature("c1", 0), count=2)
    assert all(p.shape == (3, 3, 1) for p in zf.patches)
    with pytest.raises(ValueError, match="'scale'.*pointwise=\\['Scale'\\]"):
        inverting.zeiler_fergus(model, x, Feature("c2", 0), count=2)
    declared = inverting.zeiler_fergus(model, x, Feature("c2", 0), count=2, pointwise=["Scale"])
    assert all(hi - lo == 5 for window in declared.windows for lo, hi in window)
