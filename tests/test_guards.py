"""What stands in front of the served app (web/guards.py, web/server.py): CORS on /v1 for browser chat
clients, the /v1 request-body limit, Gradio's login when POLICYQA_API_KEY is set, and the API's turns."""
from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from index.settings import Settings
from tests.conftest import make_settings
from tests.test_api import Q_FREELANCE, Q_LOCAL_TAX, ask, served

ORIGIN = "https://chat.example.org"  # not localhost: Gradio's own CORS policy would let a localhost page in


@pytest.fixture(scope="module")
def api_assistant(tmp_path_factory, fake_index_dir):
    from assistant.core import Assistant

    tmp = tmp_path_factory.mktemp("guards")
    shutil.copytree(fake_index_dir, tmp / "index")
    return Assistant.from_settings(make_settings(tmp), progress=False)


def user_body(question: str = Q_LOCAL_TAX, **kw) -> dict:
    return {"model": "policyqa", "messages": [{"role": "user", "content": question}], **kw}


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("origins, allowed", [
    ("", []),
    ("http://localhost:3210", ["http://localhost:3210"]),
    (" http://LocalHost:3210 ,https://Chat.Example.org,", ["http://localhost:3210", "https://chat.example.org"]),
    ("*", ["*"]),
    ("chrome-extension://abcdef", ["chrome-extension://abcdef"]),
])
def test_cors_origins_are_read_from_the_environment(origins, allowed):
    assert Settings.from_env({"POLICYQA_CORS_ORIGINS": origins}).cors_origin_list == allowed


@pytest.mark.parametrize("env, says", [
    ({"POLICYQA_CORS_ORIGINS": "http://localhost:3210/"}, "cors_origins must be origins .* got 'http://localhost:3210/'"),
    ({"POLICYQA_CORS_ORIGINS": "http://a.org,localhost:3210"}, "got 'localhost:3210'"),
    ({"POLICYQA_CORS_ORIGINS": "https://chat.example.org/app"}, "without a path"),
    ({"POLICYQA_MAX_REQUEST_BYTES": "0"}, "max_request_bytes must be greater than 0, got 0"),
    ({"POLICYQA_MAX_REQUEST_BYTES": "1MB"}, "POLICYQA_MAX_REQUEST_BYTES must be a int, got '1MB'"),
    ({"POLICYQA_API_CONCURRENCY": "0"}, "api_concurrency must be greater than 0, got 0"),
    ({"POLICYQA_QUERY_THREADS": "-1"}, "query_threads must be 0 or more, got -1"),
])
def test_wrong_guard_settings_say_what_is_wrong(env, says):
    with pytest.raises(ValueError, match=says):
        Settings.from_env(env)


def test_guard_defaults_keep_cors_off_and_bodies_to_one_megabyte():
    s = Settings()
    assert s.cors_origin_list == [] and s.max_request_bytes == 1024 * 1024 and s.api_concurrency >= 1


# ---------------------------------------------------------------- CORS


def preflight(url: str, origin: str, path: str = "v1/chat/completions", **headers) -> httpx.Response:
    return httpx.options(url + path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "authorization, content-type, "
                                                                                "x-stainless-os", **headers})


