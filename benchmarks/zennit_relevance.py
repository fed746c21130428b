"""LRP of cnn_helper.relevance against zennit (PyTorch) on the same weights: a VGG-like and a
ResNet-like small net (BatchNormalization with random statistics, random biases, max and average
pooling, a residual Add), each rule everywhere and each composite. Prints, per net and rule, the
largest absolute difference of the maps relative to the largest |R| of zennit's map, and the two
sums of relevance.

zennit runs in its own interpreter (never a dependency of the package):

    python3 -m venv /tmp/relevance_venv_zennit
    /tmp/relevance_venv_zennit/bin/pip install torch zennit numpy h5py
    .venv/bin/python benchmarks/zennit_relevance.py [--peer-python PYTHON]   # default: that venv

This process builds the Keras nets, exports weights, images and our maps as .npz and runs
``python zennit_relevance.py --peer NPZ OUT`` in the zennit interpreter, which builds the same
nets in PyTorch (channels first), folds their BatchNorms with zennit's canonizer and writes
zennit's maps.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SIZE, N_IMAGES, TARGET, EPSILON, GAMMA = 16, 4, 3, 0.25, 0.25
RULES = ["zero", "epsilon", "gamma", "alpha_beta", "alpha2_beta1", "flat", "w_square", "zb"]
COMPOSITES = ["epsilon_plus", "epsilon_plus_flat", "epsilon_gamma_box", "montavon"]


# --------------------------------------------------------------------------- Keras side


def keras_nets():
    """{name: model}: the VGG-like and the ResNet-like nets, random biases and BN statistics."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    init = {"bias_initializer": "random_normal"}
    i = keras.Input((SIZE, SIZE, 3))
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="c1", **init)(i)
    h = L.ReLU(name="r2")(L.BatchNormalization(name="bn2")(L.Conv2D(8, 3, padding="same",
                                                                    name="c2", **init)(h)))
    h = L.MaxPooling2D(2)(h)
    h = L.Conv2D(16, 3, padding="same", activation="relu", name="c3", **init)(h)
    h = L.Flatten()(L.AveragePooling2D(2)(h))
    h = L.Dense(16, activation="relu", name="d1", **init)(h)
    vgg = keras.Model(i, L.Dense(5, name="d2", **init)(h), name="vgg")

    def conv_bn(h, name):
        return L.BatchNormalization(name=name + "_bn")(L.Conv2D(8, 3, padding="same",
                                                                name=name, **init)(h))

    i = keras.Input((SIZE, SIZE, 3))
    h = L.ReLU()(conv_bn(i, "stem"))
    r = conv_bn(L.ReLU()(conv_bn(h, "b1")), "b2")
    h = L.GlobalAveragePooling2D()(L.ReLU()(L.Add()([h, r])))
    resnet = keras.Model(i, L.Dense(5, name="fc", **init)(h), name="resnet")
    rng = np.random.default_rng(1)
    for model in (vgg, resnet):
        for layer in model.layers:
            if isinstance(layer, L.BatchNormalization):
                n = layer.gamma.shape[0]
                layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                                   rng.normal(0, 0.1, n), rng.uniform(0.5, 1.5, n)])
    return {"vgg": vgg, "resnet": resnet}


def our_map(model, x, name):
    from cnn_helper import Feature
    from cnn_helper.relevance import Rule, lrp

    target = Feature(model.layers[-1].name, TARGET)
    if name in COMPOSITES:
        return lrp(model, x, target, composite=name, epsilon=EPSILON, gamma=GAMMA,
                   bounds=(0.0, 1.0))
    if name == "zb":
        first = next(layer.name for layer in model.layers if layer.weights)
        return lrp(model, x, target, rule="epsilon", composite={first: "zb"},
                   epsilon=EPSILON, bounds=(0.0, 1.0))
    rule = Rule("alpha_beta", alpha=2.0, beta=1.0) if name == "alpha2_beta1" else name
    return lrp(model, x, target, rule=rule, epsilon=EPSILON, gamma=GAMMA)


