"""The search engine behind an index: the embedded store (FAISS + BM25) or Milvus, chosen by one setting.

Everything else speaks `IndexData` (documents, clauses, and chunks as rows 0..n-1 of
`data.chunks`); a `SearchBackend` answers every search the answer path makes over those rows:

    dense(query_vec, k, docs)           -> [(row, cosine)], best first
    lexical(tokens, k, docs)            -> [(row, BM25 score)], best first
    score_rows(query_vec, tokens, rows) -> (cosines, BM25 scores) of given rows (the ranker's features)
    rows(docs)                          -> rows of documents

`docs` (doc_ids) restricts a search to those documents; None searches all. `LocalBackend`
searches the FAISS index and the BM25 postings assembled from the shards on load
(index/store.py); `MilvusBackend` (index/milvus_search.py) asks a Milvus collection, in this process
(Milvus Lite, `POLICYQA_MILVUS_URI=file.db`) or on a server (`http://host:19530`), and keeps
neither vectors nor postings in this process. Both score BM25 the project's way (index/bm25.py).
`load_search_index(settings)` loads the live generation with whichever the settings name, and
`index_publisher(settings)` is what a build hands the new generation to before it goes live.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from index.bm25 import top_indices

if TYPE_CHECKING:
    from index.settings import Settings
    from index.store import IndexData


class SearchBackend(Protocol):
    """The searches over one loaded generation's chunk rows."""

    name: str

    def dense(self, query_vec: np.ndarray, k: int, docs: list[str] | None = None,
              exact: bool = True) -> list[tuple[int, float]]:
        """The k rows nearest to a unit query vector (inner product), best first. With `exact` False
        an engine may give its own approximate order and scores (for a caller that rescores)."""

    def dense_each_doc(self, query_vec: np.ndarray, k: int, docs: list[str]) -> list[tuple[int, float]]:
        """The k rows nearest to the query within each of `docs` (a document with fewer gives all
        its rows), in the engine's own order and scores: one search per document, or one grouped search."""

    def lexical(self, tokens: list[str], k: int, docs: list[str] | None = None,
                weights: list[float] | None = None) -> list[tuple[int, float]]:
        """The k rows with the highest BM25 score for the query tokens (score > 0), best first;
        `weights` (one per token, default 1) scale each token's part of the score."""

    def score_rows(self, query_vec: np.ndarray | None, tokens: list[str], rows: np.ndarray,
                   weights: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(cosine, BM25 score) of each given row, float32; zeros without a vector or tokens."""

    def rows(self, docs: list[str] | None) -> np.ndarray | None:
        """Chunk rows of some documents (None: all)."""


def build_faiss(vectors: np.ndarray):
    """Inner-product FAISS index over the rows (cosine, since vectors are unit length).

    The rows are held as float16 (IndexScalarQuantizer QT_fp16): a brute-force scan is bound by
    memory bandwidth, and half the bytes halve it (4.8 -> 2.4 ms over 76k law chunks), while the
    top 100 agree with exact float32 search 99.96% of the time. The retriever rescores what it
    keeps against the float32 vectors, so the scores it reports are exact.
    """
    import faiss

    dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 1
    fi = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    if len(vectors):
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        fi.train(x)  # fp16 needs no statistics; this only marks the index trained
        fi.add(x)
    return fi


def rows_by_doc(chunks) -> dict[str, np.ndarray]:
    """doc_id -> its chunk rows: chunks of docs a, a, b -> {'a': [0, 1], 'b': [2]}."""
    rows = defaultdict(list)
    for i, ch in enumerate(chunks):
        rows[ch.doc_id].append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in rows.items()}


def select_rows(by_doc: dict[str, np.ndarray], docs: list[str] | None) -> np.ndarray | None:
    """The rows of some documents from `rows_by_doc` (None: all, no selection)."""
    if docs is None:
        return None
    parts = [by_doc[d] for d in docs if d in by_doc]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def contiguous_spans(by_doc: dict[str, np.ndarray]) -> dict[str, tuple[int, int]]:
    """(start, stop) of each document whose rows run without a gap: {'a': [0, 1], 'b': [2, 4]} -> {'a': (0, 2)}."""
    return {d: (int(r[0]), int(r[-1]) + 1) for d, r in by_doc.items()
            if len(r) and bool(np.all(np.diff(r) == 1))}


class RowMap:
    """Rows by document over one generation's chunks."""

    def __init__(self, chunks):
        self.n = len(chunks)
        self.by_doc = rows_by_doc(chunks)

    def rows(self, docs: list[str] | None) -> np.ndarray | None:
        """Chunk rows of some documents (None: all)."""
        return select_rows(self.by_doc, docs)


class LocalBackend(RowMap):
    """The embedded search: FAISS (float16, rescored exactly) and the project's BM25, in this process."""

    name = "local"

    def __init__(self, chunks, vectors: np.ndarray, faiss_index=None, bm25=None):
        super().__init__(chunks)
        self.vectors = vectors
        self.faiss_index = faiss_index
        self.bm25 = bm25
        self.spans = contiguous_spans(self.by_doc)

    def dense(self, query_vec: np.ndarray, k: int, docs: list[str] | None = None,
              exact: bool = True) -> list[tuple[int, float]]:
        q = np.asarray(query_vec, dtype=np.float32)
        rows = self.rows(docs)
        if k <= 0 or not self.n:
            return []
        if rows is None and self.faiss_index is not None:
            scores, ids = self.faiss_index.search(q.reshape(1, -1), min(k, self.n))
            keep = ids[0] >= 0
            if not exact:  # FAISS's own order and float16 scores
                return [(int(i), float(s)) for i, s in zip(ids[0][keep], scores[0][keep])]
            ids = ids[0][keep]
            exact_scores = self.vectors[ids] @ q  # FAISS holds float16; score the kept rows exactly
            order = np.argsort(-exact_scores, kind="stable")
            return [(int(ids[i]), float(exact_scores[i])) for i in order]
        rows = np.arange(self.n) if rows is None else rows
        # one document whose chunks lie together (as the store writes them, one shard a document)
        # is read as its block of `vectors`, not copied out row by row
        span = self.spans.get(docs[0]) if docs is not None and len(docs) == 1 else None
        sims = (self.vectors[span[0]:span[1]] if span else self.vectors[rows]) @ q
        return [(int(rows[i]), float(sims[i])) for i in top_indices(sims, k)]

    def dense_each_doc(self, query_vec: np.ndarray, k: int, docs: list[str]) -> list[tuple[int, float]]:
        return [hit for d in docs for hit in self.dense(query_vec, k, [d], exact=False)]

    def lexical(self, tokens: list[str], k: int, docs: list[str] | None = None,
                weights: list[float] | None = None) -> list[tuple[int, float]]:
        if not tokens or not self.n or self.bm25 is None or k <= 0:
            return []
        rows = self.rows(docs)
        mask = None
        if rows is not None:
            mask = np.zeros(self.n, dtype=bool)
            mask[rows] = True
        return self.bm25.top(tokens, k, mask, weights)

    def score_rows(self, query_vec: np.ndarray | None, tokens: list[str], rows: np.ndarray,
                   weights: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows, dtype=np.int64)
        dense = (self.vectors[rows] @ np.asarray(query_vec, dtype=np.float32)) if query_vec is not None \
            else np.zeros(len(rows), dtype=np.float32)
        lexical = self.bm25.scores_of(tokens, rows, weights) if (tokens and self.bm25 is not None) \
            else np.zeros(len(rows), dtype=np.float32)
        return dense, lexical


def load_search_index(settings: Settings, expect_embedder: str | None = None, progress: bool = False) -> IndexData:
    """The live generation of settings.index_dir, searched by the backend the settings name."""
    if settings.milvus_uri:
        from index.milvus_search import load_milvus_index

        return load_milvus_index(settings, expect_embedder, progress)
    from index.store import load_index

    return load_index(Path(settings.index_dir), expect_embedder=expect_embedder, progress=progress)


def index_publisher(settings: Settings):
    """What GenerationWriter.commit hands a new generation to before and after it goes live:
    None for the embedded store (the shards are all it needs), a MilvusPublisher for Milvus."""
    if not settings.milvus_uri:
        return None
    from index.milvus import MilvusPublisher

    return MilvusPublisher(settings.milvus_uri, Path(settings.index_dir))


def live_generation(index_dir: Path) -> str:
    """Name of the live generation ('' when none), for pickup checks: the one loading would load
    (index.store.current_generation: one small read of CURRENT, a listing only when it is lost)."""
    from index.store import current_generation

    gen = current_generation(Path(index_dir))
    return gen.name if gen is not None else ""
