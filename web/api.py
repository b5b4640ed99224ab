"""OpenAI-compatible chat API over the Assistant, served beside the app (web/server.py mounts it at /v1).

    GET  /v1/models              policyqa (extractive), and policyqa-llm when an LLM endpoint is configured
    POST /v1/chat/completions    the last user message is the question, the messages before it the conversation
    GET  /v1/clauses/{clause_id} one clause with its document's metadata

Answers keep their [n] markers; the citations they name, and outcome, confidence, rewritten_query,
notices and timings, come as extra top-level fields of the response, or of the last streamed chunk
(see web/api_models.py). A stream carries only the verified answer: an LLM's own words are held
back until its quotes are checked, so every [n] a client shows names a citation it receives.
Errors use OpenAI's shape, {"error": {"message", "type", "param", "code"}}, with Chinese messages.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from itertools import chain
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from assistant.history import bound_history, history_bounds
from assistant.types import Answer
from index.errors import InvalidQuestion, PolicyQAError, UnknownDocument
from web.api_models import (EXTRA_FIELDS, AnswerFields, AssistantMessage, ChatCompletion, ChatCompletionChunk,
                            ChatCompletionRequest, ChatMessage, ChunkChoice, Choice, ClauseOut, Delta, DocumentOut,
                            ErrorDetail, ErrorResponse, ModelCard, ModelList, Usage)
from web.chatlog import Turn, item_id_for

MODELS = {"policyqa": "extractive", "policyqa-llm": "llm"}  # model name -> Assistant.ask mode
STARTED = int(time.time())
ERROR_RESPONSES = {status: {"model": ErrorResponse, "description": text} for status, text in [
    (400, "an empty, oversized or malformed question; a malformed request; a document filter matching nothing"),
    (401, "POLICYQA_API_KEY is set and the request does not carry it as a bearer token"),
    (404, "unknown model or clause"),
    (413, "the request body is larger than POLICYQA_MAX_REQUEST_BYTES"),
    ("4XX", "other client errors (e.g. 405)"),
    (503, "the index is loading or being rebuilt; retry after a few seconds")]}
# one event of a stream (before Open API 3.2, a text/event-stream schema describes each event)
SSE_EVENT = {"type": "object", "required": ["data"], "properties": {
    "data": {"type": "string", "description": "a ChatCompletionChunk (#/components/schemas/ChatCompletionChunk) as "
                                              "JSON; the last event is [DONE]"},
    "event": {"type": "string"}}}
# pydantic error types -> what to tell the user: the kind a value should have, or what is wrong with it
TYPE_ZH = {"string_type": "字符串", "list_type": "数组", "dict_type": "对象", "model_type": "对象",
           "model_attributes_type": "对象", "bool_type": "true 或 false", "bool_parsing": "true 或 false",
           "int_type": "整数", "int_parsing": "整数", "float_type": "数字", "float_parsing": "数字", "none_required": "null"}
WRONG_ZH = {"missing": "缺少这个字段", "json_invalid": "不是有效的 JSON", "too_short": "不能为空", "too_long": "过长",
            "literal_error": "取值无效", "string_unicode": "含有无效字符"}
# pydantic names a union's member types in an error's `loc`: (..., 'content', 'list[ContentPart]');
# the request's field names are all lower case
UNION_TAG = re.compile(r"^(str|int|float|bool|none|[A-Z]\w*|\w+\[.*\])$")


class APIError(Exception):
    """An error the API answers in OpenAI's shape; `message` is shown to the user as is."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return ErrorResponse(error=ErrorDetail(message=self.message, type=self.type, param=self.param,
                                               code=self.code)).model_dump()

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else \
            {"Retry-After": "5"} if self.status == 503 else \
            {"Connection": "close"} if self.status == 413 else None  # the rest of that body is not read
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def error_for(exc: PolicyQAError) -> APIError:
    """The API error for an error the library raised while answering."""
    if isinstance(exc, InvalidQuestion):
        return APIError(400, str(exc), param="messages", code="invalid_question")
    if isinstance(exc, UnknownDocument):
        return APIError(400, str(exc), param="policyqa.docs", code="unknown_document")
    return APIError(500, f"回答时出错：{exc}", "server_error", code=type(exc).__name__)


def loading_error() -> APIError:
    return APIError(503, "索引正在加载或重建，请稍后再试。", "service_unavailable_error", code="index_loading")


