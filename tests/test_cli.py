"""python -m cnn_helper: tour writes real figures, prints the accuracy; train writes weights + JSON.

Run in-process through ``cnn_helper.__main__.main`` (no second TensorFlow start-up).
"""
import json
import re

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
    assert sorted(p.name for p in cnn_cache.iterdir()) == ["mnist_cnn.json", "mnist_cnn.weights.h5"]
    info = json.loads((cnn_cache / "mnist_cnn.json").read_text())
    assert info["data_source"] == "bundled" and info["seed"] == 3 and info["epochs"] == 1
    assert 0.0 <= info["test_accuracy"] <= 1.0 and info["n_train"] == 200 and info["n_test"] == 100
    assert "test accuracy" in capsys.readouterr().out
    # the cache now wins over the shipped weights, and the JSON's accuracy is the model's
    model, loaded = models.load_with_info("cnn")
    assert loaded["loaded_from"] == str(cnn_cache)
    (_, _), (x_test, y_test) = data.load_mnist()
    assert models.accuracy(model, x_test, y_test) == pytest.approx(info["test_accuracy"], abs=1e-4)


def test_train_to_a_folder(tiny_mnist, tmp_path, cnn_cache):
    out = tmp_path / "weights_here"
    assert main(["train", "--model", "logistic", "--epochs", "2", "--out", str(out)]) == 0
    info = json.loads((out / "mnist_logistic.json").read_text())
    assert info["model"] == "logistic" and info["epochs"] == 2 and info["seed"] == 0
    assert (out / "mnist_logistic.weights.h5").stat().st_size > 0
    assert not cnn_cache.exists()


@pytest.mark.parametrize("argv", [[], ["dance"], ["tour", "--data", "imagenet"],
                                  ["train", "--model", "vgg"], ["train", "--epochs", "many"]])
def test_bad_command_lines_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_train_rejects_zero_epochs(tiny_mnist):
    with pytest.raises(ValueError, match="epochs"):
        main(["train", "--epochs", "0"])
