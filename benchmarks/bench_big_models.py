"""Cost and memory of the methods on ImageNet-size models (VGG16, ResNet50, weights=None, 224x224).

1. Time: each gradient method against the physical floor of one forward + one backward pass, a
   bare ``tf.function`` taking ``tape.gradient`` of the same logit with respect to the same images
   in the same batch size. SmoothGrad and Integrated Gradients run ``n_samples`` such passes per
   image and are divided by it. Ratio = median over interleaved rounds of method / floor timed in
   the same round (``timing.py``). Target: about 1 (the methods add no work of their own).
2. Memory: the peak resident memory (RSS) that one call adds, at the default ``batch_size``, each
   method in a fresh process. Target: under 4 GB for VGG16 at 224x224.

    python benchmarks/bench_big_models.py [--n 8] [--repeats 3] [--skip-time] [--skip-memory]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from timing import median_times, paired_ratio  # noqa: E402

CLASS = 3
SHAPE = (224, 224, 3)


def build(name):
    import keras

    keras.utils.set_random_seed(0)
    factory = {"VGG16": keras.applications.VGG16, "ResNet50": keras.applications.ResNet50}[name]
    return factory(weights=None, input_shape=SHAPE, classes=10, classifier_activation=None)


def images(n):
    return np.random.default_rng(0).uniform(0, 1, (n,) + SHAPE).astype("float32")


def floor(model):
    """d logit / d x by a bare tape, in chunks: the physical cost of one saliency map."""
    import tensorflow as tf

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logit = model(x, training=False)[:, CLASS]
        return tape.gradient(logit, x)

    return lambda x, batch_size: [np.asarray(step(x[i:i + batch_size]))
                                  for i in range(0, len(x), batch_size)]


def time_ratios(name, n, repeats, batch_size):
    from cnn_helper import saliency

    model, x = build(name), images(n)
    bare = floor(model)
    calls = {
        "floor": lambda: bare(x, batch_size),
        "gradient": lambda: saliency.gradient(model, x, CLASS, batch_size=batch_size),
        "guided": lambda: saliency.guided_backprop(model, x, CLASS, batch_size=batch_size),
        "smoothgrad/2": lambda: saliency.smoothgrad(model, x, CLASS, n_samples=2,
                                                    batch_size=batch_size),
        "IG/2": lambda: saliency.integrated_gradients(model, x, CLASS, n_samples=2,
                                                      batch_size=batch_size),
    }
    t = median_times(calls, repeats)
    per_pass = {"smoothgrad/2": 2, "IG/2": 2}
    cells = []
    for method in list(calls)[1:]:
        ratio = paired_ratio(t["rounds"], method, "floor") / per_pass.get(method, 1)
        cells.append(f"{method} {ratio:.2f}")
    print(f"{name:<9} n={n} batch {batch_size}: floor {t['floor']:.2f} s; per pass / floor: "
          + ", ".join(cells), flush=True)


def _rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_during(call) -> tuple:
    """(resident MB before the call, the highest resident MB while it ran), sampled every 5 ms."""
    import threading

    before, peak, done = _rss_mb(), [0.0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            done.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        call()
    finally:
        done.set()
        watcher.join()
    return before, max(peak[0], _rss_mb())


def measure_memory(name, method, batch_size):
    """Run in a child process: the resident memory one call adds at its peak, in MB."""
    from cnn_helper import _graph, max_activation, occlusion, saliency

    model = build(name)
    x = images(_graph.batch_size(model, batch_size))     # one full batch of images
    calls = {
        "gradient": lambda: saliency.gradient(model, x, CLASS, batch_size=batch_size),
        "guided_backprop": lambda: saliency.guided_backprop(model, x, CLASS, batch_size=batch_size),
        "grad_cam": lambda: saliency.grad_cam(model, x, CLASS, batch_size=batch_size),
        # patch 16, stride 32: 49 occluded copies, enough to fill a batch of 32
        "occlusion": lambda: occlusion.sensitivity_map(model, x[0], CLASS, patch=16, stride=32,
                                                       batch_size=batch_size),
        "scan": lambda: max_activation.scan(model, x, ["block5_conv3"] if name == "VGG16" else
                                            ["conv5_block3_out"], count=2, batch_size=batch_size,
                                            progress=False),
    }
    before, peak = _peak_during(calls[method])
    print(json.dumps({"added_mb": peak - before, "peak_mb": peak, "batch_size": len(x)}))


def memory_table(name, batch_size):
    for method in ("gradient", "guided_backprop", "grad_cam", "occlusion", "scan"):
        out = subprocess.run([sys.executable, __file__, "--child", name, method, str(batch_size)],
                             capture_output=True, text=True, check=True).stdout
        peak = json.loads(out.strip().splitlines()[-1])
        print(f"{name:<9} {method:<16} batch {peak['batch_size']}: +{peak['added_mb']:.0f} MB "
              f"during the call (process peak {peak['peak_mb']:.0f} MB)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="images per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-time", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        size = args.child[2]
        return measure_memory(args.child[0], args.child[1], size if size == "auto" else int(size))
    import tensorflow as tf

    from cnn_helper._checks import BATCH_SIZE

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; default batch_size {BATCH_SIZE}")
    for name in ("VGG16", "ResNet50"):
        if not args.skip_time:
            time_ratios(name, args.n, args.repeats, batch_size=args.n)
        if not args.skip_memory:
            memory_table(name, BATCH_SIZE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
