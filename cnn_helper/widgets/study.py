r"""The class experiment's explorer: one 2-AFC trial per screen, each answer saved as it is given.

A participant enters a name (or a code), then sees one trial per screen (``plot.study_trial``:
the references and the two queries) and answers which query activates the unit more, by a click
or a key. With ``confidence`` the answer carries it: six buttons (keys 1-6) from "left, sure" to
"right, sure", as Borowski et al. (ICLR 2021) asked it; without, two buttons (the arrow keys or
1 / 2). Each answer is committed to the SQLite file at once (``study.Answers``), with the
seconds it took; a progress bar counts the trials. Running the cell again (after a closed tab or
a kernel restart) goes on where the participant stopped: the trials already in the file are
skipped. The screens are drawn from the trials' views (``Trial.view``: no answer in them); the
answer is checked when it is saved (``Answers.record``).

The keyboard is a small anywidget (``StudyKeys``), whose JavaScript ships in the package: it works
in JupyterLab without internet.
"""
from __future__ import annotations

import hashlib
import html
import time
from pathlib import Path

import anywidget
import ipywidgets as widgets
import numpy as np
import traitlets

from .. import study
from ..plot import study as study_plot
from .base import Explorer, image_widget, tag

CONFIDENCE_ANSWERS = ((0, 3, "left, sure"), (0, 2, "left, probably"), (0, 1, "left, guess"),
                      (1, 1, "right, guess"), (1, 2, "right, probably"), (1, 3, "right, sure"))
"""(choice, confidence, label) of the six answers with confidence: 3 sure, 2 probably, 1 guess."""
PLAIN_ANSWERS = ((0, None, "◀ left"), (1, None, "right ▶"))


class StudyKeys(anywidget.AnyWidget):
    """Key presses inside the explorer, sent to Python: ``key`` (the last one of ``accepted``) and
    ``presses`` (how many); ``hint`` is the line it shows; counting ``focus_requests`` up
    focuses it."""

    _esm = Path(__file__).with_name("study_keys.js")
    _css = """.cnnh-study-keys { color: #555; font-size: 90%; padding: 2px 4px; outline: none; }
              .cnnh-study-keys:focus { background: #eef4ff; }"""
    accepted = traitlets.List(traitlets.Unicode()).tag(sync=True)
    hint = traitlets.Unicode("").tag(sync=True)
    key = traitlets.Unicode("").tag(sync=True)
    presses = traitlets.Int(0).tag(sync=True)
    focus_requests = traitlets.Int(0).tag(sync=True)


def participant_order(trial_ids, participant: str) -> list:
    """The order in which ``participant`` sees the trials: a permutation seeded by the name (the
    same name, the same order, on any machine)."""
    seed = int(hashlib.sha256(participant.encode()).hexdigest()[:8], 16)
    return [int(i) for i in np.random.default_rng(seed).permutation(len(trial_ids))]


