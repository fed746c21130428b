"""Receptive fields: the analytic recurrence against the measured support of the gradient, and
against values derived by hand for our MNIST CNN and keras.applications models."""
import dataclasses

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from keras import layers as L

from cnn_helper import features, models, plot
from cnn_helper import receptive_field as rf


def locations(shape):
    return [tuple(int(i) for i in location) for location in np.ndindex(*shape)]


def bbox(mask):
    """The bounding box of a boolean mask as slices (None when the mask is empty)."""
    where = np.argwhere(mask)
    if not len(where):
        return None
    return tuple(slice(int(a), int(b) + 1) for a, b in zip(where.min(0), where.max(0)))


def check_against_gradient(model, mode="linear", **kwargs):
    """For every local layer and every location: the gradient's support lies inside region(), and
    for an interior location (its box not clipped by the image) the support's bounding box IS the
    region. Returns the number of interior locations checked (so a test can insist on some).

    Near the border a region may be larger than the support: the analytic box also counts padded
    locations, which see nothing; hence the equality only inside.
    """
    interior = 0
    for name, f in rf.compute(model).items():
        if not f.is_local or f.kind == "InputLayer":
            continue
        # the spatial shape is Keras' own
        keras_shape = features.output_shape(model, name)[:-1]
        assert f.shape == tuple(keras_shape), name
        where = locations(f.shape)
        support = rf.empirical_support(model, name, where, mode=mode, batch_size=1024, **kwargs)
        for location, s in zip(where, support):
            region = rf.region(model, name, location)
            inside = np.zeros(f.input_shape, bool)
            inside[region] = True
            assert not (s & ~inside).any(), (name, location, bbox(s), region)
            if all(lo >= 0 and hi <= n
                   for (lo, hi), n in zip(f.bounds(location), f.input_shape)):
                interior += 1
                if mode == "linear":
                    assert bbox(s) == region, (name, location, bbox(s), region)
    return interior


# --------------------------------------------------------------------------- small nets, 1-D to 3-D


def net_1d_strided_dilated():
    keras.utils.set_random_seed(1)
    x = inp = keras.Input((37, 2))
    x = L.Conv1D(3, 3, strides=2, activation="relu", name="c1")(x)
    x = L.Conv1D(3, 3, dilation_rate=2, padding="same", name="c2")(x)
    x = L.MaxPooling1D(2, name="p1")(x)
    x = L.Conv1D(3, 4, strides=2, padding="same", name="c3")(x)
    x = L.Conv1D(3, 3, padding="causal", name="causal")(x)
    x = L.SeparableConv1D(3, 2, padding="same", name="sep")(x)
    x = L.AveragePooling1D(3, strides=1, padding="same", name="ap")(x)
    return keras.Model(inp, x)


def test_1d_strided_dilated_pooled_matches_hand_values_and_gradient():
    model = net_1d_strided_dilated()
    f = rf.compute(model)
    # by hand, (size, jump, start) with size' = size + (k_eff-1) jump, jump' = jump s,
    # start' = start + ((k_eff-1)/2 - p) jump:
    # c1 k3 s2 valid:        3, 2, 0 + (1 - 0) 1 = 1
    # c2 k3 d2 (k_eff 5) same s1 on n=18: pad_total 4, p 2: 3 + 4*2 = 11, 2, 1 + (2 - 2) 2 = 1
    # p1 2 s2 valid:         11 + 1*2 = 13, 4, 1 + 0.5*2 = 2
    # c3 k4 s2 same on n=9: pad_total (5-1)*2 + 4 - 9 = 3, p 1: 13 + 3*4 = 25, 8, 2 + (1.5-1)*4 = 4
    # causal k3: p = 2:      25 + 2*8 = 41, 8, 4 + (1 - 2)*8 = -4
    # sep k2 same on n=5: pad_total 1, p 0: 41 + 8 = 49, 8, -4 + 0.5*8 = 0
    # ap 3 s1 same: p 1:     49 + 16 = 65, 8, 0
    expected = {"c1": (3, 2, 1), "c2": (11, 2, 1), "p1": (13, 4, 2), "c3": (25, 8, 4),
                "causal": (41, 8, -4), "sep": (49, 8, 0), "ap": (65, 8, 0)}
    for name, (size, jump, start) in expected.items():
        assert (f[name].size, f[name].jump, f[name].start) == ((size,), (jump,), (start,)), name
    assert check_against_gradient(model) > 20


