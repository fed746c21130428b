"""Saliency maps: gradients against finite differences, backward rules against hand-worked nets."""
import contextlib

import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import (  # internal contract: the clone and the trace cache
    Feature,
    _gradient,
    _graph,
    _override,
    data,
    features,
    models,
    plot,
)
from cnn_helper import saliency as S

METHODS = [S.gradient, S.gradient_x_input, S.smoothgrad, S.integrated_gradients, S.grad_cam,
           S.guided_backprop, S.deconvnet]


@contextlib.contextmanager
def floatx(dtype):
    """Build layers in ``dtype`` (float64 for finite differences).

    Keras 3 fixes the global dtype policy once the first layer is built, after which set_floatx
    alone no longer changes new layers: set the policy too, and restore both.
    """
    old, old_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(old)
        keras.config.set_dtype_policy(old_policy)


@pytest.fixture(scope="module")
def cnn():
    """The course CNN with its shipped weights."""
    return models.load("cnn", "shipped")


# --------------------------------------------------------------------------- small random models


def conv_dense(seed, dtype="float32"):
    """Conv + Dense head, softmax output (an int target differentiates a probability)."""
    keras.utils.set_random_seed(seed)
    with floatx(dtype):
        x = inp = keras.Input((7, 7, 2))
        x = layers.Conv2D(3, 3, activation="relu", name="c1")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(4, name="logits")(x)
        out = layers.Activation("softmax")(x)
        return keras.Model(inp, out)


def strided(seed, dtype="float32"):
    """Strides and both paddings, a smooth and a ReLU conv, global average pooling."""
    keras.utils.set_random_seed(seed)
    with floatx(dtype):
        x = inp = keras.Input((9, 9, 1))
        x = layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh", name="c1")(x)
        x = layers.Conv2D(3, 2, padding="valid", activation="relu", name="c2")(x)
        x = layers.GlobalAveragePooling2D()(x)
        out = layers.Dense(3, name="logits")(x)
        return keras.Model(inp, out)


def sequential(seed, dtype="float32"):
    """A Sequential model starting with keras.Input, with max pooling."""
    keras.utils.set_random_seed(seed)
    with floatx(dtype):
        return keras.Sequential([
            keras.Input((8, 8, 1)),
            layers.Conv2D(3, 3, padding="same", activation="relu", name="c1"),
            layers.MaxPooling2D(2),
            layers.Conv2D(2, 3, activation="softplus", name="c2"),
            layers.Flatten(),
            layers.Dense(3, name="logits")])


def smooth(seed, dtype="float32"):
    """tanh / softplus / average pooling only: s is smooth, so IG's midpoint rule converges fast."""
    keras.utils.set_random_seed(seed)
    with floatx(dtype):
        return keras.Sequential([
            keras.Input((8, 8, 1)),
            layers.Conv2D(3, 3, activation="tanh", name="c1"),
            layers.AveragePooling2D(2),
            layers.Conv2D(2, 2, activation="softplus", name="c2"),
            layers.Flatten(),
            layers.Dense(3, name="logits")])


def images(model, n, seed=0, dtype=np.float32):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).uniform(-1, 1, (n,) + shape).astype(dtype)


def scalar_fn(model, target, location=None):
    """A NumPy reference for the target: the layer's output, indexed without cnn_helper."""
    feature = features.as_feature(model, target)
    sub = keras.Model(model.inputs[0], model.get_layer(feature.layer_name).output)

    def f(x):
        a = np.asarray(sub(x))[..., feature.channel]
        if a.ndim == 1:
            return a
        if location is not None:
            return a[(slice(None),) + tuple(location)]
        if feature.pool == "mean":
            return a.reshape(len(a), -1).mean(axis=1)
        return a.reshape(len(a), -1).max(axis=1)
    return f


