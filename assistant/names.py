"""Which documents a question names: by the words of their title, 文号, issuer and file name.

>>> from index.types import Document, DocumentMeta
>>> docs = [Document(i, f"{i}.txt", "", "0", DocumentMeta(title=t), "", "", "simplified")
...         for i, t in (("a", "本溪市专项行动实施方案"), ("b", "天津市社会保障体系规划纲要"))]
>>> [d.doc_id for s, d in DocumentNames(docs, frozenset({"实施", "方案"})).score("规划纲要第二部分")]
['b']
"""
from __future__ import annotations

import re
from functools import lru_cache

from index.types import Document


def bigrams(text: str) -> set[str]:
    chars = [c for c in text if "\u4e00" <= c <= "\u9fff" or c.isalnum()]
    return {a + b for a, b in zip(chars, chars[1:])}


@lru_cache(maxsize=65536)
def _name_bigrams(title: str, doc_number: str, issuer: str, file_name: str = "") -> frozenset:
    from index.normalize import to_simplified

    return frozenset(bigrams(to_simplified(" ".join((title, doc_number, issuer, file_name)))))


def file_name_words(source: str) -> str:
    """The Chinese words of a file name: '婚姻家庭编.md' -> '婚姻家庭编' (a book of the 民法典, whose
    title is the code's); '000_2091bd9ddadc96bd.txt' -> ''."""
    return "".join(re.findall(r"[\u4e00-\u9fff]+", source.rsplit("/", 1)[-1]))


class DocumentNames:
    """Which documents a question names, by the bigrams of their title, 文号 and issuer (and, with
    `file_names`, the Chinese words of their file name).

    An inverted index (bigram -> documents), so naming one of 1,510 laws costs what one of
    five costs. A shared bigram scores 1, a `generic` one ('通知', '人民': the lexicon's word set
    generic_name_bigrams) 0.2.
    """

    def __init__(self, docs: list[Document], generic: frozenset[str], file_names: bool = False):
        self.docs = list(docs)
        self.generic = generic
        self.postings: dict[str, list[int]] = {}
        self.distinctive: list[int] = []  # how many distinctive bigrams each document's name has
        for i, d in enumerate(self.docs):
            name = _name_bigrams(d.title, d.meta.doc_number, d.meta.issuer,
                                 file_name_words(d.source) if file_names else "")
            self.distinctive.append(len(name - self.generic))
            for bg in name:
                self.postings.setdefault(bg, []).append(i)

    def score(self, question_norm: str) -> list[tuple[float, Document]]:
        """(score, document) for every document the question shares a bigram with, best first.

        Loose names work: "两个确保的那份通知", "本溪的专项行动方案", "规划纲要". Of equal scores,
        the name the question says more of comes first: "民法典第五十四条" is 中华人民共和国民法典,
        not a 《…民法典》时间效力的若干规定 that also contains the word.
        """
        return [(-key[0], self.docs[i]) for key, i in self._ranked(question_norm)]

    def near_best(self, question_norm: str, allowed: set[str] | None = None,
                  min_score: float = 1.0) -> list[list[Document]]:
        """The documents named about as clearly as the best, in groups of equal standing, best
        first: those that share at most one distinctive name word fewer with the question. A clause
        the best-named document lacks is looked for in the next ('民法典婚姻家庭编第一千零七十九条':
        婚姻家庭编的解释 names more of the question, the code's book holds the article)."""
        ranked = [(key, i) for key, i in self._ranked(question_norm)
                  if -key[0] >= min_score and (allowed is None or self.docs[i].doc_id in allowed)]
        groups: list[list[Document]] = []
        last = None
        for key, i in ranked:
            if -key[0] < -ranked[0][0][0] - 1.0:
                break
            if key[:2] != last:
                groups.append([])
                last = key[:2]
            groups[-1].append(self.docs[i])
        return groups

    def _ranked(self, question_norm: str) -> list[tuple[tuple, int]]:
        """((-score, unmentioned distinctive name bigrams, position), document index), best first."""
        scores: dict[int, float] = {}
        shared: dict[int, int] = {}
        for bg in bigrams(question_norm):
            generic = bg in self.generic
            for i in self.postings.get(bg, ()):
                scores[i] = scores.get(i, 0.0) + (0.2 if generic else 1.0)
                shared[i] = shared.get(i, 0) + (not generic)
        return sorted(((-scores[i], self.distinctive[i] - shared[i], i), i) for i in scores)
