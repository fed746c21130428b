"""Incremental occlusion (cnn_helper.incremental) equals full re-inference, on every layer kind it
recomputes in windows, on keras.applications models, at borders, for any batch size; its
projective fields hold what changes; the approximate mode and SSIM are checked by hand."""
import warnings

import keras
import numpy as np
import pytest
from keras import layers, ops

from cnn_helper import Feature, _patches, incremental, occlusion  # internal contract: bounds_of
from cnn_helper.incremental import approximate
from cnn_helper.similarity import ssim

RNG = np.random.default_rng(0)


def _image(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype("float32")


def _assert_same(model, x, target, **kwargs):
    """The incremental map equals the full one (rtol 1e-4 of the map's spread) and says so."""
    inc = occlusion.sensitivity_map(model, x, target, strategy="incremental", **kwargs)
    full = occlusion.sensitivity_map(model, x, target, strategy="full", **kwargs)
    assert inc.strategy == "incremental" and full.strategy == "full"
    scale = max(float(np.ptp(full.values)), float(np.abs(full.values).max()), 1e-12)
    np.testing.assert_allclose(inc.values, full.values, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(inc.unoccluded, full.unoccluded, rtol=1e-5, atol=1e-7)
    assert np.ptp(full.values) > 0          # the test means something: the map is not flat
    return inc, full


def _every_kind():
    """Strided, dilated, grouped, depthwise and separable convolutions, max and average pooling
    ("same" and "valid"), padding and cropping, batch normalization, activations and operations,
    a residual add and a concatenation, a layer no rule covers, then global pooling."""
    x = inp = keras.Input((19, 17, 3))
    x = layers.ZeroPadding2D(((1, 2), (0, 1)))(x)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)
    y = layers.Conv2D(8, 3, dilation_rate=2, padding="same")(x)
    y = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(y)
    y = layers.Conv2D(8, 1, groups=2)(y)
    x = layers.Add()([x, ops.relu(y)])
    a = layers.MaxPooling2D(3, strides=1, padding="same")(x)
    b = layers.AveragePooling2D(3, strides=1, padding="same")(x)
    x = layers.Concatenate()([a, b * 0.5])
    x = layers.SeparableConv2D(12, 3, padding="valid", activation="tanh")(x)
    x = layers.Cropping2D(((1, 0), (0, 1)))(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Conv2D(10, 3, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, layers.Dense(4, activation="softmax")(x), name="every_kind")
    bn = model.get_layer(index=3)
    bn.set_weights([w + RNG.uniform(0.5, 1.5, w.shape).astype("float32")
                    for w in bn.get_weights()])               # not the identity
    return model


def test_every_layer_kind_equals_full_and_is_recomputed_in_windows():
    model = _every_kind()
    x = _image((2, 19, 17, 3))
    _assert_same(model, x, 1, patch=4, stride=3)
    kinds = {c.layer.split("/")[-1]: c.kind for c in occlusion.incremental_cost(model, 1).layers}
    assert {"window", "pointwise", "merge", "full"} <= set(kinds.values())
    assert kinds[model.layers[-1].name] == "full" and kinds[model.layers[-2].name] == "full"
    for layer in model.layers[1:-2]:                        # everything before the global layer
        assert kinds.get(layer.name, "window") != "full", layer.name


def test_inner_features_odd_even_patches_border_and_uneven_strides():
    model = _every_kind()
    x = _image((19, 17, 3), seed=1)
    conv = model.layers[-3].name
    for patch, stride in [((3, 6), (4, 7)), (17, 6)]:     # stride 7 does not divide 17
        _assert_same(model, x, Feature(conv, 3), patch=patch, stride=stride)
    _assert_same(model, x, Feature(conv, 3, location=(2, 1)), patch=2, stride=5)
    _assert_same(model, x, Feature(conv, 2, pool="mean"), patch=2, stride=5, fill="zero")


def test_batch_size_does_not_change_the_map():
    model = _every_kind()
    x = _image((2, 19, 17, 3), seed=2)
    maps = [occlusion.sensitivity_map(model, x, 0, patch=3, stride=2, strategy="incremental",
                                      batch_size=b).values for b in (1, 7, "auto")]
    np.testing.assert_allclose(maps[0], maps[1], rtol=1e-6)   # float rounding of the kernels
    np.testing.assert_allclose(maps[0], maps[2], rtol=1e-6)


def test_nested_transfer_learning_model_with_rescaling_front_end():
    base_in = keras.Input((24, 24, 3))
    h = layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(base_in)
    h = layers.MaxPooling2D(name="p1")(h)
    h = layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(h)
    base = keras.Model(base_in, h, name="base")
    inp = keras.Input((24, 24, 3))
    x = layers.Rescaling(1 / 255)(inp)
    x = base(x)
    x = layers.Flatten(name="flat")(x)
    model = keras.Model(inp, layers.Dense(3, activation="softmax")(x), name="transfer")
    x = (255 * _image((24, 24, 3), seed=3)).round()
    _assert_same(model, x, 2, patch=5, stride=3)
    _assert_same(model, x, Feature("base/c2", 4), patch=4, stride=5)
    kinds = {c.layer: c.kind for c in occlusion.incremental_cost(model, 2, patch=5).layers}
    assert kinds["base/c2"] == "window" and kinds["flat"] == "full"


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.conv = layers.Conv2D(5, 3, padding="same", activation="relu", name="conv")
        self.pool = layers.MaxPooling2D(name="pool")
        self.flat = layers.Flatten(name="flat")
        self.head = layers.Dense(3, activation="softmax", name="head")

    def call(self, x):
        return self.head(self.flat(self.pool(self.conv(x))))


def test_subclassed_model_once_called():
    model = _Subclassed()
    x = _image((12, 12, 1), seed=8)
    model(x[None])
    inc, _ = _assert_same(model, x, 1, patch=3, stride=2)
    kinds = {c.layer: c.kind for c in occlusion.incremental_cost(model, 1, patch=3).layers}
    assert kinds["conv"] == "window" and kinds["head"] == "full"


@pytest.mark.parametrize("name", ["VGG16", "ResNet50", "MobileNetV2"])
def test_keras_applications_at_small_sizes(name):
    size = 32
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3),
                                              classes=5)
    middle = [layer.name for layer in model.layers if isinstance(layer, layers.Conv2D)]
    middle = middle[len(middle) // 2]
    x = _image((size, size, 3), seed=4)
    _assert_same(model, x, Feature(middle, 1), patch=8, stride=6)
    cost = occlusion.incremental_cost(model, Feature(middle, 1), patch=8)
    assert cost.flop_ratio > 1


def test_projective_field_holds_every_change():
    """Brute force: every layer's output changes only inside its window when the patch is
    painted (the receptive-field geometry predicts it, the activations confirm it)."""
    model = _every_kind()
    x = _image((19, 17, 3), seed=5)
    plan = incremental.make_plan(model, model.layers[-3].name, (4, 3), x.shape)
    tap = keras.Model(model.input, [model.get_layer(index=i).output for i in range(1, 12)])
    tapped = {id(model.get_layer(index=i)): i for i in range(1, 12)}
    windows = {step.call.outputs[0]: tapped[id(step.call.layer)] for step in plan.steps
               if id(step.call.layer) in tapped}          # the plan's tensor numbers
    clean = tap(x[None])
    checked = 0
    for row, col in [(0, 0), (7, 9), (18, 16), (10, 2)]:
        copy = occlusion.occlude(x, [(row, col)], patch=(4, 3))
        changed = tap(copy)
        bounds = _patches.bounds_of(np.array([[row, col]]), x.shape, (4, 3))  # internal contract
        offsets = plan.offsets(bounds)                                        # internal contract
        for t, length in plan.lengths.items():
            if t not in windows:
                continue
            i = windows[t] - 1
            diff = np.abs(np.asarray(changed[i]) - np.asarray(clean[i]))[0].max(axis=-1)
            r0, c0 = offsets[plan.windowed.index(t), 0]
            diff[r0:r0 + length[0], c0:c0 + length[1]] = 0
            assert diff.max() == 0, (model.get_layer(index=windows[t]).name, row, col)
            checked += 1
    assert checked >= 20


def test_changed_interval_by_hand():
    # course CNN conv1 (3x3 "same"): box of location i is [i - 1, i + 2); a patch on rows
    # [4, 8) changes locations 3..8; pool1 after it (2x2/2, box [2i - 1, 2i + 3)): 1..4
    lo, hi = incremental.plan.changed_interval(-1, 3, 1, 28, 4, 8)
    assert (int(lo), int(hi)) == (3, 8)
    lo, hi = incremental.plan.changed_interval(-1, 4, 2, 14, 4, 8)
    assert (int(lo), int(hi)) == (1, 4)
    assert incremental.plan.window_length(-1, 3, 1, 28, 4, 28) == 6


def test_course_cnn_cost_and_auto(shipped_cnn, bundled):
    cost = occlusion.incremental_cost(shipped_cnn, 8, patch=4)
    rows = {c.layer: c for c in cost.layers}
    assert rows["conv1"].window == (6, 6) and rows["conv1"].fraction == pytest.approx(36 / 784)
    assert rows["conv3"].window == (6, 6) and rows["dense"].kind == "full"
    assert cost.flop_ratio == pytest.approx(
        sum(c.flops_full for c in cost.layers) / sum(c.flops_incremental for c in cost.layers))
    assert rows["conv2"].flops_full == 14 * 14 * 32 * 2 * 3 * 3 * 16
    assert cost.pays and "predicted FLOP ratio" in str(cost)
    (_, _), (x_test, _) = bundled
    assert occlusion.sensitivity_map(shipped_cnn, x_test[0], 8).strategy == "incremental"
    _assert_same(shipped_cnn, x_test[:2], Feature("conv3", 5), patch=5, stride=3,
                 keep_location=True)


def test_auto_weighs_the_values_moved_and_the_fixed_costs_of_a_call(shipped_cnn, bundled):
    """Regression (issue 28): "auto" chose incremental from the FLOP ratio alone (2.05 on the course
    CNN, patch 4), also for 49 copies (stride 4), where its clean pass, its second compiled call
    and its index arithmetic make it slower than full re-inference."""
    (_, _), (x_test, _) = bundled
    assert occlusion.sensitivity_map(shipped_cnn, x_test[0], 8, patch=4, stride=4).strategy \
        == "full"
    assert occlusion.sensitivity_map(shipped_cnn, x_test[0], 8, patch=4).strategy \
        == "incremental"                                            # 784 copies: it pays
    cost = occlusion.incremental_cost(shipped_cnn, 8, patch=4)
    assert cost.time_ratio < cost.flop_ratio                # the gathers and pastes count
    assert cost.speedup(49) < 1 < incremental.AUTO_MIN_RATIO < cost.speedup(784)
    assert not cost.pays_for(49) and cost.pays_for(784) and cost.pays
    assert cost.speedup(784, images=16) == pytest.approx(cost.speedup(784), rel=0.01)
    assert cost.speedup(784, batch_incremental=1) < cost.speedup(784)   # 784 steps, not one
    many = 10**7                                  # in one step each: the per-copy work alone
    assert cost.speedup(many, 1, many, many) == pytest.approx(cost.time_ratio, rel=0.01)


def test_values_moved_by_hand(shipped_cnn):
    """conv1's window (6x6x16) is computed from the input region 8x8 (the 4x4 patch's window
    pasted in): per copy the region is gathered (read and written, 2 x 64) and the window read
    (16); the output written (576). In full: the 28x28x16 output and the 28x28 input."""
    cost = occlusion.incremental_cost(shipped_cnn, 8, patch=4)
    conv1 = cost.layers[0]
    assert conv1.values_incremental == 2 * 64 + 16 + 576
    assert conv1.values_full == 28 * 28 * 16 + 28 * 28
    work = sum(c.flops_full for c in cost.layers) + incremental.VALUE_COST * (
        sum(c.values_full for c in cost.layers) + 28 * 28)
    assert cost.work_full == pytest.approx(work)
    assert cost.time_ratio == pytest.approx(cost.work_full / cost.work_incremental)


def test_a_model_the_geometry_cannot_follow_falls_back_to_full():
    inp = keras.Input((8, 8, 1))
    x = layers.Flatten()(inp)
    model = keras.Model(inp, layers.Dense(3, activation="softmax")(x), name="mlp")
    x = _image((8, 8, 1), seed=6)
    with pytest.warns(UserWarning, match="full re-inference"):
        r = occlusion.sensitivity_map(model, x, 1, patch=2, strategy="incremental")
    assert r.strategy == "full"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert occlusion.sensitivity_map(model, x, 1, patch=2).strategy == "full"     # auto: quiet
    with pytest.raises(ValueError, match="cannot follow"):
        occlusion.incremental_cost(model, 1)


class _Scaled(layers.Conv2D):
    """A convolution whose call is not Conv2D's: it must run in full, not in windows."""

    def call(self, inputs):
        return super().call(inputs) * 2.0


def test_layers_with_their_own_call_or_spatial_weights_run_in_full():
    inp = keras.Input((10, 10, 2))
    x = layers.Conv2D(4, 3, padding="same", name="conv1")(inp)
    x = _Scaled(4, 3, padding="same", name="scaled")(x)
    y = layers.PReLU(name="prelu")(inp)                       # one slope per location
    x = layers.Concatenate(name="both")([x, y])
    x = layers.Conv2D(3, 3, padding="same", name="conv2")(x)
    model = keras.Model(inp, x)
    model.get_layer("prelu").set_weights([RNG.normal(size=(10, 10, 2)).astype("float32")])
    kinds = {c.layer: c.kind for c in occlusion.incremental_cost(model, Feature("conv2", 1),
                                                                  patch=3).layers}
    assert kinds == {"conv1": "window", "scaled": "full", "prelu": "full", "both": "full",
                     "conv2": "full"}
    _assert_same(model, _image((10, 10, 2), seed=7), Feature("conv2", 1), patch=3, stride=2)


def test_approximate_mode(shipped_cnn, bundled):
    (_, _), (x_test, _) = bundled
    x = x_test[:2]
    exact = occlusion.sensitivity_map(shipped_cnn, x, 8, patch=4, stride=2, strategy="full")
    same = occlusion.sensitivity_map(shipped_cnn, x, 8, patch=4, stride=2,
                                     strategy=occlusion.Approximate(1.0, coarse=1))
    np.testing.assert_allclose(same.values, exact.values, atol=1e-6)
    drilled = occlusion.sensitivity_map(shipped_cnn, x, 8, patch=4, stride=2,
                                        strategy=occlusion.Approximate(1.0, 2, drill_down=1.0))
    np.testing.assert_allclose(drilled.values, exact.values, atol=1e-6)
    approx = occlusion.sensitivity_map(shipped_cnn, x, 8, patch=4, stride=2, strategy="approximate")
    quality, worst = occlusion.compare(approx, exact)
    assert approx.strategy == "approximate" and quality.shape == (2,)
    assert np.all(quality > 0.9) and np.all(worst < 0.1)
    coarse = occlusion.sensitivity_map(shipped_cnn, x, 8, patch=4, stride=2,
                                       strategy=occlusion.Approximate(0.5, 2, drill_down=0.0))
    assert np.all(occlusion.compare(coarse, exact)[0] < 1)    # it is an approximation


def test_drill_down_computes_where_the_coarse_map_changes_most():
    truth = np.zeros((6, 6))
    truth[3, 3] = -5.0                                         # one sensitive spot, off the grid
    asked = []

    def values_at(flat):
        asked.append(np.asarray(flat))
        return truth.ravel()[flat], 0.0

    result, baseline = approximate.drill_down(values_at, (6, 6),
                                              occlusion.Approximate(1.0, 2, drill_down=0.0))
    assert baseline == 0.0 and np.all(result == 0)             # the coarse grid misses it
    truth[2, 2] = -1.0                                         # the coarse grid sees its edge
    asked.clear()
    result, _ = approximate.drill_down(values_at, (6, 6),
                                       occlusion.Approximate(1.0, 2, drill_down=0.3))
    # interpolated: -0.5 beside (2, 2), -0.25 on its diagonals: those 8 come first, (3, 3) too
    assert len(asked[1]) == 9 and {8, 13, 15, 20, 7, 9, 19, 21} <= set(asked[1])
    assert result[3, 3] == -5.0 and result[2, 2] == -1.0
    np.testing.assert_allclose(approximate.interpolate(
        np.array([[0.0, 2.0], [4.0, 6.0]]), np.array([0, 2]), np.array([0, 2]), 3, 3),
        [[0, 1, 2], [2, 3, 4], [4, 5, 6]])


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="threshold"):
        occlusion.Approximate(threshold=0)
    with pytest.raises(ValueError, match="coarse"):
        occlusion.Approximate(coarse=0)
    with pytest.raises(ValueError, match="drill_down"):
        occlusion.Approximate(drill_down=1.5)
    model = _every_kind()
    with pytest.raises(ValueError, match="strategy 'fast' is not one of"):
        occlusion.sensitivity_map(model, _image((19, 17, 3)), 0, strategy="fast")


