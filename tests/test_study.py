"""The class experiment (cnn_helper.study): trials, answers in SQLite, analysis, simulation."""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sqlite3
import statistics
import threading

import keras
import numpy as np
import pytest

from cnn_helper import Feature, features, study
from cnn_helper.plot.study import study_results, study_trial

LAYERS = ["conv1", "conv3"]


@pytest.fixture(scope="module")
def model(shipped_cnn):
    return shipped_cnn


@pytest.fixture(scope="module")
def x_test(bundled):
    return bundled[1][0]


@pytest.fixture(scope="module")
def made(model, x_test):
    return study.trials(model, x_test, LAYERS, conditions=("exemplars", "none",
                                                           "exemplars+saliency"),
                        units_per_layer=2, n_per_unit=2, tail=12, seed=3)


# --------------------------------------------------------------------------- trials


def test_trials_are_balanced_over_positions_conditions_and_layers(made):
    assert len(made) == 2 * 2 * 3 * 2          # layers x units x conditions x per unit
    strata = {}
    for t in made:
        strata.setdefault((t.layer, t.condition), []).append(t.correct)
    assert len(strata) == 6 and {len(v) for v in strata.values()} == {4}
    assert all(sum(v) == 2 for v in strata.values())          # left as often as right
    assert {t.unit for t in made if t.condition == "none"} == \
        {t.unit for t in made if t.condition == "exemplars"}


def test_queries_come_from_the_tails_and_never_from_the_references(made, model, x_test):
    """Brute force: rank every image by the unit's value and check where each query sits."""
    for unit in {t.unit for t in made}:
        values = features.feature_values(model, x_test, unit).values
        rank = np.empty(len(values), int)
        rank[np.argsort(-values, kind="stable")] = np.arange(len(values))
        used = []
        for t in (t for t in made if t.unit == unit):
            strong, weak = t.query_indices[t.correct], t.query_indices[1 - t.correct]
            assert 9 <= rank[strong] < 9 + 12 and rank[weak] >= len(values) - 12
            assert values[strong] > values[weak]
            assert not set(t.query_indices) & set(t.references.indices)
            if t.condition != "none":
                assert sorted(rank[t.references.indices]) == list(range(9))
            np.testing.assert_array_equal(t.queries, x_test[t.query_indices])
            used += list(t.query_indices)
        assert len(used) == len(set(used)), "a unit's trials share no query"


def test_the_same_seed_gives_the_same_trials(made, model, x_test):
    again = study.trials(model, x_test, LAYERS, conditions=("exemplars", "none",
                                                            "exemplars+saliency"),
                         units_per_layer=2, n_per_unit=2, tail=12, seed=3)
    assert [t.id for t in again] == [t.id for t in made]
    for a, b in zip(again, made):
        np.testing.assert_array_equal(a.queries, b.queries)
        np.testing.assert_allclose(a.references.images, b.references.images)
        assert a.correct == b.correct
    other = study.trials(model, x_test, LAYERS, conditions=("exemplars",), seed=4)
    assert {t.id for t in other}.isdisjoint({t.id for t in made})
    shared = pickle.loads(pickle.dumps(made))           # the instructor hands the trials out
    assert [(t.id, t.correct) for t in shared] == [(t.id, t.correct) for t in made]


