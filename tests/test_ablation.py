"""ablation.predict: the model's output with feature maps of one layer replaced by a constant,
checked against computations written out by hand (a 2-layer net worked on paper, the course CNN
split at conv3 and finished in NumPy, a residual block of MobileNetV2 replayed layer by layer)."""
import keras
import numpy as np
import pytest
from keras import layers
from model_weights import same_weights, weights_of

from cnn_helper import ablation


def _images(n, shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n,) + shape).astype("float32")


# --------------------------------------------------------------------------- a net worked by hand


@pytest.fixture(scope="module")
def tiny():
    """Sequential: a 1x1 convolution with y_0 = x and y_1 = 1 - x, then the sum of all 8 values
    of the 2x2x2 maps (a Dense layer of ones): the output is 4 whatever x is."""
    model = keras.Sequential([keras.Input((2, 2, 1)),
                              layers.Conv2D(2, 1, name="conv"),
                              layers.Flatten(name="flatten"),
                              layers.Dense(1, name="sum")], name="tiny")
    model.get_layer("conv").set_weights([np.array([[[[1.0, -1.0]]]]), np.array([0.0, 1.0])])
    model.get_layer("sum").set_weights([np.ones((8, 1)), np.zeros(1)])
    return model


def test_a_net_worked_by_hand(tiny):
    x = _images(3, (2, 2, 1))
    sum_x = x.sum(axis=(1, 2, 3))[:, None]                   # the sum of the 4 pixels
    np.testing.assert_allclose(ablation.predict(tiny, x, "conv", []), 4.0, atol=1e-6)
    # without y_1 = 1 - x only y_0 = x is left: sum(x)
    np.testing.assert_allclose(ablation.predict(tiny, x, "conv", 1), sum_x, atol=1e-6)
    # y_0 held at v = 0.5: sum(0.5 + 1 - x) = 6 - sum(x)
    np.testing.assert_allclose(ablation.predict(tiny, x, "conv", [0], value=0.5), 6 - sum_x,
                               atol=1e-6)
    # both maps at v = -2: 8 * -2, whatever x is
    np.testing.assert_allclose(ablation.predict(tiny, x, "conv", (0, 1), value=-2), -16.0,
                               atol=1e-6)


# --------------------------------------------------------------------------- the course CNN


def _finish_by_hand(model, y_conv3):
    """The course CNN from conv3's output on, in NumPy: flatten, dense + ReLU, logits, softmax
    (the dropouts are off at inference)."""
    w_dense, b_dense = model.get_layer("dense").get_weights()
    w_logits, b_logits = model.get_layer("logits").get_weights()
    hidden = np.maximum(y_conv3.reshape(len(y_conv3), -1) @ w_dense + b_dense, 0)
    logits = hidden @ w_logits + b_logits
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def course(shipped_cnn, bundled):
    (_, _), (x_test, _) = bundled
    x = x_test[:20]
    up_to_conv3 = keras.Model(shipped_cnn.input, shipped_cnn.get_layer("conv3").output)
    return shipped_cnn, x, np.asarray(up_to_conv3(x))


def test_nothing_ablated_is_the_model_itself(course):
    model, x, _ = course
    np.testing.assert_allclose(ablation.predict(model, x, "conv3", []), model(x), atol=1e-6)


@pytest.mark.parametrize("channels, value", [(15, 0.0), ([3, 15, 40], 0.0), (15, 2.5)])
def test_the_course_cnn_against_a_hand_split(course, channels, value):
    model, x, y_conv3 = course
    changed = y_conv3.copy()
    changed[..., channels] = value
    expected = _finish_by_hand(model, changed)
    found = ablation.predict(model, x, "conv3", channels, value=value)
    assert found.shape == (20, 10) and found.dtype == np.float32
    np.testing.assert_allclose(found, expected, atol=1e-5)
    assert np.abs(expected - _finish_by_hand(model, y_conv3)).max() > 1e-3   # it did change


def test_the_result_does_not_depend_on_batch_size(course):
    model, x, _ = course
    whole = ablation.predict(model, x, "conv2", [0, 5], batch_size=256)
    for size in (1, 7, "auto"):
        np.testing.assert_allclose(ablation.predict(model, x, "conv2", [0, 5], batch_size=size),
                                   whole, atol=1e-6)