def test_1d_padding_cropping_and_stride1_transposed_convs():
    keras.utils.set_random_seed(2)
    x = inp = keras.Input((29, 1))
    x = L.ZeroPadding1D((2, 1), name="zp")(x)
    x = L.Conv1D(2, 3, strides=2, name="c")(x)
    x = L.Conv1DTranspose(2, 3, name="tv")(x)
    x = L.Conv1DTranspose(2, 4, padding="same", dilation_rate=2, name="ts")(x)
    x = L.Cropping1D((1, 2), name="cr")(x)
    x = L.Conv1D(2, 2, name="c2")(x)
    model = keras.Model(inp, x)
    f = rf.compute(model)
    # zp: start -2; c k3 s2: size 3, jump 2, start -2 + 1 = -1
    # tv (valid, k 3): a conv k 3 on the input padded by 2: size 3 + 2*2 = 7,
    #    start -1 - 2*2 + 1*2 = -3
    # ts (same, k_eff 7): padded by 3 left: size 7 + 6*2 = 19, start -3 - 3*2 + 3*2 = -3
    # cr: start -3 + 1*2 = -1
    assert (f["zp"].start, f["c"].size, f["c"].start) == ((-2,), (3,), (-1,))
    assert (f["tv"].size, f["tv"].start, f["ts"].size, f["ts"].start) == ((7,), (-3,), (19,), (-3,))
    assert (f["cr"].start, f["c2"].size, f["c2"].jump) == ((-1,), (21,), (2,))
    assert check_against_gradient(model) > 5


def test_2d_strided_dilated_padded_cropped_pooled():
    keras.utils.set_random_seed(3)
    x = inp = keras.Input((23, 19, 2))
    x = L.Conv2D(3, (3, 5), strides=(2, 1), padding="same", activation="relu", name="c1")(x)
    x = L.ZeroPadding2D(((1, 2), (0, 3)), name="zp")(x)
    x = L.DepthwiseConv2D(3, dilation_rate=(1, 2), name="dw")(x)
    x = L.MaxPooling2D(2, padding="same", name="mp")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.SeparableConv2D(3, 2, strides=2, activation="relu", name="sep")(x)
    x = L.Cropping2D(((0, 1), (1, 0)), name="cr")(x)
    x = L.Conv2DTranspose(3, 3, padding="same", name="tr")(x)
    x = L.AveragePooling2D((1, 2), name="ap")(x)
    model = keras.Model(inp, x)
    f = rf.compute(model)
    # rows: c1 k3 s2 same on 23 (pad_total 2, p 1): 3, 2, 0; zp 1: start -2; dw k3: 7, 2, 0;
    #       mp 2 s2 same on 13 (pad_total 1, p 0): 9, 4, 1
    # cols: c1 k5 s1 same (p 2): 5, 1, 0; dw k3 d2 (k_eff 5) valid: 9, 1, 2;
    #       mp 2 s2 same on 18 (pad_total 0): 10, 2, 2.5
    assert (f["mp"].size, f["mp"].jump, f["mp"].start) == ((9, 10), (4, 2), (1, 2.5))
    assert f["bn"].size == f["mp"].size
    assert check_against_gradient(model) > 3


def test_3d_strided_padded_cropped_dilated():
    keras.utils.set_random_seed(4)
    x = inp = keras.Input((13, 14, 11, 1))
    x = L.Conv3D(2, 3, strides=2, padding="same", name="c1")(x)
    x = L.ZeroPadding3D((1, 0, 2), name="zp")(x)
    x = L.MaxPooling3D((2, 1, 2), name="mp")(x)
    x = L.Cropping3D(((0, 1), (1, 0), (0, 0)), name="cr")(x)
    x = L.Conv3D(2, (2, 3, 1), dilation_rate=(1, 2, 1), activation="relu", name="c2")(x)
    model = keras.Model(inp, x)
    f = rf.compute(model)
    # c1 k3 s2 same: n=13 -> pad_total 2, p 1, start 0; n=14 -> pad_total 1, p 0, start 1;
    # n=11 -> pad_total 2, start 0. All size 3, jump 2.
    assert (f["c1"].size, f["c1"].jump, f["c1"].start) == ((3, 3, 3), (2, 2, 2), (0, 1, 0))
    # c2: (2, 3 d2 -> k_eff 5, 1) on jump (4, 2, 4): size (5+4, 3+8, 5) = (9, 11, 5)
    assert f["c2"].size == (9, 11, 5)
    assert check_against_gradient(model) > 10


