"""Feature visualization on the course MNIST CNN: quality (optimization vs search) and speed.

Quality, with the default settings of ``feature_visualization.visualize``:

- for every channel of conv1, conv2 and conv3, pooled by max and by mean, the value of the
  channel's optimized image against the highest value of that channel over the whole test split
  (``max_activation.scan``): the fraction of channels whose image beats every test digit, and the
  ratio image value / best test value (median, min);
- each logit's class image (``Feature("logits", k)``): the class the CNN gives it, and its logit
  against the largest logit of that class over the test split.

Speed, all in one run, the same model, steps and image size (28 x 28): the 64 channels of conv3
optimized together (ONE call: one batch, one compiled step), one at a time (64 calls, the compiled
step reused), each channel's mean as the objective (xplique's channel objective), and xplique's
``optimize`` with ``Objective.channel(model, "conv3", range(64))`` (Fourier parametrization, its
standard transformations, ``custom_shape=(28, 28)``). xplique needs TensorFlow <= 2.20, so it runs
in another virtual environment (``--xplique-python``, default /work/xvenv/bin/python) as a
subprocess that loads the course CNN saved as a .keras file.

Starts (issue 28): the max-pooled channels of conv1, conv2 and conv3, each image the best of
several starts: noise seeds (``starts``), the channel's top test digits (``x=x_test``,
``example_starts``), and a schedule (``plain_steps``: the last steps untransformed). An image
"beats search" when its value exceeds the best test digit's by more than 0.1 % (``MARGIN``): an
example start is the digit kept 0.001 inside the range, whose value is within about 0.01 % above
the digit's at most, so a start the ascent does not raise never counts. "before": the defaults
in the tree before issue 28 (``--before``, a ``git worktree`` of 630d107), in a child process
per layer, timed in the same run.

    python benchmarks/bench_feature_visualization.py [--steps 256] [--speed-steps 128]
        [--parts quality starts speed] [--before /tmp/fv28_before]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from cnn_helper import Feature, data, feature_visualization, max_activation, models  # noqa: E402

LAYERS = ("conv1", "conv2", "conv3")
MARGIN = 1e-3            # "beats the best test digit": value > (1 + MARGIN) x the digit's value
STARTS = {               # the settings of issue 28's table: label -> visualize keywords
    "default (noise seed 0)": {},
    "starts=4 (noise), plain_steps=steps/4": dict(starts=4, plain_steps=0.25),
    "x=x_test, starts=0, example_starts=1": dict(starts=0, example_starts=1),
    "x=x_test (noise + 3 top digits)": {},
    "x=x_test, plain_steps=steps/4": dict(plain_steps=0.25),
    "x=x_test, plain_steps=steps (no transformations)": dict(plain_steps=1.0),
}                        # plain_steps: a fraction of the steps here

BEFORE_SCRIPT = r"""
import json, sys, time
from cnn_helper import data, feature_visualization, models
model, steps = models.load("cnn", "shipped"), int(sys.argv[1])
out = {"file": feature_visualization.__file__}
for layer in sys.argv[2:]:
    feature_visualization.visualize(model, layer, steps=1, progress=False)      # trace once
    start = time.perf_counter()
    vis = feature_visualization.visualize(model, layer, steps=steps, progress=False)
    out[layer] = {"seconds": time.perf_counter() - start, "values": vis.values.tolist()}
print(json.dumps(out))
"""

XPLIQUE_SCRIPT = r"""
import json, sys, time
import numpy as np
import keras
from xplique.features_visualizations import Objective, optimize

path, steps = sys.argv[1], int(sys.argv[2])
model = keras.models.load_model(path)      # the course CNN, saved by the parent
times = {}
for n_steps in (1, steps):
    objective = Objective.channel(model, "conv3", list(range(64)))
    start = time.perf_counter()
    images, _ = optimize(objective, nb_steps=n_steps, custom_shape=(28, 28))
    times[n_steps] = time.perf_counter() - start
images = np.asarray(images[-1])
values = keras.Model(model.inputs, model.get_layer("conv3").output)(images).numpy()
print(json.dumps({"seconds": times[steps], "seconds_one_step": times[1],
                  "shape": list(images.shape),
                  "max_values": values.max(axis=(1, 2))[np.arange(64), np.arange(64)].tolist(),
                  "mean_values": values.mean(axis=(1, 2))[np.arange(64), np.arange(64)].tolist()}))
