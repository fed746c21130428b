"""The explorers without a browser: set controls as a click would, check what was computed and
shown.

Each explorer's ``state`` must agree with the package function it calls (the widgets hold no
maths), the PNG in its ``ipywidgets.Image`` must change when the view changes (and only then), and
a bad value must show a message in the widget instead of raising.
"""
import numpy as np
import pytest

from cnn_helper import convolution, features, max_activation, occlusion, widgets
from cnn_helper.features import Feature

PNG = b"\x89PNG\r\n\x1a\n"
N = 300          # examples the explorers rank: enough for a top-9, quick to scan
VISUALIZE_STEPS = 16   # steps of the feature explorer's optimized images: few, to stay quick


@pytest.fixture(scope="module")
def data(bundled):
    (_, _), (x_test, y_test) = bundled
    return x_test[:N], y_test[:N]


@pytest.fixture(scope="module")
def feature_explorer(shipped_cnn, data):
    return widgets.FeatureExplorer(shipped_cnn, *data, visualize_steps=VISUALIZE_STEPS)


@pytest.fixture()
def fe(feature_explorer):
    """The module's FeatureExplorer, back at its first view (building one costs two scans), set
    back as a user would: each change redraws, and the views seen before come from the caches."""
    e = feature_explorer
    e.layer.value = "conv1"              # clamps the channel into conv1's 16
    e.channel.value, e.pool.value, e.example.value = 0, "max", 0
    return e


def shown(image) -> bytes:
    """The bytes an explorer's ipywidgets.Image shows (a PNG)."""
    png = bytes(image.value)
    assert png.startswith(PNG), "an explorer shows PNG images"
    return png


def assert_no_error(explorer):
    assert explorer.state["error"] is None, explorer.state["error"]
    assert explorer.message.value == ""


# --------------------------------------------------------------------------- feature explorer


def test_feature_explorer_first_view(fe, shipped_cnn, data):
    x, y = data
    assert fe.layers == ["conv1", "pool1", "conv2", "pool2", "conv3"]
    assert_no_error(fe)
    s = fe.state
    assert (s["layer"], s["channel"], s["pool"], s["example"]) == ("conv1", 0, "max", 0)
    np.testing.assert_allclose(s["maps"],
                               features.activations(shipped_cnn, x[0], ["conv1"])["conv1"],
                               rtol=1e-5, atol=1e-6)
    expected = max_activation.top_examples(shipped_cnn, x, Feature("conv1", 0), count=9)
    np.testing.assert_array_equal(s["top"].high.indices, expected.high.indices)
    np.testing.assert_array_equal(s["inverted"].indices, expected.high.indices)
    assert len(s["inverted"].patches) == 9
    for image, name in ((fe.maps_image, "maps_png"), (fe.top_image, "top_png"),
                        (fe.patches_image, "patches_png")):
        assert shown(image) == s[name]


def test_feature_explorer_channel_updates_every_panel(fe, shipped_cnn, data):
    x, _ = data
    before = [shown(i) for i in (fe.maps_image, fe.top_image, fe.patches_image)]
    fe.channel.value = 3
    assert_no_error(fe)
    assert fe.state["feature"] == Feature("conv1", 3)
    expected = max_activation.top_examples(shipped_cnn, x, Feature("conv1", 3), count=9)
    np.testing.assert_array_equal(fe.state["top"].high.indices, expected.high.indices)
    np.testing.assert_allclose(fe.state["top"].high.values, expected.high.values, rtol=1e-5)
    after = [shown(i) for i in (fe.maps_image, fe.top_image, fe.patches_image)]
    assert all(a != b for a, b in zip(after, before)), "maps (frame), top-9 and patches redrawn"
    fe.channel.value = 0                    # back: the same pictures as at first
    assert [shown(i) for i in (fe.maps_image, fe.top_image, fe.patches_image)] == before


def test_feature_explorer_layer_sets_channel_range(fe, shipped_cnn, data):
    x, _ = data
    fe.layer.value = "conv2"
    assert fe.channel.max == 31
    assert fe.state["maps"].shape == (14, 14, 32)
    fe.channel.value = 31
    fe.layer.value = "conv1"                # 16 channels: k=31 is clamped to 15, no error
    assert_no_error(fe)
    assert (fe.channel.max, fe.channel.value, fe.state["channel"]) == (15, 15, 15)
    expected = max_activation.top_examples(shipped_cnn, x, Feature("conv1", 15),
                                           count=9)
    np.testing.assert_array_equal(fe.state["top"].high.indices, expected.high.indices)


def test_feature_explorer_pooling_and_example(fe, shipped_cnn, data):
    x, _ = data
    fe.layer.value = "conv3"
    fe.channel.value = 7
    fe.pool.value = "mean"
    expected = max_activation.top_examples(shipped_cnn, x, Feature("conv3", 7, pool="mean"),
                                           count=9)
    np.testing.assert_array_equal(fe.state["top"].high.indices, expected.high.indices)
    top, patches, maps = shown(fe.top_image), shown(fe.patches_image), shown(fe.maps_image)
    fe.example.value = 5                    # another example: only its activation maps change
    assert_no_error(fe)
    np.testing.assert_allclose(fe.state["maps"],
                               features.activations(shipped_cnn, x[5], ["conv3"])["conv3"],
                               rtol=1e-5, atol=1e-6)
    assert shown(fe.maps_image) != maps
    assert (shown(fe.top_image), shown(fe.patches_image)) == (top, patches)


