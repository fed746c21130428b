"""cnn_helper.convolution: hand-made teaching tools against scipy and against their definition."""
import numpy as np
import pytest
from scipy.signal import correlate2d

from cnn_helper import convolution as conv

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("name", list(conv.filters()))
def test_every_teaching_filter_matches_scipy(name):
    img = conv.create_img()
    filt = conv.filters()[name]
    out = conv.apply_filt_2d(img, filt)
    assert out.shape == img.shape
    np.testing.assert_allclose(out, correlate2d(img, filt, mode="same"), atol=1e-6)
    assert np.any(out != 0)          # the synthetic image has something for every filter


@pytest.mark.parametrize("img_shape, filt_shape", [((7, 9), (3, 3)), ((12, 5), (5, 5)),
                                                   ((6, 6), (1, 1)), ((10, 11), (3, 5)),
                                                   ((9, 8), (7, 3)), ((4, 4), (5, 5))])
def test_random_images_and_filters_match_scipy(img_shape, filt_shape):
    img = RNG.normal(size=img_shape)
    filt = RNG.normal(size=filt_shape)
    np.testing.assert_allclose(conv.apply_filt_2d(img, filt), correlate2d(img, filt, mode="same"),
                               rtol=1e-4, atol=1e-4)


def test_output_at_rc_is_the_filter_centred_at_rc():
    """out[r, c] = sum_ij F[i, j] img_pad[r + i, c + j], checked by a plain loop."""
    img = RNG.normal(size=(6, 8)).astype(np.float32)
    filt = RNG.normal(size=(3, 5)).astype(np.float32)
    padded = np.pad(img, ((1, 1), (2, 2)))
    out = conv.apply_filt_2d(img, filt)
    for r in range(6):
        for c in range(8):
            assert out[r, c] == pytest.approx(float(np.sum(filt * padded[r:r + 3, c:c + 5])),
                                              abs=1e-5)


def test_delta_image():
    """A single light pixel at (r, c): out[r, c] is the filter's centre weight, and the filter
    centred one step up-left, (r - 1, c - 1), sees the pixel with its bottom-right weight."""
    filt = np.arange(1, 10, dtype=np.float32).reshape(3, 3)     # no symmetry: a flip would show
    img = np.zeros((7, 7), np.float32)
    img[3, 4] = 1.0
    out = conv.apply_filt_2d(img, filt)
    assert out[3, 4] == filt[1, 1]
    assert out[2, 3] == filt[2, 2] and out[4, 5] == filt[0, 0] and out[3, 3] == filt[1, 2]
    np.testing.assert_array_equal(out[2:5, 3:6], filt[::-1, ::-1])
    assert np.count_nonzero(out) == 9


def test_filters_are_the_named_3x3_teaching_filters():
    f = conv.filters()
    assert set(f) == {"vertical edge: light to dark", "horizontal edge: light to dark",
                      "horizontal light band", "vertical light band", "L"}
    assert all(v.shape == (3, 3) for v in f.values())
    v = f["vertical edge: light to dark"]
    # light on the left, dark on the right
    assert np.all(v[:, 0] > 0) and np.all(v[:, 2] < 0)
    np.testing.assert_array_equal(f["horizontal edge: light to dark"], v.T)
    np.testing.assert_array_equal(f["vertical light band"], f["horizontal light band"].T)
    # a light-to-dark vertical edge (light left) gives a positive response at the edge
    img = np.zeros((5, 6), np.float32)
    img[:, :3] = 1
    assert conv.apply_filt_2d(img, v)[2, 2] > 0 and conv.apply_filt_2d(img, v)[2, 3] > 0
    assert conv.apply_filt_2d(1 - img, v)[2, 2] < 0


def test_create_img():
    img = conv.create_img()
    assert img.shape == (10, 10) and img.dtype == np.float32
    assert set(np.unique(img)) == {0.0, 1.0}
    assert conv.create_img(16).shape == (16, 16)
    with pytest.raises(ValueError, match="at least 8"):
        conv.create_img(5)


def test_pad():
    img = RNG.normal(size=(3, 4))
    p = conv.pad(img, 2)
    assert p.shape == (7, 8)
    np.testing.assert_allclose(p[2:5, 2:6], img, rtol=1e-6)
    p[2:5, 2:6] = 0
    assert not p.any()
    np.testing.assert_array_equal(conv.pad(img, 0), img.astype(np.float32))
    assert conv.pad(img).shape == (5, 6)
    with pytest.raises(ValueError, match="non-negative int"):
        conv.pad(img, -1)
    with pytest.raises(ValueError, match="non-negative int"):
        conv.pad(img, 1.5)