def export(folder: Path) -> dict:
    """Weights, images and our maps of both nets as folder/<net>.npz; {net: model}."""
    nets = keras_nets()
    x = np.random.default_rng(2).random((N_IMAGES, SIZE, SIZE, 3)).astype(np.float32)
    for net, model in nets.items():
        arrays = {"x": x, "logits": model.predict(x, verbose=0)}
        for layer in model.layers:
            for w in layer.weights:
                arrays[f"w/{layer.name}/{w.name}"] = np.asarray(w.numpy())
        for name in RULES + COMPOSITES:
            arrays[f"ours/{name}"] = our_map(model, x, name)
        np.savez(folder / f"{net}.npz", **arrays)
    return nets


# --------------------------------------------------------------------------- zennit side


def torch_nets(w):
    """The same nets in PyTorch (NCHW), weights from the npz dict ``w``."""
    import torch
    from torch import nn
    from zennit.layer import Sum

    def conv(name, c_in, c_out):
        layer = nn.Conv2d(c_in, c_out, 3, padding=1)
        layer.weight.data = torch.tensor(w[f"w/{name}/kernel"]).permute(3, 2, 0, 1).contiguous()
        layer.bias.data = torch.tensor(w[f"w/{name}/bias"])
        return layer

    def bn(name, n):
        layer = nn.BatchNorm2d(n, eps=1e-3)
        for attr, key in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                          ("running_var", "moving_variance")):
            getattr(layer, attr).data = torch.tensor(w[f"w/{name}/{key}"])
        return layer

    def dense(name):
        kernel = torch.tensor(w[f"w/{name}/kernel"])
        layer = nn.Linear(*kernel.shape)
        layer.weight.data, layer.bias.data = kernel.T.contiguous(), torch.tensor(
            w[f"w/{name}/bias"])
        return layer

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.r1 = conv("c1", 3, 8), nn.ReLU()
            self.c2, self.r2 = nn.Sequential(conv("c2", 8, 8), bn("bn2", 8)), nn.ReLU()
            self.p1, self.c3, self.r3 = nn.MaxPool2d(2), conv("c3", 8, 16), nn.ReLU()
            self.p2, self.d1, self.r4, self.d2 = nn.AvgPool2d(2), dense("d1"), nn.ReLU(), \
                dense("d2")

        def forward(self, x):
            h = self.p1(self.r2(self.c2(self.r1(self.c1(x)))))
            h = self.p2(self.r3(self.c3(h))).permute(0, 2, 3, 1).flatten(1)   # Keras' order
            return self.d2(self.r4(self.d1(h)))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.r0 = nn.Sequential(conv("stem", 3, 8), bn("stem_bn", 8)), nn.ReLU()
            self.b1, self.r1 = nn.Sequential(conv("b1", 8, 8), bn("b1_bn", 8)), nn.ReLU()
            self.b2 = nn.Sequential(conv("b2", 8, 8), bn("b2_bn", 8))
            self.sum, self.r2, self.gap, self.fc = Sum(), nn.ReLU(), nn.AdaptiveAvgPool2d(1), \
                dense("fc")

        def forward(self, x):
            h = self.r0(self.stem(x))
            h = self.r2(self.sum(torch.stack([h, self.b2(self.r1(self.b1(h)))], dim=-1)))
            return self.fc(self.gap(h).flatten(1))

    return {"vgg": VGG, "resnet": ResNet}


