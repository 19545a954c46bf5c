"""The outbox on both backends: one owner a job, leases, shards, nothing lost, failures kept and retried later."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import to_text
from bot.outbox.model import Failure, Job, JobState, RetryLater
from bot.outbox.runner import Outbox, retry_delay
from bot.outbox.store import OutboxStore
from bot.shards import Shards
from bot.storage import Storage
from playground.clock import FakeClock

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def enqueue(storage: Storage, key: str, due: datetime = NOW, kind: str = "test", guild: int = 1) -> Job:
    async with storage.transaction() as tx:
        return await OutboxStore.enqueue(tx, kind, guild, key, {"n": key}, due_at=due, now=NOW)


async def test_the_same_work_enqueued_twice_is_one_job(storage: Storage) -> None:
    first = await enqueue(storage, "post:1")
    again = await enqueue(storage, "post:1")
    assert first.id == again.id
    assert len(await OutboxStore(storage).open_jobs(1, "test")) == 1


async def test_a_job_is_claimed_by_one_owner_only_and_only_when_due(storage: Storage) -> None:
    store = OutboxStore(storage)
    await enqueue(storage, "later", NOW + timedelta(hours=1))
    job = await enqueue(storage, "now")
    claimed = await store.claim_next("a", NOW, 1)
    assert claimed is not None and claimed.id == job.id and claimed.state is JobState.RUNNING
    assert claimed.attempts == 1
    assert await store.claim_next("b", NOW, 1) is None  # "later" is not due, "now" is held
    assert await store.next_due() == NOW + timedelta(hours=1)


async def test_a_claim_takes_one_servers_earliest_due_job(storage: Storage) -> None:
    store = OutboxStore(storage)
    second = await enqueue(storage, "a:second", NOW - timedelta(minutes=1), guild=1)
    first = await enqueue(storage, "a:first", NOW - timedelta(minutes=2), guild=1)
    same_time = await enqueue(storage, "a:same-time-later-id", NOW - timedelta(minutes=1), guild=1)
    other = await enqueue(storage, "b:oldest", NOW - timedelta(hours=1), guild=2)
    claimed = [await store.claim_next("main", NOW, 1) for _ in range(4)]
    assert [job.id if job else None for job in claimed] == [first.id, second.id, same_time.id, None]
    assert await store.claim_next("main", NOW, 3) is None  # a server without jobs
    mine = await store.claim_next("main", NOW, 2)
    assert mine is not None and mine.id == other.id


async def test_a_claim_takes_a_lapsed_job_and_a_due_one_in_due_order(storage: Storage) -> None:
    store = OutboxStore(storage)
    real = NOW + timedelta(days=3)
    lease = real + timedelta(seconds=60)
    early = await enqueue(storage, "early", NOW - timedelta(minutes=3))
    held = await enqueue(storage, "held", NOW - timedelta(minutes=2))
    late = await enqueue(storage, "late", NOW - timedelta(minutes=1))
    # Another owner holds the two earliest and dies; its leases run out.
    assert [job.id for job in [await store.claim_next("dead", NOW, 1, lease=lease, expired=real)
                               for _ in range(2)] if job] == [early.id, held.id]
    assert await store.complete(early.id, NOW, "dead")
    lapsed = lease + timedelta(seconds=1)
    taken = [await store.claim_next("b", NOW, 1, lease=lapsed + timedelta(seconds=60), expired=lapsed)
             for _ in range(3)]
    assert [job.id if job else None for job in taken] == [held.id, late.id, None]


async def test_a_claim_says_whether_its_server_has_another_job_due(storage: Storage) -> None:
    store = OutboxStore(storage)
    await enqueue(storage, "a:1", NOW - timedelta(minutes=2), guild=1)
    await enqueue(storage, "a:2", NOW - timedelta(minutes=1), guild=1)
    await enqueue(storage, "a:later", NOW + timedelta(minutes=1), guild=1)
    await enqueue(storage, "b:1", NOW, guild=2)
    claims = [await store.claim("main", NOW, 1) for _ in range(3)]
    assert [(c.job.dedupe_key, c.more_due) if c else None for c in claims] == [("a:1", True), ("a:2", False), None]
    claim = await store.claim("main", NOW, 2)
    assert claim is not None and (claim.job.dedupe_key, claim.more_due) == ("b:1", False)


async def test_the_servers_with_due_work_longest_waiting_first(storage: Storage) -> None:
    store = OutboxStore(storage)
    await enqueue(storage, "a:1", NOW - timedelta(minutes=1), guild=1)
    await enqueue(storage, "a:2", NOW - timedelta(minutes=1), guild=1)
    await enqueue(storage, "b:1", NOW - timedelta(minutes=5), guild=2)
    await enqueue(storage, "c:later", NOW + timedelta(minutes=5), guild=3)
    await enqueue(storage, "d:1", NOW - timedelta(minutes=1), guild=4)
    held = await enqueue(storage, "e:held", NOW - timedelta(hours=1), guild=5)
    assert await store.claim_next("main", NOW, 5) is not None
    assert await store.due_guilds(NOW) == [2, 1, 4]  # oldest due first, then by id; none held or not due
    assert await store.due_guilds(NOW + timedelta(minutes=5)) == [2, 1, 4, 3]
    assert await store.retry(held.id, NOW + timedelta(minutes=2), Failure("x"), "main")
    assert await store.next_due() == NOW - timedelta(minutes=5)
    assert await store.next_due(after=NOW) == NOW + timedelta(minutes=2)
    assert await store.next_due(after=NOW + timedelta(minutes=5)) is None


async def test_jobs_held_by_a_stopped_owner_are_released_on_restart(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "k.db")
    await enqueue(storage, "interrupted")
    assert await OutboxStore(storage).claim_next("main", NOW, 1) is not None
    await storage.close()  # the process dies with the job running

    storage = await Storage.open(tmp_path / "k.db")
    store = OutboxStore(storage)
    assert await store.release("other") == 0
    assert await store.release("main") == 1
    again = await store.claim_next("main", NOW, 1)
    assert again is not None and again.attempts == 2
    await storage.close()

    # The bot alone on its SQLite file starts under a new name (another process id): it takes back every job
    # left running, whoever held it.
    storage = await Storage.open(tmp_path / "k.db")
    outbox = Outbox(FakeClock(NOW), owner="restarted")
    await outbox.start(OutboxStore(storage))
    job = await outbox.store.get(again.id)
    assert job is not None and job.state is JobState.PENDING
    await storage.close()


async def test_a_lease_keeps_a_job_from_others_until_it_runs_out(storage: Storage) -> None:
    store = OutboxStore(storage)
    job = await enqueue(storage, "long")
    real = NOW + timedelta(days=3)   # leases go by real time, not the bot's clock
    lease = real + timedelta(seconds=60)
    assert await store.claim_next("a", NOW, 1, lease=lease, expired=real) is not None
    assert await store.due_guilds(NOW, expired=real) == []
    assert await store.claim_next("b", NOW, 1, lease=lease, expired=real) is None
    # Renewed while it runs: a minute later it is still "a"'s.
    assert await store.renew("a", [job.id], lease + timedelta(seconds=60)) == {job.id}
    later = lease + timedelta(seconds=1)
    assert await store.claim_next("b", NOW, 1, lease=later + timedelta(seconds=60), expired=later) is None
    # "a" dies and renews no more: once its lease has run out, the job is "b"'s.
    lapsed = lease + timedelta(seconds=61)
    assert await store.next_lapse("b") == lease + timedelta(seconds=60)
    assert await store.due_guilds(NOW, expired=lapsed) == [1]
    taken = await store.claim_next("b", NOW, 1, lease=lapsed + timedelta(seconds=60), expired=lapsed)
    assert taken is not None and taken.id == job.id and taken.attempts == 2
    # "a", back from a long stall, holds it no more: it can neither renew nor record it.
    assert await store.renew("a", [job.id], lapsed + timedelta(seconds=60)) == set()
    assert not await store.complete(job.id, NOW, "a")
    assert not await store.retry(job.id, NOW, Failure("x"), "a")
    assert await store.complete(job.id, NOW, "b")
    done = await store.get(job.id)
    assert done is not None and done.state is JobState.DONE


async def test_a_process_sees_and_claims_only_its_shards_servers(storage: Storage) -> None:
    store = OutboxStore(storage)
    guilds = [(n << 22) for n in range(6)]   # on shards 0, 1, 2, 0, 1, 2 of 3
    for guild in guilds:
        await enqueue(storage, f"g:{guild}", NOW - timedelta(minutes=guild >> 22), guild=guild)
    first = Shards(3, frozenset({0}))
    rest = Shards(3, frozenset({1, 2}))
    assert await store.due_guilds(NOW, shards=first) == [guilds[3], guilds[0]]
    assert await store.due_guilds(NOW, shards=rest) == [guilds[5], guilds[4], guilds[2], guilds[1]]
    assert await store.due_guilds(NOW) == guilds[::-1]
    assert await store.next_due(shards=first) == NOW - timedelta(minutes=3)


async def test_two_processes_running_every_shard_at_once_run_each_job_once(database: str | Path) -> None:
    """As two bot processes on one database would (each its own connections, no lock in common): a job is run
    by one of them only, and every job is run."""
    first, second = await Storage.open(database), await Storage.open(database)
    try:
        jobs = [await enqueue(first, f"j:{n}", guild=n % 12) for n in range(120)]
        runs: list[tuple[str, int]] = []

        def handler_of(name: str) -> Callable[[Job], Awaitable[None]]:
            async def handler(job: Job) -> None:
                runs.append((name, job.id))
                await asyncio.sleep(0.002)   # a Discord call, of a kind
            return handler

        outboxes = []
        for name, storage in (("a", first), ("b", second)):
            outbox = Outbox(FakeClock(NOW), owner=name, lanes=4)
            outbox.register("test", handler_of(name))
            await outbox.start(OutboxStore(storage))
            outboxes.append(outbox)
        ran = await asyncio.gather(*(outbox.run_due() for outbox in outboxes))
        assert sum(ran) == len(jobs)
        assert sorted(job_id for _, job_id in runs) == sorted(job.id for job in jobs)
        if first.shared:   # on PostgreSQL both took part; on SQLite one writer at a time may take them all
            assert {name for name, _ in runs} == {"a", "b"}
        for job in jobs:
            done = await outboxes[0].store.get(job.id)
            assert done is not None and done.state is JobState.DONE and done.attempts == 1
    finally:
        await first.close()
        await second.close()


async def test_a_running_jobs_lease_is_renewed_and_a_dead_owners_job_is_taken_again(storage: Storage) -> None:
    real = FakeClock(NOW)
    store = OutboxStore(storage)
    dead = await enqueue(storage, "held-by-the-dead")
    slow = await enqueue(storage, "slow", guild=2)
    ran: list[int] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)
        if job.id == slow.id:
            # Longer than a lease: the outbox renews it meanwhile, so nobody else takes it.
            for _ in range(6):
                await asyncio.sleep(0.1)
                real.advance(timedelta(seconds=0.1))
            row = await storage.fetch_one("SELECT lease_until FROM outbox WHERE id = ?", (job.id,))
            assert row is not None and row[0] > to_text(real.now())

    outbox = Outbox(FakeClock(NOW), owner="alive", lease_seconds=0.3, lease_clock=real)
    outbox.register("test", handler)
    await outbox.start(OutboxStore(storage))
    # Another process claims a job and dies (after this one started, so even alone on SQLite it is not
    # given back at start).
    assert await store.claim_next("dead", NOW, 1, lease=real.now() + timedelta(seconds=1),
                                  expired=real.now()) is not None
    assert await outbox.run_due() == 1   # the slow one; the dead owner's lease has not run out
    real.advance(timedelta(seconds=2))
    assert await outbox.run_due() == 1   # now it has
    assert ran == [slow.id, dead.id]
    again = await store.get(dead.id)
    assert again is not None and again.state is JobState.DONE and again.attempts == 2


async def test_the_runner_completes_retries_with_growing_delays_and_reports(storage: Storage) -> None:
    clock = FakeClock(NOW)
    outbox = Outbox(clock)
    await outbox.start(OutboxStore(storage))
    outcomes: list[Exception | None] = [RetryLater("channel_gone", channel="<#1>"), RuntimeError("bug"), None]
    reported: list[tuple[str, datetime]] = []

    async def handler(job: Job) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    async def on_failure(job: Job, failure: Failure, next_try: datetime) -> None:
        reported.append((failure.key, next_try))

    outbox.register("test", handler, on_failure=on_failure)
    job = await enqueue(storage, "post:1")
    assert await outbox.run_due() == 1
    failed = await outbox.store.get(job.id)
    assert failed is not None and failed.state is JobState.PENDING
    assert failed.last_error == Failure("channel_gone", {"channel": "<#1>"})
    assert failed.due_at == NOW + timedelta(minutes=1)
    assert await outbox.run_due() == 0  # not due again yet

    clock.advance(timedelta(minutes=1))
    assert await outbox.run_due() == 1
    clock.advance(timedelta(minutes=5))
    assert await outbox.run_due() == 1
    done = await outbox.store.get(job.id)
    assert done is not None and done.state is JobState.DONE and done.attempts == 3
    assert [key for key, _ in reported] == ["channel_gone", "outbox.unexpected"]
    assert reported[1][1] == NOW + timedelta(minutes=1) + timedelta(minutes=5)


async def test_a_job_without_a_handler_waits_instead_of_vanishing(storage: Storage) -> None:
    outbox = Outbox(FakeClock(NOW))
    await outbox.start(OutboxStore(storage))
    job = await enqueue(storage, "x", kind="unknown")
    await outbox.run_due()
    kept = await outbox.store.get(job.id)
    assert kept is not None and kept.state is JobState.PENDING


def test_retry_delays_grow_to_six_hours() -> None:
    assert [retry_delay(n) for n in (1, 2, 3)] == [timedelta(minutes=1), timedelta(minutes=5),
                                                  timedelta(minutes=25)]
    assert retry_delay(50) == timedelta(hours=6)


async def test_the_runner_stops_when_cancelled_as_it_is_woken(storage: Storage) -> None:
    """A bot closing cancels the runner; a kick that comes at the same moment (a job added) must not swallow
    the cancellation. (With asyncio.wait_for on Python 3.11 it did, and the runner polled on forever: the
    teardown hang tests/conftest.py's watchdog caught in test_departures.)"""
    outbox = Outbox(FakeClock(NOW), poll_seconds=30.0)
    await outbox.start(OutboxStore(storage))
    for _ in range(20):
        runner = asyncio.create_task(outbox.run_forever())
        await asyncio.sleep(0.05)   # asleep, waiting for work
        outbox.kick()
        runner.cancel()
        done, _ = await asyncio.wait({runner}, timeout=2.0)
        assert done == {runner} and runner.cancelled()