@pytest.mark.parametrize("shape", [(2, 2), (3, 4), (4, 3)])
def test_even_filter_is_an_error(shape):
    with pytest.raises(ValueError, match="odd"):
        conv.apply_filt_2d(np.zeros((5, 5)), np.ones(shape))


def test_3d_image_is_an_error():
    with pytest.raises(ValueError, match=r"2-D.*\(5, 5, 1\)"):
        conv.apply_filt_2d(np.zeros((5, 5, 1)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="2-D"):
        conv.apply_filt_2d(np.zeros((5, 5)), np.ones((3, 3, 1)))
    with pytest.raises(ValueError, match="2-D"):
        conv.pad(np.zeros(5))


@pytest.mark.parametrize("bad", [np.array([["a", "b"], ["c", "d"]]),
                                 np.array([[1, None], [2, 3]], dtype=object),
                                 np.ones((3, 3), dtype=complex)])
def test_non_numeric_input_is_a_type_error(bad):
    with pytest.raises(TypeError, match="real numbers"):
        conv.apply_filt_2d(bad, np.ones((3, 3)))
    with pytest.raises(TypeError, match="real numbers"):
        conv.pad(bad)


def test_non_numeric_filter_is_a_type_error():
    with pytest.raises(TypeError, match="filt"):
        conv.apply_filt_2d(np.zeros((4, 4)), np.array([["x"] * 3] * 3))


def test_input_is_not_modified():
    img = RNG.normal(size=(5, 5)).astype(np.float32)
    before = img.copy()
    conv.apply_filt_2d(img, np.ones((3, 3)))
    conv.pad(img)
    np.testing.assert_array_equal(img, before)


# --------------------------------------------------------------------------- backward pass
# The backward pass of a convolution is a transposed convolution.

SHAPES = [((5, 5), (3, 3)), ((7, 9), (3, 3)), ((12, 6), (5, 5)), ((6, 8), (3, 5)),
          ((9, 7), (7, 3)), ((4, 4), (1, 1)), ((3, 4), (5, 5))]


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape)          # float64


