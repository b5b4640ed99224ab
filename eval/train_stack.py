"""The ranker's two passes in `python -m eval train`: the second (assistant/stack.py) fitted on out-of-fold scores.

The second pass learns from what the first pass's scores say about a candidate's law and
neighbours, so it must see first-pass scores as the shipped ranker gives them to questions it never
saw: each training question's first scores come from a first pass fitted without its fold.
With `python -m eval train --second-pass`, whether there is a second pass, and its boosting
rounds, are chosen on validation by the mean of article recall at 10 and at 100 (the pool's gold
articles among the first 10 and 100 articles); a second pass that does not raise it by more than
ROUND_TOLERANCE is left out.

The measure on STARD validation as `python -m eval train` logs it (second-pass rounds: 0 none, 50,
100, 200): 0.8084, 0.8119, 0.8142, 0.8143, so 100 rounds. `python -m eval stard --split validation
--mode ranked` with the first pass alone and with both:

                   R@1      R@10     R@100    MRR@10
    first pass     0.341    0.660    0.865    0.570
    both passes    0.332    0.672    0.870    0.560

The second pass finds more of the gold articles lower down and puts slightly fewer first. The
shipped models have none: the answer-or-abstain model retrained over its scores answered more of
the questions to abstain on (near-miss calibration part abstained 0.84 -> 0.80; region
calibration part, uncovered places abstained 0.96 -> 0.92, covered places answered with their
place's article 0.822 -> 0.778), against STARD validation gold cited 0.550 -> 0.560 and dev
calibration part gold evidence 0.952 -> 0.968.

Measured again once the thresholds counted uncertain replies as they show (all on the choosing
splits, shipped first pass -> both passes): near-miss calibration abstained 0.84 -> 0.84; region
calibration uncovered abstained 0.96 -> 0.92 and right place 0.822 -> 0.778; STARD validation
abstained 0.162 -> 0.168, gold cited 0.550 -> 0.553; dev calibration gold evidence 0.952 -> 0.968
(caution 0.105 -> 0.127). The six region questions whose reply changes all have a confidence
between 0.09 and 0.14, at one caution threshold or the other.
A variant whose answer-or-abstain model reads the score gaps of the first pass (the order still
the second pass's) gave near-miss 0.84, region uncovered 0.96 but right place 0.733, STARD
validation abstained 0.201 and gold cited 0.541: not better either.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.features import FEATURE_NAMES
from assistant.rank import SECOND_FEATURES, second_rows, two_pass_scores
from eval.train_examples import Example, article_key

SECOND_ROUNDS = (50, 100, 200)  # the second pass's boosting rounds tried on validation
FOLDS = 5  # folds of the first pass's out-of-fold scores the second pass learns from
ROUND_TOLERANCE = 0.001
# the bundled policy corpus' questions weigh, in total, this share of the STARD law questions'
# (46 dev calibration items against 925 STARD ones would otherwise be noise to the ranker)
POLICY_SHARE = 0.5


@dataclass(frozen=True)
class Ranking:
    """A first-pass booster and, when there is one, the second pass over its scores."""

    first: object
    second: object = None

    def scores(self, e: Example) -> np.ndarray:
        if not len(e.labels):
            return np.zeros(0)
        second = None if self.second is None else lambda rows: self.second.predict(rows, num_threads=1)
        return two_pass_scores(lambda x: self.first.predict(x, num_threads=1), second, e.prep.x, e.prep.candidates)


def fit_booster(train: list[Example], rounds: int, params: dict, rows=None, names=FEATURE_NAMES,
                policy_share: float = POLICY_SHARE):
    """A LightGBM lambdarank booster over the examples that have a right candidate; `rows(e)`
    gives an example's feature rows (default its clause features). The bundled corpus' questions
    weigh `policy_share` of STARD's in total."""
    import lightgbm

    rows = rows or (lambda e: e.prep.x)
    kept = [e for e in train if e.labels.any() and len(e.labels) > 1]
    n_law = sum(e.source.startswith("stard") for e in kept)
    n_policy = len(kept) - n_law
    policy_weight = policy_share * n_law / n_policy if n_policy and n_law else 1.0
    # every row of a group carries the group's weight (LightGBM reads ranking weights per query)
    weight = np.concatenate([np.full(len(e.labels), 1.0 if e.source.startswith("stard") else policy_weight)
                             for e in kept])
    ds = lightgbm.Dataset(np.concatenate([rows(e) for e in kept]), np.concatenate([e.labels for e in kept]),
                          group=[len(e.labels) for e in kept], weight=weight, feature_name=list(names),
                          free_raw_data=False)
    return lightgbm.train(params, ds, num_boost_round=rounds)


