"""Query expansion learned from questions and the clauses that answer them.

Citizens and the texts that answer them use different words: a question says 老板, 辞退, 工资,
the law says 用人单位, 解除劳动合同, 劳动报酬. From (question, gold article) pairs, `fit_expansion`
learns which clause words go with which question words: for a question word q and a clause word a,

    assoc(q, a) = P(a in the gold article | q in the question) * log(lift),
    lift = P(a in the gold article | q) / P(a in any chunk of the index)

kept where a followed q in at least `min_pairs` pairs and lift > `min_lift`, the `per_term` best
a of each q. Only words the law rarely says itself are expanded: a question word in more than
`own_df` chunks of the index (负责, 部门, 工商, 公司) is the law's own word, and what follows it in
STARD's answers is the topics STARD asks about (负责 -> 保管人, 承揽人), not its translation; it
would pull contract articles into a question about a department's duties. Numerals are never expansion words: 八百 follows 公司 only because the company
articles of 民法典 are numbered 第八百…条, and a number a question does not ask is no clue. A question's expansion sums assoc over its words, drops words it has already, keeps
the `terms` best and scales them so the best weighs `weight` (the question's own words weigh 1).
The expanded BM25 is a fourth first-stage search (`FirstStage.expanded` rows) and a ranker feature.

Worked example: pairs (老板 辞退 → 用人单位 解除), (老板 工资 → 用人单位 劳动报酬) give 老板 → 用人单位 in
2 of 2 pairs, P = 2 / (2 + 2) = 0.5 (two pseudo-pairs without it); with 用人单位 in 1% of chunks,
lift = 50 and assoc = 0.5 * log(50) = 1.96.

The table is fitted by `python -m eval train` on STARD's train split only and saved inside the
ranker file, whose features were computed with it.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from assistant.adapter import QueryAdapter
from assistant.candidates import PoolSettings
from assistant.memory import QuestionMemory
from index.clauses import CN_NUM

NUMERAL = re.compile(rf"(?:第?{CN_NUM}[条章节款项编]?|[\d.%％]+)")


@dataclass(frozen=True)
class Expansion:
    """Question word -> ((clause word, assoc), ...) and how much of it a question takes."""

    table: dict = field(default_factory=dict)  # str -> tuple[tuple[str, float], ...], best first
    terms: int = 20  # expansion words per question
    weight: float = 0.5  # of the best expansion word; the question's own words weigh 1
    own_df: int | None = None  # what the table was fitted with (fit_expansion); a record, not used here
    min_articles: int = 1  # likewise a record of the fit

    def expand(self, tokens: list[str]) -> tuple[list[str], list[float]]:
        """(words, weights) to add to a question's BM25 tokens; ([], []) when nothing is learned.

        >>> e = Expansion({"老板": (("用人单位", 4.0), ("劳动", 1.0)), "辞退": (("解除", 2.0),)}, terms=2, weight=0.5)
        >>> e.expand(["老板", "辞退", "劳动"])
        (['用人单位', '解除'], [0.5, 0.25])
        """
        own = set(tokens)
        score: Counter = Counter()
        for t in own:
            for a, v in self.table.get(t, ()):
                if a not in own:
                    score[a] += v
        best = sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[: self.terms]
        if not best or best[0][1] <= 0:
            return [], []
        top = best[0][1]
        return [a for a, _ in best], [self.weight * v / top for _, v in best]

    def to_json(self) -> dict:
        return {"terms": self.terms, "weight": self.weight, "own_df": self.own_df, "min_articles": self.min_articles,
                "table": {q: [[a, round(v, 4)] for a, v in pairs] for q, pairs in sorted(self.table.items())}}

    @classmethod
    def from_json(cls, raw: dict) -> "Expansion":
        table = {q: tuple((str(a), float(v)) for a, v in pairs) for q, pairs in raw.get("table", {}).items()}
        own = raw.get("own_df")
        return cls(table, int(raw.get("terms", 20)), float(raw.get("weight", 0.5)), None if own is None else int(own),
                   int(raw.get("min_articles", 1)))


@dataclass(frozen=True)
class FirstStage:
    """What gathers the candidates: the pool depths, the learned expansion, the learned query
    adapter (assistant/adapter.py) and the question memory (assistant/memory.py); None: none."""

    pool: PoolSettings = PoolSettings()
    expansion: Expansion | None = None
    adapter: QueryAdapter | None = None
    memory: QuestionMemory | None = None


def fit_expansion(pairs: list[tuple[set[str], set[str] | dict[str, set[str]]]], doc_freq, n_chunks: int,
                  min_pairs: int = 2, min_lift: float = 3.0, per_term: int = 30, own_df: int | None = None,
                  min_articles: int = 1, **kw) -> Expansion:
    """Learn the table from (question words, gold clause words) pairs; `doc_freq(word)` counts the
    index chunks holding a word (0: not in the index, never an expansion). A pair's answer may be
    {gold article: its words}: then a word is learned only where at least `min_articles` different
    gold articles taught it, so that one article many questions cite does not become what a
    question word means (判刑 -> 扒窃, 入户, 凶器: the words of the theft article alone).

    >>> pairs = [({"老板", "辞退"}, {"用人单位", "解除"}), ({"老板", "工资"}, {"用人单位", "劳动报酬"})]
    >>> fit_expansion(pairs, lambda w: 1, 100).table["老板"][0][0]
    '用人单位'
    >>> pairs += [({"工资", "拖欠"}, {"劳动报酬"})]
    >>> df = {"老板": 0, "工资": 50}
    >>> sorted(fit_expansion(pairs, lambda w: df.get(w, 1), 100).table)
    ['工资', '老板']
    >>> sorted(fit_expansion(pairs, lambda w: df.get(w, 1), 100, own_df=10).table)
    ['老板']
    >>> hub = [({"判刑"}, {"刑法264": {"盗窃", "徒刑"}}), ({"判刑"}, {"刑法264": {"盗窃", "徒刑"}}),
    ...        ({"判刑"}, {"刑法336": {"行医", "徒刑"}})]
    >>> [a for a, _ in fit_expansion(hub, lambda w: 1, 100).table["判刑"]]
    ['徒刑', '盗窃']
    >>> [a for a, _ in fit_expansion(hub, lambda w: 1, 100, min_articles=2).table["判刑"]]
    ['徒刑']
    """
    asked: Counter = Counter()
    together: Counter = Counter()
    taught_by: dict[tuple[str, str], set[str]] = {}  # (q, a) -> the gold articles that taught it
    for question, answer in pairs:
        by_article = answer if isinstance(answer, dict) else {}
        words = set().union(*by_article.values()) if by_article else answer
        for q in question:
            if own_df is not None and doc_freq(q) > own_df:
                continue
            asked[q] += 1
            together.update((q, a) for a in words if a != q)
            if min_articles > 1:
                for article, article_words in by_article.items():
                    for a in article_words:
                        taught_by.setdefault((q, a), set()).add(article)
    table: dict[str, list] = {}
    for (q, a), c in together.items():
        df = doc_freq(a)
        if c < min_pairs or not df or NUMERAL.fullmatch(a):
            continue
        if min_articles > 1 and len(taught_by.get((q, a), ())) < min_articles:
            continue
        p = c / (asked[q] + 2)  # two pseudo-questions without a: few pairs, little trust
        lift = p / ((df + 1) / max(n_chunks, 1))
        if lift > min_lift:
            table.setdefault(q, []).append((a, p * math.log(lift)))
    return Expansion({q: tuple(sorted(v, key=lambda kv: (-kv[1], kv[0]))[:per_term]) for q, v in table.items()},
                     own_df=own_df, min_articles=min_articles, **kw)
