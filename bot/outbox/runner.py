"""The one loop that does due work.

Features register a handler per job kind, and tickers that turn rules into
jobs (a weekly schedule becomes a post when its slot comes). Each pass runs
the tickers, then every due job, one at a time: Discord's rate limits make
parallel sends pointless, and one at a time keeps the order of a server's
work. A handler that raises :class:`RetryLater` (or fails unexpectedly)
leaves its job pending with a growing delay; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.outbox.model import Failure, Job, RetryLater
from bot.outbox.store import OutboxStore

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[None]]
FailureHook = Callable[[Job, Failure, datetime], Awaitable[None]]
Ticker = Callable[[datetime], Awaitable[None]]

FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=6)
UNEXPECTED = "outbox.unexpected"


def retry_delay(attempts: int) -> timedelta:
    """1 minute after the first failure, then five times longer each time, at most 6 hours."""
    delay = FIRST_RETRY
    for _ in range(attempts - 1):
        delay *= 5
        if delay >= MAX_RETRY:
            return MAX_RETRY
    return delay


@dataclass(frozen=True)
class _Kind:
    handler: Handler
    on_failure: FailureHook | None


class Outbox:
    def __init__(self, clock: Clock, *, owner: str = "main", poll_seconds: float = 30.0) -> None:
        self._store: OutboxStore | None = None
        self._clock = clock
        self._owner = owner
        self._poll_seconds = poll_seconds
        self._kinds: dict[str, _Kind] = {}
        self._tickers: list[Ticker] = []
        self._wake = asyncio.Event()
        self._finished = asyncio.Condition()

    def register(self, kind: str, handler: Handler, *, on_failure: FailureHook | None = None) -> None:
        """``on_failure(job, failure, next_try)`` is told of every failed attempt, to report it."""
        self._kinds[kind] = _Kind(handler, on_failure)

    def add_ticker(self, ticker: Ticker) -> None:
        self._tickers.append(ticker)

    def kick(self) -> None:
        """Look for due work now instead of at the next poll (new work was added, or time moved)."""
        self._wake.set()

    @property
    def store(self) -> OutboxStore:
        if self._store is None:
            raise RuntimeError("the outbox has no database before start()")
        return self._store

    async def start(self, store: OutboxStore) -> None:
        """Use ``store``, and take back the jobs this owner held when it last stopped (a crash mid-job): they
        run again, and their handlers reconcile with what Discord already has."""
        self._store = store
        released = await self.store.release(self._owner)
        if released:
            log.info("Resuming %d job(s) interrupted by the last shutdown", released)

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_due()
                await self._sleep()
            except Exception:
                # The database may be busy for a moment; the next pass tries again.
                log.exception("The outbox pass failed")
                await asyncio.sleep(self._poll_seconds)

    async def _sleep(self) -> None:
        delay = self._poll_seconds
        next_due = await self.store.next_due()
        if next_due is not None:
            delay = max(0.0, min(delay, (next_due - self._clock.now()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    async def run_due(self) -> int:
        """One pass: the tickers, then every job that is due. The number of jobs run."""
        for ticker in self._tickers:
            try:
                await ticker(self._clock.now())
            except Exception:
                log.exception("Ticker %s failed", getattr(ticker, "__qualname__", ticker))
        ran = 0
        while (job := await self.store.claim_next(self._owner, self._clock.now())) is not None:
            await self._run(job)
            ran += 1
        return ran

    async def _run(self, job: Job) -> None:
        kind = self._kinds.get(job.kind)
        failure: Failure | None = None
        if kind is None:
            log.error("No handler for job %s of kind %r; it waits until one is registered", job.id, job.kind)
            failure = Failure(UNEXPECTED)
        else:
            try:
                await kind.handler(job)
            except RetryLater as exc:
                failure = exc.failure
                log.warning("Job %s (%s, guild %s) failed with %s; retrying later", job.id, job.kind,
                            job.guild_id, failure.key)
            except Exception:
                log.exception("Job %s (%s, guild %s) failed unexpectedly; retrying later", job.id, job.kind,
                              job.guild_id)
                failure = Failure(UNEXPECTED)
        now = self._clock.now()
        if failure is None:
            await self.store.complete(job.id, now)
        else:
            next_try = now + retry_delay(job.attempts)
            await self.store.retry(job.id, next_try, failure)
            if kind is not None and kind.on_failure is not None:
                try:
                    await kind.on_failure(job, failure, next_try)
                except Exception:
                    log.exception("Could not report the failure of job %s", job.id)
        async with self._finished:
            self._finished.notify_all()

    async def wait_for(self, job_id: int, seconds: float) -> Job | None:
        """Wait until the job has had an attempt (done, or failed and waiting for a retry), at most
        ``seconds``; the job as it then stands."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            job = await self.store.get(job_id)
            if job is None or job.state == "done" or (job.state == "pending" and job.attempts > 0):
                return job
            remaining = deadline - loop.time()
            if remaining <= 0:
                return job
            async with self._finished:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._finished.wait(), min(remaining, 0.5))
