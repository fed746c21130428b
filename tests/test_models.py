"""cnn_helper.models: architecture, shipped weights, seeded training, atomic save, damaged cache.

More on data safety (concurrent save/load, old layout, read-only cache, train's destination):
test_models_safety.py."""
import hashlib
import json
import os
import zipfile

import keras
import numpy as np
import pytest
from model_weights import same_weights, weights_of

from cnn_helper import models


def _files(directory):
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- architecture


def test_build_cnn_layer_names_and_kinds():
    model = models.build_cnn()
    names = [layer.name for layer in model.layers]
    for name in ("conv1", "pool1", "conv2", "pool2", "dense", "logits", "softmax"):
        assert name in names
    assert names.index("conv1") < names.index("pool1") < names.index("conv2") \
        < names.index("pool2") < names.index("dense") < names.index("logits") \
        < names.index("softmax")
    for i in (1, 2):
        assert isinstance(model.get_layer(f"conv{i}"), keras.layers.Conv2D)
        assert model.get_layer(f"conv{i}").activation is keras.activations.relu
        assert isinstance(model.get_layer(f"pool{i}"), keras.layers.MaxPooling2D)
    assert isinstance(model.get_layer("dense"), keras.layers.Dense)
    assert isinstance(model.get_layer("logits"), keras.layers.Dense)
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    assert not isinstance(model, keras.Sequential)                      # functional


def test_logits_are_linear_and_softmax_is_a_separate_layer():
    model = models.build_cnn()
    logits = model.get_layer("logits")
    assert logits.activation is keras.activations.linear
    assert logits.units == 10
    softmax = model.get_layer("softmax")
    assert isinstance(softmax, keras.layers.Activation)
    assert softmax.activation is keras.activations.softmax
    assert model.outputs[0]._keras_history[0] is softmax
    # the model's output is softmax(logits), and logits can be negative (no activation)
    x = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    z = np.asarray(keras.Model(model.input, logits.output)(x))
    p = np.asarray(model(x))
    np.testing.assert_allclose(p, np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_build_logistic_is_one_dense_layer():
    model = models.build_logistic()
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.name for d in dense] == ["logits"]
    assert dense[0].kernel.shape == (784, 10)
    assert dense[0].activation is keras.activations.linear


# --------------------------------------------------------------------------- shipped weights


def test_shipped_cnn_reaches_the_accuracy_target(shipped_cnn, bundled):
    _, (x_test, y_test) = bundled
    acc = models.accuracy(shipped_cnn, x_test, y_test)
    assert acc >= 0.97
    _, info = models.load_with_info("cnn", "shipped")
    assert info["loaded_from"] == "shipped"
    for key in ("data_source", "seed", "epochs", "test_accuracy"):
        assert key in info
    assert info["data_source"] == "bundled"
    assert abs(info["test_accuracy"] - acc) <= 0.002        # the JSON tells the truth


def test_shipped_logistic_loads_and_is_better_than_chance(shipped_logistic, bundled):
    _, (x_test, y_test) = bundled
    acc = models.accuracy(shipped_logistic, x_test, y_test)
    assert acc >= 0.85
    assert abs(models.load_with_info("logistic", "shipped")[1]["test_accuracy"] - acc) <= 0.002


def test_shipped_cnn_blobs_is_the_cnn_trained_with_blobs(shipped_cnn, bundled):
    """The second shipped weights: the CNN's layers, other weights, a JSON that tells the truth."""
    _, (x_test, y_test) = bundled
    blobs, info = models.load_with_info("cnn_blobs", "shipped")
    assert [(layer.name, type(layer).__name__) for layer in blobs.layers] == \
        [(layer.name, type(layer).__name__) for layer in shipped_cnn.layers]
    assert [w.shape for w in blobs.get_weights()] == [w.shape for w in shipped_cnn.get_weights()]
    assert not any(np.array_equal(u, v) for u, v in zip(weights_of(blobs), weights_of(shipped_cnn)))
    assert info["loaded_from"] == "shipped" and info["model"] == "cnn_blobs"
    assert info["data_source"] == "bundled" and info["seed"] == 0
    assert info["epochs"] == models.DEFAULTS["cnn_blobs"]["epochs"] == 12
    assert info["augmentation"] == models.augmentation_of("cnn_blobs")   # trained as documented
    weights, meta = models.weight_paths("cnn_blobs", models.SHIPPED_DIR)
    assert json.loads(meta.read_text())["sha256"] == \
        hashlib.sha256(weights.read_bytes()).hexdigest()
    acc = models.accuracy(blobs, x_test, y_test)
    assert acc >= 0.97 and abs(info["test_accuracy"] - acc) <= 0.002


