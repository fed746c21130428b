r"""The class experiment: do explanations help people predict what a unit does?

Borowski et al. (ICLR 2021) measured it with people: shown references for a unit (its maximally
activating images, or feature visualizations), which of two query images activates the unit
more? Natural exemplars gave 92 ± 2 % correct, feature visualizations 82 ± 4 % (chance: 50 %);
Zimmermann et al. (NeurIPS 2021) found 68 ± 4 % with visualizations and 60 ± 3 % with no
references at all. This package lets a class run the same test on its own network, the
students being the participants:

- ``trials`` (``study.trials``): seeded, balanced two-alternative forced-choice trials for units
  of a model, one per (unit, condition); conditions are named in ``CONDITIONS`` and extensible;
- ``Answers``: the answers in one SQLite file, each committed as it is given (safe with a whole
  class answering at once, and across kernel restarts);
- ``analyze``: accuracy per condition, layer and participant with Wilson intervals, beside
  ``BASELINES`` (the published results); ``cnn_helper.plot.study_results`` draws it;
- ``simulate`` with responders (``oracle``, ``random_responder``, ``brightness``, ``knowing``):
  simulated participants, to see what the numbers mean before the class answers.

The widget that shows the trials is ``cnn_helper.widgets.StudyExplorer``
(``CNN_Helper.study_explorer``).

Example
-------
>>> from cnn_helper import study
>>> ts = study.trials(model, x_test, ["conv1", "conv3"], units_per_layer=4, seed=0)
>>> explorer = cnnh.study_explorer(ts, "class.sqlite")     # each student, in class
>>> result = study.analyze("class.sqlite")                   # afterwards: the table
>>> fig, ax = cnn_helper.plot.study_results(result)
"""
from .analysis import BASELINES, CHANCE, Accuracy, Analysis, Baseline, analyze, wilson
from .answers import Answers
from .conditions import CONDITIONS, References, Source
from .design import DEFAULT_CONDITIONS, Trial, TrialSet, TrialView, spread_problem, trials
from .simulation import brightness, knowing, oracle, random_responder, simulate

__all__ = ["trials", "Trial", "TrialView", "TrialSet", "References", "Source", "CONDITIONS",
           "DEFAULT_CONDITIONS", "spread_problem", "Answers", "analyze", "Analysis", "Accuracy",
           "wilson", "BASELINES", "Baseline", "CHANCE", "simulate", "oracle", "random_responder",
           "brightness", "knowing"]
