"""python -m cnn_helper: tour writes real figures, prints the accuracy and none of TensorFlow's
start-up lines; train writes weights + JSON; explain writes a figure per image and an index.html,
and answers bad input with one line.

Run in-process through ``cnn_helper.__main__.main`` (no second TensorFlow start-up), except where
the terminal itself is tested (a fresh process: the tour, warnings and errors, --verbose).
"""
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from cnn_helper import data, models
from cnn_helper.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


# the native lines TensorFlow 2.21 writes to fd 2 while it is imported (TF_CPP_MIN_LOG_LEVEL does
# not stop them; with oneDNN on they come twice)
START_UP_LINES = ("All log messages before absl::InitializeLog()", "oneDNN custom operations",
                  "To enable the following instructions", "cpu_feature_guard")


def _start_up_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if any(s in line for s in START_UP_LINES)]


def _run(args, **env):
    """``python ARGS`` in a fresh process, oneDNN on (as on CPUs where TensorFlow enables it:
    then its start-up notice is printed), TF_CPP_MIN_LOG_LEVEL as a user's shell has it (unset)."""
    environ = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", **env)
    environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environ,
                          cwd=ROOT, timeout=600)


def test_tour_writes_figures_prints_the_accuracy_and_no_start_up_lines(tmp_path, cnn_cache):
    """The main job in a fresh process, as `make tour` runs it: its stderr holds none of
    TensorFlow's native start-up lines."""
    out = tmp_path / "figs"
    result = _run(["-m", "cnn_helper", "tour", "--out", str(out), "--data", "bundled"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert _start_up_lines(result.stderr) == [], result.stderr
    printed = result.stdout
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


def test_python_warnings_and_errors_still_reach_the_terminal():
    script = ("import warnings, cnn_helper\n"
              "import keras                   # through the package's use, TensorFlow loads\n"
              "warnings.warn('a real warning')\n"
              "raise RuntimeError('a real error')\n")
    result = _run(["-c", script])
    assert result.returncode == 1
    assert "UserWarning: a real warning" in result.stderr
    assert "Traceback" in result.stderr and "RuntimeError: a real error" in result.stderr
    assert _start_up_lines(result.stderr) == [], result.stderr


def test_cnn_helper_verbose_shows_the_start_up_lines():
    """CNN_HELPER_VERBOSE=1: TensorFlow's native start-up lines are printed (so the tests above,
    which find none, look where they would be)."""
    result = _run(["-c", "import cnn_helper, keras"], CNN_HELPER_VERBOSE="1")
    assert result.returncode == 0, result.stderr
    found = _start_up_lines(result.stderr)
    assert any("All log messages before absl::InitializeLog()" in line for line in found)
    assert any("oneDNN custom operations are on" in line for line in found), result.stderr


def test_verbose_option_asks_for_the_lines(monkeypatch, tmp_path, capsys):
    from cnn_helper import _quiet  # internal contract: what --verbose sets

    # setenv, not delenv: monkeypatch restores only what it recorded, and --verbose sets the
    # variable; left set, it made this worker's later fresh processes print TensorFlow's lines
    monkeypatch.setenv(_quiet.VERBOSE_VARIABLE, "")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    assert main(["explain", "course-cnn", "a.png", "--methods", "magic", "--verbose",
                 "--out", str(tmp_path)]) == 1
    assert os.environ[_quiet.VERBOSE_VARIABLE] == "1" and _quiet.verbose()
    assert "unknown method magic" in capsys.readouterr().err


def test_native_stderr_filter_keeps_real_lines(capfd):
    from cnn_helper import _quiet  # internal contract: the filter the package wraps around TF

    lines = ["WARNING: All log messages before absl::InitializeLog() is called are written to "
             "STDERR",
             "I0000 00:00:1796056201.327761   27184 port.cc:153] oneDNN custom operations are on. "
             "You may see slightly different numerical results.",
             "I0000 00:00:1796056201.721886   27184 cpu_feature_guard.cc:227] This TensorFlow "
             "binary is optimized to use available CPU instructions.",
             "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
             "TensorFlow with the appropriate compiler flags.",
             "E0000 00:00:1796056201.9 123 some_op.cc:12] a real native error"]
    with _quiet.native_stderr_filtered():  # internal contract
        os.write(2, ("\n".join(lines) + "\n").encode())
        print("a Python line on stderr", file=sys.stderr)
    err = capfd.readouterr().err          # (pytest's sys.stderr may bypass fd 2: any order)
    assert sorted(err.splitlines()) == ["E0000 00:00:1796056201.9 123 some_op.cc:12] a real "
                                        "native error", "a Python line on stderr"]


def _saved_info(path):
    """The info.json inside a saved weights file."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("info.json"))


@pytest.fixture
def tiny_mnist(bundled, monkeypatch):
    """data.load returns 200 training and 100 test images, so training takes seconds."""
    (x_train, y_train), (x_test, y_test) = bundled
    asked = []

    def load(source="auto", verbose=True, dataset="mnist", origin=None, timeout=None):
        asked.append(source)
        return data.MNIST((x_train[:200], y_train[:200]), (x_test[:100], y_test[:100]), "bundled",
                          dataset)

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
                                    "'cnn', 'logistic', 'cnn_blobs', 'fashion_cnn', "
                                    "'cnn_random_labels')"),
    (["train", "--model", "fashion_cnn", "--data", "bundled"],
     "--data-source bundled: model fashion_cnn is trained on fashion_mnist, whose sources are "
     "auto, debian, keras, download"),
    (["train", "--data", "debian"],
     "--data-source debian: model cnn is trained on mnist, whose sources are auto, keras, "
     "download, bundled"),
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


# --------------------------------------------------------------------------- explain


@pytest.fixture(scope="module")
def digit_files(bundled, tmp_path_factory):
    """Test digits as image files: #0 (a 2) as a 28x28 grey PNG; #1 (a 0) enlarged to 84x84 in
    RGB; and the same 0 dark on light, as a digit written on paper (for --invert)."""
    from PIL import Image

    (_, _), (x_test, y_test) = bundled
    assert (y_test[0], y_test[1]) == (2, 0)
    folder = tmp_path_factory.mktemp("digits")
    files = {"two.png": x_test[0, ..., 0], "zero.png": np.kron(x_test[1, ..., 0], np.ones((3, 3))),
             "zero_on_paper.png": 1 - np.kron(x_test[1, ..., 0], np.ones((3, 3)))}
    for name, pixels in files.items():
        image = Image.fromarray((pixels * 255).round().astype("uint8"))
        image.save(folder / name) if name == "two.png" else image.convert("RGB").save(folder / name)
    return {name: folder / name for name in files}


@pytest.fixture(scope="module")
def saved_cnn(shipped_cnn, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "my_cnn.keras"
    shipped_cnn.save(path)
    return path


def test_explain_writes_a_figure_per_image_and_an_index(saved_cnn, digit_files, tmp_path, capsys):
    out = tmp_path / "explained"
    two, zero = digit_files["two.png"], digit_files["zero.png"]
    assert main(["explain", str(saved_cnn), str(two), str(zero), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{two}: predicted 2 " in printed and f"{zero}: predicted 0 " in printed
    figures = sorted(out.glob("*.png"))
    assert [f.name for f in figures] == ["two_explained.png", "zero_explained.png"]
    for png in figures:
        pixels = mpimg.imread(png)
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 150
        assert pixels[..., :3].std() > 0.05                 # not a blank image
    index = (out / "index.html").read_text()
    for name in ("two", "zero"):
        assert f'<h2>{name}.png</h2>' in index and f'src="{name}_explained.png"' in index
    assert "gradient, guided_backprop, grad_cam, occlusion" in index     # the default methods


def test_explain_input_rule_and_maps(shipped_cnn, digit_files, bundled, tmp_path):
    """The rule: the 84x84 RGB 0 becomes the MNIST input of its pixels; dark on light with
    --invert gives the same input; each map is the package function's on that input."""
    from cnn_helper import cli_explain, drawing, occlusion, saliency

    (_, _), (x_test, _) = bundled
    light, = cli_explain.explain("course-cnn", [digit_files["zero.png"]], tmp_path / "a",
                                 methods="gradient,occlusion")
    paper, = cli_explain.explain("course-cnn", [digit_files["zero_on_paper.png"]], tmp_path / "b",
                                 methods="gradient", invert=True)
    expected = drawing.mnist_input(np.kron(x_test[1, ..., 0], np.ones((3, 3))))
    np.testing.assert_allclose(light.x, expected, atol=0.02)     # 8-bit PNG, bilinear steps
    np.testing.assert_allclose(paper.x, light.x, atol=1e-6)
    assert light.target == 0 == int(np.argmax(light.probabilities))
    np.testing.assert_allclose(light.maps["gradient"], saliency.gradient(shipped_cnn, light.x, 0),
                               atol=1e-6)
    reference = occlusion.sensitivity_map(shipped_cnn, light.x, 0, patch=4, stride=1)
    np.testing.assert_allclose(light.maps["occlusion"].delta, reference.delta, atol=1e-5)
    assert cli_explain.occlusion_geometry((224, 224, 3)) == (32, 8)


@pytest.mark.parametrize("args, message", [
    (["course-cnn", "{broken}"], "cannot read image '{broken}': not a readable PNG or JPEG"),
    (["course-cnn", "{missing}"], "cannot read image '{missing}': no such file"),
    (["{dense}", "{two}"], "has input shape (784,): explain needs an image input"),
    (["course-cnn", "{two}", "--target", "10"], "--target 10 is out of range: the model has 10 "
                                                "classes, 0..9"),
    (["course-cnn", "{two}", "--target", "seven"], "--target 'seven' is not a class index"),
    (["course-cnn", "{two}", "--methods", "gradient,magic"], "unknown method magic; choose among "
                                                             "gradient, gradient_x_input, "
                                                             "guided_backprop"),
    (["{two}", "{two}"], "cannot load model '{two}' (a .keras file saved by model.save)"),
])
def test_explain_bad_input_is_one_line_not_a_traceback(args, message, digit_files, tmp_path,
                                                       capsys):
    import keras

    dense = tmp_path / "dense.keras"
    keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)]).save(dense)
    (tmp_path / "broken.png").write_text("not an image")
    names = {"broken": tmp_path / "broken.png", "missing": tmp_path / "missing.png",
             "dense": dense, "two": digit_files["two.png"]}
    argv = [a.format(**names) for a in args]
    assert main(["explain", *argv, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cnn-helper explain: error: "), err
    assert message.format(**names) in err and "Traceback" not in err
    assert not any((tmp_path / "out").glob("*.png"))


def test_explain_an_rgb_model_that_rescales_itself(tmp_path):
    """A practitioner's model: RGB 32x32 with its own Rescaling(1/255) front, a wide JPEG photo.
    auto rules: the centred square crop, resized; pixels kept 0..255 (the model scales them)."""
    import keras
    from PIL import Image

    from cnn_helper import cli_explain, saliency

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "rgb.keras")
    photo = np.zeros((40, 80, 3), np.uint8)
    photo[:, 20:60] = [200, 30, 90]                   # the centred 40x40 square is all this colour
    Image.fromarray(photo).save(tmp_path / "wide.jpg", quality=100)
    e, = cli_explain.explain(str(tmp_path / "rgb.keras"), [tmp_path / "wide.jpg"], tmp_path / "o",
                             methods="gradient,grad_cam,occlusion", target="1")
    assert e.x.shape == (32, 32, 3) and e.target == 1
    np.testing.assert_allclose(e.x.reshape(-1, 3).mean(axis=0), [200, 30, 90], atol=3)  # 0..255
    np.testing.assert_allclose(e.maps["gradient"], saliency.gradient(model, e.x, 1), atol=1e-6)
    assert e.maps["occlusion"].patch == (5, 5) and e.maps["occlusion"].stride == (1, 1)
    assert e.figure.exists()