class StudyExplorer(Explorer):
    """One trial per screen; each answer goes into the answers file at once (module docstring).

    trials      : a ``study.TrialSet`` (or a list of ``Trial``)
    path        : the SQLite file of the answers (``study.Answers``), shared by the class or one
                  per student
    participant : the participant's name or code; None: the explorer asks for it first
    confidence  : ask for the confidence with the answer (six buttons) or not (two)
    Controls: ``name`` and ``start_button``, ``buttons`` (one per answer), ``keys``; ``answer(
    choice, confidence)`` does what a click does. ``state``: participant, trial (the id shown),
    done, answered (this session), error.

    >>> ex = StudyExplorer(ts, "class.sqlite", participant="ada")
    >>> ex.answer(0, confidence=2)           # "left, probably" for the trial shown
    """

    css_class = "cnnh-study-explorer"
    MIN_SECONDS = 0.3      # an answer sooner than this after its screen is a double click: ignored

    def __init__(self, trials, path, participant=None, confidence: bool = True):
        super().__init__()
        self.trials = list(trials)
        if not self.trials or not all(hasattr(t, "view") for t in self.trials):
            raise ValueError("trials must be a non-empty TrialSet from study.trials (or a list of "
                             "its Trials)")
        self.answers = study.Answers(path)
        self.choices = CONFIDENCE_ANSWERS if confidence else PLAIN_ANSWERS
        self.queue, self.participant, self._shown_at = [], None, 0.0
        self.state.update(participant=None, trial=None, done=False, answered=0)
        self._make_controls()
        self.widget = widgets.VBox([self.message], layout=widgets.Layout(max_width="900px"))
        self.widget.add_class(self.css_class)
        self._screen(self.start_screen)
        if participant is not None:
            self.start(participant)

    def _make_controls(self):
        self.name = widgets.Text(placeholder="your name or a code", description="participant")
        self.start_button = widgets.Button(description="start", button_style="primary")
        self.start_button.on_click(lambda _: self._guard(lambda: self.start(self.name.value)))
        self.start_screen = widgets.VBox([widgets.HTML(
            "<b>Which image activates the unit more?</b> Each screen shows what a unit of the "
            "network responds to, and two images: choose the one you think activates it more."),
            widgets.HBox([self.name, self.start_button])])
        self.trial_image = image_widget("cnnh-trial")
        self.buttons = [widgets.Button(description=label, layout=widgets.Layout(width="auto"))
                        for _, _, label in self.choices]
        for button, (choice, confidence, _) in zip(self.buttons, self.choices):
            button.on_click(self._on_click(choice, confidence))
            button.add_class(f"cnnh-answer-{choice}-{confidence or 0}")
        plain = len(self.choices) == 2
        keys = [str(i + 1) for i in range(len(self.choices))]
        keys += ["ArrowLeft", "ArrowRight"] if plain else []
        hint = "← or 1, → or 2" if plain else "1-6, from left sure to right sure"
        self.keys = StudyKeys(accepted=keys, hint="keys: " + hint)
        self.keys.observe(lambda _: self._guard(self._on_key), names="presses")
        self.progress = widgets.IntProgress(min=0, max=len(self.trials))
        self.progress_text = widgets.HTML()
        self.trial_screen = widgets.VBox([
            widgets.HBox([self.progress, self.progress_text]), self.trial_image,
            widgets.HBox(self.buttons, layout=widgets.Layout(flex_flow="row wrap")), self.keys])
        self.done_screen = widgets.HTML()
        tag({"name": self.name, "start": self.start_button, "progress": self.progress_text,
             "done": self.done_screen, "keys": self.keys})

    def _screen(self, screen):
        self.widget.children = [screen, self.message]

    def __repr__(self) -> str:
        return f"StudyExplorer({len(self.trials)} trials, answers in {self.answers.path.name!r})"

    # -------------------------------------------------------------- the experiment

    def start(self, participant):
        """Start (or go on with) ``participant``'s trials: those not yet in the answers file, in
        the participant's own order."""
        if not isinstance(participant, str) or not participant.strip():
            raise ValueError("enter your name or a code to start")
        self.participant = self.state["participant"] = participant.strip()
        done = self.answers.answered(self.participant)
        order = participant_order([t.id for t in self.trials], self.participant)
        self.queue = [i for i in order if self.trials[i].id not in done]
        self._next()

    def _next(self):
        n, left = len(self.trials), len(self.queue)
        self.progress.value = n - left
        if not left:
            self.state.update(trial=None, done=True)
            self.done_screen.value = (
                f"<b>All {n} trials answered. Thank you, {html.escape(self.participant)}!</b> "
                f"Your answers are in {html.escape(str(self.answers.path))}.")
            self._screen(self.done_screen)
            return
        trial = self.trials[self.queue[0]]
        self.progress_text.value = f"trial {n - left + 1} of {n}"
        self._show(self.trial_image, "trial", trial.id,
                   lambda: study_plot.study_trial(trial.view()))
        self.state["trial"] = trial.id
        self._screen(self.trial_screen)
        self._shown_at = time.monotonic()
        self.keys.focus_requests += 1

    def answer(self, choice: int, confidence=None) -> None:
        """Answer the trial on screen: ``choice`` 0 (left) or 1 (right), with ``confidence``
        (3 sure, 2 probably, 1 guess, or None); saved at once, then the next trial."""
        if not self.queue:
            raise ValueError("there is no trial on screen to answer")
        seconds = time.monotonic() - self._shown_at
        trial = self.trials[self.queue[0]]
        self.answers.record(self.participant, trial, choice, seconds=seconds,
                            confidence=confidence)
        self.queue.pop(0)
        self.state["answered"] += 1
        self._next()

    def _on_click(self, choice, confidence):
        def on_click(_):
            if time.monotonic() - self._shown_at >= self.MIN_SECONDS:
                self._guard(lambda: self.answer(choice, confidence))
        return on_click

    def _on_key(self):
        keys = self.keys.accepted
        if not self.queue or self.keys.key not in keys:
            return
        index = keys.index(self.keys.key) % len(self.choices)    # an arrow: as 1 or 2
        choice, confidence, _ = self.choices[index]
        if time.monotonic() - self._shown_at >= self.MIN_SECONDS:
            self.answer(choice, confidence)
