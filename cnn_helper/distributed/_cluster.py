"""Ray for ``cnn_helper.distributed``: imported only when used (the ``ray`` extra), started or
joined once (``connect``), which Ray this process is connected to (``session``), kept quiet while
the package uses it (``quiet``), the workers a data set runs through: how many, the TensorFlow
threads and the resources of each, and a progress bar over the blocks they return.

The terminal shows the package's own progress bar and lines, and errors. A local Ray the package
starts logs only its errors (``ray.init(logging_level=ERROR)``: not "Started a local Ray
instance" and the like). Ray Data's progress bars and its INFO and WARNING lines ("Starting
execution", "Execution finished", ...) are turned off only while a call runs (``quiet``), on the
DataContext of the call's dataset and the current one, and put back afterwards: the user's own
settings and datasets are theirs again when the call returns. Ray Data still writes its whole log
to its file in the Ray session's folder.

A private module: its names are what ``scan``, ``explain`` and the pool of workers (``_pool``)
share. ``connect`` is public as ``cnn_helper.distributed.connect``.
"""
from __future__ import annotations

import contextlib
import logging

from .. import _checks, _quiet


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
    A local Ray started here logs only its errors in this process (``logging_level=ERROR``: no
    "Started a local Ray instance"); its processes keep their own log files under /tmp/ray.

    >>> connect()                    # a local Ray with every CPU of this machine
    >>> connect("ray://head:10001")  # a cluster: files and paths must be visible to its workers
    """
    ray = import_ray()
    if not ray.is_initialized():
        local = {"include_dashboard": False, "logging_level": logging.ERROR}
        ray.init(address=address, **(local if address is None else {}))
    return ray


class _ErrorsOnly(logging.Filter):
    """Lets only ERROR and CRITICAL records through (a handler's filter while a call runs)."""

    def filter(self, record):
        return record.levelno >= logging.ERROR


@contextlib.contextmanager
def quiet(data=None):
    """Ray Data without its progress bars (``enable_progress_bars`` of the current DataContext and
    of ``data``'s, when it is a dataset) and with only ERROR lines on the terminal (a filter on the
    console handlers of the ``ray.data`` logger; its log file keeps everything), for the block;
    afterwards everything is as it was.

    >>> with quiet(ds):
    ...     blocks = list(ds.iter_internal_ref_bundles())     # no bars, no "Starting execution"
    """
    ray = import_ray()
    own = data.context if isinstance(data, ray.data.Dataset) else None
    contexts = {id(c): c for c in (ray.data.DataContext.get_current(), own) if c is not None}
    bars = {key: context.enable_progress_bars for key, context in contexts.items()}
    consoles = [h for h in logging.getLogger("ray.data").handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    errors_only = _ErrorsOnly()
    try:
        for context in contexts.values():
            context.enable_progress_bars = False
        for handler in consoles:
            handler.addFilter(errors_only)
        yield
    finally:
        for key, context in contexts.items():
            context.enable_progress_bars = bars[key]
        for handler in consoles:
            handler.removeFilter(errors_only)


# --------------------------------------------------------------------------- the workers


def use_threads(threads: int):
    """TensorFlow in this process uses ``threads`` threads per op (set before it starts)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def session() -> tuple:
    """Which Ray this process is connected to now: (the driver's node id, the job id). Actors and
    objects of an earlier session (before a ``ray.shutdown()``) are gone in a later one."""
    context = import_ray().get_runtime_context()
    return context.get_node_id(), context.get_job_id()


def workers(n_workers, threads_per_worker) -> tuple:
    """(number of workers, TensorFlow threads of each, the Ray resources each holds): one worker
    per GPU when the cluster has GPUs (each holds its GPU), else one per ``threads_per_worker``
    CPUs. A CPU worker holds no CPU in Ray's accounting (Ray's default for an actor: 1 CPU to be
    placed, none while it lives), so idle workers kept in the pool never stop other Ray tasks."""
    ray = import_ray()
    threads = positive(threads_per_worker, "threads_per_worker")
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if n_workers is None:
        n_workers = gpus or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
    return positive(n_workers, "n_workers"), threads, {"num_gpus": 1} if gpus else {}


def positive(value, name: str, auto: bool = False):
    """``value`` as a positive int (or "auto" where that is allowed)."""
    if auto and value == "auto":
        return value
    if not _checks.is_int(value) or value < 1:
        allowed = "a positive int or 'auto'" if auto else "a positive int"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- progress


def progress_bar(results, progress: bool, desc: str, total=None):
    """The ``results`` of the blocks as they arrive, with a progress bar over blocks."""
    with _quiet.progress_bar(progress, total=total, unit="block", desc=desc) as bar:
        for result in results:
            yield result
            bar.update(1)
