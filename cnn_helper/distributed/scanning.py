"""``max_activation.scan`` on Ray: every block of the data scanned by a worker, one model replica
each (``max_activation.scan_part``, with the block's example ids), the partial results merged
on the driver as they arrive (``max_activation.merge``). The result is the one
``max_activation.scan`` gives on the same data, its indices the data's own ids.

Example
-------
>>> from cnn_helper import distributed
>>> scans = distributed.scan(model, x_train, ["conv1", "conv2", "conv3"], count=9)  # local Ray
>>> scans["conv2"].channel(5).high.indices             # as max_activation.scan gives them
"""
from __future__ import annotations

import pickle

import numpy as np

from .. import _checks, _graph, features, max_activation
from .._checks import BATCH_SIZE
from . import _cluster, _sources
from ._sources import ID_COLUMN, IMAGE_COLUMN


class _ScanWorker:
    """One model replica: each block in, its ``max_activation.scan_part`` out (pickled)."""

    def __init__(self, spec, layers, count, pool, batch_size, columns, threads):
        _cluster.use_threads(threads)
        self.model = _sources.load_model(spec)
        self.layers, self.count, self.pool, self.batch_size = layers, count, pool, batch_size
        self.image_column, self.id_column = columns

    def __call__(self, block: dict) -> dict:
        ids = block[self.id_column]
        if len(ids) == 0:
            return {"part": np.empty(0, object), "n": np.empty(0, np.int64)}
        part = max_activation.scan_part(self.model, block[self.image_column], ids, self.layers,
                                        self.count, self.pool, self.batch_size)
        return {"part": np.array([pickle.dumps(part)], object), "n": np.array([len(ids)])}


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
    Returns ``{layer name: LayerScan}`` whose indices are the data's ids (see the docstring of
    ``cnn_helper.distributed`` for how: ``scan_part`` on the workers, ``merge`` on the driver).

    >>> scans = scan(model, x_train, ["conv1", "conv2"], count=9, n_workers=2)
    >>> scans["conv2"].high.indices.shape
    (32, 9)
    """
    local_model, spec = _sources.model_spec(model)
    layers = _checks.layer_list(layers)
    pool = _checks.one_of(pool, "pool", features.POOLS)
    count = _checks.top_count(count)
    names = max_activation.layer_names(local_model, layers)
    batch_size = _graph.batch_size(local_model, batch_size)
    block_size = _cluster.positive(block_size, "block_size", auto=True)
    _cluster.connect(address)
    n_workers, resources = _cluster.workers(n_workers, threads_per_worker)
    ds = _sources.dataset(data, ids, image_column, id_column, block_size, n_workers)
    if not isinstance(data, _cluster.import_ray().data.Dataset):
        _checks.top_count(count, ds.count(), "the data")
    args = (spec, names, count, pool, batch_size, (image_column, id_column), resources["num_cpus"])
    parts = _cluster.run(ds, _ScanWorker, args, n_workers, resources, map_options)
    scans = None
    for row in _cluster.rows(parts, progress, "scan " + ", ".join(names), _cluster.n_blocks(ds)):
        part = pickle.loads(row["part"])
        scans = part if scans is None else max_activation.merge(scans, part, count)
    n = 0 if scans is None else scans[names[0]].n_scanned
    _checks.top_count(count, n, "the data")
    return scans
