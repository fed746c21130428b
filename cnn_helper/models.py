"""The course's MNIST models: build, train (seeded), save and load.

The models:

- ``"cnn"``: the course CNN, a functional Keras model with the lecture's layer names::

      input (28, 28, 1)
      conv1  Conv2D 16 3x3 same, ReLU  -> pool1 MaxPool 2x2
      conv2  Conv2D 32 3x3 same, ReLU  -> pool2 MaxPool 2x2
      conv3  Conv2D 64 3x3 same, ReLU
      flatten -> dense Dense 64, ReLU -> logits Dense 10 (no activation) -> softmax
      (dropout before dense and logits, active only in training)

- ``"logistic"``: one Dense layer on the flattened image, y = softmax(W x + b). Its 10 weight
  vectors, reshaped to 28x28, are the "idealized digits" of the first lecture.

- ``"cnn_blobs"``: the same CNN (same layers, same names) trained with data augmentation: each
  epoch, about half the training images get 1 to 3 random bright squares ("blobs", side 2 to 6
  pixels, value 1.0), labels kept (``cnn_helper.augmentation``). It learns that a bright spot in
  an unusual place says little about the digit, the lecture's answer to its occlusion experiment.

- ``"fashion_cnn"``: the same CNN trained on the 60,000 Fashion-MNIST images: a second real
  data set, with richer features. ``"cnn_random_labels"``: the same CNN made to memorize the
  bundled training digits with permuted labels (``permuted_labels``), for the data-randomization
  test (``cnn_helper.sanity_checks``); its test accuracy is chance, its training accuracy high.

Trained weights ship inside the package (``cnn_helper/trained/``, each with a JSON of data
source, seed, epochs and test accuracy). ``train`` checks its destination, trains, and writes the
weights and that JSON as one file, ``mnist_<name>.zip``, to the user cache (``$CNN_HELPER_CACHE``
or ``~/.cache/cnn_helper``) in one atomic rename. ``load`` prefers a valid cached file; one that
cannot be used gives a warning naming it and the fault, and the shipped weights. Loading never
changes a file, so it is safe while another process trains or saves.

Example
-------
>>> model = load("cnn")                          # shipped (or your retrained) weights
>>> model, info = load_with_info("cnn")          # info: where from, seed, epochs, accuracy
>>> model, info = train("cnn", epochs=1)         # retrain; written to the cache
>>> blobs = load("cnn_blobs")                    # the CNN trained with bright blobs added
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import _checks, _graph
from . import data as data_mod

MODELS = ("cnn", "logistic", "cnn_blobs", "fashion_cnn", "cnn_random_labels")
SHIPPED_DIR = Path(__file__).parent / "trained"
DEFAULTS = {"cnn": {"epochs": 12, "batch_size": 32, "learning_rate": 1e-3},
            "logistic": {"epochs": 20, "batch_size": 64, "learning_rate": 5e-3},
            "cnn_blobs": {"epochs": 12, "batch_size": 32, "learning_rate": 1e-3},
            "fashion_cnn": {"epochs": 10, "batch_size": 64, "learning_rate": 1e-3},
            "cnn_random_labels": {"epochs": 80, "batch_size": 32, "learning_rate": 1e-3}}
AUGMENTED = {"cnn_blobs": "blobs"}
"""The models trained with data augmentation, and which (the others see the images as they are)."""
DATASET_OF = {"fashion_cnn": "fashion_mnist"}
"""The models trained on another data set than MNIST (``data.DATASETS``)."""
PERMUTED_LABELS = ("cnn_random_labels",)


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


BUILDERS = {"cnn": build_cnn, "logistic": build_logistic, "cnn_blobs": build_cnn,
            "fashion_cnn": build_cnn, "cnn_random_labels": build_cnn}


# --------------------------------------------------------------------------- files
#
# One trained model is ONE file, ``mnist_<name>.zip``: ``info.json`` (how it was trained, and the
# SHA-256 of the weights) and ``mnist_<name>.weights.h5`` (Keras weights). ``save`` writes it under
# a temporary name in the same folder and renames it over the old one with ``os.replace``, a single
# atomic step: a reader finds the old file or the new one, never half of one or a mismatched pair.
# A reader reads the file once, into memory, so a save during a load cannot change what it reads;
# and loading never writes, renames or deletes anything.
#
# The older two-file layout (``mnist_<name>.weights.h5`` + ``mnist_<name>.json``, still used by the
# shipped weights) is read when no ``.zip`` exists; ``save`` never touches it.

INFO_MEMBER = "info.json"
INFO_FIELDS = {   # field: (test, what is allowed)
    "data_source": (lambda v: isinstance(v, str), "a string"),
    "seed": (lambda v: _checks.is_int(v) and v >= 0, "an int >= 0"),
    "epochs": (lambda v: _checks.is_int(v) and v >= 1, "an int >= 1"),
    "test_accuracy": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                      and 0 <= v <= 1, "a number in [0, 1]"),
    "sha256": (lambda v: isinstance(v, str) and len(v) == 64
               and all(c in "0123456789abcdef" for c in v), "64 hex digits"),
}


class DamagedWeightsError(ValueError):
    """A weights file that exists but cannot be used; the message names the file and the fault."""


def cache_dir() -> Path:
    """Where retrained weights go: ``$CNN_HELPER_CACHE`` or ``$XDG_CACHE_HOME/cnn_helper``."""
    if os.environ.get("CNN_HELPER_CACHE"):
        return Path(os.environ["CNN_HELPER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnn_helper"


def archive_path(name: str, directory) -> Path:
    """The one file that holds model ``name``'s weights and info in ``directory``."""
    return Path(directory) / f"mnist_{name}.zip"


