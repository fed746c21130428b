"""Seeing a concept: a direction (a CAV, a CRAFT concept) as a feature-visualization objective,
whose value is the projection the docstring states, and the concept figures."""
import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import Feature
from cnn_helper.concepts import cav, craft, tcav
from cnn_helper.feature_visualization import Direction, visualize
from cnn_helper.plot import concepts as concept_plots


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 1))
    feat = layers.Conv2D(4, 3, padding="same", activation="relu", name="feat")(inp)
    out = layers.Dense(3, name="logits")(layers.Flatten(name="flatten")(feat))
    return keras.Model(inp, out)


def _images(n, seed=0, low=0.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, (n, 8, 8, 1)).astype(np.float32)


def test_a_direction_is_visualized_by_its_projection(model):
    flat = np.random.default_rng(0).normal(size=8 * 8 * 4).astype(np.float32)
    per_channel = np.float32([1.0, -1.0, 0.5, 0.0])
    vis = visualize(model, [Direction("feat", flat, "flat"), Direction("feat", per_channel),
                            Feature("feat", 2)], steps=30, progress=False)
    a = np.asarray(keras.Model(model.inputs[0], model.get_layer("feat").output)(vis.images))
    assert np.allclose(vis.values[0], a[0].ravel() @ flat, rtol=1e-4, atol=1e-5)
    assert np.allclose(vis.values[1], a[1].mean(axis=(0, 1)) @ per_channel, rtol=1e-4,
                       atol=1e-5)
    assert np.all(vis.values[:2] > vis.initial_values[:2])           # the ascent rose
    assert np.allclose(vis.values[2], a[2, ..., 2].max(), rtol=1e-4, atol=1e-5)   # a Feature
    assert str(vis.targets[0]) == "flat at feat"


def test_a_direction_of_the_wrong_size_is_a_clear_error(model):
    with pytest.raises(ValueError, match="give 256 values .* or 4"):
        visualize(model, Direction("feat", np.ones(5)), steps=2, progress=False)
    with pytest.raises(ValueError, match="a Direction starts from noise"):
        visualize(model, Direction("feat", np.ones(4)), steps=2, x=_images(4), progress=False)


def test_the_concept_figures_draw(model):
    concept, random = _images(20, 1, 0.5, 1.0), _images(100, 2, 0.0, 0.6)
    results = tcav(model, _images(10, 3), 0, {"bright": concept}, ["feat", "flatten"],
                   random=random, n_runs=3, n_random=20)
    fig, ax = concept_plots.tcav_scores(results)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].startswith("bright feat\np ")
    bank = craft(model, _images(6, 4), "feat", n_concepts=3, crop=4)
    ranked = bank.importance(_images(3, 5), 1, n_designs=8)
    fig, axes = concept_plots.concept_crops(bank, ranked, count=4)
    assert axes.shape == (3, 4)
    fig, axes = concept_plots.concept_maps(_images(2, 6), bank.transform(_images(2, 6)))
    assert axes.shape == (2, 4)
    v = cav(model, "feat", concept, random[:20])
    vis = visualize(model, Direction("feat", v.direction, "bright"), steps=5, progress=False)
    fig, axes = concept_plots.concept_and_crops(vis, [concept[:3]])
    assert axes.shape == (1, 4)
    assert concept_plots.p_text(0.0004) == "p < 0.001" and concept_plots.p_text(0.2) == "p = 0.20"
