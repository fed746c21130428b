"""The class experiment's explorer in the kernel: clicks and keys answer, the file holds each
answer at once, a restart goes on where the participant stopped (the browser test is in
tests/test_study_browser.py)."""
from __future__ import annotations

import pytest

from cnn_helper import CNN_Helper, study
from cnn_helper.widgets.study import StudyExplorer, participant_order


@pytest.fixture(scope="module")
def made(shipped_cnn, bundled):
    return study.trials(shipped_cnn, bundled[1][0], ["conv1", "conv3"],
                        conditions=("exemplars", "none"), units_per_layer=2, seed=0)


def _answer_now(explorer):
    explorer._shown_at -= 10          # internal contract: skip the double-click guard


def test_clicks_and_keys_answer_and_each_answer_is_saved_at_once(made, tmp_path):
    path = tmp_path / "class.sqlite"
    ex = CNN_Helper(verbose=False).study_explorer(made, path, participant="ada")
    first = ex.state["trial"]
    assert ex.progress_text.value == "trial 1 of 8"
    _answer_now(ex)
    ex.buttons[0].click()                             # "left, sure"
    rows = study.Answers(path).rows()
    assert [(r["trial"], r["choice"], r["confidence"]) for r in rows] == [(first, 0, 3)]
    assert rows[0]["seconds"] >= 10
    second = ex.state["trial"]
    _answer_now(ex)
    ex.keys.key, ex.keys.presses = "5", ex.keys.presses + 1     # "right, probably"
    assert study.Answers(path).rows()[-1]["trial"] == second
    assert study.Answers(path).rows()[-1]["choice"] == 1
    assert ex.progress.value == 2 and ex.progress_text.value == "trial 3 of 8"


def test_a_double_click_answers_once(made, tmp_path):
    ex = StudyExplorer(made, tmp_path / "a.sqlite", participant="bob", confidence=False)
    _answer_now(ex)
    ex.buttons[1].click()
    ex.buttons[1].click()                             # at once: the next screen is unseen
    assert len(study.Answers(tmp_path / "a.sqlite")) == 1


def test_a_restart_goes_on_where_the_participant_stopped(made, tmp_path):
    path = tmp_path / "class.sqlite"
    ex = StudyExplorer(made, path, participant="cy", confidence=False)
    for _ in range(3):
        _answer_now(ex)
        ex.answer(0)
    again = StudyExplorer(made, path, participant="cy", confidence=False)  # the cell run again
    assert again.progress.value == 3 and again.progress_text.value == "trial 4 of 8"
    while not again.state["done"]:
        _answer_now(again)
        again.answer(1)
    rows = study.Answers(path).rows()
    assert sorted(r["trial"] for r in rows) == sorted(t.id for t in made)
    assert "All 8 trials answered" in again.done_screen.value
    with pytest.raises(ValueError, match="no trial on screen"):
        again.answer(0)


def test_the_start_screen_asks_for_a_name(made, tmp_path):
    ex = StudyExplorer(made, tmp_path / "a.sqlite")
    assert ex.widget.children[0] is ex.start_screen
    ex.start_button.click()
    assert "enter your name" in ex.message.value
    ex.name.value = "dee"
    ex.start_button.click()
    assert ex.widget.children[0] is ex.trial_screen and ex.state["participant"] == "dee"


def test_each_participant_has_an_own_seeded_order(made):
    ids = [t.id for t in made]
    assert participant_order(ids, "ada") == participant_order(ids, "ada")
    assert participant_order(ids, "ada") != participant_order(ids, "bob")
    assert sorted(participant_order(ids, "ada")) == list(range(len(ids)))


def test_the_screen_shows_no_answer(made, tmp_path):
    ex = StudyExplorer(made, tmp_path / "a.sqlite", participant="eve")
    assert ex.trial_image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "correct" not in repr(ex) and not hasattr(made[0].view(), "correct")