def weight_paths(name: str, directory):
    """(weights, JSON) of the two-file layout: the shipped weights and caches of older versions."""
    directory = Path(directory)
    return directory / f"mnist_{name}.weights.h5", directory / f"mnist_{name}.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def info_problems(info, name: str, with_checksum: bool = True) -> list:
    """What is wrong with ``info`` as the description of trained model ``name`` ([] if nothing).

    It must be a JSON object with ``model`` (= name) and the fields of ``INFO_FIELDS``: data_source,
    seed, epochs, test_accuracy and, in a file (``with_checksum``), the weights' sha256; a model
    of ``AUGMENTED`` also its ``augmentation`` (``augmentation_of``).

    >>> info_problems({"model": "cnn", "seed": -1}, "cnn", with_checksum=False)
    ['missing field(s) data_source, epochs, test_accuracy', 'seed=-1 (must be an int >= 0)']
    """
    if not isinstance(info, dict):
        return [f"it holds a {type(info).__name__}, not a JSON object of fields"]
    fields = dict(INFO_FIELDS, model=(lambda v: v == name, repr(name)))
    if name in AUGMENTED:                          # an augmented model says how it was trained
        fields["augmentation"] = (lambda v: isinstance(v, dict) and v.get("name") ==
                                  AUGMENTED[name], f"a JSON object with name {AUGMENTED[name]!r}")
    if not with_checksum:
        del fields["sha256"]
    missing = [key for key in fields if key not in info]
    problems = [f"missing field(s) {', '.join(missing)}"] if missing else []
    return problems + [f"{key}={info[key]!r} (must be {allowed})"
                       for key, (fits, allowed) in fields.items()
                       if key in info and not fits(info[key])]


