"""Before/after the one-engine refactor: every perturbation and gradient method, old tree vs new.

The refactor moved every perturbation method (occlusion, RISE, Score-CAM, deletion / insertion,
MuFidelity) onto one engine (``cnn_helper/_perturb.py``) and every gradient method onto one core
(``cnn_helper/_gradient.py``). This benchmark times each method in the code before the refactor
(the OLD tree: a ``git worktree`` of commit 1cbe149) and in the current tree (NEW: the working
tree this script lives in), in one run, on the same machine:

- the course CNN (``models.load("cnn", "shipped")``, 28x28x1, the bundled MNIST test images,
  target class 8): occlusion full and incremental (one test 8, patch 4 stride 1: the explorer's
  case, 784 copies; and 16 images), RISE (16 images, 1000 masks), Score-CAM (16 images, default
  layer), deletion and insertion (100 images, 28 steps, maps from ``saliency.gradient``),
  MuFidelity (32 images), gradient, guided backprop, integrated gradients (16 samples) and
  Grad-CAM (256 images);
- VGG16 at 224x224x3 (``keras.applications.VGG16(weights=None)``, seeded with
  ``keras.utils.set_random_seed(0)``, uniform random images in [0, 255], target class 0):
  occlusion full and incremental (1 image, patch 32, stride 32: 49 copies), RISE (1 image,
  64 masks), Score-CAM (1 image) on ``block1_conv2`` (64 masked copies: on ``block5_conv3`` its
  512 masked copies would take ~75 s a call on 2 CPU cores, ~0.145 s per copy), deletion /
  insertion (2 images, 8 steps), gradient, guided backprop and Grad-CAM (4 images).

How: each case runs in a fresh child process per tree (``--child``, with ``PYTHONPATH=<tree>``;
the child checks that ``cnn_helper.__file__`` lies in that tree). A child builds the model and
the inputs, calls the method once untimed (the warm-up: tracing, compiling, building clones
and plans), then times ``k`` calls and reports their wall and CPU seconds. The parent runs the
OLD and NEW children of a case one after the other, alternating which goes first from case to
case and round to round, so that a change in the load of a shared machine hits both alike; with
``--rounds R`` each tree runs R children per case. A tree's time is the median of all its timed
calls; the ratio is new / old (with R > 1 the ratio of each round's pair of children is printed
too: their range is the run-to-run noise). "spread" is (max - min) / median of a tree's timed
calls. CPU seconds (all threads of the child) are printed beside the wall times: on a loaded
machine they say whether a difference is work or waiting.
Every API difference between the trees is sniffed (occlusion's ``method=`` became ``strategy=``).

One JSON line per case as it finishes, then a summary table (Markdown). The whole run takes
11-17 minutes on 2 shared CPU cores.

    git worktree add /tmp/cnn_before 1cbe149
    python benchmarks/bench_engines.py [--old /tmp/cnn_before] [--new .] [--rounds 1]
        [--cases "SUBSTRING;..."] [--repeats K] [--quick]
    python benchmarks/bench_engines.py --rounds 3 --cases "cnn RISE"    # re-check one case

``--quick``: the course CNN's cases only, k = 2 (a minute or two, to check the script runs).
``--one-process PAIRS``: a diagnostic for a case whose ratio looks worse, both trees imported
into this one process (see ``one_process``): differences between child processes (where the
memory and the threads land, the load at that minute) drop out of the paired ratios.

    python benchmarks/bench_engines.py --one-process 21 --quick --cases "cnn insertion"
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NEW_TREE = os.path.dirname(HERE)
OLD_TREE = "/tmp/cnn_before"
CNN_CLASS, VGG_CLASS = 8, 0
VGG_SCORE_CAM_LAYER = "block1_conv2"

# name -> (model, k): the cases, in the order they run; k timed calls after the warm-up
CASES = {
    "cnn occlusion full, 1 image p4 s1": ("cnn", 15),
    "cnn occlusion incremental, 1 image p4 s1": ("cnn", 15),
    "cnn occlusion full, 16 images p4 s1": ("cnn", 5),
    "cnn occlusion incremental, 16 images p4 s1": ("cnn", 5),
    "cnn RISE, 16 images 1000 masks": ("cnn", 5),
    "cnn Score-CAM, 16 images": ("cnn", 15),
    "cnn deletion, 100 images 28 steps": ("cnn", 9),
    "cnn insertion, 100 images 28 steps": ("cnn", 9),
    "cnn MuFidelity, 32 images": ("cnn", 9),
    "cnn gradient, 256 images": ("cnn", 15),
    "cnn guided_backprop, 256 images": ("cnn", 15),
    "cnn integrated_gradients (16), 256 images": ("cnn", 5),
    "cnn grad_cam, 256 images": ("cnn", 15),
    "vgg16 occlusion full, 1 image p32 s32": ("vgg16", 2),
    "vgg16 occlusion incremental, 1 image p32 s32": ("vgg16", 3),
    "vgg16 RISE, 1 image 64 masks": ("vgg16", 2),
    f"vgg16 Score-CAM {VGG_SCORE_CAM_LAYER}, 1 image": ("vgg16", 2),
    "vgg16 deletion, 2 images 8 steps": ("vgg16", 3),
    "vgg16 insertion, 2 images 8 steps": ("vgg16", 3),
    "vgg16 gradient, 4 images": ("vgg16", 3),
    "vgg16 guided_backprop, 4 images": ("vgg16", 3),
    "vgg16 grad_cam, 4 images": ("vgg16", 5),
}


# --------------------------------------------------------------------------- child


def _occlusion(occlusion, model, x, target, patch, stride, how):
    """``sensitivity_map`` with the exact strategy asked for, in either tree's spelling."""
    keyword = ("strategy" if "strategy" in inspect.signature(occlusion.sensitivity_map).parameters
               else "method")
    return lambda: occlusion.sensitivity_map(model, x, target, patch=patch, stride=stride,
                                             **{keyword: how})


