"""Guided backprop time / vanilla gradient time on the course MNIST CNN (target: <= 1.5).

Both run the same compiled step (a ``tf.function`` with a fixed input signature: no retracing
across calls, channels or batch sizes): one forward and one backward pass per image; guided
backprop runs it on the cached clone whose ReLUs carry the guided backward rule. The physical cost
of a saliency map is therefore about one forward + one backward pass; a bare forward pass of the
same images is printed for reference.

Each time is the median of ``--repeats`` timed calls after a warm-up call (which traces the
step and, for guided backprop, builds the clone). Calls of the methods are interleaved, and the
ratio is the median over rounds of guided / gradient timed in the same round, so a change in
machine load hits both alike.

    python benchmarks/bench_saliency.py [--n 256] [--repeats 9]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from timing import bare_forward, median_times, paired_ratio  # noqa: E402  (benchmarks/timing.py)

from cnn_helper import Feature, data, models, saliency  # noqa: E402


def timed_with_cpu(calls: dict, repeats: int):
    """``timing.median_times`` of the calls, plus each call's CPU seconds (this process, all
    threads) per round: on a shared machine wall time also counts other programs' load."""
    cpu = {name: [] for name in calls}

    def counting(name, call):
        def run():
            start = time.process_time()
            call()
            cpu[name].append(time.process_time() - start)
        return run

    wall = median_times({name: counting(name, call) for name, call in calls.items()}, repeats)
    cpu = {name: t[1:] for name, t in cpu.items()}   # without the warm-up call
    return wall, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="test images (default 256)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    import tensorflow as tf

    model = models.load("cnn")
    mnist = data.load(verbose=False)
    x = mnist.test[0][:args.n]
    forward = bare_forward(model)
    print(f"course CNN, {len(x)} test images ({mnist.source} MNIST); TensorFlow {tf.__version__}, "
          f"{os.cpu_count()} CPUs, {len(tf.config.list_physical_devices('GPU'))} GPUs, "
          f"load average {os.getloadavg()[0]:.1f}; median of {args.repeats} rounds, "
          "wall ms (CPU ms)")
    print(f"{'target':<30} {'batch':>5} {'forward':>13} {'gradient':>13} {'guided':>13} "
          f"{'deconvnet':>13}   guided/gradient wall (CPU)")
    ratios = []
    for target in (Feature("logits", 8), 8, Feature("conv2", 5)):
        for batch_size in (32, 256):
            wall, cpu = timed_with_cpu({
                "forward": lambda: forward(x, batch_size),
                "gradient": lambda: saliency.gradient(model, x, target, batch_size=batch_size),
                "guided": lambda: saliency.guided_backprop(model, x, target, batch_size=batch_size),
                "deconvnet": lambda: saliency.deconvnet(model, x, target, batch_size=batch_size),
            }, args.repeats)
            ratio = paired_ratio(wall["rounds"], "guided", "gradient")
            cpu_ratio = float(np.median(np.divide(cpu["guided"], cpu["gradient"])))
            ratios.append(ratio)
            name = (str(target) if isinstance(target, Feature)
                    else f"head class {target} (probability)")
            cells = " ".join(f"{1e3 * wall[k]:>6.1f} ({1e3 * np.median(cpu[k]):>4.0f})"
                             for k in ("forward", "gradient", "guided", "deconvnet"))
            print(f"{name:<30} {batch_size:>5} {cells}   {ratio:.2f} ({cpu_ratio:.2f})")
    print(f"worst guided/gradient wall-time ratio: {max(ratios):.2f} (target <= 1.5): "
          f"{'OK' if max(ratios) <= 1.5 else 'TOO SLOW'}")
    return 0 if max(ratios) <= 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
