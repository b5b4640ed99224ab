"""Build or update an index from files: load -> clean -> clauses -> chunks -> vectors + BM25.

Only documents whose content hash changed (or that are new) are parsed and embedded again;
everything else is carried over from the live generation.
"""
from __future__ import annotations

import hashlib
import re
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from index.chunk import chunk_document
from index.clauses import parse_clauses
from index.clean import clean_text
from index.embed import make_embedder
from index.errors import IndexCorrupted, IndexMismatch, IndexNotBuilt, UnsupportedDocument
from index.lexical import tokenize
from index.load import SUPPORTED_SUFFIXES, file_sha256, read_text
from index.meta import extract_meta
from index.normalize import detect_script, to_simplified
from index.settings import Settings
from index.store import (SHARD_ERRORS, GenerationWriter, IndexData, load_index, read_manifest, read_shard,
                         shard_intact)
from index.types import Chunk, Document, DocumentMeta

def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


class EmbeddingCheckpoint:
    """Vectors embedded by an unfinished build, saved every few thousand chunks.

    A long build that is interrupted (Ctrl-C, a closed laptop, a time limit) resumes where it
    stopped instead of embedding everything again. Removed once a build completes.
    """

    def __init__(self, folder: Path, dim: int, every: int = 2048):
        self.folder, self.dim, self.every = folder, dim, every
        self._keys: list[str] = []
        self._vecs: list[np.ndarray] = []

    def load(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for part in sorted(self.folder.glob("part-*.npz")) if self.folder.exists() else []:
            try:
                with np.load(part) as z:
                    if z["vectors"].shape[1:] == (self.dim,):
                        out.update(zip(z["keys"].tolist(), z["vectors"]))
            except (OSError, ValueError, KeyError):
                continue  # a part cut short by the interruption itself
        return out

    def add(self, keys: list[str], vecs: np.ndarray):
        self._keys.extend(keys)
        self._vecs.append(vecs)
        if len(self._keys) >= self.every:
            self.flush()

    def flush(self):
        if not self._keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns()}"
        tmp = self.folder / (name + ".tmp.npz")
        np.savez(tmp, keys=np.asarray(self._keys), vectors=np.concatenate(self._vecs))
        os.replace(tmp, self.folder / (name + ".npz"))
        self._keys, self._vecs = [], []

    def clear(self):
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.folder.parent.exists() and not any(self.folder.parent.iterdir()):
            self.folder.parent.rmdir()


def metadata_sidecar(path: Path) -> Path:
    """'a.txt' -> 'a.txt.meta.json': curated metadata that overrides what the header yields."""
    return path.with_name(path.name + ".meta.json")


def content_hash(path: Path, data: bytes) -> str:
    """sha256 of the file, plus its metadata sidecar when there is one."""
    sidecar = metadata_sidecar(path)
    if sidecar.exists():
        data = data + b"\0" + sidecar.read_bytes()
    return file_sha256(data)


# bump when cleaning, clause parsing or chunking changes what a document turns into;
# documents are then parsed again (their unchanged chunk texts keep their vectors)
PARSER_VERSION = 5

SKIP_NAMES = {"README.md", "FORMAT.md", "LICENSE", "LICENSE.md"}


@dataclass
class IngestionReport:
    """What a build did, file by file; printed by the CLI and shown in the app."""

    indexed: list[dict] = field(default_factory=list)  # {source, doc_id, title, clauses, chunks, warnings, reused}
    skipped: list[dict] = field(default_factory=list)  # {source, reason}
    removed: list[str] = field(default_factory=list)
    timings_s: dict = field(default_factory=dict)
    embedded_chunks: int = 0
    embedded_chars: int = 0
    reused_chunks: int = 0
    location: str = ""
    notes: list[str] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"index: {self.location}"]
        lines += [f"  note: {n}" for n in self.notes]
        for d in self.indexed:
            state = "unchanged" if d["reused"] else "indexed"
            lines.append(f"  {state:9} {d['source']}: {d['title']} ({d['clauses']} clauses, {d['chunks']} chunks)")
            lines += [f"            ! {w}" for w in d["warnings"]]
        for s in self.skipped:
            lines.append(f"  SKIPPED   {s['source']}: {s['reason']}")
        for r in self.removed:
            lines.append(f"  removed   {r}")
        t = self.timings_s
        lines.append(f"  {len(self.indexed)} documents, {len(self.skipped)} skipped; embedded {self.embedded_chunks} chunks "
                     f"({self.embedded_chars} chars), reused {self.reused_chunks}; total {t.get('total', 0):.2f}s "
                     f"(embed {t.get('embed', 0):.2f}s)")
        return "\n".join(lines)


