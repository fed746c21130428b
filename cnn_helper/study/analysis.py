r"""How often the participants were right: accuracy per condition, per layer and per participant.

For a group of n answers with c correct, the accuracy is :math:`\hat p = c / n` and its Wilson
score interval at level :math:`1 - \alpha` (Wilson 1927; z the :math:`1 - \alpha/2` normal
quantile, 1.96 for 95 %) is

.. math::  \frac{\hat p + \frac{z^2}{2n}}{1 + \frac{z^2}{n}} \pm
           \frac{z}{1 + \frac{z^2}{n}} \sqrt{\frac{\hat p (1 - \hat p)}{n} + \frac{z^2}{4 n^2}}

It stays inside [0, 1] and keeps close to its nominal coverage for small n and for accuracies
near 1, where the textbook :math:`\hat p \pm z \sqrt{\hat p (1 - \hat p) / n}` does not. It
treats the answers as independent; answers of one participant (or about one unit) are
correlated, so with few participants read the per-participant results too.

Chance is 50 %. The published results to compare with (``BASELINES``), on ImageNet networks
(GoogLeNet / Inception V1), with the ± as the papers report them:

- Borowski et al., ICLR 2021, "Exemplary natural images explain CNN activations better than
  state-of-the-art feature visualization": natural exemplars 92 ± 2 %, feature visualizations
  82 ± 4 %;
- Zimmermann et al., NeurIPS 2021, "How well do feature visualizations support causal
  understanding of CNN activations?": feature visualizations 68 ± 4 %, no references 60 ± 3 %.

Example
-------
>>> result = analyze("class.sqlite")        # or several files, or an Answers
>>> result                                  # the table
>>> result.by_condition[0].accuracy, result.to_rows()[:2]
>>> cnn_helper.plot.study_results(result)
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from .answers import Answers

CHANCE = 0.5


@dataclass(frozen=True)
class Baseline:
    """A published accuracy: the paper, its condition name here, the accuracy and its ± (0..1)."""

    paper: str
    condition: str
    accuracy: float
    error: float


BASELINES = (
    Baseline("Borowski et al. 2021", "exemplars", 0.92, 0.02),
    Baseline("Borowski et al. 2021", "visualizations", 0.82, 0.04),
    Baseline("Zimmermann et al. 2021", "visualizations", 0.68, 0.04),
    Baseline("Zimmermann et al. 2021", "none", 0.60, 0.03),
)
"""The published human accuracies on ImageNet units (module docstring)."""


def wilson(n_correct: int, n: int, level: float = 0.95) -> tuple:
    """The Wilson score interval (low, high) of the accuracy n_correct / n (module docstring);
    (0, 1) when n = 0.

    >>> wilson(9, 10)
    (0.5958..., 0.9821...)
    """
    if n == 0:
        return 0.0, 1.0
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    p = n_correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    # at 0 or n correct the interval ends at 0 or 1 exactly; rounding would leave 1e-17 or
    # 1 - 1e-16 (an accuracy of 100 % above its own interval)
    return (0.0 if n_correct == 0 else low), (1.0 if n_correct == n else high)


@dataclass(frozen=True)
class Accuracy:
    """One row of the table: the group, its answers n, how many were correct, the accuracy and
    its Wilson interval (low, high) at ``level``."""

    group: str
    n: int
    n_correct: int
    accuracy: float
    low: float
    high: float
    level: float = 0.95

    @classmethod
    def of(cls, group: str, correct: list, level: float = 0.95):
        n, c = len(correct), int(sum(correct))
        return cls(group, n, c, c / n if n else math.nan, *wilson(c, n, level), level)

    def line(self) -> str:
        return (f"{self.group:<24} {self.n:>5} {self.n_correct:>7} {100 * self.accuracy:>6.1f} %"
                f"  [{100 * self.low:5.1f}, {100 * self.high:5.1f}]")


@dataclass(frozen=True)
class Analysis:
    """Accuracies of an experiment: tuples of ``Accuracy`` rows, each sorted by group name.

    overall        : one row, every answer
    by_condition   : one row per condition;  by_layer : one row per layer
    by_participant : one row per participant (names in natural order: p-2 before p-10)
    by_cell        : one row per (condition, layer), named "condition / layer"
    baselines      : the published results to compare with (``BASELINES``);  chance : 0.5
    """

    overall: Accuracy
    by_condition: tuple
    by_layer: tuple
    by_participant: tuple
    by_cell: tuple
    baselines: tuple = BASELINES
    chance: float = CHANCE

    def to_rows(self) -> list:
        """Every row as a dict (table, group, n, n_correct, accuracy, low, high, level): ready for
        ``csv.DictWriter`` or ``pandas.DataFrame``."""
        tables = dict(overall=(self.overall,), condition=self.by_condition, layer=self.by_layer,
                      participant=self.by_participant, cell=self.by_cell)
        return [dict(table=name, **vars(row)) for name, rows in tables.items() for row in rows]

    def __repr__(self) -> str:
        head = f"{'group':<24} {'n':>5} {'correct':>7} {'accuracy':>8}  95 % Wilson CI"
        parts = [head, self.overall.line()]
        for title, rows in (("condition", self.by_condition), ("layer", self.by_layer),
                            ("participant", self.by_participant)):
            parts += [f"-- by {title}"] + [row.line() for row in rows]
        return "\n".join(parts)


def _natural(name: str) -> list:
    """A sort key that orders the numbers inside names by value: p-2 before p-10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name) if part]


def _grouped(rows: list, key, level: float) -> tuple:
    groups = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row["correct"])
    return tuple(Accuracy.of(name, groups[name], level) for name in sorted(groups, key=_natural))


def _answers_of(source) -> list:
    """Rows from an ``Answers``, a path, or a list of either (one file per student)."""
    if isinstance(source, Answers):
        return source.rows()
    if isinstance(source, (str, Path)):
        if not Path(source).exists():
            raise FileNotFoundError(f"no answers file {str(source)!r}")
        return Answers(source).rows()
    if isinstance(source, (list, tuple)):
        return [row for one in source for row in _answers_of(one)]
    raise TypeError(f"give an Answers, a path to its file or a list of them, got "
                    f"{type(source).__name__}")


def analyze(path_or_answers, level: float = 0.95) -> Analysis:
    """Accuracy with Wilson intervals per condition, layer, participant and (condition, layer).

    path_or_answers : an ``Answers``, the path of its SQLite file, or a list of them
    level           : the intervals' confidence level

    >>> analyze("class.sqlite").by_condition
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    rows = _answers_of(path_or_answers)
    if not rows:
        raise ValueError("there are no answers to analyze yet")
    return Analysis(Accuracy.of("all", [r["correct"] for r in rows], level),
                    _grouped(rows, lambda r: r["condition"], level),
                    _grouped(rows, lambda r: r["layer"], level),
                    _grouped(rows, lambda r: r["participant"], level),
                    _grouped(rows, lambda r: f"{r['condition']} / {r['layer']}", level))