def test_the_view_hides_the_answer_and_trials_are_frozen(made):
    view = made[0].view()
    assert not hasattr(view, "correct") and not hasattr(view, "query_values")
    assert view.id == made[0].id and view.queries is made[0].queries
    with pytest.raises(ValueError):
        made[0].queries[0, 0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        made[0].references.images[0, 0, 0, 0] = 1.0


def test_saliency_overlays_and_visualizations(made, model, x_test):
    overlays = [t.references.overlays for t in made if t.condition == "exemplars+saliency"]
    assert all(o.shape == (9, 28, 28) and 0 <= o.min() and o.max() == 1 for o in overlays)
    vis = study.trials(model, x_test, "conv3", conditions=("visualizations",),
                       units_per_layer=2, visualization_steps=4, n_references=3, seed=0)
    refs = vis[0].references
    assert refs.images.shape == (3, 28, 28, 1) and (refs.indices == -1).all()
    assert len({img.tobytes() for img in refs.images}) == 3, "3 seeds, 3 different images"


def _dead_unit_model():
    """Conv channel 0 is dead (zero kernel and bias, then ReLU); channels 1, 2 respond."""
    inputs = keras.Input((8, 8, 1))
    m = keras.Model(inputs, keras.layers.Conv2D(3, 3, activation="relu", name="c")(inputs))
    kernel = np.random.default_rng(0).normal(size=(3, 3, 1, 3)).astype(np.float32)
    kernel[..., 0] = 0
    m.get_layer("c").set_weights([kernel, np.zeros(3, np.float32)])
    return m


def test_units_without_spread_are_skipped_with_a_reason():
    x = np.random.default_rng(1).random((40, 8, 8, 1)).astype(np.float32)
    made = study.trials(_dead_unit_model(), x, "c", conditions=("exemplars", "none"), tail=5)
    assert made.skipped[0][0] == Feature("c", 0) and "dead" in made.skipped[0][1]
    assert {t.unit.channel for t in made} == {1, 2}


@pytest.mark.filterwarnings("ignore:targets .* never rose")   # a random net's visualizations
def test_the_model_is_untouched_and_batch_size_changes_nothing():
    m = _dead_unit_model()
    x = np.random.default_rng(2).random((40, 8, 8, 1)).astype(np.float32)
    weights, outputs = [w.copy() for w in m.get_weights()], m.predict(x, verbose=0)
    settings = dict(conditions=tuple(study.CONDITIONS), n_references=3, tail=5,
                    visualization_steps=2)
    big, small = (study.trials(m, x, "c", batch_size=b, **settings) for b in (64, 7))
    assert [t.id for t in big] == [t.id for t in small] and len(big) == 2 * 4
    for w, before in zip(m.get_weights(), weights):
        np.testing.assert_array_equal(w, before)
    np.testing.assert_array_equal(m.predict(x, verbose=0), outputs)


def test_a_new_condition_is_one_entry_in_the_registry(monkeypatch, model, x_test):
    def inverted(source, units):
        return [study.References(1 - r.images, "inverted", r.indices)
                for r in study.CONDITIONS["exemplars"](source, units)]

    monkeypatch.setitem(study.CONDITIONS, "inverted", inverted)
    made = study.trials(model, x_test, "conv1", conditions=("inverted",), units_per_layer=1)
    assert made[0].references.caption == "inverted"


@pytest.mark.parametrize("kwargs, message", [
    (dict(conditions=("exemplar",)), "is not one of"),
    (dict(n_per_unit=5, tail=8), "raise tail"),
    (dict(min_spread=1.5), "min_spread"),
    (dict(channels=[99]), "out of range"),
])
def test_bad_settings_say_what_is_allowed(model, x_test, kwargs, message):
    with pytest.raises(ValueError, match=message):
        study.trials(model, x_test, "conv1", **kwargs)


def test_too_few_images_is_an_error(model, x_test):
    with pytest.raises(ValueError, match="at least n_references"):
        study.trials(model, x_test[:20], "conv1")


# --------------------------------------------------------------------------- answers


def test_an_answer_is_written_with_everything_the_analysis_needs(made, tmp_path):
    answers = study.Answers(tmp_path / "a.sqlite")
    t = made[0]
    assert answers.record("ada", t, t.correct, seconds=2.5, confidence=3) is True
    assert answers.record("ada", t, 1 - t.correct) is False
    first, second = answers.rows()
    assert first["participant"] == "ada" and first["trial"] == t.id
    assert (first["condition"], first["layer"], first["unit"]) == (t.condition, t.layer,
                                                                  t.unit.channel)
    assert (first["correct"], first["seconds"], first["confidence"]) == (1, 2.5, 3)
    assert second["correct"] == 0 and second["seconds"] is None
    assert answers.answered("ada") == {t.id} and len(study.Answers(answers.path)) == 2
    with pytest.raises(ValueError, match="choice must be 0"):
        answers.record("ada", t, 2)
    with pytest.raises(ValueError, match="participant"):
        answers.record("", t, 0)


def test_answers_can_be_recorded_from_another_thread(made, tmp_path):
    """A widget's callbacks may run in another thread than the one that made the Answers
    (regression: an sqlite3 connection kept from the first thread refused them)."""
    answers = study.Answers(tmp_path / "a.sqlite")
    worker = threading.Thread(target=answers.record, args=("ada", made[0], 0))
    worker.start()
    worker.join()
    assert len(answers) == 1


def _writer(path, trials, participant, n):
    answers = study.Answers(path)
    for i in range(n):
        answers.record(participant, trials[i % len(trials)], i % 2, seconds=float(i))


def test_four_processes_answering_at_once_lose_nothing(made, tmp_path):
    path = tmp_path / "class.sqlite"
    study.Answers(path)
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_writer, args=(path, list(made), f"p{w}", 50))
               for w in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    assert [w.exitcode for w in writers] == [0] * 4
    rows = study.Answers(path).rows()
    assert len(rows) == 200
    for w in range(4):
        assert sorted(r["seconds"] for r in rows if r["participant"] == f"p{w}") == \
            [float(i) for i in range(50)]


