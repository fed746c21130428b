"""Deletion, insertion and MuFidelity against explicit loops with model.predict on a tiny CNN."""
import keras
import numpy as np
import pytest
from keras import layers
from scipy.ndimage import gaussian_filter

from cnn_helper import Feature, faithfulness, plot

H, W, C = 6, 5, 2


@pytest.fixture(scope="module")
def tiny():
    """A small seeded CNN on 6x5 images with 2 channels: logits then softmax."""
    keras.utils.set_random_seed(3)
    x = inputs = keras.Input((H, W, C))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, layers.Activation("softmax", name="softmax")(x))
    rng = np.random.default_rng(0)
    images = rng.random((4, H, W, C)).astype(np.float32)
    maps = np.round(rng.normal(size=(4, H, W, C)), 1).astype(np.float32)   # ties in the sums
    return model, images, maps


def _order(importance):
    """Pixel (r, c) in order of decreasing importance, ties by row-major index: by hand."""
    cells = [(-importance[r, c], r * W + c, (r, c)) for r in range(H) for c in range(W)]
    return [rc for _, _, rc in sorted(cells)]


def _scores(model, images, target):
    """model.predict on the images, the target's column: the probability, or a layer's unit."""
    if isinstance(target, Feature):
        model = keras.Model(model.inputs, model.get_layer(target.layer).output)
        target = target.channel
    return model.predict(np.stack(images), verbose=0)[:, target].astype(float)


