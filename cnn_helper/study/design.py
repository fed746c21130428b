r"""The experimental design: seeded, balanced two-alternative forced-choice (2-AFC) trials.

The task of Borowski et al. (ICLR 2021, "Exemplary natural images explain CNN activations better
than state-of-the-art feature visualization"): a participant sees references for a unit
:math:`\y_{(l),k}` (a channel k of layer l, pooled as in ``max_activation.scan``) and two query
images, and answers which query activates the unit more. For the unit, rank the data
:math:`v^{(i_1)} \ge \dots \ge v^{(i_m)}` (one streaming ``scan``):

- references: the top ``n_references`` (ranks 1..9), :math:`\text{MaxAct}_{(l),k}[:9]`, or what
  the condition makes of the unit (``conditions.CONDITIONS``);
- the strong query: drawn from the next ``tail`` ranks (10 .. 9 + tail), never a reference;
- the weak query: drawn from the ``tail`` lowest ranks.

A unit is skipped, with its reason, when its queries would not differ clearly: a dead unit (the
same value for every example) or a gap between the weakest strong query and the strongest weak
query of at most ``min_spread`` times the unit's whole range :math:`v^{(i_1)} - v^{(i_m)}`.

Balanced: every chosen unit appears in every condition (with other queries each time), each
layer gives the same number of units, and within each (layer, condition) the strong query is
left as often as right (one more on one side when the count is odd). The same seed gives the
same trials, and each trial's id is a hash of the seed and of what it shows (indices, not
floats: another CPU's rounding changes it only where it reorders two almost equal values).

Example
-------
>>> ts = trials(model, x_test, ["conv1", "conv3"], units_per_layer=4, seed=0)
>>> ts      # TrialSet(24 trials: 2 layers x 4 units x 3 conditions x 1 per unit; 0 units skipped)
>>> ts[0].view()        # what a participant is shown: no ``correct`` in it
>>> ts.skipped[:2]      # (Feature, reason) of units without enough spread
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .. import _checks, _graph, max_activation
from .._checks import BATCH_SIZE
from ..features import Feature
from .conditions import CONDITIONS, References, Source

DEFAULT_CONDITIONS = ("exemplars", "visualizations", "none")


def _frozen(array) -> np.ndarray:
    array = np.array(array)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class TrialView:
    """What the participant sees of a trial (the widget gets only this): no ``correct``.

    id, unit, condition : as in ``Trial``;  references : ``References``
    queries     : (2, H, W, C) the two query images, left then right
    value_range : (low, high) of the data, to draw the images on one scale
    """

    id: str
    unit: Feature
    condition: str
    references: References
    queries: np.ndarray
    value_range: tuple


@dataclass(frozen=True)
class Trial:
    """One 2-AFC trial: which of the two queries activates ``unit`` more?

    id            : 12 hex digits, a hash of the seed and the trial's content (stable)
    unit          : the ``Feature`` (layer, channel, pool) asked about
    condition     : the name of the references' condition (``conditions.CONDITIONS``)
    references    : ``References`` (images, caption, indices into x, optional overlays)
    queries       : (2, H, W, C) the queries in the order shown (left, right)
    query_indices : (2,) their indices into x;  query_values : (2,) the unit's value on each
    correct       : 0 or 1, the index of the query that activates the unit more
    value_range   : (low, high) of the data x
    """

    id: str
    unit: Feature
    condition: str
    references: References
    queries: np.ndarray
    query_indices: np.ndarray
    query_values: np.ndarray
    correct: int
    value_range: tuple

    def __post_init__(self):
        for name in ("queries", "query_indices", "query_values"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def layer(self) -> str:
        return self.unit.layer_name

    def view(self) -> TrialView:
        """The trial as shown to a participant: everything but the answer."""
        return TrialView(self.id, self.unit, self.condition, self.references, self.queries,
                         self.value_range)

    def __repr__(self) -> str:
        return (f"Trial({self.id}, {self.unit}, {self.condition!r}, "
                f"{len(self.references)} references, queries #{self.query_indices[0]} and "
                f"#{self.query_indices[1]})")


@dataclass(frozen=True)
class TrialSet:
    """The trials of an experiment (a sequence of ``Trial``), the units skipped and why.

    trials   : tuple of Trial, in a seeded random order
    skipped  : tuple of (Feature, reason) for each unit left out
    settings : the call's settings (layers, conditions, units_per_layer, seed, ...)
    """

    trials: tuple
    skipped: tuple
    settings: dict

    def __len__(self):
        return len(self.trials)

    def __getitem__(self, i):
        return self.trials[i]

    def __iter__(self):
        return iter(self.trials)

    def __repr__(self) -> str:
        s = self.settings
        return (f"TrialSet({len(self)} trials: {len(s['layers'])} layers x "
                f"{s['units_per_layer']} units x {len(s['conditions'])} conditions x "
                f"{s['n_per_unit']} per unit; {len(self.skipped)} units skipped)")


# --------------------------------------------------------------------------- choosing units


def spread_problem(scan, channel: int, n_references: int, tail: int, min_spread: float):
    """Why a unit of a ``LayerScan`` cannot give clear trials (a sentence), or None when it can:
    the weakest strong query must exceed the strongest weak query by more than ``min_spread`` of
    the unit's range."""
    high, low = scan.high.values[channel], scan.low.values[channel]
    whole = float(high[0] - low[0])
    if whole <= 0:
        return f"dead: every example gives the same value {high[0]:.3g}"
    gap = float(high[n_references:n_references + tail].min() - low[:tail].max())
    if gap <= min_spread * whole:
        return (f"too little spread: the strong queries (from {high[n_references + tail - 1]:.3g})"
                f" are not clearly above the weak ones (up to {low[tail - 1]:.3g}); range "
                f"{low[0]:.3g}..{high[0]:.3g}, min_spread={min_spread}")
    return None


