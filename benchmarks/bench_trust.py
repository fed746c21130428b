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
the ratio is the median of the per-round ratios. The randomization rows also give the median
ratio of CPU seconds (this process, all its threads): the work, which other programs on a loaded
machine disturb less than the wall time.

``--before TREE`` (issue 28: the measures in compiled steps) times only the randomization, in the
code of TREE (e.g. ``git worktree add /tmp/trust_before 630d107``) and in this tree, each in
fresh child processes (``PYTHONPATH=<tree>``) taken in turn, ``--rounds`` of each; a tree's ratio
is the median over its rounds of the ratios measured in one child.

    python benchmarks/bench_trust.py [--n 100] [--repeats 5] [--out FILE]
    python benchmarks/bench_trust.py --before /tmp/trust_before [--rounds 3] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
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
    calls, cpu = with_cpu_times(calls)
    times = median_times(calls, repeats)
    return [(method, n_steps * len(x) if method != "measures alone" else 0, times[method],
             times["bare gradients"], paired_ratio(times["rounds"], method, "bare gradients"),
             float(np.median(np.divide(cpu[method][1:], cpu["bare gradients"][1:]))))
            for method in calls if method != "bare gradients"]


def with_cpu_times(calls: dict) -> tuple:
    """(the calls, each also recording the CPU seconds of this process it took, {name: [CPU
    seconds of each call, the warm-up first]}): the work done, less sensitive than the wall
    time to other programs on a loaded machine (TensorFlow's threads all count)."""
    cpu = {name: [] for name in calls}

    def timed(name, call):
        def run():
            start = time.process_time()
            call()
            cpu[name].append(time.process_time() - start)
        return run

    return {name: timed(name, call) for name, call in calls.items()}, cpu


def table(rows, what: str, floor: str) -> str:
    lines = [f"| {what} | images through the model | ours (s) | {floor} (s) | ratio |",
             "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {name} | {count} | {ours:.3f} | {bare:.3f} | {ratio:.2f} |"
              for name, count, ours, bare, ratio, *_ in rows]
    return "\n".join(lines)


def child(tree: str, n: int, repeats: int) -> None:
    """The randomization rows of this process's cnn_helper (from ``tree``), as one JSON line."""
    import cnn_helper

    where = os.path.realpath(cnn_helper.__file__)
    if not where.startswith(os.path.realpath(tree) + os.sep):
        raise SystemExit(f"cnn_helper imported from {where}, not from the tree {tree}")
    model, x = _course_model_and_digits(n)
    print("@@" + json.dumps(randomization_rows(model, x, repeats)), flush=True)


def run_child(tree: str, n: int, repeats: int) -> list:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", tree,
                          "--n", str(n), "--repeats", str(repeats)],
                         cwd=tree, env=env, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("@@")]
    if out.returncode or not lines:
        raise RuntimeError(f"{tree} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][2:])


def before_and_after(before: str, n: int, repeats: int, rounds: int) -> str:
    """The randomization table of the tree ``before`` and of this one, children in turn."""
    trees = {"before": before, "after": os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))}
    runs = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            runs[name].append(run_child(tree, n, repeats))
    lines = ["| cascading randomization | before: ours (s) | bare (s) | ratio | CPU ratio | "
             "after: ours (s) | bare (s) | ratio | CPU ratio |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for i, row in enumerate(runs["after"][0]):
        cells = []
        for name in trees:
            ours, bare, ratio, cpu = (np.median([run[i][k] for run in runs[name]])
                                      for k in (2, 3, 4, 5))
            cells.append(f"{ours:.3f} | {bare:.3f} | {ratio:.2f} | {cpu:.2f}")
        lines.append(f"| {row[0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _course_model_and_digits(n: int):
    (_, _), (x_test, _) = data.load_mnist("bundled", verbose=False)
    return models.load("cnn", "shipped"), x_test[:n]


def _header(args) -> str:
    return (f"bench_trust.py, {time.strftime('%Y-%m-%d %H:%M')}, "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}, n={args.n}, repeats={args.repeats}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="test images (default 100)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="also append the tables to this file")
    parser.add_argument("--before", default=None, help="a tree of the code before (worktree)")
    parser.add_argument("--rounds", type=int, default=3, help="children per tree (--before)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.n, args.repeats)
    if args.before:
        report = "\n\n".join([_header(args) + f", rounds={args.rounds}",
                               before_and_after(args.before, args.n, args.repeats, args.rounds),
                               f"load average after: {os.getloadavg()[0]:.1f}"])
    else:
        model, x = _course_model_and_digits(args.n)
        maps = saliency.gradient(model, x, 8)
        report = "\n\n".join([
            _header(args),
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
