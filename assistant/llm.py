"""Optional model-written answers through any OpenAI-compatible chat endpoint (LangChain).

Two limits hold whatever the endpoint does: a total deadline for one reply (the HTTP timeout
only bounds each read, so a server sending a token every few seconds could go on forever) and
a cap on the reply's length. Hitting either raises LLMReplyCut after yielding what came before.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

from index.errors import LLMReplyCut, LLMUnavailable
from index.settings import Settings
from prompts import render_prompt


def make_chat_model(settings: Settings):
    """ChatOpenAI pointed at settings.llm_base_url (vLLM, Ollama, llama.cpp server, hosted APIs)."""
    if not settings.llm_base_url:
        return None
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=settings.llm_base_url, api_key=settings.llm_api_key, model=settings.llm_model,
                      timeout=min(settings.llm_timeout_s, settings.llm_deadline_s), max_retries=0,
                      max_tokens=settings.llm_max_tokens, temperature=0, streaming=True)


def _failed(exc: BaseException) -> LLMUnavailable:
    return LLMUnavailable(f"LLM endpoint failed ({exc.__class__.__name__}: {str(exc)[:200]})")


class LLMAnswerer:
    """Renders the prompt files and streams the model's reply; every failure is LLMUnavailable,
    a reply cut at the deadline or the length cap is LLMReplyCut (a kind of LLMUnavailable)."""

    def __init__(self, chat_model, deadline_s: float = Settings.llm_deadline_s,
                 max_reply_chars: int = Settings.llm_max_reply_chars):
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be greater than 0, got {deadline_s}")
        if max_reply_chars <= 0:
            raise ValueError(f"max_reply_chars must be greater than 0, got {max_reply_chars}")
        self.chat = chat_model
        self.deadline_s = deadline_s
        self.max_reply_chars = max_reply_chars

    @classmethod
    def from_settings(cls, chat_model, settings: Settings) -> "LLMAnswerer":
        return cls(chat_model, settings.llm_deadline_s, settings.llm_max_reply_chars)

    def stream_answer(self, question: str, sources: list[dict]) -> Iterator[str]:
        prompt = render_prompt("answer", question=question, sources=sources, n_sources=len(sources))
        yield from self.stream_reply(prompt)

    def stream_reply(self, prompt) -> Iterator[str]:
        """The model's reply to `prompt` piece by piece, within the deadline and the length cap.

        The endpoint is read in a worker thread so that the deadline holds even while a read
        is blocked; once the deadline passes or the consumer stops, the worker closes the
        stream at its next piece (or at the HTTP read timeout) and ends.
        """
        pieces: queue.Queue = queue.Queue()
        stop = threading.Event()

        def read():
            try:
                stream = self.chat.stream(prompt)
                try:
                    for chunk in stream:
                        if stop.is_set():
                            break
                        text = chunk.content if isinstance(chunk.content, str) else ""
                        if text:
                            pieces.put(("text", text))
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
                pieces.put(("end", None))
            except Exception as exc:  # network, HTTP, timeout, protocol: all mean "model unavailable"
                pieces.put(("error", exc))

        worker = threading.Thread(target=read, name="policyqa-llm-reply", daemon=True)
        deadline = time.monotonic() + self.deadline_s
        total = 0
        worker.start()
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    kind, value = pieces.get(timeout=remaining) if remaining > 0 else pieces.get_nowait()
                except queue.Empty:
                    raise LLMReplyCut(f"大模型回答超过 {self.deadline_s:g} 秒时限，已截断",
                                      reason="deadline") from None
                if kind == "end":
                    return
                if kind == "error":
                    if isinstance(value, LLMUnavailable):
                        raise value
                    raise _failed(value) from value
                if total + len(value) > self.max_reply_chars:
                    yield value[:self.max_reply_chars - total]
                    raise LLMReplyCut(f"大模型回答超过 {self.max_reply_chars} 字上限，已截断", reason="length")
                total += len(value)
                yield value
        finally:
            stop.set()

    def rewrite(self, question: str, history: list[dict]) -> str:
        prompt = render_prompt("condense", question=question, history=history[-6:])
        text = "".join(self.stream_reply(prompt))
        text = text.strip().split("\n")[0].strip()
        if not text or len(text) > 300:
            raise LLMUnavailable("LLM returned no usable rewrite")
        return text
