"""KernelSHAP with 2,000 coalitions: time / the bare forward passes of its 2,000 masked copies.

The physical cost of KernelSHAP is the forward passes of its masked copies; drawing the
coalitions and the constrained fit are NumPy on a (2000, M) table. The bare reference runs the
same 2,000 masked images, made beforehand in NumPy from the same coalitions and held in an
array, through the compiled model in the same batch size. ``kernel_shap`` makes the copies
from the coalition table inside its compiled step (the perturbation engine). Target: ratio <=
1.2, on the course CNN (one test 8, a 7 x 7 grid) and on MobileNetV2 at 160 x 160 (weights=None,
one random image, a 7 x 7 grid); also, without a target, on the tiny 12 x 12 CNN that ``shap``
is timed on.

Each figure is the median of ``--repeats`` interleaved rounds after a warm-up call; the ratio is
the median of the per-round ratios.

    flock /tmp/t30/bench.lock .venv/bin/python benchmarks/bench_black_box.py [--repeats 5]

The ``shap`` package on the same work (2,000 coalitions, 49 regions) runs in its own venv on the
tiny NumPy CNN of benchmarks/shap_agreement.py (it cannot run a Keras model of this venv); it
reports shap's total time and the share spent inside the model function, i.e. its own overhead:

    .venv/bin/python benchmarks/shap_agreement.py export /tmp/shap_case
    /tmp/agnostic_venv_shap/bin/python benchmarks/bench_black_box.py --shap-case /tmp/shap_case
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TARGET = 1.2
N_SAMPLES = 2000


def _masked(x, labels, seed: int = 0) -> np.ndarray:
    """The 2,000 masked copies kernel_shap scores for image x (reference 0), made in NumPy."""
    from cnn_helper import _shapley  # internal contract: the coalitions kernel_shap draws

    m = int(labels.max()) + 1
    z, _, _ = _shapley.kernel_coalitions(m, N_SAMPLES, np.random.default_rng((seed, m)))
    return (x[None] * z[:, labels][..., None]).astype(np.float32)


def _case(name, model, x, repeats: int, batch_size):
    from timing import bare_forward, median_times, paired_ratio

    from cnn_helper import black_box, superpixels

    labels = superpixels.segments(x, "grid", n_segments=49)
    copies = _masked(x, labels)
    forward = bare_forward(model)
    size = 256 if batch_size == "auto" else batch_size
    t = median_times({
        "kernel_shap": lambda: black_box.kernel_shap(model, x, 0, segments=labels,
                                                     n_samples=N_SAMPLES, batch_size=size),
        "forward": lambda: forward(copies, size),
    }, repeats)
    ratio = paired_ratio(t["rounds"], "kernel_shap", "forward")
    print(f"{name:<28} {size:>5} {t['kernel_shap']:>14.2f} {t['forward']:>16.2f} {ratio:>6.2f}")
    return ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shap-case", default=None, help="time shap on this exported case")
    args = parser.parse_args(argv)
    if args.shap_case:
        return time_shap(args.shap_case, args.repeats)

    import keras
    import tensorflow as tf

    from cnn_helper import data, models

    print(f"KernelSHAP, {N_SAMPLES} coalitions, 7 x 7 grid; TensorFlow {tf.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':<28} {'batch':>5} {'kernel_shap s':>14} {'bare forward s':>16} {'ratio':>6}")
    cnn = models.load("cnn", "shipped")
    (_, _), (x_test, y_test) = data.load_mnist("bundled", verbose=False)
    worst = _case("course CNN, one test 8", cnn, x_test[y_test == 8][0], args.repeats, 256)
    from shap_agreement import _keras_model

    tiny = np.random.default_rng(1).uniform(0, 1, (12, 12, 1)).astype(np.float32)
    _case("tiny CNN of shap_agreement", _keras_model(), tiny, args.repeats, 256)   # no target:
    # its forward passes take about as long as the fixed cost of a call (checks, the fit)
    keras.utils.set_random_seed(0)
    mobilenet = keras.applications.MobileNetV2(input_shape=(160, 160, 3), weights=None)
    image = np.random.default_rng(0).uniform(-1, 1, (160, 160, 3)).astype(np.float32)
    worst = max(worst, _case("MobileNetV2@160, weights=None", mobilenet, image,
                             max(2, args.repeats // 2), 64))
    print(f"worst kernel_shap / bare forward ratio (course CNN, MobileNetV2): {worst:.2f} "
          f"(target <= {TARGET}): {'met' if worst <= TARGET else 'NOT met'}; load average "
          f"{os.getloadavg()[0]:.1f}")
    return 0


def time_shap(folder, repeats: int) -> int:
    """shap's KernelExplainer on the exported tiny NumPy CNN, 49 regions, 2,000 coalitions:
    total seconds and seconds inside the model function (median of ``repeats``)."""
    import shap
    from shap_agreement import TARGET as CLASS
    from shap_agreement import numpy_model

    case = np.load(os.path.join(folder, "case.npz"))
    weights = {k: case[k].astype(np.float64) for k in ("kernel", "bias", "dense", "dense_b")}
    image, labels = case["images"][0].astype(np.float64), case["labels_3"][0]
    inside = []

    def f(z):
        start = time.perf_counter()
        out = numpy_model(weights, image[None] * z[:, labels][..., None])[:, CLASS]
        inside[-1] += time.perf_counter() - start
        return out

    totals = []
    for _ in range(repeats):
        inside.append(0.0)
        explainer = shap.KernelExplainer(f, np.zeros((1, 49)))
        start = time.perf_counter()
        explainer.shap_values(np.ones((1, 49)), nsamples=N_SAMPLES - 2, l1_reg=False, silent=True)
        totals.append(time.perf_counter() - start)
    total, model_time = float(np.median(totals)), float(np.median(inside))
    print(f"shap {shap.__version__} KernelExplainer, tiny NumPy CNN, 49 regions, {N_SAMPLES} "
          f"coalitions: {total:.3f} s in all, {model_time:.3f} s in the model function "
          f"(ratio {total / model_time:.1f}); load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
