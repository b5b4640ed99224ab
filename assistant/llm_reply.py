"""A model-written reply: stream the model's words over the best clauses, then keep only what
the clauses really say (assistant/verify.py checks every quote against its clause's text).

`llm_events` yields ('delta', text) while the model writes and ends with ('reply', LLMReply).
A reply cut at the deadline or the length cap keeps what came, with a notice; a cut before any
text, a dead endpoint or an empty reply raise LLMUnavailable, and the caller answers extractively.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from assistant.llm import LLMAnswerer
from assistant.types import Citation, Hit
from assistant.verify import verify_citations
from index.errors import LLMReplyCut, LLMUnavailable
from index.settings import Settings


class LLMReply(NamedTuple):
    """The verified reply: its text, the citations whose quotes hold, and notices about it."""

    text: str
    citations: list[Citation]
    notices: list[str]


def llm_events(chat_model, settings: Settings, question: str, hits: list[Hit]) -> Iterator[tuple[str, object]]:
    """('delta', text) as the model writes over the first `llm_sources` hits, then ('reply', LLMReply)."""
    sources = hits[:settings.llm_sources]
    shown = [{"title": h.doc.title, "label": h.clause.label,
              "text": h.doc.text[h.clause.start:h.clause.end].strip()[:settings.llm_source_chars]} for h in sources]
    deltas, notices = [], []
    try:
        for delta in LLMAnswerer.from_settings(chat_model, settings).stream_answer(question, shown):
            deltas.append(delta)
            yield "delta", delta
    except LLMReplyCut as exc:  # past the deadline or the length cap: keep what came
        if not "".join(deltas).strip():
            raise
        notices.append(str(exc))
    raw = "".join(deltas)[:settings.llm_max_reply_chars].strip()
    if not raw:
        raise LLMUnavailable("LLM returned an empty answer")
    # the model saw at most llm_source_chars of each clause, so no true quote is longer
    text, citations, more = verify_citations(raw, [(h.clause, h.doc) for h in sources],
                                             max_quote_chars=settings.llm_source_chars)
    yield "reply", LLMReply(text, citations, notices + list(more))