def test_shipped_cnn_random_labels_memorized_permuted_labels(shipped_cnn, bundled):
    """The data-randomization model: the CNN's layers, trained on permuted_labels(y_train, seed):
    it fits those labels (the training accuracy its JSON gives) and knows nothing of digits."""
    (x_train, y_train), (x_test, y_test) = bundled
    model, info = models.load_with_info("cnn_random_labels", "shipped")
    assert [layer.name for layer in model.layers] == [layer.name for layer in shipped_cnn.layers]
    assert info["labels"] == "permuted" and info["data_source"] == "bundled"
    shuffled = models.permuted_labels(y_train, info["seed"])
    train_acc = models.accuracy(model, x_train, shuffled)
    assert train_acc >= 0.85 and abs(info["train_accuracy"] - train_acc) <= 0.002
    assert models.accuracy(model, x_train, y_train) < 0.2        # the true labels: chance
    test_acc = models.accuracy(model, x_test, y_test)
    assert test_acc < 0.2 and abs(info["test_accuracy"] - test_acc) <= 0.002


def test_permuted_labels_keep_the_counts_and_break_the_pairing(bundled):
    (_, y_train), _ = bundled
    shuffled = models.permuted_labels(y_train, seed=3)
    assert np.array_equal(np.bincount(shuffled), np.bincount(y_train))
    assert np.mean(shuffled == y_train) < 0.2
    assert np.array_equal(shuffled, models.permuted_labels(y_train, seed=3))
    assert not np.array_equal(shuffled, models.permuted_labels(y_train, seed=4))
    assert np.array_equal(models.permuted_labels([0, 1, 2, 3], seed=0), [2, 0, 1, 3])


def test_shipped_fashion_cnn_reaches_its_recorded_accuracy(shipped_cnn, fashion_mnist):
    _, (x_test, y_test) = fashion_mnist
    model, info = models.load_with_info("fashion_cnn", "shipped")
    assert [layer.name for layer in model.layers] == [layer.name for layer in shipped_cnn.layers]
    assert info["dataset"] == "fashion_mnist" and info["n_train"] == 60000
    acc = models.accuracy(model, x_test, y_test)
    assert acc >= 0.88 and abs(info["test_accuracy"] - acc) <= 0.002


def test_accuracy_matches_a_plain_argmax(shipped_cnn, bundled):
    _, (x_test, y_test) = bundled
    pred = np.asarray(shipped_cnn.predict(x_test[:300], verbose=0)).argmax(1)
    assert models.accuracy(shipped_cnn, x_test[:300], y_test[:300], batch_size=64) == \
        pytest.approx(np.mean(pred == y_test[:300]))


def test_load_rejects_unknown_names():
    with pytest.raises(ValueError, match="'cnn', 'logistic', 'cnn_blobs'"):
        models.load("vgg")
    with pytest.raises(ValueError, match="'auto', 'shipped', 'cache'"):
        models.load("cnn", "internet")


# --------------------------------------------------------------------------- the one loader


@pytest.fixture(scope="module")
def saved_files(shipped_cnn, tmp_path_factory):
    """The shipped CNN saved by Keras as .keras and as legacy .h5, and its weights alone."""
    folder = tmp_path_factory.mktemp("saved")
    shipped_cnn.save(folder / "my_cnn.keras")
    shipped_cnn.save(folder / "my_cnn.h5")
    shipped_cnn.save_weights(folder / "my_cnn.weights.h5")
    return folder


