"""python -m cnn_helper --data-source SOURCE where the source cannot give the data (no Keras
cache, the origin silent, a damaged file): one line on stderr with advice in the command line's
words (``--data-source bundled``), exit status 1, never a traceback; the Python API keeps its own
words (``data_source='bundled'``).

Every test runs with ``KERAS_HOME`` at an empty folder and the download origin at a closed port
(tests/conftest.py). Run in-process through ``main`` (an exception would fail the test, as a
traceback would reach the user), and once in a fresh process, as the user types it.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_helper import data
from cnn_helper.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def _one_error_line(err: str, command: str) -> str:
    """The one line the command printed on stderr: no traceback, no Python advice."""
    assert "Traceback" not in err and "source=" not in err, err
    assert err.count("\n") == 1 and err.startswith(f"cnn-helper {command}: error: "), err
    return err


def test_train_without_the_keras_cache_in_a_fresh_process(tmp_path):
    environ = dict(os.environ, KERAS_HOME=str(tmp_path / "empty_keras_home"),
                   CNN_HELPER_DATA_ORIGIN="http://127.0.0.1:9/")
    result = subprocess.run([sys.executable, "-m", "cnn_helper", "train", "--data-source",
                             "keras", "--out", str(tmp_path / "weights")], capture_output=True,
                            text=True, env=environ, cwd=ROOT, timeout=600)
    assert result.returncode == 1
    err = _one_error_line(result.stderr, "train")
    assert "MNIST source 'keras' needs the Keras cache file" in err
    assert "--data-source download, --data-source bundled or --data-source auto" in err


KERAS_ADVICE = ("(set KERAS_HOME, or use --data-source download, --data-source bundled or "
                "--data-source auto)")


@pytest.mark.parametrize("argv, advice", [
    (["train", "--data-source", "keras"], KERAS_ADVICE),
    (["tour", "--data-source", "keras"], KERAS_ADVICE),
    (["tour", "--data", "keras"], KERAS_ADVICE),                     # --data: the short spelling
    (["train", "--data-source", "download"], "did not answer (ConnectionRefusedError"),
    (["tour", "--data-source", "download"],
     "Use --data-source bundled for the 5,000 digits shipped with the package"),
    (["train", "--model", "fashion_cnn", "--data-source", "keras"],
     "; or use --data-source download"),
    (["train", "--model", "fashion_cnn", "--data-source", "download"],
     "the download failed: http://127.0.0.1:9/ did not answer"),
])
def test_a_source_that_cannot_give_the_data_is_one_line(argv, advice, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    assert advice in _one_error_line(capsys.readouterr().err, argv[0])
    assert not (tmp_path / "out" / "mnist_cnn.zip").exists()


@pytest.mark.parametrize("command", ["train", "tour"])
def test_a_damaged_keras_cache_is_one_line(command, tmp_path, capsys):
    data.keras_cache_path().parent.mkdir(parents=True)
    data.keras_cache_path().write_bytes(b"not an npz file")
    assert main([command, "--data-source", "keras", "--out", str(tmp_path / "out")]) == 1
    err = _one_error_line(capsys.readouterr().err, command)
    assert f"MNIST cache file {data.keras_cache_path()} is unreadable" in err
    assert "delete it or use --data-source bundled" in err


@pytest.mark.parametrize("command", ["train", "tour"])
def test_an_origin_that_is_no_url_is_a_usage_error(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(data.ORIGIN_VARIABLE, "ftp://example.org/mnist")
    with pytest.raises(SystemExit) as exc:
        main([command, "--data-source", "download", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: python -m cnn_helper")
    assert ("--data-source download would download from $CNN_HELPER_DATA_ORIGIN: origin "
            "'ftp://example.org/mnist' is not an http(s) folder URL") in err


def test_the_python_api_keeps_its_own_advice():
    with pytest.raises(FileNotFoundError, match="use data_source='download' / 'bundled' / 'auto'"):
        data.load("keras", verbose=False)
    with pytest.raises(ConnectionError, match="Use data_source='bundled'"):
        data.load("download", verbose=False)