def _call(case: str, model_name: str, package: str = "cnn_helper"):
    """The model's setup and the call to time for one case (runs in the child), with the
    modules of ``package`` (``--one-process`` imports the old tree as "cnn_helper_old")."""
    import importlib

    import keras

    cam, data, faithfulness, models, occlusion, rise, saliency = (
        importlib.import_module(f"{package}.{name}") for name in
        ("cam", "data", "faithfulness", "models", "occlusion", "rise", "saliency"))

    if model_name == "cnn":
        model, target = models.load("cnn", "shipped"), CNN_CLASS
        (_, _), (x_test, y_test) = data.load_mnist("bundled", verbose=False)
        x = {"1 image": x_test[y_test == 8][0], "16 images": x_test[:16],
             "32 images": x_test[:32], "100 images": x_test[:100], "256 images": x_test[:256]}
        patch = stride = None
    else:
        keras.utils.set_random_seed(0)
        model = keras.applications.VGG16(weights=None, input_shape=(224, 224, 3))
        target = VGG_CLASS
        images = np.random.default_rng(0).uniform(0, 255, (4, 224, 224, 3)).astype("float32")
        x = {"1 image": images[0], "2 images": images[:2], "4 images": images}
        patch, stride = 32, 32
    if model_name == "cnn":
        patch, stride = 4, 1
    n = next(key for key in x if key in case)
    images = x[n]
    steps = 28 if model_name == "cnn" else 8
    if "occlusion" in case:
        how = "incremental" if "incremental" in case else "full"
        return _occlusion(occlusion, model, images, target, patch, stride, how)
    if "RISE" in case:
        n_masks = 1000 if model_name == "cnn" else 64
        return lambda: rise.rise(model, images, target, n_masks=n_masks)
    if "Score-CAM" in case:
        layer = None if model_name == "cnn" else VGG_SCORE_CAM_LAYER
        return lambda: cam.score_cam(model, images, target, layer=layer)
    if "deletion" in case or "insertion" in case or "MuFidelity" in case:
        maps = saliency.gradient(model, images, target)
        if "MuFidelity" in case:
            return lambda: faithfulness.mufidelity(model, images, target, maps)
        curve = faithfulness.deletion if "deletion" in case else faithfulness.insertion
        return lambda: curve(model, images, target, maps, steps)
    if "integrated_gradients" in case:
        return lambda: saliency.integrated_gradients(model, images, target, n_samples=16)
    method = next(m for m in ("guided_backprop", "grad_cam", "gradient") if m in case)
    return lambda: getattr(saliency, method)(model, images, target)


