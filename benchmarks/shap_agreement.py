"""KernelSHAP of cnn_helper against the ``shap`` package's KernelExplainer on the same model, the
same segments and the same reference: exactly (all 2^M coalitions) and sampled (2,000 of them).

The two packages cannot share a Python environment easily (shap and the package's TensorFlow), so
the model is a tiny CNN whose weights travel as an .npz file and which both sides evaluate: this
side with Keras (through ``cnn_helper.black_box``), the shap side in NumPy (``numpy_model``, checked
here against Keras). Two steps, two venvs:

    .venv/bin/python benchmarks/shap_agreement.py export /tmp/shap_case
    python3 -m venv /tmp/agnostic_venv_shap && /tmp/agnostic_venv_shap/bin/pip install shap numpy
    /tmp/agnostic_venv_shap/bin/python benchmarks/shap_agreement.py shap /tmp/shap_case

``export`` writes the weights, the images, the label maps, cnn_helper's values (exact for M = 8
and M = 16; sampled with 2,000 coalitions for M = 16 and M = 49, with the exact values for M = 16
and 100,000 coalitions for M = 49 as references); ``shap`` computes shap's values on the same
cases and prints the largest differences. shap's features are the regions: its background is the
empty coalition (every region at the reference, here 0) and the explained point the full one, so
its f(z) is this package's f(z) on the same masked image.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TARGET = 1
CASES = {"8 regions (2 x 4), exact": ((2, 4), 256),
         "16 regions (4 x 4), exact": ((4, 4), 65536),
         "16 regions (4 x 4), 2,000 coalitions": ((4, 4), 2000),
         "49 regions (7 x 7), 2,000 coalitions": ((7, 7), 2000)}


def numpy_model(weights: dict, images) -> np.ndarray:
    """The tiny CNN in NumPy: 3x3 valid conv (4 maps) + ReLU -> flatten -> dense(3) -> softmax;
    images (n, 12, 12, 1) -> probabilities (n, 3)."""
    windows = np.lib.stride_tricks.sliding_window_view(images, (3, 3), axis=(1, 2))
    conv = np.einsum("nhwcij,ijck->nhwk", windows, weights["kernel"]) + weights["bias"]
    logits = np.maximum(conv, 0).reshape(len(images), -1) @ weights["dense"] + weights["dense_b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _keras_model():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 1))
    c = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    logits = keras.layers.Dense(3, name="dense")(keras.layers.Flatten()(c))
    return keras.Model(inp, keras.layers.Activation("softmax")(logits))


def export(folder: Path):
    from cnn_helper import black_box, superpixels

    folder.mkdir(parents=True, exist_ok=True)
    model = _keras_model()
    kernel, bias = model.get_layer("conv").get_weights()
    dense, dense_b = model.get_layer("dense").get_weights()
    weights = dict(kernel=kernel, bias=bias, dense=dense, dense_b=dense_b)
    images = np.random.default_rng(1).uniform(0, 1, (3, 12, 12, 1)).astype(np.float32)
    gap = np.abs(numpy_model(weights, images.astype(np.float64)) - np.asarray(model(images)))
    print(f"NumPy model vs Keras: largest difference {gap.max():.1e}")
    out = dict(weights, images=images)
    for i, (case, (grid, n_samples)) in enumerate(CASES.items()):
        labels = superpixels.segments(images, "grid", n_segments=grid)
        r = black_box.kernel_shap_values(model, images, TARGET, segments=labels,
                                         n_samples=n_samples)
        out[f"labels_{i}"], out[f"ours_{i}"] = labels, r.values
        out[f"exact_{i}"] = r.exact
        print(f"{case}: exact={bool(r.exact.all())}, {r.n_coalitions[0]} coalitions")
    out["reference_16"] = black_box.kernel_shap_values(model, images, TARGET,
                                                       segments=out["labels_1"],
                                                       n_samples=65536).values
    out["reference_49"] = black_box.kernel_shap_values(model, images, TARGET,
                                                       segments=out["labels_3"],
                                                       n_samples=100_000, seed=1).values
    np.savez(folder / "case.npz", **out)
    print(f"wrote {folder / 'case.npz'}")


def _shap_values(weights, image, labels, n_samples: int, seed: int) -> np.ndarray:
    import shap

    m = int(labels.max()) + 1

    def f(z):                                 # z (n, M) in {0, 1}: regions kept
        kept = z[:, labels][..., None]        # (n, H, W, 1)
        return numpy_model(weights, image[None] * kept)[:, TARGET]

    np.random.seed(seed)                      # shap samples with NumPy's global generator
    explainer = shap.KernelExplainer(f, np.zeros((1, m)))
    budget = min(n_samples - 2, 2 ** m - 2)   # ours counts the empty and the full coalition
    return np.asarray(explainer.shap_values(np.ones((1, m)), nsamples=budget, l1_reg=False,
                                            silent=True)).reshape(-1)


def compare(folder: Path):
    import shap

    case = np.load(folder / "case.npz")
    weights = {k: case[k].astype(np.float64) for k in ("kernel", "bias", "dense", "dense_b")}
    images = case["images"].astype(np.float64)
    print(f"shap {shap.__version__}, numpy {np.__version__}")
    for i, (name, (_, n_samples)) in enumerate(CASES.items()):
        ours = case[f"ours_{i}"]
        theirs = np.stack([_shap_values(weights, images[n], case[f"labels_{i}"][n], n_samples, n)
                           for n in range(len(images))])
        line = (f"{name}: largest |ours - shap| {np.abs(ours - theirs).max():.1e} "
                f"(largest |value| {np.abs(ours).max():.3f})")
        if i >= 2:
            exact = case["reference_16" if i == 2 else "reference_49"]
            what = "the exact values" if i == 2 else "ours with 100,000 coalitions"
            line += (f"; against {what}: ours {np.abs(ours - exact).max():.1e}, "
                     f"shap {np.abs(theirs - exact).max():.1e}")
        print(line)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("export", "shap"):
        sys.exit(__doc__)
    (export if sys.argv[1] == "export" else compare)(Path(sys.argv[2]))
