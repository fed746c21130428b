"""Ray for ``cnn_helper.distributed``: imported only when used (the ``ray`` extra), started or
joined once (``connect``), and the pool of workers a data set runs through: how many, the CPU
threads of each, one call per block, the rows that come back.

A private module: its names are what ``scan`` and ``explain`` share. ``connect`` is public as
``cnn_helper.distributed.connect``.
"""
from __future__ import annotations

from .. import _checks


def import_ray():
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
    ray = import_ray()
    if not ray.is_initialized():
        options = {"include_dashboard": False} if address is None else {}
        ray.init(address=address, **options)
    return ray


# --------------------------------------------------------------------------- the workers


def use_threads(threads: int):
    """TensorFlow in this process uses ``threads`` threads per op (set before it starts)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def workers(n_workers, threads_per_worker):
    """(number of workers, resources of each): one per GPU when the cluster has GPUs, else one per
    ``threads_per_worker`` CPUs."""
    ray = import_ray()
    threads = positive(threads_per_worker, "threads_per_worker")
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if n_workers is None:
        n_workers = gpus or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
    return positive(n_workers, "n_workers"), {"num_cpus": threads, "num_gpus": 1 if gpus else 0}


def positive(value, name: str, auto: bool = False):
    """``value`` as a positive int (or "auto" where that is allowed)."""
    if auto and value == "auto":
        return value
    if not _checks.is_int(value) or value < 1:
        allowed = "a positive int or 'auto'" if auto else "a positive int"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- running them


def run(ds, worker, constructor_args, n_workers, resources, map_options):
    """``ds`` through a pool of ``n_workers`` actors of class ``worker``, one call per block.
    Ray Data restarts an actor that dies and sends its block again (its default for actor pools:
    ``max_restarts=-1``, ``max_task_retries=-1``)."""
    ray = import_ray()
    return ds.map_batches(worker, batch_size=None, batch_format="numpy",
                          compute=ray.data.ActorPoolStrategy(size=n_workers),
                          fn_constructor_args=constructor_args, **resources, **(map_options or {}))


def rows(ds, progress: bool, desc: str, total=None):
    """The rows of ``ds`` as they arrive, with a progress bar over blocks (Ray's own bars off:
    they live in the dataset's copy of the DataContext)."""
    from tqdm.auto import tqdm

    ds.context.enable_progress_bars = False
    with tqdm(total=total, unit="block", desc=desc, disable=not progress) as bar:
        for row in ds.iter_rows():
            yield row
            bar.update(1)


def n_blocks(ds):
    """How many blocks ``ds`` has, when it is known without running it (else None)."""
    try:
        return ds.num_blocks()
    except (AttributeError, NotImplementedError, ValueError):
        return None
