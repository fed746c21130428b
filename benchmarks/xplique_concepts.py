"""cnn_helper's TCAV against xplique's (``xplique.concepts.Cav`` / ``Tcav``), on the course CNN.

xplique needs TensorFlow <= 2.20 and Keras 2 (tf_keras), so it runs in its own venv:

    python3 -m venv /tmp/concepts_venv_xplique
    /tmp/concepts_venv_xplique/bin/pip install "tensorflow-cpu==2.20.*" xplique scikit-learn

Two steps, one per venv:

    .venv/bin/python benchmarks/xplique_concepts.py --export /tmp/concepts_xq.npz
    TF_USE_LEGACY_KERAS=1 /tmp/concepts_venv_xplique/bin/python benchmarks/xplique_concepts.py \\
        --compare /tmp/concepts_xq.npz

1. ``--export`` (cnn_helper's venv): the loop concept's 20 CAVs at conv3 (flattened, each against
   its own random set of 50 bundled training digits), the TCAV score of each on 50 test 7s for
   the logit of 7 (scores spread between 0 and 1, unlike the 9s' all 1), the images, the random
   sets and the CNN's weights, into one .npz.
2. ``--compare`` (xplique's venv): the same CNN rebuilt in tf_keras with those weights, cut at
   the logits. (a) xplique's ``Tcav.score`` with each of OUR CAVs must give OUR score: the same
   definition (the share of positive directional derivatives of the logit along the CAV).
   (b) xplique's ``Cav`` (scikit-learn's SGDClassifier, hinge loss, its own random split) on the
   same concept and random images: the cosine between its CAV and ours, and its TCAV score.
"""
from __future__ import annotations

import argparse

import numpy as np

N_RUNS = 20
LAYER = "conv3"


def export(path: str):
    from cnn_helper import Feature, concepts, data, models
    from cnn_helper.concepts import testing

    model = models.load("cnn", "shipped")
    (x_train, _), (x_test, y_test) = data.load_mnist("bundled", verbose=False)
    loops = concepts.concept_images("loop", 50, seed=0)
    cavs = concepts.concept_cavs(model, {"loop": loops}, LAYER, random=x_train, n_runs=N_RUNS)
    sevens = x_test[y_test == 7][:50]
    result = concepts.tcav(model, sevens, Feature("logits", 7), cavs)
    pool, sets = testing._random_sets(model, x_train, N_RUNS, None, 0)  # the sets tcav drew
    np.savez(path, weights=np.array(model.get_weights(), dtype=object), loops=loops,
             sevens=sevens, random=np.stack([pool[sets[r]] for r in range(1, N_RUNS + 1)]),
             directions=result.directions, scores=result.scores)
    print(f"exported {N_RUNS} CAVs at {LAYER}, mean score {result.score:.3f}, to {path}")


def course_cnn_tf_keras():
    """The course CNN's layers up to the logits, in tf_keras (Keras 2)."""
    import tf_keras as keras
    from tf_keras import layers

    inputs = keras.Input((28, 28, 1))
    y = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    y = layers.MaxPooling2D(2, name="pool1")(y)
    y = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(y)
    y = layers.MaxPooling2D(2, name="pool2")(y)
    y = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(y)
    y = layers.Flatten(name="flatten")(y)
    y = layers.Dense(64, activation="relu", name="dense")(y)
    return keras.Model(inputs, layers.Dense(10, name="logits")(y))


def compare(path: str):
    from xplique.concepts import Cav, Tcav

    saved = np.load(path, allow_pickle=True)
    model = course_cnn_tf_keras()
    model.set_weights(list(saved["weights"]))
    tcav = Tcav(model, LAYER)
    shape = model.get_layer(LAYER).output.shape[1:]
    ours = saved["scores"]
    theirs = np.array([tcav.score(saved["sevens"], 7, d.reshape(shape))
                       for d in saved["directions"]])
    print(f"(a) xplique's Tcav with our {N_RUNS} CAVs: scores equal ours in "
          f"{np.sum(np.isclose(theirs, ours))} of {N_RUNS} (largest difference "
          f"{np.max(np.abs(theirs - ours)):.3f}); mean {theirs.mean():.3f} vs ours "
          f"{ours.mean():.3f}")
    cosines, scores = [], []
    for r in range(N_RUNS):
        cav = np.asarray(Cav(model, LAYER)(saved["loops"], saved["random"][r])).ravel()
        ours_r = saved["directions"][r]
        cosines.append(cav @ ours_r / np.linalg.norm(cav) / np.linalg.norm(ours_r))
        scores.append(tcav.score(saved["sevens"], 7, cav.reshape(shape)))
    print(f"(b) xplique's own CAVs (SGDClassifier): cosine with ours {np.mean(cosines):.2f} "
          f"(min {np.min(cosines):.2f}); TCAV score {np.mean(scores):.3f} vs ours "
          f"{ours.mean():.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--export", metavar="NPZ")
    group.add_argument("--compare", metavar="NPZ")
    args = parser.parse_args()
    export(args.export) if args.export else compare(args.compare)


if __name__ == "__main__":
    main()