def save(model, name: str, info: dict, directory) -> Path:
    """Write ``model``'s weights and ``info`` atomically as one file, ``mnist_<name>.zip``.

    ``info`` needs data_source, seed, epochs and test_accuracy (``info_problems``); ``model`` is
    filled in and the weights' SHA-256 added. The file is written under a temporary name in the
    same folder, flushed to disk, then renamed over the old one: a crash or a concurrent ``load``
    sees the old file or the new one, never a mix. Returns the file's path.

    >>> save(model, "cnn", {"data_source": "bundled", "seed": 0, "epochs": 1,
    ...                     "test_accuracy": 0.9}, "my_weights")     # -> my_weights/mnist_cnn.zip
    """
    _check_name(name)
    info = dict(info)
    info.setdefault("model", name)
    problems = info_problems(info, name, with_checksum=False)
    if problems:
        raise ValueError(f"info for model {name!r} cannot be saved: {'; '.join(problems)}")
    weights = _weights_bytes(model)
    info["sha256"] = _sha256(weights)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:   # JSON errors raise here, before any file
        archive.writestr(INFO_MEMBER, json.dumps(info, indent=2), zipfile.ZIP_DEFLATED)
        archive.writestr(f"mnist_{name}.weights.h5", weights)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return _write_atomically(archive_path(name, directory), buffer.getvalue())


def _weights_bytes(model) -> bytes:
    """The bytes of ``model.save_weights`` (Keras needs a path ending in .weights.h5)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.weights.h5")
        model.save_weights(path)
        return Path(path).read_bytes()


def _write_atomically(path: Path, data: bytes) -> Path:
    """``data`` into ``path``: a temporary file next to it, fsync, then one ``os.replace``."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)                 # mkstemp makes owner-only files
        os.replace(temporary, path)
    except BaseException:                          # leave no temporary file behind
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def _parse_info(text: bytes, where) -> dict:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise DamagedWeightsError(f"{where}: not valid JSON ({e})") from e


def _model_from(name: str, info, weights: bytes, info_where, weights_where):
    """Model ``name`` with ``weights`` (bytes of a .weights.h5) after checking ``info`` and the
    checksum; DamagedWeightsError naming the file and the fault otherwise."""
    problems = info_problems(info, name)
    if problems:
        raise DamagedWeightsError(f"{info_where}: {'; '.join(problems)}")
    if _sha256(weights) != info["sha256"]:
        raise DamagedWeightsError(f"{weights_where}: the weights do not match the sha256 in "
                                  f"{info_where} (changed or damaged after it was saved)")
    model = BUILDERS[name]()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"mnist_{name}.weights.h5"
        path.write_bytes(weights)
        try:
            model.load_weights(path)
        except Exception as e:                     # any HDF5 / Keras fault of a damaged file
            raise DamagedWeightsError(f"{weights_where}: Keras cannot load it ({e})") from e
    return model


def _read_archive(name: str, path: Path):
    """(model, info) from one ``.zip``: read once, so a concurrent save cannot change it."""
    data = path.read_bytes()                       # FileNotFoundError when there is none
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:   # CRC-32 checked while reading
            info_text = archive.read(INFO_MEMBER)
            weights = archive.read(f"mnist_{name}.weights.h5")
    except (zipfile.BadZipFile, KeyError, EOFError, zlib.error, OSError, ValueError) as e:
        raise DamagedWeightsError(f"{path}: not a readable weights archive ({e})") from e
    info = _parse_info(info_text, f"{path} ({INFO_MEMBER})")
    return _model_from(name, info, weights, f"{path} ({INFO_MEMBER})", path), info


def _read_pair(name: str, directory: Path):
    """(model, info) from the two-file layout. An older cnn_helper writes the weights, then the
    JSON: when they disagree, look once more after 0.2 s before calling them damaged."""
    weights_path, meta_path = weight_paths(name, directory)
    if not weights_path.exists() and not meta_path.exists():
        raise FileNotFoundError(f"no {name} weights in {directory}")
    for look in range(2):
        missing = [p.name for p in (weights_path, meta_path) if not p.is_file()]
        if missing:
            raise DamagedWeightsError(f"{directory}: {' and '.join(missing)} missing from the pair")
        info = _parse_info(meta_path.read_bytes(), meta_path)
        weights = weights_path.read_bytes()
        if look or (isinstance(info, dict) and info.get("sha256") == _sha256(weights)):
            break
        time.sleep(0.2)
    return _model_from(name, info, weights, meta_path, weights_path), info


