"""Searching an index's Milvus collection (index/milvus.py): `MilvusBackend` and `load_milvus_index`.

Every search of the answer path goes to Milvus (index/backend.py, SearchBackend): dense (HNSW),
BM25 (sparse inner product of the query's idf with the rows' document weights), both with a
document filter as a `doc_id in [...]` expression, and the exact scores of given rows (their
vectors and term weights read by primary key). This process keeps no vectors and no BM25
postings: only the documents, clauses and chunks (the texts the answer quotes and the ranker
reads), the vocabulary with document frequencies (`TermStats`: idf, the question's term
weights) and per-row maps (document, version).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from index.backend import RowMap
from index.bm25 import TermStats, unit_weights
from index.errors import MilvusUnavailable
from index.milvus import MAX_ROUNDS, MIN_EF, MilvusStore, _quote, row_version, term_id


class MilvusBackend(RowMap):
    """Dense (HNSW) and BM25 (sparse inner product) search in one index's Milvus collection; the
    vectors and term weights stay in Milvus, `stats` (idf) and the row maps in this process."""

    name = "milvus"

    def __init__(self, store: MilvusStore, gen: Path, manifest: dict, chunks, stats: TermStats):
        super().__init__(chunks)
        self.store = store
        self.stats = stats
        self.base: dict[str, int] = {}  # version -> the row of its first chunk
        for doc_id, entry in manifest.get("docs", {}).items():
            if doc_id in self.by_doc and len(self.by_doc[doc_id]):
                self.base[row_version(gen, entry)] = int(self.by_doc[doc_id][0])
        order = sorted(self.base.items(), key=lambda kv: kv[1])
        self.versions = [v for v, _ in order]
        self.firsts = np.asarray([r for _, r in order], dtype=np.int64)

    def dense(self, query_vec: np.ndarray, k: int, docs: list[str] | None = None,
              exact: bool = True) -> list[tuple[int, float]]:
        """Milvus's HNSW order and float32 inner products: approximate, whatever `exact` asks."""
        params = {"metric_type": "IP", "params": {"ef": max(k, MIN_EF)}}
        return self._search("vector", [np.asarray(query_vec, dtype=np.float32).tolist()], k, docs, params)

    def dense_each_doc(self, query_vec: np.ndarray, k: int, docs: list[str]) -> list[tuple[int, float]]:
        """One grouped search (group_by_field doc_id, group_size k) instead of one search per document."""
        if k <= 0:  # a group size of 0 would mean no grouping: len(docs) rows of any documents
            return []
        params = {"metric_type": "IP", "params": {"ef": max(k * len(docs), MIN_EF)}}
        return self._search("vector", [np.asarray(query_vec, dtype=np.float32).tolist()], len(docs), docs, params,
                            group_size=k)

    def lexical(self, tokens: list[str], k: int, docs: list[str] | None = None,
                weights: list[float] | None = None) -> list[tuple[int, float]]:
        query: dict[int, float] = {}
        for t, w in zip(tokens, weights or unit_weights(len(tokens))):
            idf = self.stats.idf(t)
            if idf is not None:
                query[term_id(t)] = query.get(term_id(t), 0.0) + idf * w  # a repeated token counts again
        if not query:
            return []
        hits = self._search("terms", [query], k, docs, {"metric_type": "IP"})
        # best first, equal scores by row: Milvus leaves their order open
        return sorted(((r, s) for r, s in hits if s > 0), key=lambda h: (-h[1], h[0]))

    def score_rows(self, query_vec: np.ndarray | None, tokens: list[str], rows: np.ndarray,
                   weights: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fetches the rows' vectors and term weights and scores them here, as LocalBackend does
        (the BM25 sums in float32, token by token)."""
        rows = np.asarray(rows, dtype=np.int64)
        query = [(term_id(t), np.float32(idf) * np.float32(w))
                 for t, w in zip(tokens, weights or unit_weights(len(tokens))) if (idf := self.stats.idf(t)) is not None]
        fields = (["vector"] if query_vec is not None else []) + (["terms"] if query else [])
        dense = np.zeros(len(rows), dtype=np.float32)
        lexical = np.zeros(len(rows), dtype=np.float32)
        if not len(rows) or not fields:
            return dense, lexical
        got = self.fetch(rows, fields)
        if query_vec is not None:
            dense = np.asarray([got[r]["vector"] for r in rows.tolist()], dtype=np.float32) @ \
                np.asarray(query_vec, dtype=np.float32)
        for tid, idf in query:
            lexical += idf * np.asarray([got[r]["terms"].get(tid, 0.0) for r in rows.tolist()], dtype=np.float32)
        return dense, lexical

    def fetch(self, rows: np.ndarray, fields: list[str]) -> dict[int, dict]:
        """{row: {field: value}} of some of this generation's rows, read from Milvus by primary key."""
        at = np.searchsorted(self.firsts, rows, side="right") - 1
        pks = {f"{self.versions[a]}:{r - self.firsts[a]}": r for r, a in zip(rows.tolist(), at.tolist())}
        got: dict[int, dict] = {}
        keys = list(pks)
        for i in range(0, len(keys), 1000):
            part = keys[i:i + 1000]
            for rec in self.store.call("read rows", self.store.client.query, self.store.name,
                                       filter=f"pk in {_quote(part)}", output_fields=fields, limit=len(part)):
                got[pks[rec["pk"]]] = rec
        if len(got) < len(pks):
            raise MilvusUnavailable(f"Milvus collection {self.store.name} at {self.store.uri} lacks {len(pks) - len(got)} "
                                    f"rows of the loaded index generation (superseded since it was loaded); "
                                    f"the next question loads the live one")
        return got

    def _search(self, field: str, data: list, k: int, docs: list[str] | None, params: dict,
                group_size: int = 0) -> list[tuple[int, float]]:
        """The k best rows, or with `group_size` the group_size best of each of k documents."""
        if k <= 0 or (docs is not None and not docs):
            return []
        grouping = {"group_by_field": "doc_id", "group_size": group_size} if group_size else {}
        wanted = k * max(group_size, 1)
        skip: list[str] = []
        out: list[tuple[int, float]] = []
        for _ in range(MAX_ROUNDS):
            parts = ([f"doc_id in {_quote(docs)}"] if docs is not None else []) + (
                [f"version not in {_quote(skip)}"] if skip else [])
            hits = self.store.call("search", self.store.client.search, self.store.name, data=data, anns_field=field,
                                   limit=k, filter=" and ".join(parts), search_params=params,
                                   output_fields=["pk"], **grouping)[0]
            out, stale = [], set()
            for h in hits:
                version, _, i = str(h["pk"]).rpartition(":")
                if version in self.base:
                    out.append((self.base[version] + int(i), float(h["distance"])))
                else:
                    stale.add(version)
            if not stale or len(hits) < wanted:
                break
            skip.extend(stale)
        return out


def load_milvus_index(settings, expect_embedder: str | None = None, progress: bool = False):
    """The live generation of settings.index_dir with Milvus answering its searches (rows the
    collection lacks are written first); raises IndexMismatch for a collection of another embedder.
    Neither the vectors nor the BM25 postings are kept in this process."""
    from index.store import load_index

    data = load_index(Path(settings.index_dir), expect_embedder=expect_embedder, progress=progress,
                      search_structures=False)
    gen, embedder, dim = Path(data.location), data.embedder_name, int(data.manifest.get("dim") or 0)
    store = MilvusStore(settings.milvus_uri, Path(settings.index_dir))
    store.open(embedder, dim)
    store.sync(gen, data.manifest, data.bm25)
    return replace(data, backend=MilvusBackend(store, gen, data.manifest, data.chunks, data.bm25))
