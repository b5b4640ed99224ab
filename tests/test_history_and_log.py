"""Conversation history is bounded at every entry point, and the chat log rotates."""
from __future__ import annotations

import json

import pytest

from assistant.history import bound_history
from web.chatlog import ChatLog


@pytest.mark.parametrize("history, bounds, expected", [
    ([], dict(max_messages=4, max_chars=100, max_message_chars=50), []),
    # the latest messages are kept
    ([{"role": "user", "content": str(i)} for i in range(10)], dict(max_messages=3, max_chars=100, max_message_chars=50),
     [{"role": "user", "content": "7"}, {"role": "user", "content": "8"}, {"role": "user", "content": "9"}]),
    # one long message is cut, marked with an ellipsis
    ([{"role": "user", "content": "问" * 200}], dict(max_messages=3, max_chars=100, max_message_chars=10),
     [{"role": "user", "content": "问" * 9 + "…"}]),
    # the oldest are dropped once the total passes max_chars
    ([{"role": "user", "content": "甲" * 40}, {"role": "assistant", "content": "乙" * 40},
      {"role": "user", "content": "丙" * 40}], dict(max_messages=9, max_chars=100, max_message_chars=50),
     [{"role": "assistant", "content": "乙" * 40}, {"role": "user", "content": "丙" * 40}]),
    # junk is skipped, not fatal
    ([None, "x", {"role": "system", "content": "s"}, {"role": "user", "content": ["a", {"text": "b"}, 3]}],
     dict(max_messages=9, max_chars=100, max_message_chars=50), [{"role": "user", "content": "ab"}]),
    ("not a list", dict(max_messages=9, max_chars=100, max_message_chars=50), []),
])
def test_bound_history(history, bounds, expected):
    assert bound_history(history, **bounds) == expected


def test_a_huge_previous_question_does_not_reach_the_search(fake_assistant, monkeypatch):
    """A follow-up after a 200,000-character user message is prepared from a bounded history."""
    import assistant.core as core

    seen = []
    real = core.prepare_query
    monkeypatch.setattr(core, "prepare_query", lambda q, h, m=None: seen.append(h) or real(q, h, m))
    history = [{"role": "user", "content": "自由职业者怎么交养老保险?" + "保险" * 100_000},
               {"role": "assistant", "content": "答"}]
    fake_assistant.ask("那一次性补缴要交滞纳金吗?", history)
    limit = fake_assistant.settings.max_question_chars
    assert seen and all(len(m["content"]) <= limit for m in seen[0])
    assert seen[0][0]["content"].startswith("自由职业者怎么交养老保险?")


def test_api_history_of_thousands_of_messages_is_bounded_in_the_log(fake_assistant, fake_settings):
    from app import PolicyQAApp

    ui = PolicyQAApp(fake_assistant, fake_settings)
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"第{i}条消息" + "字" * 2000}
               for i in range(4000)]
    ui.api_ask("自由职业者怎么交养老保险?", history)
    row = json.loads(ui.chat_log.path.read_text(encoding="utf-8").splitlines()[-1])
    assert len(row["history"]) <= fake_settings.max_history_messages
    assert sum(len(m["content"]) for m in row["history"]) <= fake_settings.max_history_chars
    assert row["history"][-1]["content"].startswith("第3999条消息")
    assert ui.chat_log.path.stat().st_size < 200_000


def test_chat_log_rotates_and_reads_back_across_files(tmp_path):
    log = ChatLog(tmp_path / "chat_log.jsonl", max_bytes=2_000, keep=2)
    for i in range(60):
        log.append({"id": f"q{i}", "question": "问" * 20, "answer": {"answer": "答"}})
    files = log.files()
    assert [p.name for p in files] == ["chat_log.2.jsonl", "chat_log.1.jsonl", "chat_log.jsonl"]
    assert all(p.stat().st_size <= 2_000 for p in files)
    rows = [json.loads(line) for p in files for line in p.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(60 - len(rows), 60)]  # whole rows, in order
    latest = log.latest(5)
    assert [r["id"] for r in latest] == [f"q{i}" for i in range(55, 60)]


def test_chat_log_accepts_any_string(tmp_path):
    log = ChatLog(tmp_path / "chat_log.jsonl", max_bytes=10_000, keep=1)
    log.append({"id": "s", "question": "养老\udcff保险", "answer": {"answer": "\ud800"}})
    assert log.latest(1)[0]["id"] == "s"