def discover_files(paths: list[str | Path]) -> list[tuple[Path, str]]:
    """(file, doc_id) for every supported file under the given files/directories, sorted.

    doc_id is the path relative to the directory given, without suffix: '社会法/劳动法'.
    """
    out: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES and f.name not in SKIP_NAMES \
                        and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    out.append((f, f.relative_to(p).with_suffix("").as_posix()))
        else:
            out.append((p, p.stem))
    seen: dict[str, int] = {}
    unique = []
    for f, doc_id in out:
        if doc_id in seen:
            seen[doc_id] += 1
            doc_id = f"{doc_id}~{seen[doc_id]}"
        else:
            seen[doc_id] = 1
        unique.append((f, doc_id))
    return unique


def source_roots(sources: list[tuple[str, str]], roots: list[Path]) -> list[Path]:
    """The folders (or single files) that give indexed documents back their doc_ids.

    A file indexed on its own has doc_id == its stem; one found in a folder has a doc_id that
    is its path relative to that folder ('社会法/劳动法'), so the folder is that many levels up.
    Sources under one of `roots`, or no longer on disk, add nothing.
    """
    out = [Path(r).resolve() for r in roots]
    for doc_id, path in sources:
        p = Path(path).resolve()
        if any(p.is_relative_to(r) for r in out) or not p.exists():
            continue
        depth = doc_id.split("~")[0].count("/")
        out.append(p if depth == 0 and p.stem == doc_id else p.parents[depth])
    return out


def parse_document(path: Path, doc_id: str, data: bytes) -> Document:
    """Read, clean and parse one file into a Document with its clauses."""
    raw = read_text(path, data)
    cleaned = clean_text(raw)
    if not cleaned.text.strip():
        raise UnsupportedDocument("no text left after cleaning")
    meta = extract_meta(cleaned.text, path.name, cleaned.title_hint)
    sidecar = metadata_sidecar(path)
    if sidecar.exists():  # curated metadata for documents whose header lacks it
        try:
            extra = json.loads(sidecar.read_text(encoding="utf-8"))
            meta = replace(meta, **{k: str(v) for k, v in extra.items() if k in DocumentMeta.__dataclass_fields__})
        except (OSError, ValueError) as exc:
            raise UnsupportedDocument(f"unreadable metadata file {sidecar.name}: {exc}") from exc
    meta = replace(meta, title=" ".join(meta.title.split()))
    clauses = parse_clauses(doc_id, cleaned.text, cleaned.page_marks, [(s, e) for s, e, _ in cleaned.mojibake])
    warnings = list(cleaned.warnings)
    inferred = [c.label for c in clauses if c.inferred]
    if inferred:
        warnings.append("clause markers inferred from their siblings: " + ", ".join(inferred))
    if not clauses:
        warnings.append("no clauses found")
    return Document(doc_id=doc_id, source=path.name, path=str(path), sha256=content_hash(path, data), meta=meta,
                    text=cleaned.text, norm_text=to_simplified(cleaned.text), script=detect_script(cleaned.text[:2000]),
                    clauses=tuple(clauses), warnings=tuple(warnings))


