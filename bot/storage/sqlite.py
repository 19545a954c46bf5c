"""SQLite: one aiosqlite connection that writes and ``READERS`` that read.

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

The schema version is ``PRAGMA user_version``, set in the same transaction as the migration it records.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from bot.storage import Migration, Params, Row, Storage, StorageError, Transaction, load_migrations

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
READERS = 2   # read-only connections: a long read leaves one for the interactions
FLUSH_ATTEMPTS = 3    # checkpoints tried after an erasure while another process reads
FLUSH_PAUSE = 0.5     # seconds before the second try (then twice that, and so on)


class SqliteTransaction(Transaction):
    """Statements inside one BEGIN IMMEDIATE … COMMIT (or reads inside one BEGIN … COMMIT)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._conn.execute(sql, params) as cursor:
            row: Row | None = await cursor.fetchone()
            return row

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())


class SqliteStorage(Storage):
    dialect = "sqlite"
    shared = False
    skip_locked = ""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()   # the free ones
        self._opened_readers: list[aiosqlite.Connection] = []   # opened once the schema is current
        self.path = path

    @property
    def target(self) -> Path:
        return self.path

    @property
    def where(self) -> str:
        return str(self.path)

    @classmethod
    async def open(cls, target: str | Path, *, migrations: Iterable[Migration] | None = None) -> SqliteStorage:
        """Open (or create) the database file and bring it up to the newest migration."""
        path = Path(target)
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
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTransaction(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            else:
                await self._conn.execute("COMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Transaction]:
        """On a read-only connection, from the last commit when the first read runs; a statement that
        writes raises ``sqlite3.OperationalError``."""
        async with self._reader() as reader:
            try:
                await reader.execute("BEGIN")
                yield SqliteTransaction(reader)
            finally:
                if reader.in_transaction:
                    await reader.execute("COMMIT")

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._reader() as reader:
            return await SqliteTransaction(reader).fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._reader() as reader:
            return await SqliteTransaction(reader).fetch_all(sql, params)

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
