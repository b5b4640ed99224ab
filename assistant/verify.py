"""Verify: keep only the citations of a model-written answer that name a shown clause and whose
quoted words are in it; a sentence left without a valid citation is dropped.

The work is linear in the reply's length: quotes are found in one pass (an unmatched opening
mark does not cost a scan to the end of the reply), each source is normalised once, and each
sentence is checked once per distinct source it cites.
"""
from __future__ import annotations

import re
from collections import Counter

from assistant.quotes import make_citation, quote_of
from assistant.types import Citation
from index.chunk import split_sentences
from index.normalize import to_simplified
from index.types import Clause, Document

MARKER = re.compile(r"\[(\d{1,2})\]")
SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")
OPENING = re.compile("[「“\"]")
CLOSING = re.compile("[」”\"]")


def find_quotes(text: str, max_quote_chars: int = 800) -> list[str]:
    """Quoted words of 4..max_quote_chars characters between 「」, “” or "" (any opening mark with
    any closing one), left to right without overlaps; one pass, however many marks are unmatched.

    >>> find_quotes('他说“甲乙丙丁”，又说“太长的一句话超过了十个字”，“未闭合', max_quote_chars=10)
    ['甲乙丙丁']
    """
    quotes: list[str] = []
    pos, next_close = 0, -1  # next_close: the first closing mark after the current opening one
    while (m := OPENING.search(text, pos)) is not None:
        i = m.start()
        if next_close <= i:  # closing marks are searched for once each, left to right
            c = CLOSING.search(text, i + 1)
            if c is None:
                break
            next_close = c.start()
        if 4 <= next_close - i - 1 <= max_quote_chars:
            quotes.append(text[i + 1:next_close])
            pos = next_close + 1
        else:
            pos = i + 1
    return quotes


def verify_citations(text: str, sources: list[tuple[Clause, Document]],
                     max_quote_chars: int = 800) -> tuple[str, list[Citation], list[str]]:
    """Keep only citations that name a shown source and whose quoted words are in it.

    Returns (cleaned text renumbered to the kept sources, citations, notices). A sentence left
    without any valid citation is dropped, so every remaining statement is traceable. A quote
    longer than `max_quote_chars` (the shown sources are no longer) is not taken for one.
    """
    notices: list[str] = []
    kept_sentences: list[str] = []
    used: dict[int, Citation] = {}
    src_norms: dict[int, str] = {}  # n -> normalised source text, computed once per source
    removed_markers = dropped = 0
    for sent in SENTENCE.findall(text):
        if not sent.strip():
            continue
        markers = Counter(int(m) for m in MARKER.findall(sent))  # n -> occurrences in this sentence
        bare = MARKER.sub("", sent).strip()
        quotes = list(dict.fromkeys(to_simplified(q) for q in find_quotes(bare, max_quote_chars)))
        grams = _bigrams(bare) if not quotes else set()
        good: list[int] = []
        for n, times in markers.items():
            if not 1 <= n <= len(sources):
                removed_markers += times
                continue
            if n not in src_norms:
                clause, doc = sources[n - 1]
                src_norms[n] = to_simplified(clause.text + doc.text[clause.start:clause.end])
            src_norm = src_norms[n]
            if quotes and not all(q in src_norm for q in quotes):
                removed_markers += times
                continue
            if not quotes and not _overlaps(grams, src_norm):
                removed_markers += times
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
        kept_sentences.append(bare.rstrip("。！？!?") + "".join(f"[{used[n].n}]" for n in good) + "。")
    if removed_markers:
        notices.append(f"已移除 {removed_markers} 处无法在所示条款中核实的引用")
    if dropped:
        notices.append(f"已删去 {dropped} 句没有有效出处的内容")
    return "".join(kept_sentences), list(used.values()), notices


def _bigrams(sentence: str) -> set[str]:
    """The CJK character bigrams of a sentence, simplified: '养老保险' -> {'养老', '老保', '保险'}."""
    s = to_simplified(sentence)
    return {s[i:i + 2] for i in range(len(s) - 1) if "\u4e00" <= s[i] <= "\u9fff"}


def _overlaps(grams: set[str], source_norm: str, need: float = 0.5) -> bool:
    """At least `need` of the sentence's character bigrams occur in the source."""
    if not grams:
        return False
    return sum(g in source_norm for g in grams) / len(grams) >= need


def _best_quote(quotes: list[str], sentence: str, clause: Clause) -> str:
    """The verified quote, or the clause sentence sharing most bigrams with the answer sentence."""
    clause_norm = to_simplified(clause.text)
    for q in quotes:
        idx = clause_norm.find(q)
        if idx >= 0:
            return clause.text[idx:idx + len(q)]
    s = to_simplified(sentence)
    grams = {s[i:i + 2] for i in range(len(s) - 1)}
    best, best_n = "", -1
    for sent in split_sentences(clause.text):
        q = quote_of(sent)
        q_norm = to_simplified(q)
        n = sum(g in q_norm for g in grams)
        if n > best_n:
            best, best_n = q, n
    return best
