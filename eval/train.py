"""`python -m eval train`: fit the ranker and the answer-or-abstain model, and choose their settings.

Data (eval/train_examples.py), and what each part is used for:

- STARD train (law index): ranker training; out-of-fold ranker scores give the answerability
  model its positives and negatives (is the first clause a gold article?), and the same
  questions with their gold laws left out of the index give negatives with the same wording.
  The learned expansion is fitted on these same questions and is not held out of their
  candidates as the question memory is. Holding it out (each fold's candidates meeting a table
  learned from the other folds) was tried and not kept: STARD validation (law index) R@10
  0.664 -> 0.682, MRR@10 0.573 -> 0.592, R@100 0.874 -> 0.866, but the answerability model's
  thresholds rose (caution 0.105 -> 0.136, answer 0.525 -> 0.689): gold cited over all 0.550 ->
  0.534, region calibration right place 0.822 -> 0.778, citation precision on the dev set
  0.871 -> 0.753, and a question an uploaded notice answers abstained (tests/test_app.py).
- STARD train questions asked of the bundled corpus, which holds none of their laws:
  answerability negatives of another kind, questions whose words the index barely knows (a
  deployment over five policy documents asked about tenancy or traffic law).
- dev calibration part and near-miss calibration part (bundled corpus): ranker training
  (answerable items) and answerability training (all; the near misses and out-of-corpus
  questions are negatives).
- region calibration part (the local regulations of seven provinces, eval/region.py):
  answerability training only. A question about a place whose rules on the topic are not
  indexed is a negative (the best clause is another place's or another topic's rule), so the
  model learns what place_unmatched and top_topic_other are worth from questions that have them,
  which STARD and the bundled corpus barely hold. The ranker never sees these questions.
- STARD validation (law index, and asked of the bundled corpus): the number of boosting rounds;
  with --second-pass, whether the ranker has a second pass and its rounds (eval/train_stack.py);
  and, with the dev, near-miss and region calibration parts, the two thresholds. The region
  part's uncovered questions join the questions to abstain on; the share of its covered ones
  answered with their place's article is an aim of its own beside STARD's gold-cited share (not
  the dev set's false-abstention limit). The calibration questions' probabilities for that
  choice come from answerability models fitted without them (cross-fitting). Test splits are
  never read here.

Outputs assistant/models/ranker.json and assistant/models/answerability.json (readable JSON,
feature names recorded).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from assistant.decide import ANSWER_FORMAT, ANSWER_VERSION, MONOTONE, QUESTION_FEATURES
from assistant.decide import probabilities as decider_probabilities
from assistant.features import FEATURE_NAMES
from assistant.rank import MODELS_DIR, RANKER_FORMAT, RANKER_VERSION, SECOND_FEATURES
from eval.train_examples import (Example, cites_gold, dev_examples, offcorpus_examples, region_examples,
                                 source_weights, stard_examples)
from eval.train_memory import without_own_answers
from eval.train_stack import Ranking, choose_second, fit_booster, fit_ranking

# LightGBM's settings for the ranker, checked on STARD validation: article R@10 / R@100 / MRR@10 of
# the ranked pool at 100, 200, 400, 600 and 800 rounds (these settings at 200 rounds, as shipped:
# 0.663 / 0.867 / 0.569), for num_leaves 7, 31, 63; min_child_samples 30, 100;
# lambdarank_truncation_level 50, 100, 300; num_leaves 7 or 31 with truncation 50; colsample_bytree
# 0.5; no subsampling; learning_rate 0.02; reg_lambda 1; min_child_samples 30 with reg_lambda 1 and
# 31 leaves; rank_xendcg. No setting and round count reached all three at once. The best R@10,
# 0.678 (7 leaves, 400 rounds), came with R@100 0.858 and MRR@10 0.551; the best R@100, 0.869
# (no subsampling, 800 rounds), with R@10 0.639; the best MRR@10, 0.570 (min_child_samples 100,
# 200 rounds), with R@100 0.864. rank_xendcg reached at most 0.645 / 0.840 / 0.543. The shipped
# settings over eight seeds at 200 rounds: R@10 0.661-0.674, R@100 0.861-0.867; the mean of the
# eight seeds' scores: 0.663 / 0.865 / 0.555.
# Finer vectors, probed on validation's 309 questions by re-ranking the shipped ranker's top 30
# (its score plus w times a standardised cosine; w chosen on one half of the questions and read
# on the other, R@10 of halves A / B 0.670 / 0.648 without): the best sentence of each clause
# (its text split at 。；：, 4,404 sentences) 0.683 / 0.664; the clause text alone, without title
# and headings, 0.683 / 0.665; both 0.683 / 0.665; the question's vector before the query adapter
# against the indexed chunk 0.683 / 0.660. So sentence vectors add about what the unadapted
# cosine adds, and that needs no re-embedding. As two ranker features (that cosine and its gap
# to the best), retrained as shipped: 0.670 / 0.860 / 0.564, within the seed spread, and the
# answerability model's thresholds then cited gold for 0.495 of validation (shipped 0.544). Not
# kept. The unadapted dense search's top 200 raise the pool's gold-article coverage only from
# 0.893 to 0.896.
RANKER_PARAMS = {"objective": "lambdarank", "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 10,
                 "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "lambdarank_truncation_level": 20,
                 "verbose": -1, "seed": 7, "deterministic": True, "force_row_wise": True, "num_threads": 2}
RANKER_SOURCES = ("stard", "dev")  # the examples the ranker learns from (the others have no right candidate, or are the decider's)
ROUND_GRID = (100, 200, 400, 600, 800)  # boosting rounds tried; the best on validation MRR@10 is kept
ROUND_TOLERANCE = 0.001  # ... or the fewest rounds within this of the best (1/309 of a question is 0.003)
# The answerability model stays a logistic regression. Tried against it, on the rows of the shipped
# setting (focus share 0.5, off-corpus share 1, C 0.1: held-out log-loss 0.308, STARD validation
# rows and cross-fitted calibration parts; near-miss calibration abstained 0.80 cross-fitted, STARD
# validation gold cited 0.544 at its thresholds):
# - LightGBM binary trees with the same monotone signs, 3 or 7 leaves, 100 or 300 rounds: log-loss
#   0.326-0.341, near-miss abstained 0.78-0.86, STARD gold cited 0.46-0.51, region uncovered
#   abstained 0.60-0.84 (0.96 shipped);
# - an indicator of the bundled policy corpus and its products with coverage, answer kinds, gaps
#   and question length (the fit may weigh them differently for notices and for statutes):
#   log-loss 0.294-0.303, but near-miss abstained 0.84-0.86 and STARD gold cited 0.48-0.53;
# - the question's own words giving no answer kind ('哪家银行?' against '委托银行发放', the digits of
#   '4050人员' against '能补多少?'), retrained with `python -m eval train`: lowest held-out log-loss
#   0.322 (0.308 shipped); its log-loss on the near-miss part 0.292 (0.290), on the region part 0.316 (0.236).
#   Tried again with the question's words blanked only for the kinds that are values (number, money,
#   percent, year, day, date, duration, frequency, place, contact; a clause's '条件' still answers
#   '什么条件?'): lowest held-out log-loss 0.316, near-miss part 0.296, region part 0.265; its
#   thresholds abstained on 0.880 of the calibration questions to abstain on (shipped 0.868) and cited
#   gold for 0.537 of STARD validation (0.544). Not kept either.
DECIDER_C = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # the answerability model's regularisations tried on validation
# the off-corpus negatives' weight in the answerability fit, as a share of STARD's answerable
# questions, tried with each C; the pair with the lowest held-out log-loss is kept (the held-out
# rows weigh the same whatever the share)
OFFCORPUS_SHARES = (1.0, 0.5, 0.25)
# the sentences of the best clauses in which the kinds of answer asked for are looked for: those
# holding at least this share of the best sentence's evidence weight (evidence.focus_sentence);
# tried with every off-corpus share and C, kept by the same held-out log-loss
FOCUS_SHARES = (1.0, 0.75, 0.5, 0.25)


def ranking(model: Ranking | None, e: Example) -> tuple[list[int], np.ndarray]:
    if not len(e.labels):
        return [], np.zeros(0)
    s = model.scores(e) if model is not None else np.array([c.rrf for c in e.prep.candidates])
    idx = sorted(range(len(s)), key=lambda i: (-s[i], i))
    return idx, np.asarray(s)[idx]


def top1_right(e: Example, idx: list[int]) -> bool:
    return bool(idx) and bool(e.labels[idx[0]])


def choose_rounds(train: list[Example], valid: list[Example], grid=ROUND_GRID) -> tuple[int, dict]:
    """The fewest boosting rounds whose validation MRR@10 of the first right candidate is within
    ROUND_TOLERANCE of the best: each round costs every question time, and a difference smaller
    than a third of one question's reciprocal rank is noise."""
    booster = fit_booster(train, max(grid), RANKER_PARAMS)
    scores = {}
    for n in grid:
        rr = []
        for e in valid:
            if not len(e.labels):
                rr.append(0.0)
                continue
            s = booster.predict(e.prep.x, num_iteration=n, num_threads=1)
            idx = sorted(range(len(s)), key=lambda i: (-s[i], i))
            rr.append(next((1.0 / (r + 1) for r, i in enumerate(idx[:10]) if e.labels[i]), 0.0))
        scores[n] = float(np.mean(rr))
    top = max(scores.values())
    return min(n for n in grid if scores[n] >= top - ROUND_TOLERANCE), scores