def central_differences(f, x, h=1e-6):
    """d f / d x[i] for every input value of ONE image x, in float64."""
    x = x.astype(np.float64)
    eye = np.eye(x.size).reshape((x.size,) + x.shape) * h
    up, down = f(x[None] + eye), f(x[None] - eye)
    return ((up - down) / (2 * h)).reshape(x.shape)


@pytest.mark.parametrize("build, target", [
    (conv_dense, 2),                           # softmax probability of class 2
    (conv_dense, Feature("logits", 1)),
    (strided, 0),
    (strided, Feature("c1", 1, (2, 1))),       # inner feature at a fixed location
    (sequential, 2),
    (sequential, Feature("c2", 1, (1, 0))),
])
def test_gradient_matches_central_differences(build, target):
    model = build(seed=3, dtype="float64")
    x = images(model, 3, seed=1)
    g = S.gradient(model, x, target)
    assert g.shape == x.shape and g.dtype == np.float32
    location = target.location if isinstance(target, Feature) else None
    f = scalar_fn(model, target, location)
    for i in range(len(x)):
        fd = central_differences(f, x[i])
        assert np.abs(fd).max() > 1e-3          # the test means something
        np.testing.assert_allclose(g[i], fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())


@pytest.mark.parametrize("build, layer", [(strided, "c2"), (sequential, "c1"), (sequential, "c2")])
def test_inner_feature_at_argmax_matches_central_differences(build, layer):
    """d y_(l),idx,k / d y_(0) with idx the argmax of each example (location None or "argmax")."""
    model = build(seed=5, dtype="float64")
    x = images(model, 3, seed=2)
    fv = features.feature_values(model, x, Feature(layer, 1))
    by_none = S.gradient(model, x, Feature(layer, 1))
    by_argmax = S.gradient(model, x, Feature(layer, 1, "argmax"))
    np.testing.assert_array_equal(by_none, by_argmax)
    for i in range(len(x)):
        fd = central_differences(scalar_fn(model, Feature(layer, 1), fv.locations[i]), x[i])
        np.testing.assert_allclose(by_argmax[i], fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())


def test_mean_reduction_matches_central_differences():
    model = strided(seed=7, dtype="float64")
    x = images(model, 2, seed=3)
    target = Feature("c2", 0, pool="mean")
    g = S.gradient(model, x, target)
    for i in range(len(x)):
        fd = central_differences(scalar_fn(model, target), x[i])
        np.testing.assert_allclose(g[i], fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())


def test_float32_model_agrees_with_float64_copy():
    model32, model64 = conv_dense(seed=3), conv_dense(seed=3, dtype="float64")
    model64.set_weights([w.astype(np.float64) for w in model32.get_weights()])
    x = images(model32, 4)
    np.testing.assert_allclose(S.gradient(model32, x, 1), S.gradient(model64, x, 1), rtol=1e-3,
                               atol=1e-6)


# --------------------------------------------------------------------------- backward rules by hand

# y = V . relu(W^T x + b) with
#   x = (1, 2, -1, 0.5)
#   W = [[1, 0, 0], [0, 1, 0], [0, 0, -1], [1, -1, 1]] (rows: inputs, columns: units)
#   b = (0, -3, 0)
#   z = W^T x + b = (1 + 0.5, 2 - 0.5 - 3, 1 + 0.5) = (1.5, -1.5, 1.5)
#   V = (2, 3, -1): the gradient arriving at the ReLU output is g = V = (2, 3, -1)
# What each rule passes through the ReLU to z:
#   gradient  g * [z > 0]            = (2, 0, -1)
#   guided    g * [z > 0] * [g > 0]  = (2, 0, 0)      (unit 2 is off, unit 3's g is negative)
#   deconvnet relu(g)                = (2, 3, 0)      (ignores z: unit 2 passes although off)
# and dy/dx = W @ (that):  row 4 of W is (1, -1, 1)
#   gradient  (2, 0, 1, 2 - 0 - 1) = (2, 0, 1, 1)
#   guided    (2, 0, 0, 2)
#   deconvnet (2, 3, 0, 2 - 3 + 0) = (2, 3, 0, -1)
X_HAND = np.array([[1.0, 2.0, -1.0, 0.5]], np.float32)
W_HAND = np.array([[1, 0, 0], [0, 1, 0], [0, 0, -1], [1, -1, 1]], np.float32)
B_HAND = np.array([0, -3, 0], np.float32)
V_HAND = np.array([[2], [3], [-1]], np.float32)
EXPECTED = {S.gradient: [2, 0, 1, 1], S.guided_backprop: [2, 0, 0, 2], S.deconvnet: [2, 3, 0, -1]}


