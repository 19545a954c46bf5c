"""The database: one aiosqlite connection that writes and ``READERS`` that read, and the migrations.

Stores (``bot/<feature>/store.py``) hold the SQL; this module only runs it.
Writes (every transaction) go through one connection and one lock, because a
single SQLite connection shares one transaction between every coroutine that
uses it: without the lock, a statement from one handler could land inside
another handler's transaction and be rolled back with it.

Reads outside a transaction (``fetch_one``, ``fetch_all``, ``read()``) go
through read-only connections (``READERS`` of them, each used by one reader at
a time). In WAL mode they read the last commit while a writer holds the
database: another process's write (the round worker storing a round of 100,000
members holds SQLite's one write lock for a second or two), or this process's
own transaction. Without them, every interaction would queue behind the
writer's lock for as long as the write lasts; with only one, behind a long
read (a server's whole history, tens of thousands of rows, read again after a
round).

Migrations are ``bot/migrations/NNNN_name.sql``, applied in order, each in its
own transaction together with the ``PRAGMA user_version`` that records it, so
a failed migration leaves the database exactly as it was.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 5000
READERS = 2   # read-only connections: a long read leaves one for the interactions
FLUSH_ATTEMPTS = 3    # checkpoints tried after an erasure while another process reads
FLUSH_PAUSE = 0.5     # seconds before the second try (then twice that, and so on)
_MIGRATION_NAME = re.compile(r"(?P<version>[0-9]{4})_(?P<name>[a-z0-9_]+)\.sql")

Row = sqlite3.Row
Params = Sequence[Any]


class StorageError(Exception):
    """The database cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration in ``folder``, checked to be numbered 1, 2, 3… without gaps."""
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.fullmatch(path.name)
        if match is None:
            raise StorageError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append(Migration(int(match["version"]), match["name"], path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise StorageError(f"migrations must be numbered without gaps: expected {expected:04d}, "
                               f"found {migration.version:04d}_{migration.name}")
    return found


class Transaction:
    """Statements inside one BEGIN IMMEDIATE … COMMIT."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        async with self._conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        """One statement run for each of ``rows``, in one call (one trip to the database's thread, not one
        a row: a round of 100,000 members writes some 200,000 rows)."""
        await self._conn.executemany(sql, rows)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._conn.execute(sql, params) as cursor:
            row: Row | None = await cursor.fetchone()
            return row

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())


class Storage:
    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()   # the free ones
        self._opened_readers: list[aiosqlite.Connection] = []   # opened once the schema is current
        self.path = path

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        migrations: Iterable[Migration] | None = None,
    ) -> Storage:
        """Open (or create) the database and bring it up to the newest migration."""
        steps = list(migrations) if migrations is not None else load_migrations()
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the database {path}: {exc}") from None
        conn.row_factory = sqlite3.Row
        storage = cls(conn, path)
        try:
            await storage._configure()
            await storage._migrate(steps)
            for _ in range(READERS):
                await storage._open_reader()
        except BaseException:
            await storage.close()
            raise
        return storage

    async def _open_reader(self) -> None:
        try:
            reader = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the database {self.path}: {exc}") from None
        reader.row_factory = sqlite3.Row
        self._opened_readers.append(reader)
        self._readers.put_nowait(reader)
        await reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await reader.execute("PRAGMA query_only = ON")

    async def _configure(self) -> None:
        try:
            await self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            async with self._conn.execute("PRAGMA journal_mode = WAL") as cursor:
                row = await cursor.fetchone()
            await self._conn.execute("PRAGMA foreign_keys = ON")
            await self._conn.execute("PRAGMA synchronous = NORMAL")
            # Deleted rows are overwritten with zeros, not just unlinked: a member who deletes their data
            # must leave no trace in the file (see :meth:`flush_deleted`).
            await self._conn.execute("PRAGMA secure_delete = ON")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} is not a usable SQLite database ({exc}): "
                               "move it away or point DATABASE_PATH at another file") from None
        if row is None or str(row[0]).lower() not in {"wal", "memory"}:
            raise StorageError(f"cannot switch {self.path} to WAL journaling")

    async def version(self) -> int:
        async with self._lock, self._conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0

    async def _migrate(self, steps: list[Migration]) -> None:
        current = await self.version()
        newest = steps[-1].version if steps else 0
        if current > newest:
            raise StorageError(
                f"{self.path} was written by a newer Kakehashi (schema {current}, this one knows {newest}): "
                "run the newer version or restore a backup"
            )
        for step in steps:
            if step.version <= current:
                continue
            # executescript() runs the whole file; wrapping it in BEGIN/COMMIT with
            # the version bump makes schema and recorded version change together.
            script = f"BEGIN IMMEDIATE;\n{step.sql}\n;\nPRAGMA user_version = {step.version};\nCOMMIT;\n"
            async with self._lock:
                try:
                    await self._conn.executescript(script)
                except sqlite3.Error as exc:
                    if self._conn.in_transaction:
                        await self._conn.execute("ROLLBACK")
                    raise StorageError(
                        f"migration {step.version:04d}_{step.name} failed and was rolled back: {exc}"
                    ) from None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Several statements that succeed or fail together."""
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            else:
                await self._conn.execute("COMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Transaction]:
        """Several reads that see one state of the database (the last commit when the first of them
        runs), on a read-only connection: they wait for no writer. A statement that writes raises
        ``sqlite3.OperationalError``."""
        async with self._reader() as reader:
            try:
                await reader.execute("BEGIN")
                yield Transaction(reader)
            finally:
                if reader.in_transaction:
                    await reader.execute("COMMIT")

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """One read, on a read-only connection (it waits for no writer)."""
        async with self._reader() as reader:
            return await Transaction(reader).fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """One read, on a read-only connection (it waits for no writer)."""
        async with self._reader() as reader:
            return await Transaction(reader).fetch_all(sql, params)

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[aiosqlite.Connection]:
        """A free read-only connection, for this reader alone until it is done."""
        if not self._opened_readers:
            raise StorageError("the database is closed")
        reader = await self._readers.get()
        try:
            yield reader
        finally:
            try:
                if reader.in_transaction:   # a read() cancelled between its BEGIN and its COMMIT
                    await reader.execute("ROLLBACK")
            finally:
                self._readers.put_nowait(reader)

    async def flush_deleted(self) -> bool:
        """Copy the write-ahead log into the database and empty it, so data just deleted (and zeroed by
        ``secure_delete``) survives in no older page of the log either; False (and a warning logged) when
        a reader kept it from finishing, try after try.

        This process's readers are held meanwhile (a read in progress would keep the pages it sees); a
        reader in another process (the round worker reading a round's pool) may still hold some, so the
        checkpoint is tried again while it reports itself blocked."""
        readers = []
        try:
            for _ in self._opened_readers:
                readers.append(await self._readers.get())
            for attempt in range(FLUSH_ATTEMPTS):
                async with self._lock, self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
                    row = await cursor.fetchone()
                if row is None or int(row[0]) == 0:
                    return True
                await asyncio.sleep(FLUSH_PAUSE * (attempt + 1))
        finally:
            for reader in readers:
                self._readers.put_nowait(reader)
        log.warning("The write-ahead log of %s could not be emptied after %d tries: another process reads the "
                    "database; data just erased stays in the log until its next checkpoint", self.path,
                    FLUSH_ATTEMPTS)
        return False

    async def close(self) -> None:
        readers, self._opened_readers = self._opened_readers, []
        for _ in readers:   # each once its reader is done with it
            await self._readers.get()
        for reader in readers:
            await reader.close()
        async with self._lock:
            await self._conn.close()
