"""Shared fixtures: a private cache for every test, and the bundled data and shipped models once.

Every test runs with ``CNN_HELPER_CACHE`` and ``KERAS_HOME`` pointing into its own temporary
folder, so no test reads the user's real Keras MNIST cache or writes into ``~/.cache``, and with
``CNN_HELPER_DATA_ORIGIN`` at a closed local port, so no test downloads.
The session fixtures hand out read-only arrays: a function that writes into its input fails loudly.
"""
import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def cnn_cache(tmp_path, monkeypatch):
    """The weights cache of this test (``$CNN_HELPER_CACHE``), a fresh empty folder path."""
    cache = tmp_path / "cnn_helper_cache"
    monkeypatch.setenv("CNN_HELPER_CACHE", str(cache))
    keras_home = tmp_path / "keras_home"
    keras_home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    # downloads go to a port where nothing listens: refused at once, so "auto" falls back to the
    # bundled digits whether or not this machine is online (tests/test_data.py serves its own)
    monkeypatch.setenv("CNN_HELPER_DATA_ORIGIN", "http://127.0.0.1:9/")
    return cache


def _read_only(*arrays):
    for a in arrays:
        a.setflags(write=False)


@pytest.fixture(scope="session")
def bundled():
    """The bundled MNIST split ``(x_train, y_train), (x_test, y_test)``, loaded once (read-only)."""
    from cnn_helper import data

    (x_train, y_train), (x_test, y_test) = data.load_mnist("bundled", verbose=False)
    _read_only(x_train, y_train, x_test, y_test)
    return (x_train, y_train), (x_test, y_test)


@pytest.fixture(scope="session")
def shipped_cnn():
    """The course CNN with the weights shipped in the package (never the user's cache)."""
    from cnn_helper import models

    return models.load("cnn", "shipped")


@pytest.fixture(scope="session")
def shipped_logistic():
    """The logistic-regression model with its shipped weights."""
    from cnn_helper import models

    return models.load("logistic", "shipped")


@pytest.fixture(scope="session")
def fashion_mnist():
    """Fashion-MNIST ``(x_train, y_train), (x_test, y_test)`` from Debian's package, loaded once
    (read-only). Skipped where the package is missing, except on CI (``CI=true``), where
    ``make test`` installs it: there a missing package is a failure."""
    from cnn_helper import data

    if not all((data.FASHION_DEBIAN_DIR / name).is_file() for name in data.FASHION_FILES):
        why = (f"Debian's {data.FASHION_DEBIAN_PACKAGE} is not installed (apt-get install "
               f"{data.FASHION_DEBIAN_PACKAGE}; `make debian-deps` does it as root)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why + " (CI=true: the test must run on CI)")
        pytest.skip(why)
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist("debian", verbose=False)
    _read_only(x_train, y_train, x_test, y_test)
    return (x_train, y_train), (x_test, y_test)
