"""Hybrid retrieval: exact clause lookup first, then dense + BM25 fused by reciprocal rank.

Both retrievers run on the OpenCC-normalised query, through the index's search backend
(`data.backend`: FAISS and the project's BM25, or Milvus; index/backend.py).
`PolicyRetriever` exposes the same search as a LangChain `BaseRetriever`.
"""
from __future__ import annotations

import time
from collections import defaultdict

import faiss
import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.asked_version import AskedVersion, Versions
from assistant.lookup import clause_ref_span, lookup_clauses, parse_clause_ref
from assistant.names import DocumentNames
from assistant.statutes import Statutes
from assistant.types import Hit
from index.lexical import tokenize
from index.lexicon import load_lexicon
from index.normalize import to_simplified
from index.settings import Settings
from index.store import IndexData
from index.versions import superseded

MODES = ("hybrid", "dense", "bm25")


class HybridRetriever:
    """Search over one loaded index; `timed_search` also returns its per-stage timings (ms)."""

    def __init__(self, data: IndexData, embedder, settings: Settings):
        self.data = data
        self.embedder = embedder
        self.settings = settings
        # queries come one at a time: a single FAISS thread avoids OpenMP hand-off costs (and
        # spinning against the embedder's own OpenMP threads): 14 ms -> 5 ms on the law index
        faiss.omp_set_num_threads(1)
        self.lexicon = lexicon = load_lexicon(settings.lexicon_dir or None)
        generic = lexicon.words("generic_name_bigrams")
        self.names = DocumentNames(list(data.docs.values()), generic)
        # lookups also read file names: 婚姻家庭编.md is the 民法典's book of that name
        self.file_names = DocumentNames(list(data.docs.values()), generic, file_names=True)
        # older versions of a regulation (index/versions.py) are searched only when a filter names them
        self.superseded = frozenset() if settings.search_superseded else frozenset(superseded(data.docs.values()))
        self.versions = Versions(data.docs.values(), lexicon)  # ... or when the question asks for one
        self.statutes = Statutes(list(data.docs.values()), lexicon)  # '合同法第五十二条' is not 劳动合同法's
        self._first_chunk_of_clause: dict[str, int] = {}
        for i, ch in enumerate(data.chunks):
            self._first_chunk_of_clause.setdefault(ch.clause_id, i)

    def lookup(self, query_norm: str, docs: list[str] | None = None, prefer_docs: list[str] | None = None,
               exclude: frozenset[str] = frozenset()) -> list[Hit]:
        """Hits for the clauses the question names exactly ("第七条", "二、(四)3"), best first;
        documents in `exclude` (superseded versions, unless the filter names them) are not looked in."""
        if not parse_clause_ref(query_norm, self.lexicon):
            return []  # most questions name no clause: no need to list the documents
        pool = [d for d in self.data.docs.values() if (not docs or d.doc_id in docs) and d.doc_id not in exclude]
        found = lookup_clauses(query_norm, pool, self.file_names, statutes=self.statutes, lexicon=self.lexicon)
        if prefer_docs and any(c.doc_id in prefer_docs for c in found):
            found = [c for c in found if c.doc_id in prefer_docs]  # the documents the conversation is about
        hits, seen = [], set()
        for clause in found:
            row = self._first_chunk_of_clause.get(clause.clause_id)
            chunk = self.data.chunks[row] if row is not None else self._chunk_covering(clause)
            if chunk is None or clause.clause_id in seen:
                continue
            seen.add(clause.clause_id)
            hits.append(Hit(chunk, clause, self.data.docs[clause.doc_id], 1.0, via="lookup"))
        return hits

    def unindexed_statute(self, query_norm: str) -> str:
        """The statute a clause reference is asked of by name when no indexed document has that name
        ('婚姻法第三十二条' -> '婚姻法'); '' otherwise."""
        span = clause_ref_span(query_norm, self.lexicon)
        named = self.statutes.named(query_norm[:span[0]]) if span else None
        return named[0] if named is not None and not named[1] else ""

    def dense(self, query_norm: str, k: int, docs: list[str] | None) -> tuple[list[tuple[int, float]], dict]:
        """(the k nearest chunks' (row, cosine), {'embed': ms, 'faiss': ms})."""
        t = time.perf_counter()
        q = self.embedder.embed_query_array(query_norm).astype(np.float32)
        t1 = time.perf_counter()
        out = self.data.backend.dense(q, k, docs or None)  # an empty filter means every document
        return out, {"embed": (t1 - t) * 1000, "faiss": (time.perf_counter() - t1) * 1000}

    def bm25(self, query_norm: str, k: int, docs: list[str] | None) -> tuple[list[tuple[int, float]], dict]:
        """(the k best chunks' (row, BM25), {'bm25': ms})."""
        t = time.perf_counter()
        tokens = tokenize(query_norm)
        out = self.data.backend.lexical(tokens, k, docs or None) if tokens else []
        return out, {"bm25": (time.perf_counter() - t) * 1000}

    def search(self, query: str, k: int | None = None, mode: str = "hybrid", docs: list[str] | None = None,
               prefer_docs: list[str] | None = None, lookup: bool = True) -> list[Hit]:
        """Best chunks for a query, one per clause, fused; exact clause lookups come first."""
        return self.timed_search(query, k, mode, docs, prefer_docs, lookup)[0]

    def timed_search(self, query: str, k: int | None = None, mode: str = "hybrid", docs: list[str] | None = None,
                     prefer_docs: list[str] | None = None, lookup: bool = True) -> tuple[list[Hit], dict]:
        """(search's hits, the milliseconds each stage took: normalize, embed, faiss, bm25, fusion)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        k = k or self.settings.top_k
        t = time.perf_counter()
        qn = to_simplified(query)
        timings = {"normalize": (time.perf_counter() - t) * 1000}
        hits: list[Hit] = []
        seen: set[str] = set()
        exclude = self.excluded(docs, self.asked_version(qn, docs))
        if lookup:
            for hit in self.lookup(qn, docs, prefer_docs, exclude):
                seen.add(hit.clause.clause_id)
                hits.append(hit)
        cand = max(self.settings.candidate_k, k * 3)
        dense, lexical = [], []
        if mode in ("hybrid", "dense"):
            dense, ms = self.dense(qn, cand, docs)
            timings.update(ms)
        if mode in ("hybrid", "bm25"):
            lexical, ms = self.bm25(qn, cand, docs)
            timings.update(ms)
        t = time.perf_counter()
        fused: dict[int, float] = defaultdict(float)
        d_rank = {row: r for r, (row, _) in enumerate(dense)}
        b_rank = {row: r for r, (row, _) in enumerate(lexical)}
        for ranking in (dense, lexical):
            for r, (row, _) in enumerate(ranking):
                fused[row] += 1.0 / (self.settings.rrf_k + r + 1)
        if prefer_docs:
            # a follow-up stays with the documents the conversation is about
            for row in fused:
                if self.data.chunks[row].doc_id in prefer_docs:
                    fused[row] *= 1.25
        order = sorted(fused, key=lambda r: -fused[r])
        for row in order:
            ch = self.data.chunks[row]
            if ch.clause_id in seen or ch.doc_id in exclude:
                continue
            seen.add(ch.clause_id)
            hits.append(Hit(ch, self.data.clauses[ch.clause_id], self.data.docs[ch.doc_id], fused[row],
                            d_rank.get(row), b_rank.get(row), via=mode))
            if len(hits) >= k + len([h for h in hits if h.via == "lookup"]):
                break
        timings["fusion"] = (time.perf_counter() - t) * 1000
        return hits, timings

    def asked_version(self, query_norm: str, docs: list[str] | None) -> AskedVersion | None:
        """The older version of a work the question asks for ('2017年版行政复议法'), unless a document
        filter decides."""
        if docs:
            return None
        return self.versions.asked(query_norm, lambda text: [[d.doc_id for d in g] for g in self.names.near_best(text)])

    def excluded(self, docs: list[str] | None, version: AskedVersion | None = None) -> frozenset[str]:
        """The documents a search leaves out: the superseded versions, unless the filter names one;
        with a version asked for, the other versions of its work instead of that one."""
        if docs and any(d in self.superseded for d in docs):
            return frozenset()
        if version is not None:
            return (self.superseded - {version.doc_id}) | version.others
        return self.superseded

    def _chunk_covering(self, clause):
        """The chunk whose span contains a clause that has no chunk of its own (a 款 inside an article)."""
        for ch in self.data.chunks:
            if ch.doc_id == clause.doc_id and ch.start <= clause.start < ch.end:
                return ch
        return None


class PolicyRetriever(BaseRetriever):
    """LangChain adapter: `PolicyRetriever(retriever=HybridRetriever(...)).invoke("问题")`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    retriever: HybridRetriever
    k: int = 5
    mode: str = "hybrid"
    docs: list[str] | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        out = []
        for h in self.retriever.search(query, k=self.k, mode=self.mode, docs=self.docs):
            out.append(LCDocument(page_content=h.clause.text, metadata={
                "doc_id": h.doc.doc_id, "source": h.doc.source, "title": h.doc.title, "label": h.clause.label,
                "path": list(h.clause.path), "clause_id": h.clause.clause_id, "score": h.score, "via": h.via}))
        return out
