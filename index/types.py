"""The small frozen dataclasses the indexing code speaks in: Document -> Clause -> Chunk."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class DocumentMeta:
    """Metadata extracted from a document's header; every field may be empty."""

    title: str = ""
    doc_number: str = ""  # 文号, e.g. 本政发[2008]6号
    issuer: str = ""
    issue_date: str = ""  # ISO yyyy-mm-dd where known
    effective_date: str = ""
    validity: str = ""  # 时效性, e.g. 有效


@dataclass(frozen=True)
class Clause:
    """One numbered clause, e.g. label '四、(二)3.' with path ('四', '(二)', '3').

    `text` is the clause's own original text (children excluded), markers included;
    `start`/`end` are offsets of the clause subtree in the document's clean text.
    """

    doc_id: str
    clause_id: str  # "{doc_id}#四.(二).3"
    label: str
    path: tuple[str, ...]
    kind: str  # part|chapter|section|article|paragraph|item|l1..l5|para|preamble
    headings: tuple[str, ...]  # title path of the ancestors, e.g. ('工作措施',)
    heading: str  # this clause's own short title, '' if none
    text: str
    start: int
    end: int
    page: int | None = None
    parent_id: str | None = None
    inferred: bool = False  # marker was garbled/missing and inferred from siblings

    def to_json(self) -> dict:
        d = asdict(self)
        d["path"] = list(self.path)
        d["headings"] = list(self.headings)
        return d


@dataclass(frozen=True)
class Document:
    """A cleaned, parsed document; `text` is the clean original-script text."""

    doc_id: str
    source: str  # file name
    path: str  # where it was read from
    sha256: str
    meta: DocumentMeta
    text: str
    norm_text: str  # OpenCC-simplified text, same length as `text` where possible
    script: str  # 'simplified' | 'traditional'
    clauses: tuple[Clause, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.meta.title or self.source


@dataclass(frozen=True)
class Chunk:
    """A piece of one clause's text, embedded with its document title and heading path."""

    chunk_id: str  # "{doc_id}#四.(二).3~0"
    doc_id: str
    clause_id: str
    text: str  # original text of the piece
    norm_text: str  # normalised (simplified) text of the piece
    embed_text: str  # what the embedder sees: title / headings / label + norm_text
    start: int = 0
    end: int = 0
    extra: dict = field(default_factory=dict, compare=False, hash=False)
