"""cnn_helper.augmentation: bright blobs painted on training images, and the CNN trained with them.

add_blobs against a pixel-by-pixel painting of the drawn squares; the squares' counts, sides and
places within their bounds; the epochs of BlobbedImages (labels kept, fresh blobs, seeded);
fit("cnn_blobs") deterministic and equal to the documented recipe; and the lecture's claim on the
shipped weights: a bright square beside test 8 #17 no longer turns it into another digit.
"""
import keras
import numpy as np
import pytest
from model_weights import same_weights, weights_of

from cnn_helper import CNN_Helper, augmentation, models, occlusion
from cnn_helper.augmentation import BlobbedImages, add_blobs, blob_squares, paint_squares


@pytest.fixture(scope="module")
def digits(bundled):
    """12 real training digits (read-only) and their labels."""
    (x_train, y_train), _ = bundled
    return x_train[:12], y_train[:12]


def painted_by_hand(x, squares):
    """The definition, pixel by pixel: a pixel covered by a square of its image takes the image's
    maximum, in every channel; every other pixel keeps its value."""
    expected = np.array(x, copy=True)
    for i in range(len(x)):
        mine = [(r, c, s) for image, r, c, s in squares if image == i]
        for row in range(x.shape[1]):
            for col in range(x.shape[2]):
                if any(r <= row < r + s and c <= col < c + s for r, c, s in mine):
                    expected[i, row, col, :] = x[i].max()
    return expected


# --------------------------------------------------------------------------- add_blobs


def test_add_blobs_paints_the_drawn_squares_and_nothing_else(digits):
    x, _ = digits
    before = x.copy()
    blobbed = add_blobs(x, np.random.default_rng(4), probability=0.7, count=(1, 3), size=(2, 6))
    squares = blob_squares(len(x), (28, 28), np.random.default_rng(4), 0.7, (1, 3), (2, 6))
    assert len(squares) > 0 and len(set(squares[:, 0])) < len(x)      # some images, not all
    np.testing.assert_array_equal(blobbed, painted_by_hand(x, squares))
    np.testing.assert_array_equal(x, before)                           # input not changed
    assert blobbed.shape == x.shape and blobbed.dtype == np.float32
    changed = blobbed != x
    tops = x.reshape(len(x), -1).max(1)[:, None, None, None] * np.ones_like(x)
    assert changed.any()
    np.testing.assert_array_equal(blobbed[changed], tops[changed])     # changed -> the max
    assert np.all(x[changed] < tops[changed])                          # only brightened
    untouched = [i for i in range(len(x)) if i not in set(squares[:, 0])]
    np.testing.assert_array_equal(blobbed[untouched], x[untouched])


def test_paint_squares_by_hand_on_a_two_channel_image():
    x = np.zeros((1, 5, 4, 2), np.float32)
    x[0, 4, 3] = (0.5, 0.8)                                            # the image's max: 0.8
    painted = paint_squares(x, [(0, 1, 0, 2), (0, 2, 1, 2)])           # two overlapping squares
    for k, corner in enumerate((0.5, 0.8)):
        expected = np.zeros((5, 4), np.float32)
        expected[1:3, 0:2] = expected[2:4, 1:3] = x[0].max()          # rows 1-2 and 2-3
        expected[4, 3] = corner                                        # outside: kept
        np.testing.assert_array_equal(painted[0, ..., k], expected)
    assert x[0, 1, 0, 0] == 0                                          # a copy was painted


def test_blob_squares_stay_within_their_bounds():
    n, (height, width) = 2000, (28, 20)
    squares = blob_squares(n, (height, width), np.random.default_rng(0), probability=0.3,
                           count=(2, 4), size=(3, 7))
    images, rows, cols, sides = squares.T
    assert np.all(np.diff(images) >= 0)                                # grouped by image
    per_image = np.bincount(images, minlength=n)
    with_blobs = per_image[per_image > 0]
    assert set(with_blobs) == {2, 3, 4}                                # every count, no other
    assert abs(len(with_blobs) / n - 0.3) < 0.04                       # 4 standard deviations
    assert set(sides) == set(range(3, 8))
    assert rows.min() == 0 and cols.min() == 0
    assert np.all(rows + sides <= height) and np.all(cols + sides <= width)
    assert (rows + sides).max() == height and (cols + sides).max() == width   # reaches each edge


