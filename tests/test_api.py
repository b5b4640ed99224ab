"""The OpenAI-compatible API (web/api.py) served by uvicorn beside the app, driven by real clients:
the openai SDK, LangChain's ChatOpenAI, raw HTTP, and schemathesis fuzzing the served schema."""
from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import quote

import httpx
import openai
import pytest

from app import PolicyQAApp
from index.errors import IndexCorrupted
from tests.conftest import make_settings
from web.api_models import EXTRA_FIELDS
from web.server import LoadingGate, create_server, serve, serving

Q_LOCAL_TAX = "地税部门在扩面工作中负责什么?"
Q_FREELANCE = "自由职业者怎么交养老保险?"
Q_FOLLOW_UP = "那一次性补缴要交滞纳金吗?"


@dataclass
class Served:
    ui: PolicyQAApp
    url: str  # 'http://127.0.0.1:PORT/'

    def client(self, api_key: str = "none") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "v1", api_key=api_key, max_retries=0, timeout=120)


@contextmanager
def served(assistant, **settings_changes):
    """create_server for a PolicyQAApp on `assistant`, under uvicorn on a free port."""
    ui = PolicyQAApp(assistant, replace(assistant.settings, **settings_changes))
    with serving(create_server(ui)) as url:
        yield Served(ui, url)


@pytest.fixture(scope="module")
def api_assistant(tmp_path_factory, fake_index_dir):
    from assistant.core import Assistant

    tmp = tmp_path_factory.mktemp("api")
    shutil.copytree(fake_index_dir, tmp / "index")
    return Assistant.from_settings(make_settings(tmp), progress=False)


@pytest.fixture(scope="module")
def api(api_assistant):
    with served(api_assistant) as s:
        yield s


def markers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


def ask(client, question: str, **kw):
    return client.chat.completions.create(model="policyqa", messages=[{"role": "user", "content": question}], **kw)


# ---------------------------------------------------------------- the openai SDK


def test_models_lists_only_the_extractive_answerer_without_an_llm(api):
    assert [m.id for m in api.client().models.list()] == ["policyqa"]


def test_openai_sdk_reads_the_answer_and_its_citations(api):
    resp = ask(api.client(), Q_FREELANCE)  # answered with confidence (an uncertain reply is tested apart)
    text, extra = resp.choices[0].message.content, resp.model_extra
    assert set(EXTRA_FIELDS) <= set(extra)
    cite = extra["citations"][0]
    assert cite["label"] == "四、(四)" and cite["doc_number"] == "本政发[2008]6号"
    assert cite["title"] and cite["path"] == ["四", "(四)"]
    assert cite["quote"] and cite["quote"] in cite["text"]
    assert cite["link"] == f"{api.url}?clause={quote(cite['clause_id'], safe='')}" and "%23" in cite["link"]
    assert markers(text) == {c["n"] for c in extra["citations"]}  # every [n] names a citation it came with
    assert extra["outcome"] == "answered" and extra["mode"] == "extractive" and extra["timings_ms"]["total"] > 0
    assert resp.choices[0].finish_reason == "stop" and resp.usage.completion_tokens == len(text)


