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

    python benchmarks/bench_feature_visualization.py [--steps 256] [--speed-steps 128]
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
    args = parser.parse_args(argv)

    import tensorflow as tf

    model = models.load("cnn", "shipped")
    mnist = data.load(verbose=False)
    x_test = mnist.test[0]
    print(f"course CNN (shipped weights), {mnist.source} MNIST; TensorFlow {tf.__version__}, "
          f"{os.cpu_count()} CPUs, {len(tf.config.list_physical_devices('GPU'))} GPUs, "
          f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}")
    quality(model, x_test, args.steps)
    speed(model, args.speed_steps, args.xplique_python)


if __name__ == "__main__":
    main()
