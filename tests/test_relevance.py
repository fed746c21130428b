"""LRP and DeepLIFT (cnn_helper.relevance): the identities the papers prove, each rule against
a tiny dense net worked in NumPy loops, BatchNormalization folding, batch-size independence, the
user's model untouched, and layers refused by name."""
import keras
import numpy as np
import pytest
from keras import layers

from cnn_helper import Feature, saliency
from cnn_helper.relevance import Rule, canonization, deeplift, lrp


def _relu_net(bias: bool, seed: int = 0, pool=layers.MaxPooling2D):
    keras.utils.set_random_seed(seed)
    init = "random_normal" if bias else "zeros"
    x = inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, activation="relu", bias_initializer=init, name="c1")(x)
    x = pool(2, name="pool")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(6, activation="relu", bias_initializer=init, name="d1")(x)
    return keras.Model(inputs, layers.Dense(3, bias_initializer=init, name="logits")(x))


def _residual_net(seed: int = 1):
    """Conv, a residual Add, a dense-block Concatenate, average pooling; zero biases."""
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((8, 8, 2))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", bias_initializer="zeros",
                      name="c1")(x)
    r = layers.Conv2D(4, 3, padding="same", bias_initializer="zeros", name="c2")(h)
    h = layers.ReLU(name="relu2")(layers.Add(name="add")([h, r]))
    d = layers.Conv2D(3, 1, activation="relu", bias_initializer="zeros", name="c3")(h)
    h = layers.Concatenate(name="cat")([h, d])
    h = layers.AveragePooling2D(2, name="avg")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inputs, layers.Dense(3, bias_initializer="zeros", name="logits")(h))


X = np.random.default_rng(0).random((3, 8, 8, 2)).astype(np.float32)


