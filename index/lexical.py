"""Jieba tokens of normalised (simplified) text, for BM25 and lexical coverage.

Thin functions over the default `Lexicon` (data/lexicon/), for the code that tokenizes without
an assistant at hand (the index pipeline, tests). The vocabulary itself is data: see
index/lexicon.py.

>>> tokenize("自由职业者怎么交养老保险？")
['自由', '职业', '业者', '职业者', '自由职业者', '交', '养老', '保险', '养老保险']
"""
from __future__ import annotations

from index.lexicon import load_lexicon


def tokenize(norm_text: str) -> list[str]:
    """Search-mode jieba tokens minus punctuation and stopwords (input already simplified)."""
    return load_lexicon().tokenize(norm_text)


def content_terms(norm_text: str) -> list[str]:
    """Distinct precise-mode content words of a question, in order, for coverage checks."""
    return load_lexicon().content_terms(norm_text)


def expand_query(norm_text: str) -> str:
    """Append document-vocabulary equivalents of everyday words: '怎么交社保' -> '怎么交社保 缴 缴纳 缴费 社会保险'."""
    return load_lexicon().expand(norm_text)