def out_of_fold(examples: list[Example], rounds: int, second_rounds: int = 0, folds: int = 2,
                seed: int = 7) -> dict[int, tuple]:
    """{example index: (order, scores)} from rankers (both passes) that never saw that example."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, size=len(examples))
    out = {}
    for f in range(folds):
        train = [e for e, g in zip(examples, fold) if g != f and e.source in RANKER_SOURCES]
        model = fit_ranking(train, rounds, second_rounds, RANKER_PARAMS)
        for i, (e, g) in enumerate(zip(examples, fold)):
            if g == f:
                out[i] = ranking(model, e)
    return out


def decider_rows(assistant_by_source, examples: list[Example], orders: dict[int, tuple],
                 focus_share: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(question features, labels): label 1 when the first candidate is right."""
    xs, ys = [], []
    for i, e in enumerate(examples):
        idx, scores = orders[i]
        searcher = assistant_by_source[e.source].searcher
        qx, _ = searcher.question_vector(e.prep, idx, scores, focus_share)
        xs.append(qx)
        ys.append(float(e.answerable and top1_right(e, idx)))
    return np.array(xs), np.array(ys)


def fit_decider(x: np.ndarray, y: np.ndarray, weights: np.ndarray, c: float = 1.0,
                signs: tuple[int, ...] | None = None) -> dict:
    """Logistic regression over standardised features, as plain numbers: minimises
    ||coef||^2 / 2 + c * sum(weight * log-loss) (scikit-learn's objective), with each coefficient
    kept on the side `signs` gives it (+1: never lowers P, -1: never raises it, 0: free; by
    default decide.MONOTONE). A direction the data of one corpus reverses by accident (naming the
    document lowering P on the law questions) then cannot carry over to another corpus."""
    from scipy.optimize import minimize

    signs = tuple(MONOTONE.get(f, 0) for f in QUESTION_FEATURES) if signs is None else signs
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    xs = (x - mean) / scale
    sw = np.asarray(weights, dtype=np.float64)

    def objective(theta):
        w, b = theta[:-1], theta[-1]
        z = xs @ w + b
        loss = np.logaddexp(0.0, z) - y * z  # -log P(y | z)
        r = sw * (1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))) - y)
        return 0.5 * w @ w + c * float(sw @ loss), np.concatenate([w + c * (xs.T @ r), [c * r.sum()]])

    bounds = [(0.0, None) if d > 0 else (None, 0.0) if d < 0 else (None, None) for d in signs] + [(None, None)]
    fit = minimize(objective, np.zeros(xs.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 5000, "ftol": 1e-12, "gtol": 1e-8})
    return {"mean": mean.tolist(), "scale": scale.tolist(), "coef": fit.x[:-1].tolist(), "intercept": float(fit.x[-1])}


