"""Gradio app: chat with cited answers, the indexed documents, and human evaluation of answers.

    python app.py            # serves on POLICYQA_HOST:POLICYQA_PORT (127.0.0.1:7860)
    http://127.0.0.1:7860/?clause=<clause_id>   # the Documents tab at that clause ('#' written %23)

`PolicyQAApp(assistant, settings).create_app()` assembles the Blocks from the three tabs in `web/`
(`chat.ChatTab`, `documents.DocumentsTab`, `evaluate.EvaluateTab`); `launch()` serves them.
Each tab's handlers are plain methods (`app.chat.respond`, `app.documents.upload_document`,
`app.evaluate.save_rating`, ...) so tests call them directly. Answers are rendered from `Answer`
objects by web/render.py, which HTML-escapes everything taken from a document or an answer.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import gradio as gr

from index.ingest import uploads_folder
from index.settings import REPO_ROOT, Settings
from web.chat import ChatTab
from web.chatlog import ChatLog
from web.db import Database
from web.documents import DocumentsTab, show_clause
from web.evaluate import EvaluateTab
from web.ratings import RatingsStore


class PolicyQAApp:
    """The three tabs (Chat, Documents, Evaluate) over one Assistant, chat log and RatingsStore."""

    def __init__(self, assistant, settings: Settings | None = None, ratings: RatingsStore | None = None,
                 database: Database | None = None):
        self.assistant = assistant
        self.settings = settings or assistant.settings
        # ratings and the chat log share one database: settings.database_url, or the SQLite file ratings_db
        self.database = database or (ratings.database if ratings else Database.from_settings(self.settings))
        self.ratings = ratings or RatingsStore(self.database, self.settings)
        self.var_dir = Path(self.settings.index_dir).resolve().parent
        self.uploads_dir = uploads_folder(self.settings)
        # the chat log was var/chat_log.jsonl (rotated): those files are imported into the database once
        self.chat_log = ChatLog(self.database, self.settings.chat_log_max_rows, self.var_dir / "chat_log.jsonl")
        self.chat = ChatTab(assistant, self.settings, self.chat_log)
        self.documents = DocumentsTab(assistant, self.settings)
        self.evaluate = EvaluateTab(assistant, self.settings, self.ratings, self.chat_log)
        self.uploads = self.documents.uploads  # the background upload queue
        self.demo: gr.Blocks | None = None

    def show_clause(self, clause_id: str, quote: str = "", script: str = "original", variant: str = "s2t") -> str:
        """The document viewer: the whole document with one clause highlighted and its quote marked."""
        return show_clause(self.assistant.data, clause_id, quote, script, variant)

    def create_app(self) -> gr.Blocks:
        """Build the Blocks (three tabs) and wire the handlers; does not start a server."""
        with gr.Blocks(title="PolicyQA 政策问答", analytics_enabled=False) as demo:
            gr.Markdown("## PolicyQA 政策问答\n根据已收录的政策文件回答问题，每句话都注明出处条款；找不到依据时会明确说明。")
            with gr.Tabs() as tabs:
                chat_docs = self.chat.build()
                self.documents.build(demo, tabs, chat_docs)
                self.evaluate.build()
        # the Assistant is thread-safe for ask; uploads run one at a time in the UploadQueue worker
        demo.queue(default_concurrency_limit=self.settings.door_workers, max_size=256)
        self.demo = demo
        return demo

    def blocked_paths(self) -> list[str]:
        """Paths the server must never serve: the code, the index, uploads, ratings and the chat log."""
        db = Path(self.settings.ratings_db).resolve()
        paths = [REPO_ROOT, Path(self.settings.index_dir).resolve(), self.uploads_dir, *self.chat_log.legacy_files(),
                 Path(self.settings.corpus_dir).resolve(), db, db.with_name(db.name + "-wal"),
                 db.with_name(db.name + "-shm"), *self.database.files()]
        return sorted({str(p) for p in paths})

    def launch(self, **kwargs):
        """Serve the Blocks alone with Gradio's own server on settings.host:settings.port (kwargs override
        launch() arguments). `python app.py` serves them beside the /v1 API instead (web/server.py)."""
        from web.server import gradio_options

        demo = self.demo or self.create_app()
        options = dict(gradio_options(self), server_name=self.settings.host, server_port=self.settings.port)
        options.update(kwargs)
        return demo.launch(**options)


def build_app(assistant, settings: Settings | None = None) -> gr.Blocks:
    """The Gradio Blocks for an Assistant (not launched)."""
    return PolicyQAApp(assistant, settings).create_app()


def main() -> int:
    """Serve the app and the /v1 API on one port; the index opens in the background (503 until then)."""
    from assistant.core import Assistant
    from web.server import serve

    settings = Settings.from_env()

    def load() -> PolicyQAApp:  # a PolicyQAError raised here is printed and becomes the exit code
        database = Database.from_settings(settings)  # a dead or wrong database URL stops here, before the index
        print(f"PolicyQA: opening the index at {settings.index_dir} (built from {settings.corpus_dir} on first "
              f"start)", file=sys.stderr)
        assistant = Assistant.from_settings(settings, progress=True)
        print(f"PolicyQA: {len(assistant.data.docs)} documents, {len(assistant.data.chunks)} chunks; "
              f"answerer: {'extractive + LLM' if assistant.llm_available else 'extractive'}", file=sys.stderr)
        return PolicyQAApp(assistant, settings, database=database)

    return serve(load, settings)


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # one OpenMP thread per question (the embedder, FAISS and LightGBM are OpenMP code, loaded later by
    # main()): the server answers on several threads at once, and a team of threads per question
    # oversubscribes the cores; a member the OS pauses holds up its team at every barrier. On a busy
    # 2-core machine a query embedding took a median 63 ms on one thread and 780 ms on two. Uploads
    # embedded by the app use one thread too; `python -m assistant index` is not affected. Set it to override.
    # A question computed alone still embeds on every core (Settings.query_threads, assistant/slots.py).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
