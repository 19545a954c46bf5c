"""The database: one interface, two backends.

Stores (``bot/<feature>/store.py``) hold the SQL, written once with ``?`` parameters in the SQL that SQLite
and PostgreSQL share; this package only runs it. :meth:`Storage.open` picks the backend from what it is
given: a file path opens SQLite (:mod:`bot.storage.sqlite`, the default: one process, one file), a
``postgresql://`` URL opens PostgreSQL (:mod:`bot.storage.postgres`: several processes on several
machines). What differs between the two (placeholders, column types in migrations, how the schema version
is kept, what a lost connection looks like) lives in those two modules and nowhere else.

Both backends promise the same things to a store:

- ``transaction()``: statements that succeed or fail together, one such transaction at a time in a
  process (a store may read, decide and write inside one without another handler of the same process
  interleaving). Across processes, each server's work is done by the one process that owns its shard,
  and what processes share (the outbox's claims) is claimed in single statements.
- ``read()``, ``fetch_one()``, ``fetch_all()``: reads that wait for no writer and see the last commit.
- Rows are read by column name (``row["guild_id"]``) or position (``row[0]``).

Migrations are ``bot/migrations/NNNN_name.sql``, applied in order, each in its own transaction together
with the record of the schema version, so a failed migration leaves the database exactly as it was. A
migration that cannot be written for both has a second file, ``NNNN_name.postgresql.sql``, which
PostgreSQL runs instead.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_NAME = re.compile(r"(?P<version>[0-9]{4})_(?P<name>[a-z0-9_]+)(?P<dialect>\.postgresql)?\.sql")
POSTGRES_SCHEMES = ("postgresql", "postgres")

Params = Sequence[Any]


class Row(Protocol):
    """A row as both backends give it: by column name or by position."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


class StorageError(Exception):
    """The database cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    # What PostgreSQL runs instead, when the step cannot be written for both.
    postgresql: str | None = None


def load_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration in ``folder``, checked to be numbered 1, 2, 3… without gaps."""
    found: dict[int, Migration] = {}
    dialect_files: dict[int, str] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.fullmatch(path.name)
        if match is None:
            raise StorageError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(match["version"])
        if match["dialect"]:
            dialect_files[version] = path.read_text(encoding="utf-8")
        else:
            found[version] = Migration(version, match["name"], path.read_text(encoding="utf-8"))
    for version in dialect_files:
        if version not in found:
            raise StorageError(f"migration {version:04d} has a PostgreSQL file but no NNNN_name.sql")
    steps = []
    for expected, version in enumerate(sorted(found), start=1):
        migration = found[version]
        if version != expected:
            raise StorageError(f"migrations must be numbered without gaps: expected {expected:04d}, "
                               f"found {migration.version:04d}_{migration.name}")
        steps.append(Migration(version, migration.name, migration.sql, dialect_files.get(version)))
    return steps


class Transaction(ABC):
    """Statements inside one transaction (or, from :meth:`Storage.read`, reads of one state)."""

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        """One statement run for each of ``rows``, in one call (a round of 100,000 members writes some
        200,000 rows: one trip to the database a batch, not one a row)."""

    @abstractmethod
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...

    @abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...


class Storage(ABC):
    # "sqlite" or "postgresql", for a log line; a store that must write something differently asks one of the
    # two below instead.
    dialect: str
    # Whether several bot processes may share this database (PostgreSQL), or only one may use it (SQLite: the
    # round worker is the one other process, and it does only what the bot asks).
    shared: bool
    # What a SELECT of rows about to be claimed ends with, so that processes claiming at once take different
    # rows instead of waiting for each other: PostgreSQL's FOR UPDATE SKIP LOCKED; nothing on SQLite, where a
    # writer holds the whole database.
    skip_locked: str

    @property
    @abstractmethod
    def target(self) -> str | Path:
        """What :meth:`open` opened: the file, or the URL (which may carry a password: never log it)."""

    @property
    @abstractmethod
    def where(self) -> str:
        """The database, named for a log line or an error: a path, or a URL without its password."""

    @classmethod
    async def open(cls, target: str | Path, *, migrations: Iterable[Migration] | None = None) -> Storage:
        """Open (or create) the database named by ``target`` (a file path, or a ``postgresql://`` URL) and
        bring it up to the newest migration."""
        if is_postgres_url(target):
            from bot.storage.postgres import PostgresStorage

            return await PostgresStorage.open(str(target), migrations=migrations)
        from bot.storage.sqlite import SqliteStorage

        return await SqliteStorage.open(Path(target), migrations=migrations)

    @abstractmethod
    async def version(self) -> int:
        """The schema version: the number of the last migration applied."""

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Several statements that succeed or fail together; one transaction at a time in this process."""

    @abstractmethod
    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """Several reads that see one state of the database, waiting for no writer. A statement that
        writes fails."""

    @abstractmethod
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """One read; it waits for no writer."""

    @abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """One read; it waits for no writer."""

    @abstractmethod
    async def flush_deleted(self) -> bool:
        """Make data just deleted unreadable from the database's files, where the backend can; True when
        done (or nothing is needed)."""

    @abstractmethod
    async def close(self) -> None: ...


def is_postgres_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.split("://", 1)[0].lower() in POSTGRES_SCHEMES and "://" in target


__all__ = ["MIGRATIONS_DIR", "Migration", "Params", "Row", "Storage", "StorageError", "Transaction",
           "is_postgres_url", "load_migrations"]
