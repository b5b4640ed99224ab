"""The chat log: one JSON line per answered question, rotated by size, read back by the Evaluate tab.

    var/chat_log.jsonl      the current file, appended to
    var/chat_log.1.jsonl    the previous one, ... up to `keep` old files; older ones are deleted

A row is written with one `write` under a lock, and rotation happens before a row that
would take the file past `max_bytes`, so no row is ever split across files.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path


def item_id_for(question: str) -> str:
    """A readable id for an answered chat question: 'chat-' + short hash of time and question."""
    data = f"{time.time_ns()}|{question}".encode("utf-8", "replace")
    return "chat-" + hashlib.blake2b(data, digest_size=5).hexdigest()


class ChatLog:
    """Append-only JSONL log with size-based rotation."""

    def __init__(self, path: Path, max_bytes: int, keep: int):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be greater than 0, got {max_bytes}")
        self.path, self.max_bytes, self.keep = Path(path), max_bytes, max(0, keep)
        self._lock = threading.Lock()

    def rotated(self, k: int) -> Path:
        return self.path.with_name(f"{self.path.stem}.{k}{self.path.suffix}")

    def files(self) -> list[Path]:
        """Existing log files, oldest first."""
        old = [self.rotated(k) for k in range(self.keep, 0, -1)]
        return [p for p in old + [self.path] if p.exists()]

    def append(self, row: dict) -> None:
        """Write one row (unencodable characters replaced, so any text can be logged)."""
        line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8", "replace")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = self.path.stat().st_size if self.path.exists() else 0
            if size and size + len(line) > self.max_bytes:
                self._rotate()
            with self.path.open("ab") as f:
                f.write(line)

    def _rotate(self) -> None:
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
            return
        self.rotated(self.keep).unlink(missing_ok=True)
        for k in range(self.keep - 1, 0, -1):
            if self.rotated(k).exists():
                os.replace(self.rotated(k), self.rotated(k + 1))
        os.replace(self.path, self.rotated(1))

    def latest(self, limit: int) -> list[dict]:
        """The newest `limit` rows with distinct ids, oldest first; unreadable lines are skipped."""
        seen: set[str] = set()
        rows: list[dict] = []
        for path in reversed(self.files()):
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in reversed(lines):
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(row, dict) or not isinstance(row.get("answer"), dict) or row.get("id") in seen:
                    continue
                seen.add(row.get("id"))
                rows.append(row)
                if len(rows) >= limit:
                    return rows[::-1]
        return rows[::-1]