def too_large_error(settings) -> APIError:
    """413 for a request body over settings.max_request_bytes (web/guards.py, before it is read)."""
    limit = settings.max_request_bytes
    size = f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit / 1024:g} KB" if limit >= 1024 \
        else f"{limit} 字节"
    return APIError(413, f"请求体过大：最多 {size}（{limit} 字节）。请缩短问题或对话记录后重试（只会用到最近 "
                         f"{settings.max_history_messages} 条消息）。", code="request_too_large")


# ---------------------------------------------------------------- request -> question, history


def text_of(content) -> str:
    """A message's text: a string, or its text parts joined ([{'type': 'text', 'text': '...'}, ...])."""
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content or [] if p.text)


def conversation(messages: list[ChatMessage], settings) -> tuple[str, list[dict]]:
    """(question, history): the last user message, and the user/assistant messages before it, bounded
    as every entry point bounds them."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise APIError(400, "没有要回答的问题：messages 中至少要有一条 role 为 user 的消息。", param="messages",
                       code="invalid_question")
    history = [{"role": m.role, "content": text_of(m.content)} for m in messages[:last]]
    return text_of(messages[last].content), bound_history(history, **history_bounds(settings))


def mode_for(model: str, assistant) -> str:
    if MODELS.get(model) == "extractive" or (MODELS.get(model) == "llm" and assistant.llm_available):
        return MODELS[model]
    if model in MODELS:
        raise APIError(404, f"未配置大模型服务（POLICYQA_LLM_BASE_URL），模型 {model} 不可用，请使用 policyqa。",
                       param="model", code="model_not_found")
    names = "、".join(m for m in MODELS if m == "policyqa" or assistant.llm_available)
    raise APIError(404, f"模型“{model[:80]}”不存在，可用的模型：{names}。", param="model", code="model_not_found")


# ---------------------------------------------------------------- answer -> response


def clause_link(base_url: str, clause_id: str) -> str:
    """The app's page opened at one clause: 'http://127.0.0.1:7860/?clause=doc%23%E5%9B%9B.1'."""
    return f"{base_url}?clause={quote(clause_id, safe='')}"


def answer_fields(answer: Answer, base_url: str) -> dict:
    """PolicyQA's fields of a response (AnswerFields), each citation with its link into the app."""
    data = answer.to_json()
    for key in ("citations", "related"):
        data[key] = [dict(c, link=clause_link(base_url, c["clause_id"])) for c in data[key]]
    return AnswerFields.model_validate({k: data[k] for k in EXTRA_FIELDS}).model_dump()


def usage_of(question: str, history: list[dict], answer: Answer) -> Usage:
    prompt = len(question) + sum(len(m["content"]) for m in history)
    return Usage(prompt_tokens=prompt, completion_tokens=len(answer.text), total_tokens=prompt + len(answer.text))


