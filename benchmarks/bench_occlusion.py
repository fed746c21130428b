"""Occlusion of one MNIST image, patch 4 stride 1 (784 occluded copies): time / bare forward pass.

The physical cost of an occlusion map is the forward passes of its occluded copies. The bare
reference runs the same 784 occluded images, made beforehand and held in a NumPy array, through
the compiled model in the same batch size. ``sensitivity_map`` builds the copies from masks inside
its compiled step, runs them, and also runs the un-occluded image (785 images in all).
Target: ratio <= 1.2.

Each figure is the median of ``--repeats`` interleaved rounds after a warm-up call; the ratio is
the median of the per-round ratios (robust to a machine whose load changes).

    python benchmarks/bench_occlusion.py [--repeats 15]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from timing import bare_forward, median_times, paired_ratio  # noqa: E402

from cnn_helper import data, models, occlusion  # noqa: E402

TARGET = 1.2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    import tensorflow as tf

    model = models.load("cnn", "shipped")
    (_, _), (x_test, y_test) = data.load_mnist("bundled", verbose=False)
    x = x_test[y_test == 8][0]                       # one test 8
    locations = [(r, c) for r in range(x.shape[0]) for c in range(x.shape[1])]
    occluded = occlusion.occlude(x, locations, patch=4)   # the same 784 images, made beforehand
    forward = bare_forward(model)
    print(f"course CNN, one test '8', patch 4 stride 1: {len(occluded)} occluded copies; "
          f"TensorFlow {tf.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {len(tf.config.list_physical_devices('GPU'))} GPUs")
    print(f"{'batch':>5} {'occlusion ms':>12} {'bare forward ms':>15} {'ratio':>6}")
    worst = 0.0
    for batch_size in (64, 256, 1024):
        t = median_times({
            "occlusion": lambda: occlusion.sensitivity_map(model, x, 8, patch=4, stride=1,
                                                           batch_size=batch_size),
            "forward": lambda: forward(occluded, batch_size),
        }, args.repeats)
        ratio = paired_ratio(t["rounds"], "occlusion", "forward")
        worst = max(worst, ratio)
        print(f"{batch_size:>5} {1e3 * t['occlusion']:>12.1f} {1e3 * t['forward']:>15.1f} "
              f"{ratio:>6.2f}")
    ok = worst <= TARGET
    print(f"worst occlusion / bare forward ratio: {worst:.2f} (target <= {TARGET}): "
          f"{'OK' if ok else 'TOO SLOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
