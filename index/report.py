"""The ingestion report: what a build did, file by file."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IngestionReport:
    """What a build did, file by file; printed by the CLI and shown in the app."""

    indexed: list[dict] = field(default_factory=list)  # {source, doc_id, title, clauses, chunks, warnings, reused}
    skipped: list[dict] = field(default_factory=list)  # {source, reason}
    removed: list[str] = field(default_factory=list)  # doc_ids removed on request
    lost: list[dict] = field(default_factory=list)  # {doc_id, source, reason}: held, but neither file nor shard is usable
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
        for d in self.lost:
            lines.append(f"  LOST      {d['doc_id']} ({d['source']}): {d['reason']}")
        t = self.timings_s
        lines.append(f"  {len(self.indexed)} documents, {len(self.skipped)} skipped"
                     + (f", {len(self.lost)} LOST" if self.lost else "") + f"; embedded {self.embedded_chunks} chunks "
                     f"({self.embedded_chars} chars), reused {self.reused_chunks}; total {t.get('total', 0):.2f}s "
                     f"(embed {t.get('embed', 0):.2f}s)")
        return "\n".join(lines)
