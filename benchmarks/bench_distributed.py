"""The max-activation scan of Fashion-MNIST's 60,000 training images over every conv layer of the
Fashion-MNIST CNN (conv1, conv2, conv3: 112 channels, top 9 High and Low each): one process
(``max_activation.scan``) against a local Ray (``distributed.scan``) with 2 workers of 1 thread
each and with 1 worker of 2 threads; and the fixed cost of a Ray run (workers started, 200
images scanned), to tell start-up from throughput.

For each run: wall time (a Ray run includes starting its workers: each imports TensorFlow and
loads the model), throughput, the ratio to the plain scan (target: Ray within 1.25x), and peak
memory (the driver's peak RSS; the peak of the summed RSS of all Ray worker processes, sampled
every 0.2 s). The machine's load average (``os.getloadavg``) is printed before and after, since
the cores may be shared. Each run's result is checked to be the plain scan's (indices).

From the measured per-image cost it prints, on paper, the time of a scan of ImageNet's 1.28 M
training images on N GPU workers (the assumptions are printed with it).

    python benchmarks/bench_distributed.py [--images 60000] [--block-size 5000]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from cnn_helper import data, distributed, max_activation, models  # noqa: E402

LAYERS = ["conv1", "conv2", "conv3"]
TARGET = 1.25
IMAGENET = 1_281_167


class RayMemory:
    """The peak of the summed RSS of the Ray worker processes ("ray::..."), sampled in a thread."""

    def __init__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
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
    """(result, seconds, peak RSS of the Ray workers in bytes)."""
    with RayMemory() as memory:
        start = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - start
    return result, seconds, memory.peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--block-size", type=int, default=5_000)
    args = parser.parse_args()
    import ray

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average before: {os.getloadavg()}")
    (x, _), _ = data.load_fashion_mnist(verbose=True)
    x = x[:args.images]
    model = models.load("fashion_cnn", "shipped")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    runs = {
        "plain scan, 1 process": lambda: max_activation.scan(model, x, LAYERS, progress=False),
        "Ray, 2 workers x 1 thread": lambda: distributed.scan(
            model, x, LAYERS, n_workers=2, threads_per_worker=1, block_size=args.block_size,
            progress=False),
        "Ray, 1 worker x 2 threads": lambda: distributed.scan(
            model, x, LAYERS, n_workers=1, threads_per_worker=2, block_size=args.block_size,
            progress=False),
        "Ray, 2 workers x 1 thread, 2 blocks of 100 (fixed cost)": lambda: distributed.scan(
            model, x[:200], LAYERS, n_workers=2, block_size=100, progress=False),
    }
    rows = {}
    for name, run in runs.items():
        result, seconds, workers = timed(run)
        rows[name] = (result, seconds, workers)
        print(f"  {name}: {seconds:.1f} s", flush=True)
    driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024       # kB -> MiB
    print(f"load average after: {os.getloadavg()}")
    report(rows, len(x), driver)
    ray.shutdown()


def report(rows, n, driver_mib):
    plain_result, plain_seconds, _ = rows["plain scan, 1 process"]
    print(f"\n{n} images, layers {LAYERS}, count 9; driver peak RSS {driver_mib:.0f} MiB\n")
    print("| run | wall s | images/s | time / plain | Ray workers' peak RSS (MiB) | same result |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, (result, seconds, workers) in rows.items():
        if "fixed cost" in name:
            print(f"| {name} | {seconds:.1f} | | | {workers / 2**20:.0f} | |")
            continue
        same = all(np.array_equal(result[k].high.indices, plain_result[k].high.indices)
                   and np.array_equal(result[k].low.indices, plain_result[k].low.indices)
                   for k in LAYERS)
        print(f"| {name} | {seconds:.1f} | {n / seconds:.0f} | {seconds / plain_seconds:.2f} "
              f"| {workers / 2**20:.0f} | {same} |")
    fixed = rows["Ray, 2 workers x 1 thread, 2 blocks of 100 (fixed cost)"][1]
    for name in ("Ray, 2 workers x 1 thread", "Ray, 1 worker x 2 threads"):
        print(f"{name}, less the fixed cost of a run: {(rows[name][1] - fixed) / plain_seconds:.2f}"
              " x the plain scan")
    per_image = plain_seconds / n
    print(f"\nmeasured: {per_image * 1e3:.3f} ms per image (this CNN, 28x28, 2 CPU threads); "
          f"target Ray/plain <= {TARGET}")
    print("\nOn paper, ImageNet (1,281,167 images) on N GPU workers. Assumptions: a scan costs one "
          "forward pass plus the top-k merge; a ResNet50-size network at 224x224 runs ~1,500 "
          "images/s forward on one modern GPU (fp32/TF32, batch 256), i.e. ~0.67 ms per image, "
          "and the input pipeline (JPEG decode, resize) keeps up (~8 CPU cores per GPU); per "
          "worker start-up ~30 s; blocks of 10,000 images, merging ~2 ms per block on the driver.")
    for n_gpus in (1, 4, 8, 32):
        seconds = IMAGENET * 0.67e-3 / n_gpus + 30 + (IMAGENET / 10_000) * 2e-3
        print(f"  N={n_gpus:>2}: {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
