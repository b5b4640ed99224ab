"""Citations and quotes: the verbatim words of a clause, and the Citation that names it."""
from __future__ import annotations

import re

from assistant.types import Citation
from index.clean import MOJIBAKE_SPAN
from index.types import Clause, Document
from index.versions import version_date

LEADING_MARKER = re.compile(r"^\s*(?:第[一二三四五六七八九十百零]+条(?:之[一二三四五六七八九十]+)?\s*|[一二三四五六七八九十]+、|[(（][一二三四五六七八九十\d]+[)）]|\d{1,2}[.．、](?!\d)|[①-⑳])\s*")


def quote_of(sentence: str) -> str:
    """The quotable part of a sentence: without its clause marker or a garbled marker before it."""
    quote = LEADING_MARKER.sub("", sentence).strip()
    m = MOJIBAKE_SPAN.match(quote)
    if m:
        quote = quote[m.end():].strip()
    return quote


def make_citation(n: int, clause: Clause, doc: Document, quote: str) -> Citation:
    return Citation(n=n, doc_id=doc.doc_id, source=doc.source, title=doc.title, doc_number=doc.meta.doc_number,
                    label=clause.label, path=clause.path, headings=clause.headings, quote=quote,
                    text=clause.text, clause_id=clause.clause_id, page=clause.page, version=version_date(doc))


def short_title(title: str, limit: int = 28) -> str:
    return title if len(title) <= limit else title[:limit] + "…"


def contiguous_span(text: str, a: str, b: str, max_gap: int = 40) -> str | None:
    """The verbatim span of `text` running from quote a to quote b (either order) when they are close.

    >>> contiguous_span("甲乙丙。丁戊己。", "甲乙丙", "丁戊己")
    '甲乙丙。丁戊己'
    """
    i, j = text.find(a), text.find(b)
    if i < 0 or j < 0:
        return None
    (s1, e1), (s2, e2) = sorted([(i, i + len(a)), (j, j + len(b))])
    if s2 - e1 > max_gap:
        return None
    return text[s1:max(e1, e2)]
