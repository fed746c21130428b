"""The pool of workers ``cnn_helper.distributed`` keeps between calls: Ray actors that have
imported TensorFlow and loaded a model, started by the first scan or explanation of that model
and reused by every later one in this Python process, so that only the first call pays their
start-up (about 24 s on a loaded 2-core machine: each worker imports TensorFlow, loads the model
and compiles its step) and a repeated scan costs about what the plain scan costs.

The pool holds the workers of one model at a time, named by what the model computes (a digest of
its architecture and of every weight, ``ModelSource.key``) and by the workers asked for (how
many, their threads, resources and options): a model whose weights changed, even in place, gets
new workers and never the old weights. Asking for another model or other workers ends the pool's
workers first (each holds its memory, and a GPU where there are GPUs). ``shutdown_workers()``
ends them at once; ``ray.shutdown()`` and the end of the Python process end them too (Ray ends
the actors a driver started), and a pool of an earlier Ray session is never used.

A worker whose process dies is restarted by Ray and its unanswered calls are sent again
(``max_restarts=-1``, ``max_task_retries=-1``): a block's result depends on the block alone, so
a retry changes nothing. A worker's constructor takes nothing from Ray's object store (Ray
cannot promise such arguments to a restart: ray-project/ray#53727, and says so once per worker):
the model's ObjectRef comes with every call, and a worker that has no model yet (a new or a
restarted one) loads it from there. A call that fails otherwise ends the pool's workers (the
calls still running are cancelled first, so that none is retried on a worker being ended; the
next call starts new ones).

A private module: ``workers``, ``run`` and ``shutdown_workers`` are what ``scan`` and
``explain`` share; ``shutdown_workers`` is public as ``cnn_helper.distributed.shutdown_workers``.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import sys

from . import _cluster, _sources

IN_FLIGHT = 2       # blocks sent ahead to each worker, so it never waits for its next block
ABANDON_WAIT_S = 10     # a failed call waits at most this long for the other calls out

_POOL = {"key": None, "workers": [], "model": None}   # "model": the ObjectRef of its spec


class _Worker:
    """One model replica: TensorFlow imported when it starts, the model loaded by its first call,
    then any job on blocks: ``job(model, images, ids, *args)`` on rows start:stop of a block.
    ``model`` is ``[ObjectRef of the model's spec]``: in a list, so that Ray hands the reference
    over without fetching the model for every call; it is read once."""

    def __init__(self, threads: int):
        _cluster.use_threads(threads)          # before TensorFlow starts
        self.model = None

    def run(self, model, block, start, stop, task):
        if self.model is None:
            self.model = _sources.load_model(_cluster.import_ray().get(model[0]))
        job, columns, args = task
        images, ids = _sources.columns(block, *columns, start, stop)
        return job(self.model, images, ids, *args) if len(ids) else None


@functools.cache
def _actor_class():
    """``_Worker`` as a Ray actor class, restarted (with its calls) when its process dies."""
    return _cluster.import_ray().remote(max_restarts=-1, max_task_retries=-1)(_Worker)


def workers(source, n_workers: int, threads: int, resources: dict, options=None) -> list:
    """The pool's workers for the model ``source`` (a ``ModelSource``): the ones kept from an
    earlier call when they were asked for alike, else new ones (the old ones ended)."""
    ray = _cluster.import_ray()
    options = dict(options or {})
    key = (_cluster.session(), source.key, n_workers, threads, sorted(resources.items()),
           sorted(options.items(), key=lambda item: item[0]))
    if _POOL["key"] == key:
        return _POOL["workers"]
    shutdown_workers()
    spec = ray.put(source.spec())       # one copy for all of them, kept while they live (restarts)
    actor = _actor_class().options(scheduling_strategy="SPREAD", **resources, **options)
    _POOL.update(key=key, workers=[actor.remote(threads) for _ in range(n_workers)], model=spec)
    return _POOL["workers"]


def run(workers: list, blocks, job, columns: tuple, args: tuple):
    """The results of ``job(model, images, ids, *args)`` on every block of ``blocks`` ((block,
    start, stop) each), as they arrive (in any order; blocks with no rows give none). Each
    worker has up to ``IN_FLIGHT`` blocks at a time and gets the next as soon as one is done;
    every call carries the ref of the pool's model (``workers``: these workers' model)."""
    ray = _cluster.import_ray()
    task, blocks, running = ray.put((job, columns, args)), _generator(blocks), {}
    model = [_POOL["model"]]

    def send(worker):
        for block, start, stop in itertools.islice(blocks, 1):
            running[worker.run.remote(model, block, start, stop, task)] = worker

    try:
        for worker in workers * IN_FLIGHT:
            send(worker)
        while running:
            [done], _ = ray.wait(list(running), num_returns=1)
            send(running.pop(done))
            result = ray.get(done)
            if result is not None:
                yield result
    except BaseException:
        _abandon(list(running))
        raise
    finally:
        blocks.close()          # a Ray dataset's execution ends now, within the call (quiet)


def _generator(items):
    """``items`` as a generator (one that can be closed)."""
    yield from items


def _abandon(calls: list):
    """End the pool's workers when a call failed or the caller stopped. The calls still out are
    cancelled first (Ray retries no cancelled call; one that runs finishes its block) and waited
    for, at most ``ABANDON_WAIT_S``, so that the workers end idle; each outcome is read (the
    error raised is the first one; Ray would print any other error nobody read as "Unhandled
    error")."""
    ray, done = _cluster.import_ray(), []
    try:
        if calls and _ray_connected():
            for call in calls:
                ray.cancel(call)
            done = ray.wait(calls, num_returns=len(calls), timeout=ABANDON_WAIT_S)[0]
    finally:
        shutdown_workers()
    for call in done:
        with contextlib.suppress(Exception):
            ray.get(call)


def shutdown_workers() -> int:
    """End the workers the pool keeps (their processes and memory; a GPU where they hold one)
    and drop the array kept in Ray's object store; the next scan or explanation starts new ones.
    Returns how many workers were ended.

    >>> distributed.scan(model, x_train, "conv2")     # starts the workers (about 24 s here)
    >>> distributed.scan(model, x_train, "conv3")     # the same workers: no start-up
    >>> distributed.shutdown_workers()
    2
    """
    kept = _POOL["workers"]
    alive = bool(kept) and _ray_connected() and _POOL["key"][0] == _cluster.session()
    for worker in kept if alive else []:
        _cluster.import_ray().kill(worker)
    _POOL.update(key=None, workers=[], model=None)
    _sources.forget_stored()
    return len(kept) if alive else 0


def _ray_connected() -> bool:
    """Whether this process is connected to a Ray (without importing Ray when it never was)."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()
