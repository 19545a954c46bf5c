"""The one loop that does due work.

Features register a handler per job kind, and tickers that turn rules into
jobs (a weekly schedule becomes a post when its slot comes). Each pass runs
the tickers, then the due jobs server by server in turn: every server with due
work waits in one line, and a server whose job has finished goes to the back
of it, so a round of 5,000 groups in one server delays another server's
welcome by a job or two, not by the whole round. Within a server, jobs run in
order of due time (then id), one at a time, which keeps the order of a
server's work. A few servers' jobs run at once (``lanes``): Discord keeps its
rate limits per channel and per server, so different servers' calls rarely
wait for each other. A pass ends when nothing is due and nothing runs; work
added meanwhile (a handler's next job, a ``kick()``) joins the pass, and the
tickers run again if the pass is long.

A handler that raises :class:`RetryLater` (or fails unexpectedly) leaves its
job pending with a growing delay; nothing is dropped.

Several processes may share one database (PostgreSQL, one process per range
of shards): each claims only the jobs of its own servers (``shards``), under
its own name (host and process id), with a lease it renews every third of
``lease_seconds`` while the job runs. A process that dies stops renewing; once
the lease has run out, the process that owns the server (the same one started
again, or another given its shards) claims the job again, and the handler
finds on Discord what the first attempt already did, as after any crash. A
process alone on its database (SQLite) need not wait: it takes back at start
whatever was left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock, SystemClock
from bot.outbox.model import Failure, Job, RetryLater
from bot.outbox.store import OutboxStore
from bot.shards import EVERY, Shards

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[None]]
FailureHook = Callable[[Job, Failure, datetime], Awaitable[None]]
Ticker = Callable[[datetime], Awaitable[None]]

FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=6)
UNEXPECTED = "outbox.unexpected"
LEASE_SECONDS = 60.0


def process_name() -> str:
    """This process among every process that may share the database: its host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
    def __init__(self, clock: Clock, *, owner: str | None = None, poll_seconds: float = 30.0, lanes: int = 4,
                 shards: Shards = EVERY, lease_seconds: float = LEASE_SECONDS, lease_clock: Clock | None = None
                 ) -> None:
        """``lanes``: how many jobs (of as many servers) may run at once; ``shards``: whose servers' jobs
        this process runs; ``lease_clock``: real time, for leases (``clock`` says when jobs are due)."""
        if lanes < 1:
            raise ValueError(f"the outbox needs at least one lane, not {lanes}")
        if lease_seconds <= 0:
            raise ValueError(f"a lease must last some time, not {lease_seconds} s")
        self._store: OutboxStore | None = None
        self._clock = clock
        self._owner = owner or process_name()
        self._shards = shards
        self._lease = timedelta(seconds=lease_seconds)
        self._lease_clock = lease_clock or SystemClock()
        self._held: dict[int, asyncio.Task[None]] = {}   # this owner's running jobs, by id
        self._poll_seconds = poll_seconds
        self._lanes = lanes
        self._kinds: dict[str, _Kind] = {}
        self._tickers: list[Ticker] = []
        self._wake = asyncio.Event()
        self._kicked = False   # kick() since the tickers last ran: time may have moved, so they run again
        self._finished = asyncio.Condition()
        # One pass at a time: a second caller of run_due() waits for the pass under way, then makes its own.
        self._pass = asyncio.Lock()

    def register(self, kind: str, handler: Handler, *, on_failure: FailureHook | None = None) -> None:
        """``on_failure(job, failure, next_try)`` is told of every failed attempt, to report it."""
        self._kinds[kind] = _Kind(handler, on_failure)

    def add_ticker(self, ticker: Ticker) -> None:
        self._tickers.append(ticker)

    def kick(self) -> None:
        """Look for due work now instead of at the next poll (new work was added, or time moved); a pass
        under way takes it in at once, its tickers included."""
        self._kicked = True
        self._wake.set()

    @property
    def store(self) -> OutboxStore:
        if self._store is None:
            raise RuntimeError("the outbox has no database before start()")
        return self._store

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def shards(self) -> Shards:
        return self._shards

    async def start(self, store: OutboxStore) -> None:
        """Use ``store``. Alone on the database, take back the jobs left running when the bot last stopped
        (a crash mid-job, or a shutdown that cancelled them): they run again, and their handlers reconcile
        with what Discord already has. Sharing it, take back only this owner's; another process's are
        taken once their lease runs out."""
        self._store = store
        released = await (self.store.release(self._owner) if store.shared else self.store.release_all())
        if released:
            log.info("Resuming %d job(s) interrupted by the last shutdown", released)

    async def run_forever(self) -> None:
        """Passes until cancelled. Cancelling stops the jobs running too; they stay held by this owner
        until the next :meth:`start` gives them back."""
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
        next_due = await self.store.next_due(shards=self._shards)
        if next_due is not None:
            delay = max(0.0, min(delay, (next_due - self._clock.now()).total_seconds()))
        if self.store.shared:
            lapse = await self.store.next_lapse(self._owner, shards=self._shards)
            if lapse is not None:
                delay = max(0.0, min(delay, (lapse - self._lease_clock.now()).total_seconds() + 0.05))
        # asyncio.timeout, not wait_for: on Python 3.11, wait_for swallows a cancellation that comes as the
        # event is set, and this loop would then never end (a bot closing waited for it forever).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    async def run_due(self) -> int:
        """One pass: the tickers, then the due jobs, server by server in turn, until none is due and none is
        running; jobs added during the pass and due by then are run in it too. The number of jobs run."""
        async with self._pass:
            return await self._take_turns()

    async def _take_turns(self) -> int:
        loop = asyncio.get_running_loop()
        running: dict[int, asyncio.Task[None]] = {}  # a server → its one job running
        waiting: dict[int, None] = {}  # servers with due work, in turn (a dict as an ordered set)
        ran = 0
        ticked = -math.inf
        # The line is read from the database again only when it may have changed beyond what this pass
        # knows: at the start, when it has run dry, after the tickers, a kick or the time a job comes due.
        # (Read again after every job, it cost a pass over 10,000 servers' jobs 20 of its 30 seconds.) A server
        # whose claim saw another of its jobs due goes to the back of the line when its job ends, without
        # reading it: a server alone with a round's jobs ran it dry after every job, and reading it (a GROUP BY
        # over every due job) cost 15 ms a job with 46,000 waiting.
        stale = True
        more_due: set[int] = set()   # servers running a job whose claim saw another due
        coming: datetime | None = None   # when the next job this pass knows of comes due
        keeper = asyncio.create_task(self._keep_leases(), name="outbox leases")
        try:
            while True:
                self._wake.clear()
                if self._kicked or loop.time() - ticked >= self._poll_seconds:
                    self._kicked = False
                    # At the start, and again while a long pass goes on: what the tickers create (another
                    # server's reminder or weekly post) must not wait for the end of someone's round.
                    await self._tick()
                    ticked = loop.time()
                    stale = True
                now = self._clock.now()
                if coming is not None and now >= coming:
                    stale = True   # a job came due while others kept finishing (another server's, perhaps)
                for guild_id in [guild_id for guild_id, task in running.items() if task.done()]:
                    # Its turn is over: its next job, if one is due, comes after the servers already waiting
                    # (at once if its claim saw one, else when the line is read again).
                    del running[guild_id]
                    if guild_id in more_due:
                        more_due.discard(guild_id)
                        waiting.setdefault(guild_id, None)
                if stale or not waiting:
                    stale = False
                    for guild_id in await self.store.due_guilds(now, shards=self._shards,
                                                                expired=self._lease_clock.now()):
                        if guild_id not in running:
                            waiting.setdefault(guild_id, None)
                while waiting and len(running) < self._lanes:
                    guild_id = next(iter(waiting))
                    del waiting[guild_id]
                    real = self._lease_clock.now()
                    claim = await self.store.claim(self._owner, self._clock.now(), guild_id,
                                                   lease=real + self._lease, expired=real)
                    if claim is not None:
                        job = claim.job
                        task = asyncio.create_task(self._lane(job), name=f"outbox job {job.id}")
                        running[guild_id] = self._held[job.id] = task
                        task.add_done_callback(functools.partial(self._let_go, job.id))
                        if claim.more_due:
                            more_due.add(guild_id)
                        ran += 1
                if not running:
                    return ran
                timeout = ticked + self._poll_seconds - loop.time()
                coming = await self.store.next_due(after=now, shards=self._shards)
                if coming is not None:
                    timeout = min(timeout, (coming - now).total_seconds())
                stale = not await self._wait_for_change(running.values(), max(0.0, timeout))
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Cancelled (the bot is closing): the jobs stop too, and start() gives them back next time.
                for task in running.values():
                    task.cancel()
            # Otherwise the jobs under way finish, and record how they went, before the pass gives up.
            await asyncio.gather(*running.values(), return_exceptions=True)
            raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    def _let_go(self, job_id: int, _: asyncio.Task[None]) -> None:
        self._held.pop(job_id, None)

    async def _keep_leases(self) -> None:
        """Every third of a lease, renew this owner's running jobs' leases. A job no longer held (this
        process stalled longer than a lease, and another took the job) is stopped here: it runs elsewhere."""
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            held = dict(self._held)
            if not held:
                continue
            try:
                kept = await self.store.renew(self._owner, held, self._lease_clock.now() + self._lease)
            except Exception:
                log.exception("Could not renew the leases of %d job(s); trying again", len(held))
                continue
            # A job that finished meanwhile is no longer running, so it was not renewed: not a loss.
            for job_id in [job_id for job_id in held.keys() - kept if job_id in self._held]:
                log.warning("Job %s was taken by another process after its lease ran out; stopping it here", job_id)
                held[job_id].cancel()

    async def _wait_for_change(self, running: Iterable[asyncio.Task[None]], seconds: float) -> bool:
        """Until a job finishes, new work is announced (:meth:`kick`), or ``seconds`` have passed; True when
        it was only that a job finished (the line of servers is as this pass knows it)."""
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            done, _ = await asyncio.wait([woken, *running], timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
        return bool(done) and woken not in done

    async def _tick(self) -> None:
        for ticker in self._tickers:
            try:
                await ticker(self._clock.now())
            except Exception:
                log.exception("Ticker %s failed", getattr(ticker, "__qualname__", ticker))

    async def _lane(self, job: Job) -> None:
        try:
            await self._run(job)
        except Exception:
            # Only the database can fail here (the handler's errors are caught in _run): the job stays held
            # by this owner until the next start gives it back, and the other servers' jobs go on.
            log.exception("Could not record how job %s (%s, guild %s) went", job.id, job.kind, job.guild_id)

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
        self._held.pop(job.id, None)   # its attempt is over: nothing more to renew, whatever is recorded
        if failure is None:
            recorded = await self.store.complete(job.id, now, self._owner)
        else:
            next_try = now + retry_delay(job.attempts)
            recorded = await self.store.retry(job.id, next_try, failure, self._owner)
        if not recorded:
            log.warning("Job %s (%s, guild %s) was taken by another process after its lease ran out; how it went "
                        "here is not recorded", job.id, job.kind, job.guild_id)
        elif failure is not None and kind is not None and kind.on_failure is not None:
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
                    async with asyncio.timeout(min(remaining, 0.5)):   # not wait_for: see _sleep
                        await self._finished.wait()
