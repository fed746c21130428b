"""Maximally activating examples: top_examples against a full sort, scan against it and brute
force."""
import numpy as np
import pytest

from cnn_helper import Feature, features
from cnn_helper import max_activation as ma

N = 150


@pytest.fixture(scope="module")
def tiny():
    """Tiny seeded CNN: ReLU conv (same), max pool, tanh conv (valid, signed maps), dense, head."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    x = inputs = keras.Input((8, 8, 1), name="input")
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = layers.MaxPooling2D(2, name="p1")(x)
    x = layers.Conv2D(5, 3, activation="tanh", name="c2")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(6, name="d")(x)
    x = layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, layers.Activation("softmax", name="out")(x), name="tiny")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((N, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 4, N)
    x.setflags(write=False)
    return x, y


def full_sort(values, locations, index, count):
    """The reference: a full sort (stable, so equal values keep the lower index first)."""
    high = np.argsort(-values, kind="stable")[:count]
    low = np.argsort(values, kind="stable")[:count]
    return [(index[o], values[o], locations[o]) for o in (high, low)]


def assert_part(part, ref, exact_values=True):
    indices, values, locations = ref
    np.testing.assert_array_equal(part.indices, indices)
    if exact_values:
        np.testing.assert_array_equal(part.values, values)
    else:
        np.testing.assert_allclose(part.values, values, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(part.locations, locations)


TARGETS = [1, Feature("c1", 2), Feature("c2", 1, pool="mean"), Feature("c1", 0, location=(3, 4)),
           Feature("c2", 3, location="argmax"), Feature("d", 4)]


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_top_examples_is_a_full_sort(tiny, data, target):
    x, _ = data
    fv = features.feature_values(tiny, x, target)
    r = ma.top_examples(tiny, x, target, count=7)
    assert r.count == 7 and r.target == features.as_feature(tiny, target)
    high, low = full_sort(fv.values, fv.locations, np.arange(N), 7)
    assert_part(r.high, high)
    assert_part(r.low, low)
    assert np.all(np.diff(r.high.values) <= 0) and np.all(np.diff(r.low.values) >= 0)
    assert r.high.indices.dtype == np.int64 and r.high.locations.shape == (7, fv.locations.shape[1])


def test_top_examples_all_examples_and_batch_size(tiny, data):
    x, _ = data
    whole = ma.top_examples(tiny, x, Feature("c2", 0), count=N)
    assert sorted(whole.high.indices) == list(range(N))
    small = ma.top_examples(tiny, x, Feature("c2", 0), count=5, batch_size=7)
    np.testing.assert_array_equal(small.high.indices, whole.high.indices[:5])
    np.testing.assert_array_equal(small.high.values, whole.high.values[:5])


def test_ties_are_broken_by_the_lower_index(tiny, data):
    x, _ = data
    target = Feature("logits", 0)
    values = features.feature_values(tiny, x, target).values
    best, worst = int(np.argmax(values)), int(np.argmin(values))
    x2 = np.array(x)
    x2[[3, 10, 20, 40, 130]] = x[best]        # five more copies of the best image ...
    x2[[1, 33, 64, 65, 149]] = x[worst]       # ... and of the worst, across batch boundaries
    values = features.feature_values(tiny, x2, target).values
    tied_high = np.flatnonzero(values == values.max())
    tied_low = np.flatnonzero(values == values.min())
    assert len(tied_high) >= 5 and len(tied_low) >= 5
    r = ma.top_examples(tiny, x2, target, count=5)
    np.testing.assert_array_equal(r.high.indices, tied_high[:5])
    np.testing.assert_array_equal(r.low.indices, tied_low[:5])
    for batch_size in (8, 32, 1000):
        one = ma.scan(tiny, x2, "logits", count=5, batch_size=batch_size,
                      progress=False)["logits"].channel(0)
        np.testing.assert_array_equal(one.high.indices, tied_high[:5])
        np.testing.assert_array_equal(one.low.indices, tied_low[:5])


def test_top_examples_on_a_labels_subset(tiny, data):
    x, y = data
    fv = features.feature_values(tiny, x, 2)
    for labels in (2, [0, 3]):
        r = ma.top_examples(tiny, x, 2, count=6, labels=labels, y=y)
        subset = np.flatnonzero(np.isin(y, labels))
        assert (np.all(np.isin(y[r.high.indices], labels))
                and np.all(np.isin(y[r.low.indices], labels)))
        high, low = full_sort(fv.values[subset], fv.locations[subset], subset, 6)
        assert_part(r.high, high)
        assert_part(r.low, low)


def test_top_examples_subset_errors(tiny, data):
    x, y = data
    with pytest.raises(ValueError, match="no example has label 7"):
        ma.top_examples(tiny, x, 0, labels=7, y=y)
    with pytest.raises(ValueError, match="both labels"):
        ma.top_examples(tiny, x, 0, labels=2)
    with pytest.raises(ValueError, match="both labels"):
        ma.top_examples(tiny, x, 0, y=y)
    with pytest.raises(ValueError, match="labels"):
        ma.top_examples(tiny, x, 0, labels=2, y=y[:-1])
    n2 = int(np.sum(y == 2))
    with pytest.raises(ValueError,
                       match=f"count={n2 + 1} is larger than the subset .* {n2} examples"):
        ma.top_examples(tiny, x, 0, count=n2 + 1, labels=2, y=y)


@pytest.mark.parametrize("count", [0, -3])
def test_count_below_one(tiny, data, count):
    x, _ = data
    with pytest.raises(ValueError, match="count must be at least 1"):
        ma.top_examples(tiny, x, 0, count=count)
    with pytest.raises(ValueError, match="count must be at least 1"):
        ma.scan(tiny, x, "c1", count=count, progress=False)


def test_count_larger_than_the_data(tiny, data):
    import tensorflow as tf

    x, _ = data
    with pytest.raises(ValueError, match=f"count={N + 1} is larger than the data, which has {N}"):
        ma.top_examples(tiny, x, 0, count=N + 1)
    with pytest.raises(ValueError, match=f"count={N + 1} is larger than the data"):
        ma.scan(tiny, x, "c1", count=N + 1, progress=False)
    with pytest.raises(ValueError, match="count=12 is larger than the data, which has 10"):
        ma.scan(tiny, tf.data.Dataset.from_tensor_slices(x[:10]).batch(4), "c1", count=12,
                progress=False)
    with pytest.raises(TypeError, match="count must be an int"):
        ma.top_examples(tiny, x, 0, count=2.0)
    assert ma.scan(tiny, x[:4], "c1", count=4, progress=False)["c1"].count == 4


def brute_force_scan(model, x, layer, count, pool):
    """Every activation of the layer at once, pooled and argmax-located in NumPy, fully sorted."""
    a = features.activations(model, x, [layer])[layer]
    n, c = a.shape[0], a.shape[-1]
    flat = a.reshape(n, -1, c)
    pooled = flat.max(axis=1) if pool == "max" else flat.mean(axis=1)
    arg = flat.argmax(axis=1)                                       # first maximum
    spatial = a.shape[1:-1]
    loc = np.stack(np.unravel_index(arg, spatial), axis=-1) if spatial else np.zeros((n, c, 0), int)
    return [full_sort(pooled[:, ch], loc[:, ch], np.arange(n), count) for ch in range(c)]


@pytest.mark.parametrize("pool", ["max", "mean"])
def test_scan_against_brute_force_and_top_examples(tiny, data, pool):
    x, _ = data
    layers = ["c1", "c2", "d"]
    count = 6
    refs = {layer: brute_force_scan(tiny, x, layer, count, pool) for layer in layers}
    for batch_size in (7, 64, 1000):
        scans = ma.scan(tiny, x, layers, count=count, pool=pool, batch_size=batch_size,
                        progress=False)
        assert list(scans) == layers
        for layer in layers:
            s = scans[layer]
            assert (s.layer, s.pool, s.n_scanned, s.count) == (layer, pool, N, count)
            assert s.high.indices.shape == (s.n_channels, count)
            assert s.high.locations.shape == (s.n_channels, count, 0 if layer == "d" else 2)
            for ch, (high, low) in enumerate(refs[layer]):
                one = s.channel(ch)
                assert one.target == Feature(layer, ch, pool=pool)
                assert_part(one.high, high, exact_values=False)
                assert_part(one.low, low, exact_values=False)
    # a channel of the scan is what top_k gives for the same Feature
    for layer, ch in (("c1", 3), ("c2", 0), ("d", 5)):
        r = ma.top_examples(tiny, x, Feature(layer, ch, pool=pool), count=count)
        one = scans[layer].channel(ch)
        for a, b in ((one.high, r.high), (one.low, r.low)):
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(a.locations, b.locations)


def test_scan_of_a_tf_data_dataset(tiny, data):
    import tensorflow as tf

    x, y = data
    ref = ma.scan(tiny, x, ["c1", "c2"], count=5, progress=False)
    datasets = {"x batches": tf.data.Dataset.from_tensor_slices(x).batch(32),
                "(x, y) batches": tf.data.Dataset.from_tensor_slices((x, y)).batch(50),
                "single images": tf.data.Dataset.from_tensor_slices((x, y)),
                "float64": tf.data.Dataset.from_tensor_slices(x.astype(np.float64)).batch(17)}
    for name, ds in datasets.items():
        got = ma.scan(tiny, ds, ["c1", "c2"], count=5, batch_size=40, progress=False)
        for layer in ("c1", "c2"):
            assert got[layer].n_scanned == N, name
            for part in ("high", "low"):
                a, b = getattr(got[layer], part), getattr(ref[layer], part)
                np.testing.assert_array_equal(a.indices, b.indices, err_msg=name)
                np.testing.assert_allclose(a.values, b.values, rtol=1e-6, err_msg=name)
                np.testing.assert_array_equal(a.locations, b.locations, err_msg=name)


def test_scan_shows_a_progress_bar(tiny, data, monkeypatch):
    """On a terminal (tests/test_progress.py: never into a log file)."""
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    x, _ = data
    for progress, shown in ((True, True), (False, False)):
        monkeypatch.setattr(sys, "stderr", Terminal())
        ma.scan(tiny, x, "c1", count=3, batch_size=50, progress=progress)
        assert ("150/150" in sys.stderr.getvalue()) is shown


def test_bad_inputs(tiny, data):
    import tensorflow as tf

    x, y = data
    with pytest.raises(ValueError, match="no layer 'c9'.*'c1'"):
        ma.scan(tiny, x, ["c1", "c9"], progress=False)
    with pytest.raises(ValueError, match="no layer 'c9'"):
        ma.top_examples(tiny, x, Feature("c9", 0))
    with pytest.raises(ValueError, match="channel 4 is out of range"):
        ma.top_examples(tiny, x, Feature("c1", 4))
    with pytest.raises(TypeError, match="target must be"):
        ma.top_examples(tiny, x, "c1")
    with pytest.raises(ValueError, match="pool 'median'"):
        ma.scan(tiny, x, "c1", pool="median", progress=False)
    with pytest.raises(ValueError, match="layers is empty"):
        ma.scan(tiny, x, [], progress=False)
    with pytest.raises(ValueError, match="twice"):
        ma.scan(tiny, x, ["c1", "c1"], progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        ma.scan(tiny, x, "c1", batch_size=0, progress=False)
    with pytest.raises(TypeError, match="dtype uint8"):
        ma.top_examples(tiny, (x * 255).astype(np.uint8), 0)
    with pytest.raises(TypeError, match="dtype uint8"):
        ma.scan(tiny, (x * 255).astype(np.uint8), "c1", progress=False)
    with pytest.raises(TypeError, match="dtype uint8"):
        ma.scan(tiny, tf.data.Dataset.from_tensor_slices((x * 255).astype(np.uint8)).batch(8), "c1",
                progress=False)
    bad = np.array(x)
    bad[77, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ma.top_examples(tiny, bad, 0)
    with pytest.raises(ValueError, match="NaN"):
        ma.scan(tiny, bad, "c1", progress=False)
    with pytest.raises(ValueError, match=r"NaN.*examples 64\.\.95"):
        ma.scan(tiny, tf.data.Dataset.from_tensor_slices(bad).batch(32), "c1", progress=False)
    with pytest.raises(ValueError, match="shape"):
        ma.scan(tiny, x[:, :6], "c1", progress=False)
    with pytest.raises(ValueError, match="expects batches"):
        ma.scan(tiny, tf.data.Dataset.from_tensor_slices(x[:, :, :, 0]).batch(8), "c1",
                progress=False)
    scans = ma.scan(tiny, x, "c1", count=3, progress=False)
    with pytest.raises(ValueError, match="channel 4 is out of range .* 0..3"):
        scans["c1"].channel(4)


def test_max_activating_figure(tiny, data):
    import matplotlib.pyplot as plt

    from cnn_helper import plot

    x, y = data
    r = ma.top_examples(tiny, x, Feature("c2", 1), count=5)
    fig, axes = plot.max_activating(x, r, y, title="c2, channel 1")
    assert axes.shape == (2, 5) and not plt.fignum_exists(fig.number)
    assert axes[0, 0].get_title() == f"{r.high.values[0]:.3f} | y={y[r.high.indices[0]]}"
    assert axes[1, 4].get_title().startswith(f"{r.low.values[4]:.3f}")
    assert axes[0, 0].get_ylabel() == "High" and axes[1, 0].get_ylabel() == "Low"
    one = ma.scan(tiny, x, "c2", count=7, progress=False)["c2"].channel(1)
    fig, axes = plot.max_activating(x, one, cols=4)            # 2 rows per part, one tile unused
    assert axes.shape == (4, 4) and not axes[1, 3].axison


def test_scan_of_a_model_with_free_image_size():
    import keras

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((None, None, 1)),
                              keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
                              keras.layers.GlobalMaxPooling2D(),
                              keras.layers.Dense(2, name="head")])
    x = np.random.default_rng(3).random((40, 10, 12, 1), dtype=np.float32)
    got = ma.scan(model, x, ["conv", "head"], count=4, batch_size=16, progress=False)
    for layer in ("conv", "head"):
        for ch, (high, low) in enumerate(brute_force_scan(model, x, layer, 4, "max")):
            assert_part(got[layer].channel(ch).high, high, exact_values=False)
            assert_part(got[layer].channel(ch).low, low, exact_values=False)


# --------------------------------------------------------------------------- datasets and labels


class _Alarm:
    """Fail (instead of hanging the test run) when the body runs longer than ``seconds``."""

    def __init__(self, seconds: int):
        self.seconds = seconds

    def __enter__(self):
        import signal

        def hung(*_):
            raise TimeoutError(f"still running after {self.seconds} s: the scan hangs")

        self.previous = signal.signal(signal.SIGALRM, hung)
        signal.alarm(self.seconds)

    def __exit__(self, *_):
        import signal

        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)


def test_scan_refuses_a_dataset_that_reshuffles_on_every_pass(tiny, data):
    import tensorflow as tf

    x, y = data
    base = tf.data.Dataset.from_tensor_slices((x, y))
    shuffled = {"shuffle then batch": base.shuffle(N).batch(32),
                "batch then shuffle": base.batch(32).shuffle(4),
                "inside an interleave": tf.data.Dataset.range(1).interleave(
                    lambda _: base.shuffle(N)).batch(32)}
    for ds in shuffled.values():
        with pytest.raises(ValueError, match="shuffles its examples anew on every pass.*"
                                             "shuffle=False"):
            ma.scan(tiny, ds, "c1", progress=False)
    unordered = base.map(lambda a, b: (a, b), num_parallel_calls=2, deterministic=False)
    with pytest.raises(ValueError, match="no fixed order"):
        ma.scan(tiny, unordered.batch(32), "c1", progress=False)


def test_scan_of_a_dataset_shuffled_once_counts_in_its_order(tiny, data):
    """A shuffle that keeps its order (reshuffle_each_iteration=False) is accepted: the indices
    count examples in the order the dataset yields them, the same on every read."""
    import tensorflow as tf

    x, y = data
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
        N, seed=4, reshuffle_each_iteration=False).batch(32)
    order = np.concatenate([a for a, _ in ds.as_numpy_iterator()])
    np.testing.assert_array_equal(order, np.concatenate([a for a, _ in ds.as_numpy_iterator()]))
    assert not np.array_equal(order, x)
    got = ma.scan(tiny, ds, "c2", count=5, progress=False)["c2"]
    ref = ma.scan(tiny, order, "c2", count=5, progress=False)["c2"]
    np.testing.assert_array_equal(got.high.indices, ref.high.indices)
    np.testing.assert_array_equal(got.low.indices, ref.low.indices)


def test_scan_of_image_dataset_from_directory(tiny, tmp_path):
    """Its default shuffle=True is refused with the fix; shuffle=False scans the files in order."""
    import keras

    rng = np.random.default_rng(7)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(6):
            keras.utils.save_img(tmp_path / label / f"{i}.png",
                                 rng.integers(0, 256, (8, 8, 1)).astype(np.float32))

    def load(**kwargs):
        return keras.utils.image_dataset_from_directory(
            tmp_path, color_mode="grayscale", image_size=(8, 8), batch_size=5, verbose=False,
            **kwargs)

    with pytest.raises(ValueError, match=r"image_dataset_from_directory\(\.\.\., shuffle=False\)"):
        ma.scan(tiny, load(), "c1", progress=False)
    ds = load(shuffle=False)
    images = np.concatenate([a for a, _ in ds.as_numpy_iterator()])
    got = ma.scan(tiny, ds, "c1", count=3, progress=False)["c1"]
    ref = ma.scan(tiny, images, "c1", count=3, progress=False)["c1"]
    assert got.n_scanned == 12
    np.testing.assert_array_equal(got.high.indices, ref.high.indices)


def test_scan_refuses_a_dataset_that_never_ends(tiny, data):
    import tensorflow as tf

    x, _ = data
    base = tf.data.Dataset.from_tensor_slices(x)
    endless = base.repeat().filter(lambda a: True).batch(32)           # its length is unknown
    for ds in (base.batch(32).repeat(), base.repeat().batch(32), endless):
        with _Alarm(60), pytest.raises(ValueError, match=r"never end.*take\(n\)"):
            ma.scan(tiny, ds, "c1", progress=False)
    for ds, n in ((base.repeat(2).batch(32), 2 * N), (base.repeat().take(200).batch(32), 200)):
        assert ma.scan(tiny, ds, "c1", count=2, progress=False)["c1"].n_scanned == n
    # a length tf.data cannot know is refused until the user declares it
    with _Alarm(60), pytest.raises(ValueError, match="assert_cardinality"):
        ma.scan(tiny, endless.take(3), "c1", progress=False)
    declared = endless.take(3).apply(tf.data.experimental.assert_cardinality(3))
    assert ma.scan(tiny, declared, "c1", count=2, progress=False)["c1"].n_scanned == 96


def test_scan_of_an_empty_dataset_or_integer_images(tiny, data):
    import tensorflow as tf

    x, _ = data
    with pytest.raises(ValueError, match="empty dataset"):
        ma.scan(tiny, tf.data.Dataset.from_tensor_slices(x).take(0).batch(4), "c1",
                progress=False)
    pixels = tf.data.Dataset.from_tensor_slices((x * 255).astype(np.uint8)).batch(8)
    with pytest.raises(TypeError, match=r"dtype uint8.*/ 255.*data\.map"):
        ma.scan(tiny, pixels, "c1", progress=False)


def test_scan_of_an_images_labels_pair_says_to_give_the_images(tiny, data):
    x, y = data
    with pytest.raises(TypeError, match=r"data is a tuple of 2 arrays .*give the images alone: "
                                        r"data\[0\]"):
        ma.scan(tiny, (x, y), "c1", progress=False)
    with pytest.raises(ValueError, match="data is empty"):
        ma.scan(tiny, x[:0], "c1", progress=False)


def test_top_examples_takes_one_hot_labels(tiny, data):
    x, y = data
    ref = ma.top_examples(tiny, x, 2, count=6, labels=[0, 3], y=y)
    for given in (np.eye(4)[y], np.eye(4, dtype=np.float32)[y], y[:, None]):
        got = ma.top_examples(tiny, x, 2, count=6, labels=[0, 3], y=given)
        np.testing.assert_array_equal(got.high.indices, ref.high.indices)
        np.testing.assert_array_equal(got.low.indices, ref.low.indices)
    with pytest.raises(ValueError, match=r"not one-hot.*y\.argmax\(axis=1\)"):
        ma.top_examples(tiny, x, 2, labels=1, y=np.full((N, 4), 0.25))


def test_scan_and_top_examples_under_mixed_precision(data):
    """With the global policy mixed_float16 the layers compute in float16; the results are
    float32 and equal to the brute force over the model's own float16 activations."""
    import keras
    from keras import layers

    x, _ = data
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(8)
        model = keras.Sequential([keras.Input((8, 8, 1)),
                                  layers.Conv2D(4, 3, activation="relu", name="c1"),
                                  layers.Flatten(), layers.Dense(5, name="d"),
                                  layers.Dense(3, dtype="float32", name="logits")])
        assert model.get_layer("c1").compute_dtype == "float16"
        for batch_size in (16, 150):
            scans = ma.scan(model, x, ["c1", "d"], count=4, batch_size=batch_size,
                            progress=False)
            for layer in ("c1", "d"):
                assert scans[layer].high.values.dtype == np.float32
                for ch, (high, low) in enumerate(brute_force_scan(model, x, layer, 4, "max")):
                    assert_part(scans[layer].channel(ch).high, high, exact_values=False)
                    assert_part(scans[layer].channel(ch).low, low, exact_values=False)
        r = ma.top_examples(model, x, Feature("c1", 2), count=4)
        assert r.high.values.dtype == np.float32
        np.testing.assert_array_equal(r.high.indices, scans["c1"].channel(2).high.indices)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert keras.mixed_precision.global_policy().name == previous