def child(case: str, tree: str) -> int:
    """Time one case in this process; print one JSON line (prefixed) for the parent."""
    import cnn_helper

    where = os.path.realpath(cnn_helper.__file__)
    if not where.startswith(os.path.realpath(tree) + os.sep):
        raise SystemExit(f"cnn_helper imported from {where}, not from the tree {tree}")
    model_name, k = CASES[case]
    k = int(os.environ.get("BENCH_ENGINES_K", k))
    call = _call(case, model_name)
    start = time.perf_counter()
    call()                                               # warm-up: tracing, compiling, plans
    warm_up = time.perf_counter() - start
    wall, cpu = [], []
    for _ in range(k):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print("@@" + json.dumps({"case": case, "file": where, "warm_up": warm_up, "wall": wall,
                             "cpu": cpu}), flush=True)
    return 0


# --------------------------------------------------------------------------- parent


def run_child(case: str, tree: str, k) -> dict:
    env = dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL="2")
    if k is not None:
        env["BENCH_ENGINES_K"] = str(k)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", case, tree],
                         cwd=tree, env=env, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("@@")]
    if out.returncode or not lines:
        raise RuntimeError(f"{case!r} in {tree} failed (exit {out.returncode}):\n"
                           f"{out.stderr[-3000:]}")
    return json.loads(lines[-1][2:])


def one_process(cases, old_tree: str, new_tree: str, pairs: int) -> None:
    """The diagnostic ``--one-process``: both trees imported into this process (the old
    ``cnn_helper`` copied to a temporary folder as ``cnn_helper_old``: its imports are all
    relative), each case's old and new calls warmed up, then ``pairs`` old/new pairs timed back
    to back, the order alternating. The ratio of each pair is measured within a second or so,
    which takes out the differences between child processes; the median and quartiles of the
    paired ratios are printed."""
    import importlib
    import shutil
    import tempfile

    folder = tempfile.mkdtemp()
    shutil.copytree(os.path.join(old_tree, "cnn_helper"), os.path.join(folder, "cnn_helper_old"))
    sys.path[:0] = [folder, new_tree]
    for package, tree in (("cnn_helper_old", folder), ("cnn_helper", new_tree)):
        where = os.path.realpath(importlib.import_module(package).__file__)
        if not where.startswith(os.path.realpath(tree) + os.sep):
            raise SystemExit(f"{package} imported from {where}, not from {tree}")
    print(f"bench_engines.py --one-process, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} "
          f"CPUs, load average {os.getloadavg()[0]:.1f}; old {old_tree}, new {new_tree}: "
          f"{tree_state(new_tree)}")
    print(f"| case (one process, {pairs} pairs) | old s | new s | paired new/old median "
          "| quartiles |\n| --- | ---: | ---: | ---: | ---: |")
    for case in cases:
        calls = {which: _call(case, CASES[case][0], package) for which, package in
                 (("old", "cnn_helper_old"), ("new", "cnn_helper"))}
        for call in list(calls.values()) * 2:             # warm-up
            call()
        times = {"old": [], "new": []}
        for i in range(pairs):
            for which in (("old", "new") if i % 2 == 0 else ("new", "old")):
                start = time.perf_counter()
                calls[which]()
                times[which].append(time.perf_counter() - start)
        ratios = np.divide(times["new"], times["old"])
        q1, q2, q3 = np.percentile(ratios, [25, 50, 75])
        print(f"| {case} | {np.median(times['old']):.3f} | {np.median(times['new']):.3f} "
              f"| {q2:.2f} | {q1:.2f}-{q3:.2f} |", flush=True)
    shutil.rmtree(folder)


def tree_state(tree: str) -> str:
    """The tree's commit and how many files differ from it (the NEW tree may be mid-edit)."""
    def git(*args):
        return subprocess.run(["git", "-C", tree, *args], capture_output=True,
                              text=True).stdout.strip()

    changed = [line[3:] for line in git("status", "--porcelain", "--", "cnn_helper").splitlines()]
    return (f"{git('rev-parse', '--short', 'HEAD')} + {len(changed)} changed files under "
            f"cnn_helper/" + (f" ({', '.join(changed)})" if changed else ""))


def spread(times) -> float:
    return float((max(times) - min(times)) / np.median(times))