def test_load_takes_a_name_an_alias_or_a_model_file(shipped_cnn, saved_files):
    """One loader for every form: course names, the command line's names, .keras and .h5 files
    (str or Path); the model comes back as it was saved, not compiled."""
    assert same_weights(weights_of(models.load("course-cnn")), weights_of(shipped_cnn))
    blobs = models.load_with_info("cnn_blobs")[0]
    assert same_weights(weights_of(models.load("course-cnn-blobs")), weights_of(blobs))
    layers = [layer.name for layer in shipped_cnn.layers]
    for path in (saved_files / "my_cnn.keras", str(saved_files / "my_cnn.keras"),
                 saved_files / "my_cnn.h5"):
        loaded = models.load(path)
        assert same_weights(weights_of(loaded), weights_of(shipped_cnn))
        assert [layer.name for layer in loaded.layers] == layers and not loaded.compiled


@pytest.mark.parametrize("value, source, message", [
    ("vgg", "auto", "model 'vgg' is not a course model ('cnn', 'logistic',"),
    (42, "auto", "model 42 is not a course model"),
    ("{folder}/missing.keras", "auto", "'{folder}/missing.keras' is not a course model"),
    ("{folder}", "auto", "a command-line name ('course-cnn', 'course-cnn-blobs') or an existing "
                         "file (a .keras or .h5 model"),
    ("{folder}/junk.keras", "auto", "cannot load model '{folder}/junk.keras' (a .keras file"),
    ("{folder}/my_cnn.weights.h5", "auto", "holds a model's weights only, not the model"),
    ("{folder}/my_cnn.keras", "cache", "source='cache' chooses the weights of a course model"),
], ids=["unknown_name", "not_a_name", "missing_file", "a_folder", "junk_file", "weights_only",
        "source_of_a_file"])
def test_load_errors_name_the_value_and_what_is_allowed(saved_files, value, source, message):
    """A one-line ValueError of the package, never Keras' own exception or traceback."""
    (saved_files / "junk.keras").write_bytes(b"not a zip of a Keras model")
    if isinstance(value, str):
        value, message = value.format(folder=saved_files), message.format(folder=saved_files)
    with pytest.raises(ValueError) as error:
        models.load(value, source)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert type(error.value) is ValueError and error.value.__cause__ is None


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def tiny(bundled):
    (x_train, y_train), _ = bundled
    return x_train[:200], y_train[:200]


def test_training_is_reproducible_with_a_seed(tiny):
    x, y = tiny
    a = models.fit("cnn", x, y, epochs=1, seed=7)
    b = models.fit("cnn", x, y, epochs=1, seed=7)
    assert same_weights(weights_of(a), weights_of(b))
    c = models.fit("cnn", x, y, epochs=1, seed=8)
    assert not any(np.array_equal(u, v) for u, v in zip(weights_of(a), weights_of(c))
                   if u.size > 100)
    # training changed the initial weights (it is not a no-op)
    keras.utils.set_random_seed(7)
    init = models.build_cnn()
    assert not same_weights(weights_of(init), weights_of(a))


def test_fit_rejects_bad_epochs(tiny):
    x, y = tiny
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="epochs must be a positive int"):
            models.fit("cnn", x, y, epochs=bad)


# --------------------------------------------------------------------------- save / load


def _random_cnn(seed):
    keras.utils.set_random_seed(seed)
    return models.build_cnn()


