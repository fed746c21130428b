"""The max-activation scan of Fashion-MNIST's 60,000 training images over every conv layer of the
Fashion-MNIST CNN (conv1, conv2, conv3: 112 channels, top 9 High and Low each) on a local Ray
(2 CPUs, 2 workers x 1 thread, blocks of 5,000), in one Python process, one call after another:

1. a first Ray scan (``distributed.scan``: its workers start: each imports TensorFlow, loads the
   model, compiles its step; the images go into Ray's object store);
2. ``--rounds`` pairs: the plain scan in this process (``max_activation.scan``, the reference,
   run once untimed beforehand), then a repeated Ray scan of the same model and array; pairs,
   so that the load of a shared machine hits both alike (the ratio: the median over pairs);
3. the plain ``saliency.gradient`` of the images in this process, then an explanation after the
   scans (``distributed.explain``, "gradient", class 0, the maps written to .npy files).

The code before (a tree at commit 630d107, where every call started its workers afresh: issue
28) and after run in one invocation, each in a fresh child process (``PYTHONPATH=<tree>``, the
child checks where ``cnn_helper`` came from; its Ray workers import the same tree). For each
call: wall time, the ratio to the plain scan (target: the repeated scan within 1.25x), the peak
of the summed RSS of the Ray worker processes (sampled every 0.2 s), and whether the scan's High
and Low indices equal the plain scan's. The load average (``os.getloadavg``) is printed before
and after each child, since the cores may be shared.

    git worktree add /tmp/t28ray/before 630d107
    python benchmarks/bench_distributed.py --before /tmp/t28ray/before [--images 60000]
    python benchmarks/bench_distributed.py --child <tree>      # one tree, in this process
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

LAYERS = ["conv1", "conv2", "conv3"]
TARGET = 1.25
IMAGENET = 1_281_167
HERE = os.path.dirname(os.path.abspath(__file__))
SCANS = ("plain scan", "first Ray scan", "repeated Ray scan")
CALLS = SCANS + ("plain gradient", "Ray explanation after the scans")


class RayMemory:
    """The peak of the summed RSS of the Ray worker processes ("ray::..."), sampled in a thread."""

    def __init__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        import psutil

        while not self._stop.is_set():
            total = 0
            for p in psutil.process_iter(["cmdline", "memory_info"]):
                cmd = p.info["cmdline"] or []
                if cmd and cmd[0].startswith("ray::") and p.info["memory_info"]:
                    total += p.info["memory_info"].rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(run):
    """(result, seconds, peak RSS of the Ray workers in MiB)."""
    with RayMemory() as memory:
        start = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - start
    return result, seconds, memory.peak / 2**20


def same_scan(a: dict, b: dict) -> bool:
    """Whether two scans name the same High and Low examples of every channel."""
    return all(np.array_equal(a[k].high.indices, b[k].high.indices)
               and np.array_equal(a[k].low.indices, b[k].low.indices) for k in LAYERS)


def child(tree: str, n_images: int, block_size: int, rounds: int) -> None:
    """The calls in this process, on the tree's code; one JSON line (prefixed) out."""
    import ray

    import cnn_helper
    from cnn_helper import data, distributed, max_activation, models, saliency

    where = os.path.realpath(cnn_helper.__file__)
    if not where.startswith(os.path.realpath(tree) + os.sep):
        raise SystemExit(f"cnn_helper imported from {where}, not from the tree {tree}")
    (x, _), _ = data.load_fashion_mnist("debian", verbose=False)
    x, model = x[:n_images], models.load("fashion_cnn", "shipped")
    reference = max_activation.scan(model, x, LAYERS, progress=False)    # also the warm-up
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    options = {"n_workers": 2, "threads_per_worker": 1, "block_size": block_size,
               "progress": False}
    with tempfile.TemporaryDirectory() as out:
        calls = dict(zip(CALLS, (
            lambda: max_activation.scan(model, x, LAYERS, progress=False),
            lambda: distributed.scan(model, x, LAYERS, **options),
            lambda: distributed.scan(model, x, LAYERS, **options),
            lambda: saliency.gradient(model, x, 0),
            lambda: distributed.explain(model, x, "gradient", os.path.join(out, "maps"), 0,
                                        **options))))
        order = ([CALLS[1]] + [CALLS[0], CALLS[2]] * rounds + list(CALLS[3:]))
        rows, load = {name: [] for name in CALLS}, [os.getloadavg()]
        for name in order:
            result, seconds, rss = timed(calls[name])
            rows[name].append({"seconds": seconds, "ray_rss_mib": rss,
                               "same": same_scan(result, reference) if name in SCANS else None})
            print(f"  {name}: {seconds:.1f} s", file=sys.stderr, flush=True)
        load.append(os.getloadavg())
    print("@@" + json.dumps({"file": where, "load": load, "calls": rows}), flush=True)
    ray.shutdown()


