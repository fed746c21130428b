"""CAVs and TCAV on a planted concept: a hand-built model whose logit 0 is the sum of channel 0
of layer "feat" (so its gradient there is that direction for every image), concept images
bright in channel 0, random images dark in it. TCAV must score the concept near 1 and
significant, a concept drawn like the random images not; results must not depend on
batch_size, seeds must reproduce, the model must stay as it was, bad input must be named."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from cnn_helper import Feature
from cnn_helper.concepts import (
    CONCEPTS,
    cav,
    concept_cavs,
    concept_images,
    random_images,
    tcav,
)
from cnn_helper.concepts.vectors import MIN_EXAMPLES, cavs_of_vectors, fit_linear, split


@pytest.fixture(scope="module")
def planted():
    """input (4, 4, 2) -> "feat" 1x1 conv, identity, ReLU -> flatten -> "logits": logit k is
    the sum of channel k of feat over the 16 locations."""
    inp = keras.Input((4, 4, 2))
    feat = layers.Conv2D(2, 1, activation="relu", use_bias=False, name="feat")(inp)
    out = layers.Dense(2, name="logits")(layers.Flatten(name="flatten")(feat))
    model = keras.Model(inp, out)
    model.get_layer("feat").set_weights([np.eye(2, dtype=np.float32).reshape(1, 1, 2, 2)])
    w = np.zeros((32, 2), np.float32)
    w[0::2, 0] = w[1::2, 1] = 1.0                    # flattened (row, col, k): k varies fastest
    model.get_layer("logits").set_weights([w, np.zeros(2, np.float32)])
    return model


def images(n, bright: bool, seed: int):
    """Channel 1 uniform on [0, 1]; channel 0 on [0.6, 1] (bright) or [0, 0.5]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 4, 4, 2))
    x[..., 0] = rng.uniform(0.6, 1, (n, 4, 4)) if bright else rng.uniform(0, 0.5, (n, 4, 4))
    return x.astype(np.float32)


def test_the_planted_concept_has_a_score_near_1_and_is_significant(planted):
    x, concept, random = images(30, False, 1), images(40, True, 2), images(300, False, 3)
    result = tcav(planted, x, 0, concept, "feat", random=random, n_runs=10, n_random=40)
    assert result.score == 1.0 and np.all(result.scores == 1.0)
    assert result.significant and result.p_value < 0.01
    assert np.all(result.accuracies == 1.0)
    # the CAV points along the planted direction: channel 0 of every location
    v = cav(planted, "feat", concept, random[:40]).direction.reshape(4, 4, 2)
    assert np.all(v[..., 0] > 0) and np.abs(v[..., 0]).sum() > 5 * np.abs(v[..., 1]).sum()


def test_a_random_concept_is_not_significant(planted):
    x, random = images(30, False, 1), images(300, False, 3)
    fake = images(40, False, 4)                          # drawn like the random images
    result = tcav(planted, x, 0, {"fake": fake}, "feat", random=random, n_runs=10, n_random=40)
    assert not result.significant and result.p_value > 0.05
    assert np.mean(result.accuracies) < 0.8              # the CAVs separate nothing


def test_several_concepts_and_layers_in_one_call_match_single_calls(planted):
    x, random = images(20, False, 1), images(300, False, 3)
    sets = {"bright": images(40, True, 2), "fake": images(40, False, 4)}
    both = tcav(planted, x, 0, sets, ["feat", "flatten"], random=random, n_runs=4, n_random=40)
    assert set(both) == {(c, layer) for c in sets for layer in ("feat", "flatten")}
    assert all(r.tests == 4 for r in both.values())       # Bonferroni over the 4 pairs
    alone = tcav(planted, x, 0, {"bright": sets["bright"]}, "flatten", random=random,
                 n_runs=4, n_random=40)
    assert np.array_equal(alone.scores, both["bright", "flatten"].scores)
    assert np.array_equal(alone.random_scores, both["bright", "flatten"].random_scores)
    cavs = concept_cavs(planted, sets, ["feat", "flatten"], random=random, n_runs=4, n_random=40)
    again = tcav(planted, x, 0, cavs)                     # CAVs fitted once, scored again
    assert all(np.array_equal(again[k].scores, both[k].scores) for k in both)
    assert np.array_equal(tcav(planted, x, 0, cavs, "feat")["fake", "feat"].scores,
                          both["fake", "feat"].scores)


