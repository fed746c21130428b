"""Interpretation by optimization: feature visualization (images optimized to excite a target) and
inverting a representation (Mahendran & Vedaldi). Every value the results report is checked
against an independent computation (``features.feature_values``, ``features.activations`` and
NumPy), the optimizer against Keras' own Adam."""
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnn_helper import Feature, feature_visualization, features, inverting, max_activation, plot
from cnn_helper.feature_visualization import Transforms, visualize

STEPS = 24


@pytest.fixture(scope="module")
def tiny_colour():
    """A small colour CNN taking [-1, 1] images (MobileNetV2's range), nested: its convolutions
    live in a base model, as in transfer learning."""
    keras.utils.set_random_seed(5)
    base_in = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(base_in)
    h = keras.layers.MaxPooling2D(2, name="p1")(h)
    h = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c2")(h)
    base = keras.Model(base_in, h, name="base")
    inputs = keras.Input((16, 16, 3))
    h = keras.layers.GlobalAveragePooling2D(name="gap")(base(inputs))
    outputs = keras.layers.Dense(3, name="head")(h)
    return keras.Model(inputs, outputs, name="nested")


@pytest.fixture(scope="module")
def cnn_units(shipped_cnn):
    targets = [Feature("conv2", 5), Feature("conv3", 12, pool="mean"),
               Feature("conv3", 7, location=(3, 3)), Feature("logits", 4), 2]
    return targets, visualize(shipped_cnn, targets, steps=STEPS, progress=False)


def test_gradient_ascent_raises_every_target_and_reports_its_true_value(shipped_cnn, cnn_units):
    targets, vis = cnn_units
    assert vis.images.shape == (5, 28, 28, 1) and vis.images.dtype == np.float32
    assert vis.targets[-1] == Feature("softmax", 2)          # an int: the head output
    assert np.all(vis.values > vis.initial_values + 1e-3), (vis.initial_values, vis.values)
    for i, target in enumerate(targets):                     # the value IS the target's value
        expected = features.feature_values(shipped_cnn, vis.images[i:i + 1], target).values[0]
        np.testing.assert_allclose(vis.values[i], expected, rtol=1e-4, atol=1e-5)


def test_range_constraint_holds_in_the_course_range_and_in_a_given_one(cnn_units, tiny_colour):
    _, vis = cnn_units
    assert 0.0 <= vis.images.min() and vis.images.max() <= 1.0
    assert vis.settings["value_range"] == ((0.0,), (1.0,))
    low, high = np.array([-1.0, 0.0, 10.0]), np.array([1.0, 0.5, 20.0])
    colour = visualize(tiny_colour, [Feature("base/c2", 1)], steps=8, value_range=(low, high),
                       progress=False)
    per_channel = colour.images.reshape(-1, 3)
    assert np.all(per_channel >= low) and np.all(per_channel <= high)
    assert per_channel.max(axis=0)[2] > 10.0       # the third channel lives in its own range


def test_rescaling_model_is_optimized_in_pixels():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Rescaling(1 / 255)(inputs)
    outputs = keras.layers.Conv2D(2, 3, name="c")(h)
    vis = visualize(keras.Model(inputs, outputs), Feature("c", 0), steps=4, progress=False)
    assert vis.settings["value_range"] == ((0.0,), (255.0,))
    assert vis.images.max() > 1.0


def test_same_seed_same_images_other_seed_other_images(tiny_colour):
    target = [Feature("base/c2", k) for k in range(3)]
    a, b, c = (visualize(tiny_colour, target, steps=8, seed=s, progress=False) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.images, b.images)
    assert np.abs(a.images - c.images).max() > 1e-2


def test_result_does_not_depend_on_batch_size(tiny_colour):
    target = [Feature("base/c1", k) for k in (0, 2, 3)] + [Feature("head", 1)]   # c1 k=1: 0
    one, all_ = (visualize(tiny_colour, target, steps=8, seed=3, batch_size=b, progress=False)
                 for b in (1, "auto"))
    np.testing.assert_allclose(one.images, all_.images, atol=1e-4)
    np.testing.assert_allclose(one.values, all_.values, rtol=1e-4, atol=1e-4)


