"""bot/storage.py on real SQLite files: pragmas, migrations, transactions."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.storage import MIGRATIONS_DIR, Migration, Storage, StorageError, load_migrations
from tests.postgres import READ_ONLY_ERRORS

MIGRATIONS = load_migrations()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_a_new_database_gets_every_migration_and_the_pragmas(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "k.db")
    try:
        assert await storage.version() == len(MIGRATIONS) >= 3
        async with storage.transaction() as tx:   # the writing connection
            assert (await tx.fetch_one("PRAGMA journal_mode"))[0] == "wal"
            assert (await tx.fetch_one("PRAGMA foreign_keys"))[0] == 1
            assert (await tx.fetch_one("PRAGMA busy_timeout"))[0] == 5000
            assert (await tx.fetch_one("PRAGMA query_only"))[0] == 0
        # The reading connection: read-only, and as patient with a writer as the other.
        assert (await storage.fetch_one("PRAGMA query_only"))[0] == 1
        assert (await storage.fetch_one("PRAGMA busy_timeout"))[0] == 5000
    finally:
        await storage.close()
    assert {"guild_settings", "guild_channels", "config_audit", "command_sync"} <= tables(tmp_path / "k.db")


async def test_an_older_database_is_upgraded_in_place_with_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    old = await Storage.open(path, migrations=MIGRATIONS[:1])
    async with old.transaction() as tx:
        await tx.execute("INSERT INTO guild_settings (guild_id, language, timezone, updated_at) "
                         "VALUES (1, 'ja', 'Asia/Tokyo', '2026-01-01T00:00:00+00:00')")
        await tx.execute("INSERT INTO guild_channels (guild_id, purpose, channel_id) VALUES (1, 'prompts', 42)")
    assert await old.version() == 1
    await old.close()
    assert "config_audit" not in tables(path)

    upgraded = await Storage.open(path)
    try:
        assert await upgraded.version() == len(MIGRATIONS)
        row = await upgraded.fetch_one("SELECT language, timezone FROM guild_settings WHERE guild_id = 1")
        assert tuple(row) == ("ja", "Asia/Tokyo")
        channel = await upgraded.fetch_one("SELECT channel_id FROM guild_channels WHERE guild_id = 1")
        assert channel[0] == 42
    finally:
        await upgraded.close()
    assert "config_audit" in tables(path)


async def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    broken = Migration(len(MIGRATIONS) + 1, "broken",
                       "CREATE TABLE half_done (id INTEGER);\nINSERT INTO no_such_table VALUES (1);")
    with pytest.raises(StorageError, match="broken failed and was rolled back"):
        await Storage.open(path, migrations=[*MIGRATIONS, broken])
    assert "half_done" not in tables(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    storage = await Storage.open(path)  # and it still opens at the version it had
    await storage.close()


async def test_a_database_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 999")
    with pytest.raises(StorageError, match="newer Kakehashi"):
        await Storage.open(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 999


async def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    path.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(StorageError, match="not a usable SQLite database"):
        await Storage.open(path)


async def test_a_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "k.db")
    async def insert_then_fail() -> None:
        async with storage.transaction() as tx:
            await tx.execute("INSERT INTO command_sync VALUES ('s', 'h', 't')")
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    assert await storage.fetch_all("SELECT * FROM command_sync") == []
    await storage.close()


async def test_concurrent_transactions_do_not_interleave(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "k.db")
    async with storage.transaction() as tx:
        await tx.execute("INSERT INTO command_sync VALUES ('counter', '0', 't')")

    async def increment() -> None:
        async with storage.transaction() as tx:
            row = await tx.fetch_one("SELECT payload_hash FROM command_sync WHERE scope = 'counter'")
            await asyncio.sleep(0)  # give another task every chance to cut in
            await tx.execute("UPDATE command_sync SET payload_hash = ? WHERE scope = 'counter'",
                             (str(int(row[0]) + 1),))

    await asyncio.gather(*(increment() for _ in range(50)))
    row = await storage.fetch_one("SELECT payload_hash FROM command_sync WHERE scope = 'counter'")
    assert row[0] == "50"
    await storage.close()


async def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "k.db")
    with pytest.raises(sqlite3.IntegrityError):
        async with storage.transaction() as tx:
            await tx.execute("INSERT INTO guild_channels (guild_id, purpose, channel_id) VALUES (9, 'log', 1)")
    await storage.close()


def test_shipped_migrations_are_numbered_without_gaps_and_named_plainly() -> None:
    names = sorted(path.name for path in MIGRATIONS_DIR.glob("*.sql") if not path.name.endswith(".postgresql.sql"))
    assert [m.version for m in MIGRATIONS] == list(range(1, len(names) + 1))
    assert [f"{m.version:04d}_{m.name}.sql" for m in MIGRATIONS] == names
    # A migration PostgreSQL runs in its own words is a second file of the same number and name.
    own = sorted(path.name for path in MIGRATIONS_DIR.glob("*.postgresql.sql"))
    assert [f"{m.version:04d}_{m.name}.postgresql.sql" for m in MIGRATIONS if m.postgresql is not None] == own
    assert own, "0013_group_member_order has one"


def test_misnumbered_migrations_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0003_third.sql").write_text("SELECT 1;")
    with pytest.raises(StorageError, match="without gaps"):
        load_migrations(tmp_path)
    (tmp_path / "0002_second.postgresql.sql").write_text("SELECT 1;")
    with pytest.raises(StorageError, match=r"no NNNN_name\.sql"):
        load_migrations(tmp_path)
    (tmp_path / "0002 second.sql").write_text("SELECT 1;")
    with pytest.raises(StorageError, match=r"not named NNNN_name\.sql"):
        load_migrations(tmp_path)


async def test_reads_wait_for_no_writer_and_see_the_last_commit(tmp_path: Path) -> None:
    """Another process (the round worker) holding SQLite's write lock: reads go on, on the last commit; a write
    of this process waits for the lock, and the reads see it once it is committed."""
    storage = await Storage.open(tmp_path / "k.db")
    other = sqlite3.connect(tmp_path / "k.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO guild_settings (guild_id, language, timezone, updated_at) "
                      "VALUES (1, 'ja', 'Asia/Tokyo', '2026-01-01T00:00:00+00:00')")
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await storage.fetch_one("SELECT language FROM guild_settings WHERE guild_id = 1") is None
        async with storage.read() as tx:
            assert await tx.fetch_all("SELECT * FROM guild_settings") == []
        assert loop.time() - began < 1.0   # not the 5 s of busy_timeout

        async def write() -> None:
            async with storage.transaction() as tx:
                await tx.execute("UPDATE guild_settings SET language = 'en' WHERE guild_id = 1")

        writing = asyncio.create_task(write())
        await asyncio.sleep(0.2)
        assert not writing.done()   # waiting for the other's lock
        other.execute("COMMIT")
        await writing
        row = await storage.fetch_one("SELECT language FROM guild_settings WHERE guild_id = 1")
        assert row is not None and row[0] == "en"
    finally:
        other.close()
        await storage.close()


async def test_the_reading_connection_refuses_to_write(storage: Storage) -> None:
    with pytest.raises(READ_ONLY_ERRORS):
        await storage.fetch_all("DELETE FROM guild_settings")
    with pytest.raises(READ_ONLY_ERRORS):
        async with storage.read() as tx:
            await tx.execute("DELETE FROM guild_settings")
    async with storage.read() as tx:   # the failed read left the connection usable
        assert await tx.fetch_all("SELECT * FROM guild_settings") == []


async def test_the_flush_after_an_erasure_waits_for_readers_here_and_in_another_process(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "k.db")
    other = sqlite3.connect(tmp_path / "k.db", isolation_level=None)
    try:
        async with storage.transaction() as tx:
            await tx.execute("INSERT INTO guild_settings (guild_id, language, timezone, updated_at) "
                             "VALUES (1, 'ja', 'Asia/Tokyo', '2026-01-01T00:00:00+00:00')")
        other.execute("BEGIN")
        other.execute("SELECT * FROM guild_settings").fetchall()   # a snapshot that needs the log
        async with storage.transaction() as tx:
            await tx.execute("DELETE FROM guild_settings WHERE guild_id = 1")
        flushing = asyncio.create_task(storage.flush_deleted())
        reading = asyncio.create_task(storage.fetch_all("SELECT * FROM guild_settings"))
        await asyncio.sleep(0.3)
        assert not flushing.done() and not reading.done()   # this process's reads wait for the flush
        other.execute("COMMIT")
        assert await flushing
        assert await reading == []
        assert (tmp_path / "k.db-wal").stat().st_size == 0
    finally:
        other.close()
        await storage.close()
