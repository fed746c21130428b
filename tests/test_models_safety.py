"""Data safety of cnn_helper.models: a save and a load running at the same time (and two saves),
the atomic write (fsync, then one rename), the two-file layout of older versions, a read-only
cache, info with missing fields, and ``train`` refusing a destination it cannot write before it
trains."""
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile
from pathlib import Path

import keras
import pytest
from model_weights import same_weights, weights_of

from cnn_helper import data, models

ROOT = Path(__file__).resolve().parent.parent
INFO = {"data_source": "bundled", "seed": 1, "epochs": 3, "test_accuracy": 0.5}


def _random_cnn(seed):
    keras.utils.set_random_seed(seed)
    return models.build_cnn()


def _snapshot(folder):
    """Every file of ``folder``: name -> (bytes, modification time in ns)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def _write_old_layout(model, info, folder, name="cnn"):
    """The two files cnn_helper wrote before one-file saves: weights, then a JSON with sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    weights, meta = folder / f"mnist_{name}.weights.h5", folder / f"mnist_{name}.json"
    model.save_weights(weights)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    meta.write_text(json.dumps(dict(info, model=name, sha256=sha)))
    return weights, meta


# --------------------------------------------------------------------------- save during load

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from cnn_helper import models

    class KerasWeightsFile:
        '''Stands in for a Keras model in models.save: its save_weights writes the bytes a real
        model.save_weights wrote (so this process needs no Keras start-up).'''
        def __init__(self, path):
            self.data = Path(path).read_bytes()
        def save_weights(self, path):
            Path(path).write_bytes(self.data)

    versions = [KerasWeightsFile(sys.argv[2]), KerasWeightsFile(sys.argv[3])]
    cache, stop = Path(sys.argv[4]), Path(sys.argv[5])
    info = {"data_source": "bundled", "epochs": 1, "test_accuracy": 0.5}
    print("ready", flush=True)
    saves = 0
    while not stop.exists() and saves < 5000:
        models.save(versions[saves % 2], "cnn", dict(info, seed=saves % 2), cache)
        saves += 1
    print(saves, flush=True)
""")


def test_loads_during_repeated_saves_are_consistent_and_lose_nothing(cnn_cache, tmp_path):
    """Another process saves two versions (seed 0 and 1) in turn as fast as it can while this one
    loads for 1.5 s: each load returns the weights its info names, with no warning, and the
    cache ends holding exactly the last save, with no temporary, renamed or lost file."""
    versions = _two_versions(tmp_path)
    models.save(versions[0], "cnn", dict(INFO, seed=0), cnn_cache)
    stop = tmp_path / "stop"
    writer = _start_writer(tmp_path, cnn_cache, stop)
    try:
        seen = _load_while_saving(versions, seconds=1.5)
    finally:
        stop.touch()
        printed = writer.communicate(timeout=60)[0]
    assert writer.returncode == 0, printed
    saves = int(printed.split()[-1])
    assert set(seen) == {0, 1} and saves > len(seen)       # the loads really ran between saves
    assert sorted(p.name for p in cnn_cache.iterdir()) == ["mnist_cnn.zip"]
    model, info = models.load_with_info("cnn", "cache")
    assert info["seed"] == (saves - 1) % 2                 # the last save is the one kept
    assert same_weights(weights_of(model), weights_of(versions[info["seed"]]))


def test_two_processes_saving_at_once_leave_one_whole_file(cnn_cache, tmp_path):
    """Two processes save the two versions in turn, both as fast as they can, while this one
    loads for 1 s: every load is consistent, and the cache ends holding one complete file, a
    save of one of them, with no temporary file or folder of either left beside it."""
    versions = _two_versions(tmp_path)
    models.save(versions[0], "cnn", dict(INFO, seed=0), cnn_cache)
    stop = tmp_path / "stop"
    writers = [_start_writer(tmp_path, cnn_cache, stop) for _ in range(2)]
    try:
        seen = _load_while_saving(versions, seconds=1.0)
    finally:
        stop.touch()
        printed = [writer.communicate(timeout=60)[0] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], printed
    assert set(seen) == {0, 1}
    assert sorted(p.name for p in cnn_cache.iterdir()) == ["mnist_cnn.zip"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, info = models.load_with_info("cnn", "cache")
    assert same_weights(weights_of(model), weights_of(versions[info["seed"]]))


def _two_versions(folder):
    """Two random CNNs (seed 0 and 1 in their info), their weights also written to ``folder``
    for the writer processes."""
    versions = [_random_cnn(10), _random_cnn(11)]
    for seed, model in enumerate(versions):
        model.save_weights(folder / f"v{seed}.weights.h5")
    return versions


def _start_writer(folder, cache, stop):
    """A process running WRITER (the two versions of ``_two_versions`` in turn), once ready."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(ROOT), str(folder / "v0.weights.h5"),
         str(folder / "v1.weights.h5"), str(cache), str(stop)],
        stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    return writer


