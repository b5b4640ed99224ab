"""Build or update an index from files: load -> clean -> clauses -> chunks -> vectors + BM25.

Three ways in, one build (`build_sources`):

- `build_index(paths)`: the index holds exactly the files under `paths` (a full list);
- `update_index(paths)`: those files are added or updated and every other document the index
  holds is kept: read again from its file, or kept from its stored shard when the file is gone;
  only `remove` takes documents out;
- `repair_index()`: exactly the documents the index held (see index/held.py), damaged ones
  parsed and embedded again.

Only documents whose content hash changed (or that are new) are parsed and embedded again;
everything else is carried over from the live generation, after its shard is verified.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from index.backend import index_publisher, load_search_index
from index.checkpoint import EmbeddingCheckpoint
from index.chunk import chunk_document
from index.clauses import parse_clauses
from index.clean import clean_text
from index.embed import make_embedder
from index.errors import BuildCancelled, UnsupportedDocument
from index.held import HeldIndex, read_held
from index.lexical import tokenize
from index.load import file_sha256, read_text
from index.meta import extract_meta
from index.normalize import detect_script, to_simplified
from index.report import IngestionReport
from index.settings import Settings
from index.shards import SHARD_ERRORS, read_shard, shard_intact
from index.sources import SKIP_NAMES, Source, discover_files, merge_sources, scan_sources, source_roots  # noqa: F401
from index.store import GenerationWriter, IndexData
from index.types import Chunk, Document, DocumentMeta

ProgressFn = Callable[[float, str], None]  # (fraction done 0..1, what is happening, in Chinese)


def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


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
PARSER_VERSION = 6


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
                progress: bool = True, load: bool = True, reindex: tuple[str, ...] = (), *,
                cancel: threading.Event | None = None,
                on_progress: ProgressFn | None = None) -> tuple[IndexData | None, IngestionReport]:
    """Build or incrementally update the index at settings.index_dir to hold exactly the files under `paths`.

    `reindex` names documents to parse again even if unchanged (e.g. ones whose shards were
    found damaged). Returns the new index loaded (None with load=False, which is all a
    command-line update needs) and the ingestion report.
    """
    sources, skipped = scan_sources(paths)
    return build_sources(sources, settings, embedder, rebuild=rebuild, progress=progress, load=load, reindex=reindex,
                         skipped=skipped, cancel=cancel, on_progress=on_progress)


def update_index(paths: list[str | Path], settings: Settings, embedder=None, *, remove: tuple[str, ...] = (),
                 reindex: tuple[str, ...] = (), extra: tuple[Source, ...] = (), progress: bool = True,
                 load: bool = True, cancel: threading.Event | None = None,
                 on_progress: ProgressFn | None = None) -> tuple[IndexData | None, IngestionReport]:
    """Add or update the files under `paths` (and the `extra` sources), keeping every other document
    the index holds; `remove` names doc_ids, files or folders to take out."""
    held = read_held(Path(settings.index_dir))
    scanned, skipped = scan_sources(paths)
    sources, notes = merge_sources(held.entries, [*scanned, *extra], tuple(remove))
    return build_sources(sources, settings, embedder, held=held, keep_missing=True, progress=progress, load=load,
                         reindex=reindex, skipped=skipped, notes=notes, cancel=cancel, on_progress=on_progress)


def repair_index(settings: Settings, embedder=None, damaged: tuple[str, ...] = (), progress: bool = True,
                 load: bool = True) -> tuple[IndexData | None, IngestionReport]:
    """Rebuild the live index with exactly the documents it held: each from its file, or from its
    stored shard when the file is gone; a document with neither is named in `report.lost`."""
    return update_index([], settings, embedder, reindex=tuple(damaged), progress=progress, load=load)


def _reusable(held: HeldIndex, embedder, settings: Settings, report: IngestionReport) -> tuple[dict, dict, bool]:
    """(entries whose shards may be kept, entries whose shards may stand for an unchanged file,
    whether the held vectors are the configured embedder's)."""
    report.notes.extend(held.notes)
    if not held.shards_readable or not held.entries:
        return {}, {}, False
    if held.embedder is None:  # recovered from the shards alone: keep only what cannot be read again
        return (held.entries if held.dim == embedder.dim else {}), {}, False
    if held.embedder != embedder.name:
        report.notes.append(f"embedder changed ({held.embedder} -> {embedder.name}); re-embedding everything")
        return {}, {}, False
    if held.chunk_max_chars != settings.chunk_max_chars or held.parser_version != PARSER_VERSION:
        report.notes.append("chunk settings or parser changed; re-parsing every document")
        return held.entries, {}, True
    return held.entries, held.entries, True


def _check_cancel(cancel: threading.Event | None, checkpoint: EmbeddingCheckpoint | None = None):
    if cancel is not None and cancel.is_set():
        if checkpoint is not None:
            checkpoint.flush()  # what was embedded is not lost for the next attempt
        raise BuildCancelled("已取消，索引未改变。")


def _row(source: str, doc_id: str, entry: dict, warnings: list[str]) -> dict:
    return {"source": source, "doc_id": doc_id, "title": entry["title"], "clauses": entry["clauses"],
            "chunks": entry["chunks"], "warnings": warnings, "reused": True}


def build_sources(sources: list[Source], settings: Settings, embedder=None, *, rebuild: bool = False,
                  progress: bool = True, load: bool = True, reindex: tuple[str, ...] = (),
                  skipped: list[dict] = (), held: HeldIndex | None = None, keep_missing: bool = False,
                  notes: list[str] = (), cancel: threading.Event | None = None,
                  on_progress: ProgressFn | None = None) -> tuple[IndexData | None, IngestionReport]:
    """Write a new generation holding exactly `sources` and make it live.

    With `keep_missing`, a held document whose file is gone or unreadable keeps its stored shard
    when that is intact, and is reported lost otherwise. `cancel` is checked between files and
    between embedding batches (BuildCancelled; the live index is unchanged); `on_progress`
    hears (fraction, description) along the way.
    """
    t0 = time.perf_counter()
    report = IngestionReport(skipped=list(skipped), notes=list(notes))
    say = on_progress or (lambda fraction, desc: None)
    index_dir = Path(settings.index_dir)
    embedder = embedder or make_embedder(settings.embedder, settings.embed_batch_size)
    # Milvus gets the rows before the generation goes live; a dead one fails before any embedding
    publisher = index_publisher(settings)
    live = held or read_held(index_dir)  # what the index holds now: a document not kept is reported removed
    held = HeldIndex(None, {}, "none") if rebuild else live
    old_gen = held.gen
    keep_entries, old_docs, vectors_known = _reusable(held, embedder, settings, report)

    def keep_stored(src: Source, problem: str) -> bool:
        """Keep a held document from its stored shard; False when it has no usable one."""
        entry = keep_entries.get(src.doc_id)
        if entry is None or not shard_intact(old_gen, entry):
            return False
        plan.append((src.doc_id, entry))
        report.reused_chunks += entry["chunks"]
        report.indexed.append(_row(str(src.path), src.doc_id, entry,
                                   list(entry["warnings"]) + [f"{problem}; kept the copy stored in the index"]))
        report.notes.append(f"{src.doc_id}: {problem}; kept the copy stored in the index")
        return True

    # (doc_id, entry of a shard carried over) or (doc_id, Document, its chunks), in document order
    plan: list[tuple] = []
    new_chunks: list[Chunk] = []
    t_parse = time.perf_counter()
    say(0.0, "读取文件")
    iterator = tqdm(sources, desc="reading", unit="file", file=sys.stderr, disable=not progress or len(sources) < 20)
    for n, src in enumerate(iterator):
        _check_cancel(cancel)
        if n % 50 == 49:
            say(0.1 * n / len(sources), f"读取文件 {n}/{len(sources)}")
        doc_id, held_here = src.doc_id, keep_missing and src.doc_id in held.entries
        try:
            data = (src.read_from or src.path).read_bytes()
        except OSError as exc:
            problem = (f"source file missing ({src.path})" if isinstance(exc, FileNotFoundError)
                       else f"cannot read file: {exc.strerror or exc}")
            if held_here and not keep_stored(src, problem):
                reason = "its stored copy is damaged" if doc_id in keep_entries else "its stored copy cannot be reused"
                report.lost.append({"doc_id": doc_id, "source": str(src.path), "reason": f"{problem}; {reason}"})
            elif not held_here:
                report.skipped.append({"source": str(src.path), "reason": f"cannot read file: {exc.strerror or exc}"})
            continue
        sha = content_hash(src.path, data)
        entry = old_docs.get(doc_id)
        # a document that gave no chunk is read again: the parser may now find its clauses
        if entry is not None and entry.get("sha256") == sha and entry.get("chunks"):
            if doc_id not in reindex and shard_intact(old_gen, entry):
                plan.append((doc_id, entry))
                report.reused_chunks += entry["chunks"]
                report.indexed.append(_row(str(src.path), doc_id, entry, entry["warnings"]))
                continue
            report.notes.append(f"damaged shard of {doc_id} ignored; indexing the file again")
        try:
            doc = parse_document(src.path, doc_id, data)
            chunks = chunk_document(doc, settings.chunk_max_chars)
            if not chunks:
                raise UnsupportedDocument("no citable text: no clause gave a searchable chunk")
        except UnsupportedDocument as exc:
            if held_here and not keep_stored(src, f"file now unreadable ({exc})"):
                report.lost.append({"doc_id": doc_id, "source": str(src.path),
                                    "reason": f"file now unreadable ({exc}); its stored copy is not usable either"})
            elif not held_here:
                report.skipped.append({"source": str(src.path), "reason": str(exc)})
            continue
        plan.append((doc_id, doc, chunks))
        new_chunks.extend(chunks)
        report.indexed.append({"source": str(src.path), "doc_id": doc_id, "title": doc.title, "clauses": len(doc.clauses),
                               "chunks": len(chunks), "warnings": list(doc.warnings), "reused": False})
    if keep_missing:
        report.lost += [{"doc_id": "?", "source": str(old_gen / "shards" / name),
                         "reason": "unreadable shard; the document it held cannot be named"} for name in held.unidentified]
    kept = {p[0] for p in plan}
    report.removed = sorted(set(live.entries) - kept - {d["doc_id"] for d in report.lost})
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
    for doc_id in [d for d in keep_entries if vectors_known and (d in parsed or d not in kept)]:  # edited or removed
        if not shard_intact(old_gen, keep_entries[doc_id]):
            continue  # a damaged shard only costs its vectors, and lends none
        try:
            _, old_chunks, old_vecs, _, _ = read_shard(old_gen, keep_entries[doc_id])
        except SHARD_ERRORS:
            continue
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
    say(0.1, f"向量化：0/{len(texts)} 个片段")
    with tqdm(total=len(texts), desc="embedding", unit="chunk", file=sys.stderr,
              disable=not progress or not texts) as bar:
        for i in range(0, len(texts), step):
            _check_cancel(cancel, checkpoint)
            vecs = embedder.embed_array(texts[i:i + step])
            new_vecs[todo[i:i + step]] = vecs
            checkpoint.add([text_key(t) for t in texts[i:i + step]], vecs)
            bar.update(len(texts[i:i + step]))
            done = min(len(texts), i + step)
            say(0.1 + 0.8 * done / len(texts), f"向量化：{done}/{len(texts)} 个片段")
    checkpoint.flush()
    report.timings_s["embed"] = time.perf_counter() - t_embed
    report.embedded_chunks = len(texts)
    report.embedded_chars = sum(len(t) for t in texts)
    _check_cancel(cancel)

    t_write = time.perf_counter()
    say(0.92, "写入索引")
    writer = GenerationWriter(index_dir)
    try:
        k = 0
        paths = {s.doc_id: str(s.path) for s in sources}
        for item in plan:
            if len(item) == 2:
                writer.reuse(old_gen, item[0], item[1], path=paths.get(item[0]))
            else:
                doc_id, doc, chunks = item
                n = len(chunks)
                writer.add(doc, chunks, new_tokens[k:k + n], new_vecs[k:k + n])
                k += n
        gen = writer.commit({
            "embedder": embedder.name,
            "settings": {"chunk_max_chars": settings.chunk_max_chars},
            "parser_version": PARSER_VERSION,
            "report": {"skipped": report.skipped, "lost": report.lost},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }, dim, publisher=publisher)
    except BaseException:
        writer.abort()
        raise
    checkpoint.clear()
    report.notes.extend(getattr(publisher, "notes", ()))
    report.timings_s["write"] = time.perf_counter() - t_write
    report.location = str(gen)
    report.timings_s["total"] = time.perf_counter() - t0
    data = None
    if load:
        say(0.96, "载入索引")
        t_load = time.perf_counter()
        data = load_search_index(settings, progress=progress)
        report.timings_s["load"] = time.perf_counter() - t_load
    say(1.0, "完成")
    return data, report