def test_branched_residual_concatenate_nested_and_maximum():
    keras.utils.set_random_seed(5)
    inp = keras.Input((20, 20, 3))
    a = L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="a1")(inp)
    a = L.Conv2D(4, 3, padding="same", name="a2")(a)
    b = L.Conv2D(4, 1, strides=2, name="short")(inp)
    x = L.Add(name="add")([a, b])
    x = L.ReLU(name="relu")(x)
    c1 = L.Conv2D(2, 1, name="b1x1")(x)
    c5 = L.Conv2D(2, 5, padding="same", name="b5x5")(x)
    cp = L.MaxPooling2D(3, strides=1, padding="same", name="bpool")(x)
    x = L.Concatenate(name="cat")([c1, c5, cp])
    inner = keras.Sequential([keras.Input((None, None, 8)), L.Conv2D(3, 3, name="ic"),
                              L.MaxPooling2D(2, name="ip")], name="block")
    x = inner(x)
    y = L.Maximum(name="max")([x, L.Conv2D(3, 1, name="side")(x)])
    model = keras.Model(inp, y)
    f = rf.compute(model)
    # a1 k3 s2 same on 20 (pad_total 1, p 0): 3, 2, start 1; a2: 7, 2, 1;
    # short k1 s2: 1, 2, 0. Union: [1-3, 1+4) U [0, 1) = [-2, 5): size 7, start 1
    assert (f["add"].size, f["add"].jump, f["add"].start) == ((7, 7), (2, 2), (1, 1))
    # the 5x5 branch is the widest: 7 + 4*2 = 15
    assert f["cat"].size == (15, 15)
    # nested layers are named "outer/inner"; ic valid k3: 15 + 2*2 = 19, start 1 + 2 = 3
    assert (f["block/ic"].size, f["block/ic"].start) == ((19, 19), (3, 3))
    assert f["block"] == rf.ReceptiveField("block", "Sequential", (21, 21), (4, 4), (4.0, 4.0),
                                           (4, 4), (20, 20))
    assert rf.field(model, "ic") == f["block/ic"]      # a unique bare name of a nested layer
    assert check_against_gradient(model) > 3


def test_gradient_support_of_the_model_itself_lies_in_the_region():
    """mode="model": the real ReLUs and max pooling, on random inputs: a subset of the field."""
    model = net_1d_strided_dilated()
    check_against_gradient(model, mode="model", n_samples=3)


# --------------------------------------------------------------------------- our MNIST CNN


@pytest.fixture(scope="module")
def cnn():
    return models.load("cnn", "shipped")


def test_mnist_cnn_by_hand(cnn):
    # conv1 3x3 same: size 3, jump 1, start 0 (p = 1 cancels (k-1)/2)
    # pool1 2x2 s2:   3 + 1*1 = 4, jump 2, start 0 + 0.5*1 = 0.5
    # conv2 3x3 same: 4 + 2*2 = 8, jump 2, start 0.5
    # pool2 2x2 s2:   8 + 1*2 = 10, jump 4, start 0.5 + 0.5*2 = 1.5
    # conv3 3x3 same: 10 + 2*4 = 18, jump 4, start 1.5
    f = rf.compute(cnn)
    expected = {"conv1": (3, 1, 0.0, 28), "pool1": (4, 2, 0.5, 14), "conv2": (8, 2, 0.5, 14),
                "pool2": (10, 4, 1.5, 7), "conv3": (18, 4, 1.5, 7)}
    for name, (size, jump, start, n) in expected.items():
        assert f[name] == rf.ReceptiveField(name, f[name].kind, (size, size), (jump, jump),
                                            (start, start), (n, n), (28, 28)), name
    # location 3 of conv3 is centred on 1.5 + 3*4 = 13.5: pixels 13.5 -/+ 8.5 -> [5, 23)
    assert rf.region(cnn, "conv3", (3, 3)) == (slice(5, 23), slice(5, 23))
    # location (0, 6): rows centred on 1.5, [-7, 11) clipped to [0, 11); cols on 1.5 + 6*4 = 25.5,
    # [17, 35) clipped to [17, 28)
    assert rf.region(cnn, "conv3", (0, 6)) == (slice(0, 11), slice(17, 28))
    for name in ("flatten", "dense", "logits", "softmax"):
        assert not f[name].is_local and "flatten" in f[name].whole_input
    assert list(f)[:6] == ["input", "conv1", "pool1", "conv2", "pool2", "conv3"]


