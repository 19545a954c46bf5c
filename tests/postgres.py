"""A real PostgreSQL server for the tests, started by the suite itself in a temporary folder on a loopback port.

The binaries are Debian's (``postgresql`` package: ``/usr/lib/postgresql/<version>/bin``) or whatever
``initdb`` is on the PATH. PostgreSQL refuses to run as root: when the tests run as root, the server runs as
the ``postgres`` user the package creates. The cluster asks for a password over TCP (scram-sha-256), so a
test can show what a wrong one does; durability is switched off (``fsync``), as the data lives for one
session only.

Where no PostgreSQL is found, :func:`server` raises ``pytest.skip`` with the line that installs it, except
under CI (``CI`` set), where the tests must run: there it fails.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

USER = "kakehashi"
PASSWORD = "test-only-password"
INSTALL = "install PostgreSQL to run them: apt-get install -y postgresql (Debian), or put initdb on the PATH"


def find_binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: the PATH's, else the newest of Debian's."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    folder: Path
    port: int
    bin: Path
    run_as: str | None
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres", *, password: str = PASSWORD, host: str = "127.0.0.1",
            port: int | None = None) -> str:
        return f"postgresql://{USER}:{password}@{host}:{port or self.port}/{database}"

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        done = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database, "-c", sql],
                              env=env, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / args[0]), *args[1:]], user=self.run_as, capture_output=True,
                              text=True, check=False, timeout=120, cwd=self.folder)

    def start(self) -> None:
        data = self.folder / "data"
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            for path in (self.folder, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        done = self._run("initdb", "-D", str(data), "-U", USER, f"--pwfile={pwfile}", "--auth-local=trust",
                         "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        options = (f"-p {self.port} -h 127.0.0.1 -k {self.folder} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        done = self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w",
                         "-t", "60", "start")
        if done.returncode != 0:
            log = (self.folder / "log").read_text(errors="replace")[-2000:] if (self.folder / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()} {log}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")


@contextlib.contextmanager
def running() -> Iterator[PostgresServer]:
    """A server for the block, removed after it. Skips (fails under CI) when PostgreSQL is missing."""
    binaries = find_binaries()
    if binaries is None or not (binaries / "pg_ctl").exists():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is needed in CI: {INSTALL}")
        pytest.skip(f"PostgreSQL not found: {INSTALL}")
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            message = "the tests run as root and there is no postgres user to run PostgreSQL as"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        run_as = "postgres"
    with serving(binaries, run_as) as server:
        yield server


@contextlib.contextmanager
def serving(binaries: Path, run_as: str | None, prefix: str = "kakehashi-pg-") -> Iterator[PostgresServer]:
    """A server of ``binaries`` (run as ``run_as``) in a new temporary folder, stopped and removed after the
    block: for the tests (:func:`running`) and bench/servers.py."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    server = PostgresServer(folder, _free_port(), binaries, run_as)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


# What a broken constraint raises, on either backend.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.exceptions.IntegrityConstraintViolationError)
# What a write on a read-only connection raises, on either backend.
READ_ONLY_ERRORS = (sqlite3.OperationalError, asyncpg.exceptions.ReadOnlySQLTransactionError)