def _load_while_saving(versions, seconds):
    """Load the cached CNN again and again for ``seconds`` (and until both versions were seen):
    each load must be the version its info names, with no warning. The seeds seen."""
    seen, end = [], time.monotonic() + seconds
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # a "damaged" verdict would be a warning
        while (time.monotonic() < end or len(set(seen)) < 2) \
                and time.monotonic() < end + 30:         # never hang if a writer dies
            model, info = models.load_with_info("cnn", "cache")
            assert same_weights(weights_of(model), weights_of(versions[info["seed"]]))
            seen.append(info["seed"])
    return seen


# --------------------------------------------------------------------------- the atomic write


def _record_calls(monkeypatch, calls, name):
    """Record each call of ``os.<name>`` as (name, first argument) before making it."""
    function = getattr(os, name)

    def recorded(first, *args):
        calls.append((name, first))
        return function(first, *args)

    monkeypatch.setattr(os, name, recorded)


def test_a_save_reaches_the_disk_before_it_replaces_the_old_file(cnn_cache, monkeypatch):
    """fsync of the new file, then one os.replace from a temporary file in the same folder (so
    the rename cannot cross file systems): after a power cut the file is the old or the new one."""
    models.save(_random_cnn(1), "cnn", INFO, cnn_cache)
    calls = []
    _record_calls(monkeypatch, calls, "fsync")
    _record_calls(monkeypatch, calls, "replace")
    path = models.save(_random_cnn(2), "cnn", dict(INFO, seed=2), cnn_cache)
    assert [name for name, _ in calls] == ["fsync", "replace"]
    temporary = Path(calls[1][1])
    assert temporary.name == path.name and temporary.parent.parent == cnn_cache
    assert sorted(p.name for p in cnn_cache.iterdir()) == ["mnist_cnn.zip"]
    assert models.load_with_info("cnn", "cache")[1]["seed"] == 2


