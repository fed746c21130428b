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
