"""Uploads indexed in the background, one at a time, with progress and a way to cancel.

The app's upload handler only checks the file and queues it (`UploadQueue.submit`); one worker
thread runs the jobs in order through `run(job)`, which reports progress into the job and
checks `job.cancel`. Every session polls `snapshot()` to show the list, so a long upload
never holds a request open and the next upload waits visibly in the queue.
"""
from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from index.errors import PolicyQAError

STATE_ZH = {"queued": "等待中", "running": "导入中", "done": "已导入", "failed": "导入失败", "cancelled": "已取消"}
FINISHED = frozenset({"done", "failed", "cancelled"})


def uploaded_path(file) -> Path:
    """The path of a file Gradio handed over: a path, a {'path': ...} dict, or a tempfile wrapper (.name)."""
    if isinstance(file, (str, Path)):
        return Path(file)
    return Path(file["path"] if isinstance(file, dict) else file.name)


@dataclass
class UploadJob:
    """One uploaded file on its way into the index (mutated only by the queue and its worker)."""

    id: str
    name: str
    path: Path  # a private copy of the uploaded file, removed when the job ends
    state: str = "queued"
    fraction: float = 0.0
    step: str = ""
    message: str = ""  # the outcome, in Chinese (set when the job ends)
    doc_id: str = ""  # the indexed document, when done
    created: float = field(default_factory=time.time)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def progress(self, fraction: float, step: str = "") -> None:
        """Called by the runner: fraction in [0, 1] and what it is doing."""
        self.fraction = min(1.0, max(0.0, float(fraction)))
        self.step = step or self.step


@dataclass(frozen=True)
class JobView:
    """What a session shows of a job."""

    id: str
    name: str
    state: str
    fraction: float
    step: str
    message: str
    doc_id: str

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class UploadQueue:
    """FIFO of upload jobs run by one worker thread.

    `run(job)` does the indexing and returns (message, doc_id); a PolicyQAError it raises fails
    the job with its message, and if `job.cancel` was set the job counts as cancelled.
    """

    def __init__(self, run: Callable[[UploadJob], tuple[str, str]], max_waiting: int, keep_finished: int = 20):
        if max_waiting <= 0:
            raise ValueError(f"max_waiting must be greater than 0, got {max_waiting}")
        self._run, self.max_waiting, self.keep_finished = run, max_waiting, keep_finished
        self._jobs: list[UploadJob] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self.completed = 0  # jobs that changed the index; sessions refresh their lists when it moves
        self._tmp = Path(tempfile.mkdtemp(prefix="policyqa-uploads-"))
        self._worker = threading.Thread(target=self._work, name="policyqa-uploads", daemon=True)
        self._worker.start()

    def submit(self, src: Path, name: str) -> UploadJob:
        """Queue a copy of `src` as `name`; refuses (PolicyQAError) when too many are waiting."""
        with self._lock:
            waiting = sum(j.state in ("queued", "running") for j in self._jobs)
            if waiting >= self.max_waiting:
                raise PolicyQAError(f"已有 {waiting} 个文件在导入或排队（上限 {self.max_waiting} 个），请等其中一些完成后再上传。")
            job_id = f"u{next(self._ids)}"
        folder = self._tmp / job_id
        folder.mkdir()
        copy = folder / name
        shutil.copyfile(src, copy)
        job = UploadJob(job_id, name, copy)
        with self._wake:
            self._jobs.append(job)
            self._wake.notify()
        return job

    def cancel(self, job_id: str) -> bool:
        """Ask a queued or running job to stop; True if it was still unfinished."""
        with self._lock:
            job = next((j for j in self._jobs if j.id == job_id), None)
            if job is None or job.finished:
                return False
            job.cancel.set()
            if job.state == "queued":
                self._finish(job, "cancelled", "已取消，未导入。索引未改变。")
            return True

    def snapshot(self) -> list[JobView]:
        """All unfinished jobs and the latest finished ones, oldest first."""
        with self._lock:
            return [JobView(j.id, j.name, j.state, j.fraction, j.step, j.message, j.doc_id) for j in self._jobs]

    def wait(self, job_id: str, timeout_s: float) -> JobView | None:
        """Block until a job has finished (tests and scripts); None if it had not within the timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            view = next((v for v in self.snapshot() if v.id == job_id), None)
            if view is None or view.finished:
                return view
            time.sleep(0.05)
        return None

    def _finish(self, job: UploadJob, state: str, message: str, doc_id: str = "") -> None:
        job.state, job.message, job.doc_id = state, message, doc_id
        shutil.rmtree(job.path.parent, ignore_errors=True)
        finished = [j for j in self._jobs if j.finished]
        for old in finished[:-self.keep_finished]:
            self._jobs.remove(old)

    def _work(self) -> None:
        while True:
            with self._wake:
                job = next((j for j in self._jobs if j.state == "queued"), None)
                while job is None:
                    self._wake.wait()
                    job = next((j for j in self._jobs if j.state == "queued"), None)
                job.state = "running"
            try:
                message, doc_id = self._run(job)
            except PolicyQAError as exc:
                with self._lock:
                    cancelled = job.cancel.is_set()
                    self._finish(job, "cancelled" if cancelled else "failed",
                                 "已取消，未导入。索引未改变。" if cancelled else str(exc))
                continue
            except Exception as exc:  # the worker must survive any failure of one job
                with self._lock:
                    self._finish(job, "failed", f"导入时出现意外错误（{exc.__class__.__name__}: {exc}），索引未改变。")
                continue
            with self._lock:
                self._finish(job, "done", message, doc_id)
                self.completed += 1
