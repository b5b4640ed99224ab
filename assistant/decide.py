"""Decide: answer, answer with caution, or abstain, from one calibrated probability.

The answerability model estimates P(the first citation really answers the question) from the
ranked candidates: the ranker's scores and the gaps between them, the best clause's features
(does it give the kind of answer asked for: a number, a date, materials…), how much of the
question the corpus knows at all, and whether the question's place is governed by the documents
found. It is a small LightGBM classifier, monotone where the direction is known (more coverage
never lowers P; a missing kind of answer or an unmatched place never raises it), so a question
unlike any training question cannot be pushed past a threshold by one extreme value. It is
stored as JSON (`assistant/models/answerability.json`, written by `python -m eval train`) with
the two thresholds chosen on the validation split:

    p >= thresholds.answer   -> "answered"
    p >= thresholds.caution  -> "uncertain"   (the best clauses, with a visible caution)
    otherwise                -> "abstained"   (未在已收录文件中找到相关规定, and the nearest clauses)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.features import FEATURE_NAMES
from assistant.rank import MODELS_DIR, read_model, check_features
from index.errors import PolicyQAError

ANSWER_FORMAT = "policyqa-answerability"
ANSWER_VERSION = 2
OUTCOMES = ("answered", "uncertain", "abstained")
TOP_FEATURES = ("dense", "bm25_rel", "cov", "cov_unique", "cov_chunk", "subject_opens", "phrase", "title_cov",
                "named_doc", "lookup", "doc_rank", "wants_unmet")


def _top_index(name: str) -> int:
    return FEATURE_NAMES.index(name)


# question-level features, from the ranked candidates (see question_features)
QUESTION_FEATURES = (
    "top_score", "gap_1_2", "gap_1_5", "mean_top5", "same_doc_top3",
    *(f"top_{n}" for n in TOP_FEATURES),
    "evidence_cov", "unknown_share", "n_terms", "place_unmatched", "stale", "wants_n", "top3_wants_unmet",
)
# the direction each feature may move P in (+1 up, -1 down, 0 either): LightGBM's monotone constraints
MONOTONE = {"top_score": 1, "top_dense": 1, "top_bm25_rel": 1, "top_cov": 1, "top_cov_unique": 1, "top_cov_chunk": 1,
            "top_subject_opens": 1, "top_title_cov": 1, "top_named_doc": 1, "top_lookup": 1, "evidence_cov": 1,
            "unknown_share": -1, "place_unmatched": -1, "stale": -1, "top_wants_unmet": -1, "top3_wants_unmet": -1}


def question_features(scores: np.ndarray, x: np.ndarray, doc_ids: list[str], evidence_cov: float,
                      unknown_share: float, n_terms: int, place_unmatched: bool, stale: bool,
                      wants_n: int = 0) -> np.ndarray:
    """(len(QUESTION_FEATURES),) features of one question, given the candidates sorted best first:
    their ranker scores, their feature rows and their documents; wants_n is how many kinds of
    answer the question asks for (top3_wants_unmet: the fewest of them any of the best three gives not)."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) == 0:
        s = np.array([-10.0])
        x = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32)
        doc_ids = [""]
    pad = np.concatenate([s, np.full(max(0, 5 - len(s)), s[-1])])
    out = [s[0], s[0] - pad[1], s[0] - pad[4], float(pad[:5].mean()), float(len(set(doc_ids[:3])) == 1)]
    out += [float(x[0, _top_index(n)]) for n in TOP_FEATURES]
    out += [evidence_cov, unknown_share, math.log1p(n_terms), float(place_unmatched), float(stale)]
    out += [float(wants_n), float(x[:3, _top_index("wants_unmet")].min())]
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class Decision:
    outcome: str  # answered | uncertain | abstained
    confidence: float  # P(the first citation answers the question)


@dataclass(frozen=True)
class Decider:
    """The answerability model and its thresholds."""

    booster: object  # lightgbm.Booster, binary objective
    answer_at: float
    caution_at: float
    meta: dict

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Decider":
        """Read an answerability file; refuses one written for other features."""
        path = Path(path or MODELS_DIR / "answerability.json")
        raw = read_model(path, ANSWER_FORMAT, ANSWER_VERSION)
        check_features(path, raw.get("features"), QUESTION_FEATURES)
        check_features(path, raw.get("clause_features"), FEATURE_NAMES)
        import lightgbm

        try:
            booster = lightgbm.Booster(model_str=raw["booster"])
            th = raw["thresholds"]
            answer_at, caution_at = float(th["answer"]), float(th["caution"])
        except (KeyError, TypeError, ValueError, lightgbm.basic.LightGBMError) as exc:
            raise PolicyQAError(f"answerability model {path} is damaged ({exc}); retrain with `python -m eval train`") from exc
        return cls(booster, answer_at, caution_at, {k: v for k, v in raw.items() if k != "booster"})

    def probability(self, qx: np.ndarray) -> float:
        return float(self.booster.predict(np.asarray(qx, dtype=np.float64)[None, :], num_threads=1)[0])

    def decide(self, qx: np.ndarray) -> Decision:
        p = self.probability(qx)
        outcome = "answered" if p >= self.answer_at else "uncertain" if p >= self.caution_at else "abstained"
        return Decision(outcome, p)