def test_scores_are_the_shares_of_positive_directional_derivatives():
    """Each score against a tape: the share of images whose d logit / d feat, dotted with the
    run's CAV, is positive, on a model whose gradient differs from image to image."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 2))
    feat = layers.Conv2D(3, 1, activation="relu", name="feat")(inp)
    later = [layers.Conv2D(4, 3, activation="relu", name="c2"), layers.Flatten(),
             layers.Dense(2, name="logits")]
    y = feat
    for layer in later:
        y = layer(y)
    model = keras.Model(inp, y)
    x, random = images(40, False, 1), images(200, False, 3)
    result = tcav(model, x, 1, images(30, True, 2), "feat", random=random, n_runs=4,
                  n_random=30, pool="mean")
    a = tf.constant(keras.Model(inp, feat)(x))
    with tf.GradientTape() as tape:
        tape.watch(a)
        s = a
        for layer in later:
            s = layer(s)
        s = s[:, 1]
    gradient = tape.gradient(s, a).numpy().sum(axis=(1, 2))             # (N, 3): mean pool
    expected = (gradient @ result.directions.T > 0).mean(axis=0)
    assert np.array_equal(result.scores, expected)
    assert 0 < np.mean(gradient @ result.directions.T > 0) < 1      # not a constant sign


def test_results_do_not_depend_on_batch_size_and_seeds_reproduce(planted):
    x, random = images(25, False, 1), images(300, False, 3)
    concept = images(40, True, 2)
    runs = [tcav(planted, x, Feature("logits", 1), concept, "feat", random=random, n_runs=5,
                 n_random=30, seed=seed, batch_size=b) for seed, b in ((3, "auto"), (3, 7), (4, 7))]
    assert np.array_equal(runs[0].scores, runs[1].scores)
    assert np.array_equal(runs[0].random_scores, runs[1].random_scores)
    assert runs[0].p_value == runs[1].p_value
    assert not np.array_equal(runs[0].random_scores, runs[2].random_scores) or \
        not np.array_equal(runs[0].accuracies, runs[2].accuracies)      # another seed
    one = cav(planted, "feat", concept, random[:40], batch_size=3)
    other = cav(planted, "feat", concept, random[:40], batch_size=64)
    assert np.allclose(one.direction, other.direction, atol=1e-6)


def test_the_model_is_untouched(planted):
    x, random = images(10, False, 1), images(100, False, 3)
    weights = [w.copy() for w in planted.get_weights()]
    before = np.asarray(planted(x))
    tcav(planted, x, 0, images(20, True, 2), "feat", random=random, n_runs=3, n_random=20,
         pool="mean")
    assert all(np.array_equal(a, b) for a, b in zip(weights, planted.get_weights()))
    assert np.array_equal(before, np.asarray(planted(x)))


def test_the_linear_classifier_matches_a_closed_case():
    """Two points, one per class: the boundary's normal is their difference."""
    a = np.array([[3.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    w, b = fit_linear(a, np.array([1, 0]))
    assert np.allclose(w / np.linalg.norm(w), [1, 0, 0], atol=1e-9)
    assert a[0] @ w + b > 0 > a[1] @ w + b


def test_each_cav_of_a_batch_is_the_regression_of_its_own_rows():
    """The CAVs fitted together (one Gram matrix, one descent) equal each fitted alone, also when
    an image is in both sets of a pair (two random sets overlap): its two rows both count."""
    rng = np.random.default_rng(0)
    every = np.concatenate([rng.normal(0.4, 1, (12, 20)), rng.normal(0, 1, (16, 20))])
    pairs = [(np.arange(12), np.arange(12, 28)), (np.arange(12, 22), np.arange(18, 28))]
    together = cavs_of_vectors("l", (20,), None, every, pairs, [[0], [1]], 0.25)
    for (concept, random), seed, v in zip(pairs, [[0], [1]], together):
        split_rng = np.random.default_rng(seed)
        c_train, _ = split(len(concept), 0.25, split_rng)
        r_train, _ = split(len(random), 0.25, split_rng)
        rows = np.r_[concept[c_train], random[r_train]]
        w, _ = fit_linear(every[rows], np.r_[np.ones(len(c_train)), np.zeros(len(r_train))])
        assert np.allclose(v.direction, w / np.linalg.norm(w), atol=1e-6)


def test_the_linear_classifier_agrees_with_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.normal(0.5, 1, (30, 50)), rng.normal(0, 1, (30, 50))])
    y = np.r_[np.ones(30), np.zeros(30)]
    w, _ = fit_linear(a, y, l2=0.01, steps=2000)
    centred = a - a.mean(axis=0)
    scale = np.sqrt(np.mean(np.sum(centred ** 2, axis=1)))
    reference = linear_model.LogisticRegression(C=1 / (0.01 * 60), tol=1e-12, max_iter=10000)
    expected = reference.fit(centred / scale, y).coef_[0]
    assert np.dot(w, expected) / np.linalg.norm(w) / np.linalg.norm(expected) > 0.9999


def test_concept_sets_are_drawn_reproducibly():
    for name in CONCEPTS:
        first = concept_images(name, 4, seed=1)
        assert first.shape == (4, 28, 28, 1) and first.dtype == np.float32
        assert 0 <= first.min() and first.max() <= 1 and first.max() > 0.5
        assert np.array_equal(first, concept_images(name, 4, seed=1))
        assert np.array_equal(first[:2], concept_images(name, 2, seed=1))
        assert not np.array_equal(first, concept_images(name, 4, seed=2))
    loop = concept_images("loop", 1)[0, ..., 0] > 0.5
    rows, cols = np.nonzero(loop)
    assert not loop[round(rows.mean()), round(cols.mean())] and loop.sum() > 20   # a ring
    pool = np.arange(50, dtype=np.float32).reshape(50, 1, 1, 1)
    drawn = random_images(10, seed=0, x=pool)
    assert len(np.unique(drawn)) == 10 and np.array_equal(drawn, random_images(10, 0, pool))


def test_bad_input_gets_a_clear_error(planted):
    random = images(100, False, 3)
    with pytest.raises(ValueError, match=f"at least {MIN_EXAMPLES}"):
        cav(planted, "feat", images(3, True, 2), random)
    with pytest.raises(ValueError, match="shape"):
        cav(planted, "feat", np.zeros((20, 28, 28, 1), np.float32), random)
    with pytest.raises(ValueError, match="no spatial axes"):
        cav(planted, "flatten", images(20, True, 2), random, pool="mean")
    with pytest.raises(ValueError, match="pool"):
        cav(planted, "feat", images(20, True, 2), random, pool="max")
    with pytest.raises(ValueError, match="n_runs must be at least 2"):
        tcav(planted, random[:5], 0, images(20, True, 2), "feat", random=random, n_runs=1)
    with pytest.raises(ValueError, match="n_random"):
        tcav(planted, random[:5], 0, images(20, True, 2), "feat", random=random[:20],
             n_random=50)
    with pytest.raises(ValueError, match="is not one of"):
        concept_images("circle", 3)
    with pytest.raises(ValueError, match="class 5 is out of range"):
        tcav(planted, random[:5], 5, images(20, True, 2), "feat", random=random)
