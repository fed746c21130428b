"""The store of trained weights: which course models have them, where their files are, what the
files hold, and how they are written and read safely, even by two processes at once.

Two folders hold weights: the package's own (``SHIPPED_DIR``, ``cnn_helper/trained/``) and the
user cache (``cache_dir()``), where ``models.train`` writes retrained ones. ``models`` chooses
between them (``models.load_with_info``); this module reads and writes one folder.

One trained model is ONE file, ``mnist_<name>.zip``: ``info.json`` (how it was trained, and the
SHA-256 of the weights) and ``mnist_<name>.weights.h5`` (Keras weights). ``save`` writes it with
``_files.atomic_write``: under a temporary name, then renamed over the old file in one atomic
step, so a reader finds the old file or the new one, never half of one or a mismatched pair.
A reader reads the file once, into memory, so a save during a load cannot change what it reads;
and reading never writes, renames or deletes anything.

The older two-file layout (``mnist_<name>.weights.h5`` + ``mnist_<name>.json``, still used by the
shipped weights) is read when no ``.zip`` exists; ``save`` never touches it.

Example
-------
>>> path = save(model, "cnn", {"data_source": "bundled", "seed": 0, "epochs": 1,
...                            "test_accuracy": 0.9}, "my_weights")   # my_weights/mnist_cnn.zip
>>> model, info = read("cnn", "my_weights", build_cnn)               # the weights, checked
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

from . import _checks, _files

MODELS = ("cnn", "logistic", "cnn_blobs", "fashion_cnn", "cnn_random_labels")
"""The course models that have trained weights (their architectures: ``models.BUILDERS``)."""
AUGMENTED = {"cnn_blobs": "blobs"}
"""The models trained with data augmentation, and which (the others see the images as they are);
their info must say so."""
SHIPPED_DIR = Path(__file__).parent / "trained"
INFO_MEMBER = "info.json"
INFO_FIELDS = {   # field: (test, what is allowed)
    "data_source": (lambda v: isinstance(v, str), "a string"),
    "seed": (lambda v: _checks.is_int(v) and v >= 0, "an int >= 0"),
    "epochs": (lambda v: _checks.is_int(v) and v >= 1, "an int >= 1"),
    "test_accuracy": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                      and 0 <= v <= 1, "a number in [0, 1]"),
    "sha256": (lambda v: isinstance(v, str) and len(v) == 64
               and all(c in "0123456789abcdef" for c in v), "64 hex digits"),
}


class DamagedWeightsError(ValueError):
    """A weights file that exists but cannot be used; the message names the file and the fault."""


def check_name(name):
    """A ValueError unless ``name`` is one of ``MODELS``.

    >>> check_name("vgg")
    Traceback (most recent call last):
    ValueError: model name 'vgg' is not one of ('cnn', 'logistic', 'cnn_blobs', ...)
    """
    if name not in MODELS:
        raise ValueError(f"model name {name!r} is not one of {MODELS}")


def cache_dir() -> Path:
    """Where retrained weights go: ``$CNN_HELPER_CACHE`` or ``$XDG_CACHE_HOME/cnn_helper``.

    >>> cache_dir()
    PosixPath('/home/student/.cache/cnn_helper')
    """
    if os.environ.get("CNN_HELPER_CACHE"):
        return Path(os.environ["CNN_HELPER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnn_helper"


def archive_path(name: str, directory) -> Path:
    """The one file that holds model ``name``'s weights and info in ``directory``."""
    return Path(directory) / f"mnist_{name}.zip"


def weight_paths(name: str, directory):
    """(weights, JSON) of the two-file layout: the shipped weights and caches of older versions."""
    directory = Path(directory)
    return directory / f"mnist_{name}.weights.h5", directory / f"mnist_{name}.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def info_problems(info, name: str, with_checksum: bool = True) -> list:
    """What is wrong with ``info`` as the description of trained model ``name`` ([] if nothing).

    It must be a JSON object with ``model`` (= name) and the fields of ``INFO_FIELDS``: data_source,
    seed, epochs, test_accuracy and, in a file (``with_checksum``), the weights' sha256; a model
    of ``AUGMENTED`` also its ``augmentation`` (``models.augmentation_of``).

    >>> info_problems({"model": "cnn", "seed": -1}, "cnn", with_checksum=False)
    ['missing field(s) data_source, epochs, test_accuracy', 'seed=-1 (must be an int >= 0)']
    """
    if not isinstance(info, dict):
        return [f"it holds a {type(info).__name__}, not a JSON object of fields"]
    fields = dict(INFO_FIELDS, model=(lambda v: v == name, repr(name)))
    if name in AUGMENTED:                          # an augmented model says how it was trained
        fields["augmentation"] = (lambda v: isinstance(v, dict) and v.get("name") ==
                                  AUGMENTED[name], f"a JSON object with name {AUGMENTED[name]!r}")
    if not with_checksum:
        del fields["sha256"]
    missing = [key for key in fields if key not in info]
    problems = [f"missing field(s) {', '.join(missing)}"] if missing else []
    return problems + [f"{key}={info[key]!r} (must be {allowed})"
                       for key, (fits, allowed) in fields.items()
                       if key in info and not fits(info[key])]


# --------------------------------------------------------------------------- writing


