"""The figures that compute what the lectures assert: max-pool switches, a feature map with its
argmax idx, label histograms of top examples, class-averaged maps (and ``features.class_means``),
and saliency maps on a chosen colour scale. Each draws what it is given, where it says."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from cnn_helper import convolution, features, plot

RNG = np.random.default_rng(0)
HAND_WORKED = np.array([[1, 3, 2, 0],
                        [4, 2, 1, 5],
                        [0, 1, 7, 2],
                        [6, 2, 3, 1]], dtype=float)


@pytest.fixture(autouse=True)
def no_figure_left_open():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a figure function left its pyplot figure open"


def patches(ax, gid):
    return [p for p in ax.patches if p.get_gid() == gid]


def centre(rect):
    return rect.get_x() + rect.get_width() / 2, rect.get_y() + rect.get_height() / 2


def colour_bars(fig, axes):
    """The axes a figure has beyond the grid it returned: its colour bars."""
    return len(fig.axes) - np.size(axes)


# --------------------------------------------------------------------------- max-pool switches


def test_pool_switches_marks_each_switch_at_its_location():
    pooled, switches = convolution.max_pool_with_switches(HAND_WORKED)
    upstream = np.array([[10.0, 20.0], [30.0, 40.0]])
    gradient = convolution.unpool(upstream, switches, HAND_WORKED.shape)
    fig, axes = plot.pool_switches(HAND_WORKED, pooled, switches, upstream, gradient)
    assert len(axes) == 4 and all(ax.figure is fig for ax in axes)
    expected = {(0.0, 1.0), (3.0, 1.0), (0.0, 3.0), (2.0, 2.0)}       # (x=col, y=row)
    for ax in (axes[0], axes[3]):                       # the input and the routed gradient
        assert {centre(r) for r in patches(ax, "switch")} == expected
        assert sorted(r.get_xy() for r in patches(ax, "window")) == \
            [(-0.5, -0.5), (-0.5, 1.5), (1.5, -0.5), (1.5, 1.5)]
    assert not patches(axes[1], "switch") and not patches(axes[2], "switch")
    # the matrices are written in their cells: the input's max 7 at (2, 2), the gradient's 40
    assert ("7", (2, 2)) in {(t.get_text(), t.get_position()) for t in axes[0].texts}
    assert ("40", (2, 2)) in {(t.get_text(), t.get_position()) for t in axes[3].texts}
    assert "routes the gradient" in fig.get_suptitle()


def test_pool_switches_without_backward_pass_and_other_window_sizes():
    img = RNG.permutation(49).reshape(7, 7)
    pooled, switches = convolution.max_pool_with_switches(img, 3)
    fig, axes = plot.pool_switches(img, pooled, switches, size=3)
    assert len(axes) == 2
    assert {centre(r) for r in patches(axes[0], "switch")} == \
        {(float(c), float(r)) for r, c in switches.reshape(-1, 2)}
    assert len(patches(axes[0], "window")) == 4
    fig, axes = plot.pool_switches(img, pooled, switches, upstream=np.ones((2, 2)), size=3)
    assert len(axes) == 3


def test_pool_switches_bad_input():
    pooled, switches = convolution.max_pool_with_switches(HAND_WORKED)
    with pytest.raises(ValueError, match=r"not img \(4, 4\) pooled by 3x3"):
        plot.pool_switches(HAND_WORKED, pooled, switches, size=3)
    moved = switches.copy()
    moved[0, 0] = (2, 2)                                 # outside window (0, 0)
    with pytest.raises(ValueError, match="inside that window"):
        plot.pool_switches(HAND_WORKED, pooled, moved)
    with pytest.raises(ValueError, match=r"upstream has shape \(4, 4\); it must have shape"):
        plot.pool_switches(HAND_WORKED, pooled, switches, upstream=HAND_WORKED)
    with pytest.raises(ValueError, match=r"gradient has shape \(2, 2\)"):
        plot.pool_switches(HAND_WORKED, pooled, switches, gradient=pooled)
    with pytest.raises(ValueError, match="size must be a positive int"):
        plot.pool_switches(HAND_WORKED, pooled, switches, size=0)
    with pytest.raises(ValueError, match="2-D"):
        plot.pool_switches(HAND_WORKED[..., None], pooled, switches)


# --------------------------------------------------------------------------- a feature map and idx


def test_feature_map_marks_the_location_and_writes_its_value():
    values = RNG.uniform(0, 1, (7, 7))
    values[2, 4] = 3.25
    fig, ax = plot.feature_map(values, (2, 4), title="y_(conv3),k=3")
    (mark,) = patches(ax, "location")
    assert centre(mark) == (4.0, 2.0)
    assert ax.get_title() == "y_(conv3),k=3\nidx=(2, 4): 3.250"
    assert ax.images[0].get_clim() == (0.0, 3.25)                  # unsigned: from 0
    assert colour_bars(fig, [ax]) == 1
    fig, ax = plot.feature_map(values[..., None] - 0.5, np.array([0, 6]))   # (H, W, 1), signed
    assert centre(patches(ax, "location")[0]) == (6.0, 0.0)
    lo, hi = ax.images[0].get_clim()
    assert lo == -hi == -2.75
    fig, ax = plot.feature_map(values)
    assert not patches(ax, "location") and ax.get_title() == "feature map"


def test_feature_map_on_given_axes():
    fig, axes = plt.subplots(1, 2)
    plt.close(fig)
    out_fig, ax = plot.feature_map(np.eye(3), (1, 1), ax=axes[1])
    assert out_fig is fig and ax is axes[1] and patches(axes[1], "location")


def test_feature_map_bad_input():
    with pytest.raises(ValueError, match=r"maps\[\.\.\., k\]"):
        plot.feature_map(np.zeros((5, 5, 4)))
    with pytest.raises(ValueError, match=r"maps\[i, \.\.\., k\]"):
        plot.feature_map(np.zeros((2, 5, 5, 4)))
    with pytest.raises(ValueError, match=r"location \(5, 0\) is not a \(row, col\) inside"):
        plot.feature_map(np.zeros((5, 5)), (5, 0))
    with pytest.raises(ValueError, match="not a"):
        plot.feature_map(np.zeros((5, 5)), (1, 2, 3))
    with pytest.raises(TypeError, match="location must be a tuple of ints"):
        plot.feature_map(np.zeros((5, 5)), (1.5, 2))


# --------------------------------------------------------------------------- label histograms


def test_label_histogram_bars_count_each_label():
    labels = RNG.integers(0, 10, 57)
    fig, ax = plot.label_histogram(labels, title="conv3 map 3")
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == [int(np.sum(labels == c)) for c in range(10)]
    assert ax.get_title() == "conv3 map 3"
    one_hot = np.eye(10)[labels]
    _, ax2 = plot.label_histogram(one_hot)
    assert [bar.get_height() for bar in ax2.patches] == heights
    assert ax2.get_title() == "labels of 57 examples"
    _, ax3 = plot.label_histogram([0, 0, 2], n_classes=3)
    assert [bar.get_height() for bar in ax3.patches] == [2, 0, 1]


def test_label_histograms_small_multiples_share_the_count_axis():
    groups = {"conv3 map 3": [8, 8, 0, 6], "conv3 map 5": [1] * 9, "conv3 map 7": [9, 4]}
    fig, axes = plot.label_histograms(groups, cols=2, title="top examples")
    assert axes.shape == (2, 2) and not axes[1, 1].axison
    assert [ax.get_title() for ax in axes.flat[:3]] == \
        ["conv3 map 3 (n=4)", "conv3 map 5 (n=9)", "conv3 map 7 (n=2)"]
    assert [b.get_height() for b in axes[0, 0].patches] == [1, 0, 0, 0, 0, 0, 1, 0, 2, 0]
    assert axes[0, 0].get_ylim() == axes[1, 0].get_ylim()          # one count scale
    assert axes[0, 0].get_ylim()[1] >= 9


def test_label_histogram_bad_input():
    with pytest.raises(ValueError, match=r"labels must be class labels 0\.\.9"):
        plot.label_histogram([0, 10])
    with pytest.raises(ValueError, match="class labels"):
        plot.label_histogram([0.5, 1.0])
    with pytest.raises(ValueError, match="labels is empty"):
        plot.label_histogram([])
    with pytest.raises(ValueError, match="n_classes must be a positive int"):
        plot.label_histogram([0], n_classes=0)
    with pytest.raises(ValueError, match=r"groups\['b'\] must be class labels"):
        plot.label_histograms({"a": [1], "b": [-1]})
    with pytest.raises(TypeError, match=r"non-empty dict \{name: labels\}"):
        plot.label_histograms([[1, 2]])
    with pytest.raises(TypeError, match="non-empty dict"):
        plot.label_histograms({})


# --------------------------------------------------------------------------- class means


def test_class_means_equal_a_loop():
    values = RNG.normal(size=(40, 5, 6, 2)).astype(np.float32)
    y = RNG.integers(0, 4, 40)
    means = features.class_means(values, y)
    assert list(means) == sorted(set(y.tolist()))
    for c in means:
        total, count = np.zeros((5, 6, 2)), 0
        for v, label in zip(values, y):
            if label == c:
                total, count = total + v, count + 1
        assert means[c].count == count
        assert means[c].mean.dtype == np.float32 and means[c].mean.shape == (5, 6, 2)
        np.testing.assert_allclose(means[c].mean, total / count, rtol=1e-5, atol=1e-6)
    chosen = features.class_means(values, np.eye(4)[y], classes=[3, 1])      # one-hot y
    assert list(chosen) == [3, 1]
    np.testing.assert_array_equal(chosen[3].mean, means[3].mean)


def test_class_means_bad_input():
    y = np.array([0, 0, 2])
    with pytest.raises(ValueError, match=r"classes \[1\] have no example in y.*\[0, 2\]"):
        features.class_means(np.zeros((3, 4)), y, classes=[0, 1])
    with pytest.raises(ValueError, match="one label per example"):
        features.class_means(np.zeros((4, 4)), y)
    with pytest.raises(TypeError, match="classes must be a list"):
        features.class_means(np.zeros((3, 4)), y, classes=2)
    with pytest.raises(TypeError, match="numbers to average"):
        features.class_means(np.array([["a"], ["b"], ["c"]]), y)


# --------------------------------------------------------------------------- class-averaged maps


def test_class_average_maps_share_one_scale_and_one_colour_bar():
    x = RNG.uniform(0, 1, (30, 6, 6, 1))
    maps = RNG.normal(size=(30, 6, 6, 1))
    y = np.repeat([0, 6, 8], 10)
    mean_images, mean_maps = features.class_means(x, y), features.class_means(maps, y)
    fig, axes = plot.class_average_maps(mean_images, mean_maps, map_name="mean gradient")
    assert axes.shape == (2, 3) and colour_bars(fig, axes) == 1
    assert [ax.get_title() for ax in axes[0]] == ["0\nn=10", "6\nn=10", "8\nn=10"]
    limit = max(np.max(np.abs(m.mean)) for m in mean_maps.values())
    for ax, c in zip(axes[1], mean_maps):
        assert ax.images[0].get_clim() == pytest.approx((-limit, limit))
        np.testing.assert_allclose(ax.images[0].get_array(), mean_maps[c].mean[..., 0])
    fig, axes = plot.class_average_maps(mean_images, {8: np.abs(mean_maps[8].mean)},
                                        overlay=True)
    assert axes.shape == (2, 1) and len(axes[1, 0].images) == 2     # image under the map
    assert axes[1, 0].images[1].get_alpha() == 0.65
    assert axes[1, 0].images[1].get_clim()[0] == 0                  # a magnitude: from 0


def test_class_average_maps_bad_input():
    means = features.class_means(np.zeros((4, 6, 6, 1)), [0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"classes \[7\] that mean_images lacks"):
        plot.class_average_maps(means, {7: np.zeros((6, 6))})
    with pytest.raises(ValueError, match="overlay needs maps of the image's size"):
        plot.class_average_maps(means, {0: np.zeros((3, 3))}, overlay=True)
    plot.class_average_maps(means, {0: np.zeros((3, 3))})          # beside: any size
    with pytest.raises(TypeError, match="mean_maps must be a non-empty dict"):
        plot.class_average_maps(means, np.zeros((2, 6, 6)))


# --------------------------------------------------------------------------- saliency scales


def _saliency_inputs():
    x = RNG.uniform(0, 1, (3, 6, 6, 1))
    maps = {"gradient": RNG.normal(size=x.shape),
            "|gradient|": 4 * np.abs(RNG.normal(size=x.shape)),
            "guided": 0.1 * RNG.normal(size=x.shape)}
    return x, maps


def _limits(axes):
    """The colour limits of every map tile (rows: examples, columns: methods)."""
    return np.array([[ax.images[0].get_clim() for ax in row[1:]] for row in axes])


def test_saliency_scale_each_says_so_and_has_no_colour_bar():
    x, maps = _saliency_inputs()
    fig, axes = plot.saliency_maps(x, maps)                       # the default
    assert colour_bars(fig, axes) == 0 and "own colour scale" in fig.get_supxlabel()
    limits = _limits(axes)
    for i in range(3):
        for j, m in enumerate(maps.values()):
            high = np.max(np.abs(m[i]))
            assert limits[i, j, 1] == pytest.approx(high)
            assert limits[i, j, 0] == (0 if j == 1 else pytest.approx(-high))


@pytest.mark.parametrize("scale, bars", [("row", 3), ("column", 3), ("shared", 1)])
def test_saliency_maps_on_a_shared_scale_with_colour_bars(scale, bars):
    x, maps = _saliency_inputs()
    fig, axes = plot.saliency_maps(x, maps, scale=scale)
    assert colour_bars(fig, axes) == bars and "colour bar" in fig.get_supxlabel()
    limits, stacked = _limits(axes), np.stack(list(maps.values()), axis=1)[..., 0]  # (N, M, H, W)
    for i in range(3):
        for j in range(3):
            group = {"row": stacked[i], "column": stacked[:, j], "shared": stacked}[scale]
            high = np.max(np.abs(group))
            signed = scale != "column" or j != 1        # |gradient| alone in its column
            assert tuple(limits[i, j]) == pytest.approx((-high if signed else 0, high))


def test_saliency_scale_bad_value():
    x, maps = _saliency_inputs()
    with pytest.raises(ValueError, match=r"scale 'all' is not one of \('each', 'row'"):
        plot.saliency_maps(x, maps, scale="all")


# ------------------------------------------------------------------------- occlusion over the input


def test_a_stride_2_occlusion_map_covers_every_pixel():
    """Each pixel shows its nearest patch centre's value, the rule of occlusion.attribution: the
    map and its overlay cover the whole image, the last row and column included."""
    import keras

    from cnn_helper import occlusion

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 10, 1)),
                              keras.layers.Conv2D(2, 3, activation="tanh"),
                              keras.layers.Flatten(), keras.layers.Dense(3)])
    image = np.random.default_rng(5).uniform(0, 1, (8, 10, 1)).astype("float32")
    r = occlusion.sensitivity_map(model, image, 1, patch=3, stride=(2, 3))
    assert r.relative.shape == (4, 4)        # centres: rows 0, 2, 4, 6; columns 0, 3, 6, 9
    drop = occlusion.attribution(model, image, 1, patch=3, stride=(2, 3))[..., 0]
    fig, axes = plot.occlusion_map(image, r)
    for ax in axes[1:]:                                    # the map, and the map over the input
        drawn = ax.images[-1]
        assert tuple(drawn.get_extent()) == (-0.5, 9.5, 7.5, -0.5)
        assert ax.get_xlim() == (-0.5, 9.5) and ax.get_ylim() == (7.5, -0.5)
        np.testing.assert_allclose(drawn.get_array(), -drop / abs(r.unoccluded), rtol=1e-5,
                                   atol=1e-7)
        assert drawn.get_array()[7, 9] == r.relative[3, 3]   # last pixel: the last centre (6, 9)
    assert ax.images[0].get_array().shape == (8, 10)         # under it, the input itself


# --------------------------------------------------------------------------- Zeiler & Fergus crops


def _zeiler_fergus_of_white_crops():
    """Two all-white 5x5 receptive-field crops of a 28x28 image: one inside it, one cut by its
    top-left corner to 3x4 (its field reaches rows -2..2, columns -1..3)."""
    from cnn_helper.inverting import ZeilerFergus

    regions = ((slice(10, 15), slice(4, 9)), (slice(0, 3), slice(0, 4)))
    windows = (((10, 15), (4, 9)), ((-2, 3), (-1, 4)))
    crops = tuple(np.ones((rows.stop - rows.start, cols.stop - cols.start))
                  for rows, cols in regions)
    return ZeilerFergus(features.Feature("conv2", 5), "gradient", np.array([3, 7]),
                        np.array([1.5, 1.2]), np.array([[6, 3], [0, 0]]), regions, windows,
                        np.zeros((2, 28, 28, 1)), crops, crops), regions


def test_zeiler_fergus_frames_each_crop():
    zf, regions = _zeiler_fergus_of_white_crops()
    fig, axes = plot.zeiler_fergus(zf, cols=2)
    for c, (rows, cols) in enumerate(regions):
        for ax in (axes[0, c], axes[0, 3 + c]):            # the saliency and the input patch
            frame, = patches(ax, "crop")
            assert frame.get_xy() == (cols.start - 0.5, rows.start - 0.5)
            assert (frame.get_width(), frame.get_height()) == \
                (cols.stop - cols.start, rows.stop - rows.start)
            assert not frame.get_fill() and frame.get_linewidth() > 0
            assert frame.get_edgecolor()[:3] not in ((1, 1, 1), (0, 0, 0))   # seen on both


def test_zeiler_fergus_montage_frames_each_tile():
    zf, regions = _zeiler_fergus_of_white_crops()
    fig, axes = plot.zeiler_fergus_montage(zf, cols=2)
    for ax in axes:
        frames = patches(ax, "tile frame")
        assert [(f.get_width(), f.get_height()) for f in frames] == [(5, 5), (4, 3)]
        assert frames[0].get_x() == -0.5 and frames[1].get_x() > 5 - 0.5    # side by side
        assert all(not f.get_fill() and f.get_linewidth() > 0 for f in frames)
