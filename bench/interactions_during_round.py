"""``/match suggest`` answered while a round of 100,000 members is made (issue 13): the real bot, in this process,
against the fake Discord. Run by ``bench/matching.py`` (see bench/README.md); on its own:

    python bench/interactions_during_round.py [--members 100000] [--seed N]

One server of ``--members`` members with bench/matching.py's synthetic profiles, all joined to rounds (seeded
straight into the database with tests/seeding.py), all of them in the fake's guild and sent in its GUILD_CREATE.
Two runs, each a new bot on a fresh copy of that database: with the round worker's kernels in numba's cache, and
with ``NUMBA_CACHE_DIR`` set to an empty folder (the worker compiles every kernel, as after a fresh install). In
each, a member's first ``/match suggest`` builds the server's suggestion index (a stall of its own, issue #18:
timed, not counted); then a member picked at random sends ``/match suggest`` every 100 ms: with the bot idle, then
from ``/rounds run`` until its answer (the round stored), then while the round's delivery begins.

An answer's latency runs from the moment it was due on that 100 ms grid (a stall of the event loop delays the fake's
sending too, and counts) to the fake receiving the answer (the message after the defer). Answers are grouped by
the phase they were sent in: ``/rounds run`` sent, before the round worker has it (``MatchService.planning`` not yet
true); the worker making the round (``MatchService.planning``: it reads the pool from the database, plans the round
and stores it, on a connection of its own; its log line gives the three times); after the worker, until the answer
to ``/rounds run``; and starting the delivery (``begin_delivery``, also in the worker, until its log line). The
delivery is held back until the round's answers are in (the fake keeps the answer to its first call, the active
threads), so that it does not fall into the round's phases; it is stopped once begun. A 10 ms
ticker gives the event loop's longest stall in each phase, and the cycle collector's runs are timed beside it: a
full collection walks the whole heap holding the GIL, and this process's heap holds the fake Discord's 100,000
members and the bench's bookkeeping beside the bot's own.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import itertools
import logging
import math
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.matching import ZONES, community
from bot.client import KakehashiBot
from bot.matching.model import History
from bot.matching.worker import RoundWorker
from playground.clock import FakeClock
from playground.fakediscord import FakeDiscord, Member, Message
from playground.fakediscord.server import Interaction
from tests.e2e.conftest import BotRunner, World, build_world, use_channel
from tests.seeding import CITIES, INDUSTRIES, ROLES, Person, seed_community

TARGET_P99 = 0.050      # seconds: the target for /match suggest while a round is planned
INTERVAL = 0.1          # seconds between two members' /match suggest
IDLE_SAMPLES = 50       # answers with the bot idle, before the round, for comparison
ANSWER_TIMEOUT = 600.0  # seconds an answer may take before it counts as never given
TICK = 0.01

# A zone without summer time for each UTC offset bench/matching.py's communities use.
ZONE_NAMES = dict(zip(ZONES, ("Asia/Tokyo", "Asia/Singapore", "Asia/Bangkok", "Asia/Kolkata", "Europe/Istanbul",
                              "Africa/Lagos", "Atlantic/Reykjavik", "Africa/Johannesburg", "America/Sao_Paulo",
                              "America/Bogota", "Pacific/Pitcairn", "Australia/Brisbane"), strict=True))

IDLE, POOL, PLAN, STORE, DELIVERY = ("idle", "/rounds run, before the worker", "the worker making the round",
                                     "/rounds run, after the worker", "starting the delivery")
ROUND_PHASES = (POOL, PLAN, STORE)
MEASURED = (IDLE, *ROUND_PHASES, DELIVERY)
SETTLING = "settling"   # between two measured phases: waiting for the answers sent in the first


@dataclass
class Sample:
    due: float                      # perf_counter: its slot on the 100 ms grid
    phase: str
    interaction_id: int = 0
    latency: float | None = None    # None: no answer (within ANSWER_TIMEOUT)
    suggested: bool = False         # answered with suggestions (not "nobody fits", not an error)
    before_end: float = 0.0         # sent this long before its phase ended


class TimedDiscord(FakeDiscord):
    """The fake Discord, noting when each interaction got its answer: the first message that is not the
    "thinking" of a defer (a response, or the follow-up after a defer), and whether it had an embed (the
    suggestions) or not (an error). One dict entry a call, so that hundreds of answers awaited at once
    cost the event loop nothing while they wait."""

    def __init__(self) -> None:
        super().__init__()
        self.answered: dict[int, tuple[float, bool]] = {}

    async def _callback(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        result = await super()._callback(request, match, body)
        self._note(self._live(match["interaction"], match["token"]))
        return result

    async def _followup(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        result = await super()._followup(request, match, body)
        self._note(self._by_token(match))
        return result

    def _note(self, interaction: Interaction) -> None:
        at = time.perf_counter()
        if interaction.id in self.answered:
            return
        answer = next((m for m in interaction.messages if not m.flags & Message.LOADING and not m.deleted), None)
        if answer is not None:
            self.answered[interaction.id] = (at, bool(answer.embeds))

    def settle(self, sample: Sample) -> None:
        """The sample's latency and whether it got suggestions, from the answer noted."""
        if sample.interaction_id in self.answered:
            at, sample.suggested = self.answered[sample.interaction_id]
            sample.latency = at - sample.due


