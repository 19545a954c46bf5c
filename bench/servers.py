"""Issue 16's benchmark: 10,000 servers of 50 members each, on SQLite and on PostgreSQL.

    python bench/servers.py [--servers 10000] [--members 50] [--backends sqlite,postgresql] [--bot-servers N]
                            [--no-bot] [--no-claims] [--claim-jobs N] [--quick]

One synthetic community of ``--servers`` servers (``--quick``: 500), seeded straight into a database of each
backend with the stores' own statements: each server has its settings (a time zone, four channels), a weekly
prompt schedule, weekly match rounds and reminders switched on (so the three tickers have every server to look
at), and ``--members`` members, nine in ten with a profile who joined rounds, the others joined a day ago and not
yet introduced (their reminder is due after three days). Every schedule's latest slot is already made, so nothing
is due unless the bench adds it. Server n is on shard n % 4. The PostgreSQL server is the bench's own, started as
the tests start theirs (tests/postgres.py: a temporary folder, a loopback port, ``fsync`` off). Measured:

1. on each backend, the outbox's pass (``Outbox.run_due`` with the three tickers of cogs/prompts.py,
   cogs/welcomes.py and cogs/rounds.py registered as they register them): with nothing due (the cost of looking
   at every server; target under 1 s), and with one due job a server (a handler that does nothing); against the
   same pass over one server;
2. on each backend, what a bot-like process holds a server: the settings cache (``GuildConfig``) once every
   server's settings were read, and a suggestion index (``MatchService``), by RSS in a fresh process;
3. on each backend, the real bot (``KakehashiBot``, unmodified, in a process of its own: bench/servers_bot.py)
   against the fake Discord holding every server: the time from starting the process to READY and to the end of
   the outbox's first pass, and the process's RSS then, against the same bot with one server;
4. on PostgreSQL, jobs claimed and completed per second by one process and by four (each ``Shards(4, {i})``),
   with a handler that does nothing and with one that waits 20 ms as a call to Discord does (target: four
   processes at least 3x one); every job run exactly once is checked.

About 5 minutes on two cores (``--quick``: under a minute). See bench/README.md for what each figure means and the
last figures measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import math
import multiprocessing
import os
import pwd
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers_bot import rss
from bot.clock import to_text
from bot.guilds.model import Purpose
from bot.guilds.service import GuildConfig
from bot.guilds.store import ENSURE_SETTINGS, UPDATE_TIMEZONE, UPSERT_CHANNEL, GuildSettingsStore
from bot.intros import companies
from bot.intros.service import IntroService
from bot.intros.store import ENSURE_MEMBER, MARK_INTRODUCED, MEMBER_JOINED, UPSERT_PROFILE, IntroStore
from bot.intros.store import UPSERT_SETTINGS as UPSERT_INTRO_SETTINGS
from bot.matching.service import MatchService, plan_in_thread
from bot.matching.store import UPSERT_MEMBER, MatchStore
from bot.matching.store import UPSERT_SETTINGS as UPSERT_ROUND_SETTINGS
from bot.outbox.model import Job, NewJob
from bot.outbox.runner import Outbox
from bot.outbox.store import OutboxStore
from bot.prompts.essays import load_essays
from bot.prompts.schedule import latest_slot
from bot.prompts.service import PromptService
from bot.prompts.store import ENSURE_SCHEDULE, UPDATE_SCHEDULE, PromptStore
from bot.shards import Shards
from bot.storage import Storage
from playground.clock import FakeClock
from tests.postgres import PostgresServer, find_binaries, serving
from tests.seeding import CITIES, INDUSTRIES, LANGUAGES, ROLES

PASS_TARGET = 1.0        # seconds: the outbox's pass over every server with nothing due (issue 16)
SCALE_TARGET = 3.0       # jobs/s of four processes over one (issue 16)
QUICK_SERVERS = 500
INTRODUCED = 0.9         # of a server's members: with a profile, joined rounds; the others joined a day ago
NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)   # the bench's clock (a Wednesday)
ZONES = ("UTC", "Asia/Tokyo", "Europe/London", "America/New_York", "Australia/Sydney", "Asia/Singapore")
PURPOSES = (Purpose.PROMPTS, Purpose.INTRODUCTIONS, Purpose.WELCOME, Purpose.MATCHES)
BENCH_JOB = "bench.noop"
SHARDS = 4               # processes (each one shard of four) in the claim runs
MAX_GUILDS_PER_SHARD = 2500   # Discord's (and the fake's): the bot runs at least servers / 2,500 shards
DISCORD_CALL = 0.02      # seconds a handler waits in the "simulated Discord call" runs
LANES = 4                # jobs of as many servers an outbox runs at once (Outbox's default, the bot's)
WARM_PASSES = 3
INDEX_SAMPLE = 300       # servers whose suggestion index the memory figure builds
BATCH = 5000             # rows a statement when seeding
BOT_TIMEOUT = 600.0      # seconds the bot process may take to finish its first pass
BOT_PROCESS = Path(__file__).resolve().parent / "servers_bot.py"
# Ids shaped like Discord's: milliseconds since Discord's epoch << 22. A server's ms counts up from a multiple of
# SHARDS, so server n is on shard n % SHARDS (as Discord spreads servers: evenly).
GUILD_MS = 300_000_000_000
USER_MS = 310_000_000_000
CHANNEL_MS = 320_000_000_000

# The bench's own checks, on the outbox table (the bot's SQL stays in its stores).
COUNT_JOBS = "SELECT COUNT(*) FROM outbox"
COUNT_RUNS = """
SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN attempts = 1 THEN 1 ELSE 0 END), 0), COUNT(DISTINCT guild_id)
FROM outbox WHERE kind = ?
"""
DELETE_BENCH_JOBS = "DELETE FROM outbox WHERE kind = ?"

def guild_id(n: int) -> int:
    return ((GUILD_MS + n) << 22) | 1


def user_id(n: int, k: int) -> int:
    return ((USER_MS + n) << 22) | (k + 1)


def channel_id(n: int, c: int) -> int:
    return ((CHANNEL_MS + n) << 22) | (c + 1)


def cpu_ticks() -> tuple[int, int]:
    """Every core's busy and total time since boot (/proc/stat), in clock ticks."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]   # idle, iowait
    return sum(fields) - idle, sum(fields)


