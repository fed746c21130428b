"""Sanity checks and faithfulness against the bare passes they need (target: within 1.3x).

1. Deletion and insertion of 100 MNIST maps in 28 steps: 100 x 29 changed images through the
   model, against the model's bare compiled forward pass of 100 x 29 images (already built) in
   the same batches.
2. A cascading randomization of the course CNN's 5 layers with weights for gradient-type methods
   (gradient, gradient x input, guided backprop) on 100 images: 6 maps per image (trained + 5
   steps), against 6 bare compiled gradient computations (a ``tf.GradientTape`` of the model's
   output for class 8) of the same 100 images. The randomization also re-initializes the layers
   and computes the four similarity measures, all counted in its time (they run in a thread
   while the next step's maps are computed); "measures alone" times them for the 5 steps.

Each time is the median over ``--repeats`` interleaved rounds after a warm-up (``timing.py``);
the ratio is the median of the per-round ratios.

    python benchmarks/bench_trust.py [--n 100] [--repeats 5] [--out FILE]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from timing import bare_forward, median_times, paired_ratio  # noqa: E402  (benchmarks/timing.py)

from cnn_helper import data, faithfulness, models, saliency, sanity_checks  # noqa: E402

STEPS = 28


def bare_gradient(model, target: int):
    """The bare compiled gradient of the model's output ``target`` with respect to its input."""
    import tensorflow as tf

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            s = model(x, training=False)[:, target]
        return tape.gradient(s, x)

    return lambda x: np.asarray(step(tf.constant(x)))


def faithfulness_rows(model, x, maps, repeats) -> list:
    batch = 1024                              # batch_size "auto" for the course CNN
    copies = np.repeat(x, STEPS + 1, axis=0)
    forward = bare_forward(model)
    times = median_times({
        "deletion": lambda: faithfulness.deletion(model, x, 8, maps, STEPS),
        "insertion": lambda: faithfulness.insertion(model, x, 8, maps, STEPS),
        "bare forward": lambda: forward(copies, batch)}, repeats)
    return [(kind, len(copies), times[kind], times["bare forward"],
             paired_ratio(times["rounds"], kind, "bare forward"))
            for kind in ("deletion", "insertion")]


def randomization_rows(model, x, repeats) -> list:
    n_steps = len(sanity_checks.randomizable_layers(model)) + 1
    gradient = bare_gradient(model, 8)
    calls = {method: (lambda m=method: sanity_checks.model_randomization(model, x, 8, m))
             for method in ("gradient", "gradient_x_input", "guided_backprop")}
    calls["bare gradients"] = lambda: [gradient(x) for _ in range(n_steps)]
    maps = saliency.gradient(model, x, 8)
    calls["measures alone"] = lambda: [sanity_checks.similarities(maps, maps[::-1])
                                       for _ in range(n_steps - 1)]
    times = median_times(calls, repeats)
    return [(method, n_steps * len(x) if method != "measures alone" else 0, times[method],
             times["bare gradients"], paired_ratio(times["rounds"], method, "bare gradients"))
            for method in calls if method != "bare gradients"]


def table(rows, what: str, floor: str) -> str:
    lines = [f"| {what} | images through the model | ours (s) | {floor} (s) | ratio |",
             "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {name} | {count} | {ours:.3f} | {bare:.3f} | {ratio:.2f} |"
              for name, count, ours, bare, ratio in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="test images (default 100)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="also append the tables to this file")
    args = parser.parse_args(argv)
    (_, _), (x_test, _) = data.load_mnist("bundled", verbose=False)
    model = models.load("cnn", "shipped")
    x = x_test[:args.n]
    maps = saliency.gradient(model, x, 8)
    report = "\n\n".join([
        f"bench_trust.py, {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}"
        f", {os.cpu_count()} CPUs, n={args.n}, repeats={args.repeats}",
        table(faithfulness_rows(model, x, maps, args.repeats), f"{STEPS} steps",
              "bare forward"),
        table(randomization_rows(model, x, args.repeats), "cascading randomization",
              "bare gradients")])
    print(report)
    if args.out:
        with open(args.out, "a") as f:
            f.write(report + "\n\n")


if __name__ == "__main__":
    main()