def sse(data: dict | str) -> str:
    """One server-sent event: 'data: {...}\\n\\n'."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


class Exchange:
    """One question asked through the API: answers it, logs it, and writes the response or the stream."""

    def __init__(self, ui, assistant, body: ChatCompletionRequest, base_url: str):
        self.ui, self.body, self.base_url = ui, body, base_url
        mode = mode_for(body.model, assistant)
        self.question, self.history = conversation(body.messages, ui.settings)
        docs = list(body.policyqa.docs) if body.policyqa else []
        self.item_id = item_id_for(self.question)
        self.id = "chatcmpl-" + self.item_id.removeprefix("chat-")
        self.created = int(time.time())
        # the raw question: ask_stream checks and cleans it, and says what it dropped
        events = assistant.ask_stream(self.question, self.history, docs or None, mode)
        try:  # retrieval runs here, so a bad question or filter is an HTTP error before any stream starts
            self.events = chain([next(events)], events)
        except PolicyQAError as exc:
            raise error_for(exc) from exc

    def answer(self) -> Answer:
        """Run the answer to its end (an LLM's words are verified) and log it."""
        answer = None
        for kind, value in self.events:
            if kind == "answer":
                answer = value
        self.ui.chat_log.append_turn(Turn(id=self.item_id, question=answer.question, answer=answer,
                                          history=tuple(self.history)))
        return answer

    def completion(self) -> ChatCompletion:
        try:
            answer = self.answer()
        except PolicyQAError as exc:
            raise error_for(exc) from exc
        return ChatCompletion(id=self.id, created=self.created, model=self.body.model,
                              choices=[Choice(message=AssistantMessage(content=answer.text))],
                              usage=usage_of(self.question, self.history, answer),
                              **answer_fields(answer, self.base_url))

    def chunk(self, delta: Delta | None, finish: bool = False, usage: Usage | None = None, **fields) -> dict:
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason="stop" if finish else None)]
        chunk = ChatCompletionChunk(id=self.id, created=self.created, model=self.body.model, choices=choices,
                                    usage=usage).model_dump(exclude_none=usage is None)
        for c in chunk["choices"]:  # OpenAI sends these as null rather than leaving them out
            c.setdefault("finish_reason", None)
            c.setdefault("logprobs", None)
        return dict(chunk, **fields)

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events: the role, the verified answer, a last chunk with the citations, [DONE]."""
        yield sse(self.chunk(Delta(role="assistant", content="")))
        try:  # one trip to a worker thread for the rest of the answer and the chat log
            answer = await run_in_threadpool(self.answer)
        except PolicyQAError as exc:
            yield sse(error_for(exc).body())
            yield sse("[DONE]")
            return
        fields = answer_fields(answer, self.base_url)
        yield sse(self.chunk(Delta(content=answer.text)))
        yield sse(self.chunk(Delta(), finish=True, **fields))
        if self.body.stream_options and self.body.stream_options.include_usage:
            yield sse(self.chunk(None, usage=usage_of(self.question, self.history, answer), **fields))
        yield sse("[DONE]")


# ---------------------------------------------------------------- routes


def make_router(ui) -> APIRouter:
    """The /v1 routes over a PolicyQAApp (`ui.assistant`, `ui.settings`, `ui.chat_log`); its assistant
    may be None while the index loads (503)."""
    bearer = HTTPBearer(auto_error=False, description="POLICYQA_API_KEY, when the server has one")
    # extractive answers from /v1 waiting for the Assistant's answer slots in a worker thread (the
    # limit on answers computed at once across every entry point is the slots', assistant/slots.py);
    # the others wait here, in the order they came, without a thread. As many as Gradio's queue lets
    # wait: with 2 here against its 8, /v1 got a fifth of the answers under load from both doors
    answering = asyncio.Semaphore(ui.settings.door_workers)

    # the dependencies are `async`: FastAPI would send a plain function to a worker thread, and every
    # such trip waits for the GIL while answers are being computed
    async def authorize(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)):
        key = ui.settings.api_key
        if key and not (credentials and hmac.compare_digest(credentials.credentials.encode(), key.encode())):
            raise APIError(401, "缺少或错误的 API 密钥：请在请求头中加上 Authorization: Bearer <POLICYQA_API_KEY>。",
                           code="invalid_api_key")

    async def need_assistant():
        if ui.assistant is None:
            raise loading_error()
        return ui.assistant

    router = APIRouter(dependencies=[Depends(authorize)], responses=ERROR_RESPONSES)

    @router.get("/models", response_model=ModelList, summary="The models: one per answerer")
    def list_models(assistant=Depends(need_assistant)) -> ModelList:
        ids = [m for m, mode in MODELS.items() if mode == "extractive" or assistant.llm_available]
        return ModelList(data=[ModelCard(id=m, created=STARTED) for m in ids])

    @router.post("/chat/completions", response_model=ChatCompletion, summary="Answer a question with citations",
                 responses={200: {"description": "the answer; with `stream: true`, server-sent events "
                                                 "`data: <ChatCompletionChunk JSON>`, ending with `data: [DONE]`",
                                  "content": {"text/event-stream": {"schema": SSE_EVENT}}}})
    async def chat_completions(body: ChatCompletionRequest, request: Request, assistant=Depends(need_assistant)):
        # an extractive answer is CPU work, done whole in Exchange(); an LLM's is mostly waiting for the model
        turn = answering if MODELS.get(body.model) == "extractive" else contextlib.nullcontext()
        async with turn:
            exchange = await run_in_threadpool(Exchange, ui, assistant, body, str(request.base_url))
        if body.stream:
            return StreamingResponse(exchange.stream(), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return await run_in_threadpool(exchange.completion)

    @router.get("/clauses/{clause_id:path}", response_model=ClauseOut, summary="One clause and its document")
    def get_clause(clause_id: str, request: Request, assistant=Depends(need_assistant)) -> ClauseOut:
        data = assistant.data  # one index for the clause and its document
        clause = data.clauses.get(clause_id)
        if clause is None:
            raise APIError(404, f"条款 {clause_id[:120]} 不在当前索引中（文件可能已被移除）。", param="clause_id",
                           code="clause_not_found")
        doc = data.docs[clause.doc_id]
        m = doc.meta
        document = DocumentOut(doc_id=doc.doc_id, title=doc.title, source=doc.source, doc_number=m.doc_number,
                               issuer=m.issuer, issue_date=m.issue_date, effective_date=m.effective_date,
                               validity=m.validity, script=doc.script)
        return ClauseOut(clause_id=clause.clause_id, label=clause.label, path=list(clause.path), kind=clause.kind,
                         headings=list(clause.headings), heading=clause.heading, text=clause.text,
                         full_text=doc.text[max(0, clause.start):max(0, clause.end)] or clause.text, page=clause.page,
                         parent_id=clause.parent_id, inferred=clause.inferred,
                         link=clause_link(str(request.base_url), clause.clause_id), document=document)

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                      include_in_schema=False)
    def unknown_endpoint(rest: str, request: Request):
        probe = {"type": "http", "path": "/" + rest, "root_path": "", "method": request.method}
        if any(route.matches(probe)[0] == Match.PARTIAL for route in router.routes):
            raise APIError(405, f"接口 {request.url.path} 不支持 {request.method} 请求。", code="method_not_allowed")
        raise APIError(404, f"没有接口 {request.url.path}，可用的接口见 /docs。", code="unknown_url")

    return router


# ---------------------------------------------------------------- errors


def field_of(error: dict) -> str:
    """The request field a pydantic error is about: 'messages.0.content'."""
    return ".".join(str(x) for x in error.get("loc", ())
                    if x != "body" and not (isinstance(x, str) and UNION_TAG.match(x)))


def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 as OpenAI's 400, naming the first field at fault."""
    errors = exc.errors() or [{}]
    param = field_of(errors[0])
    same = [e for e in errors if field_of(e) == param]  # one per member of a union
    kinds = list(dict.fromkeys(TYPE_ZH[e["type"]] for e in same if e.get("type") in TYPE_ZH))
    kind = errors[0].get("type", "")
    what = ("应为" + "或".join(kinds) if kinds and (len(same) > 1 or kind in TYPE_ZH) else
            WRONG_ZH.get(kind) or f"不符合要求（{errors[0].get('msg', '')}）")
    message = f"请求格式不正确：{'字段 ' + param if param else '请求体'} {what}。"
    if len(errors) > len(same):
        message += f"另有 {len(errors) - len(same)} 处错误。"
    return APIError(400, message, param=param or None, code="invalid_request").response()


