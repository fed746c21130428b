r"""Scans and explanations over a whole data set on Ray: many workers, one machine or a cluster.

``max_activation.scan`` keeps only the running top ``count`` of each channel, so its memory does not
grow with the data, but it runs in one process. Zeiler & Fergus scanned all of ImageNet's training
set for every unit; for a data set of that size, this module spreads the same work over the workers
of a Ray cluster (Ray Data's offline batch inference: ``map_batches`` on a pool of actors):

1. The model travels to every worker as a ``.keras`` file (or a builder function builds it there):
   one replica per worker, loaded once, its scan step compiled once.
2. Each block of the data set is scanned by ``max_activation.scan_part``, the package's own
   compiled step, with the block's example ids: a partial result :math:`S_b` (top ``count`` High
   and Low of every channel, over the block's examples).
3. The driver merges the partial results as they arrive with ``max_activation.merge``:
   :math:`S = S_1 \oplus S_2 \oplus \dots`, associative and commutative, so neither the order
   the blocks finish in nor the way they are grouped changes anything. The result is the one
   ``max_activation.scan`` gives on the same data, its indices the data set's own ids.

Ray Data restarts a worker that dies and sends its block again; a block's partial result is a
pure function of the block, so a retry changes nothing.

Data: a ``ray.data.Dataset`` with an image column and an id column (``image_column="image"``,
``id_column="id"``), or an array of images (ids: their positions, or ``ids=``), or a list of
``.npy`` files (ids: positions in the files taken one after the other).

Example
-------
>>> from cnn_helper import distributed
>>> scans = distributed.scan(model, x_train, ["conv1", "conv2", "conv3"], count=9)  # local Ray
>>> scans["conv2"].channel(5).high.indices             # as max_activation.scan gives them
>>> files = distributed.explain(model, x_train, "gradient", "maps/", target=3)
>>> ids, maps = distributed.read_explanations("maps/")

Needs the ``ray`` extra: ``pip install cnn_helper[ray]``.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

from . import _checks, _files, _graph, features, max_activation, methods
from ._checks import BATCH_SIZE

IMAGE_COLUMN, ID_COLUMN = "image", "id"
BLOCKS_PER_WORKER = 4        # arrays and files are cut into about this many blocks per worker
FORMATS = ("npy", "parquet")


def _ray():
    """The ``ray`` module with Ray Data, or an ImportError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ImportError("cnn_helper.distributed needs Ray Data: pip install cnn_helper[ray] "
                          "(or pip install 'ray[data]')") from None
    return ray


def connect(address=None):
    """Ray, started or joined once: ``address=None`` starts a local Ray on this machine (no
    dashboard); ``"auto"`` joins the cluster this machine belongs to, ``"ray://head:10001"`` a
    remote one. When Ray is already initialized (your own ``ray.init(...)``), it is used as is.

    >>> connect()                    # a local Ray with every CPU of this machine
    >>> connect("ray://head:10001")  # a cluster: files and paths must be visible to its workers
    """
    ray = _ray()
    if not ray.is_initialized():
        options = {"include_dashboard": False} if address is None else {}
        ray.init(address=address, **options)
    return ray


# --------------------------------------------------------------------------- the model


def _model_spec(model):
    """(the model here, on the driver; what ships to the workers: ("keras", the bytes of a
    .keras file) or ("builder", a zero-argument function)). The user's model is only saved; a
    file is read by the package's one loader, ``models.load``."""
    import keras

    from . import models

    if isinstance(model, keras.Model):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            try:
                model.save(path)
            except Exception as e:
                raise TypeError(f"model {model.name!r} cannot be saved as a .keras file to ship "
                                f"it to the workers ({e}); give a builder instead: a function "
                                "without arguments that returns the model") from None
            return model, ("keras", path.read_bytes())
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.suffix != ".keras" or not path.is_file():
            raise ValueError(f"model {str(model)!r} is not a .keras file; give a Keras model, the "
                             "path of a file saved with model.save('name.keras'), or a builder")
        return models.load(path), ("keras", path.read_bytes())
    if callable(model):
        built = model()
        if not isinstance(built, keras.Model):
            raise TypeError(f"the builder {model!r} returned {type(built).__name__}, not a Keras "
                            "model")
        return built, ("builder", model)
    raise TypeError(f"model must be a Keras model, the path of a .keras file or a builder (a "
                    f"function without arguments that returns the model), got {model!r}")