def test_one_image_gives_one_row(course):
    model, x, _ = course
    one = ablation.predict(model, x[0], "conv1", 2)
    assert one.shape == (10,)
    np.testing.assert_allclose(one, ablation.predict(model, x[:1], "conv1", 2)[0], atol=1e-6)


def test_the_model_is_not_changed(course):
    model, x, _ = course
    before, outputs_before = weights_of(model), np.asarray(model(x))
    ablation.predict(model, x, "conv3", list(range(64)), value=3.0)
    assert same_weights(before, weights_of(model))
    np.testing.assert_array_equal(np.asarray(model(x)), outputs_before)


# --------------------------------------------------------------------------- a branching graph


@pytest.fixture(scope="module")
def mobilenet():
    """MobileNetV2's first blocks (weights=None, 32x32) under a dense head, flat and nested.
    block_1_project_BN feeds two layers: block_2_expand and the residual sum block_2_add."""
    keras.utils.set_random_seed(3)
    net = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35,
                                         input_shape=(32, 32, 3))
    pool, dense = layers.GlobalAveragePooling2D(), layers.Dense(4)
    flat = keras.Model(net.input, dense(pool(net.get_layer("block_2_add").output)))
    base = keras.Model(net.input, net.get_layer("block_2_add").output, name="base")
    i = keras.Input((32, 32, 3))
    nested = keras.Model(i, dense(pool(base(i))), name="nested")
    return flat, nested, pool, dense


def _residual_block_by_hand(flat, pool, dense, x, channels, value):
    """block_1_project_BN's output with ``channels`` set to ``value``, then block 2 (expand,
    depthwise, project, and the residual sum) and the head, each layer called by hand."""
    up_to_block_1 = keras.Model(flat.input, flat.get_layer("block_1_project_BN").output)
    y = np.array(up_to_block_1(x))
    y[..., channels] = value
    h = y
    for name in ("block_2_expand", "block_2_expand_BN", "block_2_expand_relu",
                 "block_2_depthwise", "block_2_depthwise_BN", "block_2_depthwise_relu",
                 "block_2_project", "block_2_project_BN"):
        h = flat.get_layer(name)(h)
    return np.asarray(dense(pool(flat.get_layer("block_2_add")([y, h]))))


@pytest.mark.parametrize("value", [0.0, 1.5])
def test_a_layer_that_feeds_a_residual_sum(mobilenet, value):
    flat, nested, pool, dense = mobilenet
    x = _images(3, (32, 32, 3), seed=4)
    expected = _residual_block_by_hand(flat, pool, dense, x, [1, 4], value)
    np.testing.assert_allclose(ablation.predict(flat, x, "block_1_project_BN", [1, 4],
                                                value=value), expected, atol=1e-5)
    # the same layer inside a nested base model
    np.testing.assert_allclose(ablation.predict(nested, x, "base/block_1_project_BN", [1, 4],
                                                value=value), expected, atol=1e-5)
    assert np.abs(expected - np.asarray(flat(x))).max() > 1e-4                  # it did change


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_are_explained(course, tiny):
    model, x, _ = course
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        ablation.predict(model, x, "conv9", 0)
    with pytest.raises(ValueError, match=r"channels \[64\] are out of range .* 0..63"):
        ablation.predict(model, x, "conv3", [1, 64])
    with pytest.raises(ValueError, match=r"channels \[-1\] are out of range"):
        ablation.predict(model, x, "conv3", -1)
    with pytest.raises(ValueError, match=r"x has shape \(20, 27, 27, 1\)"):
        ablation.predict(model, x[:, :27, :27], "conv3", 0)
    with pytest.raises(ValueError, match="value must be a finite number.*nan"):
        ablation.predict(model, x, "conv3", 0, value=float("nan"))
    with pytest.raises(TypeError, match="channels must be an int or a list of ints, got 2.0"):
        ablation.predict(model, x, "conv3", 2.0)
    with pytest.raises(ValueError, match="batch_size"):
        ablation.predict(model, x, "conv3", 0, batch_size=0)


def test_a_layer_without_channels_is_refused():
    i = keras.Input((2, 2, 1))
    total = layers.Lambda(lambda t: keras.ops.sum(t, axis=(1, 2, 3)), name="total")(i)
    model = keras.Model(i, layers.Dense(1)(layers.Reshape((1,))(total)))
    with pytest.raises(ValueError, match="layer 'total' has output shape \\(\\).*no channels"):
        ablation.predict(model, _images(2, (2, 2, 1)), "total", 0)
