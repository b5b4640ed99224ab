"""Candidates: a deep pool of clauses for one question, with the raw signals the ranker needs.

Up to four first-stage searches feed the pool, all through the index's search backend
(`data.backend`, index/backend.py: FAISS and the project's BM25 in this process, or Milvus):

1. dense: the `dense` nearest chunks;
2. lexical: the `bm25` best chunks by BM25 over the chunk text;
3. expanded lexical: the `expanded` best chunks by BM25 over the question's words plus the
   clause words learned to go with them (assistant/expansion.py), when the ranker has an expansion;
4. the law first: documents are scored by aggregating their chunks' reciprocal ranks in the
   dense and BM25 lists plus a BM25 over their titles, and inside the `docs` leading documents
   the `per_doc` nearest chunks are added, found or not by the global searches.

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

import numpy as np

from assistant.types import Hit
from index.bm25 import BM25, unit_weights

RRF_K = 60  # reciprocal-rank constant of the document aggregate (the usual value)


@dataclass(frozen=True)
class Candidate:
    """One clause in the pool and the first-stage signals about it."""

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


@dataclass(frozen=True)
class PoolSettings:
    """How deep each first-stage search goes; chosen on the validation split (eval train)."""

    dense: int = 100
    bm25: int = 100
    docs: int = 5
    per_doc: int = 10
    expanded: int = 0  # the expanded search's depth (used only with an expansion)

    def __post_init__(self):
        for name in ("dense", "bm25", "docs", "per_doc", "expanded"):
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
           expansion: tuple[list[str], list[float]] = ([], [])) -> tuple[list[Candidate], dict]:
    """(candidates, timings in ms) for one query's BM25 tokens and vector (normalised, expanded),
    and the (words, weights) its learned expansion adds to the tokens.

    `docs` (doc_ids) restricts every search to those documents' chunks; None means all.
    """
    data = retriever.data
    backend = data.backend
    n = len(data.chunks)
    timings: dict[str, float] = {}
    if n == 0:
        return [], timings
    t = time.perf_counter()
    lex_rows = _rows(backend.lexical(tokens, settings.bm25, docs) if tokens else [])
    exp_words, exp_weights = expansion
    exp_rows = _rows([])
    if tokens and exp_words and settings.expanded:  # without a depth the expansion is a feature only
        exp_rows = _rows(backend.lexical(tokens + exp_words, settings.expanded, docs,
                                         unit_weights(len(tokens)) + list(exp_weights)))
    timings["bm25"] = (time.perf_counter() - t) * 1000

    t = time.perf_counter()
    dense_rows = _rows([])
    if qvec is not None and settings.dense:
        # the engine's own order (FAISS float16, Milvus HNSW): every kept chunk is rescored below
        dense_rows = _rows(backend.dense(qvec, min(settings.dense, n), docs, exact=False))
    timings["faiss"] = (time.perf_counter() - t) * 1000

    t = time.perf_counter()
    rows = np.unique(np.concatenate([dense_rows, lex_rows, exp_rows]))
    dense_of, bm_of = backend.score_rows(qvec, tokens, rows)
    # law first: documents by the reciprocal ranks of their chunks, then their nearest chunks
    doc_score: dict[str, float] = {}
    for ranking in (dense_rows, lex_rows):  # the expanded list adds nothing here (validation pool coverage)
        for r, row in enumerate(ranking):
            d = data.chunks[row].doc_id
            doc_score[d] = doc_score.get(d, 0.0) + 1.0 / (RRF_K + r + 1)
    for d, s in title_scores.items():
        if d in doc_score:
            doc_score[d] += s / 10.0
    leading = sorted(doc_score, key=lambda d: -doc_score[d])[: settings.docs]
    if qvec is not None and settings.per_doc and leading:  # each found by a search within `docs` already
        more = np.setdiff1d(_rows(backend.dense_each_doc(qvec, settings.per_doc, leading)), rows)
        if len(more):
            more_dense, more_bm = backend.score_rows(qvec, tokens, more)
            rows = np.concatenate([rows, more])
            dense_of = np.concatenate([dense_of, more_dense])
            bm_of = np.concatenate([bm_of, more_bm])
    ex_of = bm_of
    if exp_words:
        ex_of = bm_of + backend.score_rows(None, exp_words, rows, list(exp_weights))[1]
    # fold chunks into clauses: the best dense, BM25 and expanded BM25 of the clause's chunks
    best: dict[str, list] = {}
    for row, ds, bs, es in zip(rows.tolist(), dense_of.tolist(), bm_of.tolist(), ex_of.tolist()):
        ch = data.chunks[row]
        cur = best.get(ch.clause_id)
        if cur is None:
            best[ch.clause_id] = [row, ds, bs, es]
        else:
            if ds > cur[1]:
                cur[0], cur[1] = row, ds
            cur[2] = max(cur[2], bs)
            cur[3] = max(cur[3], es)
    items = list(best.values())
    d_order = sorted(range(len(items)), key=lambda i: (-items[i][1], -items[i][2]))
    b_order = sorted(range(len(items)), key=lambda i: (-items[i][2], -items[i][1]))
    e_order = sorted(range(len(items)), key=lambda i: (-items[i][3], -items[i][1]))
    d_rank = {i: r for r, i in enumerate(d_order)}
    b_rank = {i: r for r, i in enumerate(b_order)}
    e_rank = {i: r for r, i in enumerate(e_order)}
    doc_rank = {d: r for r, d in enumerate(sorted(doc_score, key=lambda d: -doc_score[d]))}
    per_doc: dict[str, int] = {}
    for row, *_ in items:
        d = data.chunks[row].doc_id
        per_doc[d] = per_doc.get(d, 0) + 1
    out = []
    for i, (row, ds, bs, es) in enumerate(items):
        ch = data.chunks[row]
        rrf = 1.0 / (RRF_K + d_rank[i] + 1) + (1.0 / (RRF_K + b_rank[i] + 1) if bs > 0 else 0.0)
        hit = Hit(ch, data.clauses[ch.clause_id], data.docs[ch.doc_id], rrf, d_rank[i], b_rank[i] if bs > 0 else None)
        out.append(Candidate(hit, float(ds), float(bs), d_rank[i], b_rank[i], rrf, doc_score.get(ch.doc_id, 0.0),
                             doc_rank.get(ch.doc_id, len(doc_rank)), per_doc[ch.doc_id],
                             title_scores.get(ch.doc_id, 0.0), float(es), e_rank[i]))
    out.sort(key=lambda c: -c.rrf)
    timings["fusion"] = (time.perf_counter() - t) * 1000
    return out, timings


def _rows(hits: list[tuple[int, float]]) -> np.ndarray:
    """The rows of a search's (row, score) hits, in order."""
    return np.asarray([r for r, _ in hits], dtype=np.int64)