def out_of_fold_first(examples: list[Example], rounds: int, params: dict, folds: int = FOLDS,
                      seed: int = 7) -> list[np.ndarray]:
    """Each example's first-pass scores from a first pass fitted without its fold."""
    fold = np.random.default_rng(seed).integers(0, folds, size=len(examples))
    out: list[np.ndarray] = [np.zeros(0)] * len(examples)
    for f in range(folds):
        booster = fit_booster([e for e, g in zip(examples, fold) if g != f], rounds, params)
        for i, (e, g) in enumerate(zip(examples, fold)):
            if g == f and len(e.labels):
                out[i] = booster.predict(e.prep.x, num_threads=1)
    return out


def fit_second(examples: list[Example], first: list[np.ndarray], rounds: int, params: dict):
    """The second pass, fitted on examples' out-of-fold first scores."""
    at = {id(e): s for e, s in zip(examples, first)}
    return fit_booster(examples, rounds, params, rows=lambda e: second_rows(at[id(e)], e.prep.x, e.prep.candidates),
                       names=SECOND_FEATURES)


def fit_ranking(examples: list[Example], rounds: int, second_rounds: int, params: dict) -> Ranking:
    """Both passes fitted on `examples` (no second pass when second_rounds is 0)."""
    first = fit_booster(examples, rounds, params)
    if not second_rounds:
        return Ranking(first)
    return Ranking(first, fit_second(examples, out_of_fold_first(examples, rounds, params), second_rounds, params))


def article_recalls(e: Example, s: np.ndarray, ks: tuple[int, ...]) -> list[float]:
    """Share of the pool's gold articles among the first k distinct articles by scores s, for each k."""
    gold = {article_key(c.hit) for c, y in zip(e.prep.candidates, e.labels) if y}
    if not gold:
        return [0.0] * len(ks)
    ranked: dict[str, None] = {}  # distinct article keys, best first
    for i in np.argsort(-np.asarray(s), kind="stable"):
        ranked.setdefault(article_key(e.prep.candidates[i].hit))
        if len(ranked) == max(ks):
            break
    keys = list(ranked)
    return [len(gold & set(keys[:k])) / len(gold) for k in ks]


def recall_measure(valid: list[Example], scores) -> float:
    """Mean over validation questions of (article recall@10 + article recall@100) / 2."""
    vals = [sum(article_recalls(e, scores(e), (10, 100))) / 2 for e in valid if len(e.labels)]
    return float(np.mean(vals)) if vals else 0.0


def choose_second(train: list[Example], valid: list[Example], rounds: int, params: dict,
                  grid=SECOND_ROUNDS) -> tuple[Ranking, int, dict]:
    """(both passes fitted on `train`, second-pass rounds, 0 for none; {rounds: validation
    measure}): the fewest rounds within ROUND_TOLERANCE of the best, and no second pass unless it
    beats the first pass alone by more than that."""
    import lightgbm

    first = fit_booster(train, rounds, params)
    oof = out_of_fold_first(train, rounds, params)
    second = fit_second(train, oof, max(grid), params)
    # each validation question's first scores and second-pass rows, made once for every round count
    kept = [e for e in valid if len(e.labels)]
    firsts = {id(e): first.predict(e.prep.x, num_threads=1) for e in kept}
    rows = {id(e): second_rows(firsts[id(e)], e.prep.x, e.prep.candidates) for e in kept}
    scores = {0: recall_measure(kept, lambda e: firsts[id(e)])}
    for n in grid:
        scores[n] = recall_measure(kept, lambda e, n=n: second.predict(rows[id(e)], num_iteration=n, num_threads=1))
    top = max(scores.values())
    if top - scores[0] <= ROUND_TOLERANCE:
        return Ranking(first), 0, scores
    chosen = min(n for n in grid if n and scores[n] >= top - ROUND_TOLERANCE)
    # a booster's first n trees are what n rounds of the same fit grow: keep those, not a refit
    return Ranking(first, lightgbm.Booster(model_str=second.model_to_string(num_iteration=chosen))), chosen, scores
