"""Downloads for the data sets (private; ``cnn_helper.data`` uses it and re-exports its public
names): the origin to download from, a bounded check that it answers, and a download installed
atomically.

The origin is ``KERAS_ORIGIN``, or ``$CNN_HELPER_DATA_ORIGIN``, or an ``origin`` argument. Before
downloading, one connection to its host must succeed within ``timeout`` seconds (the name lookup
included, in a daemon thread), and every read waits at most ``timeout`` seconds: offline, nothing
hangs. An origin that did not answer is not asked again in the same process.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import urllib.parse
from pathlib import Path

from . import _files

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
ORIGIN_VARIABLE = "CNN_HELPER_DATA_ORIGIN"
TIMEOUT = 5.0

_SILENT_ORIGINS = {}
"""Origins that did not answer in this process, with why: "auto" does not wait for them again."""


def data_origin(origin=None) -> str:
    """The folder URL downloads come from: ``origin``, else ``$CNN_HELPER_DATA_ORIGIN``, else
    ``KERAS_ORIGIN``; always ending in "/"."""
    origin = origin or os.environ.get(ORIGIN_VARIABLE) or KERAS_ORIGIN
    parts = urllib.parse.urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"origin {origin!r} is not an http(s) folder URL, e.g. {KERAS_ORIGIN!r}")
    return origin if origin.endswith("/") else origin + "/"


def check_timeout(timeout) -> float:
    """``timeout`` as float seconds; a ValueError unless it is a number > 0."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    return float(timeout)


def origin_silence(origin: str, timeout: float = TIMEOUT):
    """None when ``origin``'s host accepts a connection within ``timeout`` seconds, else why not.

    The name lookup and the connection run in a daemon thread that is given ``timeout`` seconds:
    a lookup that hangs offline does not hold up the caller. A silent origin is remembered."""
    if origin in _SILENT_ORIGINS:
        return _SILENT_ORIGINS[origin]
    parts = urllib.parse.urlsplit(origin)
    address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    outcome = []

    def connect():
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(f"{type(e).__name__}: {e}")

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout)
    why = outcome[0] if outcome else f"no answer within {timeout:g} s"
    if why is not None:
        _SILENT_ORIGINS[origin] = why
    return why


@contextlib.contextmanager
def reads_wait_at_most(seconds: float):
    """Every socket read or connect made inside waits at most ``seconds`` (Keras' downloader,
    urllib's ``urlretrieve``, takes no timeout of its own)."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def download(name: str, destination: Path, origin: str, read, file_hash=None,
             timeout: float = TIMEOUT):
    """Download ``origin + name`` with Keras' ``get_file`` and install it as ``destination``.

    The file lands under a temporary name beside ``destination`` (``_files.atomic_write``);
    ``read(path)`` must accept it (it raises ValueError otherwise, and nothing is installed);
    then it is flushed to disk and one ``os.replace`` puts it in place. Returns what ``read``
    returned. Raises OSError when the download fails.
    """
    import keras

    destination.parent.mkdir(parents=True, exist_ok=True)
    with _files.atomic_write(destination) as temporary:
        try:
            with reads_wait_at_most(timeout):
                keras.utils.get_file(temporary.name, origin=origin + name,
                                     cache_dir=temporary.parent, cache_subdir=".",
                                     file_hash=file_hash)
        except Exception as e:       # get_file wraps URL errors in a plain Exception
            raise OSError(f"downloading {origin + name} failed: {e}") from e
        contents = read(temporary)
    return contents


def fetch_when_answering(what: str, origin, timeout, fetch):
    """``fetch(origin)`` once the origin answers; (contents, None) or (None, why it failed)."""
    origin = data_origin(origin)
    why = origin_silence(origin, timeout)
    if why is not None:
        return None, f"{origin} did not answer ({why})"
    try:
        return fetch(origin), None
    except (OSError, ValueError) as e:
        return None, f"{what} could not be downloaded: {e}"
