"""How long each interaction of the explorers takes (cnn_helper.widgets), on the course CNN.

Every interaction is what a click in class does: set a control's value, which recomputes (or
takes from the explorer's cache) and redraws the PNGs shown. The target is under 1 s each on
2 CPU cores. The process is pinned to 2 cores (when the machine has more) and TensorFlow to 2
threads. Wall time is what the instructor waits; CPU time (this process, all threads) is shown
too, because wall time on a shared machine also counts other programs' load.

    python benchmarks/bench_widgets.py [--repeat 5]

"first" = the first time a kind of value is seen (e.g. the first visit of a layer: TensorFlow
traces its functions once); "typical" = the median over new values of the same kind.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pin_two_cores():
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 2:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)


ROWS = []


def timed(explorer, label, control, value):
    """Set ``control.value = value``; record wall and CPU seconds; fail loudly on an error."""
    wall, cpu = time.perf_counter(), time.process_time()
    control.value = value
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if explorer.state.get("error"):
        raise RuntimeError(f"{label}={value!r}: {explorer.state['error']}")
    return wall, cpu


def record(name, samples):
    walls = [w for w, _ in samples]
    cpus = [c for _, c in samples]
    row = (name, len(samples), statistics.median(walls), max(walls), statistics.median(cpus))
    ROWS.append(row)
    print(f"{row[0]:<48} n={row[1]:<3} median {row[2]:6.3f} s   max {row[3]:6.3f} s   "
          f"cpu {row[4]:6.3f} s", flush=True)


def construct(name, make):
    wall, cpu = time.perf_counter(), time.process_time()
    explorer = make()
    record(name, [(time.perf_counter() - wall, time.process_time() - cpu)])
    if explorer.state.get("error"):
        raise RuntimeError(f"{name}: {explorer.state['error']}")
    return explorer


def bench_feature(model, x, y, repeat):
    from cnn_helper.widgets import FeatureExplorer

    fe = construct("FeatureExplorer: construct (scans, first view)",
                   lambda: FeatureExplorer(model, x, y))
    layers = fe.layers
    record("FeatureExplorer: layer, first visit",
           [timed(fe, "layer", fe.layer, la) for la in layers[1:]])
    record("FeatureExplorer: layer, visited before",
           [timed(fe, "layer", fe.layer, la) for la in layers])
    fe.layer.value = "conv2"
    record("FeatureExplorer: channel (new channel)",
           [timed(fe, "channel", fe.channel, c) for c in range(1, 1 + repeat)])
    record("FeatureExplorer: channel (seen before)",
           [timed(fe, "channel", fe.channel, c) for c in range(1, 1 + repeat)])
    record("FeatureExplorer: pooling max <-> mean",
           [timed(fe, "pool", fe.pool, r) for r in ["mean", "max"] * max(1, repeat // 2)])
    record("FeatureExplorer: example",
           [timed(fe, "example", fe.example, e) for e in range(10, 10 + repeat)])
    return fe


def bench_occlusion(model, x, y, repeat):
    from cnn_helper.widgets import OcclusionExplorer

    oe = construct("OcclusionExplorer: construct (predictions, first map)",
                   lambda: OcclusionExplorer(model, x, y))
    record("OcclusionExplorer: example (patch 4, stride 1)",
           [timed(oe, "example", oe.example, e) for e in range(1, 1 + repeat)])
    record("OcclusionExplorer: patch size",
           [timed(oe, "patch", oe.patch, p) for p in (2, 6, 8, 10)[:repeat]])
    record("OcclusionExplorer: stride", [timed(oe, "stride", oe.stride, s) for s in (2, 3, 1)])
    record("OcclusionExplorer: fill",
           [timed(oe, "fill", oe.fill, f) for f in ("zero", "mean", 0.5)])
    record("OcclusionExplorer: class", [timed(oe, "target", oe.target, c) for c in range(repeat)])
    record("OcclusionExplorer: label", [timed(oe, "label", oe.label, c) for c in range(repeat)])
    return oe


def bench_convolution(x, repeat):
    from cnn_helper.widgets import ConvolutionExplorer

    ce = construct("ConvolutionExplorer: construct", lambda: ConvolutionExplorer(digits=x))
    names = list(ce.filters)
    record("ConvolutionExplorer: filter (synthetic image)",
           [timed(ce, "filter", ce.filter, n) for n in names[1:] + names[:1]])
    record("ConvolutionExplorer: edit one weight",
           [timed(ce, "weight", ce.weights[i], 2.0) for i in range(repeat)])
    record("ConvolutionExplorer: input -> MNIST digit",
           [timed(ce, "source", ce.source, "MNIST digit")])
    record("ConvolutionExplorer: digit",
           [timed(ce, "digit", ce.digit, d) for d in range(1, 1 + repeat)])
    record("ConvolutionExplorer: filter (MNIST digit)",
           [timed(ce, "filter", ce.filter, n) for n in names[1:] + names[:1]])
    return ce


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="values per interaction (default 5)")
    args = parser.parse_args(argv)
    pin_two_cores()
    import matplotlib
    matplotlib.use("agg")
    import cnn_helper

    cnnh = cnn_helper.CNN_Helper(data_source="bundled", verbose=False)
    model = cnnh.model()
    x, y = cnnh.x_test, cnnh.y_test
    print("cores: "
          f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}"
          f", data: bundled MNIST test split {x.shape}, python {sys.version.split()[0]}")
    bench_feature(model, x, y, args.repeat)
    bench_occlusion(model, x, y, args.repeat)
    bench_convolution(x, args.repeat)
    slow = [r for r in ROWS if "construct" not in r[0] and r[2] >= 1.0]
    print("\nevery interaction's median under 1 s" if not slow else
          "\nmedian of 1 s or more: " + ", ".join(r[0] for r in slow))


if __name__ == "__main__":
    main()
