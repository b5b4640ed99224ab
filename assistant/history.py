"""Conversation history as the assistant reads it: plain text messages, bounded in turns and characters.

Every entry point (chat, API, CLI, batch) hands its history to `Assistant.prepare`, which
bounds it here, so no client can make a follow-up cost more than a few questions' worth of work.

    >>> bound_history([{"role": "user", "content": "甲" * 50}] * 3, max_messages=2, max_chars=60, max_message_chars=40)
    [{'role': 'user', 'content': '甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲甲…'}]
"""
from __future__ import annotations

ROLES = ("user", "assistant")


def _text_of(part) -> str:
    """The text of one content part: a string, or {"type": "text", "text": ...}; anything else is ''."""
    if isinstance(part, str):
        return part
    text = part.get("text") if isinstance(part, dict) else None
    return text if isinstance(text, str) else ""


def plain_history(history) -> list[dict]:
    """Chatbot/API history -> [{'role', 'content': str}], dropping non-text parts and status messages.

    Gradio 6 hands message content over as a list of parts: [{'type': 'text', 'text': '...'}].
    Anything that is not a message (None, strings, numbers, unknown roles) is skipped.
    """
    out = []
    for m in history if isinstance(history, (list, tuple)) else []:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            continue
        if isinstance(m.get("metadata"), dict) and m["metadata"].get("title"):
            continue
        content = m.get("content")
        if isinstance(content, (list, tuple)):
            content = "".join(_text_of(p) for p in content)
        elif isinstance(content, dict):
            content = _text_of(content)
        if isinstance(content, str) and content.strip():
            out.append({"role": m["role"], "content": content})
    return out


def bound_history(history, max_messages: int, max_chars: int, max_message_chars: int) -> list[dict]:
    """The latest messages of `history` (cleaned by plain_history) within the bounds.

    Each message is cut to `max_message_chars` (marked with '…'), then the oldest messages are
    dropped until at most `max_messages` remain whose total length is at most `max_chars`.
    """
    messages = plain_history(history)[-max_messages:] if max_messages > 0 else []
    clipped = [m if len(m["content"]) <= max_message_chars else
               {"role": m["role"], "content": m["content"][:max(0, max_message_chars - 1)] + "…"} for m in messages]
    kept: list[dict] = []
    total = 0
    for m in reversed(clipped):
        total += len(m["content"])
        if total > max_chars:
            break
        kept.append(m)
    return kept[::-1]


def history_bounds(settings) -> dict:
    """The bound_history keyword arguments a Settings asks for."""
    return dict(max_messages=settings.max_history_messages, max_chars=settings.max_history_chars,
                max_message_chars=settings.max_question_chars)
