"""How a question's words meet a clause's: the actor a question opens with, whether a clause
opens with it, and the longest run of characters both share (features and sentence choice)."""
from __future__ import annotations

import re

from assistant.quotes import LEADING_MARKER
from index.lexicon import Lexicon

PUNCT = re.compile(r"[\s,，。；;：:！？!?、“”\"'（）()《》]")


def question_subject(question_norm: str, lexicon: Lexicon) -> str:
    """The actor a question opens with: '地税部门在扩面工作中负责什么' -> '地税部门';
    '专项行动里工商部门负责什么' -> '工商部门' (a scene before 里/中 is not the actor); '' if none."""
    words: list[str] = []
    question_norm = question_norm.strip()
    from index.places import load_gazetteer

    lead = load_gazetteer().find(question_norm[:8])
    for name in ((lead[0].name, lead[0].short) if lead else ()):
        if question_norm.startswith(name):  # '本溪的专项行动里…': the place is not the actor
            question_norm = question_norm[len(name):].removeprefix("的")
            break
    stop, locative = lexicon.words("subject_stop"), lexicon.words("locative")
    for w in lexicon.jieba.lcut(question_norm):
        if w in stop or not w.strip():
            break
        words = [] if w in locative else words + [w]
    subject = "".join(words)
    return subject if 2 <= len(subject) <= 12 and lexicon.pattern("agent").search(subject) else ""


def opens_with(subject: str, text_norm: str, agent: re.Pattern) -> bool:
    """Whether a text names `subject` in its first words; a short name matches its full form
    ('工商部门' opens '工商行政管理部门…')."""
    if not subject:
        return False
    head = LEADING_MARKER.sub("", text_norm.lstrip())[: len(subject) + 8]
    if subject in head[: len(subject) + 4]:
        return True
    m = agent.search(subject)
    stem = subject[: m.start()] if m else ""
    if len(stem) < 2:
        return False
    return re.match(".{0,4}?".join(map(re.escape, stem)) + ".{0,6}?" + re.escape(m.group()), head) is not None


def shared_phrase(question_norm: str, text_norm: str) -> int:
    """Length of the longest run of characters both share, punctuation left out, at most 24:
    ('低保标准是多少', '城市低保标准由') -> 4."""
    return longest_shared_run(PUNCT.sub("", question_norm), PUNCT.sub("", text_norm))


def longest_shared_run(q: str, t: str, cap: int = 24) -> int:
    """Length of the longest substring of q that occurs in t, at most cap: ('低保标准是多少', '城市低保标准由') -> 4.

    One pass over q's start positions: once a shared run of b is known, a start position matters
    only if the b + 1 characters from it occur in t, so each position costs one test (and each
    lengthening one more), where a binary search on the length tests every position per probe.
    """
    best, i, n = 0, 0, len(q)
    cap = min(n, len(t), cap)
    while best < cap and i + best < n:
        if q[i:i + best + 1] in t:
            best += 1
        else:
            i += 1
    return best
