"""BM25 over term counts that are stored per document, so an index update never re-tokenizes.

Scores are Okapi BM25 as Lucene computes them (the bm25s default, which the tests check
against): for a chunk d and a query token t,

    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score    = sum over query tokens of idf(t) * tf / (tf + k1 * (1 - b + b * len(d) / avglen))

Only raw counts are persisted (a shard's `terms` plus (chunk, term, count) triples); idf and
length normalisation depend on the whole collection and are computed when the index loads,
in a few vectorised passes.

>>> bm = BM25.from_token_lists([["养老", "保险"], ["工伤", "保险", "保险"]])
>>> [row for row, _ in bm.top(["工伤"], k=2)]
[1]
"""
from __future__ import annotations

import numpy as np


def count_terms(token_lists: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """Local vocabulary and (chunk, term, count) triples of some chunks' tokens.

    [["a", "b", "a"], ["b"]] -> (["a", "b"], [[0, 0, 2], [0, 1, 1], [1, 1, 1]])
    """
    vocab: dict[str, int] = {}
    rows: list[tuple[int, int, int]] = []
    for i, toks in enumerate(token_lists):
        counts: dict[int, int] = {}
        for t in toks:
            j = vocab.setdefault(t, len(vocab))
            counts[j] = counts.get(j, 0) + 1
        rows.extend((i, j, c) for j, c in counts.items())
    triples = np.asarray(rows, dtype=np.int32).reshape(-1, 3)
    return list(vocab), triples


class BM25:
    """Term -> postings matrix with precomputed BM25 weights; `top()` answers one query."""

    def __init__(self, vocab: dict[str, int], rows: np.ndarray, terms: np.ndarray, counts: np.ndarray,
                 n_docs: int, k1: float = 1.5, b: float = 0.75):
        """rows/terms/counts: one entry per (chunk, term) pair; terms index into `vocab`."""
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"k1 must be >= 0 and b in [0, 1], got k1={k1}, b={b}")
        self.vocab = vocab
        self.n_docs = int(n_docs)
        rows = np.asarray(rows, dtype=np.int64)
        terms = np.asarray(terms, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.float32)
        lengths = np.bincount(rows, weights=counts, minlength=self.n_docs).astype(np.float32)
        avg = float(lengths.mean()) if self.n_docs and lengths.sum() else 1.0
        self.df = np.bincount(terms, minlength=len(vocab)).astype(np.int64)
        idf = np.log1p((self.n_docs - self.df + 0.5) / (self.df + 0.5)).astype(np.float32)
        weights = idf[terms] * counts / (counts + k1 * (1 - b + b * lengths[rows] / avg))
        order = np.argsort(terms, kind="stable")
        self.indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(self.df, out=self.indptr[1:])
        self.doc_ids = rows[order].astype(np.int32)
        self.weights = weights[order].astype(np.float32)

    @classmethod
    def from_token_lists(cls, token_lists: list[list[str]], **kw) -> "BM25":
        terms, triples = count_terms(token_lists)
        return cls({t: i for i, t in enumerate(terms)}, triples[:, 0], triples[:, 1], triples[:, 2],
                   len(token_lists), **kw)

    def doc_freq(self, token: str) -> int:
        j = self.vocab.get(token)
        return int(self.df[j]) if j is not None else 0

    def scores(self, tokens: list[str]) -> np.ndarray:
        """(n_docs,) scores; a repeated query token counts again, an unknown one not at all."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        for t in tokens:
            j = self.vocab.get(t)
            if j is not None:
                s, e = self.indptr[j], self.indptr[j + 1]
                out[self.doc_ids[s:e]] += self.weights[s:e]  # doc ids are unique within a term
        return out

    def top(self, tokens: list[str], k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Best k (row, score) pairs with score > 0; `mask` (bool, n_docs) restricts the rows."""
        scores = self.scores(tokens)
        if mask is not None:
            scores[~mask] = 0
        k = min(k, self.n_docs)
        if k <= 0:
            return []
        cand = np.argpartition(-scores, k - 1)[:k] if k < self.n_docs else np.arange(self.n_docs)
        cand = cand[np.argsort(-scores[cand], kind="stable")]
        return [(int(i), float(scores[i])) for i in cand if scores[i] > 0]