def measure(case: str, trees: dict, rounds: int, k, first: int) -> dict:
    """Alternating old/new children of one case; ``first`` picks which tree starts."""
    runs = {"old": [], "new": []}
    for r in range(rounds):
        order = ("old", "new") if (first + r) % 2 == 0 else ("new", "old")
        for which in order:
            runs[which].append(run_child(case, trees[which], k))
    row = {"case": case, "load": round(os.getloadavg()[0], 1)}
    for which in ("old", "new"):
        wall = [t for run in runs[which] for t in run["wall"]]
        cpu = [t for run in runs[which] for t in run["cpu"]]
        row.update({f"{which}_s": float(np.median(wall)), f"{which}_cpu_s": float(np.median(cpu)),
                    f"{which}_spread": spread(wall), f"{which}_warm_up_s": float(np.median(
                        [run["warm_up"] for run in runs[which]])), f"{which}_wall": wall})
    row["ratio"] = row["new_s"] / row["old_s"]
    row["cpu_ratio"] = row["new_cpu_s"] / row["old_cpu_s"]
    row["round_ratios"] = [float(np.median(new["wall"]) / np.median(old["wall"]))
                           for old, new in zip(runs["old"], runs["new"])]
    return row


def table(rows) -> str:
    rounds = len(rows[0]["round_ratios"]) if rows else 1
    lines = ["| case | old s | new s | new/old | spread old / new | CPU new/old "
             "| warm-up old / new s |" + (" per-round new/old |" if rounds > 1 else ""),
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if rounds > 1
                                                                      else "")]
    lines += [f"| {r['case']} | {r['old_s']:.3f} | {r['new_s']:.3f} | {r['ratio']:.2f} "
              f"| {r['old_spread']:.0%} / {r['new_spread']:.0%} | {r['cpu_ratio']:.2f} "
              f"| {r['old_warm_up_s']:.1f} / {r['new_warm_up_s']:.1f} |"
              + (f" {' '.join(f'{q:.2f}' for q in r['round_ratios'])} |" if rounds > 1 else "")
              for r in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default=OLD_TREE, help=f"the tree before (default {OLD_TREE})")
    parser.add_argument("--new", default=NEW_TREE, help="the tree after (default: this one)")
    parser.add_argument("--rounds", type=int, default=1, help="children per tree and case")
    parser.add_argument("--repeats", type=int, default=None, help="k for every case")
    parser.add_argument("--cases", default=None,
                        help="';'-separated substrings: only the cases containing one")
    parser.add_argument("--quick", action="store_true", help="course CNN only, k = 2")
    parser.add_argument("--one-process", type=int, metavar="PAIRS", default=None,
                        help="diagnostic: both trees in this process, PAIRS paired calls a case")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)

    trees = {"old": os.path.realpath(args.old), "new": os.path.realpath(args.new)}
    for which, tree in trees.items():
        if not os.path.isdir(os.path.join(tree, "cnn_helper")):
            parser.error(f"no cnn_helper/ in the {which} tree {tree}")
    cases = [c for c in CASES if not args.quick or CASES[c][0] == "cnn"]
    if args.cases:
        wanted = [s.strip() for s in args.cases.split(";") if s.strip()]
        cases = [c for c in cases if any(s in c for s in wanted)]
    if args.one_process:
        one_process(cases, trees["old"], trees["new"], args.one_process)
        return 0
    k = 2 if args.quick and args.repeats is None else args.repeats
    cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), platform.machine())
    print(f"bench_engines.py, {time.strftime('%Y-%m-%d %H:%M')}, {cpu_model}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; old {trees['old']}, "
          f"new {trees['new']}; rounds {args.rounds}, k {k or 'per case'}", flush=True)
    print(f"new tree: {tree_state(trees['new'])}", flush=True)
    rows, failed = [], []
    start = time.perf_counter()
    for i, case in enumerate(cases):
        try:
            row = measure(case, trees, args.rounds, k, i)
        except RuntimeError as error:          # e.g. a tree mid-edit: say so, go on
            print(json.dumps({"case": case, "error": str(error)}), flush=True)
            failed.append(case)
            continue
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{len(rows)} cases in {time.perf_counter() - start:.0f} s, load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print(table(rows))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