def test_lrp_zero_is_gradient_times_input_on_a_relu_network():
    model = _relu_net(bias=True)
    np.testing.assert_allclose(lrp(model, X, Feature("logits", 1), rule="zero"),
                               saliency.gradient_x_input(model, X, Feature("logits", 1)),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("rule", ["zero", "epsilon"])
@pytest.mark.parametrize("net", ["plain", "residual"])
def test_relevance_is_conserved_with_zero_biases(rule, net):
    model = _relu_net(bias=False, pool=layers.AveragePooling2D) if net == "plain" \
        else _residual_net()
    target = Feature("logits", 2)
    logit = model.predict(X, verbose=0)[:, 2]
    R = lrp(model, X, target, rule=rule, epsilon=1e-9)
    np.testing.assert_allclose(R.sum(axis=(1, 2, 3)), logit, rtol=1e-4, atol=1e-6)


def test_keras_ops_nodes_add_and_relu_are_propagated():
    """A functional graph written with ``h + r`` and ``keras.ops.relu``: the sum shares in
    proportion, the ReLU passes; LRP-0 is still gradient x input."""
    keras.utils.set_random_seed(6)
    inputs = keras.Input((8, 8, 2))
    h = keras.ops.relu(layers.Conv2D(3, 3, padding="same", name="c1")(inputs))
    r = layers.Conv2D(3, 3, padding="same", name="c2")(h)
    h = layers.GlobalAveragePooling2D()(keras.ops.relu(h + r))
    model = keras.Model(inputs, layers.Dense(2, name="logits")(h))
    np.testing.assert_allclose(lrp(model, X, Feature("logits", 0), rule="zero"),
                               saliency.gradient_x_input(model, X, Feature("logits", 0)),
                               rtol=1e-3, atol=1e-6)
    delta = model.predict(X, verbose=0)[:, 0] - model.predict(0 * X, verbose=0)[:, 0]
    np.testing.assert_allclose(deeplift(model, X, Feature("logits", 0)).sum(axis=(1, 2, 3)),
                               delta, rtol=1e-4, atol=1e-6)


def test_an_inner_mean_pooled_feature_is_conserved_too():
    model = _residual_net()
    target = Feature("c3", 1, pool="mean")
    value = keras.Model(model.input, model.get_layer("c3").output)(X).numpy()[..., 1].mean((1, 2))
    R = lrp(model, X, target, rule="zero")
    np.testing.assert_allclose(R.sum(axis=(1, 2, 3)), value, rtol=1e-4, atol=1e-6)


def test_a_located_feature_is_read_at_its_location():
    """A Feature at a location seeds the relevance there, not at the map's max: LRP-0 (zero
    biases) sums to the value at (3, 4), DeepLIFT to its change from the black reference."""
    model = _relu_net(bias=False)
    located, pooled = Feature("c1", 2, location=(3, 4)), Feature("c1", 2)
    y = keras.Model(model.input, model.get_layer("c1").output)(X).numpy()[..., 2]
    assert (y.reshape(len(X), -1).max(axis=1) > y[:, 3, 4]).all()
    np.testing.assert_allclose(lrp(model, X, located, rule="zero").sum(axis=(1, 2, 3)),
                               y[:, 3, 4], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(lrp(model, X, pooled, rule="zero").sum(axis=(1, 2, 3)),
                               y.reshape(len(X), -1).max(axis=1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(deeplift(model, X, located).sum(axis=(1, 2, 3)), y[:, 3, 4],
                               rtol=1e-4, atol=1e-6)       # zero biases: 0 on a black image


def test_alpha1_beta0_relevance_is_non_negative():
    """Inputs >= 0 (pixels, ReLU outputs) and a positive logit: every share is >= 0. (A
    residual Add of a map that may be negative can pass negative relevance: not here.)"""
    model = _relu_net(bias=True)
    head = model.get_layer("logits")
    head.set_weights([head.get_weights()[0], np.ones(3, np.float32)])     # positive logits
    assert model.predict(X, verbose=0)[:, 0].min() > 0
    R = lrp(model, X, Feature("logits", 0), rule="alpha_beta")
    assert R.min() >= 0 and R.max() > 0


# --------------------------------------------------------------------------- by hand


def _tiny(seed: int = 4):
    """x (3) -> Dense 4, ReLU -> Dense 1: every weight and bias random."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    h = layers.Dense(4, activation="relu", bias_initializer="random_normal", name="first")(inputs)
    return keras.Model(inputs, layers.Dense(1, bias_initializer="random_normal", name="top")(h))


def _by_hand(name, a, W, b, R, epsilon=0.25, gamma=0.25, alpha=1.0, beta=0.0, low=-1.0,
             high=1.0):
    """R_j of the inputs a of z = a W + b by the docstring's formula, one j and k at a time."""
    n_in, n_out = W.shape
    z = a @ W + b
    out = np.zeros(n_in)
    for k in range(n_out):
        for j in range(n_in):
            if name in ("zero", "epsilon"):
                den = z[k] + (epsilon * (1 if z[k] >= 0 else -1) if name == "epsilon" else 0)
                out[j] += a[j] * W[j, k] / den * R[k]
            elif name == "gamma":     # contributions a_j w_jk, plus gamma x those of z's sign
                part = np.maximum if z[k] > 0 else np.minimum
                c = a * W[:, k]
                rho, rho_b = c + gamma * part(c, 0), b[k] + gamma * part(b[k], 0)
                out[j] += rho[j] / (rho.sum() + rho_b) * R[k]
            elif name == "alpha_beta":
                c = a * W[:, k]
                pos, neg = np.maximum(c, 0), np.minimum(c, 0)
                share = alpha * pos[j] / (pos.sum() + max(b[k], 0))
                if beta and neg.sum() + min(b[k], 0) != 0:       # 0 / 0 is 0
                    share -= beta * neg[j] / (neg.sum() + min(b[k], 0))
                out[j] += share * R[k]
            elif name == "zb":
                pos, neg = np.maximum(W[:, k], 0), np.minimum(W[:, k], 0)
                num = a * W[:, k] - low * pos - high * neg
                out[j] += num[j] / num.sum() * R[k]
            elif name == "flat":
                out[j] += R[k] / n_in
            elif name == "w_square":
                out[j] += W[j, k] ** 2 / ((W[:, k] ** 2).sum() + b[k] ** 2) * R[k]
    return out


@pytest.mark.parametrize("rule", [Rule("zero"), Rule("epsilon", epsilon=0.3),
                                  Rule("gamma", gamma=0.5), Rule("alpha_beta"),
                                  Rule("alpha_beta", alpha=2.0, beta=1.0), Rule("flat"),
                                  Rule("w_square"), "zb"])
def test_each_rule_matches_the_tiny_net_worked_by_hand(rule):
    model = _tiny()
    x = np.array([[0.2, 0.9, 0.5], [0.7, 0.1, 0.4], [-0.6, 0.8, -0.3]], np.float32)  # signed too
    (W1, b1), (W2, b2) = (model.get_layer(n).get_weights() for n in ("first", "top"))
    top_rule = Rule("epsilon", epsilon=0.3) if rule == "zb" else rule
    got = lrp(model, x, 0, composite={"first": rule, "top": top_rule}, bounds=(-1.0, 1.0))
    params = {k: v for k, v in vars(top_rule).items() if k in ("epsilon", "gamma", "alpha",
                                                              "beta")}
    for i, xi in enumerate(x.astype(np.float64)):
        h = np.maximum(xi @ W1 + b1, 0)
        y = h @ W2 + b2
        R_h = _by_hand(top_rule.name, h, W2, b2, y, **params)
        R_x = _by_hand(rule if rule == "zb" else rule.name, xi, W1, b1, R_h, **params)
        np.testing.assert_allclose(got[i], R_x, rtol=2e-4, atol=1e-6)


# --------------------------------------------------------------------------- canonization


def _conv_bn(seed: int = 5):
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, name="conv", bias_initializer="random_normal")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    x = layers.DepthwiseConv2D(3, use_bias=False, name="dw")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(2, name="logits")(x))
    rng = np.random.default_rng(seed)
    for name in ("bn", "bn2"):
        bn = model.get_layer(name)
        n = bn.gamma.shape[0]
        bn.set_weights([rng.uniform(0.5, 2, n), rng.normal(size=n), rng.normal(size=n),
                        rng.uniform(0.5, 2, n)])
    return model


def test_folding_batch_normalization_keeps_the_outputs():
    model = _conv_bn()
    for linear_name, bn_name in (("conv", "bn"), ("dw", "bn2")):
        layer, bn = model.get_layer(linear_name), model.get_layer(bn_name)
        h = keras.Model(model.input, layer.input)(X)
        (linear, kernel, bias), = canonization.stages(layer)
        W, b = canonization.fold(kernel, bias, bn)
        folded = linear(h, W, b)
        np.testing.assert_allclose(folded, bn(layer(h), training=False), rtol=1e-5, atol=1e-5)
    assert set(canonization.foldable_batch_norms(model)) == {"bn", "bn2"}


def test_lrp_sees_the_folded_layer():
    """LRP-0 on Conv -> BN -> ReLU -> DW -> BN equals LRP-0 on the same net with the folding
    done by hand in NumPy (no BatchNormalization layers)."""
    model = _conv_bn()
    twin_in = keras.Input((8, 8, 2))
    h = layers.Conv2D(4, 3, name="conv", activation="relu")(twin_in)
    h = layers.DepthwiseConv2D(3, name="dw")(h)
    h = layers.GlobalAveragePooling2D()(h)
    twin = keras.Model(twin_in, layers.Dense(2, name="logits")(h))
    for linear_name, bn_name in (("conv", "bn"), ("dw", "bn2")):
        s_bn = model.get_layer(bn_name)
        gamma, beta, mean, var = (w.astype(np.float64) for w in s_bn.get_weights())
        scale = gamma / np.sqrt(var + s_bn.epsilon)
        weights = model.get_layer(linear_name).get_weights()
        kernel, bias = weights[0], (weights[1] if len(weights) == 2 else 0.0)
        shape = kernel.shape
        twin.get_layer(linear_name).set_weights([
            (kernel.reshape(-1, scale.size) * scale).reshape(shape), scale * (bias - mean) + beta])
    twin.get_layer("logits").set_weights(model.get_layer("logits").get_weights())
    np.testing.assert_allclose(twin.predict(X, verbose=0), model.predict(X, verbose=0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(lrp(model, X, Feature("logits", 0), rule="zero"),
                               lrp(twin, X, Feature("logits", 0), rule="zero"),
                               rtol=1e-3, atol=1e-5)


# --------------------------------------------------------------------------- DeepLIFT


def test_deeplift_sums_to_the_difference_from_the_baseline():
    model = _residual_net()
    for layer in model.layers:                       # biases too
        if layer.weights and len(layer.weights) == 2:
            w, b = layer.get_weights()
            layer.set_weights([w, np.random.default_rng(2).normal(size=b.shape) * 0.1])
    target = Feature("logits", 1)
    for baseline in ("zero", "mean", np.array([0.2, 0.7], np.float32)):
        D = deeplift(model, X, target, baseline=baseline)
        base = np.broadcast_to(baseline, X.shape) if not isinstance(baseline, str) else (
            np.zeros_like(X) if baseline == "zero" else np.broadcast_to(
                X.mean(axis=(1, 2), keepdims=True), X.shape))
        delta = model.predict(X, verbose=0)[:, 1] - model.predict(base, verbose=0)[:, 1]
        np.testing.assert_allclose(D.sum(axis=(1, 2, 3)), delta, rtol=1e-4, atol=1e-5)


def test_deeplift_on_a_linear_model_is_gradient_times_the_difference():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((8, 8, 2)), layers.Conv2D(3, 3), layers.Flatten(),
                              layers.Dense(2, bias_initializer="ones")])
    np.testing.assert_allclose(deeplift(model, X, 1, baseline=0.3),
                               saliency.gradient(model, X, 1) * (X - 0.3), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- contracts


@pytest.mark.parametrize("method", [lambda m, x, b: lrp(m, x, 1, composite="epsilon_plus",
                                                        batch_size=b),
                                    lambda m, x, b: deeplift(m, x, 1, batch_size=b)])
def test_independent_of_batch_size_and_the_model_untouched(method):
    model = _relu_net(bias=True)
    weights, outputs = model.get_weights(), model.predict(X, verbose=0)
    np.testing.assert_allclose(method(model, X, 1), method(model, X, 3), rtol=1e-5, atol=1e-7)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(outputs, model.predict(X, verbose=0))


def test_layers_it_cannot_handle_are_refused_by_name():
    x = inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, activation="relu", name="c1")(x)
    x = layers.LayerNormalization(name="ln")(x)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    with pytest.raises(ValueError, match=r"ln \(LayerNormalization\)"):
        lrp(model, X, 1)
    x = inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, activation="relu", name="c1")(x)       # BN after a ReLU: no fold
    x = layers.BatchNormalization(name="late_bn")(x)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    with pytest.raises(ValueError, match=r"late_bn \(BatchNormalization\)"):
        lrp(model, X, 1)


def test_bad_rules_and_composites_are_clear_errors():
    model = _relu_net(bias=True)
    with pytest.raises(ValueError, match="rule"):
        lrp(model, X, 1, rule="epsilonn")
    with pytest.raises(ValueError, match="composite='vgg'"):
        lrp(model, X, 1, composite="vgg")
    with pytest.raises(ValueError, match="first layer"):
        lrp(model, X, 1, rule="zb")
    with pytest.raises(ValueError, match="names no linear layer"):
        lrp(model, X, 1, composite={"nope": "gamma"})
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        lrp(model, X, 1, rule=Rule("alpha_beta", alpha=2.0, beta=0.0))