def test_mnist_cnn_support_on_a_real_digit(cnn):
    from cnn_helper import data

    (_, _), (x, y) = data.load_mnist("bundled", verbose=False)
    digit = x[y == 8][0]
    where = locations((7, 7))
    support = rf.empirical_support(cnn, "conv3", where, x=digit, mode="model")
    for location, s in zip(where, support):
        inside = np.zeros((28, 28), bool)
        inside[rf.region(cnn, "conv3", location)] = True
        assert not (s & ~inside).any(), location
    assert support[24].any()       # the centre location does depend on the digit
    one = rf.empirical_support(cnn, "conv3", (3, 3), channel=5)
    assert bbox(one) == rf.region(cnn, "conv3", (3, 3))


def test_empirical_support_does_not_change_the_model(cnn):
    x = np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 1)).astype("float32")
    before = [w.copy() for w in cnn.get_weights()]
    pred = np.asarray(cnn(x, training=False))
    rf.empirical_support(cnn, "conv2", (2, 2))
    assert all(np.array_equal(a, b) for a, b in zip(before, cnn.get_weights()))
    assert cnn.get_layer("conv1").get_config()["activation"] == "relu"
    np.testing.assert_allclose(np.asarray(cnn(x, training=False)), pred)


def test_summary_growth_and_nested_regions(cnn):
    text = rf.summary(cnn)
    assert "conv3" in text and "18x18" in text and "whole input" in text
    row = list(rf.compute(cnn).values())[5]
    assert (row.layer, row.kind, row.shape, row.size, row.jump, row.start, row.whole_input) == (
        "conv3", "Conv2D", (7, 7), (18, 18), (4, 4), (1.5, 1.5), None)

    growth = rf.growth(cnn, "conv3", (3, 1), axis=0)
    # location 3 of conv3 reads pool2 2..4, which read conv2 4..9, pool1 3..10 (through conv2's
    # 3x3 window at jump 2: 4*2 - 1 .. 9*2 + 1 over 2 = 3..10), conv1 6..21, input 5..22
    assert [(r.layer, r.first, r.last) for r in growth] == [
        ("input", 5, 22), ("conv1", 6, 21), ("pool1", 3, 10), ("conv2", 4, 9), ("pool2", 2, 4),
        ("conv3", 3, 3)]
    assert all(r.interval == (5, 23) for r in growth)

    nested = rf.nested_regions(cnn, "conv3", (1, 5))
    assert [r.layer for r in nested] == ["conv1", "pool1", "conv2", "pool2", "conv3"]
    for small, big in zip(nested, nested[1:]):
        for s, b in zip(small.region, big.region):
            assert b.start <= s.start and s.stop <= b.stop, (small, big)
    assert nested[-1].region == rf.region(cnn, "conv3", (1, 5))
    assert rf.nearest_location(cnn, "pool2", (13.5, 13.5)) == (3, 3)


def test_plots_of_the_growing_field(cnn):
    plt.close("all")
    fig, ax = plot.receptive_field_growth(rf.growth(cnn, "conv3", (3, 3)))
    assert ax.figure is fig and len(ax.patches) == 28 + 28 + 14 + 14 + 7 + 7 + 1   # + the band
    coloured = [p for p in ax.patches if p.get_alpha() is None and
                p.get_facecolor()[:3] != matplotlib.colors.to_rgb(plot.CELL_COLOUR)]
    assert len(coloured) == 18 + 16 + 8 + 6 + 3 + 1     # the locations that feed conv3 (3, .)
    image = np.random.default_rng(0).uniform(0, 1, (28, 28, 1))
    fig, ax = plot.receptive_field_regions(rf.nested_regions(cnn, "conv3", (3, 3)), image)
    assert len(ax.patches) == 5 and len(ax.get_legend().get_texts()) == 5
    fig, ax = plot.receptive_field_regions(rf.nested_regions(cnn, "conv2", (0, 0)),
                                           input_shape=(28, 28))
    assert plt.get_fignums() == []
    with pytest.raises(ValueError, match="input_shape"):
        plot.receptive_field_regions(rf.nested_regions(cnn, "conv2", (0, 0)))