def probabilities(params: dict, x: np.ndarray) -> np.ndarray:
    """P of each row of x under fitted parameters, by the formula the shipped Decider uses."""
    return decider_probabilities(x, params["mean"], params["scale"], params["coef"], params["intercept"])


def cross_fitted(x: np.ndarray, y: np.ndarray, w: np.ndarray, held_rows: list[int], hx: np.ndarray,
                 folds: int = 4, seed: int = 7, c: float = 1.0) -> np.ndarray:
    """P of the held rows (features `hx`; their training rows are x[held_rows]) from deciders that
    were fitted without them: the calibration questions' thresholds are chosen on probabilities
    the model did not learn from."""
    order = np.random.default_rng(seed).permutation(len(held_rows))
    fold = np.empty(len(held_rows), dtype=np.int64)
    fold[order] = np.arange(len(held_rows)) % folds
    p = np.zeros(len(held_rows))
    for f in range(folds):
        out = fold == f
        if not out.any():
            continue
        keep = np.ones(len(x), dtype=bool)
        keep[np.asarray(held_rows)[out]] = False
        p[out] = probabilities(fit_decider(x[keep], y[keep], w[keep], c), hx[out])
    return p


def log_loss(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean log-loss: p [0.9, 0.2], y [1, 0], w [1, 1] -> (-ln 0.9 - ln 0.8) / 2 = 0.164."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.sum(w * (y * np.log(p) + (1 - y) * np.log(1 - p))) / np.sum(w))


def choose_decider(x, y, w, vx, vy, vw, answerable_v, cited_v, cal_rows, cx, cy, cw, role_c, cited_c=None,
                   grid=DECIDER_C) -> tuple[float, dict, dict, dict]:
    """(C, its fitted model, thresholds, {C: what it reached}): the regularisation C with the lowest log-loss on
    held-out rows (STARD validation, and the calibration questions' cross-fitted probabilities),
    a proper score over every held-out question, where what the thresholds reach turns on a
    question or two of the calibration parts; then its thresholds, chosen as `choose_thresholds`
    chooses them on the same held-out rows. What each C's thresholds would reach is reported.
    role_c: each calibration question's part in the thresholds, +1 answerable (held to the
    false-abstention limit), -1 to abstain on, 0 a covered region question, whose share answered
    with its place's article is the third aim (cited_c: whether its reply cites that article)."""
    best, summary = None, {}
    joins = role_c == 0
    cited_c = np.zeros((len(role_c), 2), dtype=bool) if cited_c is None else np.asarray(cited_c, dtype=bool)
    for c in grid:
        params = fit_decider(x, y, w, c)
        pv = probabilities(params, vx)
        pc = cross_fitted(x, y, w, cal_rows, cx, c=c)
        th = choose_thresholds(pv[answerable_v], vy[answerable_v].astype(bool), cited_v[answerable_v],
                               pc[role_c > 0], pc[role_c < 0], pc[joins], cited_c[joins])
        loss = log_loss(np.concatenate([pv, pc]), np.concatenate([vy, cy]), np.concatenate([vw, cw]))
        on = th["chosen_on"]
        summary[c] = {**on, "heldout_logloss": round(loss, 4)}
        if best is None or (loss, c) < best[0]:
            best = ((loss, c), c, params, th)
    return best[1], best[2], best[3], summary


def choose_thresholds(p_stard: np.ndarray, right_stard: np.ndarray, cited_stard: np.ndarray,
                      p_dev_ans: np.ndarray, p_neg: np.ndarray, p_region=None, cited_region=None,
                      max_false_abstain: float = 0.05, min_abstain: float = 0.90, min_gold_share: float = 0.45,
                      min_region_share: float = 0.80, answer_precision: float = 0.75) -> dict:
    """Thresholds from validation data.

    caution (abstain below): among thresholds that abstain on at most `max_false_abstain` of the
    answerable dev questions (refusing a question the documents answer is the worse error), the
    one that goes furthest towards the aims, the share of near misses and out-of-corpus
    questions abstained on (aim `min_abstain`), the share of STARD validation questions with
    a gold article among the citations (aim `min_gold_share`) and, when given, the share of the
    covered region questions answered with their place's article (aim `min_region_share`): the sum
    of each share over its aim, each capped at 1. No aim outranks another, so one calibration
    question (a 0.03 step of the near-miss share) cannot cost a sixth of the STARD answers, nor
    the answers to the places the documents cover (the aims are the issue's targets).
    answer: the lowest threshold at which the first citation is right for `answer_precision`
    of the STARD questions above it.
    cited_stard and cited_region: whether each reply cites a gold article, one column (either
    outcome) or two (answered, answered with caution: the two quote differently); a question
    counts as its outcome at each threshold pair quotes it.
    """
    has_region = p_region is not None and len(p_region) > 0
    grid = np.unique(np.concatenate([p_stard, p_dev_ans, p_neg, p_region if has_region else [], [0.0]]))
    precise = 1.0  # the answer threshold
    for t in sorted(grid, reverse=True):
        above = p_stard >= t
        if above.sum() >= 10 and right_stard[above].mean() >= answer_precision:
            precise = float(t)
    best, best_key = 0.0, None
    for t in grid:
        false_abst = float(np.mean(p_dev_ans < t)) if len(p_dev_ans) else 0.0
        abst = float(np.mean(p_neg < t)) if len(p_neg) else 1.0
        gold_share = float(np.mean(_cited_at(p_stard, cited_stard, t, precise))) if len(p_stard) else 0.0
        region = float(np.mean(_cited_at(p_region, cited_region, t, precise))) if has_region else 0.0
        key = (false_abst <= max_false_abstain, min(abst / min_abstain, 1.0) + min(gold_share / min_gold_share, 1.0)
               + min(region / min_region_share, 1.0), abst, -false_abst)
        if best_key is None or key > best_key:
            best, best_key, best_on = float(t), key, (abst, gold_share, region)
    return {"caution": best, "answer": max(precise, best),
            "chosen_on": {"false_abstention_within_limit": bool(best_key[0]),
                          "unanswerable_abstained": round(best_on[0], 4),
                          "stard_gold_cited_share": round(best_on[1], 4),
                          **({"region_right_place_share": round(best_on[2], 4)} if has_region else {})}}


def _cited_at(p: np.ndarray, cited: np.ndarray, caution: float, answer: float) -> np.ndarray:
    """Whether each reply cites gold at thresholds (caution, answer): nothing when it abstains,
    else its answered or its uncertain reply's citing (columns 0 and 1 of a two-column `cited`)."""
    cited = np.asarray(cited, dtype=bool)
    if cited.ndim == 1:
        return (p >= caution) & cited
    return np.where(p >= max(answer, caution), cited[:, 0], (p >= caution) & cited[:, 1])


def heldout_loss_by_source(rows: tuple, sources: list[str], weights: np.ndarray, params: dict, c: float,
                           cal_rows: list[int]) -> dict:
    """The chosen model's log-loss on each held-out source: STARD validation answerable, left-out
    and off-corpus rows (the model never saw them) and each calibration part (cross-fitted), given
    the decider rows (x, y, validation x, y, calibration x, y) of the chosen focus share, the held-out
    rows' sources in order and the fit's weights: where a change of features gains or loses, which
    the one total hides."""
    x, y, vx, vy, cx, cy = rows
    p = np.concatenate([probabilities(params, vx), cross_fitted(x, y, weights, cal_rows, cx, c=c)])
    labels = np.concatenate([vy, cy])
    out = {}
    for s in dict.fromkeys(sources):
        m = np.array([t == s for t in sources])
        out[s] = round(log_loss(p[m], labels[m], np.ones(int(m.sum()))), 4)
    return out


def save_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def train_models(law_assistant, dev_assistant, out_dir: Path = MODELS_DIR, log=print, sample: int | None = None,
                 region_assistant=None, command: str = "python -m eval train", second_pass: bool = False) -> dict:
    """Fit both models from the law index, the bundled-corpus index and (when given) the region
    index; returns a summary. `command` is recorded in the files as what made them; with
    `second_pass`, the ranker gets a second pass when it raises validation recall (eval/train_stack.py)."""
    from eval.devset import load_set
    from eval.region import PARTS, load_questions
    from eval.splits import set_part, stard_ids
    from eval.stard import load_queries

    t0 = time.time()
    queries = load_queries()
    train_ids, valid_ids = stard_ids("train"), stard_ids("validation")
    q_train = [q for q in queries if q.qid in train_ids][:sample]
    q_valid = [q for q in queries if q.qid in valid_ids][: sample and max(20, sample // 3)]
    log(f"candidates for {len(q_train)} STARD train and {len(q_valid)} validation questions …")
    # a train question's candidates never recall its own answer from the question memory
    ex_train = without_own_answers(law_assistant, q_train, stard_examples)
    ex_leave = without_own_answers(law_assistant, q_train, lambda a, qs: stard_examples(a, qs, leave_out=True))
    ex_valid = stard_examples(law_assistant, q_valid)
    ex_valid_leave = stard_examples(law_assistant, q_valid, leave_out=True)
    off_train, off_valid = offcorpus_examples(dev_assistant, q_train), offcorpus_examples(dev_assistant, q_valid)
    dev_cal = dev_examples(dev_assistant, set_part(load_set("dev"), "dev", "calibration"), "dev")
    near_cal = dev_examples(dev_assistant, set_part(load_set("nearmiss"), "nearmiss", "calibration"), "nearmiss")
    region_cal = region_examples(region_assistant, load_questions(PARTS["calibration"])) if region_assistant else []
    log(f"  {time.time() - t0:.0f} s; choosing boosting rounds on validation …")
    rounds, round_scores = choose_rounds(ex_train + dev_cal, ex_valid)
    log(f"  rounds {rounds} (validation MRR@10 {round_scores}); second pass …")
    if second_pass:
        model, second_rounds, second_scores = choose_second(ex_train + dev_cal, ex_valid, rounds, RANKER_PARAMS)
    else:
        model, second_rounds, second_scores = Ranking(fit_booster(ex_train + dev_cal, rounds, RANKER_PARAMS)), 0, {}
    log(f"  second-pass rounds {second_rounds} (validation (R@10 + R@100) / 2 of the pool's gold articles "
        f"{ {k: round(v, 4) for k, v in second_scores.items()} }); answerability model …")

    calibration = dev_cal + near_cal + region_cal
    fit_examples = ex_train + ex_leave + off_train + calibration
    orders = out_of_fold(fit_examples, rounds, second_rounds)
    by_source = {"stard": law_assistant, "stard-leaveout": law_assistant, "stard-offcorpus": dev_assistant,
                 "dev": dev_assistant, "nearmiss": dev_assistant, "region": region_assistant}
    # each source weighs as much in total as STARD's answerable questions
    counts = {s: sum(e.source == s for e in fit_examples) for s in by_source}
    valid_all = ex_valid + ex_valid_leave + off_valid
    v_orders = {i: ranking(model, e) for i, e in enumerate(valid_all)}
    cal_orders = {i: ranking(model, e) for i, e in enumerate(calibration)}
    cal_rows = list(range(len(fit_examples) - len(calibration), len(fit_examples)))  # they come last
    # held-out rows weigh as the training rows do: each source as much as STARD's answerable questions
    vw = source_weights(valid_all, len(ex_valid))
    cw = source_weights(calibration, len(ex_valid))
    is_ans = np.array([e.answerable for e in valid_all])
    # whether each reply cites gold, answered and answered with caution (the two quote differently)
    cited = np.array([[e.answerable and cites_gold(law_assistant, e, v_orders[k], uncertain=u) for u in (False, True)]
                      for k, e in enumerate(valid_all)], dtype=bool)
    # the calibration questions' role in the thresholds: +1 answerable (the false-abstention
    # limit), -1 to abstain on, 0 a covered region question (the third aim: answered with its
    # place's article)
    cal_role = np.array([(1 if e.source != "region" else 0) if e.answerable else -1 for e in calibration])
    cal_cited = np.array([[role == 0 and cites_gold(region_assistant, e, cal_orders[i], uncertain=u)
                           for u in (False, True)] for i, (e, role) in enumerate(zip(calibration, cal_role))],
                         dtype=bool).reshape(len(calibration), 2)
    chosen, by_setting, rows_by_focus = None, {}, {}
    for focus in FOCUS_SHARES:
        x, y = decider_rows(by_source, fit_examples, orders, focus)
        vx, vy = decider_rows(by_source, valid_all, v_orders, focus)
        cx, cy = decider_rows(by_source, calibration, cal_orders, focus)
        rows_by_focus[focus] = (x, y, vx, vy, cx, cy)
        for share in OFFCORPUS_SHARES:
            weights = source_weights(fit_examples, len(ex_train), {"stard-offcorpus": share})
            fit = choose_decider(x, y, weights, vx, vy, vw, is_ans, cited, cal_rows, cx, cy, cw, cal_role,
                                 cal_cited)
            by_setting[(focus, share)] = fit[3]
            loss = fit[3][fit[0]]["heldout_logloss"]
            if chosen is None or loss < chosen[0]:
                chosen = (loss, focus, share, *fit)
    _, focus, share, c, params, thresholds, _ = chosen
    by_source_loss = heldout_loss_by_source(rows_by_focus[focus], [e.source for e in valid_all + calibration],
                                            source_weights(fit_examples, len(ex_train), {"stard-offcorpus": share}),
                                            params, c, cal_rows)
    log(f"  held-out log-loss by source: {by_source_loss}")
    best_by_focus = {fo: min(v["heldout_logloss"] for (f2, _), d in by_setting.items() if f2 == fo for v in d.values())
                     for fo in FOCUS_SHARES}
    log(f"  answerability: focus share {focus}, off-corpus share {share}, C {c} "
        f"(lowest held-out log-loss by focus share: {best_by_focus})")
    log(f"  thresholds {thresholds}")

    trained = {"command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "law_index": str(law_assistant.settings.index_dir), "law_documents": len(law_assistant.data.docs),
               "stard_train": len(ex_train), "stard_validation": len(ex_valid), "dev_calibration": len(dev_cal),
               "nearmiss_calibration": len(near_cal), "region_calibration": len(region_cal), "rounds": rounds,
               "validation_mrr10_by_rounds": {str(k): round(v, 4) for k, v in round_scores.items()},
               "second_rounds": second_rounds,
               "validation_recall_by_second_rounds": {str(k): round(v, 4) for k, v in second_scores.items()},
               "seconds": round(time.time() - t0, 1)}
    stage = law_assistant.searcher.first_stage
    save_json(out_dir / "ranker.json", {"format": RANKER_FORMAT, "version": RANKER_VERSION,
                                         "features": list(FEATURE_NAMES), "pool": asdict(stage.pool),
                                         **({"expansion": stage.expansion.to_json()} if stage.expansion else {}),
                                         **({"adapter": stage.adapter.to_json()} if stage.adapter else {}),
                                         **({"memory": stage.memory.to_json()} if stage.memory else {}),
                                         "params": RANKER_PARAMS, "trained": trained,
                                         "booster": model.first.model_to_string(),
                                         **({"second": {"features": list(SECOND_FEATURES),
                                                        "booster": model.second.model_to_string()}}
                                            if model.second is not None else {})})
    save_json(out_dir / "answerability.json", {"format": ANSWER_FORMAT, "version": ANSWER_VERSION,
                                                "features": list(QUESTION_FEATURES), "clause_features": list(FEATURE_NAMES),
                                                **params, "C": c, "signs": MONOTONE, "focus_share": focus,
                                                "offcorpus_share": share,
                                                "chosen_by_focus_share_and_C": {f"{fo} {sh} {k}": v
                                                                                for (fo, sh), d in by_setting.items()
                                                                                for k, v in d.items()},
                                                "thresholds": {k: thresholds[k] for k in ("answer", "caution")},
                                                "chosen_on_validation": thresholds["chosen_on"],
                                                "heldout_logloss_by_source": by_source_loss,
                                                "trained": {**trained, "examples": {s: counts[s] for s in counts},
                                                            "positives": int(rows_by_focus[focus][1].sum())}})
    return trained
