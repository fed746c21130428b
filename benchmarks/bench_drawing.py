"""The drawing pad's latency: from the end of a stroke to updated panels (target: under 0.3 s on
2 CPU cores), on the course CNN.

A stroke ends in the browser, which sends the pad's ink (280 x 280 bytes) to the kernel; the
explorer then makes the MNIST input, runs one forward pass (layer maps and probabilities) and one
gradient (the saliency), redraws its one figure and sends the PNG. This measures the kernel's part
exactly as ipywidgets runs it: the comm message's state handed to ``set_state`` (the bytes as a
memoryview), through to the new PNG in the ``ipywidgets.Image``. The browser adds the pad's
debounce (``DrawingPad.debounce_ms``, 60 ms) and two local messages.

It also splits one stroke into its parts (preprocessing, forward, gradient, figure, PNG) and
compares the figure kept and updated in place (what the explorer does) with a new figure per
stroke (``plot.panels.drawing_panels``), in the same interleaved rounds.

    python benchmarks/bench_drawing.py [--strokes 30]

The process is pinned to 2 cores (when the machine has more) and TensorFlow to 2 threads.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_widgets import pin_two_cores  # noqa: E402
from timing import median_times, paired_ratio  # noqa: E402


def strokes(n: int, side: int = 280) -> list:
    """n pads as the browser's bytes, each a scribble of the last 3 random strokes drawn (so
    every pad differs from the one before, as after a real stroke)."""
    import numpy as np

    from cnn_helper import drawing

    rng = np.random.default_rng(0)
    lines = [rng.uniform(30, side - 30, size=(3, 2)) for _ in range(n + 2)]
    pads = []
    for i in range(n):
        pad = np.zeros((side, side), np.float32)
        for points in lines[i:i + 3]:
            pad = drawing.stroke(pad, points, width=20)
        pads.append((pad * 255).round().astype(np.uint8).tobytes())
    return pads


def latency(explorer, pads) -> list:
    """Seconds from the ink's arrival to the new PNG, for each pad in turn."""
    times = []
    for i, data in enumerate(pads):
        before = explorer.panels_image.value
        start = time.perf_counter()
        explorer.pad.set_state({"pixels": memoryview(data), "strokes": i + 1})
        times.append(time.perf_counter() - start)
        if explorer.state["error"] or explorer.panels_image.value == before:
            raise RuntimeError(f"stroke {i}: no new view ({explorer.state['error']})")
    return times


def parts(explorer, data, repeats: int) -> dict:
    """Median seconds of each part of one stroke, interleaved."""
    import numpy as np

    from cnn_helper import drawing, features, saliency
    from cnn_helper.plot import panels
    from cnn_helper.widgets import figure_png

    def quick_png(fig):
        return figure_png(fig, compress_level=1)        # as the explorer writes it

    ink = np.frombuffer(data, np.uint8).reshape(280, 280) / np.float32(255)
    x = drawing.mnist_input(ink)
    acts = features.activations(explorer.model, x, ["conv2", "softmax"])
    s = saliency.gradient(explorer.model, x, 3)
    kept = explorer._view("conv2")
    calls = {
        "preprocess (mnist_input)": lambda: drawing.mnist_input(ink),
        "forward (maps + probabilities)": lambda: features.activations(
            explorer.model, x, ["conv2", "softmax"]),
        "gradient (saliency)": lambda: saliency.gradient(explorer.model, x, 3),
        "figure kept, updated + PNG": lambda: quick_png(kept.update(
            x, acts["softmax"], acts["conv2"], s, 3)),
        "new figure per stroke + PNG": lambda: quick_png(panels.drawing_panels(
            x, acts["softmax"], acts["conv2"], s, "conv2", 3)[0]),
    }
    return median_times(calls, repeats)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=30)
    args = parser.parse_args(argv)
    pin_two_cores()
    import cnn_helper

    cnnh = cnn_helper.CNN_Helper(data_source="bundled", weights="shipped", verbose=False)
    explorer = cnnh.drawing_explorer(start=0)
    pads = strokes(args.strokes + 3)
    latency(explorer, pads[:3])                                  # warm-up: traces, first figure
    cpu = time.process_time()
    times = latency(explorer, pads[3:])
    cpu = (time.process_time() - cpu) / args.strokes
    print(f"stroke end -> updated panels, {args.strokes} strokes: median "
          f"{statistics.median(times):.3f} s, 90th percentile "
          f"{sorted(times)[int(0.9 * len(times))]:.3f} s, max {max(times):.3f} s; "
          f"cpu {cpu:.3f} s per stroke (target: under 0.3 s); load average "
          f"{os.getloadavg()[0]:.1f}")
    medians = parts(explorer, pads[-1], repeats=15)
    for name, seconds in medians.items():
        if name != "rounds":
            print(f"  {name:<34} {seconds * 1000:6.1f} ms")
    ratio = paired_ratio(medians["rounds"], "new figure per stroke + PNG",
                         "figure kept, updated + PNG")
    print(f"  a new figure per stroke / the kept figure: {ratio:.2f}x (paired, same rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
