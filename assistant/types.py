"""Result types of the answering half: Hit -> Citation -> Answer."""
from __future__ import annotations

from dataclasses import dataclass, field

from index.types import Chunk, Clause, Document

ABSTAIN_TEXT = "未在已收录文件中找到相关规定。"


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its clause and document, and how it was found."""

    chunk: Chunk
    clause: Clause
    doc: Document
    score: float  # fused score (RRF), or 1.0 for an exact clause lookup
    dense_rank: int | None = None
    bm25_rank: int | None = None
    via: str = "hybrid"  # hybrid | dense | bm25 | lookup


@dataclass(frozen=True)
class Citation:
    """A numbered citation: the clause it names and the verbatim words it quotes."""

    n: int
    doc_id: str
    source: str
    title: str
    doc_number: str
    label: str
    path: tuple[str, ...]
    headings: tuple[str, ...]
    quote: str  # verbatim from the clause's original text
    text: str  # the full clause text (original script)
    clause_id: str
    page: int | None = None

    def to_json(self) -> dict:
        return {"n": self.n, "doc_id": self.doc_id, "source": self.source, "title": self.title,
                "doc_number": self.doc_number, "label": self.label, "path": list(self.path),
                "headings": list(self.headings), "quote": self.quote, "text": self.text,
                "clause_id": self.clause_id, "page": self.page}


@dataclass
class Answer:
    """A cited answer, tied to the question it answers and the sources it used."""

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    rewritten_query: str = ""
    related: list[Citation] = field(default_factory=list)  # offered when abstaining
    notices: list[str] = field(default_factory=list)  # fallbacks, removed citations, ...
    script: str = "simplified"
    mode: str = "extractive"
    timings_ms: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The CLI/batch contract (plus notices, related clauses, script and mode)."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "rewritten_query": self.rewritten_query,
            "citations": [c.to_json() for c in self.citations],
            "related": [c.to_json() for c in self.related],
            "notices": list(self.notices),
            "script": self.script,
            "mode": self.mode,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }

    def to_markdown(self) -> str:
        """Plain-text rendering for the terminal."""
        lines = [self.text]
        for note in self.notices:
            lines.append(f"（提示：{note}）")
        if self.rewritten_query and self.rewritten_query != self.question:
            lines.append(f"（检索问题：{self.rewritten_query}）")
        for c in self.citations:
            lines.append(f"[{c.n}] 《{c.title}》{c.label}：“{c.quote}”")
        if self.related:
            lines.append("可能相关的条款：")
            for c in self.related:
                lines.append(f"  - 《{c.title}》{c.label}：{c.text[:60]}…")
        return "\n".join(lines)
