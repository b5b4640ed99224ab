"""The OpenAI-compatible API's request and response bodies (pydantic), as /openapi.json describes them.

The OpenAI shapes carry only what standard clients read. PolicyQA's own fields travel beside
them at the top level (`citations`, `outcome`, ...), where standard clients ignore them:

    {"id": "chatcmpl-3f2a…", "object": "chat.completion", "model": "policyqa",
     "choices": [{"index": 0, "message": {"role": "assistant", "content": "… [1]。"}, "finish_reason": "stop"}],
     "usage": {...}, "citations": [{"n": 1, "label": "四、(二)3.", "quote": "…", "link": "…/?clause=…"}],
     "outcome": "answered", "confidence": 0.93, "rewritten_query": "…", "notices": [], "timings_ms": {...}}
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# the top-level fields a PolicyQA-aware client reads (the last streamed chunk carries them too)
EXTRA_FIELDS = ("citations", "related", "outcome", "confidence", "rewritten_query", "notices", "mode", "timings_ms")


# ---------------------------------------------------------------- errors


class ErrorDetail(BaseModel):
    message: str = Field(description="what was wrong, in Chinese, ready to show to the user")
    type: str = Field(description="invalid_request_error | authentication_error | service_unavailable_error | ...")
    param: str | None = Field(None, description="the request field at fault, e.g. 'messages' or 'policyqa.docs'")
    code: str | None = Field(None, description="e.g. invalid_question, model_not_found, clause_not_found, "
                                               "index_loading")


class ErrorResponse(BaseModel):
    """OpenAI's error shape."""

    error: ErrorDetail


# ---------------------------------------------------------------- models


class ModelCard(BaseModel):
    id: str = Field(description="'policyqa' (extractive: verbatim clause quotes) or 'policyqa-llm' (an LLM writes, "
                                "the quotes are verified)")
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "policyqa"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# ---------------------------------------------------------------- chat request


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are read."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    include_usage: bool = Field(False, description="send a last chunk with `usage` (and no choices) before [DONE]")


class PolicyQAOptions(BaseModel):
    """PolicyQA's extension of the request."""

    docs: list[str] = Field(default_factory=list, max_length=200,
                            description="answer only from these documents: id, file name (with or without "
                                        "extension) or part of the title, as the app's document filter")


class ChatCompletionRequest(BaseModel):
    """The last user message is the question; the user and assistant messages before it are the conversation.

    Other OpenAI parameters (temperature, max_tokens, tools, ...) are accepted and ignored: answers
    are quotes from the documents, not sampled text.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "policyqa", "messages": [{"role": "user", "content": "自由职业者怎么交养老保险?"}]},
        {"model": "policyqa", "stream": True, "policyqa": {"docs": ["本溪市"]},
         "messages": [{"role": "user", "content": "地税部门在扩面工作中负责什么?"}]}]})
    model: str = Field(description="a model from GET /v1/models")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = Field(False, description="server-sent events in OpenAI's chunk format, ending with "
                                                   "`data: [DONE]`; the last chunk before it carries the citations")
    stream_options: StreamOptions | None = None
    policyqa: PolicyQAOptions | None = None


# ---------------------------------------------------------------- chat response


class CitationOut(BaseModel):
    """A numbered citation: the clause that `[n]` in the answer names, and the verbatim words it quotes."""

    n: int
    doc_id: str
    source: str = Field(description="the document's file name")
    title: str
    doc_number: str = Field(description="文号, e.g. 本政发[2008]6号; '' when the document has none")
    label: str = Field(description="canonical clause label, e.g. 四、(二)3.")
    path: list[str]
    headings: list[str]
    quote: str = Field(description="verbatim from the clause ('' for related clauses)")
    text: str = Field(description="the whole clause text")
    clause_id: str
    page: int | None = None
    version: str = Field("", description="the date (YYYY-MM-DD) of the document's version: the latest of its file "
                                         "name's date and the adoption, amendment and entry-into-force dates it records; "
                                         "'' when it records none")
    link: str = Field(description="opens the clause in the app: <app>/?clause=<clause_id, URL-encoded>")


class AnswerFields(BaseModel):
    """PolicyQA's fields beside OpenAI's (see Answer.to_json in assistant/types.py)."""

    citations: list[CitationOut] = Field(description="what the answer's [n] markers name")
    related: list[CitationOut] = Field(description="when abstaining: the nearest clauses, not an answer")
    outcome: Literal["answered", "uncertain", "abstained"]
    confidence: float | None = Field(description="P(the first citation answers the question); null where no "
                                                 "model ran")
    rewritten_query: str = Field(description="the stand-alone question searched for (a follow-up is rewritten "
                                             "with the conversation)")
    notices: list[str] = Field(description="fallbacks, removed citations, ignored filters, ...")
    mode: Literal["extractive", "llm"] = Field(description="the answerer that wrote the answer (an LLM answer "
                                                           "without verifiable quotes falls back to extractive)")
    timings_ms: dict[str, float]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="the answer with its [n] citation markers")
    refusal: str | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    """Characters, not tokens: the answer is not generated token by token."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(AnswerFields):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer: `data: <this as JSON>`. Only the last chunk before
    `data: [DONE]` has the AnswerFields (citations, outcome, ...)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


# ---------------------------------------------------------------- clauses


class DocumentOut(BaseModel):
    doc_id: str
    title: str
    source: str
    doc_number: str
    issuer: str
    issue_date: str
    effective_date: str
    validity: str = Field(description="时效性, e.g. 有效")
    script: Literal["simplified", "traditional"]


class ClauseOut(BaseModel):
    clause_id: str
    label: str
    path: list[str]
    kind: str
    headings: list[str]
    heading: str
    text: str = Field(description="the clause's own text (its sub-clauses excluded)")
    full_text: str = Field(description="the clause with its sub-clauses, as in the document")
    page: int | None
    parent_id: str | None
    inferred: bool = Field(description="the clause number was garbled or missing and inferred from its siblings")
    link: str
    document: DocumentOut
