"""The running app over HTTP: the /ask API through gradio_client, and what files the server refuses."""
from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app import PolicyQAApp
from index.settings import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(fake_assistant, fake_settings):
    """The app served from a background thread on a free localhost port; yields its URL."""
    ui = PolicyQAApp(fake_assistant, fake_settings)
    ui.create_app()
    _, url, _ = ui.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield ui, url
    finally:
        ui.demo.close()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_ask_through_gradio_client(server):
    from gradio_client import Client

    _, url = server
    client = Client(url, verbose=False)
    markdown, citations = client.predict("地税部门在扩面工作中负责什么?", [], api_name="/ask")
    assert citations[0]["label"] == "四、(二)3."
    assert citations[0]["quote"] and citations[0]["doc_number"] == "本政发[2008]6号"
    assert "[1]" in markdown
    # a follow-up with the conversation so far
    history = [{"role": "user", "content": "自由职业者怎么交养老保险?"},
               {"role": "assistant", "content": client.predict("自由职业者怎么交养老保险?", [], api_name="/ask")[0]}]
    markdown, citations = client.predict("那一次性补缴要交滞纳金吗?", history, api_name="/ask")
    assert "检索问题" in markdown and citations


def test_ask_with_an_empty_question_reports_the_error(server):
    from gradio_client import Client

    _, url = server
    with pytest.raises(Exception, match="问题为空"):
        Client(url, verbose=False).predict("  ", [], api_name="/ask")


def test_server_does_not_serve_code_index_or_ratings(server, fake_settings):
    ui, url = server
    ui.ratings.save("张三", "q1", correctness=3)  # make sure the database file exists
    index_file = next(Path(fake_settings.index_dir).rglob("manifest.json"))
    for path in [REPO_ROOT / "app.py", REPO_ROOT / "index" / "settings.py", index_file,
                 Path(fake_settings.ratings_db), Path("/etc/passwd")]:
        assert path.exists()
        assert status_of(f"{url}gradio_api/file={path}") == 403, path
    assert status_of(url) == 200


def test_many_concurrent_questions_are_queued_not_refused(server):
    from gradio_client import Client

    _, url = server
    client = Client(url, verbose=False)
    questions = ["地税部门在扩面工作中负责什么?", "自由职业者怎么交养老保险?", "個體工商戶應該參加哪些社會保險?"] * 10
    jobs = [client.submit(q, [], api_name="/ask") for q in questions]
    results = [job.result(timeout=120) for job in jobs]
    assert len(results) == 30
    assert all(citations for _, citations in results)
    assert {citations[0]["label"] for _, citations in results} >= {"四、(二)3.", "四、(四)"}
