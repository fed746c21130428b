"""Incremental occlusion vs full re-inference (and xplique's Occlusion), measured in one run.

For each model and setting: the predicted FLOP ratio full / incremental
(``occlusion.incremental_cost``), the measured time of the same occluded copies by full
re-inference and by incremental inference (interleaved rounds, median of the per-round ratios),
whether strategy="auto" picks incremental, the approximate mode's time and its distance to the
exact map (SSIM, largest absolute difference), and the peak resident memory of one map.

On a 224x224 model a whole map by full re-inference takes minutes on 2 CPU cores (VGG16, patch
16, stride 4: 3,136 copies), so both exact methods are timed on ``--sample`` patch positions
spread evenly over the grid (the work per copy does not depend on the stride: the windows are
those of the patch), and the time of the whole map is that per copy times the number of copies.
The approximate maps (the default ``Approximate()``, and the projective-field threshold alone,
``Approximate(0.5, 1, 0)``) are computed and timed whole, and compared with the exact map
computed whole by incremental inference (equal to full re-inference up to float rounding: the
largest difference on the sample is printed). "smoothness_ssim" is the SSIM between the exact
map and its own 2x coarser grid interpolated back: an upper bound for what drill-down can reach.
Peak memory is measured in a fresh child process per method.

xplique's Occlusion (``--xplique PYTHON``, an interpreter with xplique and TensorFlow <= 2.20;
xplique does not install beside TensorFlow 2.21) runs in a child process on the same
architecture, patch, stride and batch size; its grid keeps only patches inside the image, and each
of its copies is a whole forward pass, so it is timed on a coarser stride that gives about
``--sample`` copies and its time per copy is what is compared.

    python benchmarks/bench_incremental_occlusion.py [--sample 48] [--repeats 2]
        [--models cnn,vgg16,resnet50,mobilenetv2] [--xplique /path/to/python] [--no-memory]
    python benchmarks/bench_incremental_occlusion.py --threshold-check   # auto on small images
    python benchmarks/bench_incremental_occlusion.py --before /tmp/before --sample 24 --repeats 3

``--before TREE`` (issue 28): the code of TREE (e.g. ``git worktree add /tmp/before 630d107``),
imported into this process as ``cnn_helper_old``, against this one, in interleaved rounds: the
course CNN's whole maps by full / incremental / "auto" (one image at strides 1, 2 and 4, 16
images at stride 1), and on the 224x224 models the sampled copies and a single copy, whose
difference is the work per copy without the once-per-image clean pass (the whole map's time is
the single-copy call plus that per-copy time for every other copy).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from bench_big_models import _peak_during  # noqa: E402
from timing import median_times, paired_ratio  # noqa: E402

from cnn_helper import _graph, _patches, data, features, incremental, models, occlusion, similarity  # noqa: E402
from cnn_helper.incremental import approximate  # noqa: E402

SETTINGS = {                 # model -> [(patch, stride)]
    "cnn": [(4, 1)],
    "vgg16": [(16, 8), (16, 4)],
    "resnet50": [(16, 8), (16, 4)],
    "mobilenetv2": [(16, 8), (16, 4)],
}
TARGETS = {"exact incremental / full, VGG16": 3.0, "approximate / full": 10.0, "SSIM": 0.9}


def build(name):
    """The model and one image of its input size (the course CNN: a test 8; else uniform noise
    in [0, 1], weights=None, 10 classes, logits out so that the map is not flat)."""
    import keras

    if name == "cnn":
        (_, _), (x, y) = data.load_mnist("bundled", verbose=False)
        return models.load("cnn", "shipped"), x[y == 8][0]
    make = {"vgg16": keras.applications.VGG16, "resnet50": keras.applications.ResNet50,
            "mobilenetv2": keras.applications.MobileNetV2}[name]
    keras.utils.set_random_seed(0)
    model = make(weights=None, input_shape=(224, 224, 3), classes=10, classifier_activation=None)
    return model, np.random.default_rng(0).uniform(0, 1, (224, 224, 3)).astype("float32")


def sampled_copies(image_shape, patch, stride, sample):
    """The bounds (4, S) of ``sample`` patch positions spread evenly over the grid (all of them
    when the grid has fewer)."""
    _, _, copies = _patches.grid(image_shape, (patch, patch), (stride, stride))
    return copies[:, np.linspace(0, copies.shape[1] - 1, min(sample, copies.shape[1]))
                  .astype(int)]


def per_copy(model, x, patch, stride, sample, repeats):
    """Seconds per occluded copy of full and incremental inference on ``sample`` positions of
    the grid, their paired ratio, and the largest difference of their values."""
    target = features.resolve(model, x[None], 3)
    feature = target.feature
    chosen = sampled_copies(x.shape, patch, stride, sample)
    plan = incremental.make_plan(model, target.layer, (patch, patch), x.shape)
    fills = np.ones((1, x.shape[-1]), np.float32)
    runs = {
        "full": lambda: occlusion._full_values(model, target, x[None], fills, chosen,
                                               "auto")[0],
        "incremental": lambda: incremental.occluded_values(model, plan, feature, x[None], fills,
                                                           chosen, None, "auto")[0],
    }
    gap = float(np.abs(runs["full"]() - runs["incremental"]()).max())
    t = median_times(runs, repeats)
    n = chosen.shape[1]
    grid = _patches.grid(x.shape, (patch, patch), (stride, stride))[2].shape[1]
    return t["full"] / n, t["incremental"] / n, paired_ratio(t["rounds"], "full", "incremental"), \
        gap, grid


def approximate_quality(model, x, patch, stride):
    """The whole exact map by incremental inference (seconds), how smooth it is (the SSIM
    between it and its own coarse grid interpolated: what drill-down can reach at best), and
    for the default ``Approximate()`` and for the threshold alone (``Approximate(0.5, 1, 0)``):
    seconds, SSIM and largest absolute difference relative to the exact map's range."""
    start = time.perf_counter()
    exact = occlusion.sensitivity_map(model, x, 3, patch, stride, strategy="incremental")
    row = {"exact_incremental_s": round(time.perf_counter() - start, 2)}
    rows, cols = exact.values.shape
    coarse = approximate.interpolate(exact.values[::2, ::2], np.arange(0, rows, 2),
                                     np.arange(0, cols, 2), rows, cols)
    row["smoothness_ssim"] = round(similarity.ssim(coarse, exact.values), 3)
    for name, settings in [("approximate", occlusion.Approximate()),
                           ("threshold_only", occlusion.Approximate(0.5, 1, 0.0))]:
        occlusion.sensitivity_map(model, x, 3, patch, stride, strategy=settings)     # warm-up
        start = time.perf_counter()
        approx = occlusion.sensitivity_map(model, x, 3, patch, stride, strategy=settings)
        seconds = time.perf_counter() - start
        quality, worst = occlusion.compare(approx, exact)
        row.update({f"{name}_s": round(seconds, 2), f"{name}_ssim": round(quality, 3),
                    f"{name}_worst_relative": round(worst / max(float(np.ptp(exact.values)),
                                                                1e-30), 4)})
    return row


