"""Jieba tokens of normalised (simplified) text, for BM25 and lexical coverage.

>>> tokenize("自由职业者怎么交养老保险？")
['自由', '职业', '业者', '职业者', '自由职业者', '交', '养老', '保险', '养老保险']
"""
from __future__ import annotations

import logging
import re

import jieba

jieba.setLogLevel(logging.WARNING)

STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 等 要 对 为 把 被 将 由 从 以 于 之 其 这 那 该 此 个 也 都 就 还 并 而 且 但 "
    "吗 呢 吧 啊 么 什么 怎么 怎样 如何 哪些 哪个 多少 是否 有没有 可以 能 会 有 没有 一下 请问 请 我 我们 你 "
    "他 她 它 们 上 下 中 里 内 后 前 时 说 讲 规定 怎么办 应该 需要 关于 按照 根据 进行 一个 哪 谁 几".split()
)
_WORD = re.compile(r"[\u4e00-\u9fff]|[A-Za-z0-9]")


def tokenize(norm_text: str) -> list[str]:
    """Search-mode jieba tokens minus punctuation and stopwords (input already simplified)."""
    return [t for t in jieba.lcut_for_search(norm_text.lower())
            if _WORD.search(t) and t not in STOPWORDS]


def content_terms(norm_text: str) -> list[str]:
    """Distinct precise-mode content words of a question, longest first, for coverage checks."""
    seen = []
    for t in jieba.lcut(norm_text.lower()):
        if _WORD.search(t) and t not in STOPWORDS and t not in seen:
            seen.append(t)
    return seen
