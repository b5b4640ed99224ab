"""Conversation history is bounded at every entry point; the chat log (a table, on SQLite and on
PostgreSQL) keeps its newest rows and takes in the JSONL files it was kept in before."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.history import bound_history
from index.settings import Settings
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
    monkeypatch.setattr(core, "prepare_query", lambda q, h, *rest: seen.append(h) or real(q, h, *rest))
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
    ui.chat.api_ask("自由职业者怎么交养老保险?", history)
    row = ui.chat_log.latest(1)[-1]
    assert len(row["history"]) <= fake_settings.max_history_messages
    assert sum(len(m["content"]) for m in row["history"]) <= fake_settings.max_history_chars
    assert row["history"][-1]["content"].startswith("第3999条消息")
    assert len(json.dumps(row, ensure_ascii=False).encode("utf-8")) < 200_000


def test_chat_log_keeps_the_newest_max_rows(database_location):
    log = ChatLog(database_location, max_rows=25)
    for i in range(60):
        log.append({"id": f"q{i}", "question": "问" * 20, "answer": {"answer": "答"}})
    assert log.count() == 25
    assert [r["id"] for r in log.latest(100)] == [f"q{i}" for i in range(35, 60)]  # whole rows, in order
    assert [r["id"] for r in log.latest(5)] == [f"q{i}" for i in range(55, 60)]
    log.append({"id": "q59", "answer": {"answer": "again"}})  # a repeated id is shown once, newest
    assert [r["answer"]["answer"] for r in log.latest(2)] == ["答", "again"]
    assert ChatLog(database_location, max_rows=25).latest(1)[0]["answer"]["answer"] == "again"  # a restart


@pytest.mark.parametrize("max_rows", [0, -3])
def test_chat_log_max_rows_is_validated(tmp_path, max_rows):
    with pytest.raises(ValueError, match=f"max_rows must be greater than 0, got {max_rows}"):
        ChatLog(tmp_path / "r.sqlite3", max_rows=max_rows)
    with pytest.raises(ValueError, match=f"chat_log_max_rows must be greater than 0, got {max_rows}"):
        Settings(chat_log_max_rows=max_rows)


def test_chat_log_accepts_any_string(database_location):
    log = ChatLog(database_location, max_rows=10)
    log.append({"id": "s\x00", "question": "养老\udcff保险\x00", "answer": {"answer": "\ud800"}})
    row = log.latest(1)[0]
    assert row["question"] == "养老?保险\x00" and row["answer"]["answer"] == "?"


def write_old_log(folder, files: dict[str, list]) -> None:
    """JSONL files as the rotating log left them: name -> rows (a str row is written as is)."""
    for name, rows in files.items():
        lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
        (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_the_old_jsonl_log_is_imported_once_oldest_first(tmp_path, database_location):
    def row(i):
        return {"id": f"q{i}", "time": "2025-01-01T10:00:00", "question": f"问题{i}", "history": [],
                "answer": {"answer": f"答{i}"}}

    write_old_log(tmp_path, {"chat_log.2.jsonl": [row(0), row(1)], "chat_log.1.jsonl": [row(2), "not json", row(3)],
                             "chat_log.jsonl": [row(4), '{"id": "cut', row(5)]})
    (tmp_path / "chat_log.9.txt").write_text("not ours")
    log = ChatLog(database_location, max_rows=100, legacy_path=tmp_path / "chat_log.jsonl")
    assert [r["id"] for r in log.latest(100)] == [f"q{i}" for i in range(6)]
    assert log.latest(1)[0] == row(5)
    assert sorted(p.name for p in tmp_path.glob("chat_log*")) == [
        "chat_log.1.jsonl.imported", "chat_log.2.jsonl.imported", "chat_log.9.txt", "chat_log.jsonl.imported"]
    assert [p.name for p in log.legacy_files()] == [
        "chat_log.2.jsonl.imported", "chat_log.1.jsonl.imported", "chat_log.jsonl.imported"]
    # a file back under its old name (a rename that failed, a restored backup) is not taken in twice
    (tmp_path / "chat_log.jsonl.imported").rename(tmp_path / "chat_log.jsonl")
    again = ChatLog(database_location, max_rows=100, legacy_path=tmp_path / "chat_log.jsonl")
    assert again.count() == 6 and not (tmp_path / "chat_log.jsonl").exists()
    # new turns go after the imported ones
    again.append(row(6))
    assert [r["id"] for r in again.latest(2)] == ["q5", "q6"]


def test_an_old_log_larger_than_max_rows_keeps_its_newest(tmp_path, database_location):
    write_old_log(tmp_path, {"chat_log.1.jsonl": [{"id": f"q{i}", "answer": {}} for i in range(10)],
                             "chat_log.jsonl": [{"id": f"q{i}", "answer": {}} for i in range(10, 15)]})
    log = ChatLog(database_location, max_rows=4, legacy_path=tmp_path / "chat_log.jsonl")
    assert log.count() == 4 and [r["id"] for r in log.latest(10)] == ["q11", "q12", "q13", "q14"]


def test_the_app_imports_the_old_log_and_the_evaluate_tab_sees_it(fake_assistant, fake_settings):
    """A server upgraded in place: var/chat_log.jsonl beside the index goes into the database."""
    from app import PolicyQAApp

    question = "自由职业者怎么交养老保险?"
    turn = {"id": "old-1", "time": "2025-01-01T10:00:00", "question": question, "history": [],
            "answer": fake_assistant.ask(question).to_json()}
    var = Path(fake_settings.index_dir).parent
    write_old_log(var, {"chat_log.jsonl": [turn]})
    ui = PolicyQAApp(fake_assistant, fake_settings)
    items = ui.evaluate.load_chat_log("李四")[0]
    assert [it.id for it in items] == ["old-1"] and items[0].answer.to_json() == turn["answer"]
    assert str(var / "chat_log.jsonl.imported") in ui.blocked_paths()