def process_cpu() -> float:
    """This process's CPU seconds (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def collect(results: Any, processes: list[Any], timeout: float = BOT_TIMEOUT) -> list[Any]:
    """One result from each of ``processes``, failing (not waiting on) as soon as one of them died without
    giving its result."""
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(found) < len(processes):
        try:
            found.append(results.get(timeout=1.0))
        except queue.Empty:
            if any(process.exitcode not in (None, 0) for process in processes):
                raise RuntimeError("a process of the bench failed (its traceback is above)") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bench's processes gave no result within {timeout:.0f} s") from None
    return found


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total if total else 0.0


# ---------------------------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """The bench's own PostgreSQL server, as tests/postgres.py starts the tests' one (run as ``postgres`` when
    the bench runs as root), removed afterwards."""
    binaries = find_binaries()
    if binaries is None or not (binaries / "pg_ctl").exists():
        raise SystemExit("PostgreSQL not found: apt-get install -y postgresql, or put initdb on the PATH "
                         "(or run with --backends sqlite)")
    run_as = None
    if os.geteuid() == 0:
        pwd.getpwnam("postgres")
        run_as = "postgres"
    with serving(binaries, run_as, prefix="kakehashi-bench-pg-") as server:
        yield server


# ---------------------------------------------------------------------------------------------- seeding


@dataclass(frozen=True)
class Community:
    servers: int
    members: int

    @property
    def introduced(self) -> int:
        return round(self.members * INTRODUCED)


def schedule_of(n: int) -> tuple[str, int, str]:
    """Server n's time zone, weekday and prompt time; its rounds are the same weekday at 10:00."""
    return ZONES[n % len(ZONES)], n % 7, f"{8 + n % 4:02d}:00"


