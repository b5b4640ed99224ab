"""Result types of the answering half: Hit -> Citation -> Answer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from index.types import Chunk, Clause, Document

ABSTAIN_TEXT = "未在已收录文件中找到相关规定。"


class Hit(NamedTuple):
    """One retrieved chunk with its clause and document, and how it was found (a named tuple:
    immutable, and built for each of a few hundred candidates per question at about a quarter
    of a frozen dataclass's cost)."""

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
    version: str = ""  # the date of the document's version (index/versions.py), '' when it has none

    def to_json(self) -> dict:
        return {"n": self.n, "doc_id": self.doc_id, "source": self.source, "title": self.title,
                "doc_number": self.doc_number, "label": self.label, "path": list(self.path),
                "headings": list(self.headings), "quote": self.quote, "text": self.text,
                "clause_id": self.clause_id, "page": self.page, "version": self.version}


OUTCOMES = ("answered", "uncertain", "abstained")
CAUTION_TEXT = "以下条款与问题最接近，但不能确定它们回答了这个问题，请核对原文。"


@dataclass(frozen=True)
class Answer:
    """A cited answer, tied to the question it answers and the sources it used; built once.

    outcome: 'answered'; 'uncertain' (the best clauses, shown with a caution); or 'abstained'
    (未在已收录文件中找到相关规定, with the nearest clauses as `related`). `confidence` is the
    answerability model's P(the first citation answers the question), None where no model ran.
    """

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    outcome: str = "answered"
    confidence: float | None = None
    rewritten_query: str = ""
    related: tuple[Citation, ...] = ()  # offered when abstaining
    notices: tuple[str, ...] = ()  # fallbacks, removed citations, ...
    script: str = "simplified"
    mode: str = "extractive"
    timings_ms: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")

    @property
    def abstained(self) -> bool:
        return self.outcome == "abstained"

    @property
    def timings(self) -> dict:
        return dict(self.timings_ms)

    def to_json(self) -> dict:
        """The CLI/batch contract (plus notices, related clauses, script and mode)."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "outcome": self.outcome,
            "confidence": None if self.confidence is None or self.confidence != self.confidence else round(self.confidence, 4),
            "rewritten_query": self.rewritten_query,
            "citations": [c.to_json() for c in self.citations],
            "related": [c.to_json() for c in self.related],
            "notices": list(self.notices),
            "script": self.script,
            "mode": self.mode,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms},
        }

    def to_markdown(self) -> str:
        """Plain-text rendering for the terminal."""
        lines = [self.text]
        if self.outcome == "uncertain":
            lines.insert(0, f"（注意：{CAUTION_TEXT}）")
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


def answer_from_json(data: dict) -> Answer:
    """The Answer that `Answer.to_json()` wrote (or a CLI batch row); missing fields take their defaults.

    Rows saved before outcomes existed are 'abstained' or 'answered' by their `abstained` flag:

    >>> answer_from_json({"question": "问", "answer": "未找到", "abstained": True}).outcome
    'abstained'
    """
    def citation(d: dict) -> Citation:
        return Citation(n=int(d.get("n") or 0), doc_id=d.get("doc_id") or "", source=d.get("source") or "",
                        title=d.get("title") or "", doc_number=d.get("doc_number") or "", label=d.get("label") or "",
                        path=tuple(d.get("path") or ()), headings=tuple(d.get("headings") or ()),
                        quote=d.get("quote") or "", text=d.get("text") or "", clause_id=d.get("clause_id") or "",
                        page=d.get("page"), version=d.get("version") or "")

    return Answer(question=data.get("question") or "", text=data.get("answer") or "",
                  citations=tuple(citation(c) for c in data.get("citations") or ()),
                  outcome=data.get("outcome") or ("abstained" if data.get("abstained") else "answered"),
                  confidence=data.get("confidence"), rewritten_query=data.get("rewritten_query") or "",
                  related=tuple(citation(c) for c in data.get("related") or ()),
                  notices=tuple(data.get("notices") or ()), script=data.get("script") or "simplified",
                  mode=data.get("mode") or "extractive", timings_ms=tuple((data.get("timings_ms") or {}).items()))