def test_probability_zero_and_one():
    x = np.zeros((30, 8, 8, 1), np.float32)
    x[:, 0, 0] = 0.5                                                   # max 0.5, background 0
    np.testing.assert_array_equal(add_blobs(x, 0, probability=0.0), x)
    blobbed = add_blobs(x, 0, probability=1.0, count=(1, 1), size=(2, 2))
    assert np.all((blobbed != x).reshape(30, -1).any(1))               # every image changed
    assert set(np.unique(blobbed)) == {0.0, 0.5}


def test_blobs_are_seeded():
    x = np.random.default_rng(0).random((40, 12, 12, 1)).astype(np.float32)
    np.testing.assert_array_equal(add_blobs(x, 7), add_blobs(x, np.random.default_rng(7)))
    assert not np.array_equal(add_blobs(x, 7), add_blobs(x, 8))
    rng = np.random.default_rng(7)
    first, second = add_blobs(x, rng), add_blobs(x, rng)               # a generator moves on
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"probability": 1.5}, ValueError, "probability must be a number in \\[0, 1\\].*1.5"),
    ({"probability": True}, ValueError, "probability must be"),
    ({"count": (0, 2)}, ValueError, "count must be a pair of ints \\(low, high\\) with 1 <="),
    ({"count": (3, 1)}, ValueError, "count must be .*got \\(3, 1\\)"),
    ({"size": (2, 40)}, ValueError, "size must be .* <= 28, got \\(2, 40\\)"),
    ({"size": 4}, ValueError, "size must be a pair of ints"),
    ({"rng": "abc"}, TypeError, "rng must be a numpy.random.Generator"),
    ({"x": np.zeros((28, 28, 1), np.float32)}, ValueError, "x\\[None\\]"),
    ({"x": np.zeros((2, 28, 28, 1), np.uint8)}, TypeError, "x has dtype uint8.*/ 255"),
])
def test_bad_blob_arguments_name_the_argument(kwargs, error, message):
    args = {"x": np.zeros((2, 28, 28, 1), np.float32), "rng": 0}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        add_blobs(**args)


# --------------------------------------------------------------------------- BlobbedImages


def test_blobbed_images_keep_labels_and_change_only_bright_pixels(digits):
    x, y = digits
    dataset = BlobbedImages(x, y, batch_size=5, seed=3)
    assert len(dataset) == 3                                           # 5 + 5 + 2
    for epoch in range(2):
        images = np.concatenate([dataset[i][0] for i in range(len(dataset))])
        labels = np.concatenate([dataset[i][1] for i in range(len(dataset))])
        order = dataset.order
        assert sorted(order) == list(range(len(x)))                    # each image once
        np.testing.assert_array_equal(labels, y[order])                # labels kept
        changed = images != x[order]
        tops = x[order].reshape(len(x), -1).max(1)
        assert np.all(images[changed] == np.broadcast_to(tops[:, None, None, None],
                                                         images.shape)[changed])
        assert changed.any()
        if epoch == 0:
            first = images, order.copy()
            dataset.on_epoch_end()                                     # what model.fit calls
    assert not np.array_equal(first[1], order) and not np.array_equal(first[0], images)


