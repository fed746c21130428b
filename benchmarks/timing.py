"""Timing helpers shared by the benchmarks: interleaved rounds, medians, paired ratios, and the
bare compiled forward pass every method is measured against."""
from __future__ import annotations

import time

import numpy as np


def median_times(calls: dict, repeats: int) -> dict:
    """Median seconds of each call, interleaved over ``repeats`` rounds after one warm-up call each.

    Interleaving makes a change in machine load hit every call alike. Also returns, under
    ``"rounds"``, the list of per-round times ({name: seconds}) for paired ratios.
    """
    for call in calls.values():
        call()
    rounds = []
    for _ in range(repeats):
        row = {}
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            row[name] = time.perf_counter() - start
        rounds.append(row)
    medians = {name: float(np.median([r[name] for r in rounds])) for name in calls}
    medians["rounds"] = rounds
    return medians


def paired_ratio(rounds: list, numerator: str, denominator: str) -> float:
    """Median over rounds of numerator time / denominator time measured in the same round."""
    return float(np.median([r[numerator] / r[denominator] for r in rounds]))


def bare_forward(model):
    """The model's own forward pass compiled, nothing else: the floor a method is measured against.

    Returns a function running x in chunks of ``batch_size`` and returning the outputs as NumPy.
    """
    import tensorflow as tf

    step = tf.function(lambda x: model(x, training=False))

    def run(x, batch_size):
        return [np.asarray(step(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]

    return run