async def seed(storage: Storage, community: Community, now: datetime) -> float:
    """Every server's settings, schedules and members, written with the stores' statements in one transaction a
    batch of servers; the seconds it took."""
    started = time.perf_counter()
    at = to_text(now)
    joined_recently = to_text(now - timedelta(days=1))
    per_batch = max(1, BATCH // community.members)
    for first in range(0, community.servers, per_batch):
        servers = range(first, min(community.servers, first + per_batch))
        guild_rows, zone_rows, channel_rows, prompt_rows, schedule_rows, intro_rows, round_rows = ([] for _ in range(7))
        member_rows, introduced_rows, joined_rows, profile_rows, match_rows = ([] for _ in range(5))
        for n in servers:
            gid = guild_id(n)
            zone_name, weekday, prompt_at = schedule_of(n)
            zone = ZoneInfo(zone_name)
            guild_rows.append((gid, at))
            zone_rows.append((zone_name, at, gid))
            channel_rows.extend((gid, purpose.value, channel_id(n, c)) for c, purpose in enumerate(PURPOSES))
            # The latest slots are already made: nothing is due until the next one.
            prompt_slot = latest_slot(now, weekday, clock_time.fromisoformat(prompt_at), zone)
            round_slot = latest_slot(now, weekday, clock_time(10, 0), zone)
            prompt_rows.append((gid, at))
            schedule_rows.append((weekday, prompt_at, 1, to_text(prompt_slot), at, gid))
            intro_rows.append((gid, "channel", 1, 3, at))
            round_rows.append((gid, 1, "weekly", weekday, "10:00", 6, 5, to_text(round_slot), at))
            for k in range(community.members):
                uid = user_id(n, k)
                member_rows.append((gid, uid))
                if k < community.introduced:
                    introduced_rows.append((at, gid, uid))
                    company = f"Company {(n * 7 + k) % 40}"
                    languages = LANGUAGES[k % len(LANGUAGES)]
                    profile_rows.append((
                        gid, uid, f"member {k}", company, companies.company_key(company), ROLES[k % len(ROLES)],
                        INDUSTRIES[(n + k) % len(INDUSTRIES)], CITIES[(n + 2 * k) % len(CITIES)], None,
                        json.dumps(list(languages)), "[]", "", "", "", "everyone", 1, at, at))
                    match_rows.append((gid, uid, 1, None, 0, at, at))
                else:
                    joined_rows.append((joined_recently, gid, uid))
        async with storage.transaction() as tx:
            await tx.execute_many(ENSURE_SETTINGS, guild_rows)
            await tx.execute_many(UPDATE_TIMEZONE, zone_rows)
            await tx.execute_many(UPSERT_CHANNEL, channel_rows)
            await tx.execute_many(ENSURE_SCHEDULE, prompt_rows)
            await tx.execute_many(UPDATE_SCHEDULE, schedule_rows)
            await tx.execute_many(UPSERT_INTRO_SETTINGS, intro_rows)
            await tx.execute_many(UPSERT_ROUND_SETTINGS, round_rows)
            await tx.execute_many(ENSURE_MEMBER, member_rows)
            await tx.execute_many(MARK_INTRODUCED, introduced_rows)
            await tx.execute_many(MEMBER_JOINED, joined_rows)
            await tx.execute_many(UPSERT_PROFILE, profile_rows)
            await tx.execute_many(UPSERT_MEMBER, match_rows)
    return time.perf_counter() - started


@dataclass
class Database:
    """A seeded database of one backend: the community's, and one of a single server (the baseline)."""

    backend: str
    target: str
    baseline: str
    server: PostgresServer | None = None
    seed_seconds: float = 0.0

    def analyze(self) -> None:
        """PostgreSQL's statistics, as autovacuum would have them on a database that has been running."""
        if self.server is not None:
            for target in (self.target, self.baseline):
                self.server.psql("VACUUM ANALYZE", target.rsplit("/", 1)[1])


async def open_seeded(target: str, community: Community) -> float:
    storage = await Storage.open(target)
    try:
        return await seed(storage, community, NOW)
    finally:
        await storage.close()


# ---------------------------------------------------------------------------------------------- the pass


@dataclass
class Bot:
    """The services and the outbox as ``KakehashiBot.setup_hook`` builds them, with the cogs' three tickers."""

    storage: Storage
    guilds: GuildConfig
    outbox: Outbox
    ticker_seconds: dict[str, float] = field(default_factory=dict)


async def bot_like(target: str, clock: FakeClock, *, owner: str = "bench") -> Bot:
    storage = await Storage.open(target)
    guilds = GuildConfig(GuildSettingsStore(storage), clock)
    outbox_store = OutboxStore(storage)
    prompts = PromptService(PromptStore(storage), outbox_store, guilds, load_essays(), clock)
    intros = IntroService(IntroStore(storage), clock)
    intros.watch(guilds.forget_language)
    matching = MatchService(MatchStore(storage), intros, prompts.store, guilds, clock, planner=plan_in_thread)
    outbox = Outbox(clock, owner=owner)
    bot = Bot(storage, guilds, outbox)

    def timed(name: str, tick: Callable[[datetime], Awaitable[None]]) -> Callable[[datetime], Awaitable[None]]:
        async def ticker(now: datetime) -> None:
            started = time.perf_counter()
            try:
                await tick(now)
            finally:
                bot.ticker_seconds[name] = bot.ticker_seconds.get(name, 0.0) + time.perf_counter() - started
        return ticker

    # As the cogs register them, in the order they load (bot/client.py: EXTENSIONS): prompts, welcomes, rounds.
    outbox.add_ticker(timed("prompts", lambda now: prompts.materialise_due(now, outbox.shards)))
    outbox.add_ticker(timed("intros", lambda now: intros.materialise_due(now, outbox.shards)))
    outbox.add_ticker(timed("rounds", lambda now: matching.materialise_due(now, outbox.shards)))

    async def nothing(job: Job) -> None:
        return None

    outbox.register(BENCH_JOB, nothing)
    await outbox.start(outbox_store)
    return bot


@dataclass
class Pass:
    seconds: float
    ran: int
    tickers: dict[str, float]


async def one_pass(bot: Bot) -> Pass:
    bot.ticker_seconds.clear()
    started = time.perf_counter()
    ran = await bot.outbox.run_due()
    return Pass(time.perf_counter() - started, ran, dict(bot.ticker_seconds))


async def due_everywhere(storage: Storage, servers: int, label: str) -> None:
    """One job due now in every server."""
    jobs = [NewJob(BENCH_JOB, guild_id(n), f"{BENCH_JOB}:{label}:{n}", {"n": n}, NOW) for n in range(servers)]
    async with storage.transaction() as tx:
        await OutboxStore.enqueue_many(tx, jobs, now=NOW)


async def runs_of(storage: Storage) -> tuple[int, int, int, int]:
    """The bench's jobs: how many, done, run once (attempts = 1), and in how many servers."""
    row = await storage.fetch_one(COUNT_RUNS, (BENCH_JOB,))
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


async def forget_jobs(storage: Storage) -> None:
    async with storage.transaction() as tx:
        await tx.execute(DELETE_BENCH_JOBS, (BENCH_JOB,))


@dataclass
class PassFigures:
    backend: str
    servers: int
    cold: Pass | None = None
    warm: list[Pass] = field(default_factory=list)
    base_warm: list[Pass] = field(default_factory=list)
    due: Pass | None = None
    base_due: Pass | None = None
    created: int = 0              # jobs the tickers made in passes with nothing due (should be 0)
    due_checked: tuple[int, int, int, int] = (0, 0, 0, 0)
    memory: Memory | None = None

    @property
    def warm_seconds(self) -> float:
        return statistics.median(p.seconds for p in self.warm)

    @property
    def base_seconds(self) -> float:
        return statistics.median(p.seconds for p in self.base_warm)


async def measure_passes(database: Database, community: Community) -> PassFigures:
    figures = PassFigures(database.backend, community.servers)
    clock = FakeClock(NOW)
    base = await bot_like(database.baseline, clock)
    bot = await bot_like(database.target, clock)
    try:
        # Nothing due: the first pass reads every server's settings into the cache, the next ones find them there.
        figures.cold = await one_pass(bot)
        figures.warm = [await one_pass(bot) for _ in range(WARM_PASSES)]
        await one_pass(base)
        figures.base_warm = [await one_pass(base) for _ in range(WARM_PASSES)]
        row = await bot.storage.fetch_one(COUNT_JOBS)
        figures.created = int(row[0]) if row else -1
        # One due job a server (the handler does nothing).
        await due_everywhere(bot.storage, community.servers, "pass")
        await due_everywhere(base.storage, 1, "pass")
        figures.due = await one_pass(bot)
        figures.base_due = await one_pass(base)
        figures.due_checked = await runs_of(bot.storage)
        await forget_jobs(bot.storage)
        await forget_jobs(base.storage)
    finally:
        await bot.storage.close()
        await base.storage.close()
    return figures


@dataclass
class Memory:
    """What a bot-like process (this bench's services, no Discord) holds a server: by RSS before and after, and
    by tracemalloc (what Python and numpy allocated and still hold) in a second count."""

    servers: int = 0
    settings: float = 0.0          # bytes a server: GuildConfig's cache, every server's settings read once
    settings_traced: float = 0.0
    indexed: int = 0
    index: float = 0.0             # bytes a server: MatchService's suggestion index, built at the first suggest
    index_traced: float = 0.0


def memory_process(target: str, servers: int, sample: int, results: Any) -> None:
    """In a fresh process (a heap that has not held anything bigger before, so RSS follows what is kept)."""
    results.put(asyncio.run(_memory(target, servers, sample)))


async def _memory(target: str, servers: int, sample: int) -> Memory:
    clock = FakeClock(NOW)
    storage = await Storage.open(target)
    try:
        guilds = GuildConfig(GuildSettingsStore(storage), clock)
        intros = IntroService(IntroStore(storage), clock)
        matching = MatchService(MatchStore(storage), intros, PromptStore(storage), guilds, clock,
                                planner=plan_in_thread)
        # Out of the count: the statements' first use, the index's kernels and modules loaded.
        await guilds.settings(guild_id(0))
        await matching.suggest(guild_id(0), user_id(0, 0))
        traced = max(1, min(sample, servers - 1 - sample))
        memory = Memory(servers=servers - 1, indexed=sample)
        gc.collect()
        before = rss()
        for n in range(1, servers):
            await guilds.settings(guild_id(n))
        gc.collect()
        memory.settings = (rss() - before) / max(1, servers - 1)
        before = rss()
        for n in range(1, sample + 1):
            await matching.suggest(guild_id(n), user_id(n, 0))
        gc.collect()
        memory.index = (rss() - before) / max(1, sample)
        # The same again under tracemalloc (which costs memory of its own, hence after the RSS counts).
        tracemalloc.start()
        fresh = GuildConfig(GuildSettingsStore(storage), clock)
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1, servers):
            await fresh.settings(guild_id(n))
        gc.collect()
        memory.settings_traced = (tracemalloc.get_traced_memory()[0] - before) / max(1, servers - 1)
        before = tracemalloc.get_traced_memory()[0]
        for n in range(sample + 1, sample + 1 + traced):
            await matching.suggest(guild_id(n), user_id(n, 0))
        gc.collect()
        memory.index_traced = (tracemalloc.get_traced_memory()[0] - before) / traced
        tracemalloc.stop()
        await matching.close()
        return memory
    finally:
        await storage.close()


