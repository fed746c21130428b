"""cnn_helper.distributed on a local Ray (2 CPUs, started once for the module): the distributed
scan gives exactly max_activation.scan's result, a process killed mid-scan is restarted and the
result is unchanged, explain writes one file per block that reads back as the in-process method's
maps, the workers are kept for later calls of the same model (never for a changed one), and bad
input stops on the driver with a message."""
import os
import subprocess
import sys

import numpy as np
import pytest
import ray

from cnn_helper import distributed, max_activation, methods, saliency

LAYERS = ["conv1", "conv2", "conv3"]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs. On a loaded machine its start-up can time out (the raylet waits
    30 s for its agents): try three times before failing."""
    for attempt in range(3):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield ray
    distributed.shutdown_workers()
    ray.shutdown()


@pytest.fixture(scope="module")
def fashion(fashion_mnist):
    """2,000 images of Fashion-MNIST's test split (Debian's package)."""
    return fashion_mnist[1][0][:2000]


def assert_same_scan(got: dict, ref: dict, ids):
    """``got`` (indices: ids) is ``ref`` (indices: positions): the same examples and locations;
    the values to float rounding (oneDNN's convolution may round differently in another batch)."""
    assert got.keys() == ref.keys()
    for name in ref:
        assert got[name].n_scanned == ref[name].n_scanned
        for a, b in ((got[name].high, ref[name].high), (got[name].low, ref[name].low)):
            np.testing.assert_array_equal(a.indices, ids[b.indices], err_msg=name)
            np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-6, err_msg=name)
            np.testing.assert_array_equal(a.locations, b.locations, err_msg=name)


def test_distributed_scan_equals_the_plain_scan(local_ray, shipped_cnn, fashion):
    """2 workers, 7 blocks (the last one short), ids that are not positions (ascending, so that
    ties are ranked alike); every layer, both sides."""
    ids = 1_000 + 3 * np.arange(len(fashion))
    got = distributed.scan(shipped_cnn, fashion, LAYERS, count=9, ids=ids, n_workers=2,
                           block_size=300, progress=False)
    ref = max_activation.scan(shipped_cnn, fashion, LAYERS, count=9, progress=False)
    assert_same_scan(got, ref, ids)


def test_a_worker_killed_mid_scan_is_retried(local_ray, shipped_cnn, fashion, tmp_path):
    """A Ray dataset whose images are made by a function that kills its process (os._exit) the
    first time it runs, anywhere: Ray Data's task dies in the middle of making a block. It is
    run again, and the scan is unchanged. The dataset's own columns are named for the scan
    (image_column)."""
    x = np.ascontiguousarray(fashion[:600])
    marker = tmp_path / "a worker died here"

    def images_dying_once(batch):
        if not marker.exists():
            marker.touch()
            os._exit(1)
        return {"id": batch["id"], "pixels": x[batch["id"]]}

    ds = ray.data.range(len(x), override_num_blocks=3).map_batches(images_dying_once)
    got = distributed.scan(shipped_cnn, ds, LAYERS, count=5, image_column="pixels",
                           n_workers=1, progress=False)
    assert marker.exists()
    ref = max_activation.scan(shipped_cnn, x, LAYERS, count=5, progress=False)
    assert_same_scan(got, ref, np.arange(len(x)))


@pytest.mark.parametrize("file_format", ["npy", "parquet"])
def test_explain_writes_one_file_per_block(local_ray, shipped_cnn, fashion, tmp_path,
                                           file_format):
    """Blocks of 25, 25 and 10 images: three files, each with its block's ids; read back, the
    maps are saliency.gradient's (by name) or gradient_x_input's (a function) in this process."""
    x, ids = fashion[:60], np.arange(60)[::-1] * 2          # ids need not follow the order
    method = "gradient" if file_format == "npy" else saliency.gradient_x_input
    files = distributed.explain(shipped_cnn, x, method, tmp_path / "maps", 3,
                                file_format=file_format, ids=ids, n_workers=1, block_size=25,
                                progress=False)
    assert [f.suffix for f in files] == ["." + file_format] * 3
    shard_ids = [distributed.read_explanations([f])[0] for f in files]
    assert sorted(len(i) for i in shard_ids) == [10, 25, 25]
    np.testing.assert_array_equal(np.sort(np.concatenate(shard_ids)), np.sort(ids))
    got_ids, maps = distributed.read_explanations(tmp_path / "maps")
    reference = (saliency.gradient if file_format == "npy" else saliency.gradient_x_input)(
        shipped_cnn, x, 3)
    order = np.argsort(ids)
    np.testing.assert_array_equal(got_ids, ids[order])
    np.testing.assert_allclose(maps, reference[order], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name, options", [
    ("kernel_shap", {"n_segments": (2, 4), "n_samples": 64}), ("lrp_epsilon_plus", {})])
def test_explain_runs_the_black_box_and_relevance_methods(local_ray, shipped_cnn, fashion,
                                                         tmp_path, name, options):
    """Registry methods of issues 25 and 26 by name on the workers: their maps are the same as
    in this process."""
    x = fashion[:6]
    files = distributed.explain(shipped_cnn, x, name, tmp_path / "maps", 3, n_workers=1,
                                block_size=6, progress=False, **options)
    ids, maps = distributed.read_explanations(files)
    np.testing.assert_allclose(maps[np.argsort(ids)],
                               methods.get(name)(shipped_cnn, x, 3, **options),
                               rtol=1e-4, atol=1e-6)


def worker_pids(tmp_path, model, x, name: str) -> set:
    """The process ids of the workers that explain x (a method that maps each image to its pid)."""
    def pid_map(model, x, target):
        return np.full((len(x), 1), os.getpid())

    distributed.explain(model, x, pid_map, tmp_path / name, 0, n_workers=2, block_size=10,
                        progress=False)
    return set(distributed.read_explanations(tmp_path / name)[1].ravel())


