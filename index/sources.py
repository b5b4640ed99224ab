"""Which files an index is built from, and the stable doc_id each one is known by.

A file found in a folder is known by its path relative to that folder, without suffix
('社会法/劳动法'); a file given on its own by its stem. `merge_sources` adds files to what an
index already holds: a file it holds keeps its doc_id, whatever folder it is given through.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from index.errors import PolicyQAError
from index.load import SUPPORTED_SUFFIXES

SKIP_NAMES = {"README.md", "FORMAT.md", "LICENSE", "LICENSE.md"}


@dataclass(frozen=True)
class Source:
    """One document file under its doc_id; `read_from` is where to read it when that is not yet
    `path` (an upload still staged), while `path` is what the index records."""

    path: Path
    doc_id: str
    read_from: Path | None = None


def absolute(path: str | Path) -> Path:
    """An absolute, normalised path ('a/../b.txt' -> '<cwd>/b.txt'); symbolic links are kept."""
    return Path(os.path.abspath(path))


def scan_sources(paths: list[str | Path]) -> tuple[list[Source], list[dict]]:
    """(sources, skipped) for the given files and folders, in sorted order.

    Hidden files and folders inside a folder are not indexed; each gets a skipped row
    {source, reason} (a hidden folder one row, not one per file).
    """
    found: list[Source] = []
    skipped: list[dict] = []
    for p in map(absolute, paths):
        if not p.is_dir():
            found.append(Source(p, p.stem))
            continue
        hidden_dirs: set[Path] = set()
        for f in sorted(p.rglob("*")):
            rel = f.relative_to(p)
            if not f.is_file() or f.suffix.lower() not in SUPPORTED_SUFFIXES or f.name in SKIP_NAMES:
                continue
            hidden = next((i for i, part in enumerate(rel.parts) if part.startswith(".")), None)
            if hidden is None:
                found.append(Source(f, rel.with_suffix("").as_posix()))
            elif hidden == len(rel.parts) - 1:
                skipped.append({"source": str(f), "reason": "hidden file (name starts with '.'), not indexed"})
            elif (folder := p.joinpath(*rel.parts[:hidden + 1])) not in hidden_dirs:
                hidden_dirs.add(folder)
                skipped.append({"source": str(folder), "reason": "hidden folder (name starts with '.'), not indexed"})
    seen: dict[str, int] = {}
    unique = []
    for s in found:
        if s.doc_id in seen:
            seen[s.doc_id] += 1
            s = replace(s, doc_id=f"{s.doc_id}~{seen[s.doc_id]}")
        else:
            seen[s.doc_id] = 1
        unique.append(s)
    return unique, skipped


def discover_files(paths: list[str | Path]) -> list[tuple[Path, str]]:
    """(file, doc_id) for every supported file under the given files/directories, sorted.

    doc_id is the path relative to the directory given, without suffix: '社会法/劳动法'.
    """
    return [(s.path, s.doc_id) for s in scan_sources(paths)[0]]


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


def matching_docs(entries: dict, target: str) -> set[str]:
    """doc_ids in `entries` named by `target`: a doc_id, a file's path, or a folder holding files."""
    if target in entries:
        return {target}
    t = absolute(target)
    return {doc_id for doc_id, e in entries.items()
            if e.get("path") and (absolute(e["path"]) == t or absolute(e["path"]).is_relative_to(t))}


def merge_sources(entries: dict, added: list[Source], remove: tuple[str, ...] = ()) -> tuple[list[Source], list[str]]:
    """(sources, notes): what an index holding `entries` holds after adding `added` and removing `remove`.

    A held document keeps its doc_id when its file is given again. A new file whose doc_id a held
    document already has takes that document's place if the held file is gone (it moved), and
    is otherwise known as 'doc_id~2'. `remove` names doc_ids, files or folders; one that matches
    nothing raises PolicyQAError.
    """
    notes: list[str] = []
    removed: set[str] = set()
    for target in remove:
        hits = matching_docs(entries, target)
        if not hits:
            raise PolicyQAError(f"--remove {target}: the index holds no document with that id, file or folder")
        removed |= hits
    out: dict[str, Source] = {doc_id: Source(absolute(e.get("path") or "."), doc_id)
                              for doc_id, e in entries.items() if doc_id not in removed}
    by_path = {s.path: doc_id for doc_id, s in out.items()}
    taken = {s.doc_id for s in added}
    for s in added:
        held_id = by_path.get(s.path)
        if held_id is not None:
            out[held_id] = replace(s, doc_id=held_id)
        elif s.doc_id in out and not out[s.doc_id].path.is_file():
            notes.append(f"{s.doc_id}: moved from {out[s.doc_id].path} to {s.path}")
            out[s.doc_id] = s
        elif s.doc_id in out:
            n = 2
            while f"{s.doc_id}~{n}" in out or f"{s.doc_id}~{n}" in taken:
                n += 1
            notes.append(f"{s.path}: the index already holds {s.doc_id} ({out[s.doc_id].path}); "
                         f"indexed as {s.doc_id}~{n}")
            out[f"{s.doc_id}~{n}"] = replace(s, doc_id=f"{s.doc_id}~{n}")
        else:
            out[s.doc_id] = s
    return list(out.values()), notes
