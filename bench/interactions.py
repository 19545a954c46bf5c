"""Issue 18, part 3: the real bot, in a process of its own, answering members through the fake Discord's gateway
with 20,000 and 100,000 stored profiles: how long from its start to its first answer, how much memory it holds,
and how fast it answers ``/intro show``, ``/match suggest`` and a button press, sampled every 100 ms from its start
to the delivery of a round.

    python bench/interactions.py [--sizes 20000,100000] [--quick] [--seed N] [--idle S] [--delivery S]

For each size N: one server of N members with bench/matching.py's synthetic profiles, all joined to rounds (seeded
straight into a SQLite database in a temporary folder with tests/seeding.py, as bench/interactions_during_round.py
does), all present in the fake Discord's guild (in this process, on 127.0.0.1). The bot runs unmodified as
``python -m playground.launch run`` (``python -m bot`` with discord.py pointed at the fake), its settings in its
environment (DISCORD_TOKEN, DATABASE_PATH, LOG_LEVEL), in a process of its own; the bench only watches it from
outside: what the fake receives, and /proc.

1. The bot's earlier run on that server: an admin points the matches, introductions and log channels at theirs
   (``/config channel``) and a few members ask for suggestions; then the bot stops (SIGTERM). The "Request intro"
   buttons under those suggestions are the buttons pressed later: a message that outlived the process, as after
   any restart.
2. The measured run, a new bot process on that database. From its spawn, a member picked at random sends one
   interaction every 100 ms on a fixed grid, in turn ``/intro show`` (of another member picked at random),
   ``/match suggest`` (a member open to introductions who speaks Japanese or English, so that the answer is the
   whole path to suggestions) and a press of a "Request intro" button of the earlier run (by the member it was
   shown to; the bot checks the rule and answers with the request's form, a modal, or says why not). An
   interaction can only be delivered once the bot's gateway session is up: from the moment the fake has sent
   READY and the server's GUILD_CREATE on the new bot's session. Those that came due before are sent at that
   moment, and their latency counts from it.

A latency runs from the moment the interaction was due (its slot on the grid, or the session's moment for those
held) to the fake receiving its answer: the message after a defer, the modal for a button. Answers are noted as
the fake receives them (a dict entry each), so that nothing is awaited per interaction. An interaction the bot
does not acknowledge within Discord's 3 s is refused by the fake as Discord would: it stays unanswered.

The phases, one after the other, each interaction counted in the one it was due in: *start* (from the spawn to
the first answer, of any kind); *the first /match suggest* (from that first answer until the answer to the first
``/match suggest`` sent, one of those held for the session, passing over one the bot let expire; on the bot of
today it builds the server's suggestion index, and the suggestions after it wait for it); *idle* (``--idle``
seconds more); */rounds run* (an admin's, from sending it until its answer: the round is planned); *the round
delivered* (from that answer, ``--delivery`` seconds or until the bot posts the round's summary in the log
channel, whichever comes first). Then the interactions still unanswered get 30 s more, and the bot is stopped.

Memory: the resident set (VmRSS) of the bot's process and, apart, of the processes it started (the round worker
and multiprocessing's resource tracker), read from /proc every 250 ms; the bot's peak is the kernel's (VmHWM).

The fake sends a large server (over 250 members) as Discord does: its GUILD_CREATE without the members, who follow
in chunks of 1,000 when discord.py asks for them, other events (interactions included) in between. The fake's
making READY and GUILD_CREATE is in "start to first answer" (in no latency: the session is not up yet); the bot's
reading them is in that and in the start phase's latencies; the two are printed apart.

About 2 minutes for both sizes on two cores (``--quick``: 2,000 members, about 15 s). See bench/README.md for what
the figures mean and the last ones measured.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gc
import itertools
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.interactions_during_round import Figures, Sample, TimedDiscord, cache_kernels, people_like_the_bench
from playground.fakediscord import Member, Message
from playground.fakediscord.server import INTERACTION_DEADLINE, Connection, Interaction
from tests.e2e.conftest import World, build_world, use_channel
from tests.seeding import seed_community

ROOT = Path(__file__).resolve().parent.parent

SIZES = (20_000, 100_000)
QUICK_SIZE = 2_000
TARGET_SIZE = 100_000      # the targets are at this size; the others are shown for reference
TARGET_MAX = 0.250         # seconds: the longest answer, in every phase
TARGET_P99 = 0.050         # seconds: the p99 (nearest rank), in every phase
TARGET_START = 3.0         # seconds: from the spawn to the first answer
TARGET_RSS = 300 * 10**6   # bytes (300 MB): the bot's process at its peak

SAVED_BEFORE = timedelta(days=1)   # the profiles' age when the earlier run starts
INTERVAL = 0.1             # seconds between two interactions on the grid
IDLE_SECONDS = 10.0
DELIVERY_SECONDS = 25.0
EARLIER_ASKERS = 20        # members who asked for suggestions in the earlier run (their buttons are pressed)
START_TIMEOUT = 300.0      # seconds the bot may take to answer at all
ANSWER_TIMEOUT = 600.0     # seconds the first /match suggest and /rounds run may take
SETTLE_SECONDS = 30.0      # how long the answers still in flight are waited for once the sampler stopped
STOP_SECONDS = 30.0        # how long the bot may take to stop after SIGTERM before it is killed
RSS_EVERY = 0.25           # seconds between two reads of the processes' memory
CHILDREN_EVERY = 1.0       # seconds between two looks for the bot's child processes
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TICK = 0.01                # the bench's own event loop is timed with a ticker this often
FREEZE_EVERY = 1.0         # seconds between two gc.freeze() of the bench's heap (see ticker)
STALL = 0.005              # a tick later than this is kept as a stall of the bench's loop

INTRO_SHOW, SUGGEST, BUTTON = "/intro show", "/match suggest", "Request intro"
KINDS = (INTRO_SHOW, SUGGEST, BUTTON)
START, FIRST_SUGGEST, IDLE, ROUND, DELIVERY = (
    "start", "the first /match suggest", "idle", "/rounds run", "the round delivered")
PHASES = (START, FIRST_SUGGEST, IDLE, ROUND, DELIVERY)
AFTER = "after"            # due once the delivery's window closed: not counted

IDS = re.compile(r"/[0-9]+(?=/|$)")
TOKENS = re.compile(r"/itoken\.[^/]+")
ROUND_LINE = re.compile(r"\bRound [0-9]+ (?:of|in) guild [0-9]+: .*")   # the bot's log lines about a round
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ---------------------------------------------------------------------------------------------- the fake Discord


class GatewayDiscord(TimedDiscord):
    """The fake Discord, noting besides the answers (``TimedDiscord``): a modal as the answer it is, when the bot's
    session was identified and when it was up (READY and the server's GUILD_CREATE sent on it: from then on an
    interaction can be delivered), and when the bot posted an embed in the log channel (a round's summary)."""

    def __init__(self) -> None:
        super().__init__()
        self.modals: set[int] = set()
        self.log_channel_id = 0
        self.new_life()

    def new_life(self) -> None:
        """Forget the previous bot process's session: the next IDENTIFY is a new bot's."""
        self.identified_at: float | None = None
        self.up_at: float | None = None
        self.on_identify: list[Callable[[], None]] = []
        self.on_up: list[Callable[[], None]] = []
        self.summaries: list[float] = []

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> None:
        first = self.identified_at is None
        if first:
            self.identified_at = time.perf_counter()
            for call in self.on_identify:
                call()
        await super()._identify(connection, data)
        session = self.session
        if first and session is not None and session.connection is connection:
            self.up_at = time.perf_counter()
            for call in self.on_up:
                call()

    def _note(self, interaction: Interaction) -> None:
        if interaction.modal_data is not None and interaction.id not in self.answered:
            self.answered[interaction.id] = (time.perf_counter(), False)
            self.modals.add(interaction.id)
            return
        super()._note(interaction)

    async def _post_message(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        result = await super()._post_message(request, match, body)
        if int(match["channel"]) == self.log_channel_id and isinstance(body, dict) and body.get("embeds"):
            self.summaries.append(time.perf_counter())
        return result

    def dead(self, interaction_id: int) -> bool:
        """Never to be answered: not acknowledged within Discord's deadline (the fake refuses a later one)."""
        interaction = self.interactions[interaction_id]
        age = asyncio.get_running_loop().time() - interaction.created_monotonic
        return not interaction.answered and age > INTERACTION_DEADLINE + 0.5


# ---------------------------------------------------------------------------------------------- the bot's process


def proc_status(pid: int) -> tuple[int, int]:
    """A process's resident set and its peak (VmRSS, VmHWM), in bytes; zeros once it is gone."""
    rss = peak = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return rss, peak


def proc_cpu(pid: int) -> tuple[float, float]:
    """A process's CPU seconds (user and system), and those of its children it has reaped; zeros once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    # utime, stime, cutime, cstime: the 14th to 17th fields, counted after the command's closing parenthesis.
    utime, stime, cutime, cstime = (int(value) / CLOCK_TICKS for value in fields[11:15])
    return utime + stime, cutime + cstime


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children…), from /proc."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    waiting = [pid]
    while waiting:
        children = parents.get(waiting.pop(), [])
        found += children
        waiting += children
    return found


# The process groups of bot processes running now: killed at the bench's exit, whatever ended it (an exception the
# finally blocks did not see through, SIGINT or SIGTERM), so that no bot is left reconnecting to a fake that is gone.
_RUNNING: set[int] = set()


def _kill_running() -> None:
    for group in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    _RUNNING.clear()


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")   # asyncio.run then cancels the tasks, and their finally blocks run


class BotProcess:
    """``python -m playground.launch run``: the bot's own entry point, with discord.py pointed at the fake, in a
    process group of its own (so that whatever it starts is stopped with it), its output in ``log_path``."""

    def __init__(self, server: GatewayDiscord, database: Path, folder: Path, log_path: Path) -> None:
        self.server = server
        self.database = database
        self.folder = folder
        self.log_path = log_path
        self.spawned_at = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def spawn(self) -> None:
        env = {**os.environ,
               "FAKE_DISCORD_REST": self.server.rest_url, "FAKE_DISCORD_GATEWAY": self.server.gateway_url,
               "DISCORD_TOKEN": self.server.token, "DATABASE_PATH": str(self.database), "LOG_LEVEL": "INFO",
               # Set empty, so that neither the bench's environment nor a .env changes what is measured.
               "DATABASE_URL": "", "DEV_GUILD_ID": "", "SHARD_COUNT": "", "SHARD_IDS": ""}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        # The working directory is the temporary folder: the repository's .env, if any, is not read.
        self._process = subprocess.Popen([sys.executable, "-m", "playground.launch", "run"], cwd=self.folder,
                                         env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        _RUNNING.add(self._process.pid)
        self.spawned_at = time.perf_counter()

    def exited(self) -> bool:
        """Whether the bot's process ended (left unreaped, so that its process group can still be found)."""
        if self._process is None:
            return True
        return os.waitid(os.P_PID, self._process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    def check(self, waiting_for: str) -> None:
        if self.exited():
            raise RuntimeError(f"the bot's process ended while the bench waited for {waiting_for}; "
                               f"its output: {self.log_path}")

    async def stop(self) -> None:
        """SIGTERM (the bot closes as it does in production), then SIGKILL to its whole process group: the bot if
        it did not stop within STOP_SECONDS, and anything it started that outlived it."""
        process = self._process
        if process is None:
            return
        try:
            if not self.exited():
                process.send_signal(signal.SIGTERM)
                # Waited for in a thread, unreaped; past the deadline the thread ends with the SIGKILL below.
                ended = asyncio.to_thread(os.waitid, os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended, STOP_SECONDS)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            _RUNNING.discard(process.pid)
            process.wait()
            if self._log is not None:
                self._log.close()
            self._process = None


async def until(bot: BotProcess, condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Wait for ``condition`` (checked at least every 20 ms), failing at once if the bot's process ended."""
    def done() -> bool:
        bot.check(what)
        return condition()

    await bot.server.wait_until(done, seconds, what)


def answer_to(server: GatewayDiscord, interaction_id: int) -> Callable[[], bool]:
    return lambda: interaction_id in server.answered


# ---------------------------------------------------------------------------------------------- memory


@dataclass
class Reading:
    moment: str
    at: float        # perf_counter
    bot: int         # bytes
    children: int    # bytes, all the bot's descendants together
    processes: int   # how many they are
    bot_cpu: float = 0.0        # CPU seconds since its start
    children_cpu: float = 0.0   # the descendants' (those alive, and those the bot reaped)
    bench_cpu: float = 0.0      # this process's: the fake Discord and the bench


class MemoryWatch:
    """The bot's and its descendants' resident memory, every RSS_EVERY while ``run`` runs, and at named moments."""

    def __init__(self, bot: BotProcess) -> None:
        self.bot = bot
        self.marks: list[Reading] = []
        self.bot_peak = 0        # VmHWM: the kernel's own peak of the bot's process
        self.children_peak = 0   # the largest sum of the descendants' RSS seen
        self.together_peak = 0   # the largest bot + descendants seen at one reading
        self._children: list[int] = []
        self._looked = -math.inf

    def read(self, moment: str = "") -> Reading:
        now = time.perf_counter()
        if now - self._looked >= CHILDREN_EVERY:
            self._children, self._looked = descendants(self.bot.pid), now
        rss, peak = proc_status(self.bot.pid)
        sizes = [proc_status(child)[0] for child in self._children]
        children = sum(sizes)
        self.bot_peak = max(self.bot_peak, peak)
        self.children_peak = max(self.children_peak, children)
        self.together_peak = max(self.together_peak, rss + children)
        return Reading(moment, now, rss, children, sum(1 for size in sizes if size))

    def mark(self, moment: str) -> None:
        self._looked = -math.inf   # a child started meanwhile (the round worker) counts at once
        reading = self.read(moment)
        reading.bot_cpu, reaped = proc_cpu(self.bot.pid)
        reading.children_cpu = reaped + sum(proc_cpu(child)[0] for child in self._children)
        reading.bench_cpu = time.process_time()
        self.marks.append(reading)

    async def run(self) -> None:
        while True:
            self.read()
            await asyncio.sleep(RSS_EVERY)


# ---------------------------------------------------------------------------------------------- the sampler


@dataclass
class Probe(Sample):
    """One interaction of the sampler. ``due`` (what its latency counts from) is its slot on the grid, or the moment
    the bot's session was up when the slot came before it (``held``)."""

    kind: str = ""
    slot: float = 0.0
    held: bool = False
    failed: str = ""          # the fake could not send it: why
    answer: str = ""          # "modal", "embed" or "message"

    @property
    def sent_ok(self) -> bool:
        return self.interaction_id != 0


@dataclass(frozen=True)
class Button:
    member: Member            # whom the message was shown to (an ephemeral answer): who presses it
    message: Message
    custom_id: str


class Sampler:
    """One interaction every INTERVAL from ``start`` on a fixed grid, the kinds in turn, each sent in a task of its
    own (one held up does not hold up the next). Slots due before the bot's session is up wait for it."""

    def __init__(self, server: GatewayDiscord, members: Sequence[Member], askers: Sequence[Member],
                 buttons: Sequence[Button], rng: random.Random) -> None:
        self.server = server
        self.members = members
        self.askers = askers
        self.buttons = buttons
        self.rng = rng
        self.probes: list[Probe] = []
        self._held: list[Probe] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        server.on_up.append(self._release)

    def start(self, at: float) -> None:
        self._task = asyncio.create_task(self._run(at))

    async def _run(self, start: float) -> None:
        kinds = itertools.cycle(KINDS)
        for k in itertools.count():
            slot = start + k * INTERVAL
            await asyncio.sleep(max(0.0, slot - time.perf_counter()))
            probe = Probe(slot, "", kind=next(kinds), slot=slot)
            self.probes.append(probe)
            if self.server.up_at is None:
                probe.held = True
                self._held.append(probe)
            else:
                self._send(probe)

    def _release(self) -> None:
        """The session is up: the slots that came due before are sent now, and count from now."""
        assert self.server.up_at is not None
        for probe in self._held:
            probe.due = self.server.up_at
            self._send(probe)
        self._held.clear()

    def _send(self, probe: Probe) -> None:
        task = asyncio.create_task(self._interact(probe))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _interact(self, probe: Probe) -> None:
        try:
            if probe.kind == INTRO_SHOW:
                asker, shown = self.rng.sample(self.members, 2)
                interaction = await self.server.slash(asker, "intro show", member=shown)
            elif probe.kind == SUGGEST:
                interaction = await self.server.slash(self.rng.choice(self.askers), "match suggest")
            else:
                button = self.rng.choice(self.buttons)
                interaction = await self.server.click(button.member, button.message, button.custom_id)
            probe.interaction_id = interaction.id
        except Exception as exc:   # counted as unanswered, with the reason printed
            probe.failed = f"{type(exc).__name__}: {exc}"

    def answered(self) -> bool:
        return any(p.interaction_id in self.server.answered for p in self.probes)

    def first_suggest(self) -> Probe | None:
        """The first /match suggest sent that is answered or may still be (one the fake could not send, or that
        was not acknowledged in time, is passed over); None while none was sent."""
        for probe in self.probes:
            if probe.kind != SUGGEST or probe.failed:
                continue
            if not probe.sent_ok:
                return None   # held, or being sent
            if probe.interaction_id in self.server.answered or not self.server.dead(probe.interaction_id):
                return probe
        return None

    def first_suggest_answered(self) -> bool:
        first = self.first_suggest()
        return first is not None and first.interaction_id in self.server.answered

    def settled(self) -> bool:
        """Every interaction sent has its answer, or never will (not acknowledged in time)."""
        return all(p.interaction_id in self.server.answered or self.server.dead(p.interaction_id)
                   for p in self.probes if p.sent_ok)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._pending, return_exceptions=True)


# ---------------------------------------------------------------------------------------------- one size


@dataclass
class Run:
    size: int
    setup_seconds: float = 0.0
    seed_seconds: float = 0.0
    earlier_seconds: float = 0.0
    buttons: int = 0
    # perf_counter moments of the measured run
    spawned: float = 0.0
    identified: float = math.nan
    up: float = math.nan
    first_answer: float = math.nan
    first_answer_kind: str = ""
    first_suggest_sent: float = math.nan
    first_suggest_answered: float = math.nan
    rounds_sent: float = math.nan
    rounds_answered: float = math.nan
    delivery_end: float = math.nan
    delivery_finished: bool = False   # the bot posted the round's summary within the window
    round_answer: str = ""
    notes: list[str] = field(default_factory=list)   # the bot's log lines about the round
    delivery_calls: dict[str, int] = field(default_factory=dict)
    probes: list[Probe] = field(default_factory=list)
    stalls: list[tuple[float, float]] = field(default_factory=list)   # the bench's loop: (start, seconds late)
    memory: list[Reading] = field(default_factory=list)
    bot_peak: int = 0
    children_peak: int = 0
    together_peak: int = 0
    log_paths: tuple[Path, Path] | None = None

    def since_spawn(self, moment: float) -> float:
        return moment - self.spawned

    @property
    def start_seconds(self) -> float:
        return self.first_answer - self.spawned

    def bounds(self) -> list[tuple[str, float]]:
        """Each phase and when it ends, in order."""
        return [(START, self.first_answer), (FIRST_SUGGEST, self.first_suggest_answered), (IDLE, self.rounds_sent),
                (ROUND, self.rounds_answered), (DELIVERY, self.delivery_end)]

    def phase_of(self, moment: float) -> str:
        for name, end in self.bounds():
            if moment < end:
                return name
        return AFTER

    def lasted(self, phase: str) -> float:
        begin = self.spawned
        for name, end in self.bounds():
            if name == phase:
                return max(0.0, end - begin)
            begin = max(begin, end)
        return math.nan

    def probes_in(self, phase: str, kind: str | None = None) -> list[Probe]:
        return [p for p in self.probes if p.phase == phase and kind in (None, p.kind)]

    def bench_stall(self, phase: str) -> float:
        """The bench's event loop's longest stall in ``phase`` once interactions could be sent (before, the fake
        making the server's GUILD_CREATE: every interaction due then waits for the session anyway)."""
        return max((late for at, late in self.stalls if at >= self.up and self.phase_of(at) == phase), default=0.0)


async def earlier_run(server: GatewayDiscord, world: World, bot: BotProcess, askers: Sequence[Member],
                      rng: random.Random) -> list[Button]:
    """The bot's earlier run on this server: its channels configured by an admin, and EARLIER_ASKERS members'
    suggestions, whose "Request intro" buttons are pressed in the measured run. Then the bot stops."""
    server.new_life()
    buttons: list[Button] = []
    try:
        bot.spawn()
        await until(bot, lambda: server.up_at is not None, START_TIMEOUT, "the earlier run's gateway session")
        for purpose, name in (("matches", "matches"), ("introductions", "introductions"), ("log", "mod-log")):
            await use_channel(server, world, purpose, name)
        for member in rng.sample(list(askers), EARLIER_ASKERS):
            asked = await server.slash(member, "match suggest")
            await until(bot, answer_to(server, asked.id), ANSWER_TIMEOUT, "a suggestion in the earlier run")
            reply = await asked.reply()
            buttons += [Button(member, reply, custom_id) for custom_id in reply.custom_ids]
    finally:
        await bot.stop()
    if not buttons:
        raise RuntimeError("no suggestion of the earlier run had a button to press")
    return buttons


async def measured_run(run: Run, server: GatewayDiscord, world: World, bot: BotProcess, members: Sequence[Member],
                       askers: Sequence[Member], buttons: Sequence[Button], rng: random.Random, *, idle: float,
                       delivery: float) -> None:
    """A new bot process on the server's database, sampled from its spawn to the end of the delivery's window."""
    server.new_life()
    memory = MemoryWatch(bot)
    server.on_identify.append(lambda: memory.mark("at IDENTIFY, before any interaction"))
    sampler = Sampler(server, members, askers, buttons, rng)
    stalls: list[tuple[float, float]] = []

    async def ticker() -> None:
        frozen = time.perf_counter()
        while True:
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            late = time.perf_counter() - before - TICK
            if late > STALL:
                stalls.append((before, late))
            if before - frozen >= FREEZE_EVERY:
                # What the fake keeps for a session's resume (every event sent: 100 member chunks of 1,000
                # after the start) piles up; out of the bench's collector, it no longer stalls the fake's loop.
                gc.freeze()
                frozen = before

    gc.collect()
    watchers: list[asyncio.Task[None]] = []
    try:
        bot.spawn()
        run.spawned = bot.spawned_at
        sampler.start(run.spawned)
        watchers += [asyncio.create_task(memory.run()), asyncio.create_task(ticker())]
        await until(bot, sampler.answered, START_TIMEOUT, "the first answer")
        memory.mark("after start (its first answer)")
        await until(bot, sampler.first_suggest_answered, ANSWER_TIMEOUT, "the answer to the first /match suggest")
        memory.mark("after the first /match suggest")
        idle_end = time.perf_counter() + idle
        await until(bot, lambda: time.perf_counter() >= idle_end, idle + 5, "the idle phase's end")
        memory.mark("idle, before /rounds run")
        run.rounds_sent = time.perf_counter()
        rounds = await server.slash(world.admin, "rounds run")
        await until(bot, answer_to(server, rounds.id), ANSWER_TIMEOUT, "the answer to /rounds run")
        run.rounds_answered = server.answered[rounds.id][0]
        memory.mark("after /rounds run's answer")
        run.round_answer = (await rounds.reply()).text.replace("\n", " ")
        calls_before = len(server.calls)
        window_end = run.rounds_answered + delivery
        await until(bot, lambda: time.perf_counter() >= window_end or bool(server.summaries), delivery + 5,
                    "the delivery's window to close")
        run.delivery_finished = bool(server.summaries) and server.summaries[0] <= window_end
        run.delivery_end = server.summaries[0] if run.delivery_finished else window_end
        await sampler.stop()
        memory.mark("at the delivery window's end")
        run.delivery_calls = count_calls(server, calls_before)
        with contextlib.suppress(AssertionError):   # what is still unanswered after that counts as unanswered
            await until(bot, sampler.settled, SETTLE_SECONDS, "the last answers")
    finally:
        await sampler.stop()
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        with contextlib.suppress(Exception):
            memory.mark("end, before SIGTERM")
        await bot.stop()
    run.notes = round_lines(bot.log_path)
    run.identified = server.identified_at or math.nan
    run.up = server.up_at or math.nan
    settle(run, server, sampler)
    run.stalls = stalls
    run.memory = memory.marks
    run.bot_peak, run.children_peak, run.together_peak = memory.bot_peak, memory.children_peak, memory.together_peak


def count_calls(server: GatewayDiscord, since: int) -> dict[str, int]:
    """The bot's REST calls since call ``since`` by route (``POST /channels/{id}/threads``), most made first, and
    how many the fake refused (status 400 and above)."""
    routes: dict[str, int] = {}
    refused = 0
    for call in server.calls[since:]:
        route = f"{call.method} {TOKENS.sub('/{token}', IDS.sub('/{id}', call.path))}"
        routes[route] = routes.get(route, 0) + 1
        refused += call.status >= 400
    counts = dict(sorted(routes.items(), key=lambda item: -item[1]))
    counts["refused"] = refused
    return counts


def round_lines(log_path: Path) -> list[str]:
    """What the bot logged about the round (its times in the worker, how its groups go): read from its output, for
    the reader; nothing measured depends on it."""
    with contextlib.suppress(OSError), open(log_path, encoding="utf-8", errors="replace") as log:
        return [found.group(0) for line in log if (found := ROUND_LINE.search(ANSI.sub("", line)))]
    return []


def settle(run: Run, server: GatewayDiscord, sampler: Sampler) -> None:
    """Each probe's latency, answer and phase; the phases' bounds from the answers the fake received."""
    probes = sampler.probes
    for probe in probes:
        server.settle(probe)
        if probe.interaction_id in server.modals:
            probe.answer = "modal"
        elif probe.latency is not None:
            probe.answer = "embed" if probe.suggested else "message"
    answered = [p for p in probes if p.latency is not None]
    if answered:
        first = min(answered, key=lambda p: p.due + (p.latency or 0.0))
        run.first_answer = first.due + (first.latency or 0.0)
        run.first_answer_kind = first.kind
    first_suggest = sampler.first_suggest()
    if first_suggest is not None and first_suggest.latency is not None:
        run.first_suggest_sent = first_suggest.due
        run.first_suggest_answered = first_suggest.due + first_suggest.latency
    for probe in probes:
        probe.phase = run.phase_of(probe.due)
    run.probes = [p for p in probes if p.phase != AFTER]


async def measure(size: int, seed: int, logs: Path, *, idle: float, delivery: float) -> Run:
    """One size: the world and the database made, the earlier run, the measured run."""
    run = Run(size)
    began = time.perf_counter()
    server = GatewayDiscord()
    await server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="kakehashi-bench-") as name:
            folder = Path(name)
            world = build_world(server)
            server.log_channel_id = world.guild.channel_named("mod-log").id
            members = [server.add_member(world.guild, f"m{n:06d}") for n in range(size)]
            database = folder / "kakehashi.db"
            seeding = time.perf_counter()
            persons = people_like_the_bench(members, seed)
            # Saved a day before: a community's profiles are not all saved the moment the bot starts, and the
            # suggestion index the earlier run stores reads afresh only those saved since (a few minutes' margin).
            await seed_community(database, world.guild.id, persons, now=datetime.now(UTC) - SAVED_BEFORE)
            run.seed_seconds = time.perf_counter() - seeding
            askers = [member for member, person in zip(members, persons, strict=True)
                      if person.open_to_intros and {"ja", "en"} & set(person.languages)]
            del persons
            # The fake's world lives to the end: the bench's collector need not walk it while the bot is timed
            # (a full collection over 100,000 members would stall the fake's event loop for a second).
            gc.collect()
            gc.freeze()
            run.setup_seconds = time.perf_counter() - began
            rng = random.Random(seed)
            earlier_log, measured_log = logs / f"bot-{size}-earlier.log", logs / f"bot-{size}-measured.log"
            run.log_paths = (earlier_log, measured_log)
            earlier = time.perf_counter()
            buttons = await earlier_run(server, world, BotProcess(server, database, folder, earlier_log), askers, rng)
            run.earlier_seconds = time.perf_counter() - earlier
            run.buttons = len(buttons)
            await measured_run(run, server, world, BotProcess(server, database, folder, measured_log), members,
                               askers, buttons, rng, idle=idle, delivery=delivery)
    finally:
        await server.stop()
        gc.unfreeze()
    return run


# ---------------------------------------------------------------------------------------------- report


def figures_of(probes: Sequence[Probe]) -> Figures:
    """Count, median, p99 (nearest rank) and largest latency, an unanswered interaction counting as infinite."""
    samples: list[Sample] = list(probes)
    return Figures.of(samples)


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if math.isinf(seconds):
        return "never"
    return f"{seconds * 1e3:,.0f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def mb(size: float) -> str:
    return f"{size / 1e6:,.0f} MB"


def at(run: Run, moment: float) -> str:
    return "-" if math.isnan(moment) else f"{run.since_spawn(moment):.2f} s"


# What an answer that is a plain message (no embed, no form) means, by kind.
PLAIN_ANSWER = {SUGGEST: "without suggestions", BUTTON: "a message, not the form", INTRO_SHOW: "without a card"}


def answers_note(probes: list[Probe], kind: str | None) -> str:
    notes: list[str] = []
    failed = [p for p in probes if p.failed]
    if failed:
        notes.append(f"{len(failed)} not sent ({failed[0].failed[:60]})")
    plain = sum(1 for p in probes if p.answer == "message")
    if plain and kind in PLAIN_ANSWER:
        notes.append(f"{plain} {PLAIN_ANSWER[kind]}")
    held = sum(1 for p in probes if p.held)
    if held:
        notes.append(f"{held} held until the session was up")
    return "; ".join(notes)


def report(run: Run) -> None:
    print(f"\n== {run.size:,} profiles ==")
    print(f"  set-up {run.setup_seconds:.1f} s (seeding {run.seed_seconds:.1f} s); the bot's earlier run "
          f"{run.earlier_seconds:.1f} s (channels configured, {EARLIER_ASKERS} members' suggestions: {run.buttons} "
          f"\"Request intro\" buttons)")
    print(f"  from the spawn of `python -m playground.launch run`: IDENTIFY {at(run, run.identified)}; session up "
          f"{at(run, run.up)} (the fake had sent READY and the server's GUILD_CREATE, "
          f"{ms(run.up - run.identified)} of the bench's own work); first answer {at(run, run.first_answer)} "
          f"({run.first_answer_kind or '-'})")
    print(f"  the first /match suggest: sent {at(run, run.first_suggest_sent)}, answered "
          f"{at(run, run.first_suggest_answered)} ({ms(run.first_suggest_answered - run.first_suggest_sent)}); "
          f"/rounds run sent {at(run, run.rounds_sent)}, answered {at(run, run.rounds_answered)} "
          f"({ms(run.rounds_answered - run.rounds_sent)}); delivery window closed {at(run, run.delivery_end)} ("
          + ("the bot posted the round's summary" if run.delivery_finished else "delivery not finished") + ")")
    if run.round_answer:
        print(f"  /rounds run answered: {run.round_answer[:160]}")
    for line in run.notes:
        print(f"  the bot logged: {line[:200]}")
    if run.delivery_calls:
        calls = dict(run.delivery_calls)
        refused = calls.pop("refused")
        print(f"  the bot's REST calls in the delivery window: {sum(calls.values()):,} ({refused:,} refused): "
              + ", ".join(f"{route} {count:,}" for route, count in itertools.islice(calls.items(), 6)))
    held = sum(1 for p in run.probes if p.held)
    print(f"  {held} interactions came due before the session was up; sent at {at(run, run.up)}, their latency "
          "counts from then")
    print(f"  start to first answer: {ms(run.start_seconds)} = the bot's own start to its IDENTIFY "
          f"{ms(run.identified - run.spawned)} + the fake making and sending READY and GUILD_CREATE "
          f"{ms(run.up - run.identified)} + the bot reading them and answering {ms(run.first_answer - run.up)}")
    print(f"\n  {'phase (its length)':<36}{'kind':<16}{'sent':>6}{'median':>10}{'p99':>10}{'max':>10}"
          f"{'unanswered':>12}{'bench loop':>12}  notes")
    for phase in PHASES:
        label = f"{phase} ({ms(run.lasted(phase))})"
        for kind in (None, *KINDS):
            probes = run.probes_in(phase, kind)
            figures = figures_of(probes)
            stall = ms(run.bench_stall(phase)) if kind is None else ""
            print(f"  {label:<36}{kind or 'all':<16}{figures.sent:>6}{ms(figures.median):>10}{ms(figures.p99):>10}"
                  f"{ms(figures.worst):>10}{figures.unanswered:>12}{stall:>12}  {answers_note(probes, kind)}")
            label = ""
    print("\n  the three slowest of each phase (kind, due after the spawn):")
    for phase in PHASES:
        slowest = sorted(run.probes_in(phase), key=lambda p: math.inf if p.latency is None else p.latency,
                         reverse=True)[:3]
        print(f"    {phase}: " + (", ".join(
            f"{ms(math.inf if p.latency is None else p.latency)} ({p.kind}, {run.since_spawn(p.due):.2f} s)"
            for p in slowest) or "-"))
    print(f"\n  {'memory (RSS)':<44}{'bot':>10}{'its children':>14}    CPU since the line above, of one core: "
          "bot · its children · the bench (the fake)")
    previous: Reading | None = None
    for reading in run.memory:
        children = f"{mb(reading.children)} ({reading.processes})" if reading.processes else "-"
        cpu = ""
        if previous is not None and reading.at - previous.at >= 0.5:   # shorter: clock ticks too coarse
            seconds = reading.at - previous.at
            cpu = " · ".join(f"{max(0.0, (now - before) / seconds):.0%}" for now, before in (
                (reading.bot_cpu, previous.bot_cpu), (reading.children_cpu, previous.children_cpu),
                (reading.bench_cpu, previous.bench_cpu)))
        print(f"  {reading.moment + f' ({at(run, reading.at)})':<44}{mb(reading.bot):>10}{children:>14}    {cpu}")
        previous = reading
    print(f"  {'peak':<44}{mb(run.bot_peak):>10}{mb(run.children_peak):>14}   (bot and children together, at "
          f"one reading: {mb(run.together_peak)})")
    if run.log_paths is not None:
        print(f"  the bot's output: {run.log_paths[0]}, {run.log_paths[1]}")


def checks(run: Run) -> list[tuple[str, bool]]:
    found: list[tuple[str, bool]] = []
    worst = {phase: figures_of(run.probes_in(phase)) for phase in PHASES}
    counted = [phase for phase in PHASES if worst[phase].sent]
    found.append((f"longest answer <= {ms(TARGET_MAX)} in every phase ("
                  + ", ".join(f"{phase} {ms(worst[phase].worst)}" for phase in counted) + ")",
                  all(worst[phase].worst <= TARGET_MAX for phase in counted)))
    found.append((f"p99 <= {ms(TARGET_P99)} in every phase ("
                  + ", ".join(f"{phase} {ms(worst[phase].p99)}" for phase in counted) + ")",
                  all(worst[phase].p99 <= TARGET_P99 for phase in counted)))
    found.append((f"start to first answer <= {TARGET_START:.0f} s ({ms(run.start_seconds)})",
                  run.start_seconds <= TARGET_START))
    found.append((f"bot RSS <= {mb(TARGET_RSS)}: the bot's process alone, at its peak ({mb(run.bot_peak)}; its "
                  f"children, the round worker, not counted: peak {mb(run.children_peak)}, bot and children "
                  f"together {mb(run.together_peak)})", run.bot_peak <= TARGET_RSS))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(str(size) for size in SIZES),
                        help="comma-separated member counts (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZE:,} members, shorter idle and delivery")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--idle", type=float, default=None, help=f"seconds of the idle phase ({IDLE_SECONDS:.0f})")
    parser.add_argument("--delivery", type=float, default=None,
                        help=f"seconds of the delivery's window at most ({DELIVERY_SECONDS:.0f})")
    parser.add_argument("--logs", type=Path, default=ROOT / "tmp" / "bench-interactions",
                        help="where the bot's output is kept (default: %(default)s)")
    args = parser.parse_args()
    sizes = [QUICK_SIZE] if args.quick else [int(size) for size in args.sizes.split(",")]
    idle = args.idle if args.idle is not None else (5.0 if args.quick else IDLE_SECONDS)
    delivery = args.delivery if args.delivery is not None else (10.0 if args.quick else DELIVERY_SECONDS)
    atexit.register(_kill_running)
    signal.signal(signal.SIGTERM, _interrupted)
    began = time.perf_counter()
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())} ({os.cpu_count()} cores)")
    asyncio.run(cache_kernels())   # the round worker's kernels in numba's cache, as on any bot that made a round
    runs = []
    try:
        for size in sizes:
            runs.append(asyncio.run(measure(size, args.seed, args.logs, idle=idle, delivery=delivery)))
            report(runs[-1])
    except KeyboardInterrupt as interrupt:
        print(f"interrupted ({interrupt}); the bot's processes were stopped", file=sys.stderr)
        sys.exit(130)
    print()
    for run in runs:
        what = "the targets" if run.size == TARGET_SIZE else f"for reference; the targets are for {TARGET_SIZE:,}"
        print(f"At {run.size:,} profiles ({what}):")
        for line, passed in checks(run):
            print(f"{'PASS' if passed else 'FAIL'}  {line}")
    minutes, seconds = divmod(time.perf_counter() - began, 60)
    print(f"\nwhole run {minutes:.0f} min {seconds:.0f} s; load average after: "
          f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
