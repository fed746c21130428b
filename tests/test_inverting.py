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