def build_index(paths: list[str | Path], settings: Settings, embedder=None, rebuild: bool = False,
                progress: bool = True, load: bool = True,
                reindex: tuple[str, ...] = ()) -> tuple[IndexData | None, IngestionReport]:
    """Build or incrementally update the index at settings.index_dir to hold exactly `paths`.

    `reindex` names documents to parse again even if unchanged (e.g. ones whose shards were
    found damaged). Returns the new index loaded (None with load=False, which is all a
    command-line update needs) and the ingestion report.
    """
    t0 = time.perf_counter()
    report = IngestionReport()
    index_dir = Path(settings.index_dir)
    embedder = embedder or make_embedder(settings.embedder, settings.embed_batch_size)
    old_gen, old_docs, old_entries = None, {}, {}  # reusable shards; every shard whose vectors can be reused
    if not rebuild:
        try:
            old_gen, manifest = read_manifest(index_dir)
            if manifest.get("embedder") != embedder.name:
                report.notes.append(f"embedder changed ({manifest.get('embedder')} -> {embedder.name}); re-embedding everything")
                old_gen = None
            else:
                old_entries = manifest["docs"]
                if manifest.get("settings", {}).get("chunk_max_chars") != settings.chunk_max_chars \
                        or manifest.get("parser_version") != PARSER_VERSION:
                    report.notes.append("chunk settings or parser changed; re-parsing every document")
                else:
                    old_docs = old_entries
        except IndexNotBuilt:
            pass
        except (IndexCorrupted, IndexMismatch) as exc:
            report.notes.append(f"existing index ignored: {exc}")

    files = discover_files(paths)
    # (doc_id, entry of an unchanged shard) or (doc_id, Document, its chunks), in document order
    plan: list[tuple] = []
    new_chunks: list[Chunk] = []
    t_parse = time.perf_counter()
    iterator = tqdm(files, desc="reading", unit="file", file=sys.stderr, disable=not progress or len(files) < 20)
    for path, doc_id in iterator:
        try:
            data = path.read_bytes()
        except OSError as exc:
            report.skipped.append({"source": str(path), "reason": f"cannot read file: {exc.strerror or exc}"})
            continue
        sha = content_hash(path, data)
        entry = old_docs.get(doc_id)
        if entry is not None and entry.get("sha256") == sha:
            if doc_id not in reindex and shard_intact(old_gen, entry):
                plan.append((doc_id, entry))
                report.reused_chunks += entry["chunks"]
                report.indexed.append({"source": str(path), "doc_id": doc_id, "title": entry["title"],
                                       "clauses": entry["clauses"], "chunks": entry["chunks"],
                                       "warnings": entry["warnings"], "reused": True})
                continue
            report.notes.append(f"damaged shard of {doc_id} ignored; indexing the file again")
        try:
            doc = parse_document(path, doc_id, data)
        except UnsupportedDocument as exc:
            report.skipped.append({"source": str(path), "reason": str(exc)})
            continue
        chunks = chunk_document(doc, settings.chunk_max_chars)
        plan.append((doc_id, doc, chunks))
        new_chunks.extend(chunks)
        report.indexed.append({"source": str(path), "doc_id": doc_id, "title": doc.title, "clauses": len(doc.clauses),
                               "chunks": len(chunks), "warnings": list(doc.warnings), "reused": False})
    kept = {p[0] for p in plan}
    report.removed = sorted(set(old_entries) - kept)
    report.timings_s["parse"] = time.perf_counter() - t_parse

    t_tok = time.perf_counter()
    # BM25 sees what the embedder sees: title, heading path, label and text
    new_tokens = [tokenize(c.embed_text) for c in new_chunks]
    report.timings_s["tokenize"] = time.perf_counter() - t_tok

    t_embed = time.perf_counter()
    dim = embedder.dim
    # vectors by the exact text that was embedded: an edited, re-parsed or renamed document
    # only pays for the chunks whose text really changed
    cached_vectors: dict[str, np.ndarray] = {}
    parsed = {p[0] for p in plan if len(p) == 3}
    for doc_id in [d for d in old_entries if d in parsed or d not in kept]:  # edited or removed (renamed)
        try:
            _, old_chunks, old_vecs, _, _ = read_shard(old_gen, old_entries[doc_id])
        except SHARD_ERRORS:
            continue  # a damaged shard only costs its vectors
        if old_vecs.ndim == 2 and old_vecs.shape[1] == dim:
            cached_vectors.update((text_key(c.embed_text), v) for c, v in zip(old_chunks, old_vecs))
    new_vecs = np.zeros((len(new_chunks), dim), dtype=np.float32)
    checkpoint = EmbeddingCheckpoint(index_dir / "checkpoint" / re.sub(r"\W+", "_", embedder.name), dim)
    resumed = checkpoint.load()
    if resumed:
        report.notes.append(f"resuming an interrupted build: {len(resumed)} vectors already embedded")
        cached_vectors.update(resumed)
    todo = []
    for i, c in enumerate(new_chunks):
        hit = cached_vectors.get(text_key(c.embed_text))
        if hit is not None and hit.shape == (dim,):
            new_vecs[i] = hit
            report.reused_chunks += 1
        else:
            todo.append(i)
    texts = [new_chunks[i].embed_text for i in todo]
    step = max(1, settings.embed_batch_size)
    with tqdm(total=len(texts), desc="embedding", unit="chunk", file=sys.stderr,
              disable=not progress or not texts) as bar:
        for i in range(0, len(texts), step):
            vecs = embedder.embed_array(texts[i:i + step])
            new_vecs[todo[i:i + step]] = vecs
            checkpoint.add([text_key(t) for t in texts[i:i + step]], vecs)
            bar.update(len(texts[i:i + step]))
    checkpoint.flush()
    report.timings_s["embed"] = time.perf_counter() - t_embed
    report.embedded_chunks = len(texts)
    report.embedded_chars = sum(len(t) for t in texts)

    t_write = time.perf_counter()
    writer = GenerationWriter(index_dir)
    try:
        k = 0
        for item in plan:
            if len(item) == 2:
                writer.reuse(old_gen, *item)
            else:
                doc_id, doc, chunks = item
                n = len(chunks)
                writer.add(doc, chunks, new_tokens[k:k + n], new_vecs[k:k + n])
                k += n
        gen = writer.commit({
            "embedder": embedder.name,
            "settings": {"chunk_max_chars": settings.chunk_max_chars},
            "parser_version": PARSER_VERSION,
            "report": {"skipped": report.skipped},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }, dim)
    except BaseException:
        writer.abort()
        raise
    checkpoint.clear()
    report.timings_s["write"] = time.perf_counter() - t_write
    report.location = str(gen)
    report.timings_s["total"] = time.perf_counter() - t0
    data = None
    if load:
        t_load = time.perf_counter()
        data = load_index(index_dir, progress=progress)
        report.timings_s["load"] = time.perf_counter() - t_load
    return data, report