def test_streamed_answer_is_the_plain_answer_and_ends_with_the_citations(api):
    client = api.client()
    plain = ask(client, Q_FREELANCE)
    chunks = list(ask(client, Q_FREELANCE, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == plain.choices[0].message.content
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["citations"] == plain.model_extra["citations"] and markers(text)
    assert markers(text) == {c["n"] for c in last.model_extra["citations"]}
    assert all(not set(EXTRA_FIELDS) & set(c.model_extra) for c in chunks[:-1])
    # with usage asked for, one more chunk (no choices) carries the usage, and the fields again
    chunks = list(ask(client, Q_FREELANCE, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text)
    assert chunks[-1].model_extra["citations"] == plain.model_extra["citations"]


def test_stream_is_server_sent_events_ending_with_done(api):
    body = {"model": "policyqa", "stream": True, "messages": [{"role": "user", "content": Q_LOCAL_TAX}]}
    with httpx.stream("POST", api.url + "v1/chat/completions", json=body, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[-1]["citations"][0]["label"] == "四、(二)3."


def test_twenty_parallel_streams_all_complete(api):
    client = api.client()
    questions = [Q_LOCAL_TAX, Q_FREELANCE, "個體工商戶應該參加哪些社會保險?", "工伤保险浮动费率怎么定?"] * 5

    def one(question: str):
        return list(ask(client, question, stream=True))

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, questions))
    assert len(results) == 20
    assert all(r[-1].choices[0].finish_reason == "stop" and "outcome" in r[-1].model_extra for r in results)
    assert all(r[-1].model_extra["citations"] for r, q in zip(results, questions) if q in (Q_LOCAL_TAX, Q_FREELANCE))


def test_document_filter_keeps_to_the_named_documents(api):
    resp = ask(api.client(), Q_FREELANCE, extra_body={"policyqa": {"docs": ["天津市"]}})
    cited = resp.model_extra["citations"] + resp.model_extra["related"]
    assert cited and {c["doc_id"] for c in cited} == {"003_50930e0fa3d1836b"}
    with pytest.raises(openai.BadRequestError) as err:
        ask(api.client(), Q_FREELANCE, extra_body={"policyqa": {"docs": ["没有这个文件"]}})
    assert err.value.body["param"] == "policyqa.docs" and "没有匹配" in err.value.body["message"]


def test_clause_endpoint_returns_the_cited_clause_with_its_document(api):
    cite = ask(api.client(), Q_LOCAL_TAX).model_extra["citations"][0]
    r = httpx.get(api.url + "v1/clauses/" + quote(cite["clause_id"], safe=""), timeout=30)
    assert r.status_code == 200
    clause = r.json()
    assert clause["clause_id"] == cite["clause_id"] and clause["label"] == "四、(二)3." and clause["text"] == cite["text"]
    assert clause["document"]["doc_number"] == "本政发[2008]6号" and clause["link"] == cite["link"]
    assert clause["text"] in clause["full_text"]


def test_api_turns_are_in_the_chat_log(api):
    resp = ask(api.client(), Q_LOCAL_TAX)
    row = api.ui.chat_log.latest(1)[0]
    assert resp.id == "chatcmpl-" + row["id"].removeprefix("chat-")
    assert row["question"] == Q_LOCAL_TAX and row["answer"]["citations"][0]["label"] == "四、(二)3."


# ---------------------------------------------------------------- LangChain


def test_langchain_chat_openai_answers_a_follow_up_with_the_conversation(api):
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=api.url + "v1", api_key="none", model="policyqa", max_retries=0, timeout=120)
    first = llm.invoke(Q_FREELANCE)
    assert "[1]" in first.content
    alone = api.ui.chat_log.latest(1)[0]["answer"]["rewritten_query"]
    conversation = [HumanMessage(Q_FREELANCE), AIMessage(first.content), HumanMessage(Q_FOLLOW_UP)]
    reply = llm.invoke(conversation)
    row = api.ui.chat_log.latest(1)[0]
    assert row["question"] == Q_FOLLOW_UP and [m["role"] for m in row["history"]] == ["user", "assistant"]
    rewritten = row["answer"]["rewritten_query"]
    assert rewritten != Q_FOLLOW_UP and "养老" in rewritten and alone == Q_FREELANCE
    assert reply.content and row["answer"]["answer"] == reply.content
    streamed = "".join(chunk.content for chunk in llm.stream(conversation))
    assert streamed == reply.content


# ---------------------------------------------------------------- errors


def post_chat(url: str, body=None, **kw) -> httpx.Response:
    return httpx.post(url + "v1/chat/completions", json=body, timeout=60, **kw)


def user(content) -> dict:
    return {"model": "policyqa", "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize("body, status, param, says", [
    (user("   "), 400, "messages", "问题为空"),
    (user("问" * 2001), 400, "messages", "问题过长"),
    (user([{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]), 400, "messages", "问题为空"),
    ({"model": "policyqa", "messages": [{"role": "assistant", "content": "你好"}]}, 400, "messages", "role 为 user"),
    ({"model": "policyqa", "messages": []}, 400, "messages", "不能为空"),
    ({"model": "policyqa", "messages": "你好"}, 400, "messages", "应为数组"),
    ({"model": "policyqa", "messages": [{"role": "user", "content": "你好"}], "stream": "maybe"}, 400, "stream",
     "true 或 false"),
    ({"model": "policyqa", "messages": [{"role": "robot", "content": "你好"}]}, 400, "messages.0.role", "取值无效"),
    ({"messages": [{"role": "user", "content": "你好"}]}, 400, "model", "缺少"),
    ({"model": "policyqa", "messages": [{"role": "user", "content": 7}]}, 400, "messages.0.content", "应为字符串或数组"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "你好"}]}, 404, "model", "不存在"),
    ({"model": "policyqa-llm", "messages": [{"role": "user", "content": "你好"}]}, 404, "model", "未配置大模型服务"),
])
def test_errors_come_in_openai_shape_with_chinese_messages(api, body, status, param, says):
    r = post_chat(api.url, body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and says in error["message"] and error["type"] == "invalid_request_error"


def test_malformed_json_unknown_clause_and_wrong_method(api):
    r = post_chat(api.url, content=b'{"model": "policyqa", "messages": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "不是有效的 JSON" in r.json()["error"]["message"]
    r = httpx.get(api.url + "v1/clauses/" + quote("没有#这.一条", safe=""))
    assert r.status_code == 404 and r.json()["error"]["code"] == "clause_not_found"
    r = httpx.get(api.url + "v1/chat/completions")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = httpx.get(api.url + "v1/embeddings")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"


def test_openai_sdk_raises_its_own_errors_with_the_message(api):
    with pytest.raises(openai.BadRequestError, match="问题为空"):
        ask(api.client(), "  ")
    with pytest.raises(openai.NotFoundError, match="不存在"):
        api.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": Q_FREELANCE}])


def test_api_key_is_required_when_set(api_assistant):
    with served(api_assistant, api_key="s3cret") as s:
        for key in ("none", "s3cret-not"):
            with pytest.raises(openai.AuthenticationError, match="API 密钥"):
                s.client(key).models.list()
        r = httpx.get(s.url + "v1/models")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert ask(s.client("s3cret"), Q_LOCAL_TAX).model_extra["citations"]
        assert httpx.get(s.url, timeout=30).status_code == 200  # the app's page: its login form (test_guards.py)


def test_503_while_the_index_loads_then_the_app_and_api(api_assistant):
    release = threading.Event()
    made: list[PolicyQAApp] = []

    def load():
        release.wait(60)
        made.append(PolicyQAApp(api_assistant, api_assistant.settings))
        return made[0]

    answered_when_ready: list[bool] = []
    gate = LoadingGate(load)
    # what serve prints as "ready" is said only once a request would reach the app
    gate.on_ready = lambda: answered_when_ready.append(gate.inner is not None)
    with serving(gate) as url:
        r = httpx.get(url + "v1/models")
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json()["error"] == {"message": "索引正在加载或重建，请稍后再试。", "type": "service_unavailable_error",
                                     "param": None, "code": "index_loading"}
        assert post_chat(url, user(Q_FREELANCE)).status_code == 503
        page = httpx.get(url)
        assert page.status_code == 503 and "正在加载索引" in page.text
        release.set()
        deadline = time.monotonic() + 60
        while not answered_when_ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert answered_when_ready == [True]
        assert httpx.get(url + "v1/models").status_code == 200  # at once: no 503 after "ready"
        assert httpx.get(url, timeout=30).status_code == 200
        client = openai.OpenAI(base_url=url + "v1", api_key="none", max_retries=0, timeout=120)
        assert ask(client, Q_LOCAL_TAX).model_extra["citations"]
        # Gradio's startup ran inside the gate: the app's queue answers too
        from gradio_client import Client

        _, citations = Client(url, verbose=False).predict(Q_LOCAL_TAX, [], api_name="/ask")
        assert citations[0]["label"] == "四、(二)3."
        # an app without its assistant answers 503 as well
        made[0].assistant = None
        assert post_chat(url, user(Q_FREELANCE)).status_code == 503
        assert httpx.get(url + "v1/models").json()["error"]["code"] == "index_loading"


def test_serve_exits_with_the_error_code_when_the_index_cannot_load(api_assistant, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def load():
        raise IndexCorrupted("索引文件已损坏")

    assert serve(load, replace(api_assistant.settings, port=port)) == IndexCorrupted.exit_code
    assert "索引文件已损坏" in capsys.readouterr().err


# ---------------------------------------------------------------- an LLM answerer


def test_llm_model_streams_only_the_verified_answer(api_assistant):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from assistant.core import Assistant

    a = api_assistant
    reply = "自由职业者可按上年在岗职工月平均工资的60%作为缴费基数[1]。还有编造的内容[3]。"
    llm_assistant = Assistant(a.data, a.embedder, a.settings, chat_model=FakeListChatModel(responses=[reply]),
                              models=(a.ranker, a.decider))
    with served(llm_assistant) as s:
        client = s.client()
        assert [m.id for m in client.models.list()] == ["policyqa", "policyqa-llm"]
        chunks = list(client.chat.completions.create(model="policyqa-llm", stream=True,
                                                     messages=[{"role": "user", "content": Q_FREELANCE}]))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        extra = chunks[-1].model_extra
        assert extra["mode"] == "llm" and "编造" not in text and "[3]" not in text
        assert markers(text) == {c["n"] for c in extra["citations"]} == {1}
        assert extra["notices"]  # the removed citation is named


# ---------------------------------------------------------------- the schema


def test_openapi_schema_describes_the_api(api):
    schema = httpx.get(api.url + "openapi.json").json()
    assert set(schema["paths"]) == {"/v1/models", "/v1/chat/completions", "/v1/clauses/{clause_id}"}
    post = schema["paths"]["/v1/chat/completions"]["post"]
    assert "text/event-stream" in post["responses"]["200"]["content"]
    assert {"400", "401", "404", "503"} <= set(post["responses"]) and "422" not in post["responses"]
    components = schema["components"]["schemas"]
    assert {"ChatCompletionRequest", "ChatCompletion", "ChatCompletionChunk", "CitationOut", "ErrorResponse"} <= set(
        components)
    assert set(components["ChatCompletion"]["properties"]) >= set(EXTRA_FIELDS) | {"id", "choices", "usage"}
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_schema_driven_fuzzing_finds_no_server_errors(api):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                                   status_code_conformance)

    schema = schemathesis.openapi.from_url(api.url + "openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

    def answerable(case):  # well-formed requests name the real model, so they reach the Assistant
        if isinstance(case.body, dict):
            case.body["model"] = "policyqa"
        return case

    for result in schema.get_all_operations():
        operation = result.ok()
        positive = operation.as_strategy(schemathesis.GenerationMode.POSITIVE)
        negative = operation.as_strategy(schemathesis.GenerationMode.NEGATIVE)
        strategy = st.one_of(positive.map(answerable), negative, *schema.get_strategies_from_examples(operation))

        @settings(max_examples=30, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case):
            case.validate_response(case.call(base_url=api.url.rstrip("/"), timeout=60), checks=checks)

        check()