def test_cors_lets_the_named_origin_call_v1_and_no_other(api_assistant):
    with served(api_assistant, cors_origins=ORIGIN) as s:
        r = preflight(s.url, ORIGIN, **{"Access-Control-Request-Private-Network": "true"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in r.headers["access-control-allow-methods"]
        assert {"authorization", "content-type", "x-stainless-os"} <= {
            h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
        assert r.headers["access-control-allow-private-network"] == "true"  # a web page calling a local server
        r = httpx.post(s.url + "v1/chat/completions", json=user_body(), headers={"Origin": ORIGIN}, timeout=60)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        assert r.json()["citations"][0]["label"] == "四、(二)3."
        with httpx.stream("POST", s.url + "v1/chat/completions", json=user_body(stream=True),
                          headers={"Origin": ORIGIN}, timeout=60) as r:
            assert r.headers["access-control-allow-origin"] == ORIGIN
            assert [line for line in r.iter_lines() if line][-1] == "data: [DONE]"

        other = "https://evil.example.org"
        r = preflight(s.url, other)
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        r = httpx.post(s.url + "v1/chat/completions", json=user_body(), headers={"Origin": other}, timeout=60)
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers  # the browser hides it
        # the app's own paths keep Gradio's policy, which lets only localhost pages in
        r = httpx.get(s.url + "config", headers={"Origin": ORIGIN})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_errors_reach_the_browser_client_too(api_assistant):
    with served(api_assistant, cors_origins=ORIGIN, api_key="s3cret") as s:
        assert preflight(s.url, ORIGIN, "v1/models").headers["access-control-allow-origin"] == ORIGIN
        r = httpx.get(s.url + "v1/models", headers={"Origin": ORIGIN})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN
        assert r.json()["error"]["code"] == "invalid_api_key"


def test_cors_is_off_by_default(api_assistant):
    with served(api_assistant) as s:
        r = preflight(s.url, ORIGIN)
        assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
        r = httpx.post(s.url + "v1/chat/completions", json=user_body(), headers={"Origin": ORIGIN}, timeout=60)
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


# ---------------------------------------------------------------- the body limit


LIMIT = 4096


@pytest.fixture(scope="module")
def limited(api_assistant):
    with served(api_assistant, max_request_bytes=LIMIT, cors_origins=ORIGIN) as s:
        yield s


def padded(size: int) -> bytes:
    """A well-formed request of exactly `size` bytes (spaces after the JSON)."""
    body = json.dumps(user_body(), ensure_ascii=False).encode()
    return body + b" " * (size - len(body))


def assert_too_large(r: httpx.Response):
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
    assert "请求体过大" in error["message"] and "4 KB（4096 字节）" in error["message"]
    assert r.headers["connection"] == "close"


def test_a_body_over_the_limit_is_refused_in_openai_shape(limited):
    r = httpx.post(limited.url + "v1/chat/completions", content=padded(LIMIT + 1),
                   headers={"content-type": "application/json", "Origin": ORIGIN}, timeout=60)
    assert_too_large(r)
    assert r.headers["access-control-allow-origin"] == ORIGIN  # a browser client can read why
    # not parsed: malformed JSON over the limit is 413, not the 400 of a body that cannot be parsed
    assert_too_large(httpx.post(limited.url + "v1/chat/completions", content=b"{" * (LIMIT + 1), timeout=60))
    r = httpx.post(limited.url + "v1/chat/completions", content=padded(LIMIT),
                   headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 200 and r.json()["citations"]  # at the limit: answered


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(limited):
    host, port = limited.url.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n")  # and not one byte of the body
        response = b""
        while data := sock.recv(65536):  # the server closes the connection: the rest of the body is unread
            response += data
    assert response.startswith(b"HTTP/1.1 413") and b"request_too_large" in response


def test_a_chunked_body_is_counted_as_it_arrives(limited):
    def chunks(total: int, step: int = 500):
        body = padded(total)
        for i in range(0, len(body), step):
            yield body[i:i + step]

    # no Content-Length: httpx sends a generator with Transfer-Encoding: chunked
    r = httpx.post(limited.url + "v1/chat/completions", content=chunks(LIMIT + 500),
                   headers={"content-type": "application/json"}, timeout=60)
    assert "content-length" not in r.request.headers and r.request.headers["transfer-encoding"] == "chunked"
    assert_too_large(r)
    r = httpx.post(limited.url + "v1/chat/completions", content=chunks(LIMIT - 100),
                   headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 200 and r.json()["citations"][0]["label"] == "四、(二)3."  # handed on whole


def test_the_limit_is_for_v1_only(limited, tmp_path):
    # Gradio's uploads have their own limit (POLICYQA_MAX_UPLOAD_BYTES)
    big = tmp_path / "big.txt"
    big.write_text("一、总则\n" + "社会保险" * 3000, encoding="utf-8")
    with big.open("rb") as f:
        r = httpx.post(limited.url + "gradio_api/upload", files={"files": f}, timeout=60)
    assert big.stat().st_size > LIMIT and r.status_code == 200, r.text


# ---------------------------------------------------------------- the key guards Gradio's API too


@pytest.fixture(scope="module")
def keyed(api_assistant):
    with served(api_assistant, api_key="s3cret") as s:
        yield s


@pytest.mark.parametrize("method, path", [("POST", "gradio_api/call/ask"), ("POST", "gradio_api/queue/join"),
                                          ("POST", "gradio_api/run/ask"), ("GET", "gradio_api/info"),
                                          ("GET", "config"), ("POST", "gradio_api/upload")])
def test_gradio_api_needs_the_login_when_a_key_is_set(keyed, method, path):
    body = {"data": [Q_LOCAL_TAX, []], "fn_index": 0, "session_hash": "x"} if method == "POST" else None
    r = httpx.request(method, keyed.url + path, json=body, timeout=30)
    assert r.status_code == 401 and r.json()["detail"]["error"] == "Not authenticated"
    r = httpx.request(method, keyed.url + path, json=body, headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert r.status_code == 401


def test_gradio_client_needs_the_key_as_its_password(keyed):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    with pytest.raises(AuthenticationError):
        Client(keyed.url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(keyed.url, verbose=False, auth=("评估员", "s3cret-not"))
    _, citations = Client(keyed.url, verbose=False, auth=("评估员", "s3cret")).predict(Q_LOCAL_TAX, [],
                                                                                   api_name="/ask")
    assert citations[0]["label"] == "四、(二)3."


def test_the_page_asks_for_the_key_and_a_login_opens_the_app(keyed):
    page = httpx.get(keyed.url, timeout=30)
    assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
    assert "用户名任填，密码填 API 密钥" in page.text
    with httpx.Client(base_url=keyed.url, timeout=30) as browser:  # keeps the login cookie, as a browser does
        assert browser.post("login", data={"username": "u", "password": "wrong"}).status_code == 400
        assert browser.get("config").status_code == 401
        assert browser.post("login", data={"username": "u", "password": "s3cret"}).status_code == 200
        config = browser.get("config")
        assert config.status_code == 200 and any(d.get("api_name") == "ask" for d in config.json()["dependencies"])
        r = browser.post("gradio_api/call/ask", json={"data": [Q_LOCAL_TAX, []]})
        assert r.status_code == 200 and r.json()["event_id"]
        events = browser.get(f"gradio_api/call/ask/{r.json()['event_id']}").text.splitlines()
        assert events[0] == "event: complete"
        [(_, citations)] = json.loads(events[1].removeprefix("data: "))  # one output: (answer, citations)
        assert citations[0]["label"] == "四、(二)3."


def test_without_a_key_gradio_stays_open(api_assistant):
    from gradio_client import Client

    with served(api_assistant) as s:
        assert httpx.get(s.url + "config", timeout=30).status_code == 200
        assert Client(s.url, verbose=False).predict(Q_FREELANCE, [], api_name="/ask")[1]


# ---------------------------------------------------------------- answers computed a few at a time


class CountingAssistant:
    """An Assistant that records how many answers /v1 had handed it at once (waiting for a slot or
    being computed)."""

    def __init__(self, inner):
        self.inner, self.active, self.most = inner, 0, 0
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def ask_stream(self, *args, **kw):
        events = self.inner.ask_stream(*args, **kw)
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:  # an extractive answer is computed whole before its first event
            first = next(events)
            time.sleep(0.05)
        finally:
            with self.lock:
                self.active -= 1
        yield first
        yield from events


@pytest.mark.parametrize("concurrency", [1, 3])
def test_v1_lets_a_few_extractive_answers_in_at_a_time(api_assistant, concurrency):
    counting = CountingAssistant(api_assistant)
    with served(counting, door_workers=concurrency) as s:
        client = s.client()
        with ThreadPoolExecutor(8) as pool:
            streams = list(pool.map(lambda q: list(ask(client, q, stream=True)), [Q_LOCAL_TAX, Q_FREELANCE] * 4))
    assert all(chunks[-1].choices[0].finish_reason == "stop" for chunks in streams)
    assert counting.most == concurrency  # 8 clients, never more than door_workers, and it is reached


# ---------------------------------------------------------------- in a real browser


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (Debian package 'chromium')")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@contextmanager
def page_of(chromium):
    page = chromium.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        page.close()


@pytest.mark.e2e
def test_browser_logs_in_with_the_key_and_asks(chromium, keyed):
    with page_of(chromium) as page:
        page.goto(keyed.url)
        page.get_by_label("username").fill("评估员")
        page.get_by_label("password").fill("s3cret")
        page.get_by_role("button", name="Login").click()
        page.fill("#pqa-question textarea", Q_LOCAL_TAX)
        page.press("#pqa-question textarea", "Enter")
        page.locator("#pqa-sources .pqa-cite .pqa-label").first.wait_for()
        assert page.locator("#pqa-sources .pqa-cite .pqa-label").first.inner_text() == "四、(二)3."


FETCH = """async ([url, body]) => {
    try {
        const r = await fetch(url, {method: "POST", body: JSON.stringify(body),
                                    headers: {"Content-Type": "application/json", "Authorization": "Bearer s3cret"}});
        return (await r.json()).citations[0].label;
    } catch (e) { return "blocked: " + e; }
}"""


@contextmanager
def blank_site():
    """A plain web page on a port of its own: another origin, as a chat client's page is ('http://127.0.0.1:P')."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>chat</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
def test_browser_page_of_a_named_origin_may_call_v1_and_others_not(chromium, api_assistant):
    with blank_site() as allowed, blank_site() as other, page_of(chromium) as page:
        with served(api_assistant, cors_origins=allowed, api_key="s3cret") as s:
            page.goto(allowed + "/")
            assert page.evaluate(FETCH, [s.url + "v1/chat/completions", user_body()]) == "四、(二)3."
            page.goto(other + "/")
            assert page.evaluate(FETCH, [s.url + "v1/chat/completions", user_body()]).startswith("blocked")


# ---------------------------------------------------------------- one answer limit for every entry point


def test_answer_slots_limit_and_serve_in_arrival_order():
    from assistant.slots import AnswerSlots

    slots, order, lock = AnswerSlots(1), [], threading.Lock()
    first_in, go = threading.Event(), threading.Event()

    def first():
        with slots.slot():
            first_in.set()
            go.wait(10)
            order.append("first")

    def later(name):
        with slots.slot():
            with lock:
                order.append(name)

    t0 = threading.Thread(target=first)
    t0.start()
    assert first_in.wait(10)
    waiters = []
    for name in ("b", "c", "d"):  # each arrives while the slot is taken, one after the other
        t = threading.Thread(target=later, args=(name,))
        t.start()
        waiters.append(t)
        time.sleep(0.05)
    assert slots.busy == 1 and order == []
    go.set()
    for t in [t0, *waiters]:
        t.join(10)
    assert order == ["first", "b", "c", "d"] and slots.busy == 0
    with pytest.raises(ValueError):
        AnswerSlots(0)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_the_web_ui_and_the_api_share_one_answer_limit(tmp_path, fake_index_dir, concurrency):
    from assistant.core import Assistant

    shutil.copytree(fake_index_dir, tmp_path / "index")
    a = Assistant.from_settings(make_settings(tmp_path, api_concurrency=concurrency), progress=False)
    lock, seen = threading.Lock(), {"active": 0, "most": 0}
    rank = a.rank

    def counting_rank(*args, **kw):  # the CPU part of an answer, inside its slot
        with lock:
            seen["active"] += 1
            seen["most"] = max(seen["most"], seen["active"])
        try:
            time.sleep(0.05)
            return rank(*args, **kw)
        finally:
            with lock:
                seen["active"] -= 1

    a.rank = counting_rank
    with served(a) as s:
        client = s.client()
        jobs = [lambda: list(ask(client, Q_LOCAL_TAX, stream=True))[-1].choices[0].finish_reason == "stop",
                lambda: bool(s.ui.chat.api_ask(Q_FREELANCE)[1]),  # Gradio's /ask
                lambda: bool(list(s.ui.chat.respond(Q_LOCAL_TAX, [], None, None))[-1][2])] * 3  # the chat box
        with ThreadPoolExecutor(9) as pool:
            results = list(pool.map(lambda job: job(), jobs))
    assert all(results)
    assert seen["most"] == concurrency  # 9 callers through three doors, never more than the setting at once


def test_v1_lets_as_many_wait_for_a_slot_as_gradios_queue_does(tmp_path, fake_index_dir):
    """The answer slots serve in arrival order, so a door's share of the answers under load is its
    share of the line. /v1 lets `door_workers` requests into it, as Gradio's queue does (2 against
    8 gave /v1 a fifth of the answers with clients at both doors); the rest wait without a thread."""
    from assistant.core import Assistant

    shutil.copytree(fake_index_dir, tmp_path / "index")
    a = Assistant.from_settings(make_settings(tmp_path, api_concurrency=1), progress=False)
    with served(a, door_workers=3) as s:
        assert s.ui.demo._queue.default_concurrency_limit == 3  # Gradio's queue: the same number
        client = s.client()
        with ThreadPoolExecutor(6) as pool:
            with a.answer_slots.slot():  # the one slot taken: every request queues
                futures = [pool.submit(lambda: list(ask(client, Q_LOCAL_TAX, stream=True))) for _ in range(6)]
                deadline = time.monotonic() + 30
                while a.answer_slots.waiting < 3 and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.3)  # had more got in line, they would be there by now
                in_line = a.answer_slots.waiting
            answers = [f.result(60) for f in futures]
        assert in_line == 3
        assert all(chunks[-1].choices[0].finish_reason == "stop" for chunks in answers)