def test_the_workers_are_kept_for_later_calls_of_the_same_model(local_ray, shipped_cnn, fashion,
                                                                tmp_path):
    """An explanation, a scan, an explanation of the same model: the same two worker processes
    do all three (none started again); ``shutdown_workers`` ends them, and the next call starts
    new ones."""
    x = fashion[:40]
    first = worker_pids(tmp_path, shipped_cnn, x, "first")
    got = distributed.scan(shipped_cnn, x, LAYERS, count=3, n_workers=2, block_size=10,
                           progress=False)
    assert_same_scan(got, max_activation.scan(shipped_cnn, x, LAYERS, count=3, progress=False),
                     np.arange(len(x)))
    assert worker_pids(tmp_path, shipped_cnn, x, "again") == first
    assert len(first) == 2 and os.getpid() not in first
    assert distributed.shutdown_workers() == 2
    assert distributed.shutdown_workers() == 0
    assert worker_pids(tmp_path, shipped_cnn, x, "new").isdisjoint(first)


def test_a_changed_model_or_array_is_never_taken_from_the_pool(local_ray, shipped_cnn, fashion):
    """The same model object and the same array scanned three times: as they are, after the
    array was changed in place (the same workers, the new images), after the model's weights
    were changed in place (new workers, the new weights). Each scan is the plain scan of the
    model and array as they are then."""
    import keras

    model = keras.models.clone_model(shipped_cnn)
    model.set_weights(shipped_cnn.get_weights())
    x = np.array(fashion[:300])

    def both_scans():
        got = distributed.scan(model, x, LAYERS, count=4, n_workers=1, block_size=100,
                               progress=False)
        ref = max_activation.scan(model, x, LAYERS, count=4, progress=False)
        assert_same_scan(got, ref, np.arange(len(x)))
        return got

    before = both_scans()
    x[:] = x[::-1]
    reversed_images = both_scans()
    assert not np.array_equal(before["conv3"].high.indices, reversed_images["conv3"].high.indices)
    model.set_weights([-w for w in model.get_weights()])
    negated = both_scans()
    assert not np.array_equal(negated["conv3"].high.indices,
                              reversed_images["conv3"].high.indices)


def test_a_worker_of_the_pool_that_dies_is_restarted(local_ray, shipped_cnn, fashion, tmp_path):
    """A method that kills its worker's process (os._exit) the first time it runs there: Ray
    restarts the worker (it loads the model again) and sends the block again; every file is
    written and the maps are the gradient's."""
    x, marker, driver = fashion[:30], tmp_path / "a worker died here", os.getpid()

    def gradient_dying_once(model, x, target):
        if os.getpid() != driver and not marker.exists():
            marker.touch()
            os._exit(1)
        return saliency.gradient(model, x, target)

    distributed.explain(shipped_cnn, x, gradient_dying_once, tmp_path / "maps", 3, n_workers=1,
                        block_size=10, progress=False)
    assert marker.exists()
    ids, maps = distributed.read_explanations(tmp_path / "maps")
    np.testing.assert_array_equal(ids, np.arange(len(x)))
    np.testing.assert_allclose(maps, saliency.gradient(shipped_cnn, x, 3), rtol=1e-5, atol=1e-7)


def test_bad_input_stops_on_the_driver(local_ray, shipped_cnn, fashion, tmp_path):
    x = fashion[:20]
    with pytest.raises(TypeError, match="model must be a Keras model"):
        distributed.scan(42, x, "conv1")
    with pytest.raises(ValueError, match="is not a .keras file"):
        distributed.scan(str(tmp_path / "model.h5"), x, "conv1")
    with pytest.raises(ValueError, match="no column 'image'"):
        distributed.scan(shipped_cnn, ray.data.from_items([{"data": 1, "id": 0}]), "conv1")
    with pytest.raises(ValueError, match="count=30 is larger than the data"):
        distributed.scan(shipped_cnn, x, "conv1", count=30)
    with pytest.raises(ValueError, match="ids must be distinct"):
        distributed.scan(shipped_cnn, x, "conv1", ids=np.zeros(20, int))
    with pytest.raises(ValueError, match="n_workers must be a positive int"):
        distributed.scan(shipped_cnn, x, "conv1", n_workers=0)
    with pytest.raises(ValueError, match="has no layer 'conv9'"):
        distributed.scan(shipped_cnn, x, "conv9")
    with pytest.raises(ValueError, match="method 'gradients' is not one of"):
        distributed.explain(shipped_cnn, x, "gradients", tmp_path / "out", 3)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="holds the results of an earlier run"):
        distributed.explain(shipped_cnn, x, "gradient", tmp_path / "used", 3)
    with pytest.raises(ValueError, match="class 12 is out of range"):
        distributed.explain(shipped_cnn, x, "gradient", tmp_path / "out", 12)   # 10 classes


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install cnn_helper\[ray\]"):
        distributed.connect()


def test_the_package_imports_without_ray():
    """``pip install cnn_helper`` without the ``ray`` extra: ``cnn_helper.distributed`` and its
    public names import (Ray only when a function runs), in a fresh process where Ray is absent."""
    code = ("import sys; sys.modules['ray'] = None\n"
            "from cnn_helper import distributed\n"
            "from cnn_helper.distributed import (BLOCKS_PER_WORKER, FORMATS, ID_COLUMN,\n"
            "    IMAGE_COLUMN, connect, explain, read_explanations, scan, shutdown_workers)\n"
            "assert distributed.shutdown_workers() == 0\n"
            "assert callable(distributed.scan) and distributed.scan is scan\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