def xplique_per_copy(python, model, x, patch, stride, sample):
    """Seconds per copy of xplique's Occlusion in a child process (None when not asked). Each of
    its copies is one forward pass whatever the stride, so it runs with the smallest stride
    (at least ``stride``) that gives at most ``sample`` copies."""
    if not python:
        return None
    while ((x.shape[0] - patch) // stride + 1) * ((x.shape[1] - patch) // stride + 1) > sample:
        stride += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        np.save(os.path.join(tmp, "x.npy"), x[None])
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "xplique_occlusion.py")
        out = subprocess.run([python, script, path, os.path.join(tmp, "x.npy"), str(patch),
                              str(stride), str(_graph.batch_size(model, "auto"))],
                             capture_output=True, text=True)
    if out.returncode:
        return f"failed: {out.stderr.strip().splitlines()[-1]}"
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds_per_copy"]


def peak_memory(name, patch, stride, strategy):
    """Resident MB one map adds at its peak (sampled every 5 ms), in a fresh child process: the
    stride is raised to 2 * patch (49 copies on 224x224), "auto" batch size."""
    out = subprocess.run([sys.executable, __file__, "--child", name, str(patch),
                          str(max(stride, 2 * patch)), strategy], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["added_mb"]


def child(name, patch, stride, strategy):
    model, x = build(name)
    before, peak = _peak_during(lambda: occlusion.sensitivity_map(
        model, x, 3, int(patch), int(stride), strategy=strategy))
    print(json.dumps({"added_mb": round(peak - before)}))


def report(name, patch, stride, args):
    model, x = build(name)
    cost = occlusion.incremental_cost(model, 3, patch)
    sample = 10**6 if name == "cnn" else args.sample          # the course CNN: the whole grid
    full_s, inc_s, ratio, gap, n = per_copy(model, x, patch, stride, sample, args.repeats)
    row = {"model": name, "patch": patch, "stride": stride, "copies": n,
           "predicted": round(cost.flop_ratio, 2), "auto": cost.pays,
           "full_ms_per_copy": round(1e3 * full_s, 2), "incremental_ms_per_copy":
           round(1e3 * inc_s, 2), "measured": round(ratio, 2), "largest_difference": gap,
           "full_map_s": round(full_s * n, 1), "incremental_map_s": round(inc_s * n, 1)}
    if stride == SETTINGS[name][0][1]:
        row.update(approximate_quality(model, x, patch, stride))
        for key in ("approximate", "threshold_only"):
            row[f"{key}_speedup"] = round(full_s * n / row[f"{key}_s"], 1)
        xp = xplique_per_copy(args.xplique, model, x, patch, stride, sample)
        if xp is not None:
            row["xplique_ms_per_copy"] = xp if isinstance(xp, str) else round(1e3 * xp, 2)
        if not args.no_memory:
            row.update(peak_mb_full=peak_memory(name, patch, stride, "full"),
                       peak_mb_incremental=peak_memory(name, patch, stride, "incremental"))
    print(json.dumps(row), flush=True)
    return row


SMALL_CASES = [("MobileNetV2", 128, 8), ("MobileNetV2", 96, 8), ("ResNet50", 128, 8),
               ("ResNet50", 128, 16), ("VGG16", 32, 4), ("ResNet50", 96, 8),
               ("DenseNet121", 64, 8), ("MobileNetV2", 32, 8), ("ResNet50", 64, 8)]


def threshold_check():
    """strategy="auto"'s threshold on smaller images, where windows soon cover the map: predicted
    ratio, auto's choice, and the measured ratio of whole maps (stride size / 16, 2 rounds)."""
    import keras

    for name, size, patch in SMALL_CASES:
        model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3),
                                                  classes=10)
        x = np.random.default_rng(0).uniform(0, 1, (size, size, 3)).astype("float32")
        cost = occlusion.incremental_cost(model, 3, patch=patch)
        stride = max(2, size // 16)
        t = median_times({m: lambda m=m: occlusion.sensitivity_map(
            model, x, 3, patch, stride, strategy=m) for m in ("full", "incremental")}, 2)
        auto = occlusion.sensitivity_map(model, x, 3, patch, stride).strategy
        copies = _patches.grid(x.shape, (patch, patch), (stride, stride))[2].shape[1]
        print(json.dumps({"model": name, "size": size, "patch": patch,
                          "predicted": round(cost.flop_ratio, 2),
                          "predicted_time": round(cost.speedup(copies), 2), "auto": auto,
                          "measured": round(paired_ratio(t["rounds"], "full", "incremental"), 2)}),
              flush=True)


# --------------------------------------------------------------------------- before / after

BEFORE_AFTER = [("cnn", 1, 4, 1), ("cnn", 1, 4, 2), ("cnn", 1, 4, 4), ("cnn", 16, 4, 1),
                ("vgg16", 1, 16, 4), ("resnet50", 1, 16, 4), ("mobilenetv2", 1, 16, 4)]


def import_tree(tree: str):
    """The package of ``tree`` imported beside this one as ``cnn_helper_old`` (copied to a
    temporary folder: its imports are all relative), checked to come from there."""
    import importlib
    import shutil

    folder = tempfile.mkdtemp()
    shutil.copytree(os.path.join(tree, "cnn_helper"), os.path.join(folder, "cnn_helper_old"))
    sys.path.insert(0, folder)
    package = importlib.import_module("cnn_helper_old")
    if not os.path.realpath(package.__file__).startswith(os.path.realpath(folder) + os.sep):
        raise SystemExit(f"cnn_helper_old imported from {package.__file__}")
    return {name: importlib.import_module(f"cnn_helper_old.{name}")
            for name in ("occlusion", "features", "incremental")}


def map_calls(trees, model, images, patch, stride):
    """The course CNN: whole maps by the public API, full / incremental / auto in each tree."""
    return {f"{which} {how}": (lambda p=package, h=how: p["occlusion"].sensitivity_map(
        model, images, 8, patch, stride, strategy=h))
        for which, package in trees.items() for how in ("full", "incremental", "auto")}


def sample_calls(trees, model, x, patch, stride, sample):
    """A 224x224 model: full and incremental inference on ``sample`` positions of the grid and
    on one, in each tree (the difference is the work per copy, the one-copy call the fixed
    cost of an image)."""
    calls = {}
    for which, package in trees.items():
        target = package["features"].resolve(model, x[None], 3)
        plan = package["incremental"].make_plan(model, target.layer, (patch, patch), x.shape)
        fills = np.ones((1, x.shape[-1]), np.float32)
        for n in (sample, 1):
            chosen = sampled_copies(x.shape, patch, stride, n)
            calls[f"{which} full {n}"] = lambda p=package, t=target, c=chosen: \
                p["occlusion"]._full_values(model, t, x[None], fills, c, "auto")
            calls[f"{which} incremental {n}"] = lambda p=package, t=target, c=chosen, q=plan: \
                p["incremental"].occluded_values(model, q, t.feature, x[None], fills, c, None,
                                                 "auto")
    return calls


def _sampled_row(t, which, sample, copies):
    """Paired ratio on the sample, per-copy ratio (the difference of ``sample`` copies and one)
    and the whole map's ratio (the one-copy call plus ``copies`` - 1 times the per-copy time)."""
    rounds = t["rounds"]
    ratio = paired_ratio(rounds, f"{which} full {sample}", f"{which} incremental {sample}")
    per = {how: (t[f"{which} {how} {sample}"] - t[f"{which} {how} 1"]) / (sample - 1)
           for how in ("full", "incremental")}
    whole = {how: t[f"{which} {how} 1"] + (copies - 1) * per[how] for how in per}
    return (f"{ratio:.2f} | {1e3 * per['full']:.1f} / {1e3 * per['incremental']:.1f} = "
            f"{per['full'] / per['incremental']:.2f} | {whole['full'] / whole['incremental']:.2f}")


def _map_cell(t, which, auto_chose):
    """Milliseconds full / incremental / auto, the paired ratios full / incremental and
    full / auto, and what auto chose."""
    ms = " / ".join(f"{1e3 * t[f'{which} {how}']:.1f}" for how in ("full", "incremental", "auto"))
    ratios = [paired_ratio(t["rounds"], f"{which} full", f"{which} {how}")
              for how in ("incremental", "auto")]
    return f"{ms} ms: {ratios[0]:.2f}, auto {ratios[1]:.2f} ({auto_chose})"


def before_after(tree: str, sample: int, repeats: int, names) -> None:
    """Issue 28: the course CNN's maps (full / incremental / auto, whole maps) and the 224x224
    models' (sampled), the code of ``tree`` (imported as cnn_helper_old) against this one."""
    trees = {"before": import_tree(tree), "after": {"occlusion": occlusion, "features": features,
                                                    "incremental": incremental}}
    print(f"load average {os.getloadavg()}, {time.strftime('%Y-%m-%d %H:%M')}")
    for name, n_images, patch, stride in [case for case in BEFORE_AFTER if case[0] in names]:
        model, x = build(name)
        cost = occlusion.incremental_cost(model, 3 if name != "cnn" else 8, patch)
        copies = _patches.grid(x.shape, (patch, patch), (stride, stride))[2].shape[1]
        head = (f"| {name}, {n_images} image(s), patch {patch} stride {stride} ({copies} copies) "
                f"| {cost.flop_ratio:.2f} | {cost.speedup(copies, n_images):.2f} ")
        if name == "cnn":
            (_, _), (images, labels) = data.load_mnist("bundled", verbose=False)
            images = x if n_images == 1 else images[labels == 8][:n_images]
            t = median_times(map_calls(trees, model, images, patch, stride), repeats * (
                5 if n_images == 1 else 1))
            cells = [_map_cell(t, w, trees[w]["occlusion"].sensitivity_map(
                model, images, 8, patch, stride).strategy) for w in trees]
        else:
            t = median_times(sample_calls(trees, model, x, patch, stride, sample), repeats)
            cells = [_sampled_row(t, w, sample, copies) for w in trees]
        print(head + "| " + " | ".join(cells) + f" | {os.getloadavg()[0]:.1f} |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", default="cnn,vgg16,resnet50,mobilenetv2")
    parser.add_argument("--xplique", default=None)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--threshold-check", action="store_true",
                        help="only the smaller images that test auto's threshold")
    parser.add_argument("--before", metavar="TREE", default=None,
                        help="issue 28: the code of TREE against this one, in one process")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.before:
        return before_after(args.before, args.sample, args.repeats, args.models.split(","))
    if args.child:
        return child(*args.child)
    if args.threshold_check:
        return threshold_check()
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{len(tf.config.list_physical_devices('GPU'))} GPUs; targets {TARGETS}")
    for name in args.models.split(","):
        for patch, stride in SETTINGS[name]:
            report(name, patch, stride, args)


if __name__ == "__main__":
    main()
