"""Sequences (L, C) and volumes (D, H, W, C) (issue 28, bad outcome 1): occlusion against a
brute-force loop, receptive fields against hand-worked values and the measured support,
gradients against finite differences, Grad-CAM against its definition, and the figures that
draw images only refusing by name."""
import itertools
import warnings

import numpy as np
import pytest

from cnn_helper import Feature, cam, features, occlusion, plot, receptive_field, saliency

L, C1 = 64, 3                  # the issue's Conv1D input (64, 3)
VOLUME = (8, 16, 16, 1)        # the issue's Conv3D input


def conv1d_model():
    """Conv1D(5) -> MaxPooling1D(2) -> Conv1D(3, stride 2) -> global mean -> softmax."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((L, C1))
    x = layers.Conv1D(4, 5, activation="relu", name="c1")(x)
    x = layers.MaxPooling1D(2, name="p1")(x)
    x = layers.Conv1D(4, 3, strides=2, activation="relu", name="c2")(x)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="out")(x), name="seq")


def conv3d_model():
    """Conv3D(3, same) -> MaxPooling3D(2) -> Conv3D(3, valid) -> global mean -> softmax."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    x = inputs = keras.Input(VOLUME)
    x = layers.Conv3D(3, 3, padding="same", activation="relu", name="c1")(x)
    x = layers.MaxPooling3D(2, name="p1")(x)
    x = layers.Conv3D(3, 3, activation="relu", name="c2")(x)
    x = layers.GlobalAveragePooling3D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="out")(x), name="vol")


@pytest.fixture(scope="module")
def seq_model():
    return conv1d_model()


@pytest.fixture(scope="module")
def vol_model():
    return conv3d_model()


@pytest.fixture(scope="module")
def sequence():
    return np.random.default_rng(2).random((L, C1), dtype=np.float32)


@pytest.fixture(scope="module")
def volume():
    return np.random.default_rng(3).random(VOLUME, dtype=np.float32)


