"""The persisted index: one shard per document, a manifest, and search structures built on load.

Layout of an index directory::

    CURRENT                 name of the live generation, replaced atomically (os.replace);
                            if it is lost, the newest gen-* is the live one
    gen-<stamp>/            one complete, immutable build
        manifest.json       format, embedder name and dim, settings; per document: source, sha256,
                            title, counts, warnings and its shard (with the shard files' sizes
                            and blake2b digests, checked before a shard is reused or published)
        sources.json        the same document list again: a lost manifest loses no document
        shards/<key>.json   one document: metadata, clean text, clauses, chunks, BM25 vocabulary
        shards/<key>.npz    its chunk vectors (n, dim) float32 and BM25 term counts (m, 3) int32

An update writes a new generation in which every unchanged document's shard is a hard link to
the previous generation's file (a copy where links are not possible), so changing one file of
1,510 costs one shard, not a rewrite of everything. Then CURRENT is pointed at it; an
interrupted build never leaves a half-written index that later loads.

FAISS (a brute-force inner-product index over the vectors held as float16, which takes
a fraction of a second to fill) and BM25's idf and length normalisation, which depend on the whole collection, are
computed from the shards when the index loads.

What a shard holds and how it is read and checked is index/shards.py.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

from index.backend import LocalBackend, build_faiss
from index.bm25 import BM25, StatsBuilder, TermStats, count_terms
from index.errors import IndexCorrupted, IndexMismatch, IndexNotBuilt, IndexOutdated
from index.shards import SHARD_ERRORS, file_digest, read_shard, shard_files, shard_intact, write_shard
from index.types import Chunk, Clause, Document

FORMAT_VERSION = 2
NO_BACKEND = object()  # load_index without search structures: no LocalBackend to build
REBUILD_HINT = "rebuild with `python -m assistant index --rebuild`"
SOURCES_FILE = "sources.json"  # a copy of the manifest's document list, for recovery


@dataclass
class IndexData:
    """Everything retrieval needs, in memory."""

    manifest: dict
    docs: dict[str, Document]
    chunks: list[Chunk]
    vectors: np.ndarray  # (n_chunks, dim) float32; (0, dim) when another engine holds them (Milvus)
    faiss_index: object = None
    bm25: BM25 | TermStats | None = None  # TermStats (no postings) when another engine holds them
    clauses: dict[str, Clause] = field(default_factory=dict)
    location: str = ""
    backend: object = None  # index.backend.SearchBackend: every search over `chunks`

    def __post_init__(self):
        if not self.clauses:
            self.clauses = {c.clause_id: c for d in self.docs.values() for c in d.clauses}
        if self.backend is None:
            self.backend = LocalBackend(self.chunks, self.vectors, self.faiss_index, self.bm25)
        elif self.backend is NO_BACKEND:  # loaded for another engine, which load_milvus_index puts here
            self.backend = None

    @property
    def embedder_name(self) -> str:
        return self.manifest.get("embedder", "")

    @cached_property
    def clause_codes(self) -> np.ndarray:
        """(n_chunks,) int64: each chunk's clause as a number, equal for chunks of one clause
        (the candidate stage folds chunks into clauses with it)."""
        code: dict[str, int] = {}
        return np.fromiter((code.setdefault(ch.clause_id, len(code)) for ch in self.chunks), dtype=np.int64,
                           count=len(self.chunks))


class GenerationWriter:
    """Writes one new generation: `add` new shards, `reuse` old ones, then `commit` or `abort`."""

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}"
        self.tmp = self.index_dir / f".building-{self.stamp}"
        (self.tmp / "shards").mkdir(parents=True)
        self.entries: dict[str, dict] = {}
        self.n_chunks = 0

    def add(self, doc: Document, chunks: list[Chunk], tokens: list[list[str]], vectors: np.ndarray) -> dict:
        """Write one document's shard; returns its manifest entry."""
        terms, postings = count_terms(tokens)
        return self._record(doc.doc_id, write_shard(self.tmp, doc, chunks, vectors, terms, postings))

    def reuse(self, old_gen: Path, doc_id: str, entry: dict, path: str | None = None) -> dict:
        """Carry a document's shard over from the previous generation (checked by the caller with
        `shard_intact`); `path` records where its source now lives."""
        entry = dict(entry, path=path or entry.get("path", ""))
        for src, dst in zip(shard_files(old_gen, entry), shard_files(self.tmp, entry)):
            try:
                os.link(src, dst)
            except OSError:  # another filesystem, or links not supported
                shutil.copy2(src, dst)
        if "digests" not in entry:  # written before digests were recorded: record them from now on
            entry["digests"] = [file_digest(f) for f in shard_files(self.tmp, entry)]
        return self._record(doc_id, entry)

    def _record(self, doc_id: str, entry: dict) -> dict:
        self.entries[doc_id] = entry
        self.n_chunks += entry["chunks"]
        return entry

    def verify(self) -> tuple[str, ...]:
        """doc_ids whose shard in this generation is not exactly what its entry records."""
        return tuple(doc_id for doc_id, entry in self.entries.items() if not shard_intact(self.tmp, entry))

    def commit(self, manifest: dict, dim: int, publisher=None) -> Path:
        """Verify every shard, write sources.json and the manifest (last: a generation without one
        is incomplete) and make it live. Raises IndexCorrupted (and publishes nothing) when a shard
        fails verification. A `publisher` (index.backend.index_publisher) gets the generation
        before CURRENT names it (`prepare`: Milvus rows written) and after (`published`: old rows go)."""
        manifest = dict(manifest, format=FORMAT_VERSION, n_chunks=self.n_chunks, dim=int(dim), docs=self.entries)
        previous = current_generation(self.index_dir)
        try:
            damaged = self.verify()
            if damaged:
                raise IndexCorrupted(f"new index generation not published: {len(damaged)} shard(s) failed verification "
                                     f"({', '.join(damaged[:5])}); the live index is unchanged", damaged=damaged)
            # what the generation holds, again beside the manifest: losing manifest.json loses no document
            sources = {k: manifest.get(k) for k in ("format", "embedder", "dim", "settings", "parser_version", "docs")}
            (self.tmp / SOURCES_FILE).write_text(json.dumps(sources, ensure_ascii=False, indent=1), encoding="utf-8")
            (self.tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
            if publisher is not None:
                publisher.prepare(self.tmp, manifest)
            gen = self.index_dir / f"gen-{self.stamp}"
            os.replace(self.tmp, gen)
            pointer_tmp = self.index_dir / f".CURRENT-{self.stamp}"
            pointer_tmp.write_text(gen.name, encoding="utf-8")
            with open(pointer_tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(pointer_tmp, self.index_dir / "CURRENT")
        except BaseException:
            self.abort()
            raise
        # the generation that was live stays one more round, for a reader still loading it
        keep = {gen.name, previous.name if previous else ""}
        for old in self.index_dir.iterdir():
            if old.is_dir() and old.name.startswith(("gen-", ".building-")) and old.name not in keep \
                    and old != self.tmp:
                shutil.rmtree(old, ignore_errors=True)
        if publisher is not None:
            publisher.published(gen, previous)
        return gen

    def abort(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- reading ----

def current_generation(index_dir: Path) -> Path | None:
    """The live generation directory, or None if no complete build exists.

    That is the one CURRENT names. When CURRENT is lost, unreadable or names a directory that is
    gone, it is the newest `gen-*` left: a generation directory gets its name only once complete
    (`GenerationWriter.commit`), so the index keeps every document it held instead of being built
    again from the bundled corpus. The next commit writes CURRENT again."""
    index_dir = Path(index_dir)
    try:
        name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    gen = index_dir / name
    if name and gen.is_dir():
        return gen
    return newest_generation(index_dir)


def newest_generation(index_dir: Path) -> Path | None:
    """The newest complete generation directory (by its stamp's second, then its time of change), or None."""
    try:
        gens = [(d.name[4:19], d.stat().st_mtime, d) for d in Path(index_dir).iterdir()
                if d.name.startswith("gen-") and d.is_dir()]
    except OSError:
        return None
    return max(gens, key=lambda g: g[:2])[2] if gens else None


def read_manifest(index_dir: Path, expect_embedder: str | None = None) -> tuple[Path, dict]:
    """(live generation, its manifest); raises IndexNotBuilt, IndexMismatch or IndexCorrupted."""
    gen = current_generation(Path(index_dir))
    if gen is None:
        raise IndexNotBuilt(f"no index at {index_dir}; build it with `python -m assistant index`")
    try:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
            raise ValueError("not a manifest: no format number")
    except (OSError, ValueError) as exc:
        raise IndexCorrupted(f"index manifest at {gen} is unreadable ({exc}); {REBUILD_HINT}") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexOutdated(f"index at {gen} has format {manifest.get('format')}, this version reads {FORMAT_VERSION}; "
                            f"{REBUILD_HINT}")
    if expect_embedder and manifest.get("embedder") != expect_embedder:
        raise IndexMismatch(
            f"index at {index_dir} was built with embedder {manifest.get('embedder')!r}, "
            f"but the configured embedder is {expect_embedder!r}; {REBUILD_HINT} or set POLICYQA_EMBEDDER to match")
    return gen, manifest


def indexed_sources(index_dir: Path) -> list[tuple[str, str]]:
    """(doc_id, file path) of every document the live generation holds, recovered from sources.json
    or the shards themselves when its manifest is unreadable."""
    from index.held import read_held  # held.py reads with this module's functions

    return [(doc_id, e["path"]) for doc_id, e in read_held(Path(index_dir)).entries.items() if e.get("path")]


def load_index(index_dir: Path, expect_embedder: str | None = None, progress: bool = False,
               search_structures: bool = True) -> IndexData:
    """Load the live generation; raises IndexNotBuilt, IndexMismatch or IndexCorrupted.

    With `progress`, a large index (the 1,510 laws take a few seconds) shows a bar on stderr.
    Without `search_structures` neither the vectors, FAISS nor the BM25 postings are kept (another
    search engine holds them: index/milvus.py); `bm25` is then the collection's TermStats.
    """
    gen, manifest = read_manifest(index_dir, expect_embedder)
    dim = int(manifest.get("dim") or 0)
    docs: dict[str, Document] = {}
    chunks: list[Chunk] = []
    vec_parts: list[np.ndarray] = []
    vocab: dict[str, int] = {}
    post_parts: list[np.ndarray] = []
    stats = StatsBuilder()
    damaged: dict[str, str] = {}  # doc_id -> what is wrong with its shard
    entries = manifest.get("docs")
    if not isinstance(entries, dict):
        raise IndexCorrupted(f"index manifest at {gen} lists no documents; {REBUILD_HINT}")
    for doc_id, entry in tqdm(entries.items(), desc="loading index", unit="doc", file=sys.stderr,
                              disable=not progress or len(entries) < 200):
        try:
            doc, doc_chunks, vectors, terms, postings = read_shard(gen, entry)
            if doc_chunks and vectors.shape[1] != dim:
                raise ValueError(f"shard {entry['shard']} has {vectors.shape[1]}-d vectors, the manifest says {dim}")
        except SHARD_ERRORS as exc:
            damaged[doc_id] = f"{exc.__class__.__name__}: {exc}"
            continue
        if not damaged:  # after the first damage, only find the others
            docs[doc_id] = doc
            if not search_structures:
                stats.add(terms, postings, len(doc_chunks))
            elif len(postings):
                local = np.fromiter((vocab.setdefault(t, len(vocab)) for t in terms), dtype=np.int64, count=len(terms))
                post = postings.astype(np.int64)
                post[:, 0] += len(chunks)
                post[:, 1] = local[post[:, 1]]
                post_parts.append(post)
            chunks.extend(doc_chunks)
            if search_structures:
                vec_parts.append(vectors)
    if damaged:
        first = next(iter(damaged.items()))
        raise IndexCorrupted(f"index at {gen} is damaged: {len(damaged)} document shard(s) unreadable "
                             f"({first[0]}: {first[1]}); {REBUILD_HINT}", damaged=tuple(damaged))
    n = manifest.get("n_chunks")
    if len(chunks) != n:
        raise IndexCorrupted(f"index at {gen} is inconsistent: manifest says {n} chunks, the shards hold {len(chunks)}; "
                             f"{REBUILD_HINT}")
    vectors = np.concatenate(vec_parts) if vec_parts else np.zeros((0, dim), np.float32)
    if not search_structures:
        return IndexData(manifest, docs, chunks, vectors, None, stats.build(), location=str(gen), backend=NO_BACKEND)
    post = np.concatenate(post_parts) if post_parts else np.zeros((0, 3), np.int64)
    bm25 = BM25(vocab, post[:, 0], post[:, 1], post[:, 2], len(chunks))
    return IndexData(manifest, docs, chunks, vectors, build_faiss(vectors), bm25, location=str(gen))
