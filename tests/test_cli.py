"""python -m cnn_helper: tour writes real figures, prints the accuracy; train writes weights + JSON.

Run in-process through ``cnn_helper.__main__.main`` (no second TensorFlow start-up).
"""
import json
import re
import zipfile

import matplotlib.image as mpimg
import pytest

from cnn_helper import data, models
from cnn_helper.__main__ import main


def test_tour_writes_figures_and_prints_the_accuracy(tmp_path, cnn_cache, capsys):
    out = tmp_path / "figs"
    assert main(["tour", "--out", str(out), "--data", "bundled"]) == 0
    printed = capsys.readouterr().out
    match = re.search(r"CNN test accuracy: (0\.\d+)", printed)
    assert match and float(match.group(1)) >= 0.97
    assert "1000 test images" in printed
    pngs = sorted(out.glob("*.png"))
    assert {p.stem for p in pngs} >= {"convolution_tools", "logistic_patterns",
                                      "first_layer_kernels", "conv1_maps_of_an_8"}
    for png in pngs:
        assert png.stat().st_size > 5000
        pixels = mpimg.imread(png)
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100
        assert pixels[..., :3].std() > 0.05             # not a blank image
        assert str(png) in printed
    assert not cnn_cache.exists() or not any(cnn_cache.iterdir())   # the tour trains nothing


def _saved_info(path):
    """The info.json inside a saved weights file."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("info.json"))


@pytest.fixture
def tiny_mnist(bundled, monkeypatch):
    """data.load returns 200 training and 100 test images, so training takes seconds."""
    (x_train, y_train), (x_test, y_test) = bundled
    asked = []

    def load(source="auto", verbose=True):
        asked.append(source)
        return data.MNIST((x_train[:200], y_train[:200]), (x_test[:100], y_test[:100]), "bundled")

    monkeypatch.setattr(data, "load", load)
    return asked


def test_train_writes_weights_and_json_to_the_cache(tiny_mnist, cnn_cache, capsys):
    assert main(["train", "--model", "cnn", "--epochs", "1", "--seed", "3",
                 "--data", "bundled"]) == 0
    assert tiny_mnist == ["bundled"]
    assert sorted(p.name for p in cnn_cache.iterdir()) == ["mnist_cnn.zip"]
    info = _saved_info(cnn_cache / "mnist_cnn.zip")
    assert info["data_source"] == "bundled" and info["seed"] == 3 and info["epochs"] == 1
    assert 0.0 <= info["test_accuracy"] <= 1.0 and info["n_train"] == 200 and info["n_test"] == 100
    assert "test accuracy" in capsys.readouterr().out
    # the cache now wins over the shipped weights, and the JSON's accuracy is the model's
    model, loaded = models.load_with_info("cnn")
    assert loaded["loaded_from"] == str(cnn_cache)
    (_, _), (x_test, y_test) = data.load_mnist()
    assert models.accuracy(model, x_test, y_test) == pytest.approx(info["test_accuracy"], abs=1e-4)


def test_train_cnn_blobs_writes_the_augmented_cnn(tiny_mnist, cnn_cache, capsys):
    """The CNN trained with blobs: its own file, its augmentation in the JSON, the CNN's layers."""
    assert main(["train", "--model", "cnn_blobs", "--epochs", "1", "--data", "bundled"]) == 0
    assert sorted(p.name for p in cnn_cache.iterdir()) == ["mnist_cnn_blobs.zip"]
    info = _saved_info(cnn_cache / "mnist_cnn_blobs.zip")
    assert info["model"] == "cnn_blobs" and info["epochs"] == 1 and info["n_train"] == 200
    assert info["augmentation"] == models.augmentation_of("cnn_blobs")
    printed = capsys.readouterr().out
    assert "trained cnn_blobs with blobs (each epoch 50% of the images get 1 to 3 bright squares " \
           "of side 2 to 6 px)" in printed
    model, loaded = models.load_with_info("cnn_blobs")
    assert loaded["loaded_from"] == str(cnn_cache)
    assert [layer.name for layer in model.layers] == \
        [layer.name for layer in models.build_cnn().layers]
    assert models.load_with_info("cnn")[1]["loaded_from"] == "shipped"   # the plain CNN's own


def test_train_to_a_folder(tiny_mnist, tmp_path, cnn_cache):
    out = tmp_path / "weights_here"
    assert main(["train", "--model", "logistic", "--epochs", "2", "--out", str(out)]) == 0
    info = _saved_info(out / "mnist_logistic.zip")
    assert info["model"] == "logistic" and info["epochs"] == 2 and info["seed"] == 0
    with zipfile.ZipFile(out / "mnist_logistic.zip") as archive:
        assert archive.getinfo("mnist_logistic.weights.h5").file_size > 0
    assert not cnn_cache.exists()


@pytest.mark.parametrize("argv", [[], ["dance"], ["tour", "--data", "imagenet"],
                                  ["train", "--model", "vgg"], ["train", "--epochs", "many"],
                                  ["train", "--model", "cnn_blob"],
                                  ["train", "--augment", "blobs"]])   # spelt --model cnn_blobs
def test_bad_command_lines_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "argument --epochs: 0 is too small: epochs must be at least 1"),
    (["train", "--model", "blobs"], "argument --model: invalid choice: 'blobs' (choose from "
                                    "'cnn', 'logistic', 'cnn_blobs')"),
    (["train", "--epochs", "-3"], "argument --epochs: -3 is too small"),
    (["train", "--epochs", "1.5"], "argument --epochs: '1.5' is not a whole number"),
    (["train", "--epochs", ""], "argument --epochs: '' is not a whole number"),
    (["train", "--seed", "-1"], "argument --seed: -1 is too small: seeds are ints >= 0"),
    (["train", "--seed", "abc"], "argument --seed: 'abc' is not a whole number"),
    (["train", "--out", ""], "argument --out: is empty"),
    (["tour", "--out", " "], "argument --out: is empty"),
    (["figures", "--out", ""], "argument --out: is empty"),
])
def test_bad_values_are_usage_errors_not_tracebacks(argv, message, tiny_mnist, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith("usage: python -m cnn_helper") and message in err
    assert tiny_mnist == []                                 # nothing was loaded or trained


@pytest.mark.parametrize("command", ["train", "tour", "figures"])
def test_out_that_is_a_file_is_a_usage_error(command, tmp_path, tiny_mnist, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    with pytest.raises(SystemExit) as exc:
        main([command, "--out", str(a_file)])
    assert exc.value.code == 2
    assert f"argument --out: {str(a_file)!r} is a file, not a folder" in capsys.readouterr().err
    assert a_file.read_text() == "keep me" and tiny_mnist == []


@pytest.mark.parametrize("command, what", [("train", "the trained weights"),
                                           ("tour", "the figures"), ("figures", "the images")])
def test_an_unwritable_out_folder_stops_before_any_work(command, what, tmp_path, tiny_mnist,
                                                        capsys):
    """A folder under a file cannot be created (root included): exit 2 naming it, nothing run."""
    out = tmp_path / "notes.txt" / "weights"
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit) as exc:
        main([command, "--out", str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "usage" in err
    assert f"cannot write {what} to {str(out)!r}: Not a directory" in err and "--out" in err
    assert tiny_mnist == []