def test_cache_dir_follows_the_environment(cnn_cache, monkeypatch, tmp_path):
    assert models.cache_dir() == cnn_cache
    monkeypatch.delenv("CNN_HELPER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "cnn_helper"


INFO = {"data_source": "bundled", "seed": 1, "epochs": 3, "test_accuracy": 0.5}


def test_save_load_round_trip(cnn_cache):
    model = _random_cnn(1)
    path = models.save(model, "cnn", INFO, cnn_cache)
    assert path == cnn_cache / "mnist_cnn.zip"
    assert _files(cnn_cache) == ["mnist_cnn.zip"]                        # no temporary files
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    loaded, info = models.load_with_info("cnn", "cache")
    assert same_weights(weights_of(model), weights_of(loaded))
    assert info["seed"] == 1 and info["epochs"] == 3 and info["model"] == "cnn"
    assert info["loaded_from"] == str(cnn_cache)
    # "auto" prefers the cache
    assert same_weights(weights_of(model), weights_of(models.load("cnn")))
    # one file holds both parts, and the JSON's checksum is that of the weights next to it
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["info.json", "mnist_cnn.weights.h5"]
        meta = json.loads(archive.read("info.json"))
        assert meta["sha256"] == hashlib.sha256(archive.read("mnist_cnn.weights.h5")).hexdigest()


def test_save_refuses_info_a_load_would_reject(cnn_cache):
    for info, fault in [({"seed": 1, "epochs": 3, "test_accuracy": 0.5}, "data_source"),
                        (dict(INFO, epochs=0), "epochs=0"), (dict(INFO, test_accuracy=97.4),
                                                            "test_accuracy=97.4"),
                        (dict(INFO, model="logistic"), "model='logistic'")]:
        with pytest.raises(ValueError, match=fault):
            models.save(_random_cnn(1), "cnn", info, cnn_cache)
    assert not cnn_cache.exists()                                # checked before any file


def test_an_augmented_model_must_say_how_it_was_trained(cnn_cache, shipped_cnn):
    """cnn_blobs info without its augmentation is refused by save, and by load (a warning, then
    the shipped weights); with it, the cache round-trips and wins."""
    info = dict(INFO, model="cnn_blobs")
    assert models.info_problems(info, "cnn_blobs", with_checksum=False) == \
        ["missing field(s) augmentation"]
    assert models.info_problems(dict(info, augmentation={"name": "noise"}), "cnn_blobs",
                                with_checksum=False) == \
        ["augmentation={'name': 'noise'} (must be a JSON object with name 'blobs')"]
    assert models.info_problems(dict(INFO, model="cnn"), "cnn", with_checksum=False) == []
    with pytest.raises(ValueError, match="missing field.s. augmentation"):
        models.save(_random_cnn(1), "cnn_blobs", INFO, cnn_cache)
    model = _random_cnn(1)
    blobs_info = dict(INFO, augmentation=models.augmentation_of("cnn_blobs"))
    assert models.save(model, "cnn_blobs", blobs_info, cnn_cache).name == "mnist_cnn_blobs.zip"
    loaded, info = models.load_with_info("cnn_blobs")
    assert same_weights(weights_of(model), weights_of(loaded))
    assert info["loaded_from"] == str(cnn_cache) and info["augmentation"]["name"] == "blobs"
    assert models.load_with_info("cnn")[1]["loaded_from"] == "shipped"   # its own file only
    path = cnn_cache / "mnist_cnn_blobs.zip"
    with zipfile.ZipFile(path) as archive:
        weights = archive.read("mnist_cnn_blobs.weights.h5")
    with zipfile.ZipFile(path, "w") as archive:                        # the same, less the field
        archive.writestr("info.json", json.dumps(dict(
            INFO, model="cnn_blobs", sha256=hashlib.sha256(weights).hexdigest())))
        archive.writestr("mnist_cnn_blobs.weights.h5", weights)
    with pytest.warns(UserWarning, match="missing field.s. augmentation.*Using the shipped"):
        assert models.load_with_info("cnn_blobs")[1]["loaded_from"] == "shipped"


def test_a_crash_while_saving_weights_keeps_the_previous_file(cnn_cache, monkeypatch):
    old = _random_cnn(1)
    models.save(old, "cnn", INFO, cnn_cache)
    before = {name: (cnn_cache / name).read_bytes() for name in _files(cnn_cache)}
    new = _random_cnn(2)

    def half_write_then_crash(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\x89HDF half a file")
        raise OSError("disk full")

    monkeypatch.setattr(new, "save_weights", half_write_then_crash)
    with pytest.raises(OSError, match="disk full"):
        models.save(new, "cnn", dict(INFO, seed=2), cnn_cache)
    assert {name: (cnn_cache / name).read_bytes() for name in _files(cnn_cache)} == before
    assert same_weights(weights_of(old), weights_of(models.load("cnn", "cache")))


def test_a_crash_while_replacing_the_file_leaves_no_temporary_file(cnn_cache, monkeypatch):
    old = _random_cnn(1)
    models.save(old, "cnn", INFO, cnn_cache)
    before = {name: (cnn_cache / name).read_bytes() for name in _files(cnn_cache)}
    with pytest.raises(TypeError):                                       # not JSON
        models.save(_random_cnn(2), "cnn", dict(INFO, note=object()), cnn_cache)

    def no_rename(source, destination):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="rename failed"):
        models.save(_random_cnn(2), "cnn", INFO, cnn_cache)
    assert {name: (cnn_cache / name).read_bytes() for name in _files(cnn_cache)} == before


def _damage_archive(cnn_cache, damage):
    """Save a random CNN, then rewrite its file with ``damage(bytes) -> bytes``; the new bytes."""
    path = models.save(_random_cnn(3), "cnn", INFO, cnn_cache)
    path.write_bytes(damage(path.read_bytes()))
    return path.read_bytes()


def _flip_a_weight_byte(data):
    """One byte of the stored (uncompressed) weights changed: the zip's CRC-32 catches it."""
    middle = data.index(b"HDF") + 400_000
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


@pytest.mark.parametrize("damage, fault", [
    (lambda data: data[: len(data) // 2], "not a readable weights archive"),     # truncated
    (lambda data: b"garbage" * 100, "not a readable weights archive"),
    (_flip_a_weight_byte, "not a readable weights archive"),
], ids=["truncated", "garbage", "flipped_byte"])
def test_a_damaged_cache_file_warns_and_is_left_as_it_is(cnn_cache, shipped_cnn, damage, fault):
    damaged = _damage_archive(cnn_cache, damage)
    with pytest.warns(UserWarning, match=fault) as caught:
        model, info = models.load_with_info("cnn")                      # never a crash
    message = str(caught[0].message)
    assert str(cnn_cache / "mnist_cnn.zip") in message and "shipped" in message
    assert same_weights(weights_of(model), weights_of(shipped_cnn))
    assert info["loaded_from"] == "shipped"
    assert _files(cnn_cache) == ["mnist_cnn.zip"]                       # nothing renamed or added
    assert (cnn_cache / "mnist_cnn.zip").read_bytes() == damaged        # nor overwritten
    with pytest.raises(models.DamagedWeightsError, match=fault):        # asked for the cache
        models.load("cnn", "cache")


def test_weights_that_keras_cannot_load_despite_a_matching_checksum(cnn_cache, shipped_cnn):
    """Not an HDF5 file at all, but the info's checksum fits: the Keras error, then a fallback."""
    garbage = b"garbage" * 100
    info = dict(INFO, model="cnn", sha256=hashlib.sha256(garbage).hexdigest())
    cnn_cache.mkdir(parents=True)
    with zipfile.ZipFile(cnn_cache / "mnist_cnn.zip", "w") as archive:
        archive.writestr("info.json", json.dumps(info))
        archive.writestr("mnist_cnn.weights.h5", garbage)
    with pytest.warns(UserWarning, match="Keras cannot load it"):
        model = models.load("cnn")
    assert same_weights(weights_of(model), weights_of(shipped_cnn))


def test_load_cache_with_nothing_cached_is_a_clear_error(cnn_cache):
    with pytest.raises(FileNotFoundError, match="no cnn weights") as err:
        models.load("cnn", "cache")
    assert str(cnn_cache) in str(err.value)
    assert models.load_with_info("cnn")[1]["loaded_from"] == "shipped"   # "auto" falls back quietly


def test_tests_never_touch_the_real_user_cache():
    real = os.path.join(os.path.expanduser("~"), ".cache")
    assert not str(models.cache_dir()).startswith(real)