def save(model, name: str, info: dict, directory) -> Path:
    """Write ``model``'s weights and ``info`` atomically as one file, ``mnist_<name>.zip``.

    ``info`` needs data_source, seed, epochs and test_accuracy (``info_problems``); ``model`` is
    filled in and the weights' SHA-256 added. The file is written under a temporary name in the
    same folder, flushed to disk, then renamed over the old one (``_files.atomic_write``): a
    crash or a concurrent load sees the old file or the new one, never a mix. Returns its path.

    >>> save(model, "cnn", {"data_source": "bundled", "seed": 0, "epochs": 1,
    ...                     "test_accuracy": 0.9}, "my_weights")     # -> my_weights/mnist_cnn.zip
    """
    check_name(name)
    info = dict(info)
    info.setdefault("model", name)
    problems = info_problems(info, name, with_checksum=False)
    if problems:
        raise ValueError(f"info for model {name!r} cannot be saved: {'; '.join(problems)}")
    weights = _weights_bytes(model)
    info["sha256"] = _sha256(weights)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:   # JSON errors raise here, before any file
        archive.writestr(INFO_MEMBER, json.dumps(info, indent=2), zipfile.ZIP_DEFLATED)
        archive.writestr(f"mnist_{name}.weights.h5", weights)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = archive_path(name, directory)
    with _files.atomic_write(path) as temporary:
        temporary.write_bytes(buffer.getvalue())
    return path


def _weights_bytes(model) -> bytes:
    """The bytes of ``model.save_weights`` (Keras needs a path ending in .weights.h5)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.weights.h5")
        model.save_weights(path)
        return Path(path).read_bytes()


# --------------------------------------------------------------------------- reading


def _parse_info(text: bytes, where) -> dict:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise DamagedWeightsError(f"{where}: not valid JSON ({e})") from e


def _model_from(name: str, build, info, weights: bytes, info_where, weights_where):
    """The model ``build()`` makes, with ``weights`` (bytes of a .weights.h5), after checking
    ``info`` and the checksum; DamagedWeightsError naming the file and the fault otherwise."""
    problems = info_problems(info, name)
    if problems:
        raise DamagedWeightsError(f"{info_where}: {'; '.join(problems)}")
    if _sha256(weights) != info["sha256"]:
        raise DamagedWeightsError(f"{weights_where}: the weights do not match the sha256 in "
                                  f"{info_where} (changed or damaged after it was saved)")
    model = build()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"mnist_{name}.weights.h5"
        path.write_bytes(weights)
        try:
            model.load_weights(path)
        except Exception as e:                     # any HDF5 / Keras fault of a damaged file
            raise DamagedWeightsError(f"{weights_where}: Keras cannot load it ({e})") from e
    return model


def _read_archive(name: str, build, path: Path):
    """(model, info) from one ``.zip``: read once, so a concurrent save cannot change it."""
    data = path.read_bytes()                       # FileNotFoundError when there is none
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:   # CRC-32 checked while reading
            info_text = archive.read(INFO_MEMBER)
            weights = archive.read(f"mnist_{name}.weights.h5")
    except (zipfile.BadZipFile, KeyError, EOFError, zlib.error, OSError, ValueError) as e:
        raise DamagedWeightsError(f"{path}: not a readable weights archive ({e})") from e
    info = _parse_info(info_text, f"{path} ({INFO_MEMBER})")
    return _model_from(name, build, info, weights, f"{path} ({INFO_MEMBER})", path), info


def _read_pair(name: str, build, directory: Path):
    """(model, info) from the two-file layout. An older cnn_helper writes the weights, then the
    JSON: when they disagree, look once more after 0.2 s before calling them damaged."""
    weights_path, meta_path = weight_paths(name, directory)
    if not weights_path.exists() and not meta_path.exists():
        raise FileNotFoundError(f"no {name} weights in {directory}")
    for look in range(2):
        missing = [p.name for p in (weights_path, meta_path) if not p.is_file()]
        if missing:
            raise DamagedWeightsError(f"{directory}: {' and '.join(missing)} missing from the pair")
        info = _parse_info(meta_path.read_bytes(), meta_path)
        weights = weights_path.read_bytes()
        if look or (isinstance(info, dict) and info.get("sha256") == _sha256(weights)):
            break
        time.sleep(0.2)
    return _model_from(name, build, info, weights, meta_path, weights_path), info


def read(name: str, directory, build):
    """(model, info) of model ``name`` from ``directory``: its ``.zip``, else the two-file layout.

    ``build`` makes the model (``models.BUILDERS[name]``) that gets the weights, once ``info``
    and the weights' checksum are found valid. A FileNotFoundError when ``directory`` holds no
    weights of ``name``; a DamagedWeightsError naming the file and the fault when they cannot be
    used. Nothing in ``directory`` is changed.

    >>> model, info = read("cnn", SHIPPED_DIR, build_cnn)
    >>> info["epochs"]
    12
    """
    directory = Path(directory)
    try:
        return _read_archive(name, build, archive_path(name, directory))
    except FileNotFoundError:
        pass
    except OSError as e:                           # no permission, a folder of that name, ...
        raise DamagedWeightsError(f"{archive_path(name, directory)}: cannot be read ({e})") from e
    try:
        return _read_pair(name, build, directory)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise DamagedWeightsError(f"{directory}: cannot read its {name} weights ({e})") from e
