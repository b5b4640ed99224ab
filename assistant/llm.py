"""Optional model-written answers through any OpenAI-compatible chat endpoint (LangChain)."""
from __future__ import annotations

from collections.abc import Iterator

from index.errors import LLMUnavailable
from index.settings import Settings
from prompts import render_prompt


def make_chat_model(settings: Settings):
    """ChatOpenAI pointed at settings.llm_base_url (vLLM, Ollama, llama.cpp server, hosted APIs)."""
    if not settings.llm_base_url:
        return None
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=settings.llm_base_url, api_key=settings.llm_api_key, model=settings.llm_model,
                      timeout=settings.llm_timeout_s, max_retries=0, max_tokens=settings.llm_max_tokens,
                      temperature=0, streaming=True)


class LLMAnswerer:
    """Renders the prompt files and streams the model's reply; every failure is LLMUnavailable."""

    def __init__(self, chat_model):
        self.chat = chat_model

    def stream_answer(self, question: str, sources: list[dict]) -> Iterator[str]:
        prompt = render_prompt("answer", question=question, sources=sources, n_sources=len(sources))
        try:
            for chunk in self.chat.stream(prompt):
                text = chunk.content if isinstance(chunk.content, str) else ""
                if text:
                    yield text
        except LLMUnavailable:
            raise
        except Exception as exc:  # network, HTTP, timeout, protocol: all mean "model unavailable"
            raise LLMUnavailable(f"LLM endpoint failed ({exc.__class__.__name__}: {str(exc)[:200]})") from exc

    def rewrite(self, question: str, history: list[dict]) -> str:
        prompt = render_prompt("condense", question=question, history=history[-6:])
        try:
            reply = self.chat.invoke(prompt)
        except Exception as exc:
            raise LLMUnavailable(f"LLM endpoint failed ({exc.__class__.__name__}: {str(exc)[:200]})") from exc
        text = (reply.content if isinstance(reply.content, str) else "").strip().split("\n")[0].strip()
        if not text or len(text) > 300:
            raise LLMUnavailable("LLM returned no usable rewrite")
        return text
