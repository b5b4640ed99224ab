"""What the live generation holds: its documents' entries, even when its manifest is gone.

An index is the only record of which files it was built from (uploads, folders given on the
command line, the bundled corpus). So that a repair restores exactly those documents, the list
is read, in order of preference, from

1. `manifest.json`,
2. `sources.json`, the copy every generation writes beside it,
3. the shards themselves: each `shards/<key>.json` carries its document's doc_id, path and hash.

>>> held = read_held(Path("/nonexistent"))
>>> held.origin, held.entries
('none', {})
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from index.errors import IndexCorrupted, IndexOutdated
from index.shards import SHARD_ERRORS, doc_entry, file_digest, read_shard, shard_from_json
from index.store import FORMAT_VERSION, SOURCES_FILE, current_generation, read_manifest


@dataclass(frozen=True)
class HeldIndex:
    """The live generation's documents, and how far its shards can be trusted for reuse."""

    gen: Path | None
    entries: dict  # doc_id -> manifest entry {source, path, sha256, title, clauses, chunks, warnings, shard, ...}
    origin: str  # "manifest" | "sources.json" | "shards" | "outdated" | "none"
    embedder: str | None = None  # None: not recorded (recovered from the shards alone)
    dim: int = 0
    chunk_max_chars: int | None = None
    parser_version: int | None = None
    notes: tuple[str, ...] = ()  # what was wrong with the generation, for the report
    unidentified: tuple[str, ...] = ()  # shard files that could not be read to name their document

    @property
    def shards_readable(self) -> bool:
        """Whether its shards are in the format this version reads (an outdated index's are not)."""
        return self.gen is not None and self.origin != "outdated"


def read_held(index_dir: Path) -> HeldIndex:
    """The documents the live generation at `index_dir` holds (see the module docstring)."""
    gen = current_generation(Path(index_dir))
    if gen is None:
        return HeldIndex(None, {}, "none")
    try:
        _, manifest = read_manifest(Path(index_dir))
        return _from_record(gen, manifest, "manifest")
    except IndexOutdated as exc:
        raw = _read_json(gen / "manifest.json") or {}
        docs = raw.get("docs") if isinstance(raw.get("docs"), dict) else {}
        return HeldIndex(gen, {k: v for k, v in docs.items() if isinstance(v, dict)}, "outdated",
                         raw.get("embedder"), notes=(f"existing index ignored: {exc}",))
    except IndexCorrupted as exc:
        problem = str(exc)
    record = _read_json(gen / SOURCES_FILE)
    if record is not None and record.get("format") == FORMAT_VERSION and isinstance(record.get("docs"), dict):
        held = _from_record(gen, record, SOURCES_FILE)
        return replace(held, notes=(f"manifest ignored: {problem}; its documents were recovered from {SOURCES_FILE}",))
    return _from_shards(gen, problem)


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _from_record(gen: Path, record: dict, origin: str) -> HeldIndex:
    settings = record.get("settings") if isinstance(record.get("settings"), dict) else {}
    docs = record.get("docs") if isinstance(record.get("docs"), dict) else {}
    return HeldIndex(gen, {k: v for k, v in docs.items() if isinstance(v, dict)}, origin, record.get("embedder"),
                     int(record.get("dim") or 0), settings.get("chunk_max_chars"), record.get("parser_version"))


def _from_shards(gen: Path, problem: str) -> HeldIndex:
    """Entries rebuilt from every shard that reads back whole; the others are named by file."""
    entries: dict[str, dict] = {}
    unidentified: list[str] = []
    dims = set()
    for path in sorted((gen / "shards").glob("*.json")):
        try:
            doc, chunks = shard_from_json(orjson.loads(path.read_bytes()))
            files = [path, path.with_suffix(".npz")]
            entry = dict(doc_entry(doc, len(chunks)), shard=path.stem, bytes=[f.stat().st_size for f in files])
            _, _, vectors, _, _ = read_shard(gen, entry)
            entry["digests"] = [file_digest(f) for f in files]
        except SHARD_ERRORS:
            unidentified.append(path.name)
            continue
        if len(chunks):
            dims.add(int(vectors.shape[1]))
        entries[doc.doc_id] = entry
    notes = (f"manifest ignored: {problem}; its documents were recovered from their shards ({len(entries)} "
             f"readable, {len(unidentified)} unreadable), which do not record the embedder",)
    return HeldIndex(gen, entries, "shards", None, dims.pop() if len(dims) == 1 else 0, notes=notes,
                     unidentified=tuple(unidentified))
