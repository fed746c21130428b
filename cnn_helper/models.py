"""The course's MNIST models: build, train (seeded), save and load.

Two models:

- ``"cnn"``: the course CNN, a functional Keras model with the lecture's layer names::

      input (28, 28, 1)
      conv1  Conv2D 16 3x3 same, ReLU  -> pool1 MaxPool 2x2
      conv2  Conv2D 32 3x3 same, ReLU  -> pool2 MaxPool 2x2
      conv3  Conv2D 64 3x3 same, ReLU
      flatten -> dense Dense 64, ReLU -> logits Dense 10 (no activation) -> softmax
      (dropout before dense and logits, active only in training)

- ``"logistic"``: one Dense layer on the flattened image, y = softmax(W x + b). Its 10 weight
  vectors, reshaped to 28x28, are the "idealized digits" of the first lecture.

Trained weights ship inside the package (``cnn_helper/trained/``, each with a JSON of data
source, seed, epochs and test accuracy). ``train`` writes new weights to the user cache
(``$CNN_HELPER_CACHE`` or ``~/.cache/cnn_helper``) atomically; ``load`` prefers a valid cached
file, replaces a corrupt one, and otherwise uses the shipped weights.

Example
-------
>>> model = load("cnn")                          # shipped (or your retrained) weights
>>> model, info = load_with_info("cnn")          # info: where from, seed, epochs, accuracy
>>> model, info = train("cnn", epochs=1)         # retrain; written to the cache
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from . import _checks, _graph
from . import data as data_mod

MODELS = ("cnn", "logistic")
SHIPPED_DIR = Path(__file__).parent / "trained"
DEFAULTS = {"cnn": {"epochs": 12, "batch_size": 32, "learning_rate": 1e-3},
            "logistic": {"epochs": 20, "batch_size": 64, "learning_rate": 5e-3}}


def _check_name(name):
    if name not in MODELS:
        raise ValueError(f"model name {name!r} is not one of {MODELS}")


def build_cnn(input_shape=(28, 28, 1), n_classes: int = 10):
    """The course MNIST CNN (functional, readable layer names, separate logits and softmax)."""
    import keras
    from keras import layers

    x = inputs = keras.Input(shape=input_shape, name="input")
    for i, filters in enumerate((16, 32), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, name="dropout1")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    x = layers.Dropout(0.3, name="dropout2")(x)
    x = layers.Dense(n_classes, name="logits")(x)
    outputs = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def build_logistic(input_shape=(28, 28, 1), n_classes: int = 10):
    """Multinomial logistic regression: softmax(W flatten(x) + b); W[:, k] is digit k's pattern."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Flatten(name="flatten")(inputs)
    # Zero start and a small L2 penalty: pixels that are never lit keep weight 0, so each
    # pattern shows only what the data taught it.
    x = layers.Dense(n_classes, kernel_initializer="zeros",
                     kernel_regularizer=keras.regularizers.L2(3e-3), name="logits")(x)
    outputs = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name="mnist_logistic")


BUILDERS = {"cnn": build_cnn, "logistic": build_logistic}


# --------------------------------------------------------------------------- files