# --------------------------------------------------------------------------- keras.applications


def test_vgg16_by_hand():
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    f = rf.compute(model)
    # every conv is 3x3 same stride 1 (adds 2 * jump, start unchanged); every pool is 2x2 stride 2
    # (adds 1 * jump, doubles it, start += jump / 2):
    # block1: conv 3, conv 5, pool 6 (jump 2, start 0.5)
    # block2: 6 + 2*2 = 10, 14, pool 16 (jump 4, start 1.5)
    # block3: 16 + 2*4 = 24, 32, 40, pool 44 (jump 8, start 3.5)
    # block4: 44 + 2*8 = 60, 76, 92, pool 100 (jump 16, start 7.5)
    # block5: 100 + 2*16 = 132, 164, 196, pool 212 (jump 32, start 15.5)
    expected = {"block1_conv1": (3, 1, 0), "block1_conv2": (5, 1, 0), "block1_pool": (6, 2, 0.5),
                "block2_conv2": (14, 2, 0.5), "block2_pool": (16, 4, 1.5),
                "block3_pool": (44, 8, 3.5), "block4_conv1": (60, 8, 3.5),
                "block4_pool": (100, 16, 7.5), "block5_conv3": (196, 16, 7.5),
                "block5_pool": (212, 32, 15.5)}
    for name, (size, jump, start) in expected.items():
        assert (f[name].size, f[name].jump, f[name].start) == ((size,) * 2, (jump,) * 2,
                                                               (start,) * 2), name
    assert f["block5_pool"].shape == (2, 2)
    # location (1, 0) of block5_pool: rows centred on 15.5 + 32 = 47.5, [-58, 154); cols on 15.5,
    # [-90, 122): both clipped to the 64 pixels
    assert rf.region(model, "block5_pool", (1, 0)) == (slice(0, 64), slice(0, 64))


def test_resnet50_by_hand():
    model = keras.applications.ResNet50(weights=None, include_top=False, pooling="avg",
                                        input_shape=(64, 64, 3))
    f = rf.compute(model)
    # conv1_pad 3:             size 1, jump 1, start -3
    # conv1_conv 7x7 s2 valid: size 7, jump 2, start -3 + 3 = 0
    # pool1_pad 1:             start 0 - 1*2 = -2
    # pool1_pool 3x3 s2 valid: size 7 + 2*2 = 11, jump 4, start -2 + 1*2 = 0
    # a bottleneck block is 1x1 (stride s on the first block of a stage), 3x3 same, 1x1, added to
    # a 1x1 (stride s) shortcut: the union is the 3x3 path, + 2 * (jump after the stride)
    # conv2 (3 blocks, jump 4): 11 + 3*8 = 35; block1 alone: 19
    # conv3 (4 blocks, jump 8): 35 + 4*16 = 99; block1: 51, its strided 1x1 conv keeps 35
    # conv4 (6 blocks, jump 16): 99 + 6*32 = 291
    # conv5 (3 blocks, jump 32): 291 + 3*64 = 483; starts stay 0 (3x3 same stride 1: p = 1)
    expected = {"conv1_pad": (1, 1, -3), "conv1_conv": (7, 2, 0), "pool1_pad": (7, 2, -2),
                "pool1_pool": (11, 4, 0), "conv2_block1_out": (19, 4, 0),
                "conv2_block3_out": (35, 4, 0), "conv3_block1_1_conv": (35, 8, 0),
                "conv3_block1_0_conv": (35, 8, 0), "conv3_block1_out": (51, 8, 0),
                "conv3_block4_out": (99, 8, 0), "conv4_block6_out": (291, 16, 0),
                "conv5_block3_out": (483, 32, 0)}
    for name, (size, jump, start) in expected.items():
        assert (f[name].size, f[name].jump, f[name].start) == ((size,) * 2, (jump,) * 2,
                                                               (start,) * 2), name
    assert f["conv5_block3_out"].shape == (2, 2)
    with pytest.raises(ValueError, match="avg_pool.*whole input"):
        rf.region(model, "avg_pool", (0,))


