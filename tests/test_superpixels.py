"""Superpixels: label maps of the right shape and range for grey and RGB images, grids exact,
seeded quick shift, label maps given to the black-box methods checked, the extra named when
scikit-image is missing."""
import sys

import numpy as np
import pytest

from cnn_helper import superpixels


def _rgb(seed=0):
    """A 32 x 32 RGB image of four flat quadrants (and a little noise): four obvious regions."""
    rng = np.random.default_rng(seed)
    image = np.zeros((32, 32, 3))
    image[:16, 16:], image[16:, :16], image[16:, 16:] = (1, 0, 0), (0, 1, 0), (0, 0, 1)
    return (image + rng.normal(0, 0.02, image.shape)).astype(np.float32)


def test_grid_cells_are_exact():
    labels = superpixels.segments(np.zeros((28, 28, 1)), "grid", n_segments=(2, 4))
    assert labels.shape == (28, 28) and labels.dtype == np.int32
    np.testing.assert_array_equal(np.unique(labels), np.arange(8))
    assert (labels[:14, :7] == 0).all() and (labels[14:, 21:] == 7).all()
    assert superpixels.grid_shape((28, 28), 49) == (7, 7)
    assert superpixels.grid_shape((20, 40), 8) == (2, 4)


@pytest.mark.parametrize("method", ["slic", "quickshift"])
def test_slic_and_quickshift_on_grey_and_rgb(method, bundled):
    (_, _), (x_test, _) = bundled
    grey = superpixels.segments(x_test[:3], method, n_segments=8)
    assert grey.shape == (3, 28, 28) and grey.dtype == np.int32
    for labels in grey:
        m = superpixels.n_segments_of(labels)
        assert 2 <= m <= 20
        np.testing.assert_array_equal(np.unique(labels), np.arange(m))
    rgb = superpixels.segments(_rgb(), method, n_segments=4)
    assert rgb.shape == (32, 32)
    for quadrant in (rgb[:16, :16], rgb[:16, 16:], rgb[16:, :16], rgb[16:, 16:]):
        assert len(np.unique(quadrant)) == 1                 # no region crosses a colour edge
    np.testing.assert_array_equal(superpixels.segments(x_test[:3], method, n_segments=8), grey)
    scaled = superpixels.segments(x_test[:3] * 255 - 10, method, n_segments=8)
    np.testing.assert_array_equal(scaled, grey)             # each image is scaled to [0, 1]


def test_quickshift_takes_its_seed(bundled):
    (_, _), (x_test, _) = bundled
    a = superpixels.segments(x_test[:4], "quickshift", seed=1)
    np.testing.assert_array_equal(a, superpixels.segments(x_test[:4], "quickshift", seed=1))


def test_label_maps_given_to_a_method():
    images = np.zeros((2, 6, 6, 1))
    one = np.array([[5] * 3 + [9] * 3] * 6)
    maps = superpixels.label_maps(one, images)
    assert maps.shape == (2, 6, 6) and set(np.unique(maps)) == {0, 1}
    with pytest.raises(ValueError, match=r"segments has shape \(6, 5\); the images are 2 of 6 x 6"):
        superpixels.label_maps(one[:, :5], images)
    with pytest.raises(TypeError, match="integer label maps"):
        superpixels.label_maps(one.astype(float), images)


def test_clear_errors():
    with pytest.raises(ValueError, match="method 'watershed' is not one of"):
        superpixels.segments(np.zeros((8, 8)), "watershed")
    with pytest.raises(ValueError, match="a grid of 9 x 1 cells does not fit an image of 8 x 8"):
        superpixels.segments(np.zeros((8, 8)), "grid", n_segments=(9, 1))
    with pytest.raises(ValueError, match="n_segments must be a positive int"):
        superpixels.segments(np.zeros((8, 8)), "grid", n_segments=0)
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 8, 8, 1\)"):
        superpixels.segments(np.zeros((2, 3, 8, 8, 1)), "grid")


def test_without_scikit_image_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)            # import skimage fails
    with pytest.raises(ImportError, match=r'pip install "cnn_helper\[superpixels\]"'):
        superpixels.segments(np.zeros((8, 8)), "slic")
    assert superpixels.segments(np.zeros((8, 8)), "grid", n_segments=4).max() == 3
