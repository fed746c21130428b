"""``max_activation.scan`` on Ray: every block of the data scanned by a worker of the pool, one
model replica each (``max_activation.scan_part``, with the block's example ids), the partial
results merged on the driver as they arrive (``max_activation.merge``). The result is the one
``max_activation.scan`` gives on the same data, its indices the data's own ids.

Example
-------
>>> from cnn_helper import distributed
>>> scans = distributed.scan(model, x_train, ["conv1", "conv2", "conv3"], count=9)  # local Ray
>>> scans["conv2"].channel(5).high.indices             # as max_activation.scan gives them
"""
from __future__ import annotations

from .. import _checks, _graph, features, max_activation
from .._checks import BATCH_SIZE
from . import _cluster, _pool, _sources
from ._sources import ID_COLUMN, IMAGE_COLUMN


def scan(model, data, layers, count: int = 9, pool: str = "max", batch_size=BATCH_SIZE,
         progress: bool = True, *, ids=None, n_workers=None, threads_per_worker: int = 1,
         block_size="auto", image_column: str = IMAGE_COLUMN, id_column: str = ID_COLUMN,
         address=None, worker_options=None) -> dict:
    r"""``max_activation.scan`` over the workers of a Ray cluster: the top ``count`` High and Low
    examples of every channel of each layer of ``layers``, the same result.

    model : a Keras model (saved to a temporary .keras file that every worker loads; the model
            itself is untouched), the path of a .keras file, or a builder (a function without
            arguments that returns the model, for a model that cannot be saved). Its workers are
            kept for later calls with the same model and workers (``shutdown_workers``)
    data  : a ``ray.data.Dataset`` with columns ``image_column`` (images (H, W, C)) and
            ``id_column`` (distinct integers); or an array of images with optional ``ids`` (default:
            positions); or a list of .npy files (ids: positions in the files one after the other)
    count, pool, batch_size, progress : as in ``max_activation.scan`` (the bar counts blocks)
    n_workers, threads_per_worker : model replicas (Ray actors), and the TensorFlow threads
            of each; default one worker per GPU of the cluster, else one per CPU
    block_size : images per block (one partial scan each) for arrays and files; "auto" gives
            about ``BLOCKS_PER_WORKER`` blocks per worker. A Ray dataset keeps its own blocks;
            an array stays in Ray's object store for the next call with equal images and ids
    address : None for a local Ray (started here unless Ray is initialized), "auto" or
            "ray://host:port" for an existing cluster (see ``connect``)
    worker_options : more options of the workers (Ray actors: the keywords of
            ``ray.remote``), e.g. ``{"memory": 4e9}`` or ``{"accelerator_type": "A100"}``
    Returns ``{layer name: LayerScan}``, indices: the data's ids (see ``cnn_helper.distributed``).

    >>> scans = scan(model, x_train, ["conv1", "conv2"], count=9, n_workers=2)
    >>> scans["conv2"].high.indices.shape
    (32, 9)
    """
    source = _sources.ModelSource(model)
    layers = _checks.layer_list(layers)
    pool = _checks.one_of(pool, "pool", features.POOLS)
    count = _checks.top_count(count)
    names = max_activation.layer_names(source.model, layers)
    batch_size = _graph.batch_size(source.model, batch_size)
    block_size = _cluster.positive(block_size, "block_size", auto=True)
    _cluster.connect(address)
    n_workers, threads, resources = _cluster.workers(n_workers, threads_per_worker)
    columns, scans, desc = (image_column, id_column), None, "scan " + ", ".join(names)
    with _cluster.quiet(data):                  # only the package's bar on the terminal
        in_blocks = _sources.data_blocks(data, ids, columns, block_size, n_workers)
        _checks.top_count(count, in_blocks.n_examples, "the data")  # None (a Ray dataset): later
        workers = _pool.workers(source, n_workers, threads, resources, worker_options)
        parts = _pool.run(workers, in_blocks.blocks, max_activation.scan_part, columns,
                          (names, count, pool, batch_size))
        for part in _cluster.progress_bar(parts, progress, desc, in_blocks.n_blocks):
            scans = part if scans is None else max_activation.merge(scans, part, count)
    _checks.top_count(count, 0 if scans is None else scans[names[0]].n_scanned, "the data")
    return scans
