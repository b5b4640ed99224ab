"""The persisted index: documents and clauses, chunks, vectors (FAISS) and BM25, plus a manifest.

Layout of an index directory::

    CURRENT              name of the live generation, replaced atomically (os.replace)
    gen-<stamp>/         one complete, immutable build
        manifest.json    format, embedder name and dim, settings, each document's sha256
        docs.jsonl       one document per line with its metadata and clauses
        chunks.jsonl     one chunk per line with its BM25 tokens
        vectors.npy      (n_chunks, dim) float32, row i = chunk i
        faiss.index      inner-product index over vectors.npy
        bm25/            bm25s index over the chunk tokens

A build writes a new generation beside the live one and only then points CURRENT at it,
so an interrupted build never leaves a half-written index that later loads.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import orjson

from index.errors import IndexCorrupted, IndexMismatch, IndexNotBuilt
from index.types import Chunk, Clause, Document, DocumentMeta

FORMAT_VERSION = 1


@dataclass
class IndexData:
    """Everything retrieval needs, in memory."""

    manifest: dict
    docs: dict[str, Document]
    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: np.ndarray  # (n_chunks, dim) float32
    faiss_index: object = None
    bm25: object = None
    clauses: dict[str, Clause] = field(default_factory=dict)
    location: str = ""

    def __post_init__(self):
        if not self.clauses:
            self.clauses = {c.clause_id: c for d in self.docs.values() for c in d.clauses}

    @property
    def embedder_name(self) -> str:
        return self.manifest.get("embedder", "")


def build_search_structures(vectors: np.ndarray, tokens: list[list[str]]):
    """(faiss index, bm25 index) over the given rows."""
    import bm25s
    import faiss

    dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 1
    fi = faiss.IndexFlatIP(dim)
    if len(vectors):
        fi.add(np.ascontiguousarray(vectors, dtype=np.float32))
    bm = bm25s.BM25()
    bm.index([t or ["\u2400"] for t in tokens] or [["\u2400"]], show_progress=False)
    return fi, bm


def _doc_to_json(doc: Document) -> dict:
    d = {
        "doc_id": doc.doc_id, "source": doc.source, "path": doc.path, "sha256": doc.sha256,
        "meta": asdict(doc.meta), "text": doc.text, "norm_text": doc.norm_text, "script": doc.script,
        "warnings": list(doc.warnings), "clauses": [c.to_json() for c in doc.clauses],
    }
    return d


def _doc_from_json(d: dict) -> Document:
    clauses = tuple(Clause(**{**c, "path": tuple(c["path"]), "headings": tuple(c["headings"])}) for c in d["clauses"])
    return Document(d["doc_id"], d["source"], d["path"], d["sha256"], DocumentMeta(**d["meta"]), d["text"],
                    d["norm_text"], d["script"], clauses, tuple(d["warnings"]))


def current_generation(index_dir: Path) -> Path | None:
    """The live generation directory, or None if no complete build exists."""
    pointer = Path(index_dir) / "CURRENT"
    if not pointer.exists():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    gen = Path(index_dir) / name
    return gen if name and gen.is_dir() else None


def save_index(index_dir: Path, data: IndexData) -> Path:
    """Write `data` as a new generation and make it live atomically; returns its directory."""
    import faiss

    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}"
    tmp = index_dir / f".building-{stamp}"
    tmp.mkdir()
    try:
        # JSON lines, UTF-8, readable with any tool; orjson only makes them fast to write and read
        with open(tmp / "docs.jsonl", "wb") as f:
            for doc in data.docs.values():
                f.write(orjson.dumps(_doc_to_json(doc)) + b"\n")
        with open(tmp / "chunks.jsonl", "wb") as f:
            for ch, toks in zip(data.chunks, data.tokens):
                f.write(orjson.dumps({"chunk_id": ch.chunk_id, "doc_id": ch.doc_id, "clause_id": ch.clause_id,
                                     "text": ch.text, "norm_text": ch.norm_text, "embed_text": ch.embed_text,
                                     "start": ch.start, "end": ch.end, "tokens": toks}) + b"\n")
        np.save(tmp / "vectors.npy", data.vectors)
        faiss.write_index(data.faiss_index, str(tmp / "faiss.index"))
        data.bm25.save(str(tmp / "bm25"), show_progress=False)
        manifest = dict(data.manifest, format=FORMAT_VERSION, n_chunks=len(data.chunks),
                        dim=int(data.vectors.shape[1]) if data.vectors.ndim == 2 else 0)
        # the manifest is written last: a generation without one is incomplete
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        gen = index_dir / f"gen-{stamp}"
        os.replace(tmp, gen)
        pointer_tmp = index_dir / f".CURRENT-{stamp}"
        pointer_tmp.write_text(gen.name, encoding="utf-8")
        with open(pointer_tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(pointer_tmp, index_dir / "CURRENT")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    data.manifest = manifest
    data.location = str(gen)
    for old in index_dir.iterdir():
        if old.is_dir() and old.name.startswith(("gen-", ".building-")) and old != gen:
            shutil.rmtree(old, ignore_errors=True)
    return gen


def load_index(index_dir: Path, expect_embedder: str | None = None) -> IndexData:
    """Load the live generation; raises IndexNotBuilt, IndexMismatch or IndexCorrupted."""
    import bm25s
    import faiss

    gen = current_generation(Path(index_dir))
    if gen is None:
        raise IndexNotBuilt(f"no index at {index_dir}; build it with `python -m assistant index`")
    try:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupted(f"index manifest at {gen} is unreadable ({exc}); rebuild with `python -m assistant index --rebuild`") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexMismatch(f"index at {gen} has format {manifest.get('format')}, this version reads {FORMAT_VERSION}; rebuild it")
    if expect_embedder and manifest.get("embedder") != expect_embedder:
        raise IndexMismatch(
            f"index at {index_dir} was built with embedder {manifest.get('embedder')!r}, "
            f"but the configured embedder is {expect_embedder!r}; rebuild with `python -m assistant index --rebuild` "
            f"or set POLICYQA_EMBEDDER to match")
    try:
        docs = {}
        with open(gen / "docs.jsonl", "rb") as f:
            for line in f:
                doc = _doc_from_json(orjson.loads(line))
                docs[doc.doc_id] = doc
        chunks, tokens = [], []
        with open(gen / "chunks.jsonl", "rb") as f:
            for line in f:
                row = orjson.loads(line)
                tokens.append(row.pop("tokens"))
                chunks.append(Chunk(**row))
        vectors = np.load(gen / "vectors.npy")
        fi = faiss.read_index(str(gen / "faiss.index"))
        bm = bm25s.BM25.load(str(gen / "bm25"), show_progress=False) if chunks else None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, orjson.JSONDecodeError) as exc:
        raise IndexCorrupted(f"index at {gen} is damaged ({exc.__class__.__name__}: {exc}); "
                             f"rebuild with `python -m assistant index --rebuild`") from exc
    n = manifest.get("n_chunks")
    if not (len(chunks) == n == vectors.shape[0] == fi.ntotal):
        raise IndexCorrupted(f"index at {gen} is inconsistent: manifest says {n} chunks, found {len(chunks)} chunks, "
                             f"{vectors.shape[0]} vectors, {fi.ntotal} FAISS rows; rebuild with `python -m assistant index --rebuild`")
    return IndexData(manifest, docs, chunks, tokens, vectors, fi, bm, location=str(gen))
