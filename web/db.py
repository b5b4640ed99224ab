"""The database the ratings and the chat log live in: one SQLite file by default, PostgreSQL when
POLICYQA_DATABASE_URL is set. SQLAlchemy Core; the tables are defined here, once.

    db = Database.from_settings(settings)      # sqlite:///<settings.ratings_db>, or the URL
    db = Database.open("var/ratings.sqlite3")   # a path is a SQLite file
    db = Database.open("postgresql+psycopg://policyqa@127.0.0.1:5432/policyqa")
    RatingsStore(db, settings); ChatLog(db, settings.chat_log_max_rows)

Tables (schema version 2):
    ratings        one row per (evaluator, item_id); the very columns of the SQLite file ratings were
                   kept in before (schema 1, no policyqa_meta table), so such a file opens as it is
    chat_log       one row per answered question: seq (increasing), id, logged_at, row_json
    policyqa_meta  key -> value: schema_version, and one `imported:<sha256>` per chat-log file taken in

Several processes may write at once. SQLite runs in WAL mode with a busy timeout, and every write
transaction starts with BEGIN IMMEDIATE: it takes the write lock before the first read, so a
read-merge-write cannot fail half-way on a lock another process took meanwhile. PostgreSQL locks
the rows a write merges (SELECT ... FOR UPDATE).

A database that cannot be opened raises DatabaseUnavailable (one line, naming the URL without its
password); so does one that goes away later, on the read or write that finds it gone.
"""
from __future__ import annotations

import contextlib
import random
import sqlite3
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import (BigInteger, Column, Integer, MetaData, Table, Text, create_engine, event, exc, inspect,
                        select, text)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL

from index.errors import PolicyQAError
from index.settings import Settings

SCHEMA_VERSION = 2  # 1: ratings alone (before the chat log moved in); 2: + chat_log, policyqa_meta
BUSY_TIMEOUT_S = 30.0  # how long a SQLite write waits for another process's write lock
CONNECT_TIMEOUT_S = 5  # how long opening a PostgreSQL connection may take before it counts as down
URL_EXAMPLES = "postgresql+psycopg://user@host:5432/dbname or sqlite:///path/to/file.sqlite3"

metadata = MetaData()

ratings = Table(
    "ratings", metadata,
    Column("evaluator", Text, primary_key=True),
    Column("item_id", Text, primary_key=True),
    Column("question", Text),
    Column("answer_json", Text),  # the answer as rated (Answer.to_json()), JSON text
    Column("correctness", Integer),  # 1..5
    Column("completeness", Integer),  # 1..5
    Column("abstain_ok", Integer),  # 1 = abstaining (or answering) was right, 0 = wrong
    Column("citation_marks", Text),  # JSON {"1": true, "2": false}: citation n -> correct?
    Column("comment", Text),
    Column("updated_at", Text, nullable=False),
)

chat_log = Table(
    "chat_log", metadata,
    # on SQLite an INTEGER primary key is the rowid: max + 1 on insert, so seq follows the order of appends
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", Text, nullable=False),  # the Turn's id ('chat-…')
    Column("logged_at", Text, nullable=False),  # 2025-01-31T09:30:00
    Column("row_json", Text, nullable=False),  # the whole row: {id, time, question, history, answer}
)

meta = Table(
    "policyqa_meta", metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)


class DatabaseUnavailable(PolicyQAError):
    """The ratings and chat-log database (POLICYQA_DATABASE_URL, or the SQLite file at
    POLICYQA_RATINGS_DB) cannot be opened, or failed a read or write."""

    exit_code = 9


def reason_of(error: BaseException, limit: int = 200) -> str:
    """The driver's own words for `error`, on one line: 'connection refused', 'database is locked', ..."""
    error = getattr(error, "orig", None) or error
    words = " ".join(str(error).split()) or type(error).__name__
    return words if len(words) <= limit else words[:limit - 1] + "…"


def database_url(location: str | Path) -> URL:
    """The SQLAlchemy URL for a SQLite path or a database URL; postgres(ql):// gets the psycopg driver.

    >>> database_url("postgres://u@db/policyqa").render_as_string()
    'postgresql+psycopg://u@db/policyqa'
    >>> database_url("var/ratings.sqlite3").render_as_string()
    'sqlite:///var/ratings.sqlite3'
    """
    location = str(location)
    if "://" not in location:
        return URL.create("sqlite", database=location)
    try:
        url = make_url(location)
    except (exc.ArgumentError, ValueError) as error:  # ValueError: a port that is not a number
        raise DatabaseUnavailable(f"not a database URL: {location.split('://')[0]}://… ({reason_of(error)}); "
                                  f"use {URL_EXAMPLES}") from error
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseUnavailable(f"unsupported database {url.render_as_string(hide_password=True)}: PolicyQA "
                                  f"stores ratings and the chat log in PostgreSQL or SQLite ({URL_EXAMPLES})")
    return url


