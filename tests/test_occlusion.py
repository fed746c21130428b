"""Occlusion sensitivity maps against a brute-force loop: copy the image, paint the patch, call."""
import warnings

import numpy as np
import pytest

from cnn_helper import Feature, features, occlusion

H, W, C = 9, 7, 2       # odd, non-square, two channels: borders, even patches and per-channel fill


@pytest.fixture(scope="module")
def tiny():
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    x = inputs = keras.Input((H, W, C), name="input")
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = layers.Conv2D(3, 2, strides=2, activation="tanh", name="c2")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(4, name="logits")(x)
    return keras.Model(inputs, layers.Activation("softmax", name="out")(x), name="tiny_occ")


@pytest.fixture(scope="module")
def image():
    x = np.random.default_rng(1).random((H, W, C), dtype=np.float32)
    x.setflags(write=False)
    return x


def value(model, x, target):
    """The target for one image, straight from the model."""
    return float(features.feature_values(model, x[None], target, batch_size=1).values[0])


def brute_force(model, x, target, patch, stride, fill):
    """The definition: for each centre, paint the clipped patch with ``fill`` and call the model."""
    (pr, pc), (sr, sc) = patch, stride
    rows, cols = range(0, x.shape[0], sr), range(0, x.shape[1], sc)
    out = np.zeros((len(rows), len(cols)), np.float32)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            img = np.array(x)
            top, left = r - (pr - 1) // 2, c - (pc - 1) // 2
            img[max(top, 0):max(top + pr, 0), max(left, 0):max(left + pc, 0), :] = fill
            out[i, j] = value(model, img, target)
    return out


CASES = [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((3, 3), (2, 2)), ((4, 4), (1, 1)), ((4, 4), (3, 3)),
         ((2, 3), (1, 2)), ((6, 5), (4, 1)), ((9, 7), (5, 5))]


