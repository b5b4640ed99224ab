"""One document's shard: how a document, its chunks, vectors and BM25 counts are written and read.

A shard is two files, `shards/<key>.json` (metadata, clean text, clauses, chunks, BM25
vocabulary) and `shards/<key>.npz` (the chunk vectors (n, dim) float32 and the BM25 term counts
(m, 3) int32). Texts are stored once: a chunk's or clause's text that is a verbatim span of its
document is written as [offset, length] into the document's text (or its normalised text).
index/store.py lays shards out into generations and loads them; a manifest entry
(`doc_entry`, plus the shard's key, sizes and digests) is what finds and checks one.
"""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import orjson

from index.types import Chunk, Clause, Document, DocumentMeta

# what reading a damaged shard can raise (a cut .npz is a BadZipFile, a cut .npy an EOFError)
SHARD_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile,
                orjson.JSONDecodeError)


def _span(text: str, source: str, hint: int):
    """[offset, length] of `text` inside `source` (searched from `hint`), or the text itself.

    _span("乙丙", "甲乙丙丁", 1) -> [1, 2]; _span("戊", "甲乙丙丁", 0) -> "戊"
    """
    if source.startswith(text, hint):
        return [hint, len(text)]
    i = source.find(text, max(0, hint))
    return [i, len(text)] if i >= 0 else text


def _unspan(value, source: str) -> str:
    return source[value[0]:value[0] + value[1]] if isinstance(value, list) else value


def shard_json(doc: Document, chunks: list[Chunk], terms: list[str]) -> dict:
    norm_same = doc.norm_text == doc.text
    clauses = []
    for c in doc.clauses:
        d = c.to_json()
        del d["doc_id"]
        d["text"] = _span(c.text, doc.text, c.start)
        clauses.append(d)
    rows = []
    for ch in chunks:
        text = _span(ch.text, doc.text, ch.start)
        norm = _span(ch.norm_text, doc.norm_text, text[0] if isinstance(text, list) else ch.start)
        row = {"chunk_id": ch.chunk_id, "clause_id": ch.clause_id, "start": ch.start, "end": ch.end,
               "text": text, "norm_text": norm}
        if ch.embed_text.endswith(ch.norm_text):  # what the embedder saw: title / headings / label, then the text
            row["embed_prefix"] = ch.embed_text[:len(ch.embed_text) - len(ch.norm_text)]
        else:
            row["embed_text"] = ch.embed_text
        rows.append(row)
    return {
        "doc": {"doc_id": doc.doc_id, "source": doc.source, "path": doc.path, "sha256": doc.sha256,
                "meta": asdict(doc.meta), "script": doc.script, "warnings": list(doc.warnings),
                "text": doc.text, "norm_text": None if norm_same else doc.norm_text},
        "clauses": clauses, "chunks": rows, "terms": terms,
    }


def shard_from_json(d: dict) -> tuple[Document, list[Chunk]]:
    dd = d["doc"]
    text = dd["text"]
    norm = text if dd["norm_text"] is None else dd["norm_text"]
    doc_id = dd["doc_id"]
    clauses = tuple(Clause(doc_id=doc_id, **{**c, "text": _unspan(c["text"], text), "path": tuple(c["path"]),
                                             "headings": tuple(c["headings"])}) for c in d["clauses"])
    doc = Document(doc_id, dd["source"], dd["path"], dd["sha256"], DocumentMeta(**dd["meta"]), text, norm,
                   dd["script"], clauses, tuple(dd["warnings"]))
    chunks = []
    for r in d["chunks"]:
        ct, cn = _unspan(r["text"], text), _unspan(r["norm_text"], norm)
        embed = r["embed_prefix"] + cn if "embed_prefix" in r else r["embed_text"]
        chunks.append(Chunk(r["chunk_id"], doc_id, r["clause_id"], ct, cn, embed, r["start"], r["end"]))
    return doc, chunks


def shard_key(doc: Document) -> str:
    """File name stem of a document's shard: hash of its doc_id + start of its content hash
    (any file name works on any filesystem; the manifest maps doc_id -> shard)."""
    return hashlib.blake2b(doc.doc_id.encode("utf-8"), digest_size=8).hexdigest() + "-" + doc.sha256[:12]


def doc_entry(doc: Document, n_chunks: int) -> dict:
    """A document's line in the manifest (everything the ingestion report shows without the shard)."""
    return {"source": doc.source, "path": doc.path, "sha256": doc.sha256, "title": doc.title,
            "clauses": len(doc.clauses), "chunks": n_chunks, "warnings": list(doc.warnings)}


def write_shard(gen: Path, doc: Document, chunks: list[Chunk], vectors: np.ndarray, terms: list[str],
                postings: np.ndarray) -> dict:
    """Write one document's shard into generation folder `gen` (its shards/ made already); returns
    its manifest entry, with the files' sizes and digests. `read_shard` reads it back."""
    entry = dict(doc_entry(doc, len(chunks)), shard=shard_key(doc))
    files = shard_files(gen, entry)
    files[0].write_bytes(orjson.dumps(shard_json(doc, chunks, terms)))
    with open(files[1], "wb") as f:
        np.savez(f, vectors=np.asarray(vectors, dtype=np.float32), postings=postings)
    entry.update(bytes=[f.stat().st_size for f in files], digests=[file_digest(f) for f in files])
    return entry


def read_shard(gen: Path, entry: dict) -> tuple[Document, list[Chunk], np.ndarray, list[str], np.ndarray]:
    """(document, chunks, vectors, BM25 terms, (chunk, term, count) rows) of one manifest entry."""
    stem = gen / "shards" / entry["shard"]
    with open(stem.with_suffix(".json"), "rb") as f:
        d = orjson.loads(f.read())
    doc, chunks = shard_from_json(d)
    with np.load(stem.with_suffix(".npz")) as z:
        vectors, postings = z["vectors"], z["postings"]
    if not vectors.shape[0] == len(chunks) == entry["chunks"]:
        raise ValueError(f"shard {entry['shard']} has {len(chunks)} chunks and {vectors.shape[0]} vectors, "
                         f"the manifest says {entry['chunks']}")
    if postings.ndim != 2 or postings.shape[1] != 3 or (len(postings) and (
            postings.min() < 0 or postings[:, 0].max() >= len(chunks) or postings[:, 1].max() >= len(d["terms"]))):
        raise ValueError(f"shard {entry['shard']} has malformed BM25 counts")
    return doc, chunks, vectors, d["terms"], postings


def file_digest(path: Path) -> str:
    """blake2b-128 of a file's bytes, hex: what a shard's entry records to catch same-size damage."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shard_files(gen: Path, entry: dict) -> list[Path]:
    """[<key>.json, <key>.npz] of one manifest entry."""
    stem = Path(gen) / "shards" / entry.get("shard", "?")
    return [stem.with_suffix(".json"), stem.with_suffix(".npz")]


def shard_intact(gen: Path, entry: dict) -> bool:
    """Both shard files hold exactly what was written: the sizes and content digests the entry recorded.

    An entry written before digests were recorded passes when its shard reads back whole and
    belongs to the document the entry names (slower: the shard is parsed).
    """
    files = shard_files(gen, entry)
    try:
        if [f.stat().st_size for f in files] != entry.get("bytes"):
            return False
        if "digests" in entry:
            return [file_digest(f) for f in files] == entry["digests"]
    except OSError:
        return False
    try:
        doc, *_ = read_shard(gen, entry)
    except SHARD_ERRORS:
        return False
    return doc.sha256 == entry.get("sha256")