def test_mobilenet_by_hand():
    model = keras.applications.MobileNet(weights=None, include_top=False, input_shape=(64, 64, 3))
    f = rf.compute(model)
    # conv1 3x3 s2 same on 64: pad_total (32-1)*2 + 3 - 64 = 1, p 0: size 3, jump 2, start 1
    # stride-1 blocks: depthwise 3x3 same (+ 2*jump), pointwise 1x1
    # stride-2 blocks: ZeroPadding ((0,1),(0,1)) (start unchanged), depthwise 3x3 s2 valid:
    #   + 2*jump, start += jump, jump doubles
    # dw1 7 (j2, s1); dw2 11 (j4, s3); dw3 19; dw4 27 (j8, s7); dw5 43; dw6 59 (j16, s15);
    # dw7..11 + 5*32 -> 219; dw12 251 (j32, s31); dw13 315
    expected = {"conv1": (3, 2, 1), "conv_dw_1": (7, 2, 1), "conv_pad_2": (7, 2, 1),
                "conv_dw_2": (11, 4, 3), "conv_pw_3": (19, 4, 3), "conv_dw_4": (27, 8, 7),
                "conv_dw_6": (59, 16, 15), "conv_dw_11": (219, 16, 15),
                "conv_dw_12": (251, 32, 31), "conv_pw_13_relu": (315, 32, 31)}
    for name, (size, jump, start) in expected.items():
        assert (f[name].size, f[name].jump, f[name].start) == ((size,) * 2, (jump,) * 2,
                                                               (start,) * 2), name


def test_squeeze_excitation_gate_is_whole_input_unless_asked():
    inp = keras.Input((12, 12, 2))
    x = L.Conv2D(4, 3, padding="same", name="conv")(inp)
    g = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    g = L.Conv2D(4, 1, activation="sigmoid", name="excite")(g)
    y = L.Multiply(name="gated")([x, g])
    model = keras.Model(inp, L.Conv2D(2, 3, padding="same", name="after")(y))
    assert "squeeze" in rf.compute(model)["after"].whole_input
    with pytest.raises(ValueError, match="whole input"):
        rf.region(model, "after", (0, 0))
    local = rf.compute(model, gates="local")
    assert (local["gated"].size, local["after"].size) == ((3, 3), (5, 5))
    assert local["after"].gates == ("gated",) and local["conv"].gates == ()
    check_gates_against_gradient(model, "after")
    # the same block nested in a transfer-learning head: its gates are held inside the base too
    inputs = keras.Input((12, 12, 2))
    head = keras.Model(inputs, L.Dense(3)(L.GlobalAveragePooling2D()(model(inputs))))
    path = f"{model.name}/after"
    assert check_gates_against_gradient(head, path) == dataclasses.replace(local["after"],
                                                                          layer=path)


def check_gates_against_gradient(model, layer):
    """What compute says of a gated layer is what the gradient of the linear twin shows: with
    gates="whole" the gradient of every location reaches every pixel (through the gate's
    global mean); with gates="local" and the gates held, it fills exactly region(gates="local").
    """
    f = rf.compute(model)[layer]
    assert not f.is_local and "global gate" in f.whole_input
    where = locations(f.shape)
    assert rf.empirical_support(model, layer, where).all()
    local = rf.compute(model, gates="local")[layer]
    support = rf.empirical_support(model, layer, where, gates="local")
    for location, s in zip(where, support):
        assert bbox(s) == rf.region(model, layer, location, gates="local"), location
    return local


# --------------------------------------------------------------------------- operations on tensors


def residual_with_plus():
    keras.utils.set_random_seed(6)
    inp = keras.Input((16, 16, 1))
    s = L.Conv2D(2, 3, padding="same", name="s")(inp)
    h = L.Conv2D(2, 3, padding="same", name="h1")(s)
    h = L.Conv2D(2, 3, padding="same", name="h2")(h)
    y = keras.ops.relu(s + h)                 # two operations: Add and Relu, not layers
    return keras.Model(inp, L.Conv2D(2, 1, name="after")(y))


