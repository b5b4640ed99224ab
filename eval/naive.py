"""The naive baseline: fixed-size chunks, no clause structure, top chunk as the answer.

What a first LangChain RAG over the same documents looks like: the documents' text split by
`RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)` (default separators), every
chunk embedded with the same embedder as the shipped system, a FAISS flat inner-product index,
and the top k chunks for a question. It never abstains and ignores the conversation history.
Its answer is the first sentences of the top chunk; its citations are the top chunks themselves,
labelled 'chunk N' (N counts the chunks of that document from 1) and quoting the whole chunk.

The text split is each document's cleaned text (the text the clause parser reads: encoding fixed,
page markers and pinyin glosses removed), so the comparison isolates what clause structure buys.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from index.embed import make_embedder
from index.normalize import detect_script
from index.pipeline import discover_files, parse_document
from index.settings import Settings

CHUNK_SIZE = 500
CHUNK_OVERLAP = 50
SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")


@dataclass(frozen=True)
class NaiveChunk:
    """One fixed-size piece of a document: 'chunk 3' of doc 001_..."""

    doc_id: str
    title: str
    n: int  # 1-based position among the chunks of its document
    text: str

    @property
    def label(self) -> str:
        return f"chunk {self.n}"


def first_sentences(text: str, n: int = 2) -> str:
    """The first n sentences: '甲。乙！丙。' -> '甲。乙！' (n=2)."""
    return "".join(s.strip() for s in SENTENCE.findall(text)[:n] if s.strip())


class NaiveRAG:
    """Fixed-size chunk retrieval over the corpus; `ask` returns the batch contract of Answer.to_json()."""

    def __init__(self, settings: Settings, embedder=None, k: int = 10, cite: int = 3):
        from langchain_text_splitters import RecursiveCharacterTextSplitter
        import faiss

        if cite > k:
            raise ValueError(f"cite must be at most k, got cite={cite} and k={k}")
        self.embedder = embedder or make_embedder(settings.embedder, settings.embed_batch_size)
        self.k, self.cite = k, cite
        splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
        self.chunks: list[NaiveChunk] = []
        for path, doc_id in discover_files([settings.corpus_dir]):
            doc = parse_document(path, doc_id, path.read_bytes())
            for i, piece in enumerate(splitter.split_text(doc.text), 1):
                self.chunks.append(NaiveChunk(doc_id, doc.title, i, piece))
        vectors = self.embedder.embed_array([c.text for c in self.chunks]).astype(np.float32)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(np.ascontiguousarray(vectors))

    def search(self, question: str) -> tuple[list[NaiveChunk], dict]:
        """(the top k chunks by inner product with the question's embedding, {'embed': ms, 'faiss': ms})."""
        t = time.perf_counter()
        q = self.embedder.embed_query_array(question).astype(np.float32).reshape(1, -1)
        t1 = time.perf_counter()
        _, ids = self.index.search(q, min(self.k, len(self.chunks)))
        timings = {"embed": (t1 - t) * 1000, "faiss": (time.perf_counter() - t1) * 1000}
        return [self.chunks[i] for i in ids[0] if i >= 0], timings

    def ask(self, question: str, history: list[dict] | None = None) -> tuple[dict, list[str]]:
        """(answer row in the batch contract, retrieved chunk texts best first); history is ignored."""
        t0 = time.perf_counter()
        top, timings = self.search(question)
        t = time.perf_counter()
        citations = [{"n": i, "doc_id": c.doc_id, "source": "", "title": c.title, "label": c.label, "path": [],
                      "quote": c.text, "text": c.text} for i, c in enumerate(top[:self.cite], 1)]
        text = first_sentences(top[0].text) + "[1]" if top else ""
        timings["answer"] = (time.perf_counter() - t) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        row = {"question": question, "answer": text, "abstained": False, "rewritten_query": question,
               "citations": citations, "related": [], "notices": [], "script": detect_script(question), "mode": "naive",
               "timings_ms": {k: round(v, 2) for k, v in timings.items()}}
        return row, [c.text for c in top]
