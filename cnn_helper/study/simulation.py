"""Simulated participants: what the accuracies mean when we know how the answers were made.

A responder is a function ``responder(view, rng) -> 0 or 1``: it sees what a participant sees
(a ``TrialView``: references and the two queries, never the answer) and a NumPy random
generator. ``simulate`` lets ``n_participants`` of them answer every trial into an answers
file, as a class would, and ``analyze`` reads it like the real one.

- ``oracle(model)``: reads the unit's activation of both queries from the model and picks the
  larger: 100 % (the unit's values are what defines the right answer);
- ``random_responder``: a fair coin: 50 %;
- ``brightness``: knows nothing about the unit; picks the query whose mean brightness is closer
  to the references' (with no references: the brighter one): what a shallow cue achieves;
- ``knowing(responder, share)``: answers as ``responder`` with probability ``share``, else
  guesses: a student who knows the answer on a share of the trials
  (:math:`0.5 + share / 2` with the oracle).

Example
-------
>>> answers = simulate(ts, oracle(model), n_participants=5, path="sim.sqlite", seed=0)
>>> analyze(answers).overall.accuracy
1.0
"""
from __future__ import annotations

import numpy as np

from .. import _checks, features
from .answers import Answers


def oracle(model, batch_size=_checks.BATCH_SIZE):
    """A responder that reads the activations: the query with the larger value of the unit
    (``features.feature_values`` on the two queries; remembered per trial)."""
    known = {}

    def oracle_responder(view, rng) -> int:
        if view.id not in known:
            values = features.feature_values(model, view.queries, view.unit, batch_size).values
            known[view.id] = int(np.argmax(values))
        return known[view.id]

    return oracle_responder


def random_responder(view, rng) -> int:
    """A fair coin: left or right with probability 1/2 each."""
    return int(rng.integers(2))


def brightness(view, rng) -> int:
    """The query whose mean pixel value is closest to the references' mean; with no references
    the brighter query (ties: a coin)."""
    means = view.queries.reshape(2, -1).mean(axis=1)
    if len(view.references):
        target = view.references.images.mean()
        score = -np.abs(means - target)
    else:
        score = means
    if score[0] == score[1]:
        return int(rng.integers(2))
    return int(np.argmax(score))


def knowing(responder, share: float):
    """A responder that answers as ``responder`` with probability ``share``, else at random."""
    if not _checks.is_number(share) or not 0 <= share <= 1:
        raise ValueError(f"share must be a number in [0, 1], got {share!r}")

    def knowing_responder(view, rng) -> int:
        knows = rng.random() < share
        guess = int(rng.integers(2))
        return responder(view, rng) if knows else guess

    knowing_responder.__name__ = f"knowing_{share:g}_{getattr(responder, '__name__', 'r')}"
    return knowing_responder


def _name_of(responder) -> str:
    name = getattr(responder, "__name__", type(responder).__name__)
    return name.removesuffix("_responder") or "responder"


def simulate(trials, responder, n_participants: int, path, seed: int = 0,
             name=None) -> Answers:
    """``n_participants`` simulated participants answer every trial into the file ``path``.

    trials    : a ``TrialSet`` (or a list of ``Trial``)
    responder : ``responder(view, rng) -> 0 or 1`` (see the module docstring)
    name      : the participants are "<name>-1", "<name>-2", ... (default: the responder's name)
    Participant p answers the trials in its own random order with ``rng`` seeded by (seed, p):
    the same seed gives the same answers. One transaction per participant.

    >>> simulate(ts, random_responder, 20, "sim.sqlite", seed=1)
    """
    n_participants = _checks.positive_int(n_participants, "n_participants")
    seed, trials = _checks.seed(seed), list(trials)
    if not trials:
        raise ValueError("there are no trials to answer")
    name = _name_of(responder) if name is None else name
    answers = Answers(path)
    for p in range(n_participants):
        rng = np.random.default_rng([seed, p])
        rows = []
        for i in rng.permutation(len(trials)):
            choice = responder(trials[i].view(), rng)
            rows.append(answers.answer_row(f"{name}-{p + 1}", trials[i], choice))
        answers.record_rows(rows)
    return answers