def _candidates(model, layer: str, channels) -> list:
    """The channels of ``layer`` to consider: all of them, or those given (a list, or a dict
    {layer: list})."""
    n = _graph.output_shape(model, layer)[-1]
    if isinstance(channels, dict):
        channels = channels.get(layer)
    chosen = range(n) if channels is None else channels
    for k in chosen:
        if not _checks.is_int(k) or not 0 <= k < n:
            raise ValueError(f"channel {k!r} is out of range for layer {layer!r}: it has "
                             f"channels 0..{n - 1}")
    return [int(k) for k in chosen]


def choose_units(model, scans: dict, channels, settings: dict, rng) -> tuple:
    """(units, skipped): the same number n of usable units from every layer, drawn with ``rng``
    (n = ``units_per_layer``, or fewer when a layer has fewer usable units), and each unit
    without enough spread with its reason."""
    usable, skipped = {}, []
    for layer, scan in scans.items():
        usable[layer] = []
        for k in _candidates(model, layer, channels):
            unit = Feature(layer, k, pool=settings["pool"])
            why = spread_problem(scan, k, settings["n_references"], settings["tail"],
                                 settings["min_spread"])
            (usable[layer].append(unit) if why is None else skipped.append((unit, why)))
    wanted = settings["units_per_layer"]
    n = min([len(u) for u in usable.values()] + ([] if wanted is None else [wanted]))
    if n == 0:
        raise ValueError("no usable unit in layer(s) "
                         f"{[layer for layer, u in usable.items() if not u]}: "
                         + "; ".join(f"{unit}: {why}" for unit, why in skipped[:5]))
    units = []
    for found in usable.values():
        units += [found[i] for i in sorted(rng.permutation(len(found))[:n])]
    return units, tuple(skipped)


# --------------------------------------------------------------------------- building trials


def _settings(conditions, units_per_layer, n_per_unit, n_references, tail, min_spread, pool,
              seed, visualization_steps, batch_size) -> dict:
    """The settings of ``trials``, checked, as the dict every part reads."""
    conditions = (conditions,) if isinstance(conditions, str) else tuple(conditions)
    for name in conditions:
        if name not in CONDITIONS:
            raise ValueError(f"condition {name!r} is not one of {tuple(CONDITIONS)} (add your "
                             "own to cnn_helper.study.CONDITIONS)")
    if not conditions or len(set(conditions)) != len(conditions):
        raise ValueError(f"conditions must name each condition once, got {conditions}")
    if units_per_layer is not None:
        units_per_layer = _checks.positive_int(units_per_layer, "units_per_layer")
    n_per_unit = _checks.positive_int(n_per_unit, "n_per_unit")
    tail = _checks.positive_int(tail, "tail")
    if n_per_unit * len(conditions) > tail:
        raise ValueError(f"n_per_unit={n_per_unit} x {len(conditions)} conditions needs "
                         f"{n_per_unit * len(conditions)} different query pairs per unit, but "
                         f"tail={tail} gives only {tail}: raise tail or lower n_per_unit")
    if not _checks.is_number(min_spread) or not 0 <= min_spread < 1:
        raise ValueError(f"min_spread must be a number in [0, 1), got {min_spread!r}")
    return dict(conditions=conditions, units_per_layer=units_per_layer, n_per_unit=n_per_unit,
                n_references=_checks.positive_int(n_references, "n_references"), tail=tail,
                min_spread=float(min_spread), pool=pool, seed=_checks.seed(seed),
                visualization_steps=_checks.positive_int(visualization_steps,
                                                         "visualization_steps"),
                batch_size=batch_size)