def _ssim_by_loops(a, b, window=7):
    """SSIM written out window by window (Wang et al. 2004, sample statistics)."""
    L = np.ptp(b)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    found = []
    for i in range(a.shape[0] - window + 1):
        for j in range(a.shape[1] - window + 1):
            p, q = a[i:i + window, j:j + window].ravel(), b[i:i + window, j:j + window].ravel()
            cov = np.cov(p, q)                                 # divides by n - 1
            found.append((2 * p.mean() * q.mean() + c1) * (2 * cov[0, 1] + c2)
                         / ((p.mean() ** 2 + q.mean() ** 2 + c1) * (cov[0, 0] + cov[1, 1] + c2)))
    return np.mean(found)


def test_ssim_against_loops_and_scikit_image():
    a = RNG.normal(size=(12, 15))
    b = a + 0.5 * RNG.normal(size=a.shape)
    assert ssim(a, b) == pytest.approx(_ssim_by_loops(a, b), rel=1e-9)
    assert ssim(b, b) == pytest.approx(1.0)
    assert ssim(a[:5, :5], b[:5, :5]) == pytest.approx(_ssim_by_loops(a[:5, :5], b[:5, :5], 5))
    metrics = pytest.importorskip("skimage.metrics")
    assert ssim(a, b) == pytest.approx(metrics.structural_similarity(a, b, data_range=np.ptp(b)))
    with pytest.raises(ValueError, match="same shape"):
        ssim(a, b[:3])


def test_the_occlusion_explorer_uses_the_fastest_exact_strategy(shipped_cnn, bundled):
    from cnn_helper import widgets

    (_, _), (x_test, y_test) = bundled
    explorer = widgets.OcclusionExplorer(shipped_cnn, x_test[:5], y_test[:5])
    result = explorer.state["result"]
    assert result.strategy == "incremental"
    full = occlusion.sensitivity_map(shipped_cnn, x_test[explorer.state["index"]],
                                     explorer.state["target"], strategy="full")
    np.testing.assert_allclose(result.values, full.values, atol=1e-6)