def test_blobbed_images_are_seeded(digits):
    x, y = digits

    def two_epochs(seed):
        dataset, batches = BlobbedImages(x, y, batch_size=4, seed=seed), []
        for _ in range(2):
            batches += [dataset[i] for i in range(len(dataset))]
            dataset.on_epoch_end()
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])

    a, b, c = two_epochs(1), two_epochs(1), two_epochs(2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_blobbed_images_refuse_mismatched_labels(digits):
    x, y = digits
    with pytest.raises(ValueError, match="x has 12 images but y has 11 labels"):
        BlobbedImages(x, y[:11], batch_size=4)


# --------------------------------------------------------------------------- training


def _names_and_kinds(model):
    return [(layer.name, type(layer).__name__) for layer in model.layers]


def test_fit_cnn_blobs_is_seeded_and_is_the_documented_recipe(bundled):
    """fit("cnn_blobs") and the recipe of BlobbedImages' docstring, run apart from the same seed,
    give the same weights: same seed, same weights, and fit trains on BlobbedImages with BLOBS
    (whose epochs the tests above check)."""
    (x_train, y_train), _ = bundled
    x, y = x_train[:200], y_train[:200]
    fitted = models.fit("cnn_blobs", x, y, epochs=1, seed=5)
    assert _names_and_kinds(fitted) == _names_and_kinds(models.build_cnn())   # "cnn"'s layers
    assert [w.shape for w in fitted.get_weights()] == \
        [w.shape for w in models.build_cnn().get_weights()]

    models.seed_everything(5)
    recipe = models.build_cnn()
    recipe.compile(optimizer=keras.optimizers.Adam(1e-3),
                   loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    recipe.fit(BlobbedImages(x, y, batch_size=32, seed=5, blobs=augmentation.BLOBS), epochs=1,
               shuffle=False, verbose=0)
    assert same_weights(weights_of(fitted), weights_of(recipe))
    models.seed_everything(5)
    assert not same_weights(weights_of(fitted), weights_of(models.build_cnn()))   # it trained


def test_augmentation_of_each_model():
    assert models.augmentation_of("cnn") is None and models.augmentation_of("logistic") is None
    assert models.augmentation_of("cnn_blobs") == {
        "name": "blobs", "probability": augmentation.BLOBS["probability"],
        "count": list(augmentation.BLOBS["count"]), "size": list(augmentation.BLOBS["size"])}


# --------------------------------------------------------------------------- shipped weights


@pytest.fixture(scope="module")
def shipped_blobs():
    return models.load_with_info("cnn_blobs", "shipped")


def test_a_bright_square_no_longer_turns_test_8_number_17_into_another_digit(
        shipped_cnn, shipped_blobs, bundled):
    """The lecture's experiment (4x4 square of 1.0, every position) on both models."""
    _, (x_test, y_test) = bundled
    assert y_test[17] == 8
    plain, blobs = (occlusion.sensitivity_map(model, x_test[17], 8, patch=4, stride=1,
                                              fill="extreme") for model in
                    (shipped_cnn, shipped_blobs[0]))
    assert plain.unoccluded > 0.99 and blobs.unoccluded > 0.99             # both sure it is an 8
    assert plain.relative.min() < -0.9                                 # plain: nearly lost
    assert blobs.relative.min() > -0.3                                 # augmented: kept


def test_the_augmented_cnn_is_more_robust_on_other_test_8s_too(shipped_cnn, shipped_blobs, bundled):
    """Not cherry-picked: on the first 20 test 8s (squares every 2 pixels), the largest drop of P(8)
    that one bright square causes, and the share of 8s it robs of more than half of P(8)."""
    _, (x_test, y_test) = bundled
    eights = x_test[y_test == 8][:20]
    worst = [occlusion.sensitivity_map(model, eights, 8, patch=4, stride=2)
             .relative.reshape(len(eights), -1).min(1) for model in (shipped_cnn, shipped_blobs[0])]
    plain_share, blobs_share = (np.mean(w < -0.5) for w in worst)
    assert plain_share >= 0.2 and blobs_share < plain_share / 3
    assert worst[1].mean() > worst[0].mean() / 3                       # a third of the drop


def test_cnn_helper_gives_the_augmented_cnn_by_name(shipped_cnn, monkeypatch, bundled):
    cnnh = CNN_Helper(data_source="bundled", weights="shipped", verbose=False)
    monkeypatch.setattr(cnnh, "load_data", lambda: bundled)
    blobs = cnnh.model("cnn_blobs")
    assert _names_and_kinds(blobs) == _names_and_kinds(shipped_cnn)
    assert not same_weights(weights_of(blobs), weights_of(cnnh.model()))
    assert same_weights(weights_of(cnnh.model()), weights_of(shipped_cnn))   # model() unchanged
    assert cnnh.model_info("cnn_blobs")["augmentation"]["name"] == "blobs"
    assert cnnh.evaluate(blobs) >= 0.97
    with pytest.raises(ValueError, match="'logistic' is not one of \\('cnn', 'cnn_blobs', "
                       "'cnn_random_labels'\\) on mnist"):
        cnnh.model("logistic")
