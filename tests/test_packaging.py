"""Installing where users are (issue 29). setup.cfg lists no TensorFlow distribution: tensorflow,
tensorflow-cpu and tensorflow[and-cuda] all install the module ``tensorflow``, and pip, asked for
one where another is installed, installs it over the first (a GPU machine or Colab loses its GPU
build). So installing the package into an environment that has TensorFlow adds nothing but
cnn_helper, the extras bring TensorFlow where there is none, a built wheel (not the editable
install of the clone) carries every file the package reads and works in a fresh venv, and
without TensorFlow ``import cnn_helper`` says what to install.

Everything runs offline: the wheel is built without build isolation, pip resolves with
``--no-index``, and the fresh venvs see the test venv's packages through a ``.pth`` file."""
import configparser
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])      # the test venv's
TENSORFLOWS = {"tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel",
               "tensorflow-macos", "tensorflow-aarch64", "tf-nightly", "tf-nightly-cpu"}
PLATFORMS = {                     # (sys_platform, platform_machine): the cpu extra's TensorFlow
    ("linux", "x86_64"): "tensorflow-cpu", ("win32", "AMD64"): "tensorflow-cpu",
    ("darwin", "arm64"): "tensorflow", ("darwin", "x86_64"): "tensorflow",
    ("linux", "aarch64"): "tensorflow"}


