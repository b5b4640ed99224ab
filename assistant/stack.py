"""The ranker's second pass: what the first pass's scores say about each candidate's law and neighbours.

The first pass (assistant/rank.py) scores each candidate clause on its own. A lawyer's answer
cites articles of the law the question is about, often several and often side by side, so a
clause ranks better when its law holds other well-scored clauses and when the articles next to
it score well. The second pass is a LightGBM lambdarank booster over these features (and the
first pass's features), fitted by `python -m eval train` on out-of-fold first-pass scores.

    first_score    the first pass's score
    first_gap      its distance below the best candidate's score
    first_rank     log(1 + its rank among all candidates)
    law_gap        how far its document's best score is below the best candidate's
    law_rank       log(1 + the rank of its document, documents ordered by their best score)
    law_top10      how many of its document's candidates are among the first 10
    law_mass       log of the summed exp(score - best score) of its document's candidates
    rank_in_law    log(1 + how many of its document's candidates score higher)
    neighbour_gap  the better score of the candidates just before and after it in its document
                   (by position, when they belong to another article), minus its own; -5 if none
    article_chunks how many candidates belong to its article

Worked example: scores [2, 1, 0.5], documents [A, B, A], positions [10, 0, 20], articles [a1, b1, a2]:
the third candidate has first_gap -1.5, first_rank log 3, law_gap 0, law_rank log 1, law_top10 2,
law_mass log(1 + e^-1.5), rank_in_law log 2, neighbour_gap 2 - 0.5 = 1.5, article_chunks 1.
"""
from __future__ import annotations

import numpy as np

from assistant.articles import article_of

STACK_FEATURES = ("first_score", "first_gap", "first_rank", "law_gap", "law_rank", "law_top10", "law_mass",
                  "rank_in_law", "neighbour_gap", "article_chunks")
NO_NEIGHBOUR = -5.0  # neighbour_gap of a candidate with no other article of its document beside it
TOP = 10  # law_top10 counts a document's candidates among this many best


def candidate_places(candidates) -> tuple[list[str], list[tuple], list[int]]:
    """(document ids, article ids, positions) of candidates (assistant.candidates.Candidate): a
    clause outside any article is an article of its own."""
    docs, articles, starts = [], [], []
    for c in candidates:
        h = c.hit
        docs.append(h.doc.doc_id)
        articles.append((h.doc.doc_id, article_of(h.clause.path) or h.clause.clause_id))
        starts.append(h.clause.start)
    return docs, articles, starts


def stack_features(scores: np.ndarray, docs: list[str], articles: list, starts: list[int]) -> np.ndarray:
    """(n, len(STACK_FEATURES)) float32 features of n candidates from their first-pass scores."""
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    out = np.zeros((n, len(STACK_FEATURES)), dtype=np.float32)
    if n == 0:
        return out
    top = float(s.max())
    doc = _codes(docs)
    art = _codes(articles)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-s, kind="stable")] = np.arange(n)
    best = np.full(doc.max() + 1, -np.inf)
    np.maximum.at(best, doc, s)
    doc_rank = np.empty(len(best), dtype=np.int64)
    doc_rank[np.argsort(-best, kind="stable")] = np.arange(len(best))
    out[:, 0] = s
    out[:, 1] = s - top
    out[:, 2] = np.log1p(rank)
    out[:, 3] = (best - top)[doc]
    out[:, 4] = np.log1p(doc_rank)[doc]
    out[:, 5] = np.bincount(doc, weights=rank < TOP)[doc]
    out[:, 6] = np.log(np.bincount(doc, weights=np.exp(s - top)))[doc]
    out[:, 7] = np.log1p(_higher_in_group(s, doc))
    out[:, 8] = _neighbour_gap(s, doc, art, np.asarray(starts))
    out[:, 9] = np.bincount(art)[art]
    return out


def _codes(keys: list) -> np.ndarray:
    """Small integers naming equal keys alike: ['a', 'b', 'a'] -> [0, 1, 0]."""
    seen: dict = {}
    return np.fromiter((seen.setdefault(k, len(seen)) for k in keys), dtype=np.int64, count=len(keys))


def _higher_in_group(s: np.ndarray, group: np.ndarray) -> np.ndarray:
    """How many members of each one's group score strictly higher: [3, 1, 3] in one group -> [0, 2, 0]."""
    order = np.lexsort((-s, group))  # by group, best first
    gs, ss = group[order], s[order]
    n = len(s)
    new_group = np.r_[True, gs[1:] != gs[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    new_value = new_group | np.r_[True, ss[1:] != ss[:-1]]
    value_start = np.maximum.accumulate(np.where(new_value, np.arange(n), 0))  # ties share the first place
    out = np.empty(n, dtype=np.int64)
    out[order] = value_start - group_start
    return out


def _neighbour_gap(s: np.ndarray, doc: np.ndarray, art: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The better score of the candidates just before and after each in its document (by position,
    of another article) minus its own, NO_NEIGHBOUR where there is none."""
    n = len(s)
    order = np.lexsort((np.arange(n), starts, doc))
    ds, as_, ss = doc[order], art[order], s[order]
    beside = np.full(n, -np.inf)
    if n > 1:
        prev_ok = (ds[1:] == ds[:-1]) & (as_[1:] != as_[:-1])  # for positions 1..n-1, their predecessor
        beside[1:] = np.where(prev_ok, ss[:-1], -np.inf)
        beside[:-1] = np.maximum(beside[:-1], np.where(prev_ok, ss[1:], -np.inf))  # successor, same test
    gap = np.where(np.isfinite(beside), beside - ss, NO_NEIGHBOUR)
    out = np.empty(n)
    out[order] = gap
    return out