def test_residual_written_with_plus_is_a_merge():
    """Issue 9: ``s + h`` was "not known", and the advised pointwise=['Add'] took the field of
    s alone (3) where the gradient reaches 7 pixels: an elementwise operation of several
    tensors is now a merge, the union of their fields."""
    model = residual_with_plus()
    # s: 3x3 same: 3; h1: 5; h2: 7; s + h: the union of 3 and 7 around the same centre: 7
    for kwargs in ({}, {"pointwise": ["Add"]}):
        f = rf.compute(model, **kwargs)
        assert (f["s"].size, f["h2"].size, f["after"].size) == ((3, 3), (7, 7), (7, 7))
        assert "add" not in f            # operations have no layer name; they are walked through
    assert check_against_gradient(model) > 100
    assert bbox(rf.empirical_support(model, "after", (8, 8))) == (slice(5, 12), slice(5, 12))


def test_operations_on_tensors_follow_their_rules():
    """x * 2.0, ops.maximum (a max, an average in the linear twin), ops.concatenate on channels,
    ops.softmax and ops.mean over channels keep or unite fields; ops.mean over space mixes."""
    keras.utils.set_random_seed(7)
    ops = keras.ops
    inp = keras.Input((15, 15, 2))
    a = L.Conv2D(3, 3, padding="same", name="a")(inp)
    b = L.Conv2D(3, 5, padding="same", name="b")(inp)
    y = ops.concatenate([a * 2.0, ops.maximum(b, 0.0)], axis=-1)
    z = ops.softmax(y, axis=-1) + ops.mean(y, axis=-1, keepdims=True)
    w = L.Conv2D(2, 3, strides=2, name="w")(z)
    model = keras.Model(inp, [w, ops.mean(w, axis=(1, 2))])
    f = rf.compute(model)
    # the union of 3 and 5 is 5; w 3x3 stride 2 valid: 5 + 2 = 7, jump 2, start 0 + 1 = 1
    assert (f["w"].size, f["w"].jump, f["w"].start) == ((7, 7), (2, 2), (1.0, 1.0))
    assert check_against_gradient(model) > 10


def test_a_pointwise_layer_of_several_inputs_is_a_union():
    class Blend(L.Layer):
        def call(self, inputs):
            return 0.5 * inputs[0] + inputs[1]

    keras.utils.set_random_seed(8)
    inp = keras.Input((12, 12, 1))
    a = L.Conv2D(2, 3, padding="same", name="a")(inp)
    b = L.Conv2D(2, 3, padding="same", name="b2")(L.Conv2D(2, 3, padding="same", name="b1")(inp))
    model = keras.Model(inp, L.Conv2D(1, 1, name="after")(Blend(name="blend")([a, b])))
    unknown_field(model, "after", "'blend'.*pointwise=\\['Blend'\\]")
    assert rf.field(model, "after", pointwise=["Blend"]).size == (5, 5)     # not a's 3
    where = locations((12, 12))
    support = rf.empirical_support(model, "after", where, pointwise=["Blend"])
    for location, s in zip(where, support):
        assert bbox(s) == rf.region(model, "after", location, pointwise=["Blend"]), location


def test_squeeze_excitation_written_with_operations():
    keras.utils.set_random_seed(9)
    ops = keras.ops
    inp = keras.Input((12, 12, 2))
    x = L.Conv2D(4, 3, padding="same", name="conv")(inp)
    y = x * ops.sigmoid(ops.mean(x, axis=(1, 2), keepdims=True))
    model = keras.Model(inp, L.Conv2D(2, 3, padding="same", name="after")(y))
    assert "Mean" in rf.compute(model)["after"].whole_input
    local = check_gates_against_gradient(model, "after")
    assert local.size == (5, 5) and len(local.gates) == 1 and "multiply" in local.gates[0]