def _load_model(spec):
    """The model a worker uses, from what ``_model_spec`` shipped (a file: ``models.load``)."""
    from . import models

    kind, value = spec
    if kind == "builder":
        return value()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(value)
        return models.load(path)


# --------------------------------------------------------------------------- the data


def _check_ray_dataset(ds, ids, image_column: str, id_column: str):
    """A ray.data.Dataset with both columns (ids come from its id column)."""
    if ids is not None:
        raise ValueError(f"ids come from the dataset's column {id_column!r}; do not give ids")
    columns = ds.columns()
    missing = [c for c in (image_column, id_column) if c not in columns]
    if missing:
        raise ValueError(f"the dataset has no column {missing[0]!r}; its columns are {columns}. "
                         "Name its image and id columns: image_column=..., id_column=...")
    return ds


def _arrays(data, ids):
    """(images, ids) of an array or a list of .npy files (read lazily: memory-mapped)."""
    if isinstance(data, (list, tuple)) and data and all(
            isinstance(p, (str, os.PathLike)) for p in data):
        for path in data:
            if Path(path).suffix != ".npy" or not Path(path).is_file():
                raise ValueError(f"{str(path)!r} is not a .npy file")
        parts = [np.load(path, mmap_mode="r") for path in data]
        if len({part.shape[1:] for part in parts}) != 1:
            raise ValueError(f"the .npy files hold images of different shapes "
                             f"{sorted({part.shape[1:] for part in parts})}")
        x = _ConcatenatedFiles(parts)
    else:
        x = np.asarray(data)
        if x.ndim < 2:
            raise ValueError(f"data must be images (N, H, W, C), a list of .npy files or a "
                             f"ray.data.Dataset, got an array of shape {x.shape}")
    ids = np.arange(len(x)) if ids is None else _checks.example_ids(ids, len(x))
    return x, ids


class _ConcatenatedFiles:
    """Several memory-mapped arrays read as one along the first axis (only slices are read)."""

    def __init__(self, parts):
        self.parts, self.starts = parts, np.cumsum([0] + [len(p) for p in parts])

    def __len__(self):
        return int(self.starts[-1])

    def __getitem__(self, where: slice) -> np.ndarray:
        pieces = [p[max(where.start - s, 0):max(where.stop - s, 0)]
                  for p, s in zip(self.parts, self.starts)]
        return np.concatenate([np.asarray(p) for p in pieces if len(p)])


def _dataset(data, ids, image_column, id_column, block_size, n_workers):
    """The data as a ray.data.Dataset with image and id columns, cut into blocks."""
    ray = _ray()
    if isinstance(data, ray.data.Dataset):
        return _check_ray_dataset(data, ids, image_column, id_column)
    from ray.data.block import BlockAccessor

    x, ids = _arrays(data, ids)
    if len(x) == 0:
        raise ValueError("data is empty: give at least one image")
    if block_size == "auto":
        block_size = math.ceil(len(x) / (BLOCKS_PER_WORKER * n_workers))
    blocks = [BlockAccessor.batch_to_block({image_column: x[s], id_column: ids[s]})
              for s in _checks.batches(len(x), block_size)]
    return ray.data.from_arrow(blocks)


# --------------------------------------------------------------------------- the workers


