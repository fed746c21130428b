"""The drawing pad: LeCun's MNIST preprocessing on hand-made arrays, the pen, and the explorer's
Python side driven with synthetic strokes (what the browser sends after a stroke).

The browser half (the canvas, mouse strokes in JupyterLab) is in tests/test_browser.py.
"""
import numpy as np
import pytest
from scipy import ndimage

from cnn_helper import drawing, features, occlusion, saliency, widgets

PNG = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- MNIST preprocessing


def _ink_box(x):
    """(height, width) of the pixels of x above 0."""
    rows, cols = np.flatnonzero((x > 0).any(axis=1)), np.flatnonzero((x > 0).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_a_solid_block_becomes_a_20_pixel_box_centred_by_mass():
    pad = np.zeros((280, 280), np.float32)
    pad[30:230, 50:130] = 1.0                      # 200 x 80: shrinks by 10 to 20 x 8
    x = drawing.mnist_input(pad)
    assert x.shape == (28, 28, 1) and x.dtype == np.float32
    expected = np.zeros((28, 28), np.float32)      # centre of mass (9.5, 3.5) -> moved to (14, 14)
    top, left = round(14 - 9.5), round(14 - 3.5)
    expected[top:top + 20, left:left + 8] = 1.0
    np.testing.assert_array_equal(x[..., 0], expected)


def _hand_made_seven(pad, dr, dc):
    """A '7' of two strokes, its top-left corner moved by (dr, dc): its mass is not centred in
    its box (the bar on top is heavy)."""
    pad = drawing.stroke(pad, [(40 + dr, 60 + dc), (40 + dr, 200 + dc)], width=22)
    return drawing.stroke(pad, [(40 + dr, 200 + dc), (150 + dr, 120 + dc)], width=14)


@pytest.mark.parametrize("dr, dc", [(0, 0), (70, -40), (-25, 60)])
def test_a_shifted_digit_lands_centred_by_its_centre_of_mass(dr, dc):
    x = drawing.mnist_input(_hand_made_seven(np.zeros((280, 280)), dr, dc))[..., 0]
    r, c = ndimage.center_of_mass(x)                   # scipy's, as the reference
    assert abs(r - 14) <= 0.5 and abs(c - 14) <= 0.5
    assert max(_ink_box(x)) == 20                      # the longer side fills the 20-pixel box
    assert drawing.centre_of_mass(x) == pytest.approx((r, c), abs=1e-5)
    # wherever it was drawn on the pad, the CNN sees the same input
    np.testing.assert_array_equal(x, drawing.mnist_input(
        _hand_made_seven(np.zeros((280, 280)), 0, 0))[..., 0])


@pytest.mark.parametrize("height, width, expected", [(250, 100, (20, 8)), (40, 16, (20, 8)),
                                                     (60, 240, (5, 20))])
def test_large_and_small_digits_are_scaled_to_20_pixels_keeping_the_aspect_ratio(
        height, width, expected):
    pad = np.zeros((280, 280), np.float32)
    pad[10:10 + height, 20:20 + width] = 1.0
    x = drawing.mnist_input(pad)[..., 0]
    assert _ink_box(x) == expected
    assert drawing.scale_into_box(pad).shape == expected


def test_mnist_digits_are_fixed_points_of_the_preprocessing(bundled):
    """MNIST's own digits already went through it: they come back as they were, except pixels
    fainter than the ink threshold (0.1) at the edge of the box."""
    (_, _), (x_test, _) = bundled
    diffs = np.array([np.abs(drawing.mnist_input(im) - im).max() for im in x_test[:100]])
    assert np.all(diffs <= drawing.THRESHOLD)
    assert np.mean(diffs == 0) >= 0.8


def test_an_empty_pad_and_bad_shapes():
    np.testing.assert_array_equal(drawing.mnist_input(np.zeros((50, 50))), np.zeros((28, 28, 1)))
    assert drawing.bounding_box(np.zeros((5, 5))) is None
    with pytest.raises(ValueError, match=r"grey image \(H, W\)"):
        drawing.mnist_input(np.zeros((28, 28, 3)))
    with pytest.raises(ValueError, match="points is empty"):
        drawing.stroke(np.zeros((10, 10)), [])


def test_the_pen_inks_the_pixels_within_half_its_width_of_the_stroke():
    start, end, width = np.array([3.0, 2.0]), np.array([12.0, 15.0]), 5.0
    inked = drawing.stroke(np.zeros((16, 18)), [tuple(start), tuple(end)], width=width)
    # brute force: the distance of each pixel centre to 2,001 points along the segment
    along = start + np.linspace(0, 1, 2001)[:, None] * (end - start)
    for (r, c), value in np.ndenumerate(inked):
        d = np.min(np.hypot(along[:, 0] - r, along[:, 1] - c))
        if abs(d - width / 2) > 0.01:                    # not on the edge of the stroke
            assert value == (1.0 if d < width / 2 else 0.0), (r, c, d)
    erased = drawing.stroke(inked, [(7, 8)], width=3, ink=0.0)          # the eraser: a dot
    assert erased[7, 8] == 0 and erased[7, 10] == inked[7, 10]


# --------------------------------------------------------------------------- the explorer


@pytest.fixture(scope="module")
def digits(bundled):
    (_, _), (x_test, y_test) = bundled
    return x_test[:40], y_test[:40]


@pytest.fixture(scope="module")
def pad_explorer(shipped_cnn, digits):
    return widgets.DrawingExplorer(shipped_cnn, *digits, start=0)


def shown(image) -> bytes:
    png = bytes(image.value)
    assert png.startswith(PNG)
    return png


def test_starting_from_a_test_digit_shows_what_the_package_computes(pad_explorer, shipped_cnn,
                                                                    digits):
    de, (x, _) = pad_explorer, digits
    de.layer.value, de.target.value = "conv2", "predicted"
    de.digit.value = 3
    de.load.click()
    s = de.state
    assert s["error"] is None and de.message.value == ""
    expected_input = drawing.mnist_input(drawing.enlarge(x[3], 280))
    np.testing.assert_array_equal(s["input"], expected_input)
    acts = features.activations(shipped_cnn, expected_input, ["conv2", "softmax"])
    np.testing.assert_allclose(s["probabilities"], acts["softmax"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s["maps"], acts["conv2"], rtol=1e-5, atol=1e-6)
    assert s["predicted"] == s["target"] == int(np.argmax(acts["softmax"]))
    np.testing.assert_allclose(s["saliency"], saliency.gradient(shipped_cnn, expected_input,
                                                                s["target"]), atol=1e-6)
    assert shown(de.panels_image) == s["panels_png"]
    assert len(de.pad.image) == 28 * 28 and de.pad.image_side == 28    # the digit, to the browser


def test_a_stroke_changes_the_probabilities_and_the_maps(pad_explorer, shipped_cnn):
    de = pad_explorer
    de.load.click()
    before = {k: np.array(de.state[k]) for k in ("input", "probabilities", "maps", "saliency")}
    view = shown(de.panels_image)
    # what the browser sends after a stroke: the pad's ink, one byte per pixel, as the binary
    # buffer of a comm message (ipywidgets hands it to set_state as a memoryview)
    ink = drawing.stroke(de.state["ink"], [(30, 40), (250, 240)], width=24)
    data = (ink * 255).round().astype(np.uint8).tobytes()
    de.pad.set_state({"pixels": memoryview(data), "strokes": de.pad.strokes + 1})
    assert de.pad.pixels == data
    s = de.state
    assert s["error"] is None
    np.testing.assert_allclose(s["ink"], ink, atol=1 / 255)
    for name, old in before.items():
        assert not np.allclose(s[name], old), f"{name} did not change"
    np.testing.assert_allclose(s["probabilities"], features.activations(
        shipped_cnn, s["input"], ["softmax"])["softmax"], rtol=1e-5, atol=1e-6)
    assert shown(de.panels_image) != view

    de.tool.value = "eraser"                     # the pad's tool follows the control
    assert de.pad.tool == "eraser"
    de.tool.value = "pen"
    de.clear.click()                             # an empty pad: the message says to draw
    assert not de.state["input"].any() and "the pad is empty" in de.info.value
    assert de.pad.image == b"" and de.pad.image_side == 0


def test_layer_class_and_occlusion_on_demand(pad_explorer, shipped_cnn):
    de = pad_explorer
    de.load.click()
    de.layer.value = "conv3"
    assert de.state["maps"].shape == (7, 7, 64)
    de.target.value = 5
    assert de.state["target"] == 5
    np.testing.assert_allclose(de.state["saliency"], saliency.gradient(
        shipped_cnn, de.state["input"], 5), atol=1e-6)
    assert de.state["occlusion"] is None and de.occlusion_image.layout.display == "none"
    de.occlude.click()
    expected = occlusion.sensitivity_map(shipped_cnn, de.state["input"], 5, patch=4)
    np.testing.assert_allclose(de.state["occlusion"].delta, expected.delta, atol=1e-5)
    assert shown(de.occlusion_image) == de.state["occlusion_png"]
    assert de.occlusion_image.layout.display is None
    de.draw(drawing.stroke(de.state["ink"], [(100, 100)], width=30))   # a new stroke: stale map
    assert de.state["occlusion"] is None and de.occlusion_image.layout.display == "none"
    assert repr(de) == "DrawingExplorer(layer='conv3', class=5, tool='pen')"


def test_bad_arguments(shipped_cnn, digits):
    x, y = digits
    with pytest.raises(ValueError, match="0..39"):
        widgets.DrawingExplorer(shipped_cnn, x, y, start=40)
    with pytest.raises(ValueError, match="give x"):
        widgets.DrawingExplorer(shipped_cnn, start=0)
    with pytest.raises(ValueError, match="choose among"):
        widgets.DrawingExplorer(shipped_cnn, x, y, layer="dense")
    with pytest.raises(ValueError, match="rule"):
        widgets.DrawingExplorer(shipped_cnn, x, y, rule="magic")
    import keras

    wide = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3),
                             keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"\(28, 28, 1\)"):
        widgets.DrawingExplorer(wide)


def test_the_helper_opens_an_empty_pad(digits):
    import cnn_helper

    x, y = digits
    cnnh = cnn_helper.CNN_Helper(data_source="bundled", weights="shipped", verbose=False)
    de = cnnh.drawing_explorer(x, y, layer="conv1")
    assert isinstance(de, widgets.DrawingExplorer) and de.digit.max == 39
    assert de.state["layer"] == "conv1" and not de.state["input"].any()
    bundle = de._repr_mimebundle_()
    assert bundle["text/plain"] == repr(de)
    de.close()
    assert de.widget.comm is None