def test_colour_nested_inner_layer_by_path_and_by_bare_name(tiny_colour):
    vis = visualize(tiny_colour, "c2", steps=STEPS, value_range=(-1, 1), progress=False)
    assert vis.images.shape == (5, 16, 16, 3)
    assert [t.channel for t in vis.targets] == list(range(5))
    assert np.all(vis.values > vis.initial_values)
    for k in range(5):
        value = features.feature_values(tiny_colour, vis.images[k], Feature("base/c2", k)).values
        np.testing.assert_allclose(vis.values[k], value[0], rtol=1e-4, atol=1e-5)
    # decorrelated colour: the channels are not copies of one another
    assert np.abs(vis.images[..., 0] - vis.images[..., 1]).max() > 1e-2


def test_pixel_parametrization_and_priors(shipped_cnn):
    smooth = visualize(shipped_cnn, Feature("conv1", 3), steps=STEPS, parametrization="pixel",
                       transforms=None, tv=50.0, progress=False)
    rough = visualize(shipped_cnn, Feature("conv1", 3), steps=STEPS, parametrization="pixel",
                      transforms=None, progress=False)
    tv = [feature_visualization.total_variation(v.images).numpy()[0] for v in (smooth, rough)]
    assert tv[0] < tv[1]
    assert smooth.values[0] > smooth.initial_values[0]


def test_objective_reads_each_image_its_own_target(shipped_cnn, bundled):
    x = bundled[1][0][:3]
    targets = [Feature("conv3", 12, pool="mean"), Feature("conv2", 5, location=(3, 4)),
               Feature("logits", 4)]
    kinds = (("conv3", "mean", None), ("conv2", "max", (3, 4)), ("logits", "max", None))
    values = feature_visualization.objective(shipped_cnn, kinds)
    got = np.asarray(values(x, np.int32([0, 1, 2]), np.int32([12, 5, 4])))
    expected = [features.feature_values(shipped_cnn, x[i:i + 1], t).values[0]
                for i, t in enumerate(targets)]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("module", [feature_visualization, inverting], ids=lambda m: m.__name__)
def test_the_methods_leave_tensorflow_to_the_image_optimization_core(module):
    """TensorFlow-specific code lives in the private core (``_image_optim``); the methods write
    their objectives with ``keras.ops``, so another Keras backend changes the core only."""
    source = Path(module.__file__).read_text()
    assert not re.findall(r"^.*(?:import tensorflow|\btf\.).*$", source, re.M)


def test_transforms_with_zero_ranges_are_the_identity():
    x = tf.constant(np.random.default_rng(0).random((2, 9, 7, 3)), tf.float32)
    same = feature_visualization.transform(x, Transforms(jitter=0, scale=(1, 1), rotation=0),
                                           tf.constant([0, 1]), (0.0, 0.0, 0.0))
    np.testing.assert_allclose(same.numpy(), x.numpy(), atol=1e-5)


def test_adam_ascent_is_keras_adam_on_minus_the_objective():
    params = np.array([0.3, -1.2, 2.0], np.float32)
    variable = tf.Variable(params)
    optimizer = keras.optimizers.Adam(learning_rate=0.1, epsilon=1e-8)
    p, m, v = tf.constant(params), tf.zeros(3), tf.zeros(3)
    for t in range(1, 6):
        gradient = tf.constant([1.0, -2.0, 0.5]) * tf.cast(t, tf.float32)
        p, m, v = feature_visualization.adam(p, gradient, m, v, tf.constant(t), 0.1)
        optimizer.apply_gradients([(-gradient, variable)])
    np.testing.assert_allclose(p.numpy(), variable.numpy(), rtol=1e-5, atol=1e-6)


