"""Follow-up questions: resolve them against the conversation before retrieval.

Without a model the rewrite is deterministic: a follow-up ("那一次性补缴要交滞纳金吗?") gets the
topic words of the previous question prepended, and retrieval prefers the documents cited
in the previous answer.

>>> rewrite_followup("那一次性补缴要交滞纳金吗?", [{"role": "user", "content": "自由职业者怎么交养老保险?"}])
'自由职业者 养老保险 一次性补缴要交滞纳金吗?'
>>> rewrite_followup("那工商部门呢?", [{"role": "user", "content": "地税部门在扩面工作中负责什么?"}])
'工商部门在扩面工作中负责什么?'
>>> rewrite_followup("地税部门负责什么?", [])
'地税部门负责什么?'
"""
from __future__ import annotations

from assistant.lookup import parse_clause_ref
from index.lexicon import Lexicon, load_lexicon
from index.normalize import to_simplified

# The vocabulary is the lexicon's (data/lexicon): patterns followup_start, followup_anywhere and
# followup_what_about, and the word set followup_weak (words that carry no topic of their own).


def has_user_turn(history) -> bool:
    """Whether earlier questions stand in the conversation (it can be leaned on)."""
    return any(t.get("role") == "user" for t in history or ())


def is_followup(question: str, history: list[dict], lexicon: Lexicon | None = None) -> bool:
    """A question that leans on earlier turns: starts with 那/这…, points back, or is very short."""
    if not has_user_turn(history):
        return False
    lex = lexicon or load_lexicon()
    q = to_simplified(question.strip())
    return bool(lex.pattern("followup_start").match(q) or lex.pattern("followup_anywhere").search(q)
                or len(topic_words(q, limit=None, lexicon=lex)) <= 1)


def topic_words(text: str, limit: int | None = 3, lexicon: Lexicon | None = None) -> list[str]:
    """Longest content words of a question: '自由职业者怎么交养老保险?' -> ['自由职业者', '养老保险']."""
    lex = lexicon or load_lexicon()
    weak = lex.words("followup_weak")
    words = [t for t in lex.content_terms(to_simplified(text)) if t not in weak and len(t) > 1]
    return words[:limit]


def _common_suffix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _same_level(a: list[tuple[set, int]], b: list[tuple[set, int]]) -> bool:
    """Two clause references with as many levels, each of a kind the other allows."""
    return bool(a) and len(a) == len(b) and all(ka & kb for (ka, _), (kb, _) in zip(a, b))


def rewrite_followup(question: str, history: list[dict], lexicon: Lexicon | None = None, force: bool = False) -> str:
    """Deterministic stand-alone version of a follow-up; other questions come back unchanged,
    unless `force` reads them as follow-ups all the same ('企业缴的能税前列支多少?' after a question
    on 企业年金 has no word that points back).

    "那X呢?" puts X in the place of its counterpart in the previous question:
    "地税部门在扩面工作中负责什么?" + "那工商部门呢?" -> "工商部门在扩面工作中负责什么?",
    "劳动法第二条讲了什么" + "那第七条呢?" -> "劳动法第七条讲了什么".
    """
    lex = lexicon or load_lexicon()
    if not (force and has_user_turn(history) or is_followup(question, history, lex)):
        return question
    previous = [t["content"] for t in history if t.get("role") == "user"]
    start = lex.pattern("followup_start")
    m = lex.pattern("followup_what_about").match(to_simplified(question.strip()))
    if m and previous:
        x = m.group("x")
        last = to_simplified(previous[-1])
        toks = lex.jieba.lcut(last)
        weak = lex.words("followup_weak")
        spans = {"".join(toks[i:j]) for i in range(len(toks)) for j in range(i + 1, min(len(toks), i + 3) + 1)}
        spans = [w for w in spans if len(w) >= 2 and w not in weak]
        x_ref = parse_clause_ref(x, lex)
        # "那第七条呢?" after "劳动法第二条讲了什么": a clause number stands for one of its own level
        refs = [w for w in spans if _same_level(parse_clause_ref(w, lex), x_ref)] if x_ref else []
        if refs:
            return last.replace(min(refs, key=len), x, 1)
        best = max(spans, key=lambda w: (_common_suffix(w, x), -abs(len(w) - len(x))), default="")
        if best and _common_suffix(best, x) >= 2 and best != x:
            return last.replace(best, x, 1)
    stripped = start.sub("", question.strip()).lstrip("，, ")
    # counted without its opener: jieba reads '那要提前多久通知' as 那要|提前|多久|通知
    if len(topic_words(stripped, limit=5, lexicon=lex)) >= 4:
        # "那对拖欠社保费的企业怎么处理?" says what it asks; the conversation only picks the document
        return stripped or question
    carry: list[str] = []
    q_norm = to_simplified(question)
    own_ref = bool(parse_clause_ref(q_norm, lex))
    for text in reversed(previous[-2:]):
        for w in topic_words(text, lexicon=lex):
            if w not in carry and w not in q_norm and not (own_ref and parse_clause_ref(w, lex)):
                carry.append(w)  # a clause number of its own is not joined by the previous one
    return (" ".join(carry) + " " + stripped).strip() if carry else question
