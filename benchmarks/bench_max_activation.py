"""Max-activation scan of every channel of conv1, conv2 and conv3 over the bundled training data
(4000 images) against ``model.predict`` on the same data: throughput ratio (target >= 0.8).

``scan`` runs one multi-output sub-model over the data once, pools each map to its max inside the
compiled step and merges the batch's candidates into the running top-9 High and Low of each of the
112 channels. ``model.predict`` runs the whole model (whose cost is dominated by the same
convolutions) in the same batch size. Throughput ratio = predict time / scan time. For reference,
the bare compiled forward pass of the whole model over the same batches (no Keras ``predict``
machinery) is also timed: scan / forward shows how close the scan stays to the physical cost.

Each figure is the median of ``--repeats`` interleaved rounds after a warm-up call; the ratio is
the median of the per-round ratios (robust to a machine whose load changes).

    python benchmarks/bench_max_activation.py [--repeats 9]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from timing import bare_forward, median_times, paired_ratio  # noqa: E402

from cnn_helper import data, max_activation, models  # noqa: E402

TARGET = 0.8
LAYERS = ["conv1", "conv2", "conv3"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)

    import tensorflow as tf

    model = models.load("cnn", "shipped")
    (x_train, _), (_, _) = data.load_mnist("bundled", verbose=False)
    forward = bare_forward(model)
    print(f"course CNN, scan of {LAYERS} over {len(x_train)} training images; TensorFlow "
          f"{tf.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{len(tf.config.list_physical_devices('GPU'))} GPUs")
    print(f"{'batch':>5} {'scan s':>7} {'predict s':>9} {'forward s':>9} {'scan img/s':>10} "
          f"{'predict img/s':>13} {'scan/forward time':>17} {'throughput ratio':>16}")
    worst = float("inf")
    for batch_size in (256, 1024):
        t = median_times({
            "scan": lambda: max_activation.scan(model, x_train, LAYERS, count=9,
                                                batch_size=batch_size, progress=False),
            "predict": lambda: model.predict(x_train, batch_size=batch_size, verbose=0),
            "forward": lambda: forward(x_train, batch_size),
        }, args.repeats)
        ratio = paired_ratio(t["rounds"], "predict", "scan")
        worst = min(worst, ratio)
        n = len(x_train)
        print(f"{batch_size:>5} {t['scan']:>7.3f} {t['predict']:>9.3f} {t['forward']:>9.3f} "
              f"{n / t['scan']:>10.0f} {n / t['predict']:>13.0f} "
              f"{paired_ratio(t['rounds'], 'scan', 'forward'):>17.2f} {ratio:>16.2f}")
    ok = worst >= TARGET
    print(f"worst scan / predict throughput ratio: {worst:.2f} (target >= {TARGET}): "
          f"{'OK' if ok else 'TOO SLOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
