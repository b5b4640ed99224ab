"""Article keys: one name for an article across indexes and data sets ('民法典第五十四条').

A key is the law's title without the leading '中华人民共和国' (whitespace collapsed) plus the
label of the 条 a clause belongs to; a 款 or 项 has its article's key. STARD names its gold
articles so (eval/stard.py), and the question memory (assistant/memory.py) remembers cited
articles so, which lets it find them again in any index that holds the law.

>>> law_key("中华人民共和国民法典", "第五十四条")
'民法典第五十四条'
>>> law_of("民法典第五十四条")
'民法典'
>>> article_of(("第十条", "第二款"))
'第十条'
"""
from __future__ import annotations

import re

PREFIX = "中华人民共和国"
ARTICLE = re.compile(r"第[一二三四五六七八九十百千零〇两]+条(?:之[一二三四五六七八九十]+)?")


def law_key(title: str, article: str) -> str:
    """'中华人民共和国民法典', '第五十四条' -> '民法典第五十四条'."""
    return " ".join(title.split()).removeprefix(PREFIX) + article


def law_name(title: str) -> str:
    """A law's name as article keys begin with it: '中华人民共和国 劳动法' -> '劳动法'."""
    return law_key(title, "")


def docs_by_law(docs) -> dict[str, tuple[str, ...]]:
    """Law name -> the doc_ids of its documents (its versions), for documents with .title and .doc_id."""
    out: dict[str, list[str]] = {}
    for d in docs:
        out.setdefault(law_name(d.title), []).append(d.doc_id)
    return {law: tuple(ids) for law, ids in out.items()}


def law_of(key: str) -> str:
    """The law of an article key: '民法典第五十四条' -> '民法典'; a key without an article is its own law."""
    found = list(ARTICLE.finditer(key))
    return key[: found[-1].start()] if found and found[-1].end() == len(key) else key


def article_of(path: tuple[str, ...]) -> str | None:
    """The 条 a clause belongs to: ('第十条', '第二款') -> '第十条'; None for chapters, preambles."""
    return next((p for p in path if ARTICLE.fullmatch(p)), None)


def clause_key(doc, clause) -> str:
    """The law and article a clause belongs to ('劳动合同法第十条'), or the clause itself outside articles."""
    art = article_of(clause.path)
    return law_key(doc.title, art) if art else f"{doc.doc_id}#{clause.label}"


def chunk_keys(data) -> list[str]:
    """The key of every chunk row of an index, in row order (each clause's key made once)."""
    key_of: dict[int, str] = {}
    out = []
    for ch in data.chunks:
        k = key_of.get(ch.clause_id)
        if k is None:
            k = key_of[ch.clause_id] = clause_key(data.docs[ch.doc_id], data.clauses[ch.clause_id])
        out.append(k)
    return out