def test_inversion_distance_falls_and_is_the_relative_squared_distance(shipped_cnn, bundled):
    x = bundled[1][0][:2]
    inv = inverting.invert(shipped_cnn, x, ["conv1", "dense"], steps=STEPS, progress=False)
    assert inv.layers == ("conv1", "dense") and inv.images["conv1"].shape == (2, 28, 28, 1)
    for layer in inv.layers:
        assert np.all(inv.distances[layer] < inv.initial_distances[layer])
        phi = features.activations(shipped_cnn, np.concatenate([inv.images[layer], x]), [layer])
        phi = phi[layer].reshape(4, -1).astype(np.float64)
        by_hand = ((phi[:2] - phi[2:]) ** 2).sum(1) / (phi[2:] ** 2).sum(1)
        np.testing.assert_allclose(inv.distances[layer], by_hand, rtol=1e-4)
    one = inverting.invert(shipped_cnn, x[0], "conv1", steps=STEPS, progress=False)
    assert one.images["conv1"].shape == (28, 28, 1) and np.ndim(one.distances["conv1"]) == 0
    np.testing.assert_allclose(one.images["conv1"], inv.images["conv1"][0], atol=1e-4)


def test_figures(shipped_cnn, bundled, cnn_units):
    (x, y), _ = bundled
    _, vis = cnn_units
    fig, axes = plot.visualizations(vis, cols=3)
    assert axes.size == 6 and "from" not in axes.flat[0].get_title()     # one start: not named
    units = visualize(shipped_cnn, [Feature("conv3", 1), Feature("conv3", 2)], steps=4,
                      progress=False)
    scans = max_activation.scan(shipped_cnn, x[:200], "conv3", count=9, progress=False)
    fig, axes = plot.unit_and_examples(units, x[:200], [scans["conv3"].channel(k) for k in (1, 2)],
                                       y[:200])
    assert axes.shape == (2, 2)
    with pytest.raises(ValueError, match="ranks"):
        plot.unit_and_examples(units, x[:200], [scans["conv3"].channel(k) for k in (2, 1)])
    fig, axes = plot.compare_visualizations({"a": units, "b": units})
    assert axes.shape == (2, 2)
    with pytest.raises(TypeError, match="FeatureVisualization"):
        plot.visualizations(scans)