def _read_cache(name: str, directory: Path):
    """(model, info) from the cache: its ``.zip``, else an older version's pair of files."""
    try:
        return _read_archive(name, archive_path(name, directory))
    except FileNotFoundError:
        pass
    except OSError as e:                           # no permission, a folder of that name, ...
        raise DamagedWeightsError(f"{archive_path(name, directory)}: cannot be read ({e})") from e
    try:
        return _read_pair(name, directory)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise DamagedWeightsError(f"{directory}: cannot read its {name} weights ({e})") from e


WEIGHT_SOURCES = ("auto", "shipped", "cache")


def load_with_info(name: str = "cnn", source: str = "auto"):
    """The trained model ``name`` (one of ``MODELS``) and its info dict: (model, info).

    source "auto": your retrained weights from the cache when present and valid, else the shipped
    ones; "shipped" or "cache" to choose. With "auto", a cache file that cannot be used (damaged,
    unreadable, fields missing from its info) gives a warning that names it and what is wrong, and
    the shipped weights; with "cache", a DamagedWeightsError. Loading never changes a file.
    ``info`` holds data source, seed, epochs, test accuracy and ``loaded_from`` ("shipped" or the
    cache folder), and for "cnn_blobs" the ``augmentation`` it was trained with.

    >>> model, info = load_with_info("cnn")
    >>> info["loaded_from"], info["test_accuracy"]
    ('shipped', 0.974)
    """
    _check_name(name)
    _checks.one_of(source, "weights source", WEIGHT_SOURCES)
    if source in ("auto", "cache"):
        try:
            model, info = _read_cache(name, cache_dir())
            return model, dict(info, loaded_from=str(cache_dir()))
        except FileNotFoundError:
            if source == "cache":
                raise
        except DamagedWeightsError as e:
            if source == "cache":
                raise
            warnings.warn(f"the cached {name} weights cannot be used: {e}. Using the shipped "
                          f"weights instead; the file is left as it is (retrain with `python -m "
                          f"cnn_helper train --model {name}`, or delete it)", stacklevel=2)
    model, info = _read_pair(name, SHIPPED_DIR)
    return model, dict(info, loaded_from="shipped")


def load(name: str = "cnn", source: str = "auto"):
    """The trained model ``name`` (one of ``MODELS``), as :func:`load_with_info` finds it."""
    return load_with_info(name, source)[0]


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


def _training_options(name, epochs, batch_size, learning_rate):
    """(epochs, batch_size, learning_rate) checked; None means the model's default (DEFAULTS)."""
    opts = DEFAULTS[name]
    if batch_size is not None:
        _checks.positive_int(batch_size, "batch_size")
    if learning_rate is not None and (
            isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float))
            or not 0 < learning_rate < float("inf")):
        raise ValueError(f"learning_rate must be a number > 0 (the Adam step size, e.g. "
                         f"{opts['learning_rate']}), got {learning_rate!r}")
    return (_epochs(name, epochs), opts["batch_size"] if batch_size is None else int(batch_size),
            opts["learning_rate"] if learning_rate is None else float(learning_rate))


def augmentation_of(name: str):
    """How model ``name`` augments its training images, as its info JSON records it: None, or
    e.g. ``{"name": "blobs", "probability": 0.5, "count": [1, 3], "size": [2, 6]}`` (the
    arguments of ``augmentation.add_blobs``)."""
    from . import augmentation

    _check_name(name)
    if name not in AUGMENTED:
        return None
    return json.loads(json.dumps(dict(name=AUGMENTED[name], **augmentation.BLOBS)))


def fit(name: str, x_train, y_train, epochs=None, seed: int = 0, batch_size=None,
        learning_rate=None, verbose: int = 0, callbacks=None):
    """Build model ``name`` from ``seed``, train it on (x_train, y_train): same seed, same weights.

    A model of ``AUGMENTED`` ("cnn_blobs") sees fresh random blobs every epoch, drawn from the same
    seed (``augmentation.BlobbedImages``); the labels and the model's layers are those of "cnn".
    ``callbacks`` (Keras callbacks, e.g. a timer) are passed to ``model.fit``.
    """
    import keras

    from . import augmentation

    _check_name(name)
    epochs, batch_size, learning_rate = _training_options(name, epochs, batch_size, learning_rate)
    seed_everything(_checks.seed(seed))
    model = BUILDERS[name](input_shape=x_train.shape[1:])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if name in AUGMENTED:                 # the input pipeline paints the blobs and shuffles
        batches = augmentation.BlobbedImages(x_train, y_train, batch_size, seed)
        model.fit(batches, epochs=epochs, shuffle=False, verbose=verbose, callbacks=callbacks)
    else:
        model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size,
                  shuffle=True, verbose=verbose, callbacks=callbacks)
    return model