def hand_net(form):
    inp = keras.Input((4,))
    if form == "activation_arg":
        h = layers.Dense(3, activation="relu", name="hidden")(inp)
    elif form == "relu_layer":
        h = layers.ReLU(name="relu")(layers.Dense(3, name="hidden")(inp))
    elif form == "activation_layer":
        h = layers.Activation("relu", name="relu")(layers.Dense(3, name="hidden")(inp))
    elif form == "nested":
        block = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="hidden"),
                                  layers.ReLU(name="relu")], name="block")
        h = block(inp)
    out = layers.Dense(1, name="out")(h)
    model = keras.Model(inp, out)
    model.set_weights([W_HAND, B_HAND, V_HAND, np.zeros(1, np.float32)])
    return model


@pytest.mark.parametrize("form", ["activation_arg", "relu_layer", "activation_layer", "nested"])
@pytest.mark.parametrize("method", list(EXPECTED), ids=lambda m: m.__name__)
def test_backward_rules_by_hand(form, method):
    model = hand_net(form)
    np.testing.assert_allclose(np.asarray(model(X_HAND)), [[1.5]], rtol=1e-6)   # y = 3 - 1.5
    np.testing.assert_allclose(method(model, X_HAND, 0), [EXPECTED[method]], atol=1e-6)
    np.testing.assert_allclose(method(model, X_HAND[0], 0), EXPECTED[method], atol=1e-6)


def test_the_clone_changed_every_relu_form():
    assert S.relus_changed(hand_net("activation_arg")) == ("hidden",)
    assert S.relus_changed(hand_net("relu_layer"), "deconvnet") == ("relu",)
    assert S.relus_changed(hand_net("activation_layer")) == ("relu",)
    assert S.relus_changed(hand_net("nested")) == ("relu",)


def test_relu_variant_keeps_its_own_derivative():
    # ReLU(max_value=1): z = (1.5, -1.5, 1.5) are all in flat parts, so the ordinary and the
    # guided gradient are 0; deconvnet ignores z and passes relu(g) = (2, 3, 0) as before.
    inp = keras.Input((4,))
    h = layers.ReLU(max_value=1.0)(layers.Dense(3)(inp))
    model = keras.Model(inp, layers.Dense(1)(h))
    model.set_weights([W_HAND, B_HAND, V_HAND, np.zeros(1, np.float32)])
    np.testing.assert_allclose(S.gradient(model, X_HAND, 0), [[0, 0, 0, 0]], atol=1e-7)
    np.testing.assert_allclose(S.guided_backprop(model, X_HAND, 0), [[0, 0, 0, 0]], atol=1e-7)
    np.testing.assert_allclose(S.deconvnet(model, X_HAND, 0), [[2, 3, 0, -1]], atol=1e-6)