def test_feature_explorer_optimized_image_one_batch_per_layer(fe, shipped_cnn):
    from cnn_helper import feature_visualization

    layer_images = fe.state["visualization"]              # conv1, every channel, max-pooled
    assert [t.channel for t in layer_images.targets] == list(range(16))
    expected = feature_visualization.visualize(shipped_cnn, "conv1", steps=fe.visualize_steps,
                                               progress=False)
    np.testing.assert_allclose(layer_images.images, expected.images, atol=1e-5)
    np.testing.assert_array_equal(fe.state["optimized"], layer_images.images[0])
    first = shown(fe.optimized_image)
    fe.channel.value = 9                  # another channel: the same batch, another image
    assert_no_error(fe)
    assert fe.state["visualization"] is layer_images
    np.testing.assert_array_equal(fe.state["optimized"], layer_images.images[9])
    value = features.feature_values(shipped_cnn, fe.state["optimized"], Feature("conv1", 9))
    np.testing.assert_allclose(layer_images.values[9], value.values[0], rtol=1e-4)
    assert shown(fe.optimized_image) != first
    with pytest.raises(ValueError, match="visualize_steps must be a positive int"):
        widgets.FeatureExplorer(shipped_cnn, fe.x, visualize_steps=0)


def test_feature_explorer_bad_arguments(shipped_cnn, data):
    x, y = data
    with pytest.raises(ValueError, match="conv1"):          # names the layers to choose from
        widgets.FeatureExplorer(shipped_cnn, x, y, layers=["dense"])
    with pytest.raises(ValueError, match="labels"):
        widgets.FeatureExplorer(shipped_cnn, x, y[:10])
    with pytest.raises(ValueError, match="rule"):
        widgets.FeatureExplorer(shipped_cnn, x, y, rule="magic")
    with pytest.raises(ValueError, match="count must be at least 1"):
        widgets.FeatureExplorer(shipped_cnn, x, y, count=0)


def test_feature_explorer_can_open_on_any_feature_and_says_when_all_shown_tie(shipped_cnn, data):
    x, y = data
    values = [features.feature_values(shipped_cnn, x, Feature("conv1", k)).values
              for k in range(16)]
    tied = [int(np.sum(v == v.max())) for v in values]
    k = int(np.argmax(tied))
    assert tied[k] >= 3                                   # a saturated first-layer map
    fe = widgets.FeatureExplorer(shipped_cnn, x, y, layers=["conv1", "conv2"], count=3,
                                 layer="conv2", channel=5, visualize_steps=VISUALIZE_STEPS)
    assert (fe.layer.value, fe.channel.value) == ("conv2", 5)
    assert fe.state["feature"] == Feature("conv2", 5) and fe.state["tied"] is False
    fe.layer.value = "conv1"
    fe.channel.value = k
    assert fe.state["tied"] is True
    assert np.all(fe.state["top"].high.values == values[k].max())
    with pytest.raises(ValueError, match="choose among"):
        widgets.FeatureExplorer(shipped_cnn, x, y, layer="dense")
    with pytest.raises(ValueError, match=r"0\.\.15"):
        widgets.FeatureExplorer(shipped_cnn, x, y, layer="conv1", channel=16)


def test_map_layers_and_display(fe, shipped_cnn):
    assert widgets.map_layers(shipped_cnn) == fe.layers
    bundle = fe._repr_mimebundle_()            # IPython's display protocol: what a cell shows
    assert bundle["text/plain"] == repr(fe)
    assert repr(fe).startswith("FeatureExplorer(layer='conv1', channel=0")
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == fe.widget.model_id


# --------------------------------------------------------------------------- occlusion explorer


@pytest.fixture()
def oe(shipped_cnn, data):
    return widgets.OcclusionExplorer(shipped_cnn, *data)


def test_occlusion_explorer_first_view(oe, shipped_cnn, data):
    x, y = data
    assert_no_error(oe)
    s = oe.state
    probs = features.activations(shipped_cnn, x[0], ["softmax"])["softmax"]
    np.testing.assert_allclose(s["probabilities"], probs, rtol=1e-5, atol=1e-6)
    assert (s["index"], s["label"], s["target"]) == (0, int(y[0]), int(np.argmax(probs)))
    expected = occlusion.sensitivity_map(shipped_cnn, x[0], s["target"], patch=4, stride=1,
                                         fill="extreme")
    np.testing.assert_allclose(s["result"].delta, expected.delta, atol=1e-5)
    assert s["result"].delta.shape == (28, 28)
    assert shown(oe.map_image) == s["map_png"] and shown(oe.probs_image) == s["probs_png"]