def accuracy(model, x, y, batch_size=_checks.BATCH_SIZE) -> float:
    """Fraction of ``x`` whose argmax prediction equals ``y``."""
    x, _ = _graph.check_images(model, x)
    head = _graph.forward(model, [_graph.output_layer(model)])
    outputs, = _graph.run_batched(head, _graph.batch_size(model, batch_size), x)
    return float(np.mean(outputs.argmax(axis=-1) == np.asarray(y)))


def check_writable(directory, what: str = "the trained weights",
                   example: str = "train(..., directory='my_weights')") -> Path:
    """``directory`` as a Path, once a file could be created in it (the folder is made if needed).

    ``train`` calls it before training, so an unwritable destination fails in a second, not after
    the epochs. A ValueError names the folder, the system's reason and the fix (``example``).

    >>> check_writable("my_weights")
    PosixPath('my_weights')
    """
    if not isinstance(directory, (str, os.PathLike)) or not str(directory).strip():
        raise ValueError(f"directory must name a folder (str or Path), got {directory!r}")
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ValueError(f"cannot write {what} to {str(path)!r}: {e.strerror or e}. Give a "
                         f"folder you can write to, e.g. {example}") from e
    return path


def permuted_labels(y, seed: int = 0) -> np.ndarray:
    """The labels ``y`` shuffled among the examples by ``seed``: the same counts per class, but
    no relation left between an image and its label (Adebayo et al.'s data randomization).

    >>> permuted_labels([0, 1, 2, 3], seed=0)
    array([2, 0, 1, 3])
    """
    return np.random.default_rng(_checks.seed(seed)).permutation(np.asarray(y))


def train(name: str = "cnn", data_source: str = "auto", epochs=None, seed: int = 0,
          directory=None, verbose: int = 2):
    """Train ``name`` on its data set (MNIST, or ``DATASET_OF[name]``) and save it (default: the
    user cache) with a JSON of how.

    The destination is checked first (``check_writable``), then the data are loaded (from
    ``data_source``, a source of that data set) and the model trained; "cnn_random_labels" learns
    ``permuted_labels(y_train, seed)``. Returns (model, info): info holds data set and source,
    seed, epochs, augmentation (None, or the blobs of "cnn_blobs"), seconds, training and test
    accuracy and ``loaded_from`` (the folder the weights were written to).
    """
    _check_name(name)
    epochs = _epochs(name, epochs)
    seed = _checks.seed(seed)
    destination = check_writable(cache_dir() if directory is None else directory)
    found = data_mod.load(data_source, bool(verbose), DATASET_OF.get(name, "mnist"))
    (x_train, y_train), (x_test, y_test) = found.train, found.test
    if name in PERMUTED_LABELS:
        y_train = permuted_labels(y_train, seed)
    start = time.perf_counter()
    model = fit(name, x_train, y_train, epochs=epochs, seed=seed, verbose=verbose)
    info = {"model": name, "dataset": found.name, "data_source": found.source,
            "labels": "permuted" if name in PERMUTED_LABELS else "true",
            "n_train": int(len(x_train)), "n_test": int(len(x_test)), "seed": seed,
            "epochs": epochs, "augmentation": augmentation_of(name),
            "train_seconds": round(time.perf_counter() - start, 1),
            "train_accuracy": round(accuracy(model, x_train, y_train), 4),
            "test_accuracy": round(accuracy(model, x_test, y_test), 4)}
    path = save(model, name, info, destination)
    return model, dict(info, loaded_from=str(path.parent))
