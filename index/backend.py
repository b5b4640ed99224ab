"""The search engine behind an index: the embedded store (FAISS + BM25) or Milvus, chosen by one setting.

Everything else speaks `IndexData` (documents, clauses, and chunks as rows 0..n-1 of
`data.chunks`); a `SearchBackend` answers the two first-stage searches over those rows:

    dense(query_vec, k, docs)   -> [(row, cosine)], best first
    lexical(tokens, k, docs)    -> [(row, BM25 score)], best first

`docs` (doc_ids) restricts a search to those documents; None searches all. `LocalBackend`
searches the FAISS index and the BM25 term counts assembled from the shards on load
(index/store.py); `MilvusBackend` (index/milvus.py) asks a Milvus collection, in this process
(Milvus Lite, `POLICYQA_MILVUS_URI=file.db`) or on a server (`http://host:19530`).
`load_search_index(settings)` loads the live generation with whichever the settings name, and
`index_publisher(settings)` is what a build hands the new generation to before it goes live.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from index.settings import Settings
    from index.store import IndexData


class SearchBackend(Protocol):
    """The first-stage searches over one loaded generation's chunk rows."""

    name: str

    def dense(self, query_vec: np.ndarray, k: int, docs: list[str] | None = None) -> list[tuple[int, float]]:
        """The k rows nearest to a unit query vector (inner product), best first."""

    def lexical(self, tokens: list[str], k: int, docs: list[str] | None = None) -> list[tuple[int, float]]:
        """The k rows with the highest BM25 score for the query tokens (score > 0), best first."""


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


class LocalBackend:
    """Today's embedded search: FAISS (float16, rescored exactly) and the project's BM25."""

    name = "local"

    def __init__(self, chunks, vectors: np.ndarray, faiss_index=None, bm25=None):
        self.n = len(chunks)
        self.vectors = vectors
        self.faiss_index = faiss_index
        self.bm25 = bm25
        self.by_doc = rows_by_doc(chunks)

    def rows(self, docs: list[str] | None) -> np.ndarray | None:
        """Chunk rows of some documents (None: all)."""
        return select_rows(self.by_doc, docs)

    def dense(self, query_vec: np.ndarray, k: int, docs: list[str] | None = None) -> list[tuple[int, float]]:
        q = np.asarray(query_vec, dtype=np.float32)
        rows = self.rows(docs)
        if k <= 0 or not self.n:
            return []
        if rows is None and self.faiss_index is not None:
            _, ids = self.faiss_index.search(q.reshape(1, -1), min(k, self.n))
            ids = ids[0][ids[0] >= 0]
            exact = self.vectors[ids] @ q  # FAISS holds float16; score the kept rows exactly
            order = np.argsort(-exact, kind="stable")
            return [(int(ids[i]), float(exact[i])) for i in order]
        rows = np.arange(self.n) if rows is None else rows
        sims = self.vectors[rows] @ q
        top = np.argsort(-sims, kind="stable")[:k]
        return [(int(rows[i]), float(sims[i])) for i in top]

    def lexical(self, tokens: list[str], k: int, docs: list[str] | None = None) -> list[tuple[int, float]]:
        if not tokens or not self.n or self.bm25 is None or k <= 0:
            return []
        rows = self.rows(docs)
        mask = None
        if rows is not None:
            mask = np.zeros(self.n, dtype=bool)
            mask[rows] = True
        return self.bm25.top(tokens, k, mask)


class DenseSearchIndex:
    """A backend's dense search behind FAISS's `search(queries, k) -> (scores, rows)`, for code that
    calls `data.faiss_index` directly (assistant/candidates.py); missing places hold row -1."""

    def __init__(self, backend: SearchBackend, n: int):
        self.backend = backend
        self.ntotal = n

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for i, q in enumerate(queries):
            for j, (row, score) in enumerate(self.backend.dense(q, k)[:k]):
                ids[i, j], scores[i, j] = row, score
        return scores, ids


def load_search_index(settings: Settings, expect_embedder: str | None = None, progress: bool = False) -> IndexData:
    """The live generation of settings.index_dir, searched by the backend the settings name."""
    if settings.milvus_uri:
        from index.milvus import load_milvus_index

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
    """Name of the generation CURRENT points at ('' when none): one small read, for pickup checks."""
    try:
        return (Path(index_dir) / "CURRENT").read_text(encoding="utf-8").strip()
    except OSError:
        return ""
