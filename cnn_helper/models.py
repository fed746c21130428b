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
changes a file, so it is safe while another process trains or saves. (The files, and how they
are written and read safely, are the weights store's: ``cnn_helper/_weights.py``.)

``load`` is the package's one model loader: a course model's name, its command-line name
("course-cnn"), or a ``.keras`` / ``.h5`` file you saved.

Example
-------
>>> model = load("cnn")                          # shipped (or your retrained) weights
>>> model, info = load_with_info("cnn")          # info: where from, seed, epochs, accuracy
>>> model, info = train("cnn", epochs=1)         # retrain; written to the cache
>>> blobs = load("cnn_blobs")                    # the CNN trained with bright blobs added
>>> mine = load("my_model.keras")                # a model you saved with model.save
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from . import _checks, _graph, _weights
from . import data as data_mod
from ._weights import (  # noqa: F401  (models.save, models.info_problems, ...: the store's names)
    AUGMENTED,
    INFO_FIELDS,
    INFO_MEMBER,
    MODELS,
    SHIPPED_DIR,
    DamagedWeightsError,
    archive_path,
    cache_dir,
    check_name,
    info_problems,
    save,
    weight_paths,
)

# MODELS (the course models' names) and AUGMENTED come from the weights store, ``_weights``, which
# needs them to check a file; their architectures are BUILDERS, below.
DEFAULTS = {"cnn": {"epochs": 12, "batch_size": 32, "learning_rate": 1e-3},
            "logistic": {"epochs": 20, "batch_size": 64, "learning_rate": 5e-3},
            "cnn_blobs": {"epochs": 12, "batch_size": 32, "learning_rate": 1e-3},
            "fashion_cnn": {"epochs": 10, "batch_size": 64, "learning_rate": 1e-3},
            "cnn_random_labels": {"epochs": 80, "batch_size": 32, "learning_rate": 1e-3}}
DATASET_OF = {"fashion_cnn": "fashion_mnist"}
"""The models trained on another data set than MNIST (``data.DATASETS``)."""
PERMUTED_LABELS = ("cnn_random_labels",)
TRAINING_RANGE = (0.0, 1.0)
"""The range of the images the course models were trained on (``data.load`` scales pixels to
[0, 1]) when their info does not record one. A loaded model carries it as its
``training_range``: the package warns about images far outside it (``x * 255`` instead of x)."""


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


# --------------------------------------------------------------------------- loading
#
# The files themselves (format, atomic save, safe reads) are the weights store's, ``_weights``;
# here: which folder a course model comes from, and models saved by the user.

WEIGHT_SOURCES = ("auto", "shipped", "cache")
ALIASES = {"course-cnn": "cnn", "course-cnn-blobs": "cnn_blobs"}
"""The command line's names of course models (``cnn-helper explain course-cnn photo.png``)."""


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
    check_name(name)
    _checks.one_of(source, "weights source", WEIGHT_SOURCES)
    if source in ("auto", "cache"):
        try:
            model, info = _weights.read(name, cache_dir(), BUILDERS[name])
            return _recorded_range(model, info), dict(info, loaded_from=str(cache_dir()))
        except FileNotFoundError:
            if source == "cache":
                raise
        except DamagedWeightsError as e:
            if source == "cache":
                raise
            warnings.warn(f"the cached {name} weights cannot be used: {e}. Using the shipped "
                          f"weights instead; the file is left as it is (retrain with `python -m "
                          f"cnn_helper train --model {name}`, or delete it)", stacklevel=2)
    model, info = _weights.read(name, SHIPPED_DIR, BUILDERS[name])
    return _recorded_range(model, info), dict(info, loaded_from="shipped")


def _recorded_range(model, info: dict):
    """``model`` carrying the range of its training images as ``training_range`` (read by
    ``_graph.check_images``): its info's, or ``TRAINING_RANGE`` for weights saved before the
    info recorded it."""
    model.training_range = tuple(float(v) for v in info.get("training_range", TRAINING_RANGE))
    return model


def load(name_or_path="cnn", source: str = "auto"):
    """A Keras model from a course model's name, its command-line name, or a saved model file.

    ``name_or_path`` is one of:

    - a name of ``MODELS`` ("cnn", "cnn_blobs", "fashion_cnn", "cnn_random_labels", ...): the
      trained course model, as :func:`load_with_info` finds it (``source``: "auto", "shipped"
      or "cache");
    - a name of ``ALIASES`` ("course-cnn", "course-cnn-blobs"): the same, as the command line
      names it;
    - the path (str or Path) of a model file saved by Keras: ``.keras`` (``model.save``) or
      legacy ``.h5``. It is loaded as it is, not compiled (``source`` must stay "auto").

    Anything else, or a file Keras cannot read, is a one-line ValueError that names the value
    and what is allowed. The CLI (``cli_explain.load_model``) and ``distributed`` load through it.

    >>> model = load("cnn")                  # the course CNN (shipped or your retrained weights)
    >>> model = load("course-cnn")           # the same, by its command-line name
    >>> model = load("my_model.keras")       # a model you saved with model.save("my_model.keras")
    """
    name = ALIASES.get(name_or_path, name_or_path) if isinstance(name_or_path, str) else None
    if name in MODELS:
        return load_with_info(name, source)[0]
    if isinstance(name_or_path, (str, os.PathLike)) and Path(name_or_path).is_file():
        if source != "auto":
            raise ValueError(f"source={source!r} chooses the weights of a course model "
                             f"{MODELS}; a model file {str(name_or_path)!r} has only its own")
        return _load_file(name_or_path)
    raise ValueError(f"model {name_or_path!r} is not a course model {MODELS}, a command-line "
                     f"name {tuple(ALIASES)} or an existing file (a .keras or .h5 model saved "
                     "by model.save)")


def _load_file(path):
    """The model saved in ``path``, not compiled; a one-line ValueError if Keras cannot read it."""
    import keras

    if str(path).endswith(".weights.h5"):
        raise ValueError(f"{str(path)!r} holds a model's weights only, not the model: build the "
                         f"model, then call model.load_weights({str(path)!r})")
    try:
        return keras.saving.load_model(Path(path), compile=False)
    except Exception as e:               # Keras raises many kinds; the user needs one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"cannot load model {str(path)!r} (a .keras file saved by "
                         f"model.save): {first}") from None


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

    check_name(name)
    if name not in AUGMENTED:
        return None
    return json.loads(json.dumps(dict(name=AUGMENTED[name], **augmentation.BLOBS)))