def run_child(tree: str, args) -> dict:
    """One tree's calls in a fresh process (cwd and PYTHONPATH: the tree)."""
    env = dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, os.path.abspath(__file__), "--child", tree, "--images",
               str(args.images), "--block-size", str(args.block_size), "--rounds",
               str(args.rounds)]
    out = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("@@")]
    if out.returncode or not lines:
        raise RuntimeError(f"{tree} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][2:])


def report(results: dict, n: int) -> None:
    """The table: each tree's calls (median of its rounds), over that tree's plain scan."""
    print(f"\n{n} images, layers {LAYERS}, count 9; Ray 2 workers x 1 thread, 2 CPUs\n")
    print("| tree | call | runs | wall s (median) | time / plain scan | Ray workers' peak RSS "
          "(MiB) | same result |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for tree, result in results.items():
        calls = result["calls"]
        plain = [run["seconds"] for run in calls["plain scan"]]
        for name, runs in calls.items():
            seconds = [run["seconds"] for run in runs]
            ratio = (np.median(np.divide(seconds, plain)) if name == "repeated Ray scan"
                     else np.median(seconds) / np.median(plain))     # pairs: plain, repeated
            same = {run["same"] for run in runs} - {None}
            print(f"| {tree} | {name} | {len(runs)} | {np.median(seconds):.1f} | {ratio:.2f} | "
                  f"{max(run['ray_rss_mib'] for run in runs):.0f} | "
                  f"{' '.join(map(str, same))} |")
        print(f"  {tree}: load average {result['load'][0]} before, {result['load'][1]} after")
    for tree, result in results.items():
        calls = result["calls"]
        ratios = [r["seconds"] / p["seconds"]
                  for r, p in zip(calls["repeated Ray scan"], calls["plain scan"])]
        print(f"{tree}: repeated Ray scan / plain scan, each round: "
              f"{', '.join(f'{r:.2f}' for r in ratios)} (target <= {TARGET})")
    on_paper(np.median([run["seconds"] for run in results["after"]["calls"]["plain scan"]]) / n)


def on_paper(per_image: float) -> None:
    """ImageNet's training set scanned on N GPU workers, on paper (the assumptions printed)."""
    print(f"\nmeasured: {per_image * 1e3:.3f} ms per image (this CNN, 28x28, 2 CPU threads)")
    print("On paper, ImageNet (1,281,167 images) on N GPU workers. Assumptions: a ResNet50-size "
          "network at 224x224 runs ~1,500 images/s forward on one modern GPU (~0.67 ms per "
          "image), the input pipeline keeps up, the workers start once (~30 s; later scans in "
          "the same process start none), blocks of 10,000 images, ~2 ms to merge each.")
    for n_gpus in (1, 4, 8, 32):
        seconds = IMAGENET * 0.67e-3 / n_gpus + 30 + (IMAGENET / 10_000) * 2e-3
        print(f"  N={n_gpus:>2}: first scan {seconds / 60:.1f} min, a repeated one "
              f"{(seconds - 30) / 60:.1f} min")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--block-size", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="pairs (plain scan, repeated Ray scan), timed one after the other")
    parser.add_argument("--before", default="/tmp/t28ray/before",
                        help="a tree of the code before (git worktree add <it> 630d107)")
    parser.add_argument("--child", metavar="TREE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.images, args.block_size, args.rounds)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average before: {os.getloadavg()}", flush=True)
    results = {}
    for name, tree in (("before", args.before), ("after", os.path.dirname(HERE))):
        print(f"{name}: {tree}", flush=True)
        results[name] = run_child(tree, args)
    print(f"load average after: {os.getloadavg()}")
    report(results, args.images)


if __name__ == "__main__":
    main()