def _use_threads(threads: int):
    """TensorFlow in this process uses ``threads`` threads per op (set before it starts)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


class _ScanWorker:
    """One model replica: each block in, its ``max_activation.scan_part`` out (pickled)."""

    def __init__(self, spec, layers, count, pool, batch_size, columns, threads):
        _use_threads(threads)
        self.model = _load_model(spec)
        self.layers, self.count, self.pool, self.batch_size = layers, count, pool, batch_size
        self.image_column, self.id_column = columns

    def __call__(self, block: dict) -> dict:
        ids = block[self.id_column]
        if len(ids) == 0:
            return {"part": np.empty(0, object), "n": np.empty(0, np.int64)}
        part = max_activation.scan_part(self.model, block[self.image_column], ids, self.layers,
                                        self.count, self.pool, self.batch_size)
        return {"part": np.array([pickle.dumps(part)], object), "n": np.array([len(ids)])}


def _workers(n_workers, threads_per_worker):
    """(number of workers, resources of each): one per GPU when the cluster has GPUs, else one per
    ``threads_per_worker`` CPUs."""
    ray = _ray()
    threads = _positive(threads_per_worker, "threads_per_worker")
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if n_workers is None:
        n_workers = gpus or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
    return _positive(n_workers, "n_workers"), {"num_cpus": threads, "num_gpus": 1 if gpus else 0}


def _positive(value, name: str, auto: bool = False):
    """``value`` as a positive int (or "auto" where that is allowed)."""
    if auto and value == "auto":
        return value
    if not _checks.is_int(value) or value < 1:
        allowed = "a positive int or 'auto'" if auto else "a positive int"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def _run(ds, worker, constructor_args, n_workers, resources, map_options):
    """``ds`` through a pool of ``n_workers`` actors of class ``worker``, one call per block.
    Ray Data restarts an actor that dies and sends its block again (its default for actor pools:
    ``max_restarts=-1``, ``max_task_retries=-1``)."""
    ray = _ray()
    return ds.map_batches(worker, batch_size=None, batch_format="numpy",
                          compute=ray.data.ActorPoolStrategy(size=n_workers),
                          fn_constructor_args=constructor_args, **resources, **(map_options or {}))


def _rows(ds, progress: bool, desc: str, total=None):
    """The rows of ``ds`` as they arrive, with a progress bar over blocks (Ray's own bars off:
    they live in the dataset's copy of the DataContext)."""
    from tqdm.auto import tqdm

    ds.context.enable_progress_bars = False
    with tqdm(total=total, unit="block", desc=desc, disable=not progress) as bar:
        for row in ds.iter_rows():
            yield row
            bar.update(1)


# --------------------------------------------------------------------------- scan


def scan(model, data, layers, count: int = 9, pool: str = "max", batch_size=BATCH_SIZE,
         progress: bool = True, *, ids=None, n_workers=None, threads_per_worker: int = 1,
         block_size="auto", image_column: str = IMAGE_COLUMN, id_column: str = ID_COLUMN,
         address=None, map_options=None) -> dict:
    r"""``max_activation.scan`` over the workers of a Ray cluster: the top ``count`` High and Low
    examples of every channel of each layer of ``layers``, the same result.

    model : a Keras model (saved to a temporary .keras file that every worker loads; the model
            itself is untouched), the path of a .keras file, or a builder (a function without
            arguments that returns the model, for a model that cannot be saved)
    data  : a ``ray.data.Dataset`` with columns ``image_column`` (images (H, W, C)) and
            ``id_column`` (distinct integers); or an array of images with optional ``ids`` (default:
            positions); or a list of .npy files (ids: positions in the files one after the other)
    count, pool, batch_size, progress : as in ``max_activation.scan`` (the bar counts blocks)
    n_workers, threads_per_worker : model replicas (Ray actors), and the CPUs (TensorFlow
            threads) of each; default one worker per GPU of the cluster, else one per CPU
    block_size : images per block (one partial scan each) for arrays and files; "auto" gives
            about ``BLOCKS_PER_WORKER`` blocks per worker. A Ray dataset keeps its own blocks.
    address : None for a local Ray (started here unless Ray is initialized), "auto" or
            "ray://host:port" for an existing cluster (see ``connect``)
    map_options : more keyword arguments of ``ray.data.Dataset.map_batches`` for the workers,
            e.g. ``{"memory": 4e9}`` or ``{"accelerator_type": "A100"}``
    Returns ``{layer name: LayerScan}`` whose indices are the data's ids (see the module's
    docstring for how: ``scan_part`` on the workers, ``merge`` on the driver).

    >>> scans = scan(model, x_train, ["conv1", "conv2"], count=9, n_workers=2)
    >>> scans["conv2"].high.indices.shape
    (32, 9)
    """
    local_model, spec = _model_spec(model)
    layers = _checks.layer_list(layers)
    pool = _checks.one_of(pool, "pool", features.POOLS)
    count = _checks.top_count(count)
    names = max_activation.layer_names(local_model, layers)
    batch_size = _graph.batch_size(local_model, batch_size)
    block_size = _positive(block_size, "block_size", auto=True)
    connect(address)
    n_workers, resources = _workers(n_workers, threads_per_worker)
    ds = _dataset(data, ids, image_column, id_column, block_size, n_workers)
    if not isinstance(data, _ray().data.Dataset):
        _checks.top_count(count, ds.count(), "the data")
    args = (spec, names, count, pool, batch_size, (image_column, id_column), resources["num_cpus"])
    parts = _run(ds, _ScanWorker, args, n_workers, resources, map_options)
    scans = None
    for row in _rows(parts, progress, "scan " + ", ".join(names), _n_blocks(ds)):
        part = pickle.loads(row["part"])
        scans = part if scans is None else max_activation.merge(scans, part, count)
    n = 0 if scans is None else scans[names[0]].n_scanned
    _checks.top_count(count, n, "the data")
    return scans


def _n_blocks(ds):
    """How many blocks ``ds`` has, when it is known without running it (else None)."""
    try:
        return ds.num_blocks()
    except (AttributeError, NotImplementedError, ValueError):
        return None


# --------------------------------------------------------------------------- explain

def _explained(method, model, x, target, options) -> np.ndarray:
    """The maps of the images x (one per image), checked."""
    maps = method(model, x, target, **options)
    if not isinstance(maps, np.ndarray) or maps.shape[:1] != (len(x),):
        raise TypeError(f"method {getattr(method, '__name__', method)!r} must return an array "
                        f"with one map per image ({len(x)}), got {type(maps).__name__} "
                        f"{getattr(maps, 'shape', '')}")
    return maps


def _write_shard(out_dir: Path, ids, maps, file_format: str) -> Path:
    """One block's maps and ids in one file, named by its first id, written atomically
    (``_files.atomic_write``): a file is complete or absent (a retried block writes it again)."""
    path = out_dir / f"maps-{int(ids[0]):012d}.{file_format}"
    with _files.atomic_write(path) as temporary:
        if file_format == "npy":
            table = np.empty(len(ids), [("id", np.int64), ("map", maps.dtype, maps.shape[1:])])
            table["id"], table["map"] = ids, maps
            with open(temporary, "wb") as f:
                np.save(f, table)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            tensors = pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(maps))
            pq.write_table(pa.table({"id": pa.array(ids, pa.int64()), "map": tensors}),
                           temporary)
    return path


