"""Time to train the course CNN on the bundled MNIST split (4,000 train / 1,000 test) on this host.

Runs ``cnn_helper.models.fit("cnn", ...)`` once, exactly as
``python -m cnn_helper train --data bundled`` does (same seed, batch size, optimizer and default
epochs), with a callback that times every epoch.
Epoch 1 includes building the training graph; the steady-state figure is the median of the others.
Nothing is saved. Target (issue 2): about a minute or less on 2 CPU cores.

    python benchmarks/bench_train.py [--epochs N] [--seed S]

The machine's load average is printed before and after: other processes on the same cores slow
training down, so read the figures together with it.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # the repository

import numpy as np  # noqa: E402

from cnn_helper import data, models  # noqa: E402

TARGET_SECONDS = 60


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=models.DEFAULTS["cnn"]["epochs"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores usable; "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = data.load_mnist("bundled", verbose=False)
    load_seconds = time.perf_counter() - start

    seconds: list[float] = []
    start = time.perf_counter()
    model = models.fit("cnn", x_train, y_train, epochs=args.epochs, seed=args.seed,
                       callbacks=[EpochTimer()])
    total = time.perf_counter() - start
    accuracy = models.accuracy(model, x_test, y_test)

    print(f"data: {len(x_train)} train / {len(x_test)} test images (bundled), "
          f"loaded in {load_seconds:.1f} s")
    print("seconds per epoch: " + " ".join(f"{s:.1f}" for s in seconds))
    steady = float(np.median(seconds[1:])) if len(seconds) > 1 else seconds[0]
    print(f"epoch 1 (with graph building): {seconds[0]:.1f} s; "
          f"later epochs, median: {steady:.1f} s")
    print(f"total fit for {args.epochs} epochs: {total:.1f} s "
          f"(target: about {TARGET_SECONDS} s or less on 2 cores)")
    print(f"test accuracy: {accuracy:.4f}")
    shipped, info = models.load_with_info("cnn", "shipped")
    same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), shipped.get_weights()))
    print(f"shipped weights: seed {info['seed']}, {info['epochs']} epochs, "
          f"{info['train_seconds']} s, accuracy {info['test_accuracy']}; "
          f"this run's weights identical to them: {same}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