def test_max_pooling_switches():
    # 4x4 input, 2x2 max pooling, ReLU, Dense with weights v = (1, -1, 2, 1) on the pooled
    # (top-left, top-right, bottom-left, bottom-right) maxima:
    #   maxima 3 at (0,1), 2 at (1,3), -1 at (2,0), 5 at (3,3); after ReLU (3, 2, 0, 5)
    # Gradient at the pooled values (the switches route each to its max):
    #   gradient  v * [pooled > 0]            = (1, -1, 0, 1)
    #   guided    v * [pooled > 0] * [v > 0]  = (1, 0, 0, 1)
    #   deconvnet relu(v)                     = (1, 0, 2, 1)
    x = np.array([[0, 3, 1, 0],
                  [1, 2, 0, 2],
                  [-1, -2, 1, 0],
                  [-3, -4, 2, 5]], np.float32)[None, :, :, None]
    inp = keras.Input((4, 4, 1))
    h = layers.Flatten()(layers.ReLU()(layers.MaxPooling2D(2)(inp)))
    model = keras.Model(inp, layers.Dense(1, use_bias=False)(h))
    model.set_weights([np.array([[1], [-1], [2], [1]], np.float32)])
    where = [(0, 1), (1, 3), (2, 0), (3, 3)]
    for method, passed in [(S.gradient, (1, -1, 0, 1)), (S.guided_backprop, (1, 0, 0, 1)),
                           (S.deconvnet, (1, 0, 2, 1))]:
        expected = np.zeros((4, 4), np.float32)
        for (r, c), v in zip(where, passed):
            expected[r, c] = v
        np.testing.assert_allclose(method(model, x, 0)[0, ..., 0], expected, atol=1e-7,
                                   err_msg=method.__name__)


def test_weights_changed_after_a_call_are_used():
    model = hand_net("relu_layer")
    S.guided_backprop(model, X_HAND, 0)
    # V = (-2, 3, 1): g = (-2, 3, 1); guided passes g where z > 0 and g > 0: (0, 0, 1);
    # dy/dx = W @ (0, 0, 1) = (0, 0, -1, 1)
    model.get_layer("out").kernel.assign(np.array([[-2], [3], [1]], np.float32))
    np.testing.assert_allclose(S.guided_backprop(model, X_HAND, 0), [[0, 0, -1, 1]], atol=1e-6)


def test_the_clone_computes_the_same_forward_values(cnn):
    """Only gradients change: every layer of the clones gives the original's values, bit for bit
    (so the argmax of a Feature is the one the original model finds)."""
    (_, _), (x_test, _) = data.load_mnist("bundled", verbose=False)
    names = ["conv1", "pool1", "conv2", "conv3", "dense", "logits", "softmax"]
    original = features.activations(cnn, x_test[:300], names)
    for rule in ("guided", "deconvnet"):
        clone = _override.clone_with(cnn, _gradient.POLICIES[rule])  # internal contract
        clone = features.activations(clone, x_test[:300], names)
        for name in names:
            np.testing.assert_array_equal(clone[name], original[name], err_msg=f"{rule} {name}")


