"""Benchmark of a round's delivery on Discord as it is: the real bot, in this process, against the fake Discord
with per-route buckets and the global limit shaped like Discord's.

    python bench/delivery.py [--members 2000] [--active-threads 300] [--thread-bucket 10/2] [--no-baseline]
                             [--quick]

One server of ``--members`` members who joined rounds (profiles seeded straight into the database, see
tests/seeding.py), ``--active-threads`` threads already active in it, so the round has room for
1000 - 25 - that many threads and introduces the other groups by DM. A second server has its welcome channel
set; a member joins it while the first server's groups go out by thread, and another while they go by DM.
See bench/README.md for what is measured and how the least time is worked out.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.matching.model import THREAD_JOB
from playground.clock import FakeClock
from playground.fakediscord import Call, Channel, ChannelType, FakeDiscord, Member
from tests.e2e.conftest import BotRunner, World, ask, build_world, use_channel
from tests.e2e.test_delivery import DM_MARKER
from tests.e2e.test_fairness import DISCORD_LIMITS, GLOBAL_PER_SECOND, THREADS, Limit, limit_like_discord
from tests.e2e.test_matching import humans_in
from tests.seeding import people, seed_community

RATIO_TARGET = 0.8        # least time the buckets allow / wall time
WELCOME_TARGET = 5.0      # seconds another server's welcome may wait
FREE_ROUTES = re.compile(r"/(interactions|webhooks)/")   # no bot token: outside the global limit, as on Discord
CHANNEL = re.compile(r"/channels/(\d+)")
SAMPLE_SECONDS = 0.02


@dataclass
class CallClock:
    """When each call reached the fake, to within ``SAMPLE_SECONDS``: the fake records calls, not their times,
    so a task notes how many there are, every ``SAMPLE_SECONDS``."""

    server: FakeDiscord
    samples: list[tuple[float, int]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.samples.append((time.perf_counter(), len(self.server.calls)))

    async def _sample(self) -> None:
        while True:
            self.samples.append((time.perf_counter(), len(self.server.calls)))
            await asyncio.sleep(SAMPLE_SECONDS)

    def time_of(self, index: int) -> float:
        """The first sample that saw call ``index``."""
        low, high = 0, len(self.samples) - 1
        while low < high:
            middle = (low + high) // 2
            if self.samples[middle][1] > index:
                high = middle
            else:
                low = middle + 1
        return self.samples[low][0]


@dataclass
class Welcome:
    when: str
    waited: float | None = None


@dataclass
class Run:
    name: str
    members: int
    groups: int = 0
    seed_seconds: float = 0.0
    plan_seconds: float = 0.0
    wall: float = 0.0
    least: float = 0.0
    least_by: str = "-"
    bounds: dict[str, float] = field(default_factory=dict)
    reached: int = 0
    reached_twice: int = 0
    by_thread: int = 0
    by_dm: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    limited: Counter[str] = field(default_factory=Counter)
    phases: dict[str, tuple[float, int]] = field(default_factory=dict)
    welcomes: list[Welcome] = field(default_factory=list)
    unhandled: int = 0
    failed_jobs: int = 0

    @property
    def ratio(self) -> float:
        return self.least / self.wall if self.wall else 0.0

    @property
    def delivery_calls(self) -> int:
        return sum(n for kind, n in self.calls.items() if kind not in ("welcome", "progress (webhook)"))


def parse_bucket(text: str) -> tuple[int, float]:
    count, seconds = text.split("/")
    return int(count), float(seconds)


def least_span(calls: int, limit: int, per_seconds: float) -> float:
    """The shortest time from a bucket's first call to its last: the fake's windows open with a bucket's first
    call, so the k-th call (from 0) comes ``floor(k / limit)`` windows after it at the earliest."""
    return 0.0 if calls <= 1 else (calls - 1) // limit * per_seconds


async def one_round(args: argparse.Namespace, *, limited: bool) -> Run:
    run = Run("Discord-like limits" if limited else "no limits (baseline)", args.members)
    server = FakeDiscord()
    await server.start()
    clock = FakeClock()
    try:
        with server.pointed_at(), tempfile.TemporaryDirectory() as folder:
            world = build_world(server)
            members = [server.add_member(world.guild, f"m{n:05d}") for n in range(args.members)]
            server.add_threads(world.guild.channel_named("general"), args.active_threads, name="chat")
            other_welcome = server.add_channel(world.other, "welcome")
            database = Path(folder) / "kakehashi.db"
            started = time.perf_counter()
            await seed_community(database, world.guild.id, people(members, seed=args.seed), now=clock.now())
            run.seed_seconds = time.perf_counter() - started
            runner = BotRunner(server, database, clock)
            await runner.start()
            try:
                await deliver(args, run, server, world, members, other_welcome, runner, limited=limited)
            finally:
                run.unhandled = len(server.unhandled_calls())
                await runner.stop()
    finally:
        await server.stop()
    return run


async def deliver(args: argparse.Namespace, run: Run, server: FakeDiscord, world: World, members: list[Member],
                  other_welcome: Channel, runner: BotRunner, *, limited: bool) -> None:
    bot = runner.bot
    assert bot is not None
    matches = await use_channel(server, world, "matches", "matches")
    log_channel = await use_channel(server, world, "log", "mod-log")
    await ask(server, world.other_admin, "config channel", purpose="welcome", channel=other_welcome)
    server.expected_pings.update(m.id for m in members)
    limits: tuple[Limit, ...] = DISCORD_LIMITS
    if limited:
        count, seconds = args.thread_bucket
        limits = tuple(replace(THREADS, limit=count, per_seconds=seconds) if rule is THREADS else rule
                       for rule in DISCORD_LIMITS)
        limit_like_discord(server, limits, GLOBAL_PER_SECOND)
    clock = CallClock(server)
    clock.start()
    first = len(server.calls)
    sent = time.perf_counter()
    answer = await ask(server, world.admin, "rounds run")
    latest = await bot.matching.store.latest_round(world.guild.id)
    assert latest is not None, answer.text
    round_id = latest.id

    welcomes = asyncio.create_task(welcome_twice(run, server, world, other_welcome, first, matches.id))
    try:
        while not (progress := await bot.matching.progress(round_id)).finished:
            await asyncio.sleep(0.25)
            if time.perf_counter() - sent > args.timeout:
                print(f"  ! gave up after {args.timeout:.0f} s: {progress.done:,} of {progress.groups:,} groups done")
                break
        await asyncio.sleep(1.0)   # anything sent twice would come now
    finally:
        if not welcomes.done():
            await asyncio.wait([welcomes], timeout=WELCOME_TARGET + 5)
        welcomes.cancel()
        await clock.stop()
    run.groups = progress.groups
    run.failed_jobs = sum(1 for job in await bot.outbox.store.open_jobs(world.guild.id, THREAD_JOB)
                          if job.last_error is not None)
    tally(run, server, world, matches.id, log_channel.id, other_welcome, members, first, clock, limits, limited,
          sent)


class Attempts:
    """How many ``method`` calls matching ``pattern`` the fake has received since call ``first``, counted as they
    come (a predicate of ``wait_until`` runs on every call the fake serves)."""

    def __init__(self, server: FakeDiscord, method: str, pattern: str, first: int) -> None:
        self.server, self.method, self.regex = server, method, re.compile(pattern)
        self.seen, self.count = first, 0

    def __call__(self) -> int:
        calls = self.server.calls
        for call in calls[self.seen:]:
            if call.method == self.method and self.regex.fullmatch(call.path):
                self.count += 1
        self.seen = len(calls)
        return self.count


async def welcome_twice(run: Run, server: FakeDiscord, world: World, channel: Channel, first: int,
                        matches_id: int) -> None:
    """A member joins the other server once 50 of the round's threads were asked for, another once 50 DMs
    were opened; how long each waited for their welcome (from the join to the fake receiving the message)."""
    loop = asyncio.get_running_loop()
    for when, method, pattern in (("while threads are started", "POST", rf"/channels/{matches_id}/threads"),
                                  ("while DMs are sent", "POST", r"/users/@me/channels")):
        welcome = Welcome(when)
        run.welcomes.append(welcome)
        attempts = Attempts(server, method, pattern, first)
        await server.wait_until(lambda a=attempts: a() >= 50, 3600, when)  # type: ignore[misc]

        def greeted() -> int:
            return sum(1 for m in server.channel_messages(channel) if m.author.id == server.bot_user.id)

        before = greeted()
        joined = loop.time()
        newcomer = await server.member_join(world.other, f"newcomer {len(run.welcomes)}")
        server.expected_pings.add(newcomer.id)
        await server.wait_until(lambda b=before: greeted() > b, 60, "the welcome")  # type: ignore[misc]
        welcome.waited = loop.time() - joined


def kind_of(call: Call, threads: set[int], dms: set[int], matches: int, log: int, welcome: int) -> str:
    if FREE_ROUTES.search(call.path):
        return "progress (webhook)" if "/webhooks/" in call.path else "interaction"
    found = CHANNEL.match(call.path)
    channel = int(found[1]) if found else None
    if call.path == "/users/@me/channels":
        return "open DM"
    if call.path.endswith("/threads/active"):
        return "active threads"
    if channel == matches and call.path.endswith("/threads"):
        return "start thread"
    if channel in threads:
        if "/thread-members/" in call.path:
            return "add to thread"
        return f"thread {call.method} messages" if call.path.endswith("/messages") else f"thread {call.method}"
    if channel in dms:
        return f"DM {call.method} messages" if call.path.endswith("/messages") else f"DM {call.method}"
    if channel == log:
        return "log channel"
    if channel == welcome:
        return "welcome"
    return f"other {call.method} {call.path}"


def tally(run: Run, server: FakeDiscord, world: World, matches: int, log: int, welcome_channel: Channel,
          members: list[Member], first: int, clock: CallClock, limits: tuple[Limit, ...], limited: bool,
          sent: float) -> None:
    bot_id = server.bot_user.id
    threads = {c.id for c in server.threads(server.channels[matches]) if c.type == ChannelType.PRIVATE_THREAD}
    dms = {c.id for c in server.channels.values() if c.type == ChannelType.DM}
    welcome = welcome_channel.id
    posted: set[int] = set()
    dm_groups: dict[int, set[int]] = defaultdict(set)
    for message in server.messages.values():
        if message.author.id != bot_id or message.deleted or message.ephemeral:
            continue
        if message.channel.id in threads:
            posted.add(message.channel.id)
        elif message.channel.type == ChannelType.DM:
            marker = DM_MARKER.search(message.content)
            if marker:
                dm_groups[int(marker[1])].add(message.channel.recipients[0].id)
    ways: dict[int, int] = Counter()
    for thread_id in posted:
        for user_id in humans_in(server, server.channels[thread_id]):
            ways[user_id] += 1
    for users in dm_groups.values():
        for user_id in users:
            ways[user_id] += 1
    everyone = {m.id for m in members}
    run.reached = sum(1 for user_id in everyone if ways.get(user_id, 0) >= 1)
    run.reached_twice = sum(1 for user_id in everyone if ways.get(user_id, 0) > 1)
    run.by_thread, run.by_dm = len(posted), len(dm_groups)

    calls = server.calls[first:]
    kinds = [kind_of(call, threads, dms, matches, log, welcome) for call in calls]
    delivery = [i for i, kind in enumerate(kinds)
                if kind not in ("interaction", "progress (webhook)", "welcome", "log channel")]
    for call, kind in zip(calls, kinds, strict=True):
        if call.status == 429:
            run.limited[kind] += 1
        else:
            run.calls[kind] += 1
    if not delivery:
        return
    start, end = delivery[0], delivery[-1]
    began, ended = clock.time_of(first + start), clock.time_of(first + end)
    run.plan_seconds = began - sent
    run.wall = ended - began
    for label, names in (("threads", {"start thread", "add to thread", "thread GET messages", "thread POST messages"}),
                         ("DMs", {"open DM", "DM POST messages"})):
        indices = [i for i, kind in enumerate(kinds) if kind in names]
        if indices:
            run.phases[label] = (clock.time_of(first + indices[-1]) - clock.time_of(first + indices[0]),
                                 sum(1 for i in indices if calls[i].status != 429))
    if not limited:
        return
    # The least time the buckets allow for the calls the delivery made (those Discord carried out), from its
    # first call to its last: each bucket's span, and the global limit's over every call with the bot's token.
    window = [call for call in calls[start:end + 1] if call.status != 429]
    buckets: Counter[tuple[str, str]] = Counter()
    for call in window:
        rule = next((r for r in limits if r.method == call.method and re.fullmatch(r.pattern, call.path)), None)
        found = CHANNEL.match(call.path)
        if rule is not None and found:
            buckets[(rule.pattern, found[1])] += 1
    by_rule: dict[str, float] = {}
    for (pattern, _channel), n in buckets.items():
        rule = next(r for r in limits if r.pattern == pattern)
        name = f"{rule.method} {rule.pattern} ({rule.limit}/{rule.per_seconds:g} s)"
        by_rule[name] = max(by_rule.get(name, 0.0), least_span(n, rule.limit, rule.per_seconds))
    tokened = sum(1 for call in window if not FREE_ROUTES.search(call.path))
    by_rule[f"global ({GLOBAL_PER_SECOND}/s, {tokened:,} calls)"] = least_span(tokened, GLOBAL_PER_SECOND, 1.0)
    run.bounds = by_rule
    run.least_by, run.least = max(by_rule.items(), key=lambda item: item[1])


def report(runs: list[Run], args: argparse.Namespace) -> None:
    checks: list[tuple[str, bool]] = []
    for run in runs:
        print(f"\n{run.name}: {run.members:,} members, {args.active_threads} threads active before the round")
        print(f"  seeded in {run.seed_seconds:.1f} s; /rounds run to the first delivery call {run.plan_seconds:.1f} s")
        print(f"  groups {run.groups:,}: {run.by_thread:,} by thread, {run.by_dm:,} by DM (counted from what the "
              f"fake received); members reached {run.reached:,}/{run.members:,}, more than once {run.reached_twice}")
        per_group = run.delivery_calls / max(1, run.groups)
        print(f"  delivery calls {run.delivery_calls:,} ({per_group:.2f} a group); 429s received "
              f"{sum(run.limited.values()):,}; unhandled {run.unhandled}; group jobs failed {run.failed_jobs}")
        for kind, n in sorted(run.calls.items(), key=lambda item: -item[1]):
            limited = run.limited.get(kind, 0)
            print(f"    {kind:<22}{n:>7,}" + (f"   429: {limited:,}" if limited else ""))
        for kind, n in run.limited.items():
            if kind not in run.calls:
                print(f"    {kind:<22}{0:>7,}   429: {n:,}")
        for label, (seconds, n) in run.phases.items():
            print(f"  {label} phase: {n:,} calls in {seconds:.1f} s ({n / seconds if seconds else 0:.0f} calls/s)")
        print(f"  delivery wall time {run.wall:.1f} s (first delivery call to last)")
        if run.bounds:
            for name, seconds in sorted(run.bounds.items(), key=lambda item: -item[1]):
                print(f"    least time by {name}: {seconds:.1f} s")
            print(f"  least time {run.least:.1f} s ({run.least_by}); least / wall = {run.ratio:.2f}")
        for welcome in run.welcomes:
            shown = "never came" if welcome.waited is None else f"{welcome.waited:.2f} s"
            print(f"  the other server's welcome, {welcome.when}: waited {shown}")
        if run.name.startswith("no limits"):
            continue
        checks.append((f"every member reached ({run.reached:,}/{run.members:,})", run.reached == run.members))
        checks.append((f"nobody reached twice ({run.reached_twice})", run.reached_twice == 0))
        checks.append((f"{run.members // 2:,} groups ({run.groups:,})", run.groups == run.members // 2))
        checks.append((f"least time / wall time >= {RATIO_TARGET:.0%} ({run.least:.1f} / {run.wall:.1f} s = "
                       f"{run.ratio:.2f})", run.ratio >= RATIO_TARGET))
        for welcome in run.welcomes:
            checks.append((f"welcome {welcome.when} <= {WELCOME_TARGET:.0f} s "
                           f"({'never' if welcome.waited is None else f'{welcome.waited:.2f} s'})",
                           welcome.waited is not None and welcome.waited <= WELCOME_TARGET))
        checks.append((f"no call the fake does not know ({run.unhandled})", run.unhandled == 0))
    if len(runs) == 2 and runs[1].wall:
        bounded, free = runs
        print(f"\nwall time with limits / without: {bounded.wall:.1f} / {free.wall:.1f} s = "
              f"{bounded.wall / free.wall:.1f}x; the bot's own pace without limits "
              f"{free.delivery_calls / free.wall:.0f} calls/s")
    print()
    for what, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--active-threads", type=int, default=300)
    parser.add_argument("--thread-bucket", type=parse_bucket, default=(THREADS.limit, THREADS.per_seconds),
                        help="threads started per channel: COUNT/SECONDS (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up on a round after this many seconds")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without rate limits")
    parser.add_argument("--quick", action="store_true", help="400 members, 850 threads active: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.members, args.active_threads = 400, 850
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    # discord.py warns of every 429 it sleeps out; the bench counts them from what the fake answered instead.
    logging.getLogger("discord.http").setLevel(logging.ERROR)
    runs = [asyncio.run(one_round(args, limited=True))]
    if not args.no_baseline:
        runs.append(asyncio.run(one_round(args, limited=False)))
    report(runs, args)


if __name__ == "__main__":
    main()
