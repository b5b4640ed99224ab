"""The ratings and chat-log database (web/db.py) on SQLite and PostgreSQL: files from before keep
their rows, several processes writing at once lose nothing, and a database that is wrong, dead or
gone is one clear line, at start and while serving."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading

import pytest
from index.settings import REPO_ROOT, Settings
from web.chatlog import ChatLog
from web.db import SCHEMA_VERSION, Database, DatabaseUnavailable, database_url, meta
from web.ratings import RatingsStore

# the ratings table as web/ratings.py created it before the chat log moved into the database (schema 1)
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    evaluator TEXT NOT NULL,
    item_id TEXT NOT NULL,
    question TEXT,
    answer_json TEXT,
    correctness INTEGER,
    completeness INTEGER,
    abstain_ok INTEGER,
    citation_marks TEXT,
    comment TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (evaluator, item_id)
)
"""
PROCESSES, PER_PROCESS = 4, 25


def dead_url() -> str:
    """A PostgreSQL URL where nothing listens (a port just freed)."""
    from tests.postgres import free_port

    return f"postgresql+psycopg://policyqa:secret@127.0.0.1:{free_port()}/policyqa"


# ---------------------------------------------------------------- files from before


def test_a_ratings_file_from_before_opens_with_its_rows(tmp_path):
    path = tmp_path / "ratings.sqlite3"
    with sqlite3.connect(path) as conn:  # rollback journal, as a file made without WAL would have
        conn.execute(OLD_SCHEMA)
        conn.execute("INSERT INTO ratings VALUES ('alice', 'q1', '问题', NULL, 4, NULL, 1, '{\"1\": true}', '好', "
                     "'2025-01-01T10:00:00')")
    conn.close()
    store = RatingsStore(path)
    assert store.get("alice", "q1") == {
        "evaluator": "alice", "item_id": "q1", "question": "问题", "answer_json": None, "correctness": 4,
        "completeness": None, "abstain_ok": True, "citation_marks": {"1": True}, "comment": "好",
        "updated_at": "2025-01-01T10:00:00"}
    store.save("alice", "q1", completeness=2, citation_marks={"2": False})
    assert store.get("alice", "q1")["citation_marks"] == {"1": True, "2": False}
    ChatLog(store.database, 10).append({"id": "c1", "answer": {}})
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM policyqa_meta WHERE key = 'schema_version'").fetchone()[0] == "2"
        assert conn.execute("SELECT COUNT(*) FROM chat_log").fetchone()[0] == 1
    conn.close()


def test_a_database_from_a_newer_policyqa_is_refused(database_location):
    db = Database(database_location)
    with db.write("{reason}") as conn:
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION + 1)))
    db.dispose()
    with pytest.raises(DatabaseUnavailable, match=f"written by a newer PolicyQA \\(schema {SCHEMA_VERSION + 1}"):
        RatingsStore(database_location)


def test_a_ratings_table_that_is_not_ours_is_refused(tmp_path):
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE ratings (movie TEXT, stars INTEGER)")
    conn.close()
    with pytest.raises(DatabaseUnavailable, match="not PolicyQA's: it lacks the columns evaluator, item_id"):
        RatingsStore(path)


# ---------------------------------------------------------------- several processes at once


def _rate(location: str, worker: int, barrier) -> None:
    store = RatingsStore(location, Settings())
    barrier.wait()
    for i in range(PER_PROCESS):
        store.save(f"evaluator-{worker}", f"q{i}", correctness=1 + i % 5, comment=f"{worker}/{i}")
        store.save("shared", "item", citation_marks={f"{worker}-{i}": True})  # one row every process merges into


def _log(location: str, worker: int, barrier) -> None:
    log = ChatLog(location, max_rows=10_000)
    barrier.wait()
    for i in range(PER_PROCESS):
        log.append({"id": f"w{worker}-{i}", "question": "问", "answer": {"answer": "答"}})


def _start(location: str, worker: int, barrier, folder: str) -> None:
    barrier.wait()
    ChatLog(location, max_rows=10_000, legacy_path=os.path.join(folder, "chat_log.jsonl"))