@pytest.mark.parametrize("img_shape, filt_shape", SHAPES)
def test_tensorflow_convolution_is_apply_filt_2d(img_shape, filt_shape):
    """tf.nn.conv2d with padding SAME has apply_filt_2d's kernel convention (no flip)."""
    img, filt = _random(img_shape, 1), _random(filt_shape, 2)
    np.testing.assert_allclose(conv.tf_convolution(img, filt), conv.apply_filt_2d(img, filt),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(conv.tf_convolution(img, filt),
                               correlate2d(img, filt, mode="same"), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("img_shape, filt_shape", SHAPES)
def test_transposed_convolution_is_the_input_gradient(img_shape, filt_shape):
    """d/d img of sum(upstream * conv(img)) by tf.GradientTape == the transposed convolution."""
    img, filt, upstream = _random(img_shape, 3), _random(filt_shape, 4), _random(img_shape, 5)
    gradient = conv.input_gradient(img, filt, upstream)
    assert gradient.dtype == np.float64 and gradient.shape == img_shape
    np.testing.assert_allclose(conv.transposed_convolution(upstream, filt), gradient,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("img_shape, filt_shape", SHAPES)
def test_transposed_convolution_is_tf_conv2d_transpose(img_shape, filt_shape):
    import tensorflow as tf

    filt, upstream = _random(filt_shape, 6), _random(img_shape, 7)
    expected = tf.nn.conv2d_transpose(upstream[None, :, :, None], filt[:, :, None, None],
                                      output_shape=(1,) + img_shape + (1,), strides=1,
                                      padding="SAME").numpy()[0, :, :, 0]
    np.testing.assert_allclose(conv.transposed_convolution(upstream, filt), expected,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("img_shape, filt_shape", SHAPES)
def test_adjoint_identity(img_shape, filt_shape):
    """<conv(x), u> == <x, transposed_convolution(u)> (conv in float64 by scipy, which equals
    apply_filt_2d: see the tests above)."""
    x, filt, u = _random(img_shape, 8), _random(filt_shape, 9), _random(img_shape, 10)
    forward = np.sum(correlate2d(x, filt, mode="same") * u)
    assert forward == pytest.approx(np.sum(x * conv.transposed_convolution(u, filt)), rel=1e-12)


def test_transposed_convolution_is_the_transposed_matrix():
    """The convolution is a matrix A (column k: the output of a delta image at pixel k); the
    matrix of transposed_convolution, built the same way, is exactly A transposed."""
    shape, filt = (4, 5), np.arange(1, 10, dtype=np.float64).reshape(3, 3)
    deltas = np.eye(20).reshape(20, *shape)
    a = np.stack([conv.apply_filt_2d(d, filt).ravel() for d in deltas], axis=1)
    a_t = np.stack([conv.transposed_convolution(d, filt).ravel() for d in deltas], axis=1)
    np.testing.assert_array_equal(a_t, a.T)
    assert not np.array_equal(a, a.T)                   # a non-symmetric filter: A is not A^T


def test_transposed_convolution_hand_worked():
    """F = [[1 2 3] [4 5 6] [7 8 9]] on a 3x3 image, zero padding 1.

    - out[1, 1] sees the whole image through F, so its gradient (u = delta at (1, 1)) is F;
    - out[0, 0] sees img[0:2, 0:2] through F[1:3, 1:3]: gradient [[5 6 0] [8 9 0] [0 0 0]];
    - u = 1 everywhere (L = sum(out)): each pixel gets the sum of the weights that touched it,
      e.g. the corner (0, 0) was seen by F[0:2, 0:2] = 1 + 2 + 4 + 5 = 12.
    """
    filt = np.arange(1, 10).reshape(3, 3)
    centre, corner = np.zeros((3, 3)), np.zeros((3, 3))
    centre[1, 1], corner[0, 0] = 1, 1
    np.testing.assert_array_equal(conv.transposed_convolution(centre, filt), filt)
    np.testing.assert_array_equal(conv.transposed_convolution(corner, filt),
                                  [[5, 6, 0], [8, 9, 0], [0, 0, 0]])
    expected = [[12, 21, 16], [27, 45, 33], [24, 39, 28]]
    np.testing.assert_array_equal(conv.transposed_convolution(np.ones((3, 3)), filt), expected)
    np.testing.assert_allclose(conv.input_gradient(np.zeros((3, 3)), filt, np.ones((3, 3))),
                               expected)


def test_backward_pass_bad_input():
    with pytest.raises(ValueError, match="odd"):
        conv.transposed_convolution(np.ones((4, 4)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"upstream has shape \(3, 3\) but img has \(4, 4\)"):
        conv.input_gradient(np.ones((4, 4)), np.ones((3, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="upstream must be a 2-D"):
        conv.transposed_convolution(np.ones((4, 4, 1)), np.ones((3, 3)))
    with pytest.raises(TypeError, match="filt must be real numbers"):
        conv.tf_convolution(np.ones((4, 4)), np.array([["a"] * 3] * 3))


# --------------------------------------------------------------------------- max-pool switches


def _tf_pool_gradient(img, upstream, size):
    """d/d img of sum(upstream * max_pool2d(img)) by tf.GradientTape, and the pooled map."""
    import tensorflow as tf

    x = tf.constant(img[None, :, :, None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        pooled = tf.nn.max_pool2d(x, size, size, "VALID")
        loss = tf.reduce_sum(upstream[None, :, :, None] * pooled)
    return tape.gradient(loss, x).numpy()[0, :, :, 0], pooled.numpy()[0, :, :, 0]


def test_max_pool_switches_hand_worked():
    img = np.array([[1, 3, 2, 0],
                    [4, 2, 1, 5],
                    [0, 1, 7, 2],
                    [6, 2, 3, 1]], dtype=np.float64)
    pooled, switches = conv.max_pool_with_switches(img)
    np.testing.assert_array_equal(pooled, [[4, 5], [6, 7]])
    np.testing.assert_array_equal(switches, [[[1, 0], [1, 3]], [[3, 0], [2, 2]]])
    upstream = np.array([[10.0, 20.0], [30.0, 40.0]])
    expected = np.zeros((4, 4))
    expected[1, 0], expected[1, 3], expected[3, 0], expected[2, 2] = 10, 20, 30, 40
    np.testing.assert_array_equal(conv.unpool(upstream, switches, img.shape), expected)
    gradient, tf_pooled = _tf_pool_gradient(img, upstream, 2)
    np.testing.assert_array_equal(gradient, expected)
    np.testing.assert_array_equal(tf_pooled, pooled)


@pytest.mark.parametrize("shape, size", [((4, 4), 2), ((6, 8), 2), ((7, 5), 2), ((9, 9), 3),
                                         ((10, 7), 3), ((28, 28), 2), ((5, 5), 1)])
def test_unpool_is_tensorflows_max_pool_gradient(shape, size):
    """Random images without ties (a permutation of distinct values); a shape that is not a
    multiple of size drops its last rows/cols, like padding "VALID": they get no gradient."""
    rng = np.random.default_rng(size * 100 + shape[0])
    img = rng.permutation(np.prod(shape)).reshape(shape) / 10.0
    pooled, switches = conv.max_pool_with_switches(img, size)
    upstream = rng.normal(size=pooled.shape)
    gradient, tf_pooled = _tf_pool_gradient(img, upstream, size)
    np.testing.assert_array_equal(pooled, tf_pooled)
    np.testing.assert_allclose(conv.unpool(upstream, switches, shape), gradient, rtol=1e-12)
    np.testing.assert_array_equal(img[switches[..., 0], switches[..., 1]], pooled)
    rows, cols = np.indices(pooled.shape)
    assert np.all(switches[..., 0] // size == rows) and np.all(switches[..., 1] // size == cols)


def test_ties_pick_the_first_max_in_row_major_order():
    img = np.array([[0, 2, 1, 1],
                    [2, 2, 1, 1],
                    [3, 0, 0, 0],
                    [0, 3, 0, 0]])
    pooled, switches = conv.max_pool_with_switches(img)
    np.testing.assert_array_equal(pooled, [[2, 1], [3, 0]])
    np.testing.assert_array_equal(switches, [[[0, 1], [0, 2]], [[2, 0], [2, 2]]])


def test_pooling_bad_input():
    img = np.zeros((4, 4))
    for size in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="size must be a positive int"):
            conv.max_pool_with_switches(img, size)
    with pytest.raises(ValueError, match="larger than the image"):
        conv.max_pool_with_switches(np.zeros((3, 8)), 4)
    pooled, switches = conv.max_pool_with_switches(img)
    with pytest.raises(ValueError, match=r"switches must be integers of shape \(2, 2, 2\)"):
        conv.unpool(pooled, switches[..., 0], img.shape)
    with pytest.raises(ValueError, match=r"switches must be integers"):
        conv.unpool(pooled, switches.astype(float), img.shape)
    with pytest.raises(ValueError, match=r"shape \(3, 3\) must be the \(rows, cols\)"):
        conv.unpool(pooled, np.full((2, 2, 2), 3), (3, 3))
    with pytest.raises(ValueError, match="values must be a 2-D"):
        conv.unpool(pooled[0], switches, img.shape)


# ------------------------------------------------------------------- mean pooling: no switches


@pytest.mark.parametrize("shape, size", [((4, 4), 2), ((7, 5), 2), ((9, 10), 3)])
def test_mean_pooling_and_its_gradient_are_tensorflows(shape, size):
    import tensorflow as tf

    rng = np.random.default_rng(shape[0])
    img = rng.normal(size=shape)
    pooled = conv.mean_pool(img, size)
    upstream = rng.normal(size=pooled.shape)
    x = tf.constant(img[None, :, :, None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        tf_pooled = tf.nn.avg_pool2d(x, size, size, "VALID")
        loss = tf.reduce_sum(upstream[None, :, :, None] * tf_pooled)
    np.testing.assert_allclose(pooled, tf_pooled.numpy()[0, :, :, 0], rtol=1e-12)
    np.testing.assert_allclose(conv.mean_unpool(upstream, shape, size),
                               tape.gradient(loss, x).numpy()[0, :, :, 0], rtol=1e-12)


def test_mean_pooling_hand_worked():
    img = np.array([[1, 3, 2, 0],
                    [4, 2, 1, 5],
                    [0, 1, 7, 2],
                    [6, 2, 3, 1]])
    np.testing.assert_array_equal(conv.mean_pool(img), [[2.5, 2], [2.25, 3.25]])
    gradient = conv.mean_unpool([[4.0, 8.0], [-4.0, 0.0]], img.shape)
    np.testing.assert_array_equal(gradient, [[1, 1, 2, 2], [1, 1, 2, 2],
                                             [-1, -1, 0, 0], [-1, -1, 0, 0]])
    with pytest.raises(ValueError, match=r"values \(2, 2\) are not the mean pooling of an image "
                                         r"of shape \(6, 6\)"):
        conv.mean_unpool(np.ones((2, 2)), (6, 6))
    with pytest.raises(ValueError, match="shape must be the"):
        conv.mean_unpool(np.ones((2, 2)), 4)
    with pytest.raises(ValueError, match="size must be a positive int"):
        conv.mean_pool(img, 0)
