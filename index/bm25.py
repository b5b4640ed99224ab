"""BM25 over term counts that are stored per document, so an index update never re-tokenizes.

Scores are Okapi BM25 as Lucene computes them (the bm25s default, which the tests check
against): for a chunk d and a query token t,

    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score    = sum over query tokens of idf(t) * tf / (tf + k1 * (1 - b + b * len(d) / avglen))

Only raw counts are persisted (a shard's `terms` plus (chunk, term, count) triples); idf and
length normalisation depend on the whole collection and are computed when the index loads,
in a few vectorised passes. `TermStats` is that collection knowledge without the postings
(vocabulary, document frequencies, mean length): what a search engine holding the postings
itself (index/milvus.py) needs from this process, splitting each weight into a query side
(idf) and a document side (`doc_weights`: tf / (tf + k1 * (...)), no collection statistics but
the mean length).

>>> bm = BM25.from_token_lists([["养老", "保险"], ["工伤", "保险", "保险"]])
>>> [row for row, _ in bm.top(["工伤"], k=2)]
[1]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K1, B = 1.5, 0.75  # BM25 saturation and length normalisation (bm25s's defaults)


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


def unit_weights(n: int) -> list[float]:
    """The default query-token weights: [1.0] * n."""
    return [1.0] * n


class BM25:
    """Term -> postings matrix with precomputed BM25 weights; `top()` answers one query."""

    def __init__(self, vocab: dict[str, int], rows: np.ndarray, terms: np.ndarray, counts: np.ndarray,
                 n_docs: int, k1: float = K1, b: float = B):
        """rows/terms/counts: one entry per (chunk, term) pair; terms index into `vocab`."""
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"k1 must be >= 0 and b in [0, 1], got k1={k1}, b={b}")
        self.vocab = vocab
        self.n_docs = int(n_docs)
        self.k1, self.b = k1, b
        rows = np.asarray(rows, dtype=np.int64)
        terms = np.asarray(terms, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.float32)
        lengths = np.bincount(rows, weights=counts, minlength=self.n_docs).astype(np.float32)
        self.avglen = mean_length(lengths)
        self.df = np.bincount(terms, minlength=len(vocab)).astype(np.int64)
        idf = np.log1p((self.n_docs - self.df + 0.5) / (self.df + 0.5)).astype(np.float32)
        weights = idf[terms] * counts / (counts + k1 * (1 - b + b * lengths[rows] / self.avglen))
        # postings by term, each term's rows ascending (scores_of looks rows up by bisection); the
        # triples come in row order from count_terms and the shards, so a stable sort by term suffices
        ascending = not len(rows) or bool(np.all(rows[1:] >= rows[:-1]))
        order = np.argsort(terms, kind="stable") if ascending else np.lexsort((rows, terms))
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

    @property
    def stats(self) -> TermStats:
        """The collection statistics without the postings."""
        return TermStats(self.vocab, self.df, self.n_docs, self.avglen, self.k1, self.b)

    def scores(self, tokens: list[str], weights: list[float] | None = None) -> np.ndarray:
        """(n_docs,) scores; a repeated query token counts again, an unknown one not at all.
        `weights` (one per token, default 1) scale each token's contribution."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        for t, w in zip(tokens, weights or unit_weights(len(tokens))):
            j = self.vocab.get(t)
            if j is not None:
                s, e = self.indptr[j], self.indptr[j + 1]
                part = self.weights[s:e]
                out[self.doc_ids[s:e]] += part if w == 1 else part * np.float32(w)  # doc ids are unique within a term
        return out

    def scores_of(self, tokens: list[str], rows: np.ndarray, weights: list[float] | None = None) -> np.ndarray:
        """scores(tokens, weights)[rows], computed for those rows only: the same float32 sums, bit for bit."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float32)
        for t, w in zip(tokens, weights or unit_weights(len(tokens))) if len(rows) else ():
            j = self.vocab.get(t)
            if j is not None:
                ids = self.doc_ids[self.indptr[j]:self.indptr[j + 1]]
                at = np.minimum(np.searchsorted(ids, rows), len(ids) - 1)
                hit = ids[at] == rows
                part = self.weights[self.indptr[j] + at[hit]]
                out[hit] += part if w == 1 else part * np.float32(w)
        return out

    def top(self, tokens: list[str], k: int, mask: np.ndarray | None = None,
            weights: list[float] | None = None) -> list[tuple[int, float]]:
        """Best k (row, score) pairs with score > 0; `mask` (bool, n_docs) restricts the rows."""
        scores = self.scores(tokens, weights)
        if mask is not None:
            scores[~mask] = 0
        # only rows holding a query word can rank: selecting among them, not all 76k law chunks,
        # saves about 0.4 ms a search (argpartition's cost grows with the rows it reads)
        scored = np.flatnonzero(scores > 0)
        return [(int(scored[i]), float(scores[scored[i]])) for i in top_indices(scores[scored], k)]


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first, of equal scores the lower index first (also
    where only some of them fit): [0.1, 0.9, 0.5, 0.9], 2 -> [1, 3]; [0.5, 0.2, 0.2], 2 -> [0, 1]."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(scores):
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]  # the k-th largest score
        above = np.flatnonzero(scores > kth)
        idx = np.sort(np.concatenate([above, np.flatnonzero(scores == kth)[: k - len(above)]]))
    else:
        idx = np.arange(len(scores))
    return idx[np.argsort(-scores[idx], kind="stable")].astype(np.int64)


def chunk_lengths(postings: np.ndarray, n_chunks: int) -> np.ndarray:
    """(n_chunks,) float32 token counts of a shard's chunks from its (chunk, term, count) triples:
    [[0, 5, 2], [0, 7, 1], [2, 5, 1]], 3 -> [3, 0, 1]."""
    post = np.asarray(postings, dtype=np.int64).reshape(-1, 3)
    return np.bincount(post[:, 0], weights=post[:, 2], minlength=n_chunks).astype(np.float32)


def mean_length(lengths: np.ndarray) -> float:
    """The mean of (float32) chunk lengths as BM25 uses it; 1.0 for an empty collection."""
    return float(lengths.mean()) if len(lengths) and lengths.sum() else 1.0


@dataclass(frozen=True)
class TermStats:
    """A collection's vocabulary, document frequencies, size and mean chunk length: BM25 without postings.

    score(row) = sum over query tokens t of idf(t) * doc_weights(row)[t], as in BM25 above.
    """

    vocab: dict[str, int]
    df: np.ndarray  # (len(vocab),) chunks holding each term
    n_docs: int
    avglen: float
    k1: float = K1
    b: float = B

    def doc_freq(self, token: str) -> int:
        j = self.vocab.get(token)
        return int(self.df[j]) if j is not None else 0

    def idf(self, token: str) -> float | None:
        """BM25's idf of a token as float32 (None: not in the collection, it scores nothing)."""
        df = self.doc_freq(token)
        return float(np.float32(np.log1p((self.n_docs - df + 0.5) / (df + 0.5)))) if df else None

    def doc_weights(self, counts: np.ndarray, length: float, avglen: float | None = None) -> np.ndarray:
        """The document side of one chunk's BM25 weights: counts / (counts + k1 * (1 - b + b * length / avglen)).

        >>> [round(w, 3) for w in TermStats({}, np.zeros(0), 2, 2.0).doc_weights(np.array([1, 2]), 2.0).tolist()]
        [0.4, 0.571]
        """
        counts = np.asarray(counts, dtype=np.float32)
        length = np.float32(length)
        return counts / (counts + self.k1 * (1 - self.b + self.b * length / (avglen or self.avglen)))


class StatsBuilder:
    """TermStats gathered shard by shard (index/store.py loading for Milvus), keeping no postings."""

    def __init__(self, k1: float = K1, b: float = B):
        self.k1, self.b = k1, b
        self.vocab: dict[str, int] = {}
        self.df = np.zeros(1024, dtype=np.int64)
        self.lengths: list[np.ndarray] = []

    def add(self, terms: list[str], postings: np.ndarray, n_chunks: int):
        """One shard: its vocabulary and (chunk, term, count) triples over its n_chunks chunks."""
        ids = np.fromiter((self.vocab.setdefault(t, len(self.vocab)) for t in terms), dtype=np.int64, count=len(terms))
        if len(self.vocab) > len(self.df):
            self.df = np.concatenate([self.df, np.zeros(max(len(self.vocab), 2 * len(self.df)) - len(self.df), np.int64)])
        post = np.asarray(postings, dtype=np.int64).reshape(-1, 3)
        np.add.at(self.df, ids[post[:, 1]], 1)
        self.lengths.append(chunk_lengths(post, n_chunks))

    def build(self) -> TermStats:
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.float32)
        return TermStats(self.vocab, self.df[:len(self.vocab)].copy(), len(lengths), mean_length(lengths),
                         self.k1, self.b)
