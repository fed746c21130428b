"""Figures checked as drawn (issue 29, "Figures"): titles inside the figure and apart, colour bars
that state the scale, an occlusion map's scale relative to the score, saliency maps over their
input, and the pixels an occlusion map does not cover."""
import functools

import keras
import numpy as np
import pytest

from cnn_helper import occlusion, plot, saliency
from cnn_helper.faithfulness import Ranking
from cnn_helper.feature_visualization import FeatureVisualization
from cnn_helper.features import ClassMean, Feature


def inside(fig, artist) -> bool:
    """Whether ``artist``'s drawn extent lies inside the figure (laid out as drawn: the figure
    functions close their pyplot figure, so ``fig.canvas.draw()`` would draw nothing)."""
    fig.draw_without_rendering()
    box, frame = artist.get_window_extent(), fig.bbox
    return (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
            and box.y1 <= frame.y1)


def titles_apart(fig, axes) -> float:
    """The smallest horizontal gap, in pixels, between the titles of neighbouring ``axes``."""
    fig.draw_without_rendering()
    boxes = [ax.title.get_window_extent() for ax in axes]
    return min(right.x0 - left.x1 for left, right in zip(boxes, boxes[1:]))


def colour_bars(fig) -> list:
    """The axes of the figure's colour bars."""
    return [ax for ax in fig.axes if hasattr(ax, "_colorbar")]


# ------------------------------------------------------------------------------- titles that fit


def test_ranking_table_title_is_inside_the_figure():
    ranking = Ranking(("gradient", "integrated gradients", "occlusion"),
                      ("deletion", "insertion", "mufidelity"),
                      np.array([[.1, .5, .3], [.2, .4, .2], [.3, .3, .1]]),
                      np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3]]), (False, True, True))
    fig, ax = plot.ranking_table(ranking)
    assert ax.get_title() == "faithfulness ranking (mean over the images)"
    assert inside(fig, ax.title)


def _visualization(n: int, layer: str, starts: int = 1):
    rng = np.random.default_rng(0)
    return FeatureVisualization(
        tuple(Feature(layer, k) for k in range(n)), rng.uniform(0, 1, (n, 28, 28, 1)),
        rng.uniform(0, 50, n), rng.uniform(0, 1, n), {"value_range": (0.0, 1.0)},
        tuple(f"noise seed {k}" for k in range(n)), -np.ones(n, int),
        rng.uniform(0, 50, (n, starts)))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_visualizations_of_few_images_keep_a_long_layer_name_inside(n):
    fig, axes = plot.visualizations(_visualization(n, "conv2d_with_a_long_name_block3"))
    assert "conv2d_with_a_long_name_block3" in fig.get_suptitle().replace("\n", " ")
    assert inside(fig, fig._suptitle)          # internal contract: matplotlib's suptitle artist
    for ax in axes.flat[:n]:
        assert inside(fig, ax.title)
    if n > 1:
        assert titles_apart(fig, axes.flat[:n]) > 0


def test_visualizations_of_ten_logits_from_several_starts_fit():
    fig, axes = plot.visualizations(_visualization(10, "logits", starts=4))
    assert inside(fig, fig._suptitle)          # internal contract: matplotlib's suptitle artist
    assert titles_apart(fig, axes[0]) > 0


def test_ten_class_averages_titles_do_not_crowd():
    """Ten Fashion-MNIST classes side by side: each title stays over its own column with room
    between neighbours (before: "Pullover (n=1000)" nearly ran into "Dress (n=1000)")."""
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot"]
    rng = np.random.default_rng(1)
    images = {name: ClassMean(rng.uniform(0, 1, (28, 28, 1)), 1000) for name in names}
    maps = {name: ClassMean(rng.normal(0, 1, (28, 28, 1)), 1000) for name in names}
    fig, axes = plot.class_average_maps(images, maps)
    assert [ax.get_title() for ax in axes[0, :2]] == ["T-shirt/top\nn=1000", "Trouser\nn=1000"]
    tile = axes[0, 0].get_window_extent().width
    assert titles_apart(fig, axes[0]) > 0.4 * tile      # before: 0.18 of a tile
    for ax in axes[0]:
        box, column = ax.title.get_window_extent(), ax.get_window_extent()
        assert column.x0 - 0.1 * tile <= box.x0 and box.x1 <= column.x1 + 0.1 * tile


# ----------------------------------------------------------------------------- colour scales


def test_kernels_share_one_scale_with_a_colour_bar():
    k = np.random.default_rng(2).normal(0, 0.3, (6, 3, 3, 1))
    k[0] *= 10                                 # one strong kernel: the others are pale beside it
    fig, axes = plot.kernels(k)
    bars = colour_bars(fig)
    assert len(bars) == 1 and "one scale" in bars[0].get_ylabel()
    limit = np.max(np.abs(k))
    for ax in axes.flat[:6]:
        assert ax.images[0].get_clim() == pytest.approx((-limit, limit))
    assert bars[0].get_ylim() == pytest.approx((-limit, limit))


