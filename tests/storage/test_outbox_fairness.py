"""The outbox takes turns between servers: one server's long run of jobs holds back no other server's job for
more than a job or two; a server's own jobs keep their order and never overlap; a few servers run at once,
never more than the lanes allow; and what is added during a pass joins it. Real SQLite files, plain handlers."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.outbox.model import Failure, Job, JobState, NewJob, RetryLater
from bot.outbox.runner import Outbox
from bot.outbox.store import OutboxStore
from bot.storage import Storage
from playground.clock import FakeClock

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
A, B, C = 101, 202, 303
# Generous: the waits below end as soon as their condition holds; the bound is only there to fail, not hang.
PATIENCE = 10.0


async def enqueue(storage: Storage, guild: int, key: str, due: datetime = NOW, kind: str = "test") -> Job:
    async with storage.transaction() as tx:
        return await OutboxStore.enqueue(tx, kind, guild, key, {}, due_at=due, now=NOW)


async def until(condition: Callable[[], bool], seconds: float = PATIENCE) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.005)


class Recorder:
    """A plain handler that notes the order jobs start in and how many run at once, overall and per server.
    While ``gate`` is clear, the jobs whose key starts with ``hold`` (all, by default) wait at it once started."""

    def __init__(self, hold: str = "") -> None:
        self.hold = hold
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.running: dict[int, int] = defaultdict(int)
        self.most_at_once = 0
        self.most_at_once_in_a_server = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, job: Job) -> None:
        self.started.append(job.dedupe_key)
        self.running[job.guild_id] += 1
        self.most_at_once = max(self.most_at_once, sum(self.running.values()))
        self.most_at_once_in_a_server = max(self.most_at_once_in_a_server, self.running[job.guild_id])
        try:
            await asyncio.sleep(0)  # let the others in, if the outbox would
            if job.dedupe_key.startswith(self.hold):
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(job.dedupe_key)
            raise
        finally:
            self.running[job.guild_id] -= 1
        self.finished.append(job.dedupe_key)

    def of(self, guild: str) -> list[str]:
        return [key for key in self.started if key.startswith(guild)]


async def started_outbox(storage: Storage, recorder: Recorder, *, lanes: int = 4,
                         poll_seconds: float = 30.0) -> Outbox:
    outbox = Outbox(FakeClock(NOW), lanes=lanes, poll_seconds=poll_seconds)
    await outbox.start(OutboxStore(storage))
    outbox.register("test", recorder)
    return outbox


async def test_a_small_server_waits_one_job_of_a_big_one_not_all_of_them(storage: Storage) -> None:
    for n in range(50):  # a round's threads, due before the welcome
        await enqueue(storage, A, f"a:{n:02}", NOW - timedelta(hours=1))
    await enqueue(storage, B, "b:welcome")
    recorder = Recorder()
    outbox = await started_outbox(storage, recorder, lanes=1)
    assert await outbox.run_due() == 51
    assert recorder.started.index("b:welcome") == 1  # right after the job A had already begun
    assert recorder.of("a:") == [f"a:{n:02}" for n in range(50)]
    assert recorder.most_at_once == 1


async def test_with_several_lanes_the_small_server_starts_at_once(storage: Storage) -> None:
    for n in range(50):
        await enqueue(storage, A, f"a:{n:02}", NOW - timedelta(hours=1))
    await enqueue(storage, B, "b:welcome")
    recorder = Recorder()
    outbox = await started_outbox(storage, recorder)  # the default lanes
    assert await outbox.run_due() == 51
    assert recorder.started.index("b:welcome") <= 1


async def test_servers_take_turns_one_job_each(storage: Storage) -> None:
    for n in range(5):
        await enqueue(storage, A, f"a:{n}", NOW - timedelta(minutes=30 - n))
        await enqueue(storage, B, f"b:{n}", NOW - timedelta(minutes=20 - n))
    for n in range(2):
        await enqueue(storage, C, f"c:{n}", NOW - timedelta(minutes=10 - n))
    recorder = Recorder()
    outbox = await started_outbox(storage, recorder, lanes=1)
    assert await outbox.run_due() == 12
    assert recorder.started == ["a:0", "b:0", "c:0", "a:1", "b:1", "c:1", "a:2", "b:2", "a:3", "b:3", "a:4", "b:4"]


async def test_a_servers_jobs_run_in_due_order_and_never_two_at_once(storage: Storage) -> None:
    shuffle = random.Random(13)
    expected: dict[int, list[tuple[datetime, int, str]]] = defaultdict(list)
    jobs = [(guild, n) for guild in (A, B, C) for n in range(8)]
    shuffle.shuffle(jobs)
    for guild, n in jobs:
        due = NOW - timedelta(minutes=shuffle.choice([1, 2, 3]))  # ties too: then the id decides
        job = await enqueue(storage, guild, f"{guild}:{n}", due)
        expected[guild].append((job.due_at, job.id, job.dedupe_key))
    recorder = Recorder()
    outbox = await started_outbox(storage, recorder, lanes=4)
    assert await outbox.run_due() == 24
    for guild in (A, B, C):
        assert recorder.of(f"{guild}:") == [key for _, _, key in sorted(expected[guild])]
    assert recorder.most_at_once_in_a_server == 1


async def test_a_servers_next_job_waits_for_its_running_one_while_the_others_go_round(storage: Storage) -> None:
    for n in range(3):
        await enqueue(storage, A, f"a:{n}", NOW - timedelta(minutes=10))
    for n in range(6):
        await enqueue(storage, B, f"b:{n}")
    recorder = Recorder(hold="a:")
    recorder.gate.clear()
    outbox = await started_outbox(storage, recorder, lanes=4)  # lanes to spare
    pass_ = asyncio.create_task(outbox.run_due())
    await until(lambda: len(recorder.finished) == 6)  # B's turns came round six times
    assert recorder.of("a:") == ["a:0"]
    recorder.gate.set()
    assert await asyncio.wait_for(pass_, PATIENCE) == 9
    assert recorder.of("a:") == ["a:0", "a:1", "a:2"] and recorder.most_at_once_in_a_server == 1


async def test_no_more_servers_run_at_once_than_there_are_lanes(storage: Storage) -> None:
    for guild in range(1, 11):
        for n in range(3):
            await enqueue(storage, guild, f"{guild}:{n}")
    recorder = Recorder()
    recorder.gate.clear()
    outbox = await started_outbox(storage, recorder, lanes=3)
    pass_ = asyncio.create_task(outbox.run_due())
    await until(lambda: len(recorder.started) == 3)
    await asyncio.sleep(0.1)  # time for a fourth to start, if the outbox would start one
    assert len(recorder.started) == 3 and sorted(recorder.started) == ["1:0", "2:0", "3:0"]
    recorder.gate.set()
    assert await asyncio.wait_for(pass_, PATIENCE) == 30
    assert recorder.most_at_once == 3 and recorder.most_at_once_in_a_server == 1
    assert len(set(recorder.finished)) == 30


def test_an_outbox_needs_a_lane() -> None:
    with pytest.raises(ValueError, match="at least one lane"):
        Outbox(FakeClock(NOW), lanes=0)


async def test_failures_are_retried_later_and_reported_without_holding_anyone_back(storage: Storage) -> None:
    clock = FakeClock(NOW)
    outbox = Outbox(clock, lanes=2)
    await outbox.start(OutboxStore(storage))
    reported: list[tuple[str, str, datetime]] = []
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.dedupe_key)
        if job.dedupe_key == "a:fails" and job.attempts == 1:
            raise RetryLater("channel_gone", channel="<#1>")
        if job.dedupe_key == "b:bug" and job.attempts == 1:
            raise RuntimeError("a bug")

    async def on_failure(job: Job, failure: Failure, next_try: datetime) -> None:
        reported.append((job.dedupe_key, failure.key, next_try))

    outbox.register("test", handler, on_failure=on_failure)
    fails = await enqueue(storage, A, "a:fails", NOW - timedelta(minutes=2))
    await enqueue(storage, A, "a:next", NOW - timedelta(minutes=1))
    bug = await enqueue(storage, B, "b:bug", NOW - timedelta(minutes=2))
    await enqueue(storage, B, "b:next", NOW - timedelta(minutes=1))
    assert await outbox.run_due() == 4
    assert sorted(reported) == [("a:fails", "channel_gone", NOW + timedelta(minutes=1)),
                                ("b:bug", "outbox.unexpected", NOW + timedelta(minutes=1))]
    failures = {fails.id: Failure("channel_gone", {"channel": "<#1>"}), bug.id: Failure("outbox.unexpected")}
    for job_id, error in failures.items():
        kept = await outbox.store.get(job_id)
        assert kept is not None and kept.state is JobState.PENDING and kept.attempts == 1
        assert kept.last_error == error and kept.due_at == NOW + timedelta(minutes=1)
    assert len(await outbox.store.open_jobs(A, "test")) == 1  # "a:next" ran after "a:fails" failed
    assert await outbox.run_due() == 0  # not due again yet

    clock.advance(timedelta(minutes=1))
    assert await outbox.run_due() == 2
    assert await outbox.store.open_jobs(A, "test") == [] and await outbox.store.open_jobs(B, "test") == []
    assert len(reported) == 2


async def test_work_a_handler_adds_for_its_server_runs_in_the_same_pass(storage: Storage) -> None:
    outbox = Outbox(FakeClock(NOW))
    await outbox.start(OutboxStore(storage))
    ran: list[str] = []

    async def chain(job: Job) -> None:
        ran.append(job.dedupe_key)
        step = int(job.dedupe_key.split(":")[1])
        if step < 5:
            await enqueue(storage, job.guild_id, f"step:{step + 1}", NOW, kind="chain")

    outbox.register("chain", chain)
    await enqueue(storage, A, "step:1", kind="chain")
    assert await outbox.run_due() == 5
    assert ran == [f"step:{n}" for n in range(1, 6)]


async def test_a_kicked_job_of_another_server_runs_while_a_long_job_goes_on(storage: Storage) -> None:
    recorder = Recorder()
    recorder.gate.clear()
    outbox = await started_outbox(storage, recorder, lanes=2, poll_seconds=600)
    await enqueue(storage, A, "a:round")
    pass_ = asyncio.create_task(outbox.run_due())
    await until(lambda: recorder.started == ["a:round"])

    async def welcome(job: Job) -> None:
        recorder.finished.append(job.dedupe_key)

    outbox.register("welcome", welcome)
    await enqueue(storage, B, "b:welcome", kind="welcome")
    outbox.kick()
    await until(lambda: "b:welcome" in recorder.finished)  # long before the 600 s poll
    assert recorder.running[A] == 1  # the round's job is still going
    recorder.gate.set()
    assert await asyncio.wait_for(pass_, PATIENCE) == 2


async def test_a_long_pass_runs_the_tickers_again_for_the_other_servers(storage: Storage) -> None:
    recorder = Recorder()
    recorder.gate.clear()
    outbox = await started_outbox(storage, recorder, lanes=2, poll_seconds=0.05)
    ticks: list[datetime] = []

    async def ticker(now: datetime) -> None:
        ticks.append(now)
        if len(ticks) == 2:  # a reminder comes due in another server while the round goes on
            await enqueue(storage, B, "b:reminder", now)

    outbox.add_ticker(ticker)
    await enqueue(storage, A, "a:round")
    pass_ = asyncio.create_task(outbox.run_due())
    await until(lambda: "b:reminder" in recorder.started)
    assert recorder.running[A] == 1 and len(ticks) >= 2
    recorder.gate.set()
    assert await asyncio.wait_for(pass_, PATIENCE) == 2


async def test_a_kick_during_a_long_pass_runs_the_tickers_again_at_once(storage: Storage) -> None:
    """A kick says time moved or work was added: a slot that came meanwhile is not left for the next poll."""
    recorder = Recorder()
    recorder.gate.clear()
    outbox = await started_outbox(storage, recorder, lanes=2, poll_seconds=600)
    ticks: list[datetime] = []

    async def ticker(now: datetime) -> None:
        ticks.append(now)

    outbox.add_ticker(ticker)
    await enqueue(storage, A, "a:round")
    pass_ = asyncio.create_task(outbox.run_due())
    await until(lambda: recorder.running[A] == 1)
    assert len(ticks) == 1
    outbox.kick()
    await until(lambda: len(ticks) == 2)
    recorder.gate.set()
    assert await asyncio.wait_for(pass_, PATIENCE) == 1


async def test_two_passes_at_once_still_run_a_server_one_job_at_a_time(storage: Storage) -> None:
    for guild in (A, B):
        for n in range(10):
            await enqueue(storage, guild, f"{guild}:{n:02}")
    recorder = Recorder()
    outbox = await started_outbox(storage, recorder)
    assert sum(await asyncio.gather(outbox.run_due(), outbox.run_due())) == 20
    assert recorder.most_at_once_in_a_server == 1
    assert recorder.of(f"{A}:") == [f"{A}:{n:02}" for n in range(10)]


async def test_closing_stops_the_jobs_quietly_and_the_next_start_takes_them_back(
        storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.outbox")
    recorder = Recorder()
    recorder.gate.clear()
    outbox = await started_outbox(storage, recorder, lanes=2)
    first = await enqueue(storage, A, "a:1")
    await enqueue(storage, A, "a:2")
    other = await enqueue(storage, B, "b:1")
    loop = asyncio.create_task(outbox.run_forever())
    await until(lambda: len(recorder.started) == 2)
    loop.cancel()  # as the bot's close() does
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(loop, PATIENCE)  # the jobs stop too: nothing to wait for
    assert sorted(recorder.cancelled) == ["a:1", "b:1"]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    for job_id in (first.id, other.id):
        held = await outbox.store.get(job_id)
        assert held is not None and held.state is JobState.RUNNING

    again = Recorder()
    restarted = await started_outbox(storage, again)
    assert "Resuming 2 job(s)" in caplog.text
    assert await restarted.run_due() == 3
    assert sorted(again.finished) == ["a:1", "a:2", "b:1"]


class CountingStore(OutboxStore):
    """The outbox's store, counting how often the line of servers is read."""

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        self.line_reads = 0

    async def due_guilds(self, now: datetime, **kwargs: Any) -> list[int]:
        self.line_reads += 1
        return await super().due_guilds(now, **kwargs)


async def test_a_server_alone_with_its_round_is_not_looked_for_again_after_every_job(storage: Storage) -> None:
    """Reading the line of servers is a GROUP BY over every due job: after each of a round's 46,000 jobs, it
    cost more than the job. The server whose turn ended comes round again by its claim; the line is read when a
    job of another server comes due meanwhile, and once at the end."""
    clock = FakeClock(NOW)
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.dedupe_key)
        if job.dedupe_key == "a:100":
            clock.advance(timedelta(minutes=1))   # b's job comes due, unannounced

    async with storage.transaction() as tx:
        await OutboxStore.enqueue_many(tx, (NewJob("test", A, f"a:{n:03}", {}, NOW) for n in range(300)), now=NOW)
    await enqueue(storage, B, "b:later", NOW + timedelta(minutes=1))
    store = CountingStore(storage)
    outbox = Outbox(clock, lanes=1)
    outbox.register("test", handler)
    await outbox.start(store)
    assert await outbox.run_due() == 301
    assert ran.index("b:later") in (101, 102)   # a job or two after it came due, not after the round
    assert [key for key in ran if key.startswith("a:")] == [f"a:{n:03}" for n in range(300)]
    assert store.line_reads <= 4
