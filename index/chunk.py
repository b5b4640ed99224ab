"""Split clauses into chunks that never cross a clause boundary.

A clause's own text becomes one chunk, or several cut at sentence ends when it is longer
than `max_chars`; every piece keeps its clause's id and label. A law article that fits is
chunked whole (its 款 and 项 inside), since the article is what people look up.
"""
from __future__ import annotations

import re

from index.normalize import to_simplified
from index.types import Chunk, Document

SENTENCE_END = re.compile(r"(?<=[。；;！？!?\n])")


def split_sentences(text: str) -> list[str]:
    """'甲。乙；丙' -> ['甲。', '乙；', '丙'] (empty pieces dropped, punctuation kept; a line end also ends)."""
    return [s.rstrip("\n") for s in SENTENCE_END.split(text) if s.strip()]


def split_long(text: str, max_chars: int) -> list[str]:
    """Pack sentences into pieces of at most max_chars; a longer sentence is cut hard."""
    pieces: list[str] = []
    cur = ""
    # raw pieces keep their line ends, so every chunk is a verbatim span of the clause
    for sent in (s for s in SENTENCE_END.split(text) if s):
        while len(sent) > max_chars:
            if cur:
                pieces.append(cur)
                cur = ""
            pieces.append(sent[:max_chars])
            sent = sent[max_chars:]
        if len(cur) + len(sent) > max_chars and cur:
            pieces.append(cur)
            cur = ""
        cur += sent
    if cur.strip():
        pieces.append(cur)
    return [p.strip() for p in pieces if p.strip()]


def chunk_document(doc: Document, max_chars: int) -> list[Chunk]:
    """Chunks of one document in reading order; ids are '{sha[:10]}:{clause path}~{i}'.

    Headings (第X编/章/节) travel with their articles; a document that is nothing but headings
    is chunked heading by heading, so that every document with clauses can be found.
    """
    return _chunks(doc, max_chars, headings=False) or _chunks(doc, max_chars, headings=True)


def _chunks(doc: Document, max_chars: int, headings: bool) -> list[Chunk]:
    chunks: list[Chunk] = []
    # the issuer names the place (天津市…) when the title does not; laws have none
    title = to_simplified(" ".join(x for x in (doc.title, doc.meta.issuer) if x))
    covered_until = -1
    for clause in doc.clauses:
        if clause.start < covered_until:
            continue  # inside an article chunked whole
        if clause.kind in ("chapter", "section", "part") and not headings:
            continue  # headings travel with their articles' embed text
        text, end = clause.text, clause.start + len(clause.text)
        if clause.kind == "article":
            whole = doc.text[clause.start:clause.end].strip()
            if len(whole) <= max_chars:
                text, covered_until, end = whole, clause.end, clause.end
        context = " / ".join(to_simplified(h) for h in clause.headings)
        for i, piece in enumerate(split_long(text, max_chars)):
            norm = to_simplified(piece)
            chunks.append(Chunk(
                chunk_id=f"{doc.sha256[:10]}:{'.'.join(clause.path)}~{i}",
                doc_id=doc.doc_id,
                clause_id=clause.clause_id,
                text=piece,
                norm_text=norm,
                # the label is left out where the text already opens with it ("第五条 …")
                embed_text=" ".join(x for x in (title, context, "" if norm.startswith(clause.label) else clause.label) if x)
                + "\n" + norm,
                start=clause.start,
                end=end,
            ))
    return chunks