@functools.cache
def _model(softmax: bool):
    """A small CNN (12x12 inputs, 3 outputs), the same one for every test; its weights are only
    read."""
    keras.utils.set_random_seed(0)
    layers = [keras.Input((12, 12, 1)), keras.layers.Conv2D(2, 3, activation="tanh"),
              keras.layers.Flatten(), keras.layers.Dense(3)]
    model = keras.Sequential(layers + ([keras.layers.Softmax()] if softmax else []))
    if softmax:                                # class 0 at p > 0.9999: occlusion barely moves it
        dense = model.layers[-2]
        weights, bias = dense.get_weights()
        dense.set_weights([0.01 * weights, np.array([12.0, 0.0, 0.0], "float32")])
    return model


IMAGE = np.random.default_rng(5).uniform(0, 1, (12, 12, 1)).astype("float32")


def test_a_negligible_occlusion_map_is_pale_and_says_so():
    r = occlusion.sensitivity_map(_model(softmax=True), IMAGE, 0, patch=3)
    assert np.max(np.abs(r.relative)) < 1e-3
    fig, axes = plot.occlusion_map(IMAGE, r)
    assert axes[1].images[-1].get_clim() == (-0.01, 0.01)     # at least 1 % of the score
    assert "negligible (under 1% of the score)" in fig.get_suptitle()
    assert colour_bars(fig)[0].get_ylabel() == "share of the score"


def test_an_occlusion_map_states_its_largest_change_and_takes_a_limit():
    r = occlusion.sensitivity_map(_model(softmax=False), IMAGE, 1, patch=3)
    largest = r.relative.flat[np.argmax(np.abs(r.relative))]
    assert abs(largest) > 0.01
    fig, axes = plot.occlusion_map(IMAGE, r)
    assert f"largest change {100 * largest:+.1f}% of the score" in fig.get_suptitle()
    assert "negligible" not in fig.get_suptitle()
    assert axes[1].images[-1].get_clim() == pytest.approx((-abs(largest), abs(largest)))
    fig, axes = plot.occlusion_map(IMAGE, r, limit=1.0)            # the whole score
    assert axes[1].images[-1].get_clim() == (-1.0, 1.0)
    with pytest.raises(ValueError, match=r"limit must be a positive number.*got -1"):
        plot.occlusion_map(IMAGE, r, limit=-1)


# ---------------------------------------------------------------------------------- overlays


def test_saliency_maps_overlay_each_map_on_its_input():
    model = _model(softmax=False)
    x = np.stack([IMAGE, IMAGE[::-1]])
    maps = {"gradient": saliency.gradient(model, x, 1), "input x gradient": x}
    fig, axes = plot.saliency_maps(x, maps, overlay=True)
    for ax in axes[:, 1:].flat:
        under, over = ax.images
        assert under.get_cmap().name == "gray" and over.get_alpha() == pytest.approx(0.6)
    np.testing.assert_array_equal(axes[1, 1].images[0].get_array(), x[1, ..., 0])
    assert "over its input" in fig._supxlabel.get_text()   # internal contract: matplotlib's
    fig, axes = plot.saliency_maps(x, maps)
    assert all(len(ax.images) == 1 for ax in axes[:, 1:].flat)


def test_pixels_inside_no_patch_are_masked_and_hatched():
    """Patch 3, stride 5 on 12 pixels: centres 0, 5, 10 hide pixels 0-1, 4-6 and 9-11; pixels 2,
    3, 7 and 8 of each axis were never hidden, so the map has no value there."""
    r = occlusion.sensitivity_map(_model(softmax=False), IMAGE, 1, patch=3, stride=5)
    covered = np.zeros((12, 12), dtype=bool)
    for r0, r1 in r.bounds[0]:
        for c0, c1 in r.bounds[1]:
            covered[r0:r1, c0:c1] = True
    assert not covered[2].any() and not covered[:, 8].any() and covered[5, 5]
    fig, axes = plot.occlusion_map(IMAGE, r)
    for ax in axes[1:]:
        drawn = ax.images[-1].get_array()
        np.testing.assert_array_equal(np.ma.getmaskarray(drawn), ~covered)
        hatched = [p for p in ax.patches if p.get_gid() == "not covered"]
        assert hatched and all(p.get_hatch() for p in hatched)
    assert any("never hidden" in t.get_text() for t in fig.texts)
    fig, axes = plot.explanation(IMAGE, [0.2, 0.5, 0.3], {"occlusion": r}, 1)
    np.testing.assert_array_equal(np.ma.getmaskarray(axes[2].images[-1].get_array()), ~covered)


def test_a_covered_occlusion_map_has_no_hatching():
    r = occlusion.sensitivity_map(_model(softmax=False), IMAGE, 1, patch=3, stride=2)
    fig, axes = plot.occlusion_map(IMAGE, r)
    assert not np.ma.getmaskarray(axes[1].images[-1].get_array()).any()
    assert not [p for p in axes[1].patches if p.get_gid() == "not covered"]
    assert not any("never hidden" in t.get_text() for t in fig.texts)
