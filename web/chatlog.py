"""The chat log: one row per answered question in the database's chat_log table (web/db.py),
the newest `max_rows` kept, read back by the Evaluate tab.

A row is a `Turn` as JSON plus the time it was logged: {id, time, question, history, answer}. It is
stored whole (row_json), with its id and time beside it; each append deletes the rows that fell
more than `max_rows` behind it (Settings.chat_log_max_rows), as the size-rotated JSONL file did.

The log used to be that file (var/chat_log.jsonl and its rotated copies chat_log.1.jsonl, ...).
Found beside the database, they are taken in once, oldest first, and renamed `*.jsonl.imported`;
the sha256 of each file taken in is recorded in the same transaction, so a file that could not be
renamed (or reappears) is never taken in twice.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, insert, select

from assistant.history import plain_history
from assistant.types import Answer, answer_from_json
from web.db import Database, DatabaseUnavailable, chat_log, meta

APPEND_FAILED = "chat log: the turn was not logged, the database {name} failed ({reason})"
READ_FAILED = "无法读取对话记录：数据库 {name} 无法访问（{reason}），请稍后再试。"
IMPORT_FAILED = "cannot take the old chat log files into the database {name} ({reason})"


def item_id_for(question: str) -> str:
    """A readable id for an answered chat question: 'chat-' + short hash of time and question."""
    data = f"{time.time_ns()}|{question}".encode("utf-8", "replace")
    return "chat-" + hashlib.blake2b(data, digest_size=5).hexdigest()


@dataclass(frozen=True)
class Turn:
    """An answered question: its id, the question, the conversation before it, and the Answer.

    The chat keeps its turns, and the Evaluate tab its items, as Turns; the chat log stores them as JSON.
    """

    id: str
    question: str
    answer: Answer
    history: tuple[dict, ...] = ()  # {"role", "content"} messages, as bounded when it was asked

    def to_json(self) -> dict:
        return {"id": self.id, "question": self.question, "history": list(self.history),
                "answer": self.answer.to_json()}

    @classmethod
    def from_json(cls, row: dict) -> Turn:
        """A Turn back from `to_json()` (a chat log row)."""
        return cls(id=str(row.get("id")), question=str(row.get("question") or ""),
                   answer=answer_from_json(row["answer"]), history=tuple(plain_history(row.get("history"))))


class ChatLog:
    """Answered questions in the database, newest `max_rows` kept.

    `database`: a web.db.Database, a SQLite file path or a database URL. `legacy_path`: where the
    old JSONL log was (var/chat_log.jsonl); its files are imported on construction.
    """

    def __init__(self, database: Database | str | Path, max_rows: int, legacy_path: str | Path | None = None):
        if max_rows <= 0:
            raise ValueError(f"max_rows must be greater than 0, got {max_rows}")
        self.database = Database.open(database)
        self.max_rows = max_rows
        self.legacy_path = Path(legacy_path) if legacy_path is not None else None
        self.import_legacy()

    def legacy_files(self, imported: bool = True) -> list[Path]:
        """The old JSONL log's files that exist, oldest first: chat_log.<k>.jsonl (highest k first),
        then chat_log.jsonl; with `imported`, their `.imported` copies too."""
        if self.legacy_path is None or not self.legacy_path.parent.is_dir():
            return []
        stem, suffix = re.escape(self.legacy_path.stem), re.escape(self.legacy_path.suffix)
        pattern = re.compile(rf"{stem}(?:\.(\d+))?{suffix}(\.imported)?")
        found = []
        for path in self.legacy_path.parent.iterdir():
            m = pattern.fullmatch(path.name)
            if m and (imported or not m.group(2)) and path.is_file():
                found.append((-int(m.group(1) or 0), bool(m.group(2)), path))
        return [path for *_, path in sorted(found)]

    def import_legacy(self) -> int:
        """Take the old JSONL files in (once; see the module docstring); returns the rows added."""
        if not self.legacy_files(imported=False):
            return 0
        added, taken = 0, []
        with self.database.write(IMPORT_FAILED) as conn:
            self.database.lock(conn, "chat_log_import")  # processes starting together import once
            for path in self.legacy_files(imported=False):  # again: another process may have taken some in
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    print(f"PolicyQA: old chat log {path} cannot be read, not imported ({exc})", file=sys.stderr)
                    continue
                taken.append(path)
                key = "imported:" + hashlib.sha256(data).hexdigest()
                if conn.execute(select(meta.c.key).where(meta.c.key == key)).first():
                    continue
                rows = [self._record(row) for row in read_jsonl(data.decode("utf-8", "replace"))]
                if rows:
                    conn.execute(insert(chat_log), rows)
                conn.execute(meta.insert().values(key=key, value=f"{path.name}: {len(rows)} rows"))
                added += len(rows)
            self._bound(conn)
        for path in taken:
            try:
                os.replace(path, path.with_name(path.name + ".imported"))
            except FileNotFoundError:
                pass  # renamed by another process that started beside this one
            except OSError as exc:  # recorded as imported: it will not be taken in again
                print(f"PolicyQA: old chat log {path} was imported but cannot be renamed ({exc})", file=sys.stderr)
        return added

    @staticmethod
    def _record(row: dict) -> dict:
        """The chat_log columns for a row. Unencodable characters are replaced (and NUL, which
        PostgreSQL's text cannot hold, is escaped by JSON), so any text can be logged."""
        return {"id": storable(str(row.get("id"))), "logged_at": storable(str(row.get("time") or now())),
                "row_json": storable(json.dumps(row, ensure_ascii=False))}

    def _bound(self, conn) -> None:
        """Delete the rows more than max_rows behind the newest (seq only grows)."""
        newest = conn.execute(select(func.max(chat_log.c.seq))).scalar()
        if newest is not None:
            conn.execute(delete(chat_log).where(chat_log.c.seq <= newest - self.max_rows))

    def append(self, row: dict) -> None:
        """Store one row; a database that is gone raises DatabaseUnavailable."""
        with self.database.write(APPEND_FAILED) as conn:
            seq = conn.execute(insert(chat_log).values(**self._record(row))).inserted_primary_key[0]
            conn.execute(delete(chat_log).where(chat_log.c.seq <= seq - self.max_rows))

    def append_turn(self, turn: Turn) -> bool:
        """Log an answered question with the time (the Evaluate tab can load it). A database that is
        gone costs the log this turn, not the user the answer: a line on stderr, and False."""
        try:
            self.append({**turn.to_json(), "time": now()})
        except DatabaseUnavailable as exc:
            print(f"PolicyQA: {exc}", file=sys.stderr)
            return False
        return True

    def count(self) -> int:
        """How many rows the log holds."""
        with self.database.read(READ_FAILED) as conn:
            return conn.execute(select(func.count()).select_from(chat_log)).scalar_one()

    def latest(self, limit: int) -> list[dict]:
        """The newest `limit` rows with distinct ids, oldest first; unreadable rows are skipped."""
        seen: set[str] = set()
        rows: list[dict] = []
        if limit <= 0:
            return rows
        query = select(chat_log.c.row_json).order_by(chat_log.c.seq.desc())
        with self.database.read(READ_FAILED) as conn:
            for (row_json,) in conn.execution_options(yield_per=max(limit, 100)).execute(query):
                try:
                    row = json.loads(row_json)
                except ValueError:
                    continue
                if not isinstance(row, dict) or not isinstance(row.get("answer"), dict) or row.get("id") in seen:
                    continue
                seen.add(row.get("id"))
                rows.append(row)
                if len(rows) >= limit:
                    break
        return rows[::-1]


def now() -> str:
    """The local time as the log writes it: 2025-01-31T09:30:00."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def storable(text: str) -> str:
    """`text` with unpaired surrogates replaced by '?' and NUL by U+FFFD: what every backend can store.

    >>> storable("养老\\udcff\\x00保险")
    '养老?\ufffd保险'
    """
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def read_jsonl(text: str) -> list[dict]:
    """The JSON objects of JSONL text, in order; lines that are not one are skipped.

    >>> read_jsonl('{"id": "q1"}\\nnot json\\n[1]\\n{"id": "q2"}')
    [{'id': 'q1'}, {'id': 'q2'}]
    """
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