async def http_error(request: Request, exc: StarletteHTTPException):
    """Starlette's and FastAPI's own errors under /v1 (a body that cannot be parsed, ...) in OpenAI's shape."""
    if not request.url.path.startswith("/v1/"):
        return await http_exception_handler(request, exc)
    message = "请求体无法解析，请以 JSON 发送。" if exc.status_code == 400 else f"请求出错（{exc.status_code}）：{exc.detail}"
    code = "invalid_request" if exc.status_code == 400 else "http_error"
    return APIError(exc.status_code, message, code=code).response()


def install_api(app: FastAPI, ui) -> None:
    """Add the /v1 routes over a PolicyQAApp to `app`, and answer their errors in OpenAI's shape."""
    app.include_router(make_router(ui), prefix="/v1", tags=["OpenAI-compatible"])
    app.add_exception_handler(APIError, lambda request, exc: exc.response())
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)

    def openapi() -> dict:
        # the schema also names the streamed events' body, which no route returns as plain JSON
        if app.openapi_schema is None:
            components = FastAPI.openapi(app).setdefault("components", {}).setdefault("schemas", {})
            chunk = ChatCompletionChunk.model_json_schema(ref_template="#/components/schemas/{model}",
                                                          mode="serialization")
            for name, definition in chunk.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components["ChatCompletionChunk"] = chunk
        return app.openapi_schema

    app.openapi = openapi