def measure_memory(target: str, community: Community) -> Memory:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    sample = max(1, min(INDEX_SAMPLE, (community.servers - 1) // 2))
    process = context.Process(target=memory_process, args=(target, community.servers, sample, results))
    process.start()
    [memory] = collect(results, [process])
    process.join(timeout=30)
    return memory


# ---------------------------------------------------------------------------------------------- claims


@dataclass
class ClaimRun:
    handler: str
    processes: int
    jobs: int
    seconds: float = 0.0
    ran: list[int] = field(default_factory=list)
    cpu_busy: float = 0.0         # of every core, from /proc/stat
    claimers_cpu: float = 0.0     # CPU seconds the claiming processes used
    checked: tuple[int, int, int, int] = (0, 0, 0, 0)
    distinct: int = 0

    @property
    def claimers_share(self) -> float:
        """The claiming processes' share of every core's time."""
        return self.claimers_cpu / ((os.cpu_count() or 1) * self.seconds) if self.seconds else 0.0

    @property
    def per_second(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0


def claim_process(url: str, shards: int, shard: int, wait: float, barrier: Any, results: Any) -> None:
    """One process of the claim runs: its own storage, its own outbox (its own owner and shard), one pass."""
    asyncio.run(_claim(url, shards, shard, wait, barrier, results))


async def _claim(url: str, shards: int, shard: int, wait: float, barrier: Any, results: Any) -> None:
    storage = await Storage.open(url)
    outbox = Outbox(FakeClock(NOW), owner=f"bench-claimer-{shard}", shards=Shards(shards, frozenset({shard})),
                    lanes=LANES)
    seen: list[int] = []

    async def handler(job: Job) -> None:
        seen.append(job.id)
        if wait:
            await asyncio.sleep(wait)

    outbox.register(BENCH_JOB, handler)
    await outbox.start(OutboxStore(storage))
    try:
        await asyncio.to_thread(barrier.wait)
        cpu = process_cpu()
        started = time.time()
        ran = await outbox.run_due()
        ended = time.time()
        results.put((shard, ran, started, ended, seen, process_cpu() - cpu))
    finally:
        await storage.close()


async def enqueue_spread(url: str, jobs: int, servers: int, label: str) -> None:
    """``jobs`` jobs due now, spread over every server in turn."""
    storage = await Storage.open(url)
    try:
        await forget_jobs(storage)
        batch = [NewJob(BENCH_JOB, guild_id(j % servers), f"{BENCH_JOB}:{label}:{j}", {"j": j}, NOW)
                 for j in range(jobs)]
        async with storage.transaction() as tx:
            await OutboxStore.enqueue_many(tx, batch, now=NOW)
    finally:
        await storage.close()


async def check_claims(url: str) -> tuple[int, int, int, int]:
    storage = await Storage.open(url)
    try:
        return await runs_of(storage)
    finally:
        await storage.close()


def claim_run(database: Database, community: Community, handler: str, processes: int, jobs: int) -> ClaimRun:
    assert database.server is not None
    run = ClaimRun(handler, processes, jobs)
    asyncio.run(enqueue_spread(database.target, jobs, community.servers, f"{handler}:{processes}"))
    database.server.psql("VACUUM ANALYZE outbox", database.target.rsplit("/", 1)[1])
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes + 1)
    results = context.Queue()
    wait = DISCORD_CALL if handler == "discord" else 0.0
    children = [context.Process(target=claim_process, args=(database.target, processes, shard, wait, barrier,
                                                             results))
                for shard in range(processes)]
    for child in children:
        child.start()
    barrier.wait(timeout=120)
    before = cpu_ticks()
    outcomes = collect(results, children)
    run.cpu_busy = busy_share(before, cpu_ticks())
    for child in children:
        child.join(timeout=30)
    run.seconds = max(o[3] for o in outcomes) - min(o[2] for o in outcomes)
    run.ran = [o[1] for o in sorted(outcomes)]
    run.distinct = len({job_id for o in outcomes for job_id in o[4]})
    run.claimers_cpu = sum(o[5] for o in outcomes)
    run.checked = asyncio.run(check_claims(database.target))
    return run


# ---------------------------------------------------------------------------------------------- the real bot


@dataclass
class BotStart:
    backend: str
    guilds: int
    shards: int
    imported: float = 0.0       # seconds from starting the process to the bot's modules imported
    identified: float = 0.0     # … to its first IDENTIFY (storage opened and migrated, cogs loaded, commands synced)
    last_guild: float = 0.0     # … to the fake Discord's last GUILD_CREATE sent (on the last shard)
    ready: float = 0.0          # … to READY
    first_pass: float = 0.0     # … to the end of the outbox's first pass
    cpu_ready: float = 0.0      # the bot process's CPU seconds at READY
    cpu_pass: float = 0.0       # … at the end of the first pass
    rss_imported: int = 0
    rss_ready: int = 0
    rss_pass: int = 0
    cached_guilds: int = 0
    cached_members: int = 0
    settings_cached: int = 0
    error: str = ""


def fake_world(servers: int, members: int) -> dict[str, Any]:
    """The community's servers in the fake Discord, with the ids the database has (each with its members and the
    four channels its settings name), as a world ``FakeDiscord.restore`` takes: built once for the runs on
    both backends."""
    from playground.fakediscord import Channel, ChannelType, FakeDiscord
    from playground.fakediscord.model import Member, User

    server = FakeDiscord()
    for n in range(servers):
        guild = server.add_guild(f"server {n}")   # the fake's own set-up: roles, owner, the bot as a member
        del server.guilds[guild.id]
        everyone = guild.roles.pop(guild.id)
        guild.id = everyone.id = guild_id(n)
        guild.roles = {guild.id: everyone, **guild.roles}
        server.guilds[guild.id] = guild
        for c, purpose in enumerate(PURPOSES):
            channel = Channel(id=channel_id(n, c), type=ChannelType.TEXT, name=purpose.value, guild=guild, position=c)
            guild.channels[channel.id] = channel
            server.channels[channel.id] = channel
        for k in range(members):
            user = User(user_id(n, k), f"m{n}-{k}", global_name=f"member {k}")
            server.users[user.id] = user
            guild.members[user.id] = Member(user, guild)
    return server.snapshot()


async def start_bot(backend: str, target: str, world: dict[str, Any], shards: int, folder: Path) -> BotStart:
    """The real bot (bench/servers_bot.py) in a process of its own, running ``shards`` shards, against the fake
    Discord (in this process) holding ``world``'s servers."""
    from playground.fakediscord import FakeDiscord

    server = FakeDiscord()
    server.restore(world)
    server.recommended_shards = shards
    start = BotStart(backend, len(server.guilds), shards)
    identify = server._identify

    async def timed_identify(connection: Any, data: dict[str, Any]) -> None:
        start.identified = start.identified or time.time()   # the first shard's
        await identify(connection, data)   # READY, then every GUILD_CREATE of the shard
        start.last_guild = time.time()

    server._identify = timed_identify   # type: ignore[method-assign]
    await server.start()
    env = {"DISCORD_TOKEN": server.token, "SHARD_COUNT": str(shards), "LOG_LEVEL": "INFO"}
    env.update({"DATABASE_PATH": target} if backend == "sqlite" else {"DATABASE_URL": target})
    spec = {"rest": server.rest_url, "gateway": server.gateway_url, "env": env, "now": NOW.isoformat()}
    log_path = folder / f"bot-{backend}-{start.guilds}.log"
    gc.collect()
    began = time.time()
    try:
        await asyncio.to_thread(watch_bot, spec, log_path, start, began)
    finally:
        await server.stop()
    if start.last_guild:
        start.identified -= began
        start.last_guild -= began
    if not start.first_pass:
        start.error = f"the bot did not finish its first pass (see {log_path})"
    return start


def watch_bot(spec: dict[str, Any], log_path: Path, start: BotStart, began: float) -> None:
    """Run bench/servers_bot.py and note what it tells (its log in ``log_path``); killed past BOT_TIMEOUT."""
    with open(log_path, "w", encoding="utf-8") as log_file:
        process = subprocess.Popen([sys.executable, str(BOT_PROCESS), json.dumps(spec)], stdout=subprocess.PIPE,
                                   stderr=log_file, cwd=BOT_PROCESS.parent.parent, text=True)
        watchdog = threading.Timer(BOT_TIMEOUT, process.kill)
        watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                event = json.loads(line)
                at = event["at"] - began
                if event["event"] == "imported":
                    start.imported, start.rss_imported = at, event["rss"]
                elif event["event"] == "ready":
                    start.ready, start.rss_ready, start.cpu_ready = at, event["rss"], event["cpu"]
                    start.cached_guilds, start.cached_members = event["guilds"], event["members"]
                elif event["event"] == "pass":
                    start.first_pass, start.rss_pass, start.cpu_pass = at, event["rss"], event["cpu"]
                    start.settings_cached = event["settings"]
            process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()


# ---------------------------------------------------------------------------------------------- report


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def report_passes(figures: PassFigures, checks: list[tuple[str, bool]]) -> None:
    n = figures.servers
    assert figures.cold is not None and figures.due is not None and figures.base_due is not None
    print(f"\n{figures.backend}: the outbox's pass, {n:,} servers (tickers: prompts, intros, rounds)")
    tickers = ", ".join(f"{name} {ms(seconds)}" for name, seconds in figures.cold.tickers.items())
    print(f"  nothing due, first pass (settings read into the cache): {ms(figures.cold.seconds)} ({tickers})")
    warm = figures.warm[len(figures.warm) // 2]
    tickers = ", ".join(f"{name} {ms(seconds)}" for name, seconds in warm.tickers.items())
    print(f"  nothing due, next passes (median of {len(figures.warm)}): {ms(figures.warm_seconds)} ({tickers}); "
          f"1 server: {ms(figures.base_seconds)}; {figures.warm_seconds / figures.base_seconds:,.0f}x, "
          f"{(figures.warm_seconds - figures.base_seconds) / max(1, n - 1) * 1e6:,.0f} us a server")
    print(f"  jobs the tickers made while nothing was due: {figures.created}")
    jobs_per_second = figures.due.ran / figures.due.seconds if figures.due.seconds else 0.0
    print(f"  one due job a server: {ms(figures.due.seconds)} for {figures.due.ran:,} jobs ({jobs_per_second:,.0f} "
          f"jobs/s); 1 server: {ms(figures.base_due.seconds)}; {figures.due.seconds / figures.base_due.seconds:,.0f}x")
    total, done, once, servers = figures.due_checked
    print(f"  checked: {done:,} of {total:,} jobs done, {once:,} run once, in {servers:,} servers")
    if figures.memory is not None:
        memory = figures.memory
        print(f"  a bot-like process's memory a server (RSS; tracemalloc): settings cache (GuildConfig, each server "
              f"read once) {memory.settings:,.0f} bytes; {memory.settings_traced:,.0f} bytes ({memory.servers:,} "
              f"servers); suggestion index (MatchService, built at a server's first /match suggest, kept) "
              f"{memory.index / 1024:,.1f} KiB; {memory.index_traced / 1024:,.1f} KiB ({memory.indexed} servers)")
    checks.append((f"{figures.backend}: pass over {n:,} servers with nothing due < {PASS_TARGET:g} s "
                   f"({figures.warm_seconds:.2f} s; the first, filling the cache: {figures.cold.seconds:.2f} s)",
                   figures.warm_seconds < PASS_TARGET))
    checks.append((f"{figures.backend}: nothing due made no job ({figures.created})", figures.created == 0))
    checks.append((f"{figures.backend}: every due job run once ({once:,} of {n:,})",
                   figures.due.ran == n and total == done == once == servers == n))


def report_bots(starts: list[BotStart], members: int, checks: list[tuple[str, bool]]) -> None:
    print(f"\nThe real bot (its own process) against the fake Discord (this process), {members} members a server; "
          "times from starting the bot's process:")
    for start in starts:
        if start.error:
            print(f"  {start.backend}, {start.guilds:,} servers: {start.error}")
            checks.append((f"{start.backend}: the bot with {start.guilds:,} servers started", False))
            continue
        print(f"  {start.backend}, {start.guilds:,} server{'s' if start.guilds > 1 else ''}, {start.shards} "
              f"shard{'s' if start.shards > 1 else ''}: imported "
              f"{ms(start.imported)}, first IDENTIFY {ms(start.identified)}, the fake's last GUILD_CREATE sent "
              f"{ms(start.last_guild)}, READY {ms(start.ready)}, first outbox pass done {ms(start.first_pass)} "
              f"(the bot's CPU time: {start.cpu_ready:.1f} s at READY, {start.cpu_pass:.1f} s after the pass)")
        print(f"    RSS {mib(start.rss_imported)} imported, {mib(start.rss_ready)} at READY, "
              f"{mib(start.rss_pass)} after the pass; cached: {start.cached_guilds:,} servers, "
              f"{start.cached_members:,} members, the settings of {start.settings_cached:,} servers")
    by_backend: dict[str, list[BotStart]] = {}
    for start in starts:
        if not start.error:
            by_backend.setdefault(start.backend, []).append(start)
    for backend, pair in by_backend.items():
        if len(pair) != 2:
            continue
        base, full = sorted(pair, key=lambda s: s.guilds)
        extra = full.guilds - base.guilds
        per_server = (full.rss_pass - base.rss_pass) / extra
        line = (f"  {backend}: {per_server / 1024:,.1f} KiB a server (RSS after the first pass, "
                f"{full.guilds:,} servers - 1, / {extra:,})")
        if full.guilds < 10_000:
            line += f"; extrapolated to 10,000 servers: {mib(base.rss_pass + per_server * 9_999)}"
        print(line + f"; start-up to the first pass {full.first_pass / base.first_pass:,.1f}x the one-server bot's")
        checks.append((f"{backend}: the real bot started with {full.guilds:,} servers, every one cached "
                       f"({full.cached_guilds:,}) and its settings read ({full.settings_cached:,})",
                       full.cached_guilds == full.guilds and full.settings_cached >= full.guilds))


def report_claims(runs: list[ClaimRun], checks: list[tuple[str, bool]]) -> None:
    cores = os.cpu_count() or 1
    print(f"\nPostgreSQL: jobs claimed and completed per second (each process: its own Storage, its own Outbox "
          f"with {LANES} lanes, one run_due pass over its shards; {cores} cores shared with PostgreSQL)")
    for run in runs:
        total, done, once, _servers = run.checked
        ceiling = (f" (at most {run.processes * LANES / DISCORD_CALL:,.0f}: {LANES} lanes a process, "
                   f"{DISCORD_CALL * 1000:.0f} ms a job)") if run.handler == "discord" else ""
        print(f"  {run.handler:<8} {run.processes} process{'es' if run.processes > 1 else '  '}: {run.jobs:,} jobs "
              f"in {run.seconds:.2f} s = {run.per_second:,.0f} jobs/s{ceiling} (by process: {run.ran})")
        print(f"      cores busy {run.cpu_busy:.0%} (the claiming processes {run.claimers_share:.0%}, the rest mostly "
              f"PostgreSQL; {run.cpu_busy * cores / run.per_second * 1000 if run.per_second else 0:.2f} ms of CPU a "
              f"job); checked: {done:,} done, {once:,} run once, {run.distinct:,} distinct ids run")
        checks.append((f"claims, {run.handler}, {run.processes} process(es): every job run exactly once",
                       total == done == once == run.distinct == sum(run.ran) == run.jobs))
    for handler in ("no-op", "discord"):
        one = next((r for r in runs if r.handler == handler and r.processes == 1), None)
        four = next((r for r in runs if r.handler == handler and r.processes == SHARDS), None)
        if one is None or four is None:
            continue
        ratio = four.per_second / one.per_second if one.per_second else 0.0
        why = ""
        if ratio < SCALE_TARGET and four.cpu_busy >= 0.9:
            # One process waits on its round trips to PostgreSQL (its transactions one at a time); more processes
            # overlap them until the machine's cores are full.
            why = (f"; bound by this machine: the {cores} cores were {four.cpu_busy:.0%} busy with {four.processes} "
                   f"processes and PostgreSQL, {one.cpu_busy:.0%} with one")
        checks.append((f"claims, {handler} handler: {SHARDS} processes >= {SCALE_TARGET:g}x one "
                       f"({four.per_second:,.0f} / {one.per_second:,.0f} jobs/s = {ratio:.2f}x{why})",
                       ratio >= SCALE_TARGET))


# ---------------------------------------------------------------------------------------------- main


def prepare(backend: str, community: Community, folder: Path, server: PostgresServer | None) -> Database:
    if backend == "sqlite":
        database = Database(backend, str(folder / "servers.db"), str(folder / "one.db"))
    else:
        assert server is not None
        database = Database(backend, server.new_database(), server.new_database(), server)
    database.seed_seconds = asyncio.run(open_seeded(database.target, community))
    asyncio.run(open_seeded(database.baseline, Community(1, community.members)))
    database.analyze()
    print(f"{backend}: seeded {community.servers:,} servers of {community.members} members in "
          f"{database.seed_seconds:.1f} s")
    return database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--bot-servers", type=int, default=None,
                        help="servers in the fake Discord for the real bot (default: --servers)")
    parser.add_argument("--no-bot", action="store_true", help="skip the real bot's start-up and memory")
    parser.add_argument("--no-claims", action="store_true", help="skip the jobs-per-second runs on PostgreSQL")
    parser.add_argument("--claim-jobs", type=int, default=None,
                        help="jobs in each no-op claim run (default: one a server); the 20 ms runs take 2/5")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SERVERS} servers: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.servers = QUICK_SERVERS
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if unknown := set(backends) - {"sqlite", "postgresql"}:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    community = Community(args.servers, args.members)
    bot_servers = min(args.bot_servers or args.servers, args.servers)
    # As few shards as Discord allows (2,500 servers a shard), all in the bot's one process: SHARD_COUNT alone.
    bot_shards = max(1, math.ceil(bot_servers / MAX_GUILDS_PER_SHARD))
    claim_jobs = args.claim_jobs or args.servers
    checks: list[tuple[str, bool]] = []
    print(f"{community.servers:,} servers of {community.members} members ({community.introduced} with profiles); "
          f"{os.cpu_count()} cores")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kakehashi-bench-") as name, contextlib.ExitStack() as stack:
        folder = Path(name)
        server = stack.enter_context(postgres_server()) if "postgresql" in backends else None
        databases = [prepare(backend, community, folder, server) for backend in backends]
        for database in databases:
            figures = asyncio.run(measure_passes(database, community))
            figures.memory = measure_memory(database.target, community)
            report_passes(figures, checks)
        if not args.no_bot:
            starts = []
            worlds = {1: fake_world(1, community.members), bot_servers: fake_world(bot_servers, community.members)}
            for database in databases:
                if bot_servers == community.servers:
                    target = database.target
                else:   # fewer servers in the fake: a database of as many
                    target = (str(folder / f"bot-{bot_servers}.db") if database.server is None
                              else database.server.new_database())
                    asyncio.run(open_seeded(target, Community(bot_servers, community.members)))
                for guilds, where in ((1, database.baseline), (bot_servers, target)):
                    starts.append(asyncio.run(start_bot(database.backend, where, worlds[guilds], bot_shards, folder)))
                    print(f"  (the bot with {guilds:,} server(s) on {database.backend}: first pass done at "
                          f"{ms(starts[-1].first_pass)})")
            del worlds
            report_bots(starts, community.members, checks)
        postgres = next((d for d in databases if d.server is not None), None)
        if postgres is not None and not args.no_claims:
            runs = []
            for handler, jobs in (("no-op", claim_jobs), ("discord", max(SHARDS, claim_jobs * 2 // 5))):
                for processes in (1, SHARDS):
                    runs.append(claim_run(postgres, community, handler, processes, jobs))
                    print(f"  (claims, {handler}, {processes} process(es): {runs[-1].per_second:,.0f} jobs/s)")
            report_claims(runs, checks)
    print(f"\n(whole run {time.perf_counter() - started:,.0f} s)\n")
    for what, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {what}")


if __name__ == "__main__":
    main()