def _run(*args, **options):
    """Run a command, failing the test with its output when it fails."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **options)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A copy of what the wheel is built from (setup.cfg, pyproject.toml, README.md, cnn_helper/):
    the build writes its build/ and egg-info there, not into the clone."""
    folder = tmp_path_factory.mktemp("source")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, folder / name)
    shutil.copytree(ROOT / "cnn_helper", folder / "cnn_helper",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return folder


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    """The package's wheel, built offline with the test venv's setuptools."""
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", out, source)
    [built] = out.glob("cnn_helper-*.whl")
    return built


def requirements(wheel: Path) -> list:
    """The wheel's Requires-Dist entries, as ``Requirement``s."""
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(name).decode()
    return [Requirement(line.split(":", 1)[1].strip()) for line in metadata.splitlines()
            if line.startswith("Requires-Dist:")]


def brought(wheel: Path, extras: tuple, platform=("linux", "x86_64")) -> set:
    """The distributions installing ``wheel[extras]`` asks for on ``platform``."""
    environment = {"sys_platform": platform[0], "platform_machine": platform[1]}
    return {r.name for r in requirements(wheel) if r.marker is None or any(
        r.marker.evaluate({**environment, "extra": extra}) for extra in extras or ("",))}


def tensorflow_venv(folder: Path, distribution: str) -> Path:
    """A fresh venv (its python) whose dependencies are the test venv's, seen through a ``.pth``
    file (after the venv's own site-packages), with TensorFlow installed under the name
    ``distribution`` (``tensorflow``: as on a GPU machine or Colab) and no cnn_helper."""
    view = folder / "site-packages-view"
    view.mkdir()
    for entry in SITE_PACKAGES.iterdir():
        if not entry.name.lower().startswith(("cnn_helper", "__editable__", "tensorflow_cpu-",
                                               "tensorflow-")):
            (view / entry.name).symlink_to(entry)
    [metadata] = SITE_PACKAGES.glob("tensorflow_cpu-*.dist-info/METADATA")
    version = metadata.parent.name.removesuffix(".dist-info").split("-")[1]
    renamed = view / f"{distribution.replace('-', '_')}-{version}.dist-info"
    renamed.mkdir()
    (renamed / "METADATA").write_text(metadata.read_text().replace(
        "Name: tensorflow-cpu", f"Name: {distribution}").replace(
        "Name: tensorflow_cpu", f"Name: {distribution}"))
    venv = folder / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    own = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    (Path(own.stdout.strip()) / "test_venv_packages.pth").write_text(f"{view}\n")
    return python


def test_the_package_requires_no_tensorflow_distribution(wheel):
    """Without an extra, nothing that installs the module ``tensorflow`` is asked for; Keras 3 is,
    with no cap on TensorFlow anywhere."""
    assert not brought(wheel, ()) & TENSORFLOWS
    keras = [r for r in requirements(wheel) if r.name == "keras"]
    assert keras and keras[0].marker is None and not keras[0].specifier.contains("2.15.0")
    capped = [str(r) for r in requirements(wheel) if r.name in TENSORFLOWS
              and any(s.operator in ("<", "<=", "==", "~=") for s in r.specifier)]
    assert not capped


@pytest.mark.parametrize("platform, expected", PLATFORMS.items(), ids=lambda p: str(p))
def test_the_cpu_extra_brings_one_cpu_tensorflow_per_platform(wheel, platform, expected):
    """tensorflow-cpu has wheels for Linux x86_64 and Windows only; elsewhere the plain
    tensorflow is the CPU build."""
    assert brought(wheel, ("cpu",), platform) & TENSORFLOWS == {expected}
    assert brought(wheel, ("gpu",), platform) & TENSORFLOWS == {"tensorflow"}


@pytest.mark.parametrize("distribution", ["tensorflow", "tensorflow-cpu"])
def test_installing_where_tensorflow_is_adds_no_second_one(wheel, tmp_path, distribution):
    """pip's plan for ``wheel[ray]`` in an environment with TensorFlow (as ``distribution``):
    cnn_helper alone. Before issue 29 pip wanted tensorflow-cpu beside ``tensorflow``."""
    python = tensorflow_venv(tmp_path, distribution)
    report = tmp_path / "report.json"
    _run(python, "-m", "pip", "install", "--quiet", "--dry-run", "--no-index", "--find-links",
         wheel.parent, "--report", report, f"{wheel}[ray]", cwd=tmp_path)
    planned = [canonicalize_name(item["metadata"]["name"])
               for item in json.loads(report.read_text())["install"]]
    assert planned == ["cnn-helper"]


SMOKE = """
import json, sys
from pathlib import Path
import numpy as np
import cnn_helper
from cnn_helper import Feature, saliency
package = Path(cnn_helper.__file__).parent
model = cnn_helper.CNN_Helper().model()
x = np.zeros((1, 28, 28, 1), np.float32)
x[0, 6:22, 13:15] = 1.0                                     # a stroke: a 1
grad = saliency.gradient(model, x, Feature("logits", 1))
print(json.dumps({"package": str(package), "prefix": sys.prefix,
                  "files": sorted(str(p.relative_to(package)) for p in package.rglob("*")
                                  if p.is_file() and "__pycache__" not in p.parts),
                  "probabilities": model.predict(x, verbose=0)[0].tolist(),
                  "gradient": [list(np.shape(grad)), float(np.abs(grad).max())]}))
"""


def test_a_built_wheel_works_in_a_fresh_venv(wheel, source, tmp_path):
    """The wheel installed with --no-deps into a fresh venv (dependencies from the test venv):
    the package comes from the venv, not the clone; every file of the package is there (shipped
    weights, the widgets' JavaScript); the course CNN predicts, a saliency map is computed; and
    the console script explains a PNG."""
    from PIL import Image

    python = tensorflow_venv(tmp_path, "tensorflow")
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    environ = {**os.environ, "MPLBACKEND": "Agg"}
    environ.pop("PYTHONPATH", None)
    found = json.loads(_run(python, "-c", SMOKE, cwd=tmp_path, env=environ).stdout.splitlines()[-1])
    assert Path(found["package"]).is_relative_to(found["prefix"])
    assert not Path(found["package"]).is_relative_to(ROOT)
    shipped = sorted(str(p.relative_to(source / "cnn_helper"))
                     for p in (source / "cnn_helper").rglob("*") if p.is_file())
    assert sorted(set(shipped) - set(found["files"])) == []
    assert any(f.startswith("trained/") and f.endswith(".weights.h5") for f in found["files"])
    assert abs(sum(found["probabilities"]) - 1) < 1e-4
    assert found["gradient"][0] == [1, 28, 28, 1] and found["gradient"][1] > 0
    digit = Image.new("L", (56, 56), 255)
    digit.paste(0, (26, 10, 31, 46))                                # a dark 1 on white paper
    digit.save(tmp_path / "one.png")
    out = tmp_path / "explained"
    _run(python.parent / "cnn-helper", "explain", "course-cnn", tmp_path / "one.png", "--invert",
         "--methods", "gradient,grad_cam", "--out", out, cwd=tmp_path, env=environ)
    assert (out / "index.html").is_file() and list(out.glob("one*.png"))


CHECK = """
import importlib.metadata, sys
{prelude}
try:
    import cnn_helper
except ImportError as error:
    print(error)
else:
    print("imported", "tensorflow" in sys.modules)
"""


def _import_says(prelude: str) -> str:
    """What ``import cnn_helper`` says (its ImportError's message) after ``prelude``, in a fresh
    Python of the test venv."""
    return _run(sys.executable, "-c", CHECK.format(prelude=prelude), cwd=ROOT).stdout


def _versions(**versions) -> str:
    """A prelude that makes importlib.metadata report these versions (tensorflow_cpu=...)."""
    fake = {name.replace("_", "-"): version for name, version in versions.items()}
    return (f"fake, real = {fake!r}, importlib.metadata.version\n"
            "importlib.metadata.version = lambda name: fake.get(name) or real(name)")


def floors() -> tuple:
    """(TensorFlow, Keras) floors, as setup.cfg writes them."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    keras = [Requirement(r) for r in config["options"]["install_requires"].split("\n") if r]
    cpu = [Requirement(r) for r in config["options.extras_require"]["cpu"].split("\n") if r]
    lowest = {next(s.version for s in r.specifier if s.operator == ">=") for r in cpu}
    [keras_floor] = [s.version for r in keras if r.name == "keras"
                     for s in r.specifier if s.operator == ">="]
    [tensorflow_floor] = lowest
    return tensorflow_floor, keras_floor


def test_importing_checks_without_loading_tensorflow():
    assert _import_says("").strip() == "imported False"


def test_without_tensorflow_the_import_error_says_what_to_install():
    said = _import_says("sys.modules['tensorflow'] = None         # not importable")
    assert f"TensorFlow {floors()[0]} or newer" in said
    for command in ('pip install -e ".[cpu]"', 'pip install -e ".[gpu]"', "pip install tensorflow"):
        assert command in said, said


def test_an_old_tensorflow_or_keras_2_is_named_with_its_version():
    tensorflow_floor, keras_floor = floors()
    said = _import_says(_versions(tensorflow_cpu="2.15.1"))
    assert "tensorflow-cpu 2.15.1" in said and f'"tensorflow-cpu>={tensorflow_floor}"' in said
    said = _import_says(_versions(keras="2.15.0"))
    assert "keras 2.15.0" in said and "Keras 2" in said and f"keras>={keras_floor}" in said
    said = _import_says(_versions(keras="3.0.5"))
    assert "keras 3.0.5" in said and f"keras>={keras_floor}" in said
    said = _import_says("sys.modules['keras'] = None")
    assert "has none" in said and f"keras>={keras_floor}" in said