class _ExplainWorker:
    """One model replica: each block's maps written to one shard; the shard's name out."""

    def __init__(self, spec, method, target, options, out_dir, file_format, columns, threads):
        _use_threads(threads)
        self.model, self.method, self.target, self.options = (_load_model(spec), method, target,
                                                               options)
        self.out_dir, self.file_format = Path(out_dir), file_format
        self.image_column, self.id_column = columns

    def __call__(self, block: dict) -> dict:
        ids = _checks.example_ids(block[self.id_column], len(block[self.id_column]))
        if len(ids) == 0:
            return {"file": np.empty(0, object), "n": np.empty(0, np.int64)}
        order = np.argsort(ids, kind="stable")
        maps = _explained(self.method, self.model, block[self.image_column][order], self.target,
                          self.options)
        path = _write_shard(self.out_dir, ids[order], maps, self.file_format)
        return {"file": np.array([path.name], object), "n": np.array([len(ids)])}


def _out_dir(out_dir) -> Path:
    """The output folder, created; one holding earlier shards or a manifest is refused."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    earlier = sorted(p.name for p in out_dir.iterdir() if p.name.startswith("maps-")
                     or p.name == "manifest.json")
    if earlier:
        raise ValueError(f"out_dir {str(out_dir)!r} holds the results of an earlier run "
                         f"({earlier[0]}, ...); give an empty folder or delete them")
    return out_dir


def explain(model, data, method, out_dir, target, file_format: str = "npy", progress: bool = True,
            *, ids=None, n_workers=None, threads_per_worker: int = 1, block_size="auto",
            image_column: str = IMAGE_COLUMN, id_column: str = ID_COLUMN, address=None,
            map_options=None, **options) -> list:
    r"""An attribution method over every image of a data set, on Ray, written to files.

    method : a name (``"gradient"``, ``"smoothgrad"``, ``"grad_cam"``, ``"rise"``, ...
             ``methods.METHODS``)
             or a function f(model, x, target, \*\*options) returning one map per image
    out_dir : a new or empty folder (visible to every worker on a cluster); each block's maps go
             to one file ``maps-<first id>.npy`` (a structured array with fields "id" and "map")
             or ``.parquet`` (columns "id" and "map", a fixed-shape tensor), so no process holds
             all the maps; ``manifest.json`` lists the files
    target : what to explain, as for the method (a class index or a ``Feature``)
    options : passed to the method (e.g. ``n_samples=50``, ``batch_size=64``)
    model, data, ids, n_workers, ... : as in ``scan``
    Returns the files, in the order of their first id. The method is first run on one image here,
    so a bad target or option stops before any work is sent.

    >>> files = explain(model, x_test, "smoothgrad", "maps/", target=8, n_samples=25)
    >>> ids, maps = read_explanations("maps/")        # maps[i] explains the image with id ids[i]
    """
    local_model, spec = _model_spec(model)
    function = methods.get(method)
    file_format = _checks.one_of(file_format, "file_format", FORMATS)
    block_size = _positive(block_size, "block_size", auto=True)
    connect(address)
    n_workers, resources = _workers(n_workers, threads_per_worker)
    ds = _dataset(data, ids, image_column, id_column, block_size, n_workers)
    _explained(function, local_model, ds.take(1)[0][image_column][None], target, options)
    out_dir = _out_dir(out_dir)
    args = (spec, function, target, options, str(out_dir.resolve()), file_format,
            (image_column, id_column), resources["num_cpus"])
    shards = _run(ds, _ExplainWorker, args, n_workers, resources, map_options)
    rows = list(_rows(shards, progress, f"explain: {methods.name_of(method)}",
                      _n_blocks(ds)))
    rows.sort(key=lambda row: int(row["file"].split("-")[1].split(".")[0]))
    manifest = {"method": methods.name_of(method), "target": repr(target),
                "format": file_format, "n_examples": int(sum(row["n"] for row in rows)),
                "files": [row["file"] for row in rows]}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return [out_dir / row["file"] for row in rows]


def read_explanations(source) -> tuple:
    """(ids (N,), maps (N, ...)) read back from what ``explain`` wrote, sorted by id.

    source : the output folder (its manifest.json lists the files) or a list of files (read just
             those, e.g. one at a time to stay within memory)

    >>> ids, maps = read_explanations("maps/")
    >>> ids, maps = read_explanations(files[:1])          # one block
    """
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not (folder / "manifest.json").is_file():
            raise ValueError(f"{str(source)!r} has no manifest.json: give the out_dir of explain "
                             "or a list of its files")
        files = [folder / name for name in json.loads((folder / "manifest.json").read_text())
                 ["files"]]
    else:
        files = [Path(f) for f in source]
    parts = [_read_shard(f) for f in files]
    ids = np.concatenate([i for i, _ in parts])
    order = np.argsort(ids, kind="stable")
    return ids[order], np.concatenate([m for _, m in parts])[order]


def _read_shard(path: Path) -> tuple:
    """(ids, maps) of one file written by ``_write_shard``."""
    if path.suffix == ".npy":
        table = np.load(path)
        return table["id"], table["map"]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return (table["id"].to_numpy(),
                table["map"].combine_chunks().to_numpy_ndarray())
    raise ValueError(f"{str(path)!r} is not a .npy or .parquet file written by explain")
