"""Candidates: a deep pool of clauses for one question, with the raw signals the ranker needs.

Up to four first-stage searches feed the pool, all through the index's search backend
(`data.backend`, index/backend.py: FAISS and the project's BM25 in this process, or Milvus):

1. dense: the `dense` nearest chunks;
2. lexical: the `bm25` best chunks by BM25 over the chunk text;
3. expanded lexical: the `expanded` best chunks by BM25 over the question's words plus the
   clause words learned to go with them (assistant/expansion.py), when the ranker has an expansion;
4. the law first: documents are scored by aggregating their chunks' reciprocal ranks in the
   dense and BM25 lists plus a BM25 over their titles, and inside the `docs` leading documents
   the `per_doc` nearest chunks are added, found or not by the global searches;
5. recalled: the articles cited for the `memory` remembered questions nearest this one
   (assistant/memory.py), when the ranker has a question memory.

Then the backend scores every pooled chunk exactly (`score_rows`: cosine and BM25), and chunks
are folded into their clause (the best dense and BM25 score of its chunks). Each candidate
carries dense cosine, BM25, ranks in both lists, and its document's aggregate score and rank;
`assistant.features` turns them, with the texts, into the ranker's feature vector.

Worked example of the document score (law-first): a law whose chunks rank 1 and 4 in the
dense list and 2 in the BM25 list scores 1/(60+1) + 1/(60+4) + 1/(60+2) + title BM25 / 10.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from assistant.types import Hit
from index.bm25 import BM25, unit_weights

RRF_K = 60  # reciprocal-rank constant of the document aggregate (the usual value)


class Candidate(NamedTuple):
    """One clause in the pool and the first-stage signals about it (immutable; a named tuple,
    like Hit, because a few hundred are built per question)."""

    hit: Hit
    dense: float  # cosine of the question and the clause's best chunk
    bm25: float  # BM25 of the clause's best chunk (0 if no query word)
    dense_rank: int  # 0-based rank in the pool by dense, then by BM25
    bm25_rank: int
    rrf: float  # 1/(60+dense_rank+1) + 1/(60+bm25_rank+1)
    doc_score: float  # the document's aggregate (law-first)
    doc_rank: int  # 0-based rank of the document by doc_score
    doc_hits: int  # candidates of the same document in the pool
    title_bm25: float  # BM25 of the question against the document title
    bm25_exp: float = 0.0  # BM25 of the question and its expansion words (0 without an expansion)
    bm25_exp_rank: int = 0  # 0-based rank in the pool by bm25_exp
    memory: float = 0.0  # best cosine of a remembered question whose answer cited the clause's article (0: none)
    memory_votes: int = 0  # remembered questions among the nearest whose answer cited it
    memory_law: int = 0  # remembered questions among the nearest whose answer cited an article of its law


@dataclass(frozen=True)
class PoolSettings:
    """How deep each first-stage search goes; chosen on the validation split (eval train)."""

    dense: int = 100
    bm25: int = 100
    docs: int = 5
    per_doc: int = 10
    expanded: int = 0  # the expanded search's depth (used only with an expansion)
    memory: int = 0  # remembered questions whose cited articles are recalled (used only with a memory)

    def __post_init__(self):
        for name in ("dense", "bm25", "docs", "per_doc", "expanded", "memory"):
            if getattr(self, name) < 0:
                raise ValueError(f"pool {name} must be 0 or more, got {getattr(self, name)}")


class TitleIndex:
    """BM25 over document titles (with issuer and 文号), one row per document."""

    def __init__(self, docs: list, tokenize):
        self.doc_ids = [d.doc_id for d in docs]
        from index.normalize import to_simplified

        self.bm25 = BM25.from_token_lists([tokenize(to_simplified(f"{d.title} {d.meta.issuer}")) for d in docs])

    def scores(self, tokens: list[str]) -> dict[str, float]:
        if not self.doc_ids:
            return {}
        s = self.bm25.scores(tokens)
        return {self.doc_ids[i]: float(s[i]) for i in np.flatnonzero(s)}


def gather(retriever, tokens: list[str], qvec: np.ndarray | None, settings: PoolSettings,
           docs: list[str] | None, title_scores: dict[str, float],
           expansion: tuple[list[str], list[float]] = ([], []),
           hidden: np.ndarray | None = None,
           recalled: dict[int, tuple[float, int]] | None = None,
           law_votes: dict[str, int] | None = None) -> tuple[list[Candidate], dict]:
    """(candidates, timings in ms) for one query's BM25 tokens and vector (normalised, expanded),
    and the (words, weights) its learned expansion adds to the tokens.
    `recalled` {row: (cosine, votes)}: the chunk rows of the articles the question memory recalls
    (already within `docs` and without `hidden` rows), added to the pool with their two numbers;
    `law_votes` {doc_id: votes}: how many of those remembered questions cited the document's law
    (a feature of each of its candidates).

    `docs` (doc_ids) restricts every search to those documents' chunks; None means all.
    `hidden` (bool per chunk row) leaves rows out of every search's results: the chunks of
    superseded versions (index/versions.py), found but never candidates.
    """
    data = retriever.data
    backend = data.backend
    n = len(data.chunks)
    timings: dict[str, float] = {}
    if n == 0:
        return [], timings
    t = time.perf_counter()
    lex_rows = _rows(backend.lexical(tokens, settings.bm25, docs) if tokens else [], hidden)
    exp_words, exp_weights = expansion
    exp_rows = _rows([])
    if tokens and exp_words and settings.expanded:  # without a depth the expansion is a feature only
        exp_rows = _rows(backend.lexical(tokens + exp_words, settings.expanded, docs,
                                         unit_weights(len(tokens)) + list(exp_weights)), hidden)
    timings["bm25"] = (time.perf_counter() - t) * 1000

    t = time.perf_counter()
    dense_rows = _rows([])
    if qvec is not None and settings.dense:
        # the engine's own order (FAISS float16, Milvus HNSW): every kept chunk is rescored below
        dense_rows = _rows(backend.dense(qvec, min(settings.dense, n), docs, exact=False), hidden)
    timings["faiss"] = (time.perf_counter() - t) * 1000

    t = time.perf_counter()
    recalled, law_votes = recalled or {}, law_votes or {}
    rows = np.unique(np.concatenate([dense_rows, lex_rows, exp_rows, np.fromiter(recalled, dtype=np.int64)]))
    dense_of, bm_of = backend.score_rows(qvec, tokens, rows)
    # law first: documents by the reciprocal ranks of their chunks, then their nearest chunks
    doc_score: dict[str, float] = {}
    chunks_all = data.chunks
    for ranking in (dense_rows, lex_rows):  # the expanded list adds nothing here (validation pool coverage)
        for r, row in enumerate(ranking.tolist()):
            d = chunks_all[row].doc_id
            doc_score[d] = doc_score.get(d, 0.0) + 1.0 / (RRF_K + r + 1)
    for d, s in title_scores.items():
        if d in doc_score:
            doc_score[d] += s / 10.0
    by_score = sorted(doc_score, key=lambda d: -doc_score[d])
    leading = by_score[: settings.docs]
    if qvec is not None and settings.per_doc and leading:  # each found by a search within `docs` already
        more = np.setdiff1d(_rows(backend.dense_each_doc(qvec, settings.per_doc, leading)), rows)
        if len(more):
            # scored on their own: a row's float32 cosine depends on the rows scored with it (the
            # matrix product's blocking), and the models were fitted on these numbers
            more_dense, more_bm = backend.score_rows(qvec, tokens, more)
            rows = np.concatenate([rows, more])
            dense_of = np.concatenate([dense_of, more_dense])
            bm_of = np.concatenate([bm_of, more_bm])
    ex_of = bm_of
    if exp_words:
        ex_of = bm_of + backend.score_rows(None, exp_words, rows, list(exp_weights))[1]
    # fold chunks into clauses: the best dense, BM25 and expanded BM25 of the clause's chunks
    row_of, ds_of, bs_of, es_of, item = fold(data.clause_codes[rows], rows, dense_of, bm_of, ex_of)
    mem_of, votes_of = np.zeros(len(row_of)), np.zeros(len(row_of), dtype=np.int64)
    if recalled:
        for i, r in zip(item.tolist(), rows.tolist()):  # every chunk of an article carries the article's numbers
            if r in recalled:
                mem_of[i], votes_of[i] = recalled[r]
    first = np.arange(len(row_of))
    d_rank, b_rank, e_rank = (_ranks(np.lexsort((first, -second, -key))) for key, second in
                              ((ds_of, bs_of), (bs_of, ds_of), (es_of, ds_of)))
    doc_rank = {d: r for r, d in enumerate(by_score)}
    chunks = [data.chunks[row] for row in row_of.tolist()]
    per_doc: dict[str, int] = {}
    for ch in chunks:
        per_doc[ch.doc_id] = per_doc.get(ch.doc_id, 0) + 1
    rrf_of = 1.0 / (RRF_K + d_rank + 1) + np.where(bs_of > 0, 1.0 / (RRF_K + b_rank + 1), 0.0)
    best_first = np.argsort(-rrf_of, kind="stable")  # by fused rank, of equal ones the first come
    ds_l, bs_l, es_l, rrf_l = ds_of.tolist(), bs_of.tolist(), es_of.tolist(), rrf_of.tolist()
    dr_l, br_l, er_l, ms_l, mv_l = d_rank.tolist(), b_rank.tolist(), e_rank.tolist(), mem_of.tolist(), votes_of.tolist()
    out = []
    for i in best_first.tolist():
        ch, bs, br, rrf = chunks[i], bs_l[i], br_l[i], rrf_l[i]
        hit = Hit(ch, data.clauses[ch.clause_id], data.docs[ch.doc_id], rrf, dr_l[i], br if bs > 0 else None)
        out.append(Candidate(hit, ds_l[i], bs, dr_l[i], br, rrf, doc_score.get(ch.doc_id, 0.0),
                             doc_rank.get(ch.doc_id, len(doc_rank)), per_doc[ch.doc_id],
                             title_scores.get(ch.doc_id, 0.0), es_l[i], er_l[i], ms_l[i], mv_l[i],
                             law_votes.get(ch.doc_id, 0)))
    timings["fusion"] = (time.perf_counter() - t) * 1000
    return out, timings


def fold(codes: np.ndarray, rows: np.ndarray, dense: np.ndarray, bm25: np.ndarray, expanded: np.ndarray):
    """Chunks folded into their clauses, the clauses in the order their first chunk comes:
    (each clause's chunk of the best dense score, the first of equal ones; that dense score;
    the best BM25 and expanded BM25 of its chunks; each row's clause index).

    codes [7, 3, 7], dense [0.2, 0.5, 0.4], bm25 [1, 0, 3] -> clauses 7 then 3: rows of
    [2, 1] ((the third chunk is clause 7's best dense), dense [0.4, 0.5], bm25 [3, 0]."""
    if not len(codes):
        empty = np.zeros(0)
        return rows[:0], empty, empty, empty, rows[:0]
    uniq, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")  # clauses in the order of their first chunk
    index_of = np.empty(len(uniq), dtype=np.int64)
    index_of[by_first] = np.arange(len(uniq))
    item = index_of[inverse.reshape(-1)]
    dense = np.asarray(dense, dtype=np.float64)
    order = np.lexsort((np.arange(len(codes)), -dense, item))  # by clause, best dense first, then first come
    leads = order[np.r_[True, item[order][1:] != item[order][:-1]]]
    best_bm, best_ex = np.full(len(uniq), -np.inf), np.full(len(uniq), -np.inf)
    np.maximum.at(best_bm, item, np.asarray(bm25, dtype=np.float64))
    np.maximum.at(best_ex, item, np.asarray(expanded, dtype=np.float64))
    return rows[leads], dense[leads], best_bm, best_ex, item


def _ranks(order: np.ndarray) -> np.ndarray:
    """0-based rank of each position given the positions best first: [2, 0, 1] -> [1, 2, 0]."""
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks


def _rows(hits: list[tuple[int, float]], hidden: np.ndarray | None = None) -> np.ndarray:
    """The rows of a search's (row, score) hits, in order, without the `hidden` ones."""
    rows = np.asarray([r for r, _ in hits], dtype=np.int64)
    return rows[~hidden[rows]] if hidden is not None and len(rows) else rows
