r"""An attribution method over every image of a data set on Ray, written to files: each worker
of the pool (one model replica, kept for later calls with the same model) explains a block and
writes its maps to one shard (``maps-<first id>.npy`` or ``.parquet``), so no process holds all
the maps; ``manifest.json`` lists the shards, and ``read_explanations`` reads them back (all of
them, or a few at a time).

Example
-------
>>> from cnn_helper import distributed
>>> files = distributed.explain(model, x_train, "gradient", "maps/", target=3)
>>> ids, maps = distributed.read_explanations("maps/")   # maps[i] explains the image ids[i]
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import _checks, _files, methods
from . import _cluster, _pool, _sources
from ._sources import ID_COLUMN, IMAGE_COLUMN

FORMATS = ("npy", "parquet")


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


def _explain_block(model, images, ids, method, target, options, out_dir, file_format) -> dict:
    """One block's maps written to one shard (a worker's job): {"file": its name, "n": rows}."""
    ids = _checks.example_ids(ids, len(ids))
    order = np.argsort(ids, kind="stable")
    maps = _explained(method, model, images[order], target, options)
    path = _write_shard(Path(out_dir), ids[order], maps, file_format)
    return {"file": path.name, "n": len(ids)}


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
            worker_options=None, **options) -> list:
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
    model, data, ids, n_workers, ... : as in ``scan`` (the same pool of workers: an explanation
             after a scan of the same model starts none)
    Returns the files, in the order of their first id. The method is first run on one image here,
    so a bad target or option stops before any work is sent.

    >>> files = explain(model, x_test, "smoothgrad", "maps/", target=8, n_samples=25)
    >>> ids, maps = read_explanations("maps/")        # maps[i] explains the image with id ids[i]
    """
    source = _sources.ModelSource(model)
    function = methods.get(method)
    file_format = _checks.one_of(file_format, "file_format", FORMATS)
    block_size = _cluster.positive(block_size, "block_size", auto=True)
    _cluster.connect(address)
    n_workers, threads, resources = _cluster.workers(n_workers, threads_per_worker)
    columns = (image_column, id_column)
    with _cluster.quiet(data):                  # only the package's bar on the terminal
        in_blocks = _sources.data_blocks(data, ids, columns, block_size, n_workers)
        _explained(function, source.model, in_blocks.first(), target, options)
        out_dir = _out_dir(out_dir)
        workers = _pool.workers(source, n_workers, threads, resources, worker_options)
        shards = _pool.run(workers, in_blocks.blocks, _explain_block, columns,
                           (function, target, options, str(out_dir.resolve()), file_format))
        rows = list(_cluster.progress_bar(shards, progress,
                                          f"explain: {methods.name_of(method)}",
                                          in_blocks.n_blocks))
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