def _set_wal(dbapi_connection: sqlite3.Connection, busy_timeout_s: float) -> None:
    """PRAGMA journal_mode = WAL (kept in the file; a no-op once set), retried for up to the busy
    timeout. SQLite does not wait out a lock for this pragma as it does for other statements: with
    several processes opening a new file at once, the ones that lose the race to convert it get
    "database is locked" at once."""
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            dbapi_connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))  # jittered, so the losers do not collide again


class Database:
    """An open database with PolicyQA's tables (created, or brought to SCHEMA_VERSION, on opening).

    `name` is the URL without its password, for messages. `path` is the SQLite file (None on PostgreSQL).
    """

    def __init__(self, location: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S):
        url = database_url(location)
        self.name = url.render_as_string(hide_password=True)
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.path = Path(url.database) if self.is_sqlite and url.database not in (None, "", ":memory:") else None
        self.hint = "check POLICYQA_RATINGS_DB" if self.is_sqlite else "check POLICYQA_DATABASE_URL"
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.engine = self._sqlite_engine(url, busy_timeout_s) if self.is_sqlite else self._postgres_engine(url)
        except OSError as error:
            raise DatabaseUnavailable(f"cannot open the database {self.name} ({reason_of(error)}); "
                                      f"{self.hint}") from error
        except ImportError as error:  # a driver named in the URL that is not installed
            raise DatabaseUnavailable(f"cannot open the database {self.name}: its driver is not installed "
                                      f"({reason_of(error)}); use {URL_EXAMPLES}") from error
        try:
            with self.write("cannot open the database {name} ({reason}); " + self.hint) as conn:
                self._prepare(conn)
        except BaseException:
            self.engine.dispose()
            raise

    @classmethod
    def open(cls, location: Database | str | Path) -> Database:
        """`location` itself if it is a Database, else the database at that path or URL."""
        return location if isinstance(location, Database) else cls(location)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """settings.database_url when set, else the SQLite file settings.ratings_db."""
        return cls(settings.database_url or settings.ratings_db)

    def __repr__(self) -> str:
        return f"Database({self.name!r})"

    @staticmethod
    def _sqlite_engine(url: URL, busy_timeout_s: float) -> Engine:
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):
            # the driver's own transaction handling off: BEGIN is issued below, IMMEDIATE for writes
            dbapi_connection.isolation_level = None
            dbapi_connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            _set_wal(dbapi_connection, busy_timeout_s)

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("policyqa_write") else "BEGIN")

        return engine

    @staticmethod
    def _postgres_engine(url: URL) -> Engine:
        # pre-ping: a connection the server dropped (restart, failover) is replaced before it is used
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})

    def _prepare(self, conn: Connection) -> None:
        """Create what is missing and check what exists (in one write transaction, so processes
        starting together do it once)."""
        self.lock(conn, "schema")
        metadata.create_all(conn)  # only the missing tables: a schema-1 file gets chat_log and policyqa_meta
        have = {c["name"] for c in inspect(conn).get_columns("ratings")}
        missing = [c.name for c in ratings.columns if c.name not in have]
        if missing:
            raise DatabaseUnavailable(f"the table 'ratings' in {self.name} is not PolicyQA's: it lacks the columns "
                                      f"{', '.join(missing)}; {self.hint}")
        version = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
        if version is None:  # new, or schema 1: the tables above were all it lacked
            conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        elif int(version) > SCHEMA_VERSION:
            raise DatabaseUnavailable(f"the database {self.name} was written by a newer PolicyQA (schema {version}; "
                                      f"this one knows up to {SCHEMA_VERSION})")

    def lock(self, conn: Connection, name: str) -> None:
        """Hold a named lock until `conn`'s transaction ends. SQLite's write transactions already
        exclude each other; PostgreSQL takes an advisory transaction lock."""
        if not self.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(f"policyqa:{name}".encode())})

    def insert_ignore(self, table: Table):
        """INSERT ... ON CONFLICT DO NOTHING for this database's dialect."""
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(table).on_conflict_do_nothing()

    def files(self) -> list[Path]:
        """The SQLite file and its WAL and shared-memory files; none for PostgreSQL."""
        if self.path is None:
            return []
        path = self.path.resolve()
        return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]

    @contextlib.contextmanager
    def read(self, failure: str) -> Iterator[Connection]:
        """A connection for reading. A database that is gone raises DatabaseUnavailable(failure), the
        message formatted with {name} (the URL without password) and {reason} (the driver's words)."""
        with self._errors(failure), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self, failure: str) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE), committed on leaving; errors as in read()."""
        with self._errors(failure), self.engine.execution_options(policyqa_write=True).begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _errors(self, failure: str) -> Iterator[None]:
        try:
            yield
        except (exc.IntegrityError, exc.ProgrammingError, exc.DataError):
            raise  # a query PolicyQA got wrong, not a database that is gone
        except (exc.DBAPIError, exc.TimeoutError) as error:
            # connection refused or dropped, database dropped or not accepting connections,
            # "database is locked" past the busy timeout, disk full, a file that is not a database
            raise DatabaseUnavailable(failure.format(name=self.name, reason=reason_of(error))) from error

    def dispose(self) -> None:
        """Close the pooled connections (they are opened again when needed)."""
        self.engine.dispose()
