"""Follow-up questions: resolve them against the conversation before retrieval.

Without a model the rewrite is deterministic: a follow-up ("那一次性补缴要交滞纳金吗?") gets the
topic words of the previous question prepended, and retrieval prefers the documents cited
in the previous answer.

>>> rewrite_followup("那一次性补缴要交滞纳金吗?", [{"role": "user", "content": "自由职业者怎么交养老保险?"}])
'自由职业者 养老保险 一次性补缴要交滞纳金吗?'
>>> rewrite_followup("地税部门负责什么?", [])
'地税部门负责什么?'
"""
from __future__ import annotations

import re

from index.lexical import content_terms
from index.normalize import to_simplified

FOLLOWUP_START = re.compile(r"^(?:那么?|那如果|那要是|如果是|要是|还有|另外|此外|这个|这些|那个|那些|它|他们|其|该|这|上述|同样|也)")
FOLLOWUP_ANYWHERE = re.compile(r"这个|那个|这些|那些|上述|该项|该条|它们?|他们|其中|呢[?？]?$|这种|那种|这一条|这条")
# words that carry no topic of their own
WEAK = set("交 缴 办 要 能 可以 需要 还 吗 呢 怎么 如何 什么 哪些 哪个 多少 是否 有 没有 一次性 规定 条 款 部门 负责".split())


def is_followup(question: str, history: list[dict]) -> bool:
    """A question that leans on earlier turns: starts with 那/这…, points back, or is very short."""
    if not any(t.get("role") == "user" for t in history):
        return False
    q = to_simplified(question.strip())
    topic = [t for t in content_terms(q) if t not in WEAK and len(t) > 1]
    return bool(FOLLOWUP_START.match(q) or FOLLOWUP_ANYWHERE.search(q) or len(topic) <= 1)


def topic_words(text: str, limit: int = 3) -> list[str]:
    """Longest content words of a question: '自由职业者怎么交养老保险?' -> ['自由职业者', '养老保险']."""
    words = [t for t in content_terms(to_simplified(text)) if t not in WEAK and len(t) > 1]
    return words[:limit]


def rewrite_followup(question: str, history: list[dict]) -> str:
    """Deterministic stand-alone version of a follow-up; other questions come back unchanged."""
    if not is_followup(question, history):
        return question
    previous = [t["content"] for t in history if t.get("role") == "user"]
    carry: list[str] = []
    q_norm = to_simplified(question)
    for text in reversed(previous[-2:]):
        for w in topic_words(text):
            if w not in carry and w not in q_norm:
                carry.append(w)
    stripped = FOLLOWUP_START.sub("", question.strip()).lstrip("，, ")
    return (" ".join(carry) + " " + stripped).strip() if carry else question