def _endless_writer(path, trials, pipe):
    answers = study.Answers(path)
    i = 0
    while True:
        answers.record("killed", trials[i % len(trials)], i % 2, seconds=float(i))
        pipe.send(i)                       # i is committed
        i += 1


def test_a_writer_killed_mid_experiment_keeps_every_committed_answer(made, tmp_path):
    """The forced kernel restart: SIGKILL while answering; what was committed stays."""
    path = tmp_path / "class.sqlite"
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    writer = ctx.Process(target=_endless_writer, args=(path, list(made), send))
    writer.start()
    committed = [receive.recv() for _ in range(30)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(30)
    while receive.poll():
        committed.append(receive.recv())
    assert writer.exitcode == -signal.SIGKILL
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    seconds = [r["seconds"] for r in study.Answers(path).rows()]
    assert seconds[:len(committed)] == [float(i) for i in committed]
    assert len(seconds) in (len(committed), len(committed) + 1)   # + one not yet reported


# --------------------------------------------------------------------------- analysis


def test_wilson_is_the_set_of_accuracies_the_score_test_accepts():
    """Brute force: p is inside the interval iff |p_hat - p| <= z sqrt(p (1 - p) / n)."""
    z = statistics.NormalDist().inv_cdf(0.975)
    grid = np.linspace(0, 1, 200_001)
    for c, n in [(0, 10), (9, 10), (10, 10), (37, 50), (1, 3)]:
        accepted = grid[np.abs(c / n - grid) <= z * np.sqrt(grid * (1 - grid) / n)]
        low, high = study.wilson(c, n)
        assert abs(low - accepted.min()) < 1e-4 and abs(high - accepted.max()) < 1e-4
    assert study.wilson(0, 0) == (0.0, 1.0)
    # regression: rounding left 0 + 1e-17 and 1 - 1e-16 at the ends (100 % outside its interval)
    assert all(study.wilson(n, n)[1] == 1.0 and study.wilson(0, n)[0] == 0.0
               for n in range(1, 100))


def test_analysis_counts_by_condition_layer_and_participant(made, tmp_path):
    answers = study.Answers(tmp_path / "a.sqlite")
    for t in made:
        answers.record("ada", t, t.correct)
        answers.record("bob", t, 1 - t.correct if t.condition == "none" else t.correct)
    result = study.analyze(tmp_path / "a.sqlite")
    by = {row.group: row for row in result.by_condition}
    assert by["none"].n == 16 and by["none"].n_correct == 8 and by["exemplars"].accuracy == 1
    assert [row.group for row in result.by_participant] == ["ada", "bob"]
    assert result.by_participant[1].n_correct == 16
    assert {row.group for row in result.by_layer} == set(LAYERS)
    assert result.overall.n == 48 and "exemplars" in repr(result)
    assert result.to_rows()[0] == dict(table="overall", **vars(result.overall))
    assert study.analyze([answers, answers]).overall.n == 96


def test_analyze_without_answers_says_so(tmp_path):
    with pytest.raises(ValueError, match="no answers"):
        study.analyze(study.Answers(tmp_path / "empty.sqlite"))
    with pytest.raises(FileNotFoundError):
        study.analyze(tmp_path / "missing.sqlite")


# --------------------------------------------------------------------------- simulation


def test_the_oracle_scores_100_and_the_coin_50_percent(made, model, tmp_path):
    oracle = study.analyze(study.simulate(made, study.oracle(model), 3, tmp_path / "o.sqlite"))
    assert oracle.overall.accuracy == 1.0
    fig, ax = study_results(oracle)
    assert len(ax.get_xticklabels()) == 3 and study_trial(made[0].view())[1][0].get_title()
    coin = study.analyze(study.simulate(made, study.random_responder, 100, tmp_path / "r.sqlite",
                                        seed=0))
    assert coin.overall.n == 2400 and coin.overall.low < 0.5 < coin.overall.high
    same = study.analyze(study.simulate(made, study.random_responder, 100,
                                        tmp_path / "r2.sqlite", seed=0))
    assert same.overall == coin.overall
    bright = study.analyze(study.simulate(made, study.brightness, 1, tmp_path / "b.sqlite"))
    assert bright.by_participant[0].group == "brightness-1"


def test_wilson_intervals_cover_the_truth_at_their_nominal_rate(made, model, tmp_path):
    """400 simulated participants who know the answer half the time (true accuracy 0.75), 24
    answers each: each participant's 95 % interval should hold 0.75 about 95 % of the time."""
    responder = study.knowing(study.oracle(model), 0.5)
    result = study.analyze(study.simulate(made, responder, 400, tmp_path / "k.sqlite", seed=0))
    covered = np.mean([row.low <= 0.75 <= row.high for row in result.by_participant])
    assert 0.92 <= covered <= 0.98, covered
    assert abs(result.overall.accuracy - 0.75) < 0.02
