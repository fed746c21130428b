"""TCAV and CRAFT against the bare work they need (issue 24).

1. TCAV of 3 drawn concepts (loop, open stroke, vertical bar) x 2 layers (conv2, conv3) x 20 runs
   on 500 test digits of the course CNN (random sets of 50 from the bundled training digits),
   against the passes it needs: ONE bare compiled forward pass of every concept and random image
   to both layers, and, per layer, one bare compiled gradient of the logit with respect to the
   layer (a ``tf.GradientTape`` through the model cut at the layer) for the 500 images. Target:
   within 2x. The CAV fits (3 x 2 x 20 concept CAVs and 2 x 20 random CAVs, logistic regressions
   in 6,272 and 3,136 dimensions) are part of TCAV's time and not of the passes.
2. CRAFT of 112 training 8s (1,008 crops of 14x14, resized) at conv3 with 5 concepts, against the
   bare forward pass of the 1,008 crops plus scikit-learn's NMF of their activations alone:
   the target is "NMF plus passes only".

Each time is the median over ``--repeats`` interleaved rounds after a warm-up (``timing.py``); a
ratio is the median of the per-round ratios. Run under the shared lock:

    flock /tmp/t30/bench.lock .venv/bin/python benchmarks/bench_concepts.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from timing import median_times, paired_ratio  # noqa: E402  (benchmarks/timing.py)

from cnn_helper import Feature, concepts, data, models  # noqa: E402

LAYERS = ("conv2", "conv3")
SETS = ("loop", "open_stroke", "vertical_bar")


def cut(model, layer: str):
    """(x -> the layer's output, that output -> the logits): the course CNN cut after ``layer``."""
    import keras

    first = keras.Model(model.inputs[0], model.get_layer(layer).output)
    rest_in = keras.Input(first.output.shape[1:])
    y, after = rest_in, False
    for each in model.layers[1:]:
        if after and each.name != "softmax":
            y = each(y)
        after = after or each.name == layer
    return first, keras.Model(rest_in, y)


def bare_gradient(model, layer: str, k: int):
    """The bare compiled d logit_k / d y_(layer) of a batch."""
    import tensorflow as tf

    first, rest = cut(model, layer)

    @tf.function
    def step(x):
        a = first(x, training=False)
        with tf.GradientTape() as tape:
            tape.watch(a)
            s = rest(a, training=False)[:, k]
        return tape.gradient(s, a)

    return step


def bare_layers(model):
    """The bare compiled forward pass to conv2 and conv3 of a batch."""
    import keras
    import tensorflow as tf

    both = keras.Model(model.inputs[0], [model.get_layer(name).output for name in LAYERS])
    return tf.function(lambda x: both(x, training=False))


def in_batches(step, x, batch: int = 1024):
    return [np.asarray(step(x[i:i + batch])[0]) for i in range(0, len(x), batch)]


def tcav_case(model, x_train, x, repeats: int) -> dict:
    examples = {name: concepts.concept_images(name, 50, seed=0) for name in SETS}
    n_images = 3 * 50 + 21 * 50              # at most: the concepts and 21 random sets of 50
    pool = np.concatenate(list(examples.values()) + [x_train[:n_images - 150]])
    forward = bare_layers(model)
    gradients = [bare_gradient(model, layer, 9) for layer in LAYERS]

    def bare():
        in_batches(forward, pool)
        for step in gradients:
            in_batches(step, x)

    calls = {
        "tcav": lambda: concepts.tcav(model, x, Feature("logits", 9), examples, list(LAYERS),
                                      random=x_train, n_runs=20, seed=0),
        "concept_cavs": lambda: concepts.concept_cavs(model, examples, list(LAYERS),
                                                      random=x_train, n_runs=20, seed=0),
        "bare passes": bare,
    }
    times = median_times(calls, repeats)
    times["ratio"] = paired_ratio(times["rounds"], "tcav", "bare passes")
    return times


def craft_case(model, eights, repeats: int) -> dict:
    from sklearn.decomposition import NMF

    from cnn_helper.concepts import discovery

    crops, _ = discovery.crops_of(eights, 14, 7)
    forward = bare_layers(model)

    def bare():
        a = np.concatenate([np.asarray(forward(crops[i:i + 1024])[1])
                            for i in range(0, len(crops), 1024)]).mean(axis=(1, 2))
        NMF(5, init="nndsvda", solver="cd", max_iter=500, random_state=0).fit_transform(
            a.astype(np.float64))

    calls = {"craft": lambda: concepts.craft(model, eights, "conv3", n_concepts=5, seed=0),
             "bare pass + NMF": bare}
    times = median_times(calls, repeats)
    times["ratio"] = paired_ratio(times["rounds"], "craft", "bare pass + NMF")
    times["crops"] = len(crops)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = models.load("cnn", "shipped")
    (x_train, _), (x_test, y_test) = data.load_mnist("bundled", verbose=False)
    print(f"{platform.processor() or platform.machine()}, load average {os.getloadavg()}")
    t = tcav_case(model, x_train, x_test[:500], args.repeats)
    print(f"TCAV 3 concepts x 2 layers x 20 runs, 500 images: {t['tcav']:.2f} s "
          f"(fitting the CAVs alone {t['concept_cavs']:.2f} s), bare passes "
          f"{t['bare passes']:.2f} s: ratio {t['ratio']:.2f}")
    (x_train, y_train), _ = data.load_mnist("bundled", verbose=False)
    c = craft_case(model, x_train[y_train == 8][:112], args.repeats)
    print(f"CRAFT, {c['crops']} crops at conv3, 5 concepts: {c['craft']:.2f} s, bare pass + "
          f"NMF {c['bare pass + NMF']:.2f} s: ratio {c['ratio']:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
