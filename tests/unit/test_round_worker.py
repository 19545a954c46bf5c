"""The round worker: the same plan as ``plan_round`` in the bot's process, a worker that dies replaced, a clean
close, and an event loop that keeps its pace while a worker with no compiled kernels yet plans a round."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import pytest

from bot.matching import worker as worker_module
from bot.matching.model import Candidate, History, LeftOut
from bot.matching.pairing import plan_round
from bot.matching.worker import RoundWorker

T = TypeVar("T")

COMPANIES = ("sony", "toyota", "rakuten", "mercari", "ソニー", "freee", "line", "smarthr")
TAGS = ("ai", "supply chain", "fintech", "採用", "design", "data", "security", "retail")
PHRASES = ("Vietnam market entry", "ベトナム進出", "hiring engineers", "エンジニア採用", "fundraising", "資金調達")
OFFSETS = (None, 9.0, 8.0, 5.5, 0.0, -5.0, -8.0)
# Discord's ids are snowflakes, far past 32 bits.
FIRST_ID = 1_100_000_000_000_000_000


def community(n: int, seed: int) -> tuple[list[Candidate], History]:
    rng = random.Random(seed)
    users = [FIRST_ID + rng.randrange(1 << 40) for _ in range(n)]
    members = [
        Candidate(
            user_id=user,
            company=rng.choice(COMPANIES),
            languages=frozenset(rng.sample(("ja", "en", "other"), rng.randint(1, 2))),
            interests=frozenset(rng.sample(TAGS, rng.randint(0, 4))),
            offers=tuple(rng.sample(PHRASES, rng.randint(0, 2))),
            seeks=tuple(rng.sample(PHRASES, rng.randint(0, 2))),
            utc_offset=rng.choice(OFFSETS),
            avoid=frozenset(rng.sample(COMPANIES, 1)) if rng.random() < 0.1 else frozenset(),
            available=rng.random() < 0.9,
        )
        for user in dict.fromkeys(users)
    ]

    def pairs(count: int) -> MappingProxyType[int, frozenset[int]]:
        linked: dict[int, set[int]] = {}
        for _ in range(count):
            a, b = rng.sample(users, 2)
            linked.setdefault(a, set()).add(b)
            linked.setdefault(b, set()).add(a)
        return MappingProxyType({user: frozenset(others) for user, others in linked.items()})

    return members, History(met=pairs(n), declined=pairs(n // 10), threads=pairs(n // 3))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {timeout:.0f} s")
        await asyncio.sleep(0.01)


async def longest_lag(work: Awaitable[T]) -> tuple[T, float]:
    """What ``work`` gives, and the longest a 10 ms tick of the event loop came late while it ran."""
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - before - 0.01)

    tick = asyncio.create_task(ticker())
    try:
        result = await work
    finally:
        done = True
        await tick
    return result, worst


# Run in the worker process instead of the round, by the tests that need a worker dying or busy.
def dies(*_: object) -> None:
    os._exit(3)


def sleeps(*_: object) -> None:
    time.sleep(3600)


def plans_nothing(*_: object) -> worker_module._Plan:
    return worker_module._Plan(groups=(), left_out=(), total=42.0, bound=42.0)


async def test_the_worker_plans_what_plan_round_plans() -> None:
    members, history = community(120, seed=1)
    worker = RoundWorker()
    try:
        plan = await worker.plan(members, history)
        assert plan == plan_round(members, history)
        assert plan.groups and all(isinstance(why, LeftOut) for why in plan.left_out.values())
        # A history of plain dicts, and a round of nobody, cross as well.
        plain = History(met=dict(history.met), declined={}, threads=dict(history.threads))
        assert await worker.plan(members[:40], plain) == plan_round(members[:40], plain)
        assert await worker.plan([], History()) == plan_round([], History())
        with pytest.raises(ValueError, match="twice"):
            await worker.plan([members[0], members[0]], history)
    finally:
        await worker.close()


async def test_no_process_until_the_first_round() -> None:
    worker = RoundWorker()
    assert worker.pid is None
    await worker.close()
    assert worker.pid is None


async def test_a_killed_worker_is_replaced() -> None:
    members, history = community(60, seed=2)
    expected = plan_round(members, history)
    worker = RoundWorker()
    try:
        assert await worker.plan(members, history) == expected
        first = worker.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert await worker.plan(members, history) == expected
        second = worker.pid
        assert second is not None and second != first
        # Killed while it plans: the round is planned again in a new worker.
        planning = asyncio.create_task(worker.plan(*community(1500, seed=3)))
        await until(lambda: worker.busy)
        os.kill(second, signal.SIGKILL)
        assert (await planning).placed > 0
        assert worker.pid not in (None, first, second)
    finally:
        await worker.close()


async def test_a_worker_that_dies_twice_fails_the_round_and_the_next_round_starts_another(
        monkeypatch: pytest.MonkeyPatch) -> None:
    members, history = community(30, seed=4)
    worker = RoundWorker()
    try:
        # What stands in for the round below does run in the worker.
        monkeypatch.setattr(worker_module, "_plan_in_worker", plans_nothing)
        assert (await worker.plan(members, history)).total == 42.0
        monkeypatch.setattr(worker_module, "_plan_in_worker", dies)
        with pytest.raises(BrokenProcessPool):
            await worker.plan(members, history)
        monkeypatch.undo()
        assert await worker.plan(members, history) == plan_round(members, history)
    finally:
        await worker.close()


async def test_an_idle_worker_is_stopped_and_the_next_round_starts_another() -> None:
    members, history = community(30, seed=8)
    worker = RoundWorker(idle_timeout=0.3)
    try:
        await worker.plan(members, history)
        first = worker.pid
        assert first is not None
        await until(lambda: worker.pid is None)
        await until(lambda: gone(first), timeout=10)
        assert await worker.plan(members, history) == plan_round(members, history)
        assert worker.pid not in (None, first)
    finally:
        await worker.close()


async def test_close_stops_an_idle_worker_and_refuses_rounds_after() -> None:
    members, history = community(30, seed=5)
    worker = RoundWorker()
    await worker.plan(members, history)
    pid = worker.pid
    assert pid is not None
    started = time.perf_counter()
    await worker.close()
    assert time.perf_counter() - started < 5
    assert gone(pid) and worker.pid is None
    await worker.close()
    with pytest.raises(RuntimeError, match="closed"):
        await worker.plan(members, history)


async def test_close_kills_a_worker_in_the_middle_of_a_round(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "_plan_in_worker", sleeps)
    worker = RoundWorker(close_timeout=60)
    planning = asyncio.create_task(worker.plan(*community(30, seed=6)))
    await until(lambda: worker.pid is not None and worker.busy)
    pid = worker.pid
    assert pid is not None
    started = time.perf_counter()
    await worker.close()
    assert time.perf_counter() - started < 10
    assert gone(pid)
    with pytest.raises(RuntimeError, match="closed"):
        await planning


async def test_the_event_loop_keeps_its_pace_while_a_fresh_worker_compiles_and_plans(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh install: no compiled kernels cached (about 10 s to compile them on an idle 2-core machine,
    up to a minute on a busy one). The worker compiles them; the bot's event loop keeps its pace."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    members, history = community(3000, seed=7)
    worker = RoundWorker()
    try:
        plan, worst = await longest_lag(worker.plan(members, history))
    finally:
        await worker.close()
    assert worst < 0.5, f"the event loop waited {worst * 1e3:.0f} ms"
    assert any(tmp_path.rglob("*.nbi")), "the worker compiled the kernels into NUMBA_CACHE_DIR"
    assert plan == plan_round(members, history)


BOT_THAT_IS_KILLED = """
import asyncio, sys
from bot.matching.model import Candidate, History
from bot.matching.worker import RoundWorker

async def main():
    worker = RoundWorker()
    await worker.plan([Candidate(1, "a", frozenset({"en"})), Candidate(2, "b", frozenset({"en"}))], History())
    print(worker.pid, flush=True)
    await asyncio.sleep(60)

if __name__ == "__main__":
    asyncio.run(main())
"""


async def test_a_worker_whose_bot_is_killed_exits_too(tmp_path: Path) -> None:
    """SIGKILL gives the bot no chance to close its worker: the worker notices by itself."""
    script = tmp_path / "killed_bot.py"
    script.write_text(BOT_THAT_IS_KILLED, encoding="utf-8")
    bot = await asyncio.create_subprocess_exec(sys.executable, str(script), stdout=asyncio.subprocess.PIPE,
                                               stderr=asyncio.subprocess.PIPE)
    try:
        assert bot.stdout is not None
        line = await asyncio.wait_for(bot.stdout.readline(), 60)
        if not line:
            assert bot.stderr is not None
            raise AssertionError((await bot.stderr.read()).decode())
        worker_pid = int(line)
        assert not gone(worker_pid)
    finally:
        bot.kill()
        await bot.wait()
    await until(lambda: gone(worker_pid), 10)