def test_occlusion_explorer_controls(oe, shipped_cnn, data):
    x, y = data
    view, probs = shown(oe.map_image), shown(oe.probs_image)
    oe.patch.value = 8
    assert oe.state["result"].patch == (8, 8)
    assert shown(oe.map_image) != view
    assert shown(oe.probs_image) == probs            # same example and class: bars unchanged
    oe.stride.value = 3
    assert oe.state["result"].delta.shape == (10, 10)
    oe.fill.value = "zero"
    np.testing.assert_array_equal(oe.state["result"].fill, [0.0])
    oe.target.value = 3
    assert oe.state["target"] == 3 and oe.state["result"].target == Feature("softmax", 3)
    assert shown(oe.probs_image) != probs            # class 3's bar is highlighted now
    expected = occlusion.sensitivity_map(shipped_cnn, x[0], 3, patch=8, stride=3, fill="zero")
    np.testing.assert_allclose(oe.state["result"].delta, expected.delta, atol=1e-5)
    assert_no_error(oe)


def test_occlusion_explorer_by_label(oe, data):
    x, y = data
    eights = np.flatnonzero(y == 8)
    oe.label.value = 8
    assert oe.example.max == len(eights) - 1
    assert oe.state["index"] == eights[0]
    oe.example.value = 2
    oe.target.value = "true"
    assert (oe.state["index"], oe.state["label"], oe.state["target"]) == (eights[2], 8, 8)
    oe.label.value = "all"
    assert oe.example.max == len(x) - 1 and oe.state["index"] == 0
    assert_no_error(oe)


def test_occlusion_explorer_bad_values_show_a_message(oe, shipped_cnn, data):
    view = shown(oe.map_image)
    oe.patch.value = 40                    # larger than the 28x28 image
    assert "larger than the image" in oe.message.value
    assert "larger than the image" in oe.state["error"]
    assert shown(oe.map_image) == view     # the last good view stays
    oe.patch.value = 5
    assert_no_error(oe)
    oe.stride.value = 0
    assert "stride" in oe.message.value
    oe.stride.value = 2
    assert_no_error(oe)

    x, y = data
    keep = y != 9                          # a data set without 9s: choosing label 9 selects nothing
    no_nines = widgets.OcclusionExplorer(shipped_cnn, x[keep], y[keep])
    no_nines.label.value = 9
    assert "no example has label 9" in no_nines.message.value
    no_nines.label.value = 4
    assert_no_error(no_nines)
    assert no_nines.state["label"] == 4


# --------------------------------------------------------------------------- convolution explorer


def test_convolution_explorer(data):
    x, _ = data
    ce = widgets.ConvolutionExplorer(digits=x)
    filters, img = convolution.filters(), convolution.create_img()
    first = next(iter(filters))
    assert_no_error(ce)
    assert ce.state["filter_name"] == first
    np.testing.assert_allclose(ce.state["output"], convolution.apply_filt_2d(img, filters[first]))
    view = shown(ce.image)

    ce.filter.value = "L"                  # a teaching filter: its weights appear in the 9 boxes
    assert [w.value for w in ce.weights] == pytest.approx(filters["L"].ravel().tolist())
    np.testing.assert_allclose(ce.state["output"], convolution.apply_filt_2d(img, filters["L"]))
    assert shown(ce.image) != view

    view = shown(ce.image)
    ce.weights[4].value = 3.0              # edit the centre weight: the filter becomes "custom"
    edited = filters["L"].copy()
    edited[1, 1] = 3.0
    assert ce.filter.value == "custom"
    np.testing.assert_allclose(ce.state["filter"], edited)
    np.testing.assert_allclose(ce.state["output"], convolution.apply_filt_2d(img, edited))
    assert shown(ce.image) != view

    ce.source.value = "MNIST digit"
    assert not ce.digit.disabled and ce.digit.max == len(x) - 1
    ce.digit.value = 3
    np.testing.assert_array_equal(ce.state["input"], x[3, ..., 0])
    np.testing.assert_allclose(ce.state["output"], convolution.apply_filt_2d(x[3, ..., 0], edited),
                               atol=1e-6)
    assert_no_error(ce)
    assert repr(ce) == "ConvolutionExplorer(filter='custom', input='MNIST digit', digit=3)"


def test_convolution_explorer_bad_weight_shows_a_message():
    ce = widgets.ConvolutionExplorer()
    view = shown(ce.image)
    ce.weights[0].value = float("nan")
    assert "must be numbers" in ce.message.value
    assert shown(ce.image) == view
    ce.weights[0].value = 1.0
    assert_no_error(ce)
    with pytest.raises(ValueError, match="3x3"):
        widgets.ConvolutionExplorer(filters={"big": np.ones((5, 5))})


# --------------------------------------------------------------------------- the facade


def test_helper_opens_the_explorers(data):
    import cnn_helper

    x, y = data
    cnnh = cnn_helper.CNN_Helper(data_source="bundled", weights="shipped", verbose=False)
    oe = cnnh.occlusion_explorer(x[:40], y[:40])
    assert isinstance(oe, widgets.OcclusionExplorer) and oe.example.max == 39
    ce = cnnh.convolution_explorer()
    assert len(ce.digits()) == len(cnnh.x_test)
    for e in (oe, ce):
        e.close()
        assert e.widget.comm is None