def test_bad_input_is_a_clear_error(shipped_cnn, bundled):
    x = bundled[1][0][:1]
    cases = [
        (dict(targets=Feature("conv9", 0)), ValueError, "has no layer 'conv9'"),
        (dict(targets=Feature("conv2", 32)), ValueError, "channel 32 is out of range"),
        (dict(targets=11), ValueError, "class 11 is out of range: the model has classes 0..9"),
        (dict(targets=[]), TypeError, "targets must be"),
        (dict(targets=1, steps=0), ValueError, "steps must be a positive int, got 0"),
        (dict(targets=1, parametrization="wavelet"), ValueError, "parametrization 'wavelet'"),
        (dict(targets=1, value_range=(1, 0)), ValueError, "low < high"),
        (dict(targets=1, transforms="standard"), TypeError, "Transforms or None"),
        (dict(targets=1, learning_rate=0), ValueError, "learning_rate must be > 0"),
        (dict(targets=1, l2=-1), ValueError, "l2 must be a finite number >= 0"),
        (dict(targets=1, seed=-3), ValueError, "seed must be an int >= 0"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            visualize(shipped_cnn, progress=False, **kwargs)
    with pytest.raises(ValueError, match="Transforms scale"):
        Transforms(scale=(1.2, 0.9))
    with pytest.raises(ValueError, match="has no layer 'conv7'"):
        inverting.invert(shipped_cnn, x, "conv7", progress=False)
    with pytest.raises(ValueError, match="alpha must be >= 1"):
        inverting.invert(shipped_cnn, x, "conv1", alpha=0.5, progress=False)
    with pytest.raises(ValueError, match="x has shape"):
        inverting.invert(shipped_cnn, x[..., 0], "conv1", progress=False)


def test_a_target_behind_an_off_relu_is_named_in_a_warning(shipped_cnn):
    dead = Feature("conv1", 6, location=(14, 14))       # 0 on the grey start: no gradient
    with pytest.warns(UserWarning, match=r"y_\(conv1\),idx=\(14, 14\),k=6.*another seed"):
        vis = visualize(shipped_cnn, [dead, Feature("conv1", 6)], steps=4, progress=False)
    assert vis.values[0] == vis.initial_values[0] == 0 and vis.values[1] > 0


# --------------------------------------------------------------------------- several starts


def _brute_force_top(model, x, target, count):
    """The ``count`` examples of x with the highest value of target, by NumPy from the layer's
    activations: highest first, equal values by lower index."""
    y = features.activations(model, x, [target.layer_name])[target.layer_name][..., target.channel]
    if target.location is not None:
        values = y[(slice(None),) + tuple(target.location)]
    else:
        axes = tuple(range(1, y.ndim))
        values = y.max(axis=axes) if target.pool == "max" else y.mean(axis=axes)
    return np.argsort(-values, kind="stable")[:count]


def test_each_image_is_the_best_of_its_starts_and_names_it(shipped_cnn, bundled):
    x = bundled[1][0][:150]
    targets = [Feature("conv3", 1), Feature("conv3", 5), Feature("conv2", 3, location=(5, 5))]
    vis = visualize(shipped_cnn, targets, steps=6, starts=2, x=x, example_starts=2,
                    progress=False)
    assert vis.values_by_start.shape == (3, 4) and vis.start_examples.dtype == np.int64
    best = vis.values_by_start.argmax(axis=1)
    np.testing.assert_array_equal(vis.values, vis.values_by_start.max(axis=1))
    for i, target in enumerate(targets):
        top = _brute_force_top(shipped_cnn, x, target, 2)
        if best[i] < 2:                                   # columns: noise seeds 0, 1 ...
            assert vis.starts[i] == f"noise seed {best[i]}" and vis.start_examples[i] == -1
        else:                                             # ... then the top examples of x
            assert vis.start_examples[i] == top[best[i] - 2]
            assert vis.starts[i] == f"example #{top[best[i] - 2]}"
        expected = features.feature_values(shipped_cnn, vis.images[i:i + 1], target).values[0]
        np.testing.assert_allclose(vis.values[i], expected, rtol=1e-4, atol=1e-5)
    assert vis.settings["starts"] == 2 and vis.settings["example_starts"] == 2
    fig, axes = plot.visualizations(vis)                  # each title names the start
    short = vis.starts[0].replace("noise ", "").replace("example ", "")
    assert axes.flat[0].get_title().endswith(f"\nfrom {short}")
    fig, ax = plot.visualization_of(vis, 1)
    assert ax.get_title().endswith(f"\nfrom {vis.starts[1]}")


def test_example_starts_are_the_top_examples_and_start_at_their_value(shipped_cnn, bundled):
    """Against a brute-force search: each target starts from its top example of x (the image
    the sigmoid can reach: within START_MARGIN of the range), and the ascent raises it."""
    x = bundled[1][0][:300]
    targets = [Feature("conv3", 7), Feature("conv2", 4, pool="mean"),
               Feature("conv1", 2, location=(10, 12)), Feature("logits", 3)]
    vis = visualize(shipped_cnn, targets, steps=8, starts=0, x=x, example_starts=1,
                    progress=False)
    for i, target in enumerate(targets):
        top = _brute_force_top(shipped_cnn, x, target, 1)[0]
        assert vis.start_examples[i] == top and vis.starts[i] == f"example #{top}"
        start = np.clip(x[top:top + 1], 1e-3, 1 - 1e-3)
        value = features.feature_values(shipped_cnn, start, target).values[0]
        np.testing.assert_allclose(vis.initial_values[i], value, rtol=1e-3, atol=1e-4)
    assert np.all(vis.values > vis.initial_values)


def test_noise_start_s_is_what_seed_s_alone_gives(tiny_colour):
    targets = [Feature("base/c2", k) for k in range(3)]
    several = visualize(tiny_colour, targets, steps=6, seed=1, starts=3, progress=False)
    alone = [visualize(tiny_colour, targets, steps=6, seed=s, progress=False) for s in (1, 2, 3)]
    for j, vis in enumerate(alone):
        np.testing.assert_allclose(several.values_by_start[:, j], vis.values, rtol=1e-5)
    for i, j in enumerate(several.values_by_start.argmax(axis=1)):
        assert several.starts[i] == f"noise seed {j + 1}"
        np.testing.assert_allclose(several.images[i], alone[j].images[i], atol=1e-5)
        assert several.initial_values[i] == alone[j].initial_values[i]


def test_several_starts_do_not_depend_on_batch_size(tiny_colour):
    x = np.random.default_rng(0).uniform(-1, 1, (20, 16, 16, 3)).astype(np.float32)
    targets = [Feature("base/c1", 0), Feature("base/c2", 4, pool="mean"), Feature("head", 1)]
    one, all_ = (visualize(tiny_colour, targets, steps=6, value_range=(-1, 1), starts=2, x=x,
                           example_starts=2, plain_steps=2, batch_size=b, progress=False)
                 for b in (1, "auto"))
    np.testing.assert_allclose(one.values_by_start, all_.values_by_start, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(one.images, all_.images, atol=1e-4)
    assert one.starts == all_.starts


def test_a_colour_example_start_is_the_example(tiny_colour):
    """The inverse of the parametrization (decorrelated colour, Fourier or pixels) gives back
    the example, so an example start begins at the example's own value."""
    x = np.random.default_rng(1).uniform(-0.9, 0.9, (5, 16, 16, 3)).astype(np.float32)
    target = Feature("base/c2", 2)
    for parametrization in ("fourier", "pixel"):
        vis = visualize(tiny_colour, target, steps=1, value_range=(-1, 1), starts=0, x=x,
                        example_starts=1, parametrization=parametrization, progress=False)
        value = features.feature_values(tiny_colour, x[vis.start_examples], target).values[0]
        np.testing.assert_allclose(vis.initial_values[0], value, rtol=1e-4, atol=1e-5)


def test_plain_steps_end_the_ascent_untransformed(tiny_colour):
    targets = [Feature("base/c2", k) for k in range(2)]
    plain = visualize(tiny_colour, targets, steps=6, transforms=None, progress=False)
    late = visualize(tiny_colour, targets, steps=6, plain_steps=6, progress=False)
    np.testing.assert_allclose(late.images, plain.images, atol=1e-6)
    assert plain.settings["plain_steps"] == 0 and late.settings["plain_steps"] == 6


def test_example_starts_beat_the_best_example_where_noise_does_not(shipped_cnn, bundled):
    """Issue 28: from noise, the max-pooled image of these conv3 channels stays below the best
    of 300 test digits (the ascent stops in a local optimum); from the channel's top digits the
    ascent climbs past it (by more than 0.1 %: a start the ascent cannot raise does not count)."""
    x = bundled[1][0][:300]
    channels = [0, 4, 6, 26]
    best = max_activation.scan(shipped_cnn, x, "conv3", count=1, progress=False)["conv3"]
    best = best.high.values[channels, 0]
    targets = [Feature("conv3", k) for k in channels]
    noise = visualize(shipped_cnn, targets, steps=32, progress=False)
    assert np.all(noise.values < best), noise.values / best
    vis = visualize(shipped_cnn, targets, steps=32, x=x, progress=False)
    assert np.all(vis.values > 1.001 * best), (vis.values / best, vis.starts)
    assert np.all(vis.values > vis.initial_values)


def test_bad_starts_are_a_clear_error(shipped_cnn, bundled):
    x = bundled[1][0][:5]
    cases = [
        (dict(starts=0), "starts must be an int >= 1"),
        (dict(starts=-1, x=x), "starts must be an int"),
        (dict(x=x, example_starts=6), "example_starts must be an int from 1 to the 5"),
        (dict(x=x[..., 0]), "x"),
        (dict(plain_steps=9, steps=8), "plain_steps must be an int from 0 to steps=8"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            visualize(shipped_cnn, 1, progress=False, **kwargs)
