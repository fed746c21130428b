"""LRP and DeepLIFT time / gradient time: on the course MNIST CNN and on VGG16 at 224x224
(weights=None); target <= 1.3 (one modified backward pass). zennit's EpsilonPlus / gradient on
torchvision's VGG16 on the same machine where its venv exists (see zennit_relevance.py).

Every method runs the package's one compiled gradient step (LRP and DeepLIFT on a clone of the
model, built in the warm-up call). Times are medians over interleaved rounds after a warm-up
call; a ratio is the median over rounds of method / gradient timed in the same round.

    flock /tmp/t30/bench.lock .venv/bin/python benchmarks/bench_relevance.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from timing import median_times, paired_ratio  # noqa: E402  (benchmarks/timing.py)

ZENNIT_PYTHON = "/tmp/relevance_venv_zennit/bin/python"


def calls(model, x, target) -> dict:
    from cnn_helper import relevance, saliency

    return {
        "gradient": lambda: saliency.gradient(model, x, target),
        "lrp epsilon": lambda: relevance.lrp(model, x, target, rule="epsilon"),
        "lrp epsilon_plus": lambda: relevance.lrp(model, x, target, composite="epsilon_plus"),
        "lrp montavon": lambda: relevance.lrp(model, x, target, composite="montavon"),
        "deeplift": lambda: relevance.deeplift(model, x, target),
    }


def report(title: str, model, x, target, repeats: int):
    found = calls(model, x, target)
    times = median_times(found, repeats)
    print(f"\n{title}: {len(x)} images, {repeats} rounds")
    for name in found:
        ratio = "" if name == "gradient" else \
            f"   {paired_ratio(times['rounds'], name, 'gradient'):.2f}x gradient"
        print(f"  {name:18s} {times[name] * 1000:9.1f} ms{ratio}")


def zennit_times(n: int, repeats: int):
    """In the zennit interpreter: torchvision VGG16, gradient vs EpsilonPlus (median ms)."""
    import torch
    import torchvision
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonPlus

    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None).eval()
    x = torch.rand(n, 3, 224, 224)
    onehot = torch.eye(1000)[[1] * n]

    def gradient():
        xg = x.clone().requires_grad_(True)
        out = model(xg)
        (torch.autograd.grad((out * onehot).sum(), xg))

    def lrp():
        with Gradient(model=model, composite=EpsilonPlus()) as attributor:
            attributor(x.clone().requires_grad_(True), lambda out: out * onehot)

    found = {"gradient": gradient, "epsilon_plus": lrp}
    times = median_times(found, repeats)            # benchmarks/timing.py, as for ours above
    ratio = paired_ratio(times["rounds"], "epsilon_plus", "gradient")
    print(f"\nzennit {__import__('zennit').__name__}, torch {torch.__version__}, torchvision "
          f"VGG16@224, {n} images, {torch.get_num_threads()} threads:")
    for name in found:
        print(f"  {name:18s} {times[name] * 1000:9.1f} ms")
    print(f"  epsilon_plus / gradient: {ratio:.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-vgg", type=int, default=2)
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from cnn_helper import Feature, data, models

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.1f}")
    x = data.load(verbose=False).test[0][:256]
    report("course CNN, logit 8", models.load("cnn"), x, Feature("logits", 8), args.repeats)
    keras.utils.set_random_seed(0)
    vgg = keras.applications.VGG16(weights=None, classifier_activation=None)
    x = np.random.default_rng(0).random((args.n_vgg, 224, 224, 3)).astype(np.float32) * 255
    report("VGG16@224 (weights=None), logit 1", vgg, x, 1, args.repeats)
    if Path(ZENNIT_PYTHON).exists():
        subprocess.run([ZENNIT_PYTHON, __file__, "--zennit", str(args.n_vgg),
                        str(args.repeats)], check=False)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zennit"]:
        zennit_times(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