def _curve_by_loops(model, image, m, base, steps, kind, target=1):
    """The curve by an explicit loop over the steps and pixels, then model.predict."""
    order = _order(m.sum(axis=-1))
    changed = []
    for j in range(steps + 1):
        start = image.copy() if kind == "deletion" else base.copy()
        put = base if kind == "deletion" else image
        for r, c in order[:j * H * W // steps]:
            start[r, c, :] = put[r, c, :]
        changed.append(start)
    scores = _scores(model, changed, target)
    t = np.array([j * H * W // steps for j in range(steps + 1)]) / (H * W)
    auc = sum((t[j + 1] - t[j]) * (scores[j] + scores[j + 1]) / 2 for j in range(steps))
    return np.array(scores), auc


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_curves_equal_explicit_loops_over_steps(tiny, kind):
    model, x, maps = tiny
    function = getattr(faithfulness, kind)
    result = function(model, x, 1, maps, steps=7, baseline="zero")
    assert result.scores.shape == (4, 8) and result.kind == kind
    assert result.counts.tolist() == [j * 30 // 7 for j in range(8)]
    for n in range(4):
        scores, auc = _curve_by_loops(model, x[n], maps[n], np.zeros_like(x[n]), 7, kind)
        np.testing.assert_allclose(result.scores[n], scores, atol=1e-6)
        assert result.auc[n] == pytest.approx(auc, abs=1e-6)


def test_a_feature_target_and_the_blur_and_array_baselines(tiny):
    model, x, maps = tiny
    logit = Feature("logits", 2)
    blurred = gaussian_filter(x[1], sigma=(3, 3, 0), mode="nearest")
    d = faithfulness.deletion(model, x[1], logit, maps[1], steps=5, baseline="blur")
    assert d.baseline == "blur"
    np.testing.assert_allclose(d.scores[0], _curve_by_loops(model, x[1], maps[1], blurred, 5,
                                                            "deletion", logit)[0], atol=1e-5)
    grey = np.full((H, W, C), 0.3, np.float32)
    i = faithfulness.insertion(model, x, logit, maps, steps=5, baseline=grey)
    assert i.baseline == "array"
    np.testing.assert_allclose(i.scores[3], _curve_by_loops(model, x[3], maps[3], grey, 5,
                                                            "insertion", logit)[0], atol=1e-5)
    mean = faithfulness.deletion(model, x, 0, maps, steps=30, baseline="mean")
    own_mean = np.broadcast_to(x[2].mean(axis=(0, 1)), x[2].shape)
    assert mean.scores[2, -1] == pytest.approx(_scores(model, [own_mean], 0)[0], abs=1e-6)


def test_maps_with_one_channel_or_none_rank_alike(tiny):
    model, x, maps = tiny
    summed = maps.sum(axis=-1)
    a = faithfulness.deletion(model, x, 0, maps, steps=6)
    b = faithfulness.deletion(model, x, 0, summed, steps=6)
    c = faithfulness.deletion(model, x, 0, summed[..., None], steps=6)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.scores, c.scores)


def _mufidelity_by_loops(model, image, m, subsets, grid, target=1):
    removed_images, masses = [], []
    for subset in subsets:
        removed = image.copy()
        mass = 0.0
        for r in range(H):
            for c in range(W):
                if subset[r * grid // H, c * grid // W]:
                    removed[r, c, :] = 0.0
                    mass += m[r, c].sum()
        removed_images.append(removed)
        masses.append(mass)
    scores = _scores(model, [image] + removed_images, target)
    return np.corrcoef(masses, scores[0] - scores[1:])[0, 1]


def test_mufidelity_equals_an_explicit_loop_over_subsets(tiny):
    model, x, maps = tiny
    mu = faithfulness.mufidelity(model, x[:2], 1, maps[:2], n_subsets=12, grid=3,
                                 subset_size=2, baseline="zero", seed=4)
    assert mu.subsets.shape == (12, 3, 3) and np.all(mu.subsets.sum(axis=(1, 2)) == 2)
    for n in range(2):
        assert mu.correlation[n] == pytest.approx(
            _mufidelity_by_loops(model, x[n], maps[n], mu.subsets, 3), abs=1e-5)


def test_results_do_not_depend_on_batch_size_and_subsets_on_the_seed_only(tiny):
    model, x, maps = tiny
    for function in (faithfulness.deletion, faithfulness.insertion):
        small = function(model, x, 1, maps, steps=9, batch_size=1)
        big = function(model, x, 1, maps, steps=9, batch_size=7)
        np.testing.assert_allclose(small.scores, big.scores, atol=1e-6)
    one = faithfulness.mufidelity(model, x, 1, maps, n_subsets=10, grid=3, seed=1, batch_size=3)
    two = faithfulness.mufidelity(model, x, 1, maps, n_subsets=10, grid=3, seed=1)
    np.testing.assert_allclose(one.correlation, two.correlation, atol=1e-6)
    alone = faithfulness.mufidelity(model, x[2:3], 1, maps[2:3], n_subsets=10, grid=3, seed=1)
    np.testing.assert_array_equal(alone.subsets, one.subsets)
    other = faithfulness.mufidelity(model, x, 1, maps, n_subsets=10, grid=3, seed=2)
    assert not np.array_equal(other.subsets, one.subsets)


def test_ranking_orders_each_measure_by_its_direction(tiny):
    model, x, maps = tiny
    good = [faithfulness.deletion(model, x, 1, maps, steps=3),
            faithfulness.insertion(model, x, 1, maps, steps=3)]
    bad = [faithfulness.deletion(model, x, 1, -maps, steps=3),
           faithfulness.insertion(model, x, 1, -maps, steps=3)]
    table = faithfulness.ranking({"minus": bad, "plus": good})
    deletion_means = [good[0].auc.mean(), bad[0].auc.mean()]
    assert table.measures == ("deletion", "insertion")
    best_deletion = "plus" if deletion_means[0] < deletion_means[1] else "minus"
    assert table.ranks[table.methods.index(best_deletion), 0] == 1
    assert table.means[table.methods.index("plus"), 1] == pytest.approx(good[1].auc.mean())
    assert "deletion (lower is better)" in str(table)
    fig, _ = plot.ranking_table(table)
    fig, _ = plot.faithfulness_curves({"plus": good[0], "minus": bad[0]},
                                      {"plus": good[1], "minus": bad[1]})
    assert len(fig.axes) == 2


@pytest.mark.parametrize("call, message", [
    (lambda m, x, s: faithfulness.deletion(m, x, 1, s[:3]), "one map per image"),
    (lambda m, x, s: faithfulness.deletion(m, x, 1, s, steps=0), "steps must be a positive"),
    (lambda m, x, s: faithfulness.deletion(m, x, 1, s, baseline="white"), "baseline 'white'"),
    (lambda m, x, s: faithfulness.insertion(m, x, 1, s * np.nan), "finite numbers"),
    (lambda m, x, s: faithfulness.insertion(m, x, 1, s, baseline=x[:2]), "baseline has 2"),
    (lambda m, x, s: faithfulness.mufidelity(m, x, 1, s, grid=3, subset_size=9),
     "subset_size must be an int from 1 to 8"),
    (lambda m, x, s: faithfulness.mufidelity(m, x, 1, s, grid=7), "grid 7"),
    (lambda m, x, s: faithfulness.ranking({"a": [object()]}), "Curve"),
])
def test_bad_input_is_refused_with_a_message(tiny, call, message):
    model, x, maps = tiny
    with pytest.raises((ValueError, TypeError), match=message):
        call(model, x, maps)