def cache_dir() -> Path:
    """Where retrained weights go: ``$CNN_HELPER_CACHE`` or ``$XDG_CACHE_HOME/cnn_helper``."""
    if os.environ.get("CNN_HELPER_CACHE"):
        return Path(os.environ["CNN_HELPER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnn_helper"


def weight_paths(name: str, directory: Path):
    return directory / f"mnist_{name}.weights.h5", directory / f"mnist_{name}.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(model, name: str, info: dict, directory: Path) -> Path:
    """Write weights and their JSON atomically: temporary files in ``directory``, then rename.

    The JSON records the weights' SHA-256, so a damaged file is detected when loading.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights, meta = weight_paths(name, directory)
    fd, tmp_weights = tempfile.mkstemp(suffix=".weights.h5", dir=directory)
    os.close(fd)
    fd, tmp_meta = tempfile.mkstemp(suffix=".json", dir=directory)
    os.close(fd)
    try:
        model.save_weights(tmp_weights, overwrite=True)
        info = dict(info, sha256=_sha256(Path(tmp_weights)))
        with open(tmp_meta, "w") as f:
            json.dump(info, f, indent=2)
        for tmp in (tmp_weights, tmp_meta):   # mkstemp makes owner-only files
            os.chmod(tmp, 0o644)
        os.replace(tmp_weights, weights)
        os.replace(tmp_meta, meta)
    finally:   # a failure at any step leaves no temporary file behind
        for tmp in (tmp_weights, tmp_meta):
            if os.path.exists(tmp):
                os.remove(tmp)
    return weights


def _read(name: str, directory: Path):
    """(model, info) from ``directory``; ValueError when missing, damaged or not matching."""
    weights, meta = weight_paths(name, directory)
    if not weights.is_file() or not meta.is_file():
        raise FileNotFoundError(f"no {name} weights in {directory}")
    try:
        info = json.loads(meta.read_text())
        if info.get("sha256") != _sha256(weights):
            raise ValueError("checksum does not match its JSON")
        model = BUILDERS[name]()
        model.load_weights(weights)
    except Exception as e:
        raise ValueError(f"{weights} is damaged ({e})") from e
    return model, info


WEIGHT_SOURCES = ("auto", "shipped", "cache")


def load_with_info(name: str = "cnn", source: str = "auto"):
    """The trained model ``name`` ("cnn" or "logistic") and its info dict: (model, info).

    source "auto": your retrained weights from the cache when present and valid, else the shipped
    ones; "shipped" or "cache" to choose. A damaged cache file is renamed ``*.corrupt``, replaced by
    the shipped weights, and a warning says so. ``info`` holds data source, seed, epochs, test
    accuracy and ``loaded_from`` ("shipped" or the cache folder).
    """
    _check_name(name)
    _checks.one_of(source, "weights source", WEIGHT_SOURCES)
    if source in ("auto", "cache"):
        try:
            model, info = _read(name, cache_dir())
            return model, dict(info, loaded_from=str(cache_dir()))
        except FileNotFoundError:
            if source == "cache":
                raise
        except ValueError as e:
            _replace_corrupt(name, e)
    model, info = _read(name, SHIPPED_DIR)
    return model, dict(info, loaded_from="shipped")


def load(name: str = "cnn", source: str = "auto"):
    """The trained model ``name`` ("cnn" or "logistic"), as :func:`load_with_info` finds it."""
    return load_with_info(name, source)[0]


def _replace_corrupt(name, error):
    weights, meta = weight_paths(name, cache_dir())
    for path in (weights, meta):
        if path.exists():
            os.replace(path, path.with_name(path.name + ".corrupt"))
    model, info = _read(name, SHIPPED_DIR)
    save(model, name, {k: v for k, v in info.items() if k != "sha256"}, cache_dir())
    warnings.warn(f"{error}; kept it as *.corrupt and replaced it with the shipped weights",
                  stacklevel=3)


# --------------------------------------------------------------------------- training


def seed_everything(seed: int):
    """Python, NumPy and TensorFlow seeds, and deterministic TensorFlow ops."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _epochs(name, epochs) -> int:
    """``epochs`` as a positive int; None means the model's default (0 is an error)."""
    return DEFAULTS[name]["epochs"] if epochs is None else _checks.positive_int(epochs, "epochs")


def fit(name: str, x_train, y_train, epochs=None, seed: int = 0, batch_size=None,
        learning_rate=None, verbose: int = 0, callbacks=None):
    """Build model ``name`` from ``seed``, train it on (x_train, y_train): same seed, same weights.

    ``callbacks`` (Keras callbacks, e.g. a timer) are passed to ``model.fit``.
    """
    import keras

    _check_name(name)
    opts = DEFAULTS[name]
    epochs = _epochs(name, epochs)
    seed_everything(seed)
    model = BUILDERS[name](input_shape=x_train.shape[1:])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate or opts["learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size or opts["batch_size"],
              shuffle=True, verbose=verbose, callbacks=callbacks)
    return model


def accuracy(model, x, y, batch_size=_checks.BATCH_SIZE) -> float:
    """Fraction of ``x`` whose argmax prediction equals ``y``."""
    x, _ = _graph.check_images(model, x)
    head = _graph.forward(model, [_graph.output_layer(model)])
    outputs, = _graph.run_batched(head, _graph.batch_size(model, batch_size), x)
    return float(np.mean(outputs.argmax(axis=-1) == np.asarray(y)))


def train(name: str = "cnn", data_source: str = "auto", epochs=None, seed: int = 0,
          directory=None, verbose: int = 2):
    """Train ``name`` on MNIST and save it (default: the user cache) with a JSON of how.

    Returns (model, info): info holds data source, seed, epochs, seconds, test accuracy and
    ``loaded_from`` (the folder the weights were written to).
    """
    _check_name(name)
    epochs = _epochs(name, epochs)
    mnist = data_mod.load(data_source, verbose=bool(verbose))
    (x_train, y_train), (x_test, y_test) = mnist.train, mnist.test
    start = time.perf_counter()
    model = fit(name, x_train, y_train, epochs=epochs, seed=seed, verbose=verbose)
    info = {"model": name, "data_source": mnist.source, "n_train": int(len(x_train)),
            "n_test": int(len(x_test)), "seed": seed,
            "epochs": epochs,
            "train_seconds": round(time.perf_counter() - start, 1),
            "test_accuracy": round(accuracy(model, x_test, y_test), 4)}
    path = save(model, name, info, Path(directory) if directory else cache_dir())
    return model, dict(info, loaded_from=str(path.parent))