@dataclass
class Figures:
    """Latencies of interactions sent in one phase (or several): an unanswered one counts as infinite. The p99
    is the nearest rank (of 50 answers, the largest)."""

    sent: int
    unanswered: int
    without_suggestions: int
    median: float
    p99: float
    worst: float

    @classmethod
    def of(cls, samples: list[Sample]) -> Figures:
        times = sorted(math.inf if s.latency is None else s.latency for s in samples)
        if not times:
            return cls(0, 0, 0, math.nan, math.nan, math.nan)
        return cls(len(times), sum(1 for s in samples if s.latency is None),
                   sum(1 for s in samples if s.latency is not None and not s.suggested),
                   times[(len(times) - 1) // 2], times[math.ceil(0.99 * len(times)) - 1], times[-1])


@dataclass
class Run:
    label: str
    cold: bool
    members: int
    ready_seconds: float = 0.0       # from the bot's start to its member cache holding the whole server
    index_seconds: float = 0.0       # the first /match suggest: the index built (issue #18)
    samples: list[Sample] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    loop_stall: dict[str, float] = field(default_factory=dict)
    collector: dict[str, float] = field(default_factory=dict)
    full_collection: float = 0.0     # a full run of the cycle collector before the round
    heap_objects: int = 0            # objects the collector tracks then
    frozen_objects: int = 0          # objects the bot moved out of the collector's runs (bot/heap.py)
    notes: list[str] = field(default_factory=list)   # the bot's log lines about the round and its delivery

    def figures(self, *phases: str) -> Figures:
        return Figures.of([s for s in self.samples if s.phase in phases])


class Phases:
    """Which phase of the round the bot is in, as seen from this process: marks (time, phase) in order."""

    def __init__(self) -> None:
        self.times: list[float] = [time.perf_counter()]
        self.names: list[str] = [IDLE]

    @property
    def current(self) -> str:
        return self.names[-1]

    def enter(self, name: str) -> None:
        if name != self.current:
            self.times.append(time.perf_counter())
            self.names.append(name)

    def at(self, moment: float) -> str:
        return self.names[max(0, bisect.bisect_right(self.times, moment) - 1)]

    def seconds(self, name: str) -> float:
        ends = [*self.times[1:], time.perf_counter()]
        return sum(end - start for start, end, each in zip(self.times, ends, self.names, strict=True) if each == name)

    def end_of(self, name: str) -> float:
        """When phase ``name`` (its first time) ended; now if it has not."""
        at = self.names.index(name)
        return self.times[at + 1] if at + 1 < len(self.times) else time.perf_counter()

    def worst(self, events: list[tuple[float, float]], name: str) -> float:
        """The longest of ``events`` (start, seconds) that started in phase ``name``."""
        return max((seconds for at, seconds in events if self.at(at) == name), default=0.0)


@contextlib.contextmanager
def collector_runs() -> Iterator[list[tuple[float, float]]]:
    """The cycle collector's runs in this process meanwhile: (start, seconds)."""
    runs: list[tuple[float, float]] = []
    started: dict[int, float] = {}

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[threading.get_ident()] = time.perf_counter()
        elif threading.get_ident() in started:
            begun = started.pop(threading.get_ident())
            runs.append((begun, time.perf_counter() - begun))

    gc.callbacks.append(watch)
    try:
        yield runs
    finally:
        gc.callbacks.remove(watch)


@contextlib.contextmanager
def kernel_cache(cold: bool) -> Iterator[None]:
    """``cold``: ``NUMBA_CACHE_DIR`` names an empty folder meanwhile (read by the round worker when the bot
    spawns it, at its first round), so the worker compiles every kernel."""
    if not cold:
        yield
        return
    before = os.environ.get("NUMBA_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="empty-kernel-cache-") as empty:
        os.environ["NUMBA_CACHE_DIR"] = empty
        try:
            yield
        finally:
            if before is None:
                del os.environ["NUMBA_CACHE_DIR"]
            else:
                os.environ["NUMBA_CACHE_DIR"] = before


class BotNotes(logging.Handler):
    """The bot's log lines about a round stored (``bot.matching.service``) and its delivery begun
    (``cogs.rounds``), kept instead of printed; the rest of what matching's cogs log (``cogs.matching``,
    ``cogs.rounds``) is not printed either."""

    LOGGERS = ("bot.matching.service", "cogs.matching", "cogs.rounds")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self._saved: list[tuple[logging.Logger, int, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "stored in" in message or "room for" in message:
            self.lines.append(message)

    @property
    def delivery_begun(self) -> bool:
        return any("room for" in line for line in self.lines)

    def __enter__(self) -> BotNotes:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level, logger.propagate))
            logger.addHandler(self)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        for logger, level, propagate in self._saved:
            logger.removeHandler(self)
            logger.setLevel(level)
            logger.propagate = propagate
        self._saved.clear()


def people_like_the_bench(members: list[Member], seed: int) -> list[Person]:
    """bench/matching.py's synthetic community (companies, languages, interests, what members offer and seek,
    time zones, avoid lists, 5 % closed to introductions) as the profiles of ``members``, all joined to rounds.
    Its history is left out: this is the server's first round."""
    candidates, _history = community(len(members), seed)
    rng = random.Random(seed)
    return [Person(
        user_id=member.id, display_name=f"member {n}", company=candidate.company,
        languages=tuple(sorted(candidate.languages)), role=rng.choice(ROLES), industry=rng.choice(INDUSTRIES),
        location=rng.choice(CITIES),
        timezone=None if candidate.utc_offset is None else ZONE_NAMES[candidate.utc_offset],
        interests=tuple(sorted(candidate.interests)), offer=", ".join(candidate.offers),
        seek=", ".join(candidate.seeks), open_to_intros=candidate.available, avoid=tuple(sorted(candidate.avoid)),
    ) for n, (member, candidate) in enumerate(zip(members, candidates, strict=True))]


async def suggest(server: TimedDiscord, member: Member, sample: Sample) -> None:
    sample.interaction_id = (await server.slash(member, "match suggest")).id


async def answered(server: TimedDiscord, interaction_ids: list[int], what: str) -> None:
    await server.wait_until(lambda: all(i in server.answered for i in interaction_ids), ANSWER_TIMEOUT, what)


async def one_run(server: TimedDiscord, world: World, profiles: int, askers: list[Member], template: Path,
                  folder: Path, *, cold: bool, seed: int) -> Run:
    """A new bot on a fresh copy of ``template``: its first /match suggest, then :func:`measure`. ``askers``: the
    members who ask."""
    run = Run("new bot, empty kernel cache" if cold else "new bot, kernels cached", cold, profiles)
    database = folder / ("cold.db" if cold else "warm.db")
    shutil.copy(template, database)
    rng = random.Random(seed)
    with kernel_cache(cold), BotNotes() as notes:
        runner = BotRunner(server, database, FakeClock())
        started = time.perf_counter()
        bot = await runner.start()
        try:
            await server.wait_until(lambda: _chunked(bot, world), 600, "the bot's member cache to fill")
            run.ready_seconds = time.perf_counter() - started
            await use_channel(server, world, "matches", "matches")
            first = Sample(time.perf_counter(), IDLE)
            await suggest(server, rng.choice(askers), first)
            await answered(server, [first.interaction_id], "the first /match suggest")
            server.settle(first)
            if not first.suggested:
                reply = await server.interactions[first.interaction_id].reply()
                raise AssertionError(f"the first /match suggest gave no suggestions: {reply.text!r}")
            assert first.latency is not None
            run.index_seconds = first.latency
            await measure(run, server, world, askers, bot, notes, rng)
        finally:
            await runner.stop()
            await _cancel_view_timers()
        run.notes = list(notes.lines)
    return run


async def _cancel_view_timers() -> None:
    """Cancel the timers the stopped bot's views left running (discord.py keeps a view with a timeout, and so the
    whole bot, member cache and suggestion index included, until its timer ends): else the next run's process
    would still hold this bot, over a million objects at 100,000 members, and its collector would walk them."""
    timers = [task for task in asyncio.all_tasks()
              if getattr(task.get_coro(), "__qualname__", "") == "BaseView.__timeout_task_impl"]
    for task in timers:
        task.cancel()
    await asyncio.gather(*timers, return_exceptions=True)


def _chunked(bot: KakehashiBot, world: World) -> bool:
    guild = bot.get_guild(world.guild.id)
    return guild is not None and guild.chunked


async def measure(run: Run, server: TimedDiscord, world: World, askers: list[Member], bot: KakehashiBot,
                  notes: BotNotes, rng: random.Random) -> None:
    """/match suggest every INTERVAL: with the bot idle, while ``/rounds run`` makes the round, and while the
    round's delivery begins; the event loop's stalls and the collector's runs meanwhile."""
    phases = Phases()
    stalls: list[tuple[float, float]] = []
    done = False

    async def ticker() -> None:
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            stalls.append((before, time.perf_counter() - before - TICK))

    async def watch_planning() -> None:
        while phases.current in (POOL, PLAN):
            if bot.matching.planning:
                phases.enter(PLAN)
            elif phases.current == PLAN:
                phases.enter(STORE)
            await asyncio.sleep(0.002)

    async def send(count: int | None = None) -> None:
        """One /match suggest every INTERVAL on a fixed grid: ``count`` of them, or until cancelled. Each is
        sent in a task of its own, so that one held up does not hold up the next."""
        pending: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        try:
            for k in itertools.count() if count is None else range(count):
                due = start + k * INTERVAL
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                sample = Sample(due, phases.at(due))
                run.samples.append(sample)
                task = asyncio.create_task(suggest(server, rng.choice(askers), sample))
                pending.add(task)
                task.add_done_callback(pending.discard)
        finally:
            await asyncio.gather(*pending)

    async def sending_until(condition: asyncio.Future[object] | asyncio.Task[Any]) -> None:
        sender = asyncio.create_task(send())
        try:
            await condition
        finally:
            phases.enter(SETTLING)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            await answered(server, [s.interaction_id for s in run.samples], "the answers")

    gc.collect()   # whatever setting up left to collect is not the round's
    started = time.perf_counter()
    gc.collect()
    run.full_collection, run.heap_objects = time.perf_counter() - started, len(gc.get_objects())
    run.frozen_objects = gc.get_freeze_count()
    with collector_runs() as collections:
        tick = asyncio.create_task(ticker())
        try:
            await send(IDLE_SAMPLES)
            await answered(server, [s.interaction_id for s in run.samples], "the answers with the bot idle")
            # The round's delivery waits for Discord's answer about the server's active threads, kept back.
            held = server.hold("GET", r"/guilds/\d+/threads/active")
            phases.enter(POOL)
            watcher = asyncio.create_task(watch_planning())

            async def round_made() -> None:
                round_run = await server.slash(world.admin, "rounds run")
                await answered(server, [round_run.id], "the answer to /rounds run")
                run.notes.append((await round_run.reply()).text)

            await sending_until(asyncio.create_task(round_made()))
            await watcher
            phases.enter(DELIVERY)
            held.release()
            await sending_until(asyncio.create_task(
                server.wait_until(lambda: notes.delivery_begun, ANSWER_TIMEOUT, "the round's delivery to begin")))
        finally:
            done = True
            await tick
    run.samples = [s for s in run.samples if s.phase in MEASURED]
    for sample in run.samples:
        server.settle(sample)
        sample.before_end = phases.end_of(sample.phase) - sample.due
    for name in MEASURED:
        run.phase_seconds[name] = phases.seconds(name)
        run.loop_stall[name] = phases.worst(stalls, name)
        run.collector[name] = phases.worst(collections, name)


async def cache_kernels() -> None:
    """Compile the round's kernels into numba's default cache if they are not there yet (a small round in a
    worker), so that the run "kernels cached" is one."""
    worker = RoundWorker()
    try:
        candidates, history = community(200, 1)
        await worker.plan(candidates, history)
        await worker.plan([], History())
    finally:
        await worker.close()


async def suggest_during_round(members_count: int, seed: int) -> list[Run]:
    """Both runs (kernels cached, then an empty kernel cache) on one fake Discord and one seeded database."""
    await cache_kernels()
    server = TimedDiscord()
    await server.start()
    try:
        with server.pointed_at(), tempfile.TemporaryDirectory(prefix="kakehashi-bench-") as name:
            folder = Path(name)
            world = build_world(server)
            members = [server.add_member(world.guild, f"m{n:06d}") for n in range(members_count)]
            template = folder / "seeded.db"
            started = time.perf_counter()
            persons = people_like_the_bench(members, seed)
            await seed_community(template, world.guild.id, persons)
            print(f"  {members_count:,} profiles seeded in {time.perf_counter() - started:.1f} s")
            # Those who ask: open to introductions, and speaking Japanese or English (only the languages a profile
            # names can be known to be shared), so that theirs is the whole path to suggestions.
            askers = [member for member, person in zip(members, persons, strict=True)
                      if person.open_to_intros and {"ja", "en"} & set(person.languages)]
            return [await one_run(server, world, len(members), askers, template, folder, cold=cold, seed=seed)
                    for cold in (False, True)]
    finally:
        await server.stop()


def _ms(seconds: float) -> str:
    if math.isinf(seconds) or math.isnan(seconds):
        return "never" if math.isinf(seconds) else "-"
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def report(runs: list[Run]) -> list[tuple[str, bool]]:
    checks: list[tuple[str, bool]] = []
    for run in runs:
        print(f"\n/match suggest at {run.members:,} profiles, {run.label}: the bot's member cache full "
              f"{run.ready_seconds:.1f} s after its start; the first /match suggest {run.index_seconds:.1f} s "
              f"(it builds the suggestion index, #18; not counted below); before the round, a full run of the "
              f"collector took {_ms(run.full_collection)} over {run.heap_objects:,} objects "
              f"({run.frozen_objects:,} more frozen by the bot, bot/heap.py, which it skips)")
        for line in run.notes:
            if "stored in" in line or "room for" in line:
                print(f"  the bot: {line}")
        print(f"  {'sent while':<34}{'lasted':>8}{'sent':>6}{'median':>9}{'p99':>9}{'max':>9}"
              f"{'loop stall':>12}{'collector':>11}")
        rows: list[tuple[str, tuple[str, ...]]] = [(IDLE, (IDLE,)), *((name, (name,)) for name in ROUND_PHASES),
                                                   ("the whole /rounds run", ROUND_PHASES), (DELIVERY, (DELIVERY,))]
        for label, names in rows:
            figures = run.figures(*names)
            seconds = sum(run.phase_seconds.get(name, 0.0) for name in names)
            stall = max(run.loop_stall.get(name, 0.0) for name in names)
            collector = max(run.collector.get(name, 0.0) for name in names)
            shown = label
            notes = [f"{figures.unanswered} unanswered"] if figures.unanswered else []
            if figures.without_suggestions:
                notes.append(f"{figures.without_suggestions} answered without suggestions")
            print(f"  {shown:<34}{'' if label == IDLE else f'{seconds:.1f} s':>8}{figures.sent:>6}"
                  f"{_ms(figures.median):>9}{_ms(figures.p99):>9}{_ms(figures.worst):>9}{_ms(stall):>12}"
                  f"{_ms(collector):>11}" + (f"  ({'; '.join(notes)})" if notes else ""))
        for name, while_ in ((PLAN, "the worker made the round"), (DELIVERY, "the delivery began")):
            slowest = sorted((s for s in run.samples if s.phase == name),
                             key=lambda s: math.inf if s.latency is None else s.latency, reverse=True)[:3]
            if slowest:
                print(f"  the slowest sent while {while_}: " + ", ".join(
                    f"{_ms(math.inf if s.latency is None else s.latency)} (sent {s.before_end:.2f} s before it "
                    "ended)" for s in slowest))
        for names, what in ((ROUND_PHASES, f"from /rounds run to its answer, a {run.members:,}-member round"),
                            ((PLAN,), f"while the worker reads, plans and stores a {run.members:,}-member round"),
                            ((DELIVERY,), f"while a {run.members:,}-member round's delivery begins")):
            figures = run.figures(*names)
            passed = figures.sent > 0 and figures.p99 <= TARGET_P99
            checks.append((f"/match suggest p99 <= {TARGET_P99 * 1e3:.0f} ms {what}, {run.label} "
                           f"({_ms(figures.p99)}, {figures.sent} sent)", passed))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    checks = report(asyncio.run(suggest_during_round(args.members, args.seed)))
    print()
    for what, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {what}")


if __name__ == "__main__":   # not when the round worker, spawned, imports this module again
    main()