def fit(name: str, x_train, y_train, epochs=None, seed: int = 0, batch_size=None,
        learning_rate=None, verbose: int = 0, callbacks=None):
    """Build model ``name`` from ``seed``, train it on (x_train, y_train): same seed, same weights.

    A model of ``AUGMENTED`` ("cnn_blobs") sees fresh random blobs every epoch, drawn from the same
    seed (``augmentation.BlobbedImages``); the labels and the model's layers are those of "cnn".
    ``callbacks`` (Keras callbacks, e.g. a timer) are passed to ``model.fit``. The model records
    the range of x_train as its ``training_range``.
    """
    import keras

    from . import augmentation

    check_name(name)
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
    model.training_range = (float(np.min(x_train)), float(np.max(x_train)))
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
    seed, epochs, augmentation (None, or the blobs of "cnn_blobs"), the range of the training
    images, seconds, training and test accuracy and ``loaded_from`` (the folder the weights were
    written to).
    """
    check_name(name)
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
            "training_range": list(model.training_range),
            "epochs": epochs, "augmentation": augmentation_of(name),
            "train_seconds": round(time.perf_counter() - start, 1),
            "train_accuracy": round(accuracy(model, x_train, y_train), 4),
            "test_accuracy": round(accuracy(model, x_test, y_test), 4)}
    path = save(model, name, info, destination)
    return model, dict(info, loaded_from=str(path.parent))
