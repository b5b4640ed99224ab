"""A private PostgreSQL server for the tests: initdb in a temporary folder, pg_ctl start on a free
port of 127.0.0.1, stopped and deleted at the end of the session.

    with PostgresServer.start() as pg:       # PostgresUnavailable says why it cannot
        url = pg.create_schema()              # an empty schema (10 ms): search_path set in the URL
        url = pg.create_database()            # an empty database of its own (0.5 s)
        ...
        pg.drop(url)

PostgreSQL refuses to run as root: as root the cluster is made and run by the `postgres` user that
Debian's package creates (through runuser), in a folder that user owns. The binaries come from PATH
or /usr/lib/postgresql/<version>/bin (Debian keeps them there); `./run test` installs the package.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER = "policyqa"  # the cluster's superuser (trust authentication, 127.0.0.1 and the private socket only)


class PostgresUnavailable(Exception):
    """PostgreSQL is not installed or would not start here; the message says which."""


def find_bin_dir() -> Path:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's newest /usr/lib/postgresql/<n>/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: float(p.parent.parent.name)
                    if p.parent.parent.name.replace(".", "").isdigit() else 0.0)
    if debian:
        return debian[-1].parent
    raise PostgresUnavailable("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql); "
                              "`./run test` installs it with apt-get install postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A running private cluster; `start()` makes one, `stop()` (or leaving the `with`) removes it."""

    def __init__(self, folder: Path, port: int, run_as: str | None, bin_dir: Path):
        self.folder, self.port, self.run_as, self.bin_dir = folder, port, run_as, bin_dir
        self.data = folder / "data"
        self._names = itertools.count(1)
        self._shared = False  # the database create_schema() makes its schemas in exists

    @classmethod
    @contextlib.contextmanager
    def start(cls, timeout_s: int = 60) -> Iterator[PostgresServer]:
        bin_dir = find_bin_dir()
        run_as = None
        folder = Path(tempfile.mkdtemp(prefix="policyqa-pg-"))
        try:
            if os.geteuid() == 0:
                try:
                    owner = pwd.getpwnam("postgres")
                except KeyError as exc:
                    raise PostgresUnavailable("running as root and there is no `postgres` user to run PostgreSQL "
                                              "as (initdb refuses root)") from exc
                run_as = "postgres"
                os.chown(folder, owner.pw_uid, owner.pw_gid)
            server = cls(folder, free_port(), run_as, bin_dir)
            # fast and disposable: nothing is synced to disk (a crash loses this throwaway cluster only)
            options = ("-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       "-c wal_level=minimal -c max_wal_senders=0 -c max_connections=200")
            server._run("initdb", "-D", str(server.data), "-U", USER, "--auth=trust", "--encoding=UTF8",
                        "--no-locale", "--no-sync")
            for attempt in range(3):  # the free port may be taken between free_port() and the server binding it
                try:
                    server._run("pg_ctl", "-D", str(server.data), "-l", str(folder / "server.log"), "-w",
                                "-t", str(timeout_s), "-o",
                                f"{options} -p {server.port} -k {folder}",
                                "start")
                    break
                except PostgresUnavailable:
                    if attempt == 2:
                        raise
                    server.port = free_port()
            try:
                yield server
            finally:
                server._run("pg_ctl", "-D", str(server.data), "-m", "fast", "-w", "stop", check=False)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        try:
            done = subprocess.run(command, cwd=self.folder, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:  # runuser missing, a hung start
            raise PostgresUnavailable(f"{program} did not run: {exc}") from exc
        if check and done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            raise PostgresUnavailable(f"{program} failed (exit {done.returncode}): "
                                      f"{' '.join((done.stderr or done.stdout).split())[-500:]} {tail}".strip())

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE, ALTER DATABASE ...)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname=database, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = f"policyqa_{next(self._names)}"
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self) -> str:
        """A new empty schema in the database 'policyqa': a URL whose connections use it (search_path).
        Much faster than a database of its own, for tests that need no more."""
        if not self._shared:
            self.admin(f'CREATE DATABASE "{USER}"')
            self._shared = True
        name = f"test_{next(self._names)}"
        self.admin(f'CREATE SCHEMA "{name}"', database=USER)
        return self.url(USER) + f"?options=-csearch_path%3D{name}"

    def drop(self, url: str) -> None:
        """Drop a schema or database made above, ending the connections still open to it (the tests'
        stores are not closed: their pools would keep connections until garbage-collected)."""
        database, _, options = url.rsplit("/", 1)[1].partition("?options=-csearch_path%3D")
        if options:
            self.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' "
                       f"AND pid <> pg_backend_pid()", database=database)
            self.admin(f'DROP SCHEMA "{options}" CASCADE', database=database)
        else:
            self.admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
