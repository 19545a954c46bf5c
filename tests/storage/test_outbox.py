"""The outbox on a real SQLite file: one owner a job, nothing lost, failures kept and retried later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.outbox.model import Failure, Job, JobState, RetryLater
from bot.outbox.runner import Outbox, retry_delay
from bot.outbox.store import OutboxStore
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
    await store.retry(held.id, NOW + timedelta(minutes=2), Failure("x"))
    assert await store.next_due() == NOW - timedelta(minutes=5)
    assert await store.next_due(after=NOW) == NOW + timedelta(minutes=2)
    assert await store.next_due(after=NOW + timedelta(minutes=5)) is None


async def test_jobs_held_by_a_stopped_owner_are_released_to_it_on_restart(tmp_path: Path) -> None:
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