def brute_force(model, x, target, patch, stride, fill):
    """The definition, by hand: for each centre, a copy of x with the clipped patch painted
    with ``fill``; the target on all copies by model.predict."""
    centres = [range(0, n, s) for n, s in zip(x.shape[:-1], stride)]
    copies = []
    for centre in itertools.product(*centres):
        copy = np.array(x)
        box = tuple(slice(max(c - (f - 1) // 2, 0), max(c - (f - 1) // 2 + f, 0))
                    for c, f in zip(centre, patch))
        copy[box] = fill
        copies.append(copy)
    values = model.predict(np.stack(copies), verbose=0)[:, target]
    return values.reshape([len(c) for c in centres])


# --------------------------------------------------------------------------- the issue's calls


def test_the_issues_conv1d_calls(seq_model, sequence):
    r = occlusion.sensitivity_map(seq_model, sequence, 0, patch=8)   # was: "patch 8x8 ... 64x3"
    assert r.values.shape == (L,) and r.patch == (8,) and r.stride == (1,)
    assert "map 64, patch 8, stride 1" in repr(r)
    np.testing.assert_allclose(r.values, brute_force(seq_model, sequence, 0, (8,), (1,), 1.0),
                               atol=1e-5)
    with pytest.raises(TypeError, match=r"patch must be an int or a tuple of 1 int, one per "
                       r"spatial axis \(steps\) of the input \(64, 3\), whose last axis holds "
                       r"its 3 channels; got \(8, 1\)"):         # was: a TensorFlow traceback
        occlusion.sensitivity_map(seq_model, sequence, 0, patch=(8, 1))


def test_the_issues_conv3d_call(vol_model, volume):
    r = occlusion.sensitivity_map(vol_model, volume, 1, patch=4, stride=4)   # was: a traceback
    assert r.values.shape == (2, 4, 4) and r.patch == (4, 4, 4)
    np.testing.assert_allclose(r.values, brute_force(vol_model, volume, 1, (4,) * 3, (4,) * 3,
                                                     1.0), atol=1e-5)


# --------------------------------------------------------------------------- occlusion


@pytest.mark.parametrize("patch, stride", [(1, 1), (4, 3), ((7,), (5,)), (64, 16)], ids=str)
def test_sequence_against_brute_force(seq_model, sequence, patch, stride):
    fill = np.array([0.0, 0.5, 1.0], np.float32)                 # one value per channel
    r = occlusion.sensitivity_map(seq_model, sequence, 2, patch=patch, stride=stride, fill=fill)
    patch, stride = np.atleast_1d(patch), np.atleast_1d(stride)
    expected = brute_force(seq_model, sequence, 2, patch, stride, fill)
    np.testing.assert_allclose(r.values, expected, atol=1e-5)
    np.testing.assert_allclose(r.delta, expected - r.unoccluded, atol=1e-5)
    assert r.locations[0].tolist() == list(range(0, L, stride[0]))


def test_volume_tuple_patch_and_stride_against_brute_force(vol_model, volume):
    r = occlusion.sensitivity_map(vol_model, volume, 0, patch=(2, 5, 3), stride=(3, 4, 6),
                                  fill="mean")
    mean = volume.mean(axis=(0, 1, 2))
    expected = brute_force(vol_model, volume, 0, (2, 5, 3), (3, 4, 6), mean)
    assert r.values.shape == (3, 4, 3) and r.stride == (3, 4, 6)
    np.testing.assert_allclose(r.values, expected, atol=1e-5)
    np.testing.assert_allclose(r.fill, mean, rtol=1e-6)
    assert [b.shape for b in r.bounds] == [(3, 2), (4, 2), (3, 2)]


def test_batches_attribution_and_occlude(seq_model, vol_model, sequence, volume):
    batch = np.stack([sequence, sequence[::-1]])
    r = occlusion.sensitivity_map(seq_model, batch, 1, patch=6, stride=4)
    assert r.values.shape == (2, 16) and r.example(1).values.shape == (16,)
    np.testing.assert_allclose(r.example(1).values, occlusion.sensitivity_map(
        seq_model, batch[1], 1, patch=6, stride=4).values, atol=1e-6)
    s = occlusion.attribution(seq_model, batch, 1, patch=6, stride=4)
    assert s.shape == (2, L, 1)                          # every step: its nearest centre's drop
    np.testing.assert_allclose(s[:, ::4, 0], -r.delta, atol=1e-6)
    np.testing.assert_allclose(s[:, 1::4, 0], -r.delta, atol=1e-6)
    v = occlusion.attribution(vol_model, volume, 2, patch=4, stride=(4, 8, 8))
    assert v.shape == VOLUME
    hidden = occlusion.occlude(volume, [(0, 15, 0)], patch=(1, 2, 3), fill=7.0)[0]
    changed = np.argwhere(hidden != volume)
    assert changed.min(0).tolist() == [0, 15, 0, 0] and changed.max(0).tolist() == [0, 15, 1, 0]
    assert occlusion.occlude(sequence, [(10,)], patch=4).shape == (1, L, C1)


def test_wrong_patches_name_the_spatial_axes(seq_model, vol_model, sequence, volume):
    with pytest.raises(TypeError, match=r"stride must be an int or a tuple of 3 ints, one per "
                       r"spatial axis \(depth, rows, cols\) of the input \(8, 16, 16, 1\)"):
        occlusion.sensitivity_map(vol_model, volume, 0, stride=(2, 2))
    with pytest.raises(TypeError, match=r"patch must be an int or a tuple of 3 ints.*got \(4, 4\)"):
        occlusion.sensitivity_map(vol_model, volume, 0, patch=(4, 4))
    with pytest.raises(ValueError, match=r"patch 65 is larger than the sequence, which is 64 "
                       r"\(steps\)"):
        occlusion.sensitivity_map(seq_model, sequence, 0, patch=65)
    with pytest.raises(ValueError, match=r"patch 9x4x4 is larger than the volume, which is "
                       r"8x16x16 \(depth x rows x cols\)"):
        occlusion.sensitivity_map(vol_model, volume, 0, patch=(9, 4, 4))
    with pytest.raises(ValueError, match="centre coordinate 64 is outside the sequence, whose "
                       "steps are 0..63"):
        occlusion.occlude(sequence, [(64,)])


def test_incremental_is_refused_by_name_and_auto_runs_in_full(seq_model, vol_model, volume):
    with pytest.warns(UserWarning, match=r"incremental occlusion cannot follow model 'vol' \(its "
                      r"input \(8, 16, 16, 1\) has 3 spatial axes; incremental occlusion follows "
                      r"images \(H, W, C\) only\)"):
        r = occlusion.sensitivity_map(vol_model, volume, 0, patch=4, stride=8,
                                      strategy="incremental")
    assert r.strategy == "full"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert occlusion.sensitivity_map(vol_model, volume, 0, patch=4, stride=8).strategy == \
            "full"
    with pytest.raises(ValueError, match="its input \\(64, 3\\) has 1 spatial axis;"):
        occlusion.incremental_cost(seq_model, 0, patch=4)


# --------------------------------------------------------------------------- receptive fields


def test_receptive_fields_by_hand(seq_model, vol_model):
    fields = receptive_field.compute(seq_model)
    # c1: k=5 -> size 5, start 2; p1: k=2, s=2 -> size 6, jump 2, start 2.5;
    # c2: k=3, s=2 -> size 6 + 2*2 = 10, jump 4, start 2.5 + 1*2 = 4.5: location i sees [4i, 4i+10)
    assert [(fields[n].size, fields[n].jump, fields[n].start) for n in ("c1", "p1", "c2")] == \
        [((5,), (1,), (2.0,)), ((6,), (2,), (2.5,)), ((10,), (4,), (4.5,))]
    assert receptive_field.region(seq_model, "c2", 3) == (slice(12, 22),)
    assert fields["gap"].whole_input is not None
    fields = receptive_field.compute(vol_model)
    # c1 ("same", k=3): size 3, start 0; p1: size 4, jump 2, start 0.5; c2 (k=3): size 8,
    # jump 2, start 2.5: location i sees [2i - 1, 2i + 7) on each axis, clipped to the volume
    assert (fields["c2"].size, fields["c2"].jump, fields["c2"].start) == \
        ((8,) * 3, (2,) * 3, (2.5,) * 3)
    assert receptive_field.region(vol_model, "c2", (1, 2, 3)) == \
        (slice(1, 8), slice(3, 11), slice(5, 13))


@pytest.mark.parametrize("which, layer, locations", [
    ("seq", "c2", [(0,), (3,), (13,)]), ("seq", "p1", [(5,)]),
    ("vol", "c2", [(0, 0, 0), (1, 2, 3), (1, 5, 5)]), ("vol", "p1", [(3, 0, 7)])])
def test_measured_support_is_the_region(seq_model, vol_model, which, layer, locations):
    model = seq_model if which == "seq" else vol_model
    masks = receptive_field.empirical_support(model, layer, locations)
    for mask, location in zip(masks, locations):
        box = np.zeros_like(mask)
        box[receptive_field.region(model, layer, location)] = True
        np.testing.assert_array_equal(mask, box)


# --------------------------------------------------------------------------- gradients


def smooth_model(shape):
    """A tiny smooth (tanh, average pooling) Conv1D or Conv3D model, for finite differences."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(4)
    conv = layers.Conv1D if len(shape) == 2 else layers.Conv3D
    pool = layers.AveragePooling1D if len(shape) == 2 else layers.AveragePooling3D
    x = inputs = keras.Input(shape)
    x = conv(3, 3, padding="same", activation="tanh", name="c1")(x)
    x = pool(2, name="p1")(x)
    x = conv(2, 2, activation="tanh", name="c2")(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="out")(x))


@pytest.mark.parametrize("shape", [(12, 2), (4, 6, 6, 1)], ids=["conv1d", "conv3d"])
def test_gradient_against_finite_differences(shape):
    model = smooth_model(shape)
    x = np.random.default_rng(5).random(shape)
    eps = 1e-2
    steps = np.eye(x.size).reshape((x.size,) + shape) * eps
    around = np.concatenate([x + steps, x - steps]).astype(np.float32)
    p = model.predict(around, verbose=0, batch_size=512)[:, 1].astype(np.float64)
    numeric = ((p[:x.size] - p[x.size:]) / (2 * eps)).reshape(shape)
    g = saliency.gradient(model, x.astype(np.float32), 1)
    assert g.shape == shape
    np.testing.assert_allclose(g, numeric, atol=2e-3 * np.abs(numeric).max())
    ig = saliency.integrated_gradients(model, x.astype(np.float32), 1, n_samples=64)
    p_x, p_0 = model.predict(np.stack([x, 0 * x]).astype(np.float32), verbose=0)[:, 1]
    assert ig.shape == shape and abs(ig.sum() - (p_x - p_0)) < 0.05 * abs(p_x - p_0) + 1e-4
    assert saliency.smoothgrad(model, x.astype(np.float32), 1, n_samples=4).shape == shape


def linear_head_model(shape):
    """Conv ("same") -> global mean -> Dense logits: dS/dA_idx,k = w_k / |idx| exactly."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(6)
    conv = layers.Conv1D if len(shape) == 2 else layers.Conv3D
    gap = layers.GlobalAveragePooling1D if len(shape) == 2 else layers.GlobalAveragePooling3D
    x = inputs = keras.Input(shape)
    x = conv(4, 3, padding="same", activation="relu", name="maps")(x)
    return keras.Model(inputs, layers.Dense(3, name="logits")(gap()(x)))


@pytest.mark.parametrize("shape", [(20, 2), (4, 6, 5, 2)], ids=["conv1d", "conv3d"])
def test_grad_cam_is_its_definition(shape):
    model = linear_head_model(shape)
    x = np.random.default_rng(7).random((2,) + shape).astype(np.float32)
    A = features.activations(model, x, ["maps"])["maps"].astype(np.float64)
    w = model.get_layer("logits").get_weights()[0][:, 2]                  # (K,)
    expected = (A * w / np.prod(shape[:-1])).sum(axis=-1)[..., None]        # map at input size
    got = cam.grad_cam(model, x, Feature("logits", 2), relu=False)
    assert got.shape == (2,) + shape[:-1] + (1,)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_cam_family_upsamples_sequences_and_volumes(seq_model, vol_model, sequence, volume):
    for f in (cam.grad_cam, cam.grad_cam_plus_plus, cam.layer_cam, cam.score_cam):
        assert f(vol_model, volume, 0).shape == VOLUME[:-1] + (1,)
        assert f(seq_model, sequence, 0).shape == (L, 1)
    coarse = cam.grad_cam(vol_model, volume, 0, layer="p1", relu=False)      # (4, 8, 8) map
    assert np.all(np.isfinite(coarse)) and np.ptp(coarse) > 0


# --------------------------------------------------------------------------- figures


def test_figures_of_images_refuse_sequences_and_volumes(seq_model, vol_model, sequence, volume):
    r1 = occlusion.sensitivity_map(seq_model, sequence, 0, patch=8, stride=4)
    with pytest.raises(ValueError, match=r"plot.occlusion_map shows 2-D maps; this map is 1-D "
                       r"over 16 steps: plot it with matplotlib, e.g. plt.plot\("):
        plot.occlusion_map(sequence, r1)
    r3 = occlusion.sensitivity_map(vol_model, volume, 0, patch=4, stride=4)
    with pytest.raises(ValueError, match=r"plot.occlusion_grid shows 2-D maps; this map is 3-D "
                       r"\(2x4x4\): draw one slice d"):
        plot.occlusion_grid(volume, r3)
    with pytest.raises(ValueError, match="compare measures the SSIM of 2-D maps"):
        occlusion.compare(r3, r3)
    regions = receptive_field.nested_regions(vol_model, "c2", (1, 2, 3))
    with pytest.raises(ValueError, match=r"these regions are 3-D: draw the field growing along "
                       r"one axis with plot.receptive_field_growth"):
        plot.receptive_field_regions(regions, input_shape=VOLUME[:-1])
    fig, _ = plot.receptive_field_growth(receptive_field.growth(vol_model, "c2", (1, 2, 3), 2))
    with pytest.raises(ValueError, match=r"for volumes \(N, D, H, W, C\) draw one depth slice"):
        plot.saliency_maps(volume[None], {"gradient": saliency.gradient(vol_model, volume[None],
                                                                        0)})


# --------------------------------------------------------------------------- reference forms


@pytest.mark.parametrize("shape", [(64, 3), (4, 6, 5, 2)])
def test_the_named_references_follow_the_spatial_axes_of_sequences_and_volumes(shape):
    """"mean" is each channel's mean over the spatial axes (it was taken over the channels too
    on a sequence), "extreme" the top of each channel's range and "blur" a blur along the spatial
    axes only (both raised numpy / scipy errors on a sequence)."""
    from scipy.ndimage import gaussian_filter

    from cnn_helper import _reference  # internal contract: the one reference rule

    rng = np.random.default_rng(4)
    x = (rng.random((2,) + shape) * np.arange(1, shape[-1] + 1)).astype("float32") / shape[-1]
    spatial = tuple(range(1, x.ndim - 1))
    mean = _reference.reference(None, x, "mean").values
    np.testing.assert_allclose(mean[(slice(None),) + (0,) * len(spatial)], x.mean(axis=spatial),
                               rtol=1e-6)
    fills = _reference.reference(None, x, "mean", per_pixel=False).values
    np.testing.assert_allclose(fills, x.mean(axis=spatial), rtol=1e-6)
    top = _reference.reference(None, x, "extreme").values
    assert top.shape == x.shape and np.all(top == 1.0)
    blurred = _reference.reference(None, x, "blur").values
    for i in range(len(x)):
        for c in range(shape[-1]):
            np.testing.assert_allclose(blurred[i, ..., c], gaussian_filter(
                x[i, ..., c], _reference.BLUR_SIGMA, mode="nearest"), rtol=1e-5, atol=1e-6)