"""


def quality(model, x_test, steps: int) -> None:
    """Optimization vs search, per layer and pooling; the class images."""
    print(f"\nquality, {steps} steps, default settings; best of {len(x_test)} test digits")
    print("| layer | pool | channels | image beats every test digit | ratio median | ratio min |")
    print("| --- | --- | --- | --- | --- | --- |")
    for pool in ("max", "mean"):
        scans = max_activation.scan(model, x_test, list(LAYERS), count=1, pool=pool,
                                    progress=False)
        for layer in LAYERS:
            best = scans[layer].high.values[:, 0]
            targets = [Feature(layer, k, pool=pool) for k in range(len(best))]
            vis = feature_visualization.visualize(model, targets, steps=steps, progress=False)
            ratio = vis.values / best
            print(f"| {layer} | {pool} | {len(best)} | {np.mean(vis.values > best):.2f} "
                  f"({int(np.sum(vis.values > best))}/{len(best)}) | {np.median(ratio):.2f} | "
                  f"{ratio.min():.2f} |")
    logits = [Feature("logits", k) for k in range(10)]
    classes = feature_visualization.visualize(model, logits, steps=steps, progress=False)
    predicted = model.predict(classes.images, verbose=0).argmax(axis=1)
    best = max_activation.scan(model, x_test, "logits", count=1, progress=False)["logits"]
    best = best.high.values[:, 0]
    print(f"\nclass images classified as their class: {int(np.sum(predicted == np.arange(10)))}"
          f"/10 (predicted {predicted.tolist()})")
    print(f"logit of the class image / largest test logit of that class: median "
          f"{np.median(classes.values / best):.2f}, min {np.min(classes.values / best):.2f}")


def before_run(tree: str, steps: int, layer: str):
    """The defaults of the tree before issue 28 on every channel of ``layer``, max-pooled, in a
    child process: {seconds, values}, or the reason it could not run."""
    if not Path(tree, "cnn_helper").is_dir():
        return f"no tree at {tree} (git worktree add {tree} 630d107)"
    result = subprocess.run([sys.executable, "-c", BEFORE_SCRIPT, str(steps), layer],
                            capture_output=True, text=True, cwd=tree,    # -c: cwd comes first
                            env={**os.environ, "PYTHONPATH": tree, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        return "failed: " + result.stderr.strip().splitlines()[-1]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    if not out["file"].startswith(str(Path(tree).resolve())):
        return f"the child imported {out['file']}, not the tree {tree}"
    return out[layer]


def _origins(vis) -> str:
    """Where the images came from: how many from noise, from the best digit, from another."""
    rank = [e if e < 0 else int(np.argmax(vis.values_by_start[i, vis.settings["starts"]:]))
            for i, e in enumerate(vis.start_examples)]
    return (f"noise {sum(r < 0 for r in rank)}, top digit {sum(r == 0 for r in rank)}, "
            f"2nd/3rd {sum(r > 0 for r in rank)}")


def _row(layer: str, label: str, values, best, seconds: float, origins: str) -> str:
    ratio = values / best
    beats = int(np.sum(values > (1 + MARGIN) * best))
    return (f"| {layer} | {label} | {beats}/{len(best)} | {np.median(ratio):.2f} | "
            f"{ratio.min():.2f} | {seconds / len(best):.3f} | {origins} |")


def starts(model, x_test, steps: int, tree: str) -> None:
    """Issue 28: max-pooled channels, the best of several starts against the best test digit.
    Per layer, the tree before runs first (a child process), then each setting here."""
    scans = max_activation.scan(model, x_test, list(LAYERS), count=1, progress=False)
    print(f"\nstarts, max-pooled, {steps} steps; best of {len(x_test)} test digits; beats: "
          f"value > {1 + MARGIN} x the best digit's")
    print("| layer | settings | beats the best test digit | ratio median | ratio min | "
          "s / channel | start of each image |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for layer in LAYERS:
        best = scans[layer].high.values[:, 0]
        before = before_run(tree, steps, layer)
        if isinstance(before, dict):
            print(_row(layer, "before (630d107), default", np.array(before["values"]), best,
                       before["seconds"], "noise seed 0"))
        else:
            print(f"before: not run, {before}")
        feature_visualization.visualize(model, layer, steps=2, plain_steps=1, progress=False)
        for label, kwargs in STARTS.items():
            data_ = {"x": x_test} if label.startswith("x=") else {}
            if "plain_steps" in kwargs:
                kwargs = {**kwargs, "plain_steps": int(kwargs["plain_steps"] * steps)}
            begin = time.perf_counter()
            vis = feature_visualization.visualize(model, layer, steps=steps, progress=False,
                                                  **data_, **kwargs)
            seconds = time.perf_counter() - begin
            print(_row(layer, label, vis.values, best, seconds, _origins(vis)), flush=True)
            if label.startswith("default") and isinstance(before, dict):
                same = np.max(np.abs(vis.values - np.array(before["values"])))
                print(f"|   | (default now vs before: largest difference {same:.1e}) | | | | | |")
    conv1_bound(model, scans["conv1"].high.values[:, 0])


def conv1_bound(model, best) -> None:
    """conv1 is one linear filter and a ReLU: on images in [0, 1] its largest possible value is
    the bias plus the positive weights (1 under each, 0 under each negative one; a "same" pad is
    0). Where the best digit already reaches it, no image can beat search, only tie."""
    weights, bias = (np.asarray(w) for w in model.get_layer("conv1").weights)
    bound = np.maximum(bias + np.clip(weights, 0, None).sum(axis=(0, 1, 2)), 0)
    at_bound = int(np.sum(best >= (1 - MARGIN) * bound))
    print(f"\nconv1: the best test digit reaches the largest value any image can give "
          f"(within {MARGIN:.1%}) on {at_bound}/{len(best)} channels; best / bound: median "
          f"{np.median(best / bound):.3f}, min {np.min(best / bound):.3f}")


def xplique_run(python: str, steps: int):
    """xplique's optimize of the 64 conv3 channels, in its own interpreter: a dict, or the
    reason it could not run."""
    if not Path(python).exists():
        return f"no interpreter at {python}"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cnn.keras")
        models.load("cnn", "shipped").save(path)
        result = subprocess.run([python, "-c", XPLIQUE_SCRIPT, path, str(steps)],
                                capture_output=True, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        return "failed: " + result.stderr.strip().splitlines()[-1]
    return json.loads(result.stdout.strip().splitlines()[-1])


def speed(model, steps: int, python: str) -> None:
    """64 conv3 channels: one batched call vs 64 calls vs xplique, seconds per channel."""
    targets = [Feature("conv3", k, pool="mean") for k in range(64)]   # xplique's channel objective
    feature_visualization.visualize(model, targets, steps=1, progress=False)      # trace once
    feature_visualization.visualize(model, targets[0], steps=1, progress=False)
    start = time.perf_counter()
    together = feature_visualization.visualize(model, targets, steps=steps, progress=False)
    t_together = time.perf_counter() - start
    start = time.perf_counter()
    for target in targets:
        feature_visualization.visualize(model, target, steps=steps, progress=False)
    t_alone = time.perf_counter() - start
    xp = xplique_run(python, steps)
    print(f"\nspeed, 64 conv3 channels, {steps} steps, 28 x 28 (one run):")
    print("| method | seconds | seconds per channel |")
    print("| --- | --- | --- |")
    print(f"| cnn_helper, 64 together (1 call) | {t_together:.2f} | {t_together / 64:.4f} |")
    print(f"| cnn_helper, one at a time (64 calls) | {t_alone:.2f} | {t_alone / 64:.4f} |")
    if isinstance(xp, dict):
        print(f"| xplique optimize, 64 together | {xp['seconds']:.2f} | {xp['seconds'] / 64:.4f} |")
        print(f"\nbatched vs one at a time: {t_alone / t_together:.1f}x faster per channel; "
              f"vs xplique: {xp['seconds'] / t_together:.2f}x (xplique's 1-step call, mostly "
              f"tracing: {xp['seconds_one_step']:.2f} s)")
        print(f"conv3 channel mean reached (median over channels): cnn_helper "
              f"{np.median(together.values):.2f}, xplique {np.median(xp['mean_values']):.2f}")
    else:
        print(f"| xplique | not run: {xp} | |")
        print(f"\nbatched vs one at a time: {t_alone / t_together:.1f}x faster per channel")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=256, help="steps of the quality runs")
    parser.add_argument("--speed-steps", type=int, default=128, help="steps of the speed runs")
    parser.add_argument("--xplique-python", default="/work/xvenv/bin/python")
    parser.add_argument("--parts", nargs="+", default=["quality", "starts", "speed"],
                        choices=["quality", "starts", "speed"])
    parser.add_argument("--before", default="/tmp/fv28_before",
                        help="the tree before issue 28 (git worktree add PATH 630d107)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    model = models.load("cnn", "shipped")
    mnist = data.load(verbose=False)
    x_test = mnist.test[0]
    print(f"course CNN (shipped weights), {mnist.source} MNIST; TensorFlow {tf.__version__}, "
          f"{os.cpu_count()} CPUs, {len(tf.config.list_physical_devices('GPU'))} GPUs, "
          f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}")
    if "quality" in args.parts:
        quality(model, x_test, args.steps)
    if "starts" in args.parts:
        starts(model, x_test, args.steps, args.before)
    if "speed" in args.parts:
        speed(model, args.speed_steps, args.xplique_python)


if __name__ == "__main__":
    main()