def run_processes(target, location: str, *args) -> None:
    """PROCESSES fresh interpreters (spawn: nothing shared but the database) running target together."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    procs = [ctx.Process(target=target, args=(location, k, barrier, *args)) for k in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * PROCESSES


def test_processes_rating_at_once_lose_nothing(database_location):
    RatingsStore(database_location)  # created once, so the workers' timings are about the saves
    run_processes(_rate, database_location)
    store = RatingsStore(database_location)
    rows = store.all()
    assert len(rows) == PROCESSES * PER_PROCESS + 1
    assert {r["comment"] for r in rows if r["evaluator"] != "shared"} == {
        f"{w}/{i}" for w in range(PROCESSES) for i in range(PER_PROCESS)}
    # every process read-merged-wrote the same row: a lost update would lose marks
    assert store.get("shared", "item")["citation_marks"] == {
        f"{w}-{i}": True for w in range(PROCESSES) for i in range(PER_PROCESS)}


def test_processes_logging_at_once_lose_nothing(database_location):
    run_processes(_log, database_location)
    log = ChatLog(database_location, max_rows=10_000)
    assert log.count() == PROCESSES * PER_PROCESS
    rows = log.latest(1000)
    assert {r["id"] for r in rows} == {f"w{w}-{i}" for w in range(PROCESSES) for i in range(PER_PROCESS)}
    for w in range(PROCESSES):  # each process's rows in the order it wrote them
        assert [r["id"] for r in rows if r["id"].startswith(f"w{w}-")] == [f"w{w}-{i}" for i in range(PER_PROCESS)]


def test_processes_starting_at_once_import_the_old_log_once(tmp_path, database_location):
    for name, ids in [("chat_log.1.jsonl", range(0, 50)), ("chat_log.jsonl", range(50, 80))]:
        (tmp_path / name).write_text("".join(f'{{"id": "q{i}", "answer": {{}}}}\n' for i in ids), encoding="utf-8")
    run_processes(_start, database_location, str(tmp_path))
    log = ChatLog(database_location, max_rows=10_000)
    assert log.count() == 80 and [r["id"] for r in log.latest(100)] == [f"q{i}" for i in range(80)]
    assert sorted(p.name for p in tmp_path.glob("chat_log*")) == ["chat_log.1.jsonl.imported",
                                                                   "chat_log.jsonl.imported"]


def test_connections_opening_a_new_sqlite_file_at_once_all_open_it(tmp_path):
    """SQLite answers PRAGMA journal_mode = WAL with "database is locked" at once, not after the
    busy timeout, to the connections that lose the race to convert a new file; opening retries it.
    Threads, not processes: each Database has its own connections, and the race is the same."""
    failures = []

    def open_and_write(path, barrier):
        barrier.wait()
        try:
            log = ChatLog(Database(path), max_rows=100)
            log.append({"id": threading.current_thread().name, "answer": {}})
        except Exception as error:  # noqa: BLE001 - collected, the assertion names them
            failures.append(repr(error))

    for round_ in range(80):
        path, barrier = tmp_path / f"r{round_}.sqlite3", threading.Barrier(8)
        threads = [threading.Thread(target=open_and_write, args=(path, barrier), name=f"t{k}") for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == [], f"round {round_}"
        assert ChatLog(Database(path), max_rows=100).count() == 8


# ---------------------------------------------------------------- wrong, dead or gone


@pytest.mark.parametrize("location, message", [
    ("mysql://u@h/db", "unsupported database mysql://u@h/db: PolicyQA stores ratings and the chat log in PostgreSQL "
                       "or SQLite"),
    ("postgresql+psycopg2://u@127.0.0.1/db", "its driver is not installed"),
    ("postgresql://u:pw@/db?host=/nonexistent/socket",
     "cannot open the database postgresql\\+psycopg://u:\\*\\*\\*@/db"),
    ("postgresql://u:pw@host:port/db", "not a database URL: postgresql://… \\(invalid literal for int"),
])
def test_a_wrong_url_is_one_clear_line(location, message):
    with pytest.raises(DatabaseUnavailable, match=message) as exc:
        Database(location)
    assert "\n" not in str(exc.value) and "pw" not in str(exc.value)


def test_a_dead_postgresql_is_one_clear_line_naming_the_setting():
    url = dead_url()
    with pytest.raises(DatabaseUnavailable) as exc:
        RatingsStore(url)
    message = str(exc.value)
    assert message.startswith(f"cannot open the database {url.replace('secret', '***')} (")
    assert message.endswith("; check POLICYQA_DATABASE_URL") and "\n" not in message and "secret" not in message
    assert exc.value.exit_code == 9


def test_a_file_that_is_not_a_database_is_one_clear_line(tmp_path):
    path = tmp_path / "ratings.sqlite3"
    path.write_bytes(b"not a database at all " * 100)
    with pytest.raises(DatabaseUnavailable, match="file is not a database.*check POLICYQA_RATINGS_DB"):
        RatingsStore(path)


def test_postgres_url_schemes_get_the_psycopg_driver():
    assert database_url("postgres://u@h/d").render_as_string() == "postgresql+psycopg://u@h/d"
    assert database_url("postgresql://u@h/d").render_as_string() == "postgresql+psycopg://u@h/d"
    assert database_url("var/r.sqlite3").render_as_string() == "sqlite:///var/r.sqlite3"


def test_the_app_refuses_to_start_on_a_dead_database_in_one_line(tmp_path):
    env = {**os.environ, "POLICYQA_DATABASE_URL": dead_url(), "POLICYQA_INDEX_DIR": str(tmp_path / "index"),
           "POLICYQA_PORT": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(REPO_ROOT / "app.py")], env=env, capture_output=True, text=True,
                          timeout=120, cwd=REPO_ROOT)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 9, done.stderr
    assert len(errors) == 1 and "cannot open the database postgresql+psycopg://policyqa:***@127.0.0.1:" in errors[0]
    assert "Traceback" not in done.stderr and "secret" not in done.stderr
    assert not (tmp_path / "index").exists()  # stopped before opening (or building) the index


def test_postgresql_going_away_and_coming_back(postgres, postgres_database, capsys):
    """While the app runs: a save says clearly that it was not saved, the chat log misses the turn
    (the answer is still given), and both work again once the database is back."""
    from assistant.types import Answer
    from web.chatlog import Turn

    store, log = RatingsStore(postgres_database), ChatLog(postgres_database, max_rows=100)
    store.save("alice", "q1", correctness=3)
    name = postgres_database.rsplit("/", 1)[1]
    postgres.admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    postgres.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        saving = "^评分未保存：数据库 postgresql\\+psycopg://.*无法访问（.*），请稍后再试。$"
        with pytest.raises(DatabaseUnavailable, match=saving):
            store.save("alice", "q1", correctness=5)
        with pytest.raises(DatabaseUnavailable, match="^无法读取评分"):
            store.get("alice", "q1")
        assert log.append_turn(Turn("t1", "问", Answer("问", "答"))) is False
        assert "chat log: the turn was not logged" in capsys.readouterr().err
    finally:
        postgres.admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert store.save("alice", "q1", correctness=5)["correctness"] == 5
    assert log.append_turn(Turn("t2", "问", Answer("问", "答"))) is True and log.count() == 1


def test_a_sqlite_file_locked_too_long_is_a_clear_message(tmp_path):
    path = tmp_path / "ratings.sqlite3"
    store = RatingsStore(Database(path, busy_timeout_s=0.2))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holding the write lock past the busy timeout
    try:
        with pytest.raises(DatabaseUnavailable, match="^评分未保存：.*database is locked"):
            store.save("alice", "q1", correctness=3)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.save("alice", "q1", correctness=3)["correctness"] == 3


def test_the_evaluate_tab_shows_a_gone_database_and_keeps_serving(postgres, postgres_database):
    import gradio as gr

    from assistant.types import Answer
    from web.chatlog import Turn
    from web.evaluate import EvaluateTab

    settings = Settings()
    tab = EvaluateTab(None, settings, RatingsStore(postgres_database, settings),
                      ChatLog(postgres_database, max_rows=100))
    question = "自由职业者怎么交养老保险?"
    items = [Turn("q1", question, Answer(question, "答"))]
    assert "已保存" in tab.save_rating("张三", items, 0, "correctness", 4)[0]
    name = postgres_database.rsplit("/", 1)[1]
    postgres.admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    postgres.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        with pytest.raises(gr.Error, match="评分未保存：数据库 .* 无法访问"):
            tab.save_rating("张三", items, 0, "correctness", 2)
    finally:
        postgres.admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert "已保存" in tab.save_rating("张三", items, 0, "correctness", 2)[0]
    assert tab.ratings.get("张三", "q1")["correctness"] == 2

