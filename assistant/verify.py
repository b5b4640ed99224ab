"""Verify: keep only the citations of a model-written answer that name a shown clause and whose
quoted words are in it; a sentence left without a valid citation is dropped."""
from __future__ import annotations

import re

from assistant.quotes import make_citation, quote_of
from assistant.types import Citation
from index.chunk import split_sentences
from index.normalize import to_simplified
from index.types import Clause, Document

MARKER = re.compile(r"\[(\d{1,2})\]")
QUOTED = re.compile(r"[「“\"]([^」”\"]{4,})[」”\"]")
SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")


def verify_citations(text: str, sources: list[tuple[Clause, Document]]) -> tuple[str, list[Citation], list[str]]:
    """Keep only citations that name a shown source and whose quoted words are in it.

    Returns (cleaned text renumbered to the kept sources, citations, notices). A sentence left
    without any valid citation is dropped, so every remaining statement is traceable.
    """
    notices: list[str] = []
    kept_sentences: list[str] = []
    used: dict[int, Citation] = {}
    removed_markers = dropped = 0
    for sent in SENTENCE.findall(text):
        if not sent.strip():
            continue
        markers = [int(m) for m in MARKER.findall(sent)]
        bare = MARKER.sub("", sent).strip()
        quotes = QUOTED.findall(bare)
        good: list[int] = []
        for n in markers:
            if not 1 <= n <= len(sources):
                removed_markers += 1
                continue
            clause, doc = sources[n - 1]
            src_norm = to_simplified(clause.text + doc.text[clause.start:clause.end])
            if quotes and not all(to_simplified(q) in src_norm for q in quotes):
                removed_markers += 1
                continue
            if not quotes and not _overlaps(bare, src_norm):
                removed_markers += 1
                continue
            good.append(n)
        if not good:
            if markers or len(bare) > 6:
                dropped += 1
            continue
        for n in good:
            if n not in used:
                clause, doc = sources[n - 1]
                used[n] = make_citation(len(used) + 1, clause, doc, _best_quote(quotes, bare, clause))
        kept_sentences.append(bare.rstrip("。！？!?") + "".join(f"[{used[n].n}]" for n in dict.fromkeys(good)) + "。")
    if removed_markers:
        notices.append(f"已移除 {removed_markers} 处无法在所示条款中核实的引用")
    if dropped:
        notices.append(f"已删去 {dropped} 句没有有效出处的内容")
    return "".join(kept_sentences), list(used.values()), notices


def _overlaps(sentence: str, source_norm: str, need: float = 0.5) -> bool:
    """At least `need` of the sentence's character bigrams occur in the source."""
    s = to_simplified(sentence)
    grams = {s[i:i + 2] for i in range(len(s) - 1) if "\u4e00" <= s[i] <= "\u9fff"}
    if not grams:
        return False
    return sum(g in source_norm for g in grams) / len(grams) >= need


def _best_quote(quotes: list[str], sentence: str, clause: Clause) -> str:
    """The verified quote, or the clause sentence sharing most bigrams with the answer sentence."""
    for q in quotes:
        idx = to_simplified(clause.text).find(to_simplified(q))
        if idx >= 0:
            return clause.text[idx:idx + len(q)]
    s = to_simplified(sentence)
    grams = {s[i:i + 2] for i in range(len(s) - 1)}
    best, best_n = "", -1
    for sent in split_sentences(clause.text):
        q = quote_of(sent)
        n = sum(g in to_simplified(q) for g in grams)
        if n > best_n:
            best, best_n = q, n
    return best
