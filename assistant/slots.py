"""AnswerSlots: at most n extractive answers computed at once, waiters served in arrival order.

Answering is CPU-bound and mostly holds the GIL: with more questions in flight than cores, every
one of them finishes late. One `AnswerSlots` per Assistant is shared by every entry point (the
web UI, its /ask API, the OpenAI-compatible /v1 API, the CLI), so together they never compute
more than `Settings.api_concurrency` answers at once.

The slots also say how many cores one answer may take (`threads_for_one`): OpenMP code runs on
one thread per question (app.py), but a question with no other in flight or waiting has the
machine to itself, and its query embedding runs on every core (on this 2-core machine a long
STARD question's embedding took a median 36 ms on one thread and 22 ms on two).
"""
from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager


class AnswerSlots:
    def __init__(self, n: int, cores: int = 1):
        if n < 1:
            raise ValueError(f"answer slots must be 1 or more, got {n}")
        if cores < 1:
            raise ValueError(f"cores must be 1 or more, got {cores}")
        self.n = n
        self.cores = cores
        self._busy = 0
        self._waiting: deque = deque()
        self._cond = threading.Condition()

    @contextmanager
    def slot(self):
        """Hold one slot for the block; blocks until every earlier caller has had theirs."""
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            self._cond.wait_for(lambda: self._waiting[0] is ticket and self._busy < self.n)
            self._waiting.popleft()
            self._busy += 1
            self._cond.notify_all()  # the next in line may fit too
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def waiting(self) -> int:
        """Callers in line for a slot."""
        return len(self._waiting)

    def threads_for_one(self) -> int:
        """OpenMP threads for the question asking now: every core when no other answer is being
        computed or waits (the caller holds its own slot, or none), else one."""
        with self._cond:
            return self.cores if self._busy <= 1 and not self._waiting else 1