def test_an_unknown_layer_does_not_stop_the_layers_before_it():
    """Issue 9: a layer no rule fits (here the user's own per-channel scale) stopped compute for
    every layer; now only the layers it feeds are unknown, and say why."""
    class Scale(L.Layer):
        def build(self, shape):
            self.gamma = self.add_weight(shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.gamma

    inp = keras.Input((10, 10, 1))
    x = L.Conv2D(2, 3, padding="same", name="c1")(inp)
    model = keras.Model(inp, L.Conv2D(2, 3, padding="same", name="c2")(Scale(name="scale")(x)))
    f = rf.compute(model)
    assert f["c1"].is_local and f["c1"].size == (3, 3)
    assert rf.region(model, "c1", (5, 5)) == (slice(4, 7), slice(4, 7))
    unknown_field(model, "c2", "'scale' \\(Scale\\).*pointwise=\\['Scale'\\]")
    assert "unknown" in rf.summary(model) and "3x3" in rf.summary(model)
    assert rf.field(model, "c2", pointwise=["Scale"]).size == (5, 5)


# --------------------------------------------------------------------------- bad input


def test_bad_layers_and_locations_are_clear_errors(cnn):
    for layer in ("flatten", "dense", "logits"):
        with pytest.raises(ValueError, match="whole input"):
            rf.region(cnn, layer, (0,))
        with pytest.raises(ValueError, match="whole input"):
            rf.field(cnn, layer)
    with pytest.raises(ValueError, match=r"outside the map.*\(7, 7\)"):
        rf.region(cnn, "conv3", (7, 0))
    with pytest.raises(ValueError, match="outside the map"):
        rf.region(cnn, "conv3", (-1, 0))
    with pytest.raises(ValueError, match="1 indices.*2 spatial axes"):
        rf.region(cnn, "conv3", (1,))
    with pytest.raises(TypeError, match="tuple of ints"):
        rf.region(cnn, "conv3", (1.5, 2))
    with pytest.raises(ValueError, match="no layer 'conv9'.*conv3"):
        rf.field(cnn, "conv9")
    with pytest.raises(ValueError, match="outside the map"):
        rf.empirical_support(cnn, "conv1", (28, 0))
    with pytest.raises(ValueError, match="channel 64"):
        rf.empirical_support(cnn, "conv3", (0, 0), channel=64)
    with pytest.raises(ValueError, match="mode 'exact'"):
        rf.empirical_support(cnn, "conv3", (0, 0), mode="exact")
    with pytest.raises(ValueError, match="gates"):
        rf.compute(cnn, gates="none")


def unknown_field(model, layer, match, **kwargs):
    """The layer's field is unknown: compute() says why (and goes on), field() and region()
    raise a ValueError saying it."""
    f = rf.compute(model, **kwargs)[layer]
    assert not f.is_local and f.unknown is not None and f.whole_input is None
    with pytest.raises(ValueError, match=match):
        rf.field(model, layer, **kwargs)
    with pytest.raises(ValueError, match=match):
        rf.region(model, layer, (0,) * len(f.shape), **kwargs)
    return f


def test_unsupported_graphs_are_clear_errors():
    """An unsupported layer makes its field (and those of the layers it feeds) unknown, with
    the reason: compute() does not stop, field() and region() raise it."""
    inp = keras.Input((8, 8, 1))
    before = L.Conv2D(2, 3, name="before")(inp)
    x = L.Conv2DTranspose(2, 3, strides=2, name="up")(before)
    model = keras.Model(inp, L.Conv2D(1, 1, name="after")(x))
    unknown_field(model, "up", "'up'.*strided transposed")
    unknown_field(model, "after", "'up'.*strided transposed")
    assert rf.field(model, "before").size == (3, 3)          # the layer before is not affected

    a, b = L.Conv2D(2, 1, name="a")(inp), L.Conv2D(2, 1, name="b")(inp)
    unknown_field(keras.Model(inp, L.Concatenate(axis=1, name="cat")([a, b])), "cat",
                  "'cat'.*not the channel axis")

    inp16 = keras.Input((16, 16, 1))
    strided = L.Conv2D(1, 1, strides=2, name="strided")(inp16)
    cropped = L.Cropping2D(4, name="cropped")(inp16)
    unknown_field(keras.Model(inp16, L.Add(name="add")([strided, cropped])), "add",
                  "'add'.*different jumps")

    lam = keras.Model(inp, L.Lambda(lambda t: t * 2, name="double")(inp))
    unknown_field(lam, "double", "'double'.*pointwise=\\['Lambda'\\]")
    assert rf.compute(lam, pointwise=["Lambda"])["double"].size == (1, 1)

    free = keras.Input((None, None, 1))
    model = keras.Model(free, L.Conv2D(1, 3, strides=2, padding="same", name="s2")(free))
    unknown_field(model, "s2", "'s2'.*input_shape")
    assert rf.compute(model, input_shape=(9, 9, 1))["s2"].shape == (5, 5)
