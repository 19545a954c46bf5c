"""Settings for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests import postgres
from tests.postgres import PostgresServer

# Property tests check rules, not speed (benchmarks under bench/ do that): hypothesis's 200 ms deadline
# per example only makes them flaky on a loaded two-core machine.
settings.register_profile("kakehashi", deadline=None)
settings.load_profile("kakehashi")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, started on first use (tests/postgres.py)."""
    with postgres.running() as server:
        yield server