def test_a_save_that_cannot_reach_the_disk_keeps_the_previous_file(cnn_cache, monkeypatch):
    old = _random_cnn(1)
    models.save(old, "cnn", INFO, cnn_cache)
    before = _snapshot(cnn_cache)

    def disk_fails(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", disk_fails)
    with pytest.raises(OSError, match="Input/output error"):
        models.save(_random_cnn(2), "cnn", dict(INFO, seed=2), cnn_cache)
    assert _snapshot(cnn_cache) == before                  # no temporary left, nothing changed
    assert same_weights(weights_of(old), weights_of(models.load("cnn", "cache")))


# --------------------------------------------------------------------------- older two-file layout


def test_an_old_two_file_cache_is_still_loaded_and_never_changed(cnn_cache):
    old = _random_cnn(4)
    _write_old_layout(old, INFO, cnn_cache)
    before = _snapshot(cnn_cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, info = models.load_with_info("cnn")
    assert same_weights(weights_of(old), weights_of(model))
    assert info["loaded_from"] == str(cnn_cache) and info["seed"] == 1
    # a new save takes precedence, and the user's older files stay exactly as they were
    new = _random_cnn(5)
    models.save(new, "cnn", dict(INFO, seed=5), cnn_cache)
    assert same_weights(weights_of(new), weights_of(models.load("cnn")))
    after = _snapshot(cnn_cache)
    assert {k: after[k] for k in before} == before
    assert sorted(after) == ["mnist_cnn.json", "mnist_cnn.weights.h5", "mnist_cnn.zip"]


def test_an_old_pair_caught_halfway_through_its_writer_is_looked_at_again(cnn_cache,
                                                                          monkeypatch):
    """An older cnn_helper writes weights, then JSON: between the two, the JSON's checksum is that
    of the new weights but the weights file is still the old one. The reader waits and looks
    again (the writer finishes during the wait) instead of calling the fresh pair damaged."""
    new = _random_cnn(6)
    weights, meta = _write_old_layout(new, INFO, cnn_cache)
    new_bytes = weights.read_bytes()
    _random_cnn(7).save_weights(weights)                   # the pair now disagrees
    sleep = time.sleep

    def writer_finishes_while_waiting(seconds):
        weights.write_bytes(new_bytes)
        sleep(seconds)

    monkeypatch.setattr(time, "sleep", writer_finishes_while_waiting)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = models.load("cnn")
    assert same_weights(weights_of(new), weights_of(model))


def test_an_old_pair_that_stays_mismatched_falls_back_without_touching_it(cnn_cache, shipped_cnn):
    weights, meta = _write_old_layout(_random_cnn(6), INFO, cnn_cache)
    _random_cnn(7).save_weights(weights)
    before = _snapshot(cnn_cache)
    with pytest.warns(UserWarning, match="do not match the sha256") as caught:
        model = models.load("cnn")
    assert str(weights) in str(caught[0].message) and str(meta) in str(caught[0].message)
    assert same_weights(weights_of(shipped_cnn), weights_of(model))
    assert _snapshot(cnn_cache) == before


def test_half_an_old_pair_is_reported_not_ignored(cnn_cache, shipped_cnn):
    weights, meta = _write_old_layout(_random_cnn(6), INFO, cnn_cache)
    meta.unlink()
    with pytest.warns(UserWarning, match="mnist_cnn.json missing"):
        model = models.load("cnn")
    assert same_weights(weights_of(shipped_cnn), weights_of(model))
    assert weights.is_file()


# --------------------------------------------------------------------------- info of a file


def _archive(folder, info, weights: bytes):
    """A hand-made one-file save with exactly this ``info`` (no checks)."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "mnist_cnn.zip", "w") as archive:
        archive.writestr("info.json", json.dumps(info))
        archive.writestr("mnist_cnn.weights.h5", weights)
    return folder / "mnist_cnn.zip"


@pytest.fixture(scope="module")
def cnn_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "cnn.weights.h5"
    _random_cnn(8).save_weights(path)
    return path.read_bytes()


def _full_info(weights):
    return dict(INFO, model="cnn", sha256=hashlib.sha256(weights).hexdigest())


@pytest.mark.parametrize("change, fault", [
    ({"test_accuracy": None}, "missing field(s) test_accuracy"),
    ({"epochs": None, "seed": None}, "missing field(s) seed, epochs"),
    ({"sha256": None}, "missing field(s) sha256"),
    ({"epochs": "12"}, "epochs='12' (must be an int >= 1)"),
    ({"test_accuracy": 97.4}, "test_accuracy=97.4 (must be a number in [0, 1])"),
    ({"model": "logistic"}, "model='logistic' (must be 'cnn')"),
    ({"sha256": "0" * 64}, "the weights do not match the sha256"),
])
def test_info_with_missing_or_wrong_fields_falls_back_with_a_warning(cnn_cache, cnn_weights,
                                                                     shipped_cnn, change, fault):
    info = {k: v for k, v in dict(_full_info(cnn_weights), **change).items() if v is not None}
    path = _archive(cnn_cache, info, cnn_weights)
    with pytest.warns(UserWarning) as caught:
        model, loaded = models.load_with_info("cnn")
    message = str(caught[0].message)
    assert fault in message and str(path) in message and "using the shipped" in message.lower()
    assert loaded["loaded_from"] == "shipped"
    assert same_weights(weights_of(shipped_cnn), weights_of(model))
    with pytest.raises(models.DamagedWeightsError) as error:
        models.load("cnn", "cache")
    assert fault in str(error.value)


def test_the_same_archive_with_complete_info_loads(cnn_cache, cnn_weights):
    """The control of the test above: its hand-made file is valid when nothing is removed."""
    _archive(cnn_cache, _full_info(cnn_weights), cnn_weights)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert models.load_with_info("cnn")[1]["loaded_from"] == str(cnn_cache)


def test_an_old_json_with_missing_fields_falls_back_with_a_warning(cnn_cache, shipped_cnn):
    weights, meta = _write_old_layout(_random_cnn(6), {"epochs": 2}, cnn_cache)
    with pytest.warns(UserWarning, match="missing field.s. data_source, seed, test_accuracy"):
        model = models.load("cnn")
    assert same_weights(weights_of(shipped_cnn), weights_of(model))


def test_a_json_that_is_not_an_object_is_reported(cnn_cache, cnn_weights):
    _archive(cnn_cache, [1, 2, 3], cnn_weights)
    with pytest.warns(UserWarning, match="holds a list, not a JSON object"):
        models.load("cnn")


# --------------------------------------------------------------------------- read-only cache


@pytest.fixture
def read_only(cnn_cache, monkeypatch):
    """Make the cache folder read-only: chmod (enough for a normal user) and, because chmod does
    not stop root, every os-level way of changing a file in it raises PermissionError too."""
    def refuse_inside(function):
        def guarded(*paths, **kwargs):
            if any(str(p).startswith(str(cnn_cache)) for p in paths if isinstance(p, (str, Path))):
                raise PermissionError(13, "Read-only file system", str(paths[0]))
            return function(*paths, **kwargs)
        return guarded

    def make_read_only():
        for path in cnn_cache.iterdir():
            path.chmod(0o444)
        cnn_cache.chmod(0o555)
        for name in ("replace", "rename", "remove", "unlink", "rmdir", "mkdir", "chmod"):
            monkeypatch.setattr(os, name, refuse_inside(getattr(os, name)))

    yield make_read_only
    monkeypatch.undo()
    cnn_cache.chmod(0o755)


def test_a_damaged_file_in_a_read_only_cache_falls_back_to_the_shipped_weights(
        cnn_cache, shipped_cnn, read_only):
    path = models.save(_random_cnn(3), "cnn", INFO, cnn_cache)
    path.write_bytes(path.read_bytes()[:5000])
    read_only()
    before = _snapshot(cnn_cache)
    with pytest.warns(UserWarning, match="mnist_cnn.zip: not a readable weights archive"):
        model, info = models.load_with_info("cnn")
    assert info["loaded_from"] == "shipped"
    assert same_weights(weights_of(shipped_cnn), weights_of(model))
    assert _snapshot(cnn_cache) == before


def test_a_valid_file_in_a_read_only_cache_loads(cnn_cache, read_only):
    saved = _random_cnn(3)
    models.save(saved, "cnn", INFO, cnn_cache)
    read_only()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert same_weights(weights_of(saved), weights_of(models.load("cnn")))


def test_an_unreadable_cache_file_falls_back_with_a_warning(cnn_cache, shipped_cnn, monkeypatch):
    """chmod 000, and (root reads whatever the mode) reading that file raises PermissionError."""
    path = models.save(_random_cnn(3), "cnn", INFO, cnn_cache)
    read_bytes = Path.read_bytes

    def refuse_that_file(self):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse_that_file)
    path.chmod(0o000)
    try:
        with pytest.warns(UserWarning, match="mnist_cnn.zip: cannot be read .*Permission denied"):
            model = models.load("cnn")
    finally:
        path.chmod(0o644)
    assert same_weights(weights_of(shipped_cnn), weights_of(model))


# --------------------------------------------------------------------------- train's destination


@pytest.fixture
def no_training(monkeypatch):
    """Record any data loading or fitting: a refused destination must stop before both."""
    calls = []
    monkeypatch.setattr(data, "load", lambda *a, **k: calls.append("data.load"))
    monkeypatch.setattr(models, "fit", lambda *a, **k: calls.append("fit"))
    return calls


def test_train_refuses_a_destination_inside_a_file_before_training(tmp_path, no_training):
    """A folder under a regular file cannot be made by anyone, root included."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    start = time.perf_counter()
    with pytest.raises(ValueError, match="cannot write the trained weights to") as error:
        models.train("cnn", epochs=1, directory=a_file / "weights")
    assert str(a_file / "weights") in str(error.value) and "directory=" in str(error.value)
    assert no_training == [] and time.perf_counter() - start < 5


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root may write into a folder whatever its mode")
def test_train_refuses_a_read_only_folder_before_training(tmp_path, no_training):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="Permission denied"):
            models.train("cnn", epochs=1, directory=folder)
    finally:
        folder.chmod(0o755)
    assert no_training == []


def test_train_refuses_a_read_only_cache_before_training(cnn_cache, no_training, monkeypatch):
    """The default destination is checked too; root-proof: creating the probe file fails."""
    import tempfile

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(ValueError, match="Permission denied") as error:
        models.train("cnn", epochs=1)
    assert str(cnn_cache) in str(error.value)
    assert no_training == []


@pytest.mark.parametrize("directory", ["", "  ", 3])
def test_train_rejects_a_directory_that_names_no_folder(directory, no_training):
    with pytest.raises(ValueError, match="directory must name a folder"):
        models.train("cnn", epochs=1, directory=directory)
    assert no_training == []


@pytest.mark.parametrize("kwargs, fault", [
    ({"epochs": 0}, "epochs must be a positive int"), ({"seed": -1}, "seed must be an int >= 0"),
    ({"seed": 1.5}, "seed must be an int >= 0")])
def test_train_checks_its_numbers_before_training(kwargs, fault, no_training):
    with pytest.raises(ValueError, match=fault):
        models.train("cnn", **kwargs)
    assert no_training == []


@pytest.mark.parametrize("kwargs, fault", [
    ({"batch_size": 0}, "batch_size must be a positive int, got 0"),
    ({"batch_size": 2.5}, "batch_size must be a positive int"),
    ({"learning_rate": 0}, "learning_rate must be a number > 0"),
    ({"learning_rate": float("nan")}, "learning_rate must be a number > 0"),
    ({"learning_rate": "fast"}, "learning_rate must be a number > 0"),
    ({"seed": -3}, "seed must be an int >= 0")])
def test_fit_rejects_bad_options_before_building(kwargs, fault, bundled):
    (x_train, y_train), _ = bundled
    with pytest.raises(ValueError, match=fault):
        models.fit("cnn", x_train[:10], y_train[:10], epochs=1, **kwargs)


def test_a_cache_path_that_is_a_file_falls_back_with_a_warning(cnn_cache, shipped_cnn):
    cnn_cache.parent.mkdir(parents=True, exist_ok=True)
    cnn_cache.write_text("CNN_HELPER_CACHE points at this file")
    with pytest.warns(UserWarning, match="mnist_cnn.zip: cannot be read .*Not a directory"):
        model = models.load("cnn")
    assert same_weights(weights_of(shipped_cnn), weights_of(model))
    assert cnn_cache.read_text() == "CNN_HELPER_CACHE points at this file"