def zennit_composite(net_name, name):
    """zennit's composite for rule or composite ``name`` (BatchNorms merged)."""
    from zennit import composites as C
    from zennit import rules as Z
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.layer import Sum
    from zennit.types import Activation, AvgPool, Convolution
    from zennit.types import Linear as AnyLinear

    class MergeBatchNormExactly(SequentialMergeBatchNorm):
        """zennit's merge leaves each BatchNorm computing x / sqrt(1 + eps), a factor 0.9995
        with Keras' eps = 1e-3 (torch's 1e-5 hides it): eps = 0 makes the merge exact."""

        @staticmethod
        def merge_batch_norm(modules, batch_norm):
            SequentialMergeBatchNorm.merge_batch_norm(modules, batch_norm)
            batch_norm.eps = 0.0

    canon = [MergeBatchNormExactly()]
    base = [(Activation, Z.Pass()), (Sum, Z.Norm()), (AvgPool, Z.Norm())]
    if name == "epsilon_plus":
        return C.EpsilonPlus(epsilon=EPSILON, canonizers=canon)
    if name == "epsilon_plus_flat":
        return C.EpsilonPlusFlat(epsilon=EPSILON, canonizers=canon)
    if name == "epsilon_gamma_box":
        return C.EpsilonGammaBox(low=0.0, high=1.0, epsilon=EPSILON, gamma=GAMMA,
                                 canonizers=canon)
    if name == "montavon":           # ours: zb, gamma on the lower half of the rest, epsilon
        convs = ["c1", "c2.0", "c3"] if net_name == "vgg" else ["stem.0", "b1.0", "b2.0"]
        dense = ["d1", "d2"] if net_name == "vgg" else ["fc"]
        rest = convs[1:]
        lower = rest[:len(rest) // 2]
        name_map = [([convs[0]], Z.ZBox(0.0, 1.0)), (lower, Z.Gamma(GAMMA)),
                    ([c for c in rest if c not in lower], Z.Epsilon(EPSILON)),
                    (dense, Z.Epsilon(0.0 + 1e-12))]
        return C.MixedComposite([C.NameMapComposite(name_map),
                                 C.LayerMapComposite(base)], canonizers=canon)
    rule = {"zero": Z.Epsilon(1e-12), "epsilon": Z.Epsilon(EPSILON), "gamma": Z.Gamma(GAMMA),
            "alpha_beta": Z.AlphaBeta(1.0, 0.0), "alpha2_beta1": Z.AlphaBeta(2.0, 1.0),
            "flat": Z.Flat(), "w_square": Z.WSquare(), "zb": Z.Epsilon(EPSILON)}[name]
    if name == "zb":
        return C.SpecialFirstLayerMapComposite(
            base + [(AnyLinear, rule)], [(Convolution, Z.ZBox(0.0, 1.0))], canonizers=canon)
    return C.LayerMapComposite(base + [(AnyLinear, rule)], canonizers=canon)


def peer(npz_path, out_path):
    """In the zennit interpreter: zennit's map of every rule and composite, channels last."""
    import torch
    from zennit.attribution import Gradient

    w = dict(np.load(npz_path))
    net_name = Path(npz_path).stem
    x = torch.tensor(w["x"]).permute(0, 3, 1, 2).contiguous()
    found = {}
    for name in RULES + COMPOSITES:
        model = torch_nets(w)[net_name]().eval()
        onehot = torch.eye(5)[[TARGET] * len(x)]
        with Gradient(model=model, composite=zennit_composite(net_name, name)) as attributor:
            logits, relevance = attributor(x.clone().requires_grad_(True),
                                           lambda out: out * onehot)
        found[f"zennit/{name}"] = relevance.permute(0, 2, 3, 1).detach().numpy()
        found["logits"] = logits.detach().numpy()
    np.savez(out_path, **found)


# --------------------------------------------------------------------------- report


def main(peer_python):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        export(folder)
        print("| net | rule or composite | max abs diff / max abs R (zennit) | sum R ours | "
              "sum R zennit |\n| --- | --- | ---: | ---: | ---: |")
        for net in ("vgg", "resnet"):
            subprocess.run([peer_python, __file__, "--peer", str(folder / f"{net}.npz"),
                            str(folder / f"{net}_zennit.npz")], check=True)
            ours, theirs = np.load(folder / f"{net}.npz"), np.load(folder / f"{net}_zennit.npz")
            assert np.abs(ours["logits"] - theirs["logits"]).max() < 1e-4, "nets differ"
            for name in RULES + COMPOSITES:
                a, b = ours[f"ours/{name}"], theirs[f"zennit/{name}"]
                print(f"| {net} | {name} | {np.abs(a - b).max() / np.abs(b).max():.1e} | "
                      f"{a.sum(axis=(1, 2, 3)).mean():.4f} | {b.sum(axis=(1, 2, 3)).mean():.4f} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peer"]:
        peer(sys.argv[2], sys.argv[3])
    else:
        python = sys.argv[sys.argv.index("--peer-python") + 1] if "--peer-python" in sys.argv \
            else "/tmp/relevance_venv_zennit/bin/python"
        main(python)