def test_rule_methods_use_the_original_models_argmax():
    model = sequential(seed=11)
    x = images(model, 5, seed=4)
    feature = Feature("c2", 0, "argmax")
    locations = features.feature_values(model, x, feature).locations
    for method in (S.guided_backprop, S.deconvnet, S.gradient):
        by_argmax = method(model, x, feature)
        by_none = method(model, x, Feature("c2", 0))
        fixed = np.stack([method(model, x[i], Feature("c2", 0, tuple(loc)))
                          for i, loc in enumerate(locations)])
        np.testing.assert_allclose(by_argmax, fixed, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(by_none, fixed, rtol=1e-6, atol=1e-7)


def test_model_is_not_mutated():
    inp = keras.Input((6, 6, 1))
    x = layers.Conv2D(2, 3, activation="relu", name="conv")(inp)
    x = layers.Activation("relu", name="act")(layers.Conv2D(2, 2, name="conv_b")(x))
    x = layers.ReLU(name="relu")(layers.Dense(3, name="dense")(layers.Flatten()(x)))
    model = keras.Model(inp, layers.Dense(2, name="head")(x))
    xs = images(model, 3)

    def snapshot():
        return dict(weights=[w.copy() for w in model.get_weights()],
                    layers=[id(layer) for layer in model.layers],
                    activations=[getattr(layer, "activation", None) for layer in model.layers],
                    configs=[layer.get_config() for layer in model.layers],
                    nodes=[len(layer._inbound_nodes) for layer in model.layers],
                    output=np.asarray(model(xs)),
                    gradient=S.gradient(model, xs, 1))

    before = snapshot()
    for method in METHODS:
        method(model, xs, 1)
        method(model, xs, Feature("conv", 1))
    after = snapshot()
    for key in before:
        if key in ("weights",):
            for a, b in zip(before[key], after[key]):
                np.testing.assert_array_equal(a, b)
        elif key in ("output", "gradient"):
            np.testing.assert_array_equal(before[key], after[key])
        else:
            assert before[key] == after[key], key
    assert all(layer.activation is keras.activations.relu
               for layer in (model.get_layer("conv"), model.get_layer("act")))


def test_no_relu_warns_and_equals_the_gradient():
    model = strided(seed=2)
    model = keras.Model(model.inputs[0], model.get_layer("c1").output)   # tanh only
    x = images(model, 2)
    with pytest.warns(UserWarning, match="no ReLU"):
        g = S.guided_backprop(model, x, Feature("c1", 0))
    np.testing.assert_allclose(g, S.gradient(model, x, Feature("c1", 0)), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- the other methods


def test_gradient_x_input_and_signs():
    model = conv_dense(seed=1)
    x = images(model, 3)
    g = S.gradient(model, x, 1)
    np.testing.assert_allclose(S.gradient_x_input(model, x, 1), g * x, rtol=1e-6)
    np.testing.assert_array_equal(S.gradient(model, x, 1, sign="abs"), np.abs(g))
    pos, neg = S.gradient(model, x, 1, sign="positive"), S.gradient(model, x, 1, sign="negative")
    assert pos.min() >= 0 and neg.max() <= 0
    np.testing.assert_array_equal(pos + neg, g)


@pytest.mark.parametrize("target", [Feature("logits", 1), Feature("c2", 1, "argmax")])
def test_integrated_gradients_completeness(target):
    """sum_i IG_i = s(x) - s(x') on a smooth model (midpoint rule error ~ 1/n_samples^2)."""
    model = smooth(seed=4, dtype="float64")
    x = images(model, 3, seed=5)
    location = None
    if isinstance(target, Feature):   # keep_location: the argmax found at x along the whole path
        location = features.feature_values(model, x, target).locations
    for baseline in ("zero", images(model, 1, seed=6)[0]):
        ig = S.integrated_gradients(model, x, target, baseline=baseline, n_samples=64,
                                    keep_location=True)
        base = np.zeros_like(x) if isinstance(baseline, str) else np.broadcast_to(baseline, x.shape)
        for i in range(len(x)):
            f = scalar_fn(model, target, None if location is None else location[i])
            change = f(x[i:i + 1].astype(np.float64)) - f(base[i:i + 1].astype(np.float64))
            assert abs(change[0]) > 1e-3
            np.testing.assert_allclose(ig[i].sum(), change[0], rtol=1e-3, atol=1e-5)


def test_integrated_gradients_completeness_on_the_course_cnn(cnn):
    model = cnn
    x = images(model, 2, seed=1) * 0.5 + 0.5
    ig = S.integrated_gradients(model, x, Feature("logits", 3), n_samples=128)
    logits = scalar_fn(model, Feature("logits", 3))
    change = logits(x) - logits(np.zeros_like(x))
    np.testing.assert_allclose(ig.reshape(2, -1).sum(axis=1), change, rtol=0.02, atol=0.02)


def test_smoothgrad_is_seeded_and_equals_gradient_without_noise():
    model = sequential(seed=8)
    x = images(model, 4)
    a = S.smoothgrad(model, x, 1, n_samples=6, seed=3)
    np.testing.assert_array_equal(a, S.smoothgrad(model, x, 1, n_samples=6, seed=3))
    assert not np.allclose(a, S.smoothgrad(model, x, 1, n_samples=6, seed=4))
    assert not np.allclose(a, S.gradient(model, x, 1))
    np.testing.assert_allclose(S.smoothgrad(model, x, 1, n_samples=3, noise=0.0),
                               S.gradient(model, x, 1), rtol=1e-6, atol=1e-9)
    # the noise of copy j depends on the seed and the image, not on its place in the batch
    np.testing.assert_allclose(S.smoothgrad(model, x[2], 1, n_samples=6, seed=3), a[2], rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize("rule", ["guided", "deconvnet"])
def test_smoothgrad_and_integrated_gradients_take_a_backward_rule(rule):
    model = sequential(seed=13)
    x = images(model, 3)
    rule_map = S.gradient(model, x, 1, rule=rule)
    np.testing.assert_array_equal(rule_map, (S.guided_backprop if rule == "guided" else
                                             S.deconvnet)(model, x, 1))
    # without noise, SmoothGrad is the rule's own map; with noise it differs from plain SmoothGrad
    np.testing.assert_allclose(S.smoothgrad(model, x, 1, n_samples=2, noise=0.0, rule=rule),
                               rule_map, rtol=1e-6, atol=1e-9)
    assert not np.allclose(S.smoothgrad(model, x, 1, n_samples=4, rule=rule),
                           S.smoothgrad(model, x, 1, n_samples=4))
    # IG with the rule: (x - x') times the mean of the rule's map at the path's midpoints
    ig = S.integrated_gradients(model, x, 1, n_samples=3, rule=rule)
    path = [S.gradient(model, (j + 0.5) / 3 * x, 1, rule=rule) for j in range(3)]
    np.testing.assert_allclose(ig, x * np.mean(path, axis=0), rtol=1e-5, atol=1e-7)


def test_keep_location_reads_the_clean_argmax_on_every_noisy_copy():
    model = sequential(seed=14)
    x = images(model, 6, seed=3)
    feature = Feature("c2", 0)
    clean = features.feature_values(model, x, feature).locations
    kept = S.smoothgrad(model, x, feature, n_samples=5, noise=0.5, keep_location=True)
    fixed = np.stack([S.smoothgrad(model, x[i], Feature("c2", 0, tuple(loc)), n_samples=5,
                                   noise=0.5)
                      for i, loc in enumerate(clean)])
    np.testing.assert_allclose(kept, fixed, rtol=1e-5, atol=1e-7)
    # location None and "argmax" name the same scalar: every method gives the same map
    afresh = S.smoothgrad(model, x, feature, n_samples=5, noise=0.5)
    np.testing.assert_array_equal(afresh, S.smoothgrad(model, x, Feature("c2", 0, "argmax"),
                                                       n_samples=5, noise=0.5))
    # by default the max is found afresh on each copy: on some copies it moved
    assert not np.allclose(afresh, kept)


def test_grad_cam_shape_sign_and_default_layer(cnn):
    model = cnn
    x = images(model, 5) * 0.5 + 0.5
    assert S.cam_layer(model, 8) == "conv3"
    assert S.cam_layer(model, Feature("conv2", 1)) == "conv2"
    cam = S.grad_cam(model, x, 8)
    assert cam.shape == (5, 28, 28, 1) and cam.dtype == np.float32
    assert cam.min() >= 0 and cam.max() > 0
    assert S.grad_cam(model, x[0], 8).shape == (28, 28, 1)
    # the ReLU applies at the layer's resolution; bilinear resizing (weights >= 0) keeps it
    signed = S.grad_cam(model, x, Feature("logits", 8), relu=False)
    positive = S.grad_cam(model, x, Feature("logits", 8))
    assert signed.min() < 0 and (positive >= np.maximum(signed, 0) - 1e-6).all()
    assert S.grad_cam(model, x, 8, layer="conv1").shape == (5, 28, 28, 1)


def test_grad_cam_by_hand():
    # A = 1x1 conv of x with kernel (1, 2): A_0 = x, A_1 = 2x. s = mean(A_0) - mean(A_1) (GAP +
    # Dense (1, -1)). dS/dA_k = w_k / 9 at every location, so alpha = (1/9, -1/9) and
    # cam = relu(x/9 - 2x/9) = relu(-x / 9). The map is 3x3 like the input: no resizing.
    inp = keras.Input((3, 3, 1))
    a = layers.Conv2D(2, 1, use_bias=False, name="A")(inp)
    model = keras.Model(inp, layers.Dense(1, use_bias=False)(layers.GlobalAveragePooling2D()(a)))
    model.set_weights([np.array([[[[1, 2]]]], np.float32), np.array([[1], [-1]], np.float32)])
    x = np.array([[1, -2, 0], [3, -1, 2], [-4, 0, 1]], np.float32)[None, :, :, None]
    np.testing.assert_allclose(S.grad_cam(model, x, 0), np.maximum(-x, 0) / 9, atol=1e-6)
    np.testing.assert_allclose(S.grad_cam(model, x, 0, relu=False), -x / 9, atol=1e-6)


def test_grad_cam_layer_choice():
    inp = keras.Input((6, 6, 1))
    a = layers.Conv2D(2, 3, padding="same", activation="relu", name="A")(inp)
    b = layers.MaxPooling2D(2, name="B")(a)
    c = layers.GlobalAveragePooling2D(keepdims=True, name="C")(b)       # a 1x1 map: skipped
    model = keras.Model(inp, layers.Dense(2, name="head")(layers.Flatten()(c)))
    assert S.cam_layer(model, 1) == "B"
    assert S.cam_layer(model, Feature("A", 0)) == "A"
    x = images(model, 2)
    assert S.grad_cam(model, x, 1).shape == (2, 6, 6, 1)
    with pytest.raises(ValueError, match="does not depend on layer 'B'"):
        S.grad_cam(model, x, Feature("A", 0), layer="B")
    with pytest.raises(ValueError, match="no layer with a spatial map"):
        S.cam_layer(keras.Sequential([keras.Input((4,)), layers.Dense(2)]), 0)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_batch_size_invariance_and_single_image(method):
    model = sequential(seed=9)
    x = images(model, 7, seed=7)
    kwargs = {"n_samples": 4} if method is S.smoothgrad else {"n_samples": 5} \
        if method is S.integrated_gradients else {}
    for target in (2, Feature("c2", 1, "argmax")):
        ref = method(model, x, target, batch_size=32, **kwargs)
        assert ref.dtype == np.float32
        assert ref.shape == (x.shape[:-1] + (1,) if method is S.grad_cam else x.shape)
        for batch_size in (1, 3):
            np.testing.assert_allclose(method(model, x, target, batch_size=batch_size, **kwargs),
                                       ref, rtol=1e-5, atol=1e-7 * np.abs(ref).max())
        np.testing.assert_allclose(method(model, x[4], target, **kwargs), ref[4],
                                   rtol=1e-5, atol=1e-7 * np.abs(ref).max())


def test_new_channels_and_batch_sizes_do_not_retrace():
    model = sequential(seed=10)
    x = images(model, 5)
    for channel in range(3):
        for n in (1, 2, 5):
            S.gradient(model, x[:n], Feature("c1", channel), batch_size=2)
    cache = _graph.cache.MEMO[model]  # internal contract: one compiled step per (rule, layer, ...)
    steps = [step for key, step in cache.items() if key[0] == "gradient step" and key[2] == "c1"]
    assert len(steps) == 1 and steps[0].experimental_get_tracing_count() == 1


def test_to_map():
    s = np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3) - 12
    np.testing.assert_array_equal(plot.to_map(s), s.sum(axis=-1))
    np.testing.assert_array_equal(plot.to_map(s, "max_abs"), np.abs(s).max(axis=-1))
    with pytest.raises(ValueError, match="max_abs"):
        plot.to_map(s, "mean")


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_are_clear_errors():
    model = sequential(seed=12)
    x = images(model, 2)
    with pytest.raises(TypeError, match="float"):
        S.gradient(model, (x * 100).astype(np.uint8), 1)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        S.guided_backprop(model, bad, 1)
    with pytest.raises(ValueError, match=r"\(N, 8, 8, 1\)"):
        S.gradient(model, np.zeros((2, 9, 9, 1), np.float32), 1)
    with pytest.raises(ValueError, match="class 3 is out of range: the model has classes 0..2"):
        S.deconvnet(model, x, 3)
    with pytest.raises(ValueError, match="outside the map"):
        S.gradient(model, x, Feature("c1", 0, (8, 0)))
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        S.smoothgrad(model, x, Feature("nope", 0))
    with pytest.raises(TypeError, match="class index"):
        S.gradient(model, x, "c1")
    for method in METHODS:
        with pytest.raises(ValueError, match="'signed', 'abs', 'positive', 'negative'"):
            method(model, x, 1, sign="magnitude")
    with pytest.raises(ValueError, match="n_samples"):
        S.integrated_gradients(model, x, 1, n_samples=0)
    with pytest.raises(ValueError, match="baseline has 3 images"):
        S.integrated_gradients(model, x, 1, baseline=np.zeros((3, 8, 8, 1), np.float32))
    with pytest.raises(TypeError, match="baseline"):
        S.integrated_gradients(model, x, 1, baseline=np.zeros((8, 8, 1), np.int64))
    with pytest.raises(ValueError, match="n_samples must be"):
        S.smoothgrad(model, x, 1, n_samples=0)
    with pytest.raises(ValueError, match="rule 'guided_backprop' is not one of"):
        S.smoothgrad(model, x, 1, rule="guided_backprop")
    with pytest.raises(ValueError, match="noise"):
        S.smoothgrad(model, x, 1, noise=-0.1)
    with pytest.raises(ValueError, match="seed"):
        S.smoothgrad(model, x, 1, seed=-1)
    with pytest.raises(ValueError, match="batch_size"):
        S.gradient(model, x, 1, batch_size=0)
    with pytest.raises(ValueError, match="spatial"):
        S.grad_cam(model, x, 1, layer="logits")


# --------------------------------------------------------------------------- figures


def test_saliency_figures():
    x = np.random.default_rng(0).uniform(0, 1, (3, 8, 8, 1)).astype(np.float32)
    maps = {"gradient": x - 0.5, "guided backprop": np.abs(x - 0.5), "grad-cam": x[..., 0]}
    fig, axes = plot.saliency_maps(x, maps, titles=["a", "b", "c"])
    assert axes.shape == (3, 4)
    assert axes[0, 0].get_title() == "a" and "gradient" in axes[0, 1].get_title()
    signed_im, magnitude_im = axes[0, 1].images[0], axes[0, 2].images[0]
    lo, hi = signed_im.get_clim()
    assert lo == -hi                                      # diverging, centred at 0
    assert magnitude_im.get_clim()[0] == 0
    fig, axes = plot.saliency_maps(x[0], [x[0] - 0.5], method_names=["gradient"], magnitude=True)
    assert axes.shape == (1, 2) and axes[0, 1].images[0].get_clim()[0] == 0
    with pytest.raises(ValueError, match="method_names"):
        plot.saliency_maps(x, [x, x], method_names=["one"])
    with pytest.raises(ValueError, match="shape"):
        plot.saliency_maps(x, {"bad": x[:2]})
