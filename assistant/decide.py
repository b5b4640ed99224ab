"""Decide: answer, answer with caution, or abstain, from one calibrated probability.

The answerability model estimates P(the first citation really answers the question) from the
ranked candidates: the gaps between the ranker's scores, the best clause's features,
how much of the question the corpus knows at all, whether the question's place is governed by
the documents found, whether the best clause's document is about another topic (a work-injury
question against 广东省失业保险条例: data/lexicon/topics.tsv), and whether the best clauses give the kind
of answer asked for (a number, a sum of money, a rate, a date, a year, a day, a length of time, how
often, materials, a place, a contact: data/lexicon/answer_types.tsv): '低保标准每月多少钱?'
against '各市地要合理确定最低生活保障标准' names the topic without answering it; the score gaps come
twice, as they are and only where the best clause gives what is asked (gap_1_2_met), so that how
far a clause leads the others counts for little when it lacks the number asked for. It is a logistic
regression over standardised features, each coefficient on the side `MONOTONE` declares, stored as
readable JSON (`assistant/models/answerability.json`, written by `python -m eval train`) with
the two thresholds chosen on the validation split:

    p >= thresholds.answer   -> "answered"
    p >= thresholds.caution  -> "uncertain"   (the best clauses, with a visible caution)
    otherwise                -> "abstained"   (未在已收录文件中找到相关规定, and the nearest clauses)

Worked example: features x = [1.2, 0.4], mean [1, 0], scale [0.5, 1], coef [2, -1], intercept
0.1 -> z = 2 * 0.4 - 1 * 0.4 + 0.1 = 0.5, p = 1 / (1 + e^-0.5) = 0.62.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.features import FEATURE_NAMES
from assistant.rank import MODELS_DIR, read_model, check_features

ANSWER_FORMAT = "policyqa-answerability"
ANSWER_VERSION = 1
OUTCOMES = ("answered", "uncertain", "abstained")
TOP_FEATURES = ("dense", "bm25_rel", "cov", "cov_unique", "cov_chunk", "subject_opens", "phrase", "title_cov",
                "named_doc", "lookup", "doc_rank")


def _top_index(name: str) -> int:
    return FEATURE_NAMES.index(name)


# question-level features, from the ranked candidates (see question_features)
QUESTION_FEATURES = (
    "gap_1_2", "gap_1_5", "gap_1_10", "same_doc_top3",
    *(f"top_{n}" for n in TOP_FEATURES),
    "evidence_cov", "unknown_share", "n_terms", "place_unmatched", "top_topic_other", "stale",
    "wants_n", "top_wants_unmet", "top3_wants_unmet", "gap_1_2_met", "gap_1_10_met",
)


# the side of zero each feature's coefficient is kept on (+1: never lowers P, -1: never raises it);
# features not named here are free
MONOTONE = {"top_dense": 1, "top_bm25_rel": 1, "top_cov": 1, "top_cov_unique": 1, "top_cov_chunk": 1,
            "top_subject_opens": 1, "top_phrase": 1, "top_title_cov": 1, "top_named_doc": 1, "top_lookup": 1,
            "evidence_cov": 1, "unknown_share": -1, "place_unmatched": -1, "top_topic_other": -1, "stale": -1, "top_wants_unmet": -1,
            "top3_wants_unmet": -1}


def question_features(scores: np.ndarray, x: np.ndarray, doc_ids: list[str], evidence_cov: float,
                      unknown_share: float, n_terms: int, place_unmatched: bool, topic_other: bool, stale: bool,
                      wants_n: int, unmet: list[int]) -> np.ndarray:
    """(len(QUESTION_FEATURES),) features of one question, given the candidates sorted best first:
    their ranker scores, their feature rows and their documents; wants_n is how many kinds of
    answer the question asks for (a number, a date, materials: data/lexicon/answer_types.tsv) and
    `unmet` how many of them each of the best clauses does not give."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) == 0:
        s = np.array([-10.0])
        x = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32)
        doc_ids = [""]
    pad = np.concatenate([s, np.full(max(0, 10 - len(s)), s[-1])])
    # only differences of ranker scores: lambdarank learns nothing about a question's scores as a
    # whole (adding a constant to all of them changes no loss), so their level says nothing
    out = [s[0] - pad[1], s[0] - pad[4], s[0] - pad[9], float(len(set(doc_ids[:3])) == 1)]
    out += [float(x[0, _top_index(n)]) for n in TOP_FEATURES]
    out += [evidence_cov, unknown_share, math.log1p(n_terms), float(place_unmatched), float(topic_other), float(stale)]
    top_unmet = float(unmet[0]) if unmet else float(wants_n)
    out += [float(wants_n), top_unmet, float(min(unmet, default=wants_n))]
    # the gaps again, where the best clause gives every kind of answer asked for (0 where it does
    # not): how far a clause leads says little when it lacks what the question asks
    out += [out[0] * (top_unmet == 0), out[2] * (top_unmet == 0)]
    return np.asarray(out, dtype=np.float64)


def probabilities(x: np.ndarray, mean, scale, coef, intercept: float) -> np.ndarray:
    """P of each row of x (rows, features): the logistic of its standardised features' weighted sum."""
    z = ((x - np.asarray(mean)) / np.asarray(scale)) @ np.asarray(coef) + intercept
    return 1 / (1 + np.exp(-np.clip(z, -50, 50)))


@dataclass(frozen=True)
class Decision:
    outcome: str  # answered | uncertain | abstained
    confidence: float  # P(the first citation answers the question)


@dataclass(frozen=True)
class Decider:
    """The answerability model and its thresholds."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    answer_at: float
    caution_at: float
    meta: dict
    focus_share: float = 1.0  # the sentences a clause's answer kinds are read in (evidence.focus_sentence)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Decider":
        """Read an answerability file; refuses one written for other features."""
        path = Path(path or MODELS_DIR / "answerability.json")
        raw = read_model(path, ANSWER_FORMAT, ANSWER_VERSION)
        check_features(path, raw.get("features"), QUESTION_FEATURES)
        check_features(path, raw.get("clause_features"), FEATURE_NAMES)
        th = raw["thresholds"]
        return cls(np.asarray(raw["mean"]), np.asarray(raw["scale"]), np.asarray(raw["coef"]),
                   float(raw["intercept"]), float(th["answer"]), float(th["caution"]),
                   {k: v for k, v in raw.items() if k not in ("mean", "scale", "coef")},
                   float(raw.get("focus_share", 1.0)))

    def probability(self, qx: np.ndarray) -> float:
        return float(probabilities(np.asarray(qx)[None, :], self.mean, self.scale, self.coef, self.intercept)[0])

    def decide(self, qx: np.ndarray) -> Decision:
        p = self.probability(qx)
        outcome = "answered" if p >= self.answer_at else "uncertain" if p >= self.caution_at else "abstained"
        return Decision(outcome, p)
