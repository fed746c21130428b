"""Issue 28, items 4 and 6: a tf.data.Dataset whose element shape is unknown, and labels of
another kind than y's (strings against ints)."""
import numpy as np
import pytest

from cnn_helper import data, features
from cnn_helper import max_activation as ma

N = 60


@pytest.fixture(scope="module")
def cnn():
    """The course CNN's shape, built small: 28x28x1 digits, two convs, a 10-class softmax head."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((28, 28, 1), name="input"),
                             layers.Conv2D(4, 3, activation="relu", name="conv1"),
                             layers.MaxPooling2D(2, name="pool1"),
                             layers.Conv2D(6, 3, activation="relu", name="conv2"),
                             layers.GlobalAveragePooling2D(name="gap"),
                             layers.Dense(10, activation="softmax", name="head")], name="cnn")


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(28)
    x = rng.random((N, 28, 28, 1), dtype=np.float32)
    y = np.arange(N) % 10                                         # every digit 0..9, six times
    return x, y


# --------------------------------------------------------------------------- item 4


def generator_dataset(elements, signature):
    """``Dataset.from_generator`` over ``elements`` (arrays), declared by ``signature``."""
    import tensorflow as tf

    return tf.data.Dataset.from_generator(lambda: iter(elements), output_signature=signature)


def assert_same_scan(got, ref, layers=("conv1", "conv2")):
    for layer in layers:
        assert got[layer].n_scanned == ref[layer].n_scanned
        for part in ("high", "low"):
            a, b = getattr(got[layer], part), getattr(ref[layer], part)
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_allclose(a.values, b.values, rtol=1e-6)
            np.testing.assert_array_equal(a.locations, b.locations)


@pytest.mark.parametrize("declared", [None, (None, None, None, None), (None, None, None)])
def test_scan_reads_a_generator_of_unknown_shape(cnn, digits, declared):
    """TensorSpec(None): unknown rank. Batches (the last one short) and single images are read
    from their actual shape, as they come, and rank like the array."""
    import tensorflow as tf

    x, _ = digits
    ref = ma.scan(cnn, x, ["conv1", "conv2"], count=4, progress=False)
    signature = tf.TensorSpec(declared, tf.float32)
    if declared is None or len(declared) == 4:
        batches = [x[i:i + 16] for i in range(0, N, 16)]
        got = ma.scan(cnn, generator_dataset(batches, signature), ["conv1", "conv2"], count=4,
                      progress=False)
        assert_same_scan(got, ref)
    if declared is None or len(declared) == 3:
        got = ma.scan(cnn, generator_dataset(list(x), signature), ["conv1", "conv2"], count=4,
                      batch_size=25, progress=False)
        assert_same_scan(got, ref)


def test_scan_of_a_generator_of_wrong_shapes_says_how_to_declare_the_shape(cnn, digits):
    import tensorflow as tf

    x, _ = digits
    unknown = tf.TensorSpec(None, tf.float32)
    advice = r"tf\.TensorSpec\(\(None, 28, 28, 1\).*\(28, 28, 1\)"
    cases = {"2-D images": [image[:, :, 0] for image in x[:8]],
             "batches of 27x28 images": [x[:8, :27], x[8:16, :27]]}
    for name, elements in cases.items():
        with pytest.raises(ValueError, match=f"unknown rank.*{advice}") as error:
            ma.scan(cnn, generator_dataset(elements, unknown), "conv1", progress=False)
        assert "shape ()" not in str(error.value), name
    late = list(x[:5]) + [x[5, :27]]                     # valid images, then one of 27x28
    with pytest.raises(ValueError, match=r"\(27, 28, 1\).*expects .*\(28, 28, 1\)"):
        ma.scan(cnn, generator_dataset(late, unknown), "conv1", progress=False)
    with pytest.raises(ValueError, match=r"\(27, 28, 1\).*expects .*\(28, 28, 1\)"):
        ma.scan(cnn, generator_dataset(late, tf.TensorSpec((None, None, None), tf.float32)),
                "conv1", progress=False)


# --------------------------------------------------------------------------- item 6


def test_top_examples_says_the_labels_are_strings(cnn, digits):
    x, y = digits
    with pytest.raises(TypeError, match=r"y holds strings \('0', '1', \.\.\.\); labels=8 is an "
                                        r"int: pass labels='8' or y as integers"):
        ma.top_examples(cnn, x, 8, labels=8, y=y.astype(str))
    with pytest.raises(TypeError, match=r"y holds integers \(0, 1, \.\.\.\); labels='8' is a "
                                        r"string: pass labels=8"):
        ma.top_examples(cnn, x, 8, labels="8", y=y)
    with pytest.raises(TypeError, match=r"labels holds 8, an int"):
        ma.top_examples(cnn, x, 8, labels=["7", 8], y=y.astype(str))
    by_string = ma.top_examples(cnn, x, 8, count=3, labels="8", y=y.astype(str))
    by_int = ma.top_examples(cnn, x, 8, count=3, labels=8, y=y)
    np.testing.assert_array_equal(by_string.high.indices, by_int.high.indices)
    assert np.all(y[by_string.high.indices] == 8)


def test_every_label_check_gives_the_same_advice(cnn, digits):
    x, y = digits
    advice = r"y holds strings \('0', '1', \.\.\.\); classes holds 8, an int: pass '8'"
    with pytest.raises(TypeError, match=advice):
        features.class_means(x, y.astype(str), classes=[8])
    with pytest.raises(TypeError, match=r"labels='8' is a string: pass labels=8"):
        data.select_labels(x, y, "8")
    assert sorted(features.class_means(x, y.astype(str))) == [str(d) for d in range(10)]


def test_labels_that_are_words(digits):
    x, _ = digits
    y = np.array(["cat", "dog", "bird"])[np.arange(N) % 3]
    with pytest.raises(TypeError, match=r"labels=3 is an int: pass one of the labels present: "
                                        r"\['bird', 'cat', 'dog'\]"):
        data.select_labels(x, y, 3)
    with pytest.raises(ValueError, match=r"no example has label 'cow'; labels present: "
                                         r"\['bird', 'cat', 'dog'\]"):
        data.select_labels(x, y, "cow")
    with pytest.raises(TypeError, match=r"y holds bytes .*labels='cat' is a string: pass "
                                        r"labels=b'cat' or y as strings"):
        data.select_labels(x, y.astype(bytes), "cat")
    assert len(data.select_labels(x, y, ["cat", "dog"])[2]) == 40
