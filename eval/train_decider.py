"""The answer-or-abstain model's fit and its thresholds, for `python -m eval train` (eval/train.py):
a logistic regression over the question features (assistant/decide.py), with monotone signs,
its regularisation chosen by held-out log-loss, and the caution and answer thresholds chosen on
STARD validation and the cross-fitted calibration parts."""
from __future__ import annotations

import numpy as np

from assistant.decide import MONOTONE, QUESTION_FEATURES
from assistant.decide import probabilities as decider_probabilities
from eval.train_examples import Example


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
# - the model fitted to another label, 1 when any clause an uncertain reply shows is right
#   (cites_gold with uncertain=True) and not only the first, both thresholds read from it (the answer
#   threshold still held to the first clause's precision). On indexes rebuilt on another machine,
#   ranker seeds 23 and 7, cross-fitted validation and calibration parts: within the false-abstention
#   limit, at most 0.868 of the questions to abstain on abstained (first-clause label: 0.916 for both
#   seeds); at 0.84 of them abstained, region right place 0.844 / 0.822 (first-clause label 0.800 /
#   0.822) and STARD validation gold cited 0.534 / 0.540 (0.563 / 0.560). Not kept.
DECIDER_C = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # the answerability model's regularisations tried on validation
# caution thresholds at which the report shows what the chosen model's thresholds trade (with the
# chosen one): a reading grid, not a setting
TRADEOFF_GRID = (0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3)


def top1_right(e: Example, idx: list[int]) -> bool:
    return bool(idx) and bool(e.labels[idx[0]])



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
    tradeoff: what each caution threshold of TRADEOFF_GRID and the chosen one would reach on these
    same questions (the report's table of what the choice trades).
    """
    has_region = p_region is not None and len(p_region) > 0
    grid = np.unique(np.concatenate([p_stard, p_dev_ans, p_neg, p_region if has_region else [], [0.0]]))
    precise = 1.0  # the answer threshold
    for t in sorted(grid, reverse=True):
        above = p_stard >= t
        if above.sum() >= 10 and right_stard[above].mean() >= answer_precision:
            precise = float(t)

    def shares(t: float) -> tuple[float, float, float, float]:
        """(answerable dev abstained, to abstain on abstained, STARD gold cited, region right place) at caution t."""
        return (float(np.mean(p_dev_ans < t)) if len(p_dev_ans) else 0.0,
                float(np.mean(p_neg < t)) if len(p_neg) else 1.0,
                float(np.mean(_cited_at(p_stard, cited_stard, t, precise))) if len(p_stard) else 0.0,
                float(np.mean(_cited_at(p_region, cited_region, t, precise))) if has_region else 0.0)

    best, best_key = 0.0, None
    for t in grid:
        false_abst, abst, gold_share, region = shares(t)
        key = (false_abst <= max_false_abstain, min(abst / min_abstain, 1.0) + min(gold_share / min_gold_share, 1.0)
               + min(region / min_region_share, 1.0), abst, -false_abst)
        if best_key is None or key > best_key:
            best, best_key, best_on = float(t), key, (abst, gold_share, region)
    names = ("answerable_abstained", "unanswerable_abstained", "stard_gold_cited_share", "region_right_place_share")
    tradeoff = [{"caution": round(float(t), 4), "chosen": bool(t == best),
                 **{n: round(v, 4) for n, v in zip(names, shares(t)) if has_region or n != names[3]}}
                for t in sorted({*TRADEOFF_GRID, best})]
    return {"caution": best, "answer": max(precise, best),
            "chosen_on": {"false_abstention_within_limit": bool(best_key[0]),
                          "unanswerable_abstained": round(best_on[0], 4),
                          "stard_gold_cited_share": round(best_on[1], 4),
                          **({"region_right_place_share": round(best_on[2], 4)} if has_region else {})},
            "tradeoff": tradeoff}


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
