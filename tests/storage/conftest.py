"""The ``storage`` fixture: a database migrated from zero on each backend, a real SQLite file in the test's
own folder and a new database on the suite's own PostgreSQL server (tests/postgres.py). Every test that takes
``storage`` runs on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage import Storage
from tests.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a test's database is: a file, or a new database's URL."""
    if request.param == "sqlite":
        return tmp_path / "k.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()


@pytest.fixture
async def storage(database: str | Path) -> AsyncIterator[Storage]:
    storage = await Storage.open(database)
    yield storage
    await storage.close()
