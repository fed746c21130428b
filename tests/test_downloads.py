"""Real data of real size: MNIST downloaded through Keras' get_file from a local HTTP server,
"auto" falling back within its bounded wait, and Fashion-MNIST from Debian's package (IDX files),
the Keras cache or a download."""
import gzip
import http.server
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cnn_helper import data


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving the folder ``served``; (origin URL, folder, requests)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests = []

    class Handler(_Quiet):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/datasets/", folder, requests
    httpd.shutdown()
    httpd.server_close()


def _mnist_npz(path: Path, n_train=50, n_test=20, seed=0) -> dict:
    """A small mnist.npz with Keras' keys and dtypes."""
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def _idx_bytes(values: np.ndarray) -> bytes:
    """IDX by hand: 0, 0, type 0x08, number of dimensions, big-endian sizes, the bytes."""
    header = bytes([0, 0, 8, values.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in values.shape)
    return header + values.astype(np.uint8).tobytes()


def _fashion_files(folder: Path, n_train=40, n_test=10, seed=1) -> dict:
    """Fashion-MNIST's four gzipped IDX files, small, in ``folder``."""
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, values in arrays.items():
        (folder / name).write_bytes(gzip.compress(_idx_bytes(values)))
    return arrays


# --------------------------------------------------------------------------- MNIST downloads


@pytest.mark.parametrize("source", ["auto", "download"])
def test_mnist_is_downloaded_into_the_keras_cache(server, source, capsys):
    origin, folder, requests = server
    arrays = _mnist_npz(folder / "datasets" / "mnist.npz")
    mnist = data.load(source, origin=origin)
    assert mnist.source == "download" and requests == ["/datasets/mnist.npz"]
    assert f"a download from {origin}" in capsys.readouterr().out
    np.testing.assert_allclose(mnist.train[0][..., 0], arrays["x_train"] / 255.0, rtol=1e-6)
    assert np.array_equal(mnist.test[1], arrays["y_test"]) and mnist.test[1].dtype == np.int64
    cached = data.keras_cache_path()
    assert cached.is_file()                        # installed where Keras keeps it
    assert [p.name for p in cached.parent.iterdir()] == ["mnist.npz"]   # no temporary left
    again = data.load("auto", verbose=False, origin=origin)
    assert again.source == "keras" and len(requests) == 1     # read from disk, not fetched twice


def test_the_origin_comes_from_the_environment(server, monkeypatch):
    origin, folder, requests = server
    _mnist_npz(folder / "datasets" / "mnist.npz", n_train=7)
    monkeypatch.setenv(data.ORIGIN_VARIABLE, origin)
    (x_train, _), _ = data.load_mnist("download", verbose=False)
    assert len(x_train) == 7 and requests == ["/datasets/mnist.npz"]


def test_a_damaged_download_is_not_installed(server):
    origin, folder, _ = server
    (folder / "datasets").mkdir()
    (folder / "datasets" / "mnist.npz").write_bytes(b"not an npz file")
    with pytest.raises(ConnectionError, match="unreadable"):
        data.load("download", verbose=False, origin=origin)
    assert not data.keras_cache_path().exists()
    assert data.load("auto", verbose=False, origin=origin).source == "bundled"
    assert not data.keras_cache_path().exists()


def test_a_download_its_reader_rejects_leaves_the_folder_as_it_was(server, tmp_path):
    """The download lands under a temporary name beside its destination; rejected by ``read``,
    it is never installed: the file already there stays, and no temporary is left."""
    origin, folder, _ = server
    (folder / "datasets").mkdir()
    (folder / "datasets" / "mnist.npz").write_bytes(b"not an npz file")
    destination = tmp_path / "cache" / "mnist.npz"
    destination.parent.mkdir()
    destination.write_bytes(b"the file already there")
    seen = []

    def reject(path):
        seen.append((path.read_bytes(), path.parent.parent))
        raise ValueError("unreadable")

    with pytest.raises(ValueError, match="unreadable"):
        data.download("mnist.npz", destination, origin, reject)
    assert seen == [(b"not an npz file", destination.parent)]      # read beside it, once
    assert destination.read_bytes() == b"the file already there"
    assert [p.name for p in destination.parent.iterdir()] == ["mnist.npz"]


def test_a_missing_file_on_the_server_falls_back_and_says_why(server, capsys):
    origin, _, requests = server
    mnist = data.load("auto", origin=origin)
    assert mnist.source == "bundled" and requests == ["/datasets/mnist.npz"]
    out = capsys.readouterr().out
    assert "bundled subset" in out and "404" in out and not data.keras_cache_path().exists()
    with pytest.raises(ConnectionError, match="bundled"):
        data.load("download", verbose=False, origin=origin)


@pytest.fixture
def silent_origin():
    """A port that accepts connections (the kernel's backlog) but never answers a request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    listener.close()


def test_offline_auto_falls_back_within_the_bounded_wait(silent_origin, capsys):
    start = time.perf_counter()
    mnist = data.load("auto", origin=silent_origin, timeout=1.0)
    assert time.perf_counter() - start < 8             # 1 s per read, not the OS's minutes
    assert mnist.source == "bundled" and len(mnist.train[0]) == 4000
    assert "timed out" in capsys.readouterr().out
    assert not data.keras_cache_path().exists()


def test_a_refused_origin_is_asked_once_per_process(monkeypatch):
    origin = "http://127.0.0.1:9/once/"                # nothing listens on port 9
    assert data.origin_silence(origin, 1.0) is not None
    attempts = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: attempts.append(a))
    assert data.load("auto", verbose=False, origin=origin).source == "bundled"
    assert attempts == []


def test_a_hanging_name_lookup_is_bounded(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(3)
        raise OSError("answered too late")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.perf_counter()
    why = data.origin_silence("http://never-answers.invalid/", timeout=0.5)
    assert time.perf_counter() - start < 3 and "no answer within 0.5 s" in why


@pytest.mark.parametrize("origin, timeout, match", [
    ("ftp://example.org/", 5, "http"), ("not a url", 5, "http"),
    ("http://127.0.0.1:9/", 0, "timeout"), ("http://127.0.0.1:9/", "5", "timeout")])
def test_bad_origin_or_timeout(origin, timeout, match):
    with pytest.raises(ValueError, match=match):
        data.load("download", verbose=False, origin=origin, timeout=timeout)


# --------------------------------------------------------------------------- Fashion-MNIST


def test_read_idx_by_hand(tmp_path):
    values = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(_idx_bytes(values))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(_idx_bytes(values)))
    for name in ("a.idx", "a.idx.gz"):
        read = data.read_idx(tmp_path / name)
        assert read.dtype == np.uint8 and np.array_equal(read, values)
    (tmp_path / "short.idx").write_bytes(_idx_bytes(values)[:-1])
    with pytest.raises(ValueError, match="short.idx.*header says"):
        data.read_idx(tmp_path / "short.idx")
    (tmp_path / "npz.idx").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX header"):
        data.read_idx(tmp_path / "npz.idx")


def test_fashion_mnist_from_debians_package(fashion_mnist, capsys):
    (x_train, y_train), (x_test, y_test) = fashion_mnist
    data.load_fashion_mnist()
    assert "dataset-fashion-mnist" in capsys.readouterr().out
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.float32 and x_train.min() == 0.0 and x_train.max() == 1.0
    assert np.array_equal(np.bincount(y_train), [6000] * 10)
    assert np.array_equal(np.bincount(y_test), [1000] * 10)
    # the published first labels: train starts Ankle boot, T-shirt, T-shirt, Dress, T-shirt
    assert list(y_train[:5]) == [9, 0, 0, 3, 0] and data.FASHION_CLASSES[y_test[0]] == "Ankle boot"


def test_fashion_mnist_from_the_keras_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", tmp_path / "not_installed")
    arrays = _fashion_files(data.fashion_cache_dir())
    found = data.load("auto", verbose=False, dataset="fashion_mnist")
    assert found.source == "keras" and found.name == "fashion_mnist"
    np.testing.assert_allclose(found.train[0][..., 0],
                               arrays["train-images-idx3-ubyte.gz"] / 255.0, rtol=1e-6)
    assert np.array_equal(found.test[1], arrays["t10k-labels-idx1-ubyte.gz"])


def test_fashion_mnist_download(monkeypatch, tmp_path, server):
    origin, folder, requests = server
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", tmp_path / "not_installed")
    arrays = _fashion_files(folder / "datasets")
    (x_train, y_train), (x_test, _) = data.load_fashion_mnist(verbose=False, origin=origin)
    assert sorted(requests) == sorted(f"/datasets/{name}" for name in data.FASHION_FILES)
    assert x_train.shape == (40, 28, 28, 1) and x_test.shape == (10, 28, 28, 1)
    assert np.array_equal(y_train, arrays["train-labels-idx1-ubyte.gz"])
    assert sorted(p.name for p in data.fashion_cache_dir().iterdir()) == sorted(data.FASHION_FILES)


def test_no_fashion_mnist_anywhere_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", tmp_path / "not_installed")
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        data.load_fashion_mnist(verbose=False)           # the tests' origin refuses at once
    assert "the download failed" in str(err.value) and time.perf_counter() - start < 5
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        data.load_fashion_mnist("debian", verbose=False)


def test_fashion_sources_and_datasets_are_checked():
    with pytest.raises(ValueError, match="fashion_mnist source 'bundled'"):
        data.load_fashion_mnist("bundled")
    with pytest.raises(ValueError, match="dataset 'cifar10'"):
        data.load("auto", dataset="cifar10")