@pytest.mark.parametrize("patch, stride", CASES, ids=str)
def test_against_brute_force(tiny, image, patch, stride):
    r = occlusion.sensitivity_map(tiny, image, 2, patch=patch, stride=stride)
    ref = brute_force(tiny, image, 2, patch, stride, 1.0)
    assert r.values.shape == (-(-H // stride[0]), -(-W // stride[1]))
    np.testing.assert_allclose(r.values, ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(r.locations[0], np.arange(0, H, stride[0]))
    np.testing.assert_array_equal(r.locations[1], np.arange(0, W, stride[1]))
    assert r.patch == patch and r.stride == stride
    np.testing.assert_array_equal(r.fill, [1.0, 1.0])
    assert r.unoccluded == pytest.approx(value(tiny, image, 2), rel=1e-6)


@pytest.mark.parametrize("target", [Feature("c1", 3, location=(4, 3)),
                                    Feature("c2", 2, pool="mean"), Feature("logits", 0)], ids=str)
@pytest.mark.parametrize("fill", ["zero", "mean", 0.5, [0.2, 0.9]], ids=str)
def test_features_and_fills_against_brute_force(tiny, image, target, fill):
    r = occlusion.sensitivity_map(tiny, image, target, patch=3, stride=2, fill=fill)
    painted = {"zero": 0.0, "mean": image.reshape(-1, C).mean(axis=0)}.get(fill, fill) \
        if isinstance(fill, str) else np.asarray(fill, np.float32)
    np.testing.assert_allclose(r.fill, np.broadcast_to(painted, (C,)), rtol=1e-6)
    np.testing.assert_allclose(r.values, brute_force(tiny, image, target, (3, 3), (2, 2), painted),
                               rtol=1e-5, atol=1e-6)
    assert r.target == features.as_feature(tiny, target)


def test_stride_one_gives_the_input_size_and_a_batch_of_one_works(tiny, image):
    r = occlusion.sensitivity_map(tiny, image[None], 0)         # a batch in, a batch out
    assert r.values.shape == r.delta.shape == r.relative.shape == (1, H, W)
    assert r.example(0).values.shape == (H, W)
    assert r.patch == (4, 4) and r.stride == (1, 1)


def test_even_patch_placement_and_borders(image):
    # f = 4 at centre c covers c-1 .. c+2 (one more after the centre), clipped at the border
    start, stop = occlusion.patch_bounds([0, 1, 4, 7, 8], 9, 4)
    np.testing.assert_array_equal(start, [0, 0, 3, 6, 7])
    np.testing.assert_array_equal(stop, [3, 4, 7, 9, 9])
    imgs = occlusion.occlude(image, [(0, 0), (4, 3), (8, 6)], patch=(4, 2), fill=[1.0, 2.0])
    for img, (rows, cols) in zip(imgs, [((0, 3), (0, 2)), ((3, 7), (3, 5)), ((7, 9), (6, 7))]):
        mask = np.zeros((H, W), bool)
        mask[slice(*rows), slice(*cols)] = True
        np.testing.assert_array_equal(img[mask], np.tile([1.0, 2.0], (mask.sum(), 1)))
        np.testing.assert_array_equal(img[~mask], image[~mask])


def test_result_does_not_depend_on_batch_size(tiny, image):
    ref = occlusion.sensitivity_map(tiny, image, 1, patch=3, batch_size=256)
    for batch_size in (1, 5, 17, 63, 64):
        r = occlusion.sensitivity_map(tiny, image, 1, patch=3, batch_size=batch_size)
        # identical up to float32 rounding (the same graph on every copy, in different batches)
        np.testing.assert_allclose(r.values, ref.values, rtol=1e-6, atol=1e-7)
        assert r.unoccluded == pytest.approx(ref.unoccluded, rel=1e-6, abs=1e-7)


def test_delta_and_relative_change(tiny, image):
    for target in (3, Feature("logits", 1), Feature("logits", 2)):
        r = occlusion.sensitivity_map(tiny, image, target, patch=2)
        base = value(tiny, image, target)
        assert r.unoccluded == pytest.approx(base, rel=1e-6)
        np.testing.assert_allclose(r.delta, r.values - base, atol=1e-6)
        np.testing.assert_allclose(r.relative, (r.values - base) / abs(base), rtol=1e-5, atol=1e-6)
    # a negative baseline keeps the sign of the change: a drop is negative
    negative = next(Feature("logits", k) for k in range(4)
                    if value(tiny, image, Feature("logits", k)) < 0)
    r = occlusion.sensitivity_map(tiny, image, negative)
    np.testing.assert_array_equal(np.sign(r.relative), np.sign(r.delta))


def test_zero_baseline_gives_nan_relative_and_a_warning(image):
    import keras

    model = keras.Sequential([keras.Input((H, W, C)),
                              keras.layers.Conv2D(2, 3, activation="relu", name="dead")])
    kernel, bias = model.get_layer("dead").get_weights()
    model.get_layer("dead").set_weights([kernel, np.array([-100.0, 100.0], np.float32)])
    with pytest.warns(RuntimeWarning, match="proportional change is undefined"):
        r = occlusion.sensitivity_map(model, image, Feature("dead", 0), patch=2)
    assert r.unoccluded == 0.0 and np.all(np.isnan(r.relative))
    np.testing.assert_array_equal(r.delta, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        occlusion.sensitivity_map(model, image, Feature("dead", 1), patch=2)


def test_bad_inputs(tiny, image):
    with pytest.raises(ValueError, match="patch 10x10 is larger than the image, which is 9x7"):
        occlusion.sensitivity_map(tiny, image, 0, patch=10)
    with pytest.raises(ValueError, match="patch 2x8 is larger"):
        occlusion.sensitivity_map(tiny, image, 0, patch=(2, 8))
    with pytest.raises(ValueError, match="patch must be at least 1"):
        occlusion.sensitivity_map(tiny, image, 0, patch=0)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        occlusion.sensitivity_map(tiny, image, 0, stride=0)
    with pytest.raises(TypeError, match="stride must be an int"):
        occlusion.sensitivity_map(tiny, image, 0, stride=1.5)
    with pytest.raises(TypeError, match="patch must be an int"):
        occlusion.sensitivity_map(tiny, image, 0, patch=(1, 2, 3))
    with pytest.raises(TypeError, match="dtype uint8"):
        occlusion.sensitivity_map(tiny, (image * 255).astype(np.uint8), 0)
    bad = np.array(image)
    bad[2, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        occlusion.sensitivity_map(tiny, bad, 0)
    with pytest.raises(ValueError, match="fill 'bright' is not one of"):
        occlusion.sensitivity_map(tiny, image, 0, fill="bright")
    with pytest.raises(ValueError, match="one per channel"):
        occlusion.sensitivity_map(tiny, image, 0, fill=[1.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="not finite"):
        occlusion.sensitivity_map(tiny, image, 0, fill=np.inf)
    with pytest.raises(TypeError, match="fill must be"):
        occlusion.sensitivity_map(tiny, image, 0, fill=True)
    with pytest.raises(ValueError, match="2 images; give one image"):
        occlusion.occlude(np.stack([image, image]), [(0, 0)])
    with pytest.raises(ValueError, match="shape"):
        occlusion.sensitivity_map(tiny, image[:, :5], 0)
    with pytest.raises(ValueError, match="batch_size"):
        occlusion.sensitivity_map(tiny, image, 0, batch_size=0)
    with pytest.raises(ValueError, match="channel 9 is out of range"):
        occlusion.sensitivity_map(tiny, image, Feature("c1", 9))
    with pytest.raises(ValueError, match="centre coordinate 9 is outside the image"):
        occlusion.occlude(image, [(9, 0)])


def test_a_batch_is_the_maps_of_its_images(tiny, image):
    other = np.random.default_rng(5).random((H, W, C), dtype=np.float32)
    batch = occlusion.sensitivity_map(tiny, np.stack([image, other]), 1, patch=3, stride=2,
                                      fill="mean", batch_size=7)
    assert batch.values.shape == (2, 5, 4) and batch.unoccluded.shape == (2,)
    assert batch.fill.shape == (2, C)
    for i, one in enumerate((image, other)):
        alone = occlusion.sensitivity_map(tiny, one, 1, patch=3, stride=2, fill="mean")
        got = batch.example(i)
        np.testing.assert_allclose(got.values, alone.values, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got.relative, alone.relative, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got.fill, alone.fill)
        assert got.unoccluded == pytest.approx(alone.unoccluded, rel=1e-6)
    with pytest.raises(ValueError, match="one image"):
        alone.example(0)


def test_the_mean_of_a_batch_is_the_mean_of_its_maps(tiny, image):
    rng = np.random.default_rng(8)
    batch_x = rng.random((4, H, W, C), dtype=np.float32)
    batch = occlusion.sensitivity_map(tiny, batch_x, 2, patch=2, stride=2, fill="zero")
    chosen = [0, 2, 3]
    maps = [occlusion.sensitivity_map(tiny, batch_x[i], 2, patch=2, stride=2, fill="zero")
            for i in chosen]
    mean = batch.mean(np.isin(np.arange(4), chosen))          # a mask works like indices
    for field in ("values", "delta", "relative"):
        expected = sum(getattr(m, field) for m in maps) / len(maps)
        np.testing.assert_allclose(getattr(mean, field), expected, rtol=1e-5, atol=1e-6)
    assert mean.unoccluded == pytest.approx(np.mean([m.unoccluded for m in maps]), rel=1e-6)
    assert mean.locations == batch.locations and np.ndim(mean.unoccluded) == 0
    np.testing.assert_allclose(batch.mean().delta, batch.delta.mean(axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="selects no image"):
        batch.mean([])
    with pytest.raises(ValueError, match="nothing to average"):
        maps[0].mean()


def test_keep_location_reads_the_clean_argmax(tiny, image):
    """A max-pooled feature is pooled afresh on each occluded copy by default; keep_location
    reads it at the argmax found on the clean image instead."""
    feature = Feature("c1", 1)
    where = tuple(features.feature_values(tiny, image[None], feature).locations[0])
    kept = occlusion.sensitivity_map(tiny, image, feature, patch=3, keep_location=True)
    np.testing.assert_allclose(kept.values, brute_force(tiny, image, Feature("c1", 1, where),
                                                        (3, 3), (1, 1), 1.0), rtol=1e-5, atol=1e-6)
    afresh = occlusion.sensitivity_map(tiny, image, feature, patch=3)
    np.testing.assert_allclose(afresh.values,
                               brute_force(tiny, image, feature, (3, 3), (1, 1), 1.0),
                               rtol=1e-5, atol=1e-6)
    assert (np.all(afresh.values >= kept.values - 1e-6)
            and not np.allclose(afresh.values, kept.values))


def test_occluded_inputs_are_what_the_map_measured(tiny, image):
    r = occlusion.sensitivity_map(tiny, image, 2, patch=(3, 2), stride=2, fill="mean")
    locations = [(2, 4), (8, 0)]
    imgs = occlusion.occluded_inputs(image, r, locations)
    got = features.feature_values(tiny, imgs, 2).values
    np.testing.assert_allclose(got, [r.values[1, 2], r.values[4, 0]], rtol=1e-5)


def percent(v) -> str:
    """A tile title's proportional change: a signed percentage, 1 decimal from 10 %, else 2."""
    return f"{100 * v:+.1f}%" if abs(100 * v) >= 10 else f"{100 * v:+.2f}%"


def test_figures(image):
    import keras
    import matplotlib.pyplot as plt

    from cnn_helper import plot

    keras.utils.set_random_seed(0)
    grey = keras.Sequential([keras.Input((H, W, 1)), keras.layers.Conv2D(2, 3, activation="tanh"),
                             keras.layers.Flatten(), keras.layers.Dense(3)])
    image = image[..., :1]
    r = occlusion.sensitivity_map(grey, image, 2, patch=3, stride=2)
    fig, axes = plot.occlusion_map(image, r)
    assert len(axes) == 3 and not plt.fignum_exists(fig.number)
    assert axes[1].get_title() == "relative change"
    lo, hi = axes[1].images[0].get_clim()
    assert lo == -hi and hi == pytest.approx(np.abs(r.relative).max())        # centred at 0
    fig, axes = plot.occlusion_grid(image, r, n=3)
    assert axes.shape == (3, 4) and axes[0, 0].get_title() == "input"
    # 3 x 3 centres spread over the 5 x 4 grid of centres (rows 0..8, cols 0..6 by 2): rows 0, 4, 8
    # and cols 0, 4, 6, drawn in their spatial arrangement right of the input
    assert [axes[i, 1].get_title().split()[0] for i in range(3)] == ["(0,0)", "(4,0)", "(8,0)"]
    assert [axes[0, j].get_title().split()[0] for j in range(1, 4)] == ["(0,0)", "(0,4)", "(0,6)"]
    assert axes[1, 2].get_title() == f"(4,4) {percent(r.relative[2, 2])}"
    fig, axes = plot.occlusion_grid(image, r, locations=[(0, 0), (8, 6)])
    assert axes.flat[2].get_title() == f"(8,6) {percent(r.relative[4, 3])}"
    with pytest.raises(ValueError, match=r"centre \(1, 0\) is not on the map's grid"):
        plot.occlusion_grid(image, r, locations=[(1, 0)])


def test_model_with_free_image_size(image):
    import keras

    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((None, None, C)),
                              keras.layers.Conv2D(3, 3, activation="tanh"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    r = occlusion.sensitivity_map(model, image, 1, patch=(3, 2), stride=(2, 3))
    np.testing.assert_allclose(r.values, brute_force(model, image, 1, (3, 2), (2, 3), 1.0),
                               rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- the fill and ranges


@pytest.mark.parametrize("scale, offset, top", [(1.0, 0.0, 1.0), (255.0, 0.0, 255.0),
                                                (2.0, -1.0, 1.0)], ids=["[0,1]", "[0,255]",
                                                                        "[-1,1]"])
def test_extreme_fill_is_the_top_of_the_images_range(tiny, image, scale, offset, top):
    """"extreme" is 1.0 for [0, 1] (and [-1, 1]) images and 255 for [0, 255] ones; the map is the
    brute-force map painted with that value."""
    x = image * scale + offset
    r = occlusion.sensitivity_map(tiny, x, 1, patch=3, stride=2)
    np.testing.assert_array_equal(r.fill, [top, top])
    np.testing.assert_allclose(r.values, brute_force(tiny, x, 1, (3, 3), (2, 2), top),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(occlusion.extreme_value(x), [top, top])


def test_extreme_fill_without_a_usual_range_is_the_images_own_maximum(image):
    """Caffe-style data (BGR minus the ImageNet means, about [-124, 151]) has no conventional
    range: each channel's own maximum is painted."""
    caffe = image * 255 - np.array([103.939, 116.779], np.float32)
    np.testing.assert_allclose(occlusion.extreme_value(caffe), caffe.max(axis=(0, 1)))
    assert np.all(occlusion.extreme_value(caffe) > 100)        # bright, not mid grey


def test_a_model_that_records_its_training_range_is_filled_from_it(image):
    """A model that records the range of its training images (``model.training_range``, as the
    package's models do) gets the top of that range, not the top of these images' channels."""
    import keras

    model = keras.Sequential([keras.Input((H, W, C)), keras.layers.Conv2D(2, 3),
                              keras.layers.Flatten(), keras.layers.Dense(3)], name="caffe_like")
    caffe = image * 255 - np.array([103.939, 116.779], np.float32)
    assert occlusion.sensitivity_map(model, caffe, 1, patch=3).fill.tolist() != [151.0, 151.0]
    model.training_range = (-124.0, 151.0)
    r = occlusion.sensitivity_map(model, caffe, 1, patch=3)
    np.testing.assert_array_equal(r.fill, [151.0, 151.0])


def test_extreme_fill_of_mnist_is_still_one(shipped_cnn, bundled):
    """The course's [0, 1] MNIST keeps the lecture's value 1.0 for every image, even an image
    whose brightest pixel is below 1."""
    _, (x_test, _) = bundled
    fills = np.stack([occlusion.extreme_value(img) for img in x_test[:200]])
    np.testing.assert_array_equal(fills, 1.0)
    dim = x_test[17] * 0.5
    r = occlusion.sensitivity_map(shipped_cnn, np.stack([x_test[17], dim]), 8, patch=4,
                                  stride=7)
    np.testing.assert_array_equal(r.fill, [[1.0], [1.0]])


def test_the_fill_follows_the_data_so_pixels_in_0_255_give_the_same_map(image):
    """The same model, once on [0, 1] images and once behind Rescaling(1/255) on the same images
    in [0, 255]: the model sees the very same occluded inputs, so the maps agree. (A fixed fill
    of 1.0 painted a black square on the [0, 255] images instead.)"""
    import keras

    keras.utils.set_random_seed(6)
    inner = keras.Sequential([keras.Input((H, W, C)), keras.layers.Conv2D(3, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(4)], name="inner")
    inputs = keras.Input((H, W, C))
    outer = keras.Model(inputs, inner(keras.layers.Rescaling(1 / 255)(inputs)), name="outer")
    unit = occlusion.sensitivity_map(inner, image, 2, patch=3)
    pixels = occlusion.sensitivity_map(outer, image * 255, 2, patch=3, batch_size=5)
    np.testing.assert_array_equal(pixels.fill, [255.0, 255.0])
    np.testing.assert_allclose(pixels.values, unit.values, rtol=1e-4, atol=1e-5)
    assert np.abs(pixels.delta).max() > 1e-2


def test_a_batch_gives_each_image_the_fill_it_gets_alone(tiny, image):
    """The fill is read from each image, so it depends neither on the batch nor on batch_size."""
    images = np.stack([image, image * 255, image * 2 - 1])
    batch = occlusion.sensitivity_map(tiny, images, 0, patch=2, stride=3, batch_size=4)
    np.testing.assert_array_equal(batch.fill, [[1, 1], [255, 255], [1, 1]])
    for i, one in enumerate(images):
        alone = occlusion.sensitivity_map(tiny, one, 0, patch=2, stride=3, batch_size=64)
        np.testing.assert_array_equal(batch.example(i).fill, alone.fill)
        np.testing.assert_allclose(batch.values[i], alone.values, rtol=1e-5, atol=1e-6)


def test_the_result_says_which_fill_was_used(tiny, image):
    r = occlusion.sensitivity_map(tiny, image * 255, Feature("c1", 1), patch=3, stride=2)
    text = repr(r)
    assert "fill=[255., 255.]" in text and "patch 3x3" in text and "one image" in text
    assert "map 5x4" in text and len(text) < 200
    batch = occlusion.sensitivity_map(tiny, np.stack([image, image]), 0, patch=3, fill=0.25)
    assert "2 images" in repr(batch) and "fill=[[0.25, 0.25]," in repr(batch)


def test_occlude_takes_integer_images_as_they_are(image):
    pixels = (image * 255).astype(np.uint8)
    out = occlusion.occlude(pixels, [(4, 3)], patch=3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 3:6, 2:5], 255.0)
    np.testing.assert_array_equal(out[0, :3], pixels[:3])                   # not rescaled
