"""Settings for every test."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading
from collections.abc import Generator, Iterator
from pathlib import Path

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


# A test that hangs is reported with what its event loops were waiting for: after HANG_SECONDS, every task of every
# running loop is written, with its stack, to tmp/artifacts/hang-<test>.txt and stderr (the suite twice hung in a
# bot's teardown on a loaded machine, and a stack of the main thread alone shows only the selector).
HANG_SECONDS = float(os.environ.get("KAKEHASHI_TEST_HANG_SECONDS", "240"))
_running_loops: list[asyncio.AbstractEventLoop] = []
_run_forever = asyncio.BaseEventLoop.run_forever


def _recorded_run_forever(self: asyncio.BaseEventLoop) -> None:
    _running_loops.append(self)
    try:
        _run_forever(self)
    finally:
        _running_loops.remove(self)


asyncio.BaseEventLoop.run_forever = _recorded_run_forever  # type: ignore[method-assign]


def _awaited(coro: object) -> list[str]:
    """Where a coroutine waits, through every coroutine it awaits (a task's stack shows only its own frame)."""
    found = []
    while coro is not None and len(found) < 50:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            found.append(f"{frame.f_code.co_qualname} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})")
        else:
            found.append(repr(coro)[:200])
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    def report() -> None:
        out = io.StringIO()
        print(f"{item.nodeid} still running after {HANG_SECONDS} s; its event loops' tasks:", file=out)
        for loop in list(_running_loops):
            for task in list(asyncio.all_tasks(loop)):
                print(f"-- {task!r}", file=out)
                task.print_stack(file=out)
                print(f"   awaiting: {' -> '.join(_awaited(task.get_coro()))}", file=out)
        folder = Path(__file__).resolve().parents[1] / "tmp" / "artifacts"
        folder.mkdir(parents=True, exist_ok=True)
        name = "".join(c if c.isalnum() else "-" for c in item.name)[:120]
        (folder / f"hang-{name}.txt").write_text(out.getvalue(), encoding="utf-8")
        sys.__stderr__.write(out.getvalue())

    watchdog = threading.Timer(HANG_SECONDS, report)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