def _query_pairs(scan, unit: Feature, settings: dict, rng) -> list:
    """(strong, weak) pairs of (index into x, value) for one unit, all queries different: strong
    ones from ranks n_references+1 .. n_references+tail, weak ones from the tail lowest."""
    n, tail = settings["n_references"], settings["tail"]
    count = settings["n_per_unit"] * len(settings["conditions"])
    high, low, k = scan.high, scan.low, unit.channel
    strong = n + rng.permutation(tail)[:count]
    weak = rng.permutation(tail)[:count]
    return [((int(high.indices[k, s]), float(high.values[k, s])),
             (int(low.indices[k, w]), float(low.values[k, w]))) for s, w in zip(strong, weak)]


def _balanced_positions(plan: list, rng) -> list:
    """The strong query's side (0 left, 1 right) of each planned (unit, condition, pair): within
    each (layer, condition) half left and half right, in a seeded order."""
    sides = [0] * len(plan)
    strata = {}
    for i, (unit, condition, _) in enumerate(plan):
        strata.setdefault((unit.layer_name, condition), []).append(i)
    for members in strata.values():
        pattern = (np.arange(len(members)) + rng.integers(2)) % 2
        for i, side in zip(members, rng.permutation(pattern)):
            sides[i] = int(side)
    return sides


def trial_id(seed: int, unit: Feature, condition: str, references: References, shown) -> str:
    """12 hex digits of a SHA-256 of the seed and the trial's content: the unit, the condition,
    the references' indices and the queries' indices in the order shown (no floats: stable)."""
    text = "|".join(map(str, (seed, unit.layer_name, unit.channel, unit.pool, condition,
                              list(map(int, references.indices)), list(map(int, shown)))))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _trial(x, unit, condition, references, pair, side, settings, value_range) -> Trial:
    """The Trial showing ``pair`` (strong, weak) with the strong query on ``side``."""
    shown = pair if side == 0 else pair[::-1]
    indices = [index for index, _ in shown]
    return Trial(trial_id(settings["seed"], unit, condition, references, indices), unit,
                 condition, references, x[indices], indices, [value for _, value in shown],
                 side, value_range)


def trials(model, x, layers, channels=None, conditions=DEFAULT_CONDITIONS, units_per_layer=4,
           n_per_unit: int = 1, n_references: int = 9, tail: int = 20, min_spread: float = 0.05,
           pool: str = "max", seed: int = 0, visualization_steps: int = 32,
           batch_size=BATCH_SIZE, progress: bool = False) -> TrialSet:
    r"""Seeded, balanced 2-AFC trials for units of ``layers`` (module docstring).

    x               : the images (N, H, W, C) to draw references and queries from; N must be at
                      least n_references + 2 tail
    layers          : a layer name or a list of them;  channels : None (every channel), a list,
                      or {layer: list}: the candidate units
    conditions      : names from ``CONDITIONS`` ("exemplars", "visualizations", "none",
                      "exemplars+saliency", or your own)
    units_per_layer : units drawn per layer (fewer when a layer has fewer usable); None: all
    n_per_unit      : trials per unit and condition (different queries each)
    tail            : how many ranks each query is drawn from;  min_spread : see the module
    visualization_steps : Adam steps of each feature visualization (small: fast, blurrier)
    Returns a ``TrialSet``: the trials in a seeded random order, the skipped units and why.

    >>> ts = trials(model, x_test, ["conv1", "conv3"], seed=0)
    >>> ts[0].correct, ts[0].view()          # the answer, and what the participant sees
    """
    settings = _settings(conditions, units_per_layer, n_per_unit, n_references, tail, min_spread,
                         pool, seed, visualization_steps, batch_size)
    x, _ = _graph.check_images(model, x)
    names = max_activation.layer_names(model, _checks.layer_list(layers))
    if len(x) < n_references + 2 * tail:
        raise ValueError(f"x has {len(x)} images; trials need at least n_references + 2 tail = "
                         f"{n_references + 2 * tail} (references and two disjoint query tails)")
    scans = max_activation.scan(model, x, names, count=n_references + tail, pool=pool,
                                batch_size=batch_size, progress=progress)
    rng = np.random.default_rng(settings["seed"])
    units, skipped = choose_units(model, scans, channels, settings, rng)
    source = Source(model, x, scans, settings["n_references"], settings)
    references = {c: CONDITIONS[c](source, units) for c in settings["conditions"]}
    plan = []
    for u, unit in enumerate(units):
        pairs = iter(_query_pairs(scans[unit.layer_name], unit, settings, rng))
        plan += [(unit, c, next(pairs), references[c][u]) for c in settings["conditions"]
                 for _ in range(settings["n_per_unit"])]
    sides = _balanced_positions([p[:3] for p in plan], rng)
    value_range = (float(np.min(x)), float(np.max(x)))
    built = [_trial(x, unit, c, refs, pair, side, settings, value_range)
             for (unit, c, pair, refs), side in zip(plan, sides)]
    settings = dict(settings, layers=tuple(names), units_per_layer=len(units) // len(names))
    return TrialSet(tuple(built[i] for i in rng.permutation(len(built))), skipped, settings)
