"""Matching: one call per thing a member or admin does, the rule first, then the store.

Who may meet whom is decided by one rule (bot/matching/rules.py) on
:class:`Candidate` records built here from profiles, members' own choices and
the history of rounds and requests. ``/match suggest`` asks an in-memory
:class:`MatchIndex` per server, kept current as profiles and choices change;
requests and rounds check the rule again on data read fresh from the database,
so a stale index can at worst leave someone out, never bring together a pair
the rule forbids.
"""

from __future__ import annotations

import asyncio
import logging
import re
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import heap
from bot.clock import Clock, FixedClock, to_text
from bot.errors import UserError
from bot.guilds import store as guild_store
from bot.guilds.model import Change
from bot.guilds.service import GuildConfig
from bot.guilds.store import GuildSettingsStore
from bot.i18n import fold, shorten, visible
from bot.intros import companies
from bot.intros.model import Profile
from bot.intros.profile import tag_key
from bot.intros.service import IntroService
from bot.intros.store import IntroStore
from bot.matching import delivery, rules, schedule, snapshots
from bot.matching.delivery import Ended, GroupState, PlannedGroup, Progress, Unreached, Way
from bot.matching.index import MatchIndex, PreparedHistory
from bot.matching.model import (
    ARCHIVE_JOB,
    DELIVER_JOB,
    DELIVERY_JOB,
    FOLLOW_UP_JOB,
    INTRODUCE_JOB,
    LEFT_OUT_JOB,
    PAUSED_JOB,
    REQUEST_JOB,
    ROUND_JOB,
    SAME_COMPANY,
    SUMMARY_JOB,
    THREAD_JOB,
    UNAVAILABLE,
    YOU_AVOID,
    Answer,
    AvoidedCompany,
    Cadence,
    Candidate,
    GroupRecord,
    History,
    LeftOut,
    MatchMember,
    MatchRequest,
    RequestState,
    RoundPlan,
    RoundSettings,
    RoundStats,
    StoredSnapshot,
    Suggestion,
)
from bot.matching.score import in_own_words, reasons
from bot.matching.store import MatchStore
from bot.matching.terms import phrases
from bot.matching.worker import PackedIndex, PackedPool, pack_index, pack_pool, unpack_index, unpack_pool
from bot.outbox.model import NewJob
from bot.outbox.store import OutboxStore
from bot.prompts.schedule import WEEKDAYS, parse_time, parse_weekday
from bot.prompts.store import PromptStore
from bot.shards import EVERY, Shards
from bot.storage import Storage, Transaction

log = logging.getLogger(__name__)
_Order = TypeVar("_Order")
_Result = TypeVar("_Result")

ROUNDS_SETTING: Final = "rounds"
SUGGESTIONS: Final = 3
MAX_OPEN_REQUESTS: Final = 3
REQUEST_LIFETIME: Final = timedelta(days=7)
DECLINE_MEMORY: Final = timedelta(days=90)
NOTE_MAX: Final = 500
COMPANY_MAX: Final = 100            # as long as a profile's company may be
MAX_AVOIDED: Final = 50
PAUSE_WEEKS: Final = range(1, 53)
UNANSWERED_ROUNDS: Final = 3        # follow-ups left unanswered in a row before a member is paused
NO_REPEAT_ROUNDS: Final = range(1, 53)
FOLLOW_UP_DAYS: Final = range(1, 29)
THREAD_MEMORY: Final = timedelta(days=90)   # prompt threads that still count as a shared conversation
THREAD_PARTICIPANTS: Final = 200            # a thread bigger than this says little about any one pair
AUTOCOMPLETE: Final = 25
# A company nobody shares: whoever writes one of these is their own company for matching (two freelancers
# are not colleagues). Compared as company keys.
SOLO_COMPANIES: Final = frozenset(companies.company_key(name) for name in (
    "freelance", "freelancer", "self-employed", "self employed", "independent", "none", "n/a", "-",
    "フリーランス", "個人事業主", "自営業", "なし", "無職"))
HIDDEN_COMPANY_REASONS: Final = frozenset({SAME_COMPANY, YOU_AVOID})
# Only languages a profile names can be known to be shared; "other" may be any third one.
KNOWN_LANGUAGES: Final = frozenset({"ja", "en"})
# A member left alone by a departure is offered to at most this many pairs of the round (each checked
# against the rule on fresh data), so regrouping stays cheap in a round of thousands.
REGROUP_CANDIDATES: Final = 200
ARCHIVE_AFTER: Final = timedelta(days=7)    # a round thread is archived this long after its follow-up
CANDIDATES_AT_ONCE: Final = 64              # candidates made between two turns of the event loop: about 1 ms
PAIRS_AT_ONCE: Final = 500                  # pairs of a history put in sets between two turns: under 1 ms
HISTORY_PAUSE: Final = 5.0                  # seconds between two readings of a server's whole history
# A server with this many active profiles has its suggestion index built, and its history read again, in the round
# worker (about 50 µs a profile on the event loop: 25 ms here, 5 s at 100,000); a smaller one's here, at once.
READ_IN_WORKER_FROM: Final = 500


# Plans a round from its candidates and history: in the bot, a worker process (bot/matching/worker.py), so
# the event loop never waits on it; ``plan_in_thread`` where a process of its own is not worth it.
Planner = Callable[[Sequence[Candidate], History], Awaitable[RoundPlan]]


async def plan_in_thread(candidates: Sequence[Candidate], history: History) -> RoundPlan:
    """The round planned in a thread of this process (tests of the service, benchmarks of the store)."""
    from bot.matching.pairing import plan_round  # numba with it: see bot/matching/worker.py, _planned
    return await asyncio.to_thread(plan_round, candidates, history)


@dataclass(frozen=True)
class Pool:
    """Everyone matching considers in a server right now, as candidates and as profiles."""

    candidates: dict[int, Candidate]
    profiles: dict[int, Profile]
    members: dict[int, MatchMember]
    history: History


@dataclass(frozen=True)
class DeliveryStart:
    """How a round's delivery began: the threads it could start, the ways chosen, who was regrouped."""

    round_id: int
    room: int
    threads: int
    dms: int
    cancelled: int
    moved: int
    alone: int
    left: int = 0                # members taken out of their group because they left the server


@dataclass(frozen=True)
class PlanFigures:
    """What an admin is shown of a round's plan; the plan itself (tens of thousands of groups in a large
    server) stays in the process that made it."""

    groups: int
    trios: int
    placed: int
    total: float
    bound: float
    left_out: Mapping[int, LeftOut]

    @classmethod
    def of(cls, plan: RoundPlan) -> PlanFigures:
        return cls(groups=len(plan.groups), trios=sum(1 for g in plan.groups if len(g.members) == 3),
                   placed=plan.placed, total=plan.total, bound=plan.bound, left_out=dict(plan.left_out))


@dataclass(frozen=True)
class RoundOutcome:
    round_id: int
    plan: PlanFigures
    members: int                 # how many took part
    paused: tuple[int, ...]      # members paused for leaving three follow-ups unanswered
    replaced: datetime | None = None   # a round made by hand: the scheduled slot it took the place of
    # Seconds spent reading the pool, planning, and storing the round (with the work it starts).
    seconds: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Preview:
    """What a round would do now (``/rounds run dry_run``): its plan's figures, how many would take part, and
    the names of those it would leave out."""

    plan: PlanFigures
    taking_part: int
    names: Mapping[int, str]


@dataclass(frozen=True)
class ServerOrder:
    """Work on one server's data as it is ``now``, in the round worker's process: a round's preview
    (``preview_round``), a suggestion index (``build_index``), its history (``read_history``)."""

    database: str | Path   # Storage.target: a file, or a PostgreSQL URL
    guild_id: int
    now: datetime


@dataclass(frozen=True)
class RoundOrder:
    """A round to make in the round worker's process (``make_round``): what it needs from the bot."""

    database: str | Path   # Storage.target: a file, or a PostgreSQL URL
    guild_id: int
    slot: datetime
    now: datetime
    scheduled: bool


@dataclass(frozen=True)
class DeliveryOrder:
    """A round's delivery to begin in the round worker's process (``begin_delivery``)."""

    database: str | Path   # Storage.target: a file, or a PostgreSQL URL
    guild_id: int
    round_id: int
    now: datetime
    present: array[int]   # the server's members now, 8 bytes each (a frozenset of 100,000 ids is 4 MB, pickled too)
    active_threads: int | None


class Worker(Protocol):
    """Runs ``make_round`` and ``begin_delivery`` on an order in a process of its own (``RoundWorker``)."""

    async def run(self, job: Callable[[_Order], Coroutine[Any, Any, _Result]], order: _Order) -> _Result: ...


async def make_round(order: RoundOrder) -> RoundOutcome | None:
    """In the round worker's process: read the pool, plan the round and store it, on a connection of its
    own, so that the bot's event loop and heap carry none of a large round's work."""
    async with _working(order.database, order.now) as service:
        return await service._make_round(order.guild_id, order.slot, scheduled=order.scheduled)


async def preview_round(order: ServerOrder) -> Preview:
    """In the round worker's process: ``MatchService.preview`` on a connection of its own."""
    async with _working(order.database, order.now) as service:
        return await service._preview(order.guild_id)


async def build_index(order: ServerOrder) -> tuple[PackedIndex, dict[int, datetime]]:
    """In the round worker's process: a server's suggestion index, made from its whole pool and packed for the
    way back (unpacked in the bot a chunk at a time), and when its paused members come back. Some 100,000
    profiles are read and made candidates in seconds: not on the bot's loop, and none of them in its heap.
    The index is also stored, for the bot's next start (bot/matching/snapshots.py)."""
    async with _working(order.database, order.now) as service:
        aliases = await service._intros.alias_map(order.guild_id)
        pool = await service.pool(order.guild_id)
        members = len(pool.candidates)
        index, pauses = MatchIndex(pool.candidates.values(), pool.history), _pauses(pool, order.now)
        del pool
        await service.store.save_snapshot(order.guild_id, StoredSnapshot(snapshots.FORMAT, order.now, members, aliases),
                                          snapshots.encode(snapshots.Snapshot(index, pauses)))
        packed = pack_index(index)
    return packed, pauses


async def read_history(order: ServerOrder) -> PackedPool:
    """In the round worker's process: who met, declined and replied alongside whom in a server (its
    suggestion index's copy, read again after a round), packed for the way back."""
    async with _working(order.database, order.now) as service:
        settings = await service.store.settings(order.guild_id)
        history = await service._history(order.guild_id, settings, order.now)
    return pack_pool((), history)


def _pauses(pool: Pool, now: datetime) -> dict[int, datetime]:
    """When the pool's paused members come back by themselves."""
    return {user: member.paused_until for user, member in pool.members.items()
            if member.paused_until is not None and member.paused_until > now}


async def begin_delivery(order: DeliveryOrder) -> DeliveryStart | None:
    """In the round worker's process: ``MatchService.begin_delivery`` on a connection of its own."""
    async with _working(order.database, order.now) as service:
        return await service._begin_delivery(order.guild_id, order.round_id, frozenset(order.present),
                                             order.active_threads)


@asynccontextmanager
async def _working(database: str | Path, now: datetime) -> AsyncIterator[MatchService]:
    storage = await Storage.open(database)
    try:
        clock = FixedClock(now)
        yield MatchService(MatchStore(storage), IntroService(IntroStore(storage), clock), PromptStore(storage),
                           GuildConfig(GuildSettingsStore(storage), clock), clock, planner=plan_here)
    finally:
        await storage.close()


async def plan_here(candidates: Sequence[Candidate], history: History) -> RoundPlan:
    """The round planned right here, holding the event loop: only where nothing else waits on that loop
    (the round worker's process)."""
    from bot.matching.pairing import plan_round  # numba with it: see bot/matching/worker.py, _planned
    return plan_round(candidates, history)


def utc_offset(timezone: str | None, now: datetime) -> float | None:
    if not timezone:
        return None
    try:
        offset = now.astimezone(ZoneInfo(timezone)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return None if offset is None else offset.total_seconds() / 3600


def match_company(profile: Profile, aliases: Mapping[str, str]) -> str:
    """The company key matching compares: aliases applied; a freelancer is a company of their own."""
    key = aliases.get(profile.company_key, profile.company_key)
    return f"solo:{profile.user_id}" if key in SOLO_COMPANIES or not key else key


def candidate_of(profile: Profile, member: MatchMember, avoid: Iterable[str], aliases: Mapping[str, str],
                 now: datetime) -> Candidate:
    return Candidate(
        user_id=profile.user_id,
        company=match_company(profile, aliases),
        languages=frozenset(profile.languages) & KNOWN_LANGUAGES,
        interests=frozenset(tag_key(tag) for tag in profile.interests),
        offers=phrases(profile.offer),
        seeks=phrases(profile.seek),
        utc_offset=utc_offset(profile.timezone, now),
        avoid=frozenset(aliases.get(key, key) for key in avoid),
        available=profile.active and profile.open_to_intros and not member.paused(now),
    )


async def _history_of(met: Iterable[tuple[int, int]], declined: Iterable[tuple[int, int]],
                      participants: Iterable[tuple[int, int]]) -> History:
    """Who met whom, who declined whom, and who took part in the same prompt threads (post, member)."""
    threads: dict[int, list[int]] = {}
    for post_id, user_id in participants:
        threads.setdefault(post_id, []).append(user_id)
    shared = ((a, b) for users in threads.values() if len(users) <= THREAD_PARTICIPANTS
              for i, a in enumerate(users) for b in users[i + 1:])
    return History(met=await _both_ways(met), declined=await _both_ways(declined), threads=await _both_ways(shared))


async def _both_ways(pairs: Iterable[tuple[int, int]]) -> dict[int, frozenset[int]]:
    """Each member's partners. After a round of 100,000 members there are some 50,000 pairs, a few hundred
    milliseconds of sets: made a slice at a time, with the event loop's other work between slices. (In a
    thread instead, the loop waited for the GIL at each of an interaction's steps, 5 ms each time.)"""
    found: dict[int, set[int]] = {}
    for made, (a, b) in enumerate(pairs, start=1):
        found.setdefault(a, set()).add(b)
        found.setdefault(b, set()).add(a)
        if made % PAIRS_AT_ONCE == 0:
            await asyncio.sleep(0)
    both: dict[int, frozenset[int]] = {}
    for made, (user, others) in enumerate(found.items(), start=1):
        both[user] = frozenset(others)
        if made % PAIRS_AT_ONCE == 0:
            await asyncio.sleep(0)
    return both


def rounds_value(settings: RoundSettings) -> str:
    """How the audit trail writes the round schedule: "weekly monday 10:00 on; no repeat 6 rounds; follow-up
    after 5 days" (read back by ``read_rounds_value``)."""
    return (f"{settings.cadence.value} {WEEKDAYS[settings.weekday]} {settings.time} "
            f"{'on' if settings.enabled else 'off'}; no repeat {settings.no_repeat_rounds} rounds; "
            f"follow-up after {settings.follow_up_days} days")


_ROUNDS_VALUE: Final = re.compile(
    r"(?P<cadence>\w+) (?P<weekday>\w+) (?P<time>\d\d:\d\d) (?P<state>on|off); no repeat (?P<repeat>\d+) rounds; "
    r"follow-up after (?P<follow_up>\d+) days")


def read_rounds_value(guild_id: int, value: str) -> RoundSettings | None:
    """The schedule an audit entry wrote with ``rounds_value``, so it can be shown in any language; None
    for a value it did not write."""
    found = _ROUNDS_VALUE.fullmatch(value)
    if found is None or found["weekday"] not in WEEKDAYS or found["cadence"] not in {c.value for c in Cadence}:
        return None
    return RoundSettings(guild_id, found["state"] == "on", Cadence(found["cadence"]),
                         WEEKDAYS.index(found["weekday"]), found["time"], int(found["repeat"]),
                         int(found["follow_up"]))


class MatchService:
    def __init__(self, store: MatchStore, intros: IntroService, prompts: PromptStore, guilds: GuildConfig,
                 clock: Clock, *, planner: Planner, worker: Worker | None = None) -> None:
        """``worker``, when given, makes rounds, their previews and the start of their delivery in a process
        of its own (``make_round``, ``preview_round``, ``begin_delivery``); else they are made here, and
        planned with ``planner``."""
        self.store = store
        self._plan = planner
        self._worker = worker
        self._planning = 0
        self._intros = intros
        self._prompts = prompts
        self._guilds = guilds
        self._clock = clock
        self._indexes: dict[int, MatchIndex] = {}
        self._stale: dict[int, set[int]] = {}          # members whose data changed since the index was built
        self._history_stale: set[int] = set()          # servers where who met whom changed since
        # Servers whose index was loaded, and when (the event loop's time) its stored history is read again.
        self._history_due: dict[int, float] = {}
        self._building: set[int] = set()               # servers whose index is being built right now
        self._refreshing: dict[int, asyncio.Task[None]] = {}   # servers whose index's history is being read
        self._rebuild: set[int] = set()                # servers whose every candidate changed (an alias)
        # When paused members of a server come back by themselves: each is made current once that passes.
        self._pauses: dict[int, dict[int, datetime]] = {}
        self._index_locks: dict[int, asyncio.Lock] = {}   # one build or update of a server's index at a time
        # Large servers whose index is being built again in the worker while the one held serves (``_renew``),
        # with the members whose data changed since that build began reading.
        self._renewing: dict[int, set[int]] = {}
        self._renewals: dict[int, asyncio.Task[None]] = {}
        # One round at a time per server in this process (the database refuses a second one planned from
        # the same state anyway, across processes too: see _make_round).
        self._round_locks: dict[int, asyncio.Lock] = {}
        intros.watch(self.changed)

    # -- keeping the suggestion index current

    def changed(self, guild_id: int, user_id: int | None) -> None:
        """A member's profile or choices changed (None: something that touches everyone, such as an alias)."""
        if guild_id not in self._indexes and guild_id not in self._building:
            return
        if user_id is None:
            self._rebuild.add(guild_id)   # also when a build is under way: it may have read the old aliases
        else:
            # Kept also while the index is being built: the build may have read the member before the change.
            self._stale.setdefault(guild_id, set()).add(user_id)
            renewing = self._renewing.get(guild_id)
            if renewing is not None:
                renewing.add(user_id)

    async def _history(self, guild_id: int, settings: RoundSettings, now: datetime,
                       only: Collection[int] | None = None) -> History:
        """Who met and declined whom, and who shared prompt threads; ``only``: who the members named met and
        declined (what the rule needs for pairs with one of them), read from their own rows."""
        met = await self.store.recent_pairs(guild_id, settings.no_repeat_rounds, only)
        met += await self.store.accepted_pairs(guild_id, only)
        declined = await self.store.declined_pairs(guild_id, now - DECLINE_MEMORY, only)
        participants = [] if only is not None else await self._prompts.participants_since(guild_id,
                                                                                           now - THREAD_MEMORY)
        return await _history_of(met, declined, participants)

    async def pool(self, guild_id: int, *, only: Iterable[int] | None = None) -> Pool:
        """Everyone with an active profile (or only the members named, with the history the rule needs for
        pairs with one of them), as matching sees them now."""
        now = self._clock.now()
        candidates, profiles, members = await self._candidates(guild_id, only, now)
        history = await self._history(guild_id, await self.store.settings(guild_id), now,
                                      None if only is None else tuple(profiles))
        return Pool(candidates, profiles, members, history)

    async def _candidates(self, guild_id: int, only: Iterable[int] | None, now: datetime,
                          ) -> tuple[dict[int, Candidate], dict[int, Profile], dict[int, MatchMember]]:
        """``pool`` without the history: the candidates, their profiles and their members' rows."""
        aliases = await self._intros.alias_map(guild_id)
        if only is None:
            members = await self.store.members(guild_id)
            avoid = await self.store.avoid_lists(guild_id)
            profiles = {p.user_id: p for p in await self._intros.active_profiles(guild_id)}
        else:
            # A few members (those whose data changed since the suggestion index was built, or none when only
            # the history changed): their rows only, not the whole server's.
            wanted = tuple(set(only))
            found = [await self._intros.profile(guild_id, user_id) for user_id in wanted]
            profiles = {p.user_id: p for p in found if p is not None}
            members = {user_id: await self.store.member(guild_id, user_id) for user_id in profiles}
            avoid = {user_id: {entry.company_key for entry in await self.store.avoided(guild_id, user_id)}
                     for user_id in profiles}
        candidates: dict[int, Candidate] = {}
        for made, (user_id, profile) in enumerate(profiles.items(), start=1):
            candidates[user_id] = candidate_of(profile, members.get(user_id, MatchMember(guild_id, user_id)),
                                               avoid.get(user_id, ()), aliases, now)
            if made % CANDIDATES_AT_ONCE == 0:
                # A server's whole pool is 100,000 candidates, over a second's work: the event loop runs
                # others' interactions between slices of it, instead of after all of it.
                await asyncio.sleep(0)
        return candidates, profiles, members

    async def _index(self, guild_id: int) -> MatchIndex:
        async with self._index_locks.setdefault(guild_id, asyncio.Lock()):
            index = self._indexes.get(guild_id)
            now = self._clock.now()
            if index is None or guild_id in self._rebuild:
                self._rebuild.discard(guild_id)
                self._stale.pop(guild_id, None)
                self._history_stale.discard(guild_id)
                self._building.add(guild_id)
                try:
                    index, self._pauses[guild_id] = await self._built(guild_id, now)
                    self._indexes[guild_id] = index
                finally:
                    self._building.discard(guild_id)
            pauses = self._pauses.setdefault(guild_id, {})
            for user_id in [user for user, until in pauses.items() if until <= now]:
                del pauses[user_id]
                self._stale.setdefault(guild_id, set()).add(user_id)
            if guild_id in self._stale:
                stale = self._stale.pop(guild_id)
                fresh, _, members = await self._candidates(guild_id, stale, now)   # their history: see suggest
                for user_id in stale:
                    candidate = fresh.get(user_id)
                    pauses.pop(user_id, None)
                    if candidate is None:
                        index.remove(user_id)   # no profile any more (erased)
                        continue
                    index.upsert(candidate)
                    until = members[user_id].paused_until
                    if until is not None and until > now:
                        pauses[user_id] = until
                if index.sparse:
                    # Edits left more retired slots than live: built anew, by the worker while this one serves
                    # for a large server, else on the next use.
                    if self._worker is not None and len(index) >= READ_IN_WORKER_FROM:
                        self._start_renewal(guild_id)
                    else:
                        self._rebuild.add(guild_id)
            if guild_id in self._history_stale and guild_id not in self._refreshing \
                    and self._history_due.get(guild_id, 0.0) <= asyncio.get_running_loop().time():
                self._refreshing[guild_id] = asyncio.create_task(self._refresh_history(guild_id),
                                                                 name=f"history of guild {guild_id}")
            return index

    async def _built(self, guild_id: int, now: datetime) -> tuple[MatchIndex, dict[int, datetime]]:
        """A server's suggestion index made from scratch, and when its paused members come back. A large
        server's is made in the round worker and unpacked here in a thread, so the event loop only waits, never
        works (not even for the first ``/match suggest`` after a start), and the heap holds only the index."""
        # The collector is paused only while this process makes objects (not while the worker works).
        what = f"the suggestion index of guild {guild_id}"
        if self._worker is not None and await self._intros.count_active(guild_id) >= READ_IN_WORKER_FROM:
            order = ServerOrder(self.store.storage.target, guild_id, now)
            packed, pauses = await self._worker.run(build_index, order)
            with heap.building(what):
                return await asyncio.to_thread(unpack_index, packed), pauses
        with heap.building(what):
            pool = await self.pool(guild_id)
            return await asyncio.to_thread(MatchIndex, pool.candidates.values(), pool.history), _pauses(pool, now)

    async def load_indexes(self, shards: Shards = EVERY) -> int:
        """Load the stored suggestion index of every large server of ``shards`` (bot/matching/snapshots.py),
        largest first: before the bot connects, so that no interaction waits for it. How many were loaded;
        the others are built after the start (``prepare_indexes``)."""
        loaded = 0
        if self._worker is None:
            return loaded   # only the worker builds (and stores) large servers' indexes
        for guild_id in await self._intros.large_servers(READ_IN_WORKER_FROM, shards):
            try:
                loaded += await self._load(guild_id)
            except Exception:
                log.exception("Could not load the stored suggestion index of guild %s; it is built anew", guild_id)
        return loaded

    async def _load(self, guild_id: int) -> bool:
        started = asyncio.get_running_loop().time()
        async with self._index_locks.setdefault(guild_id, asyncio.Lock()):
            stored = await self.store.snapshot(guild_id)
            if guild_id in self._indexes or stored is None or stored.format != snapshots.FORMAT \
                    or stored.aliases != await self._intros.alias_map(guild_id):
                return False
            self._building.add(guild_id)   # changes from now on are noted (``changed``)
            try:
                # Who changed since, before the bytes are read (a snapshot too far behind is not worth them).
                since = stored.as_of - snapshots.CLOCK_SKEW
                changed = await self._intros.saved_since(guild_id, since)
                changed |= await self.store.choices_changed_since(guild_id, since)
                if len(changed) <= snapshots.LOAD_AT_MOST:
                    data = await self.store.snapshot_data(guild_id, stored)
                    if data is None:
                        return False   # replaced meanwhile (by another process of the same shards)
                    with heap.building(f"the stored suggestion index of guild {guild_id}"):
                        index, pauses = await asyncio.to_thread(snapshots.decode, data)
                    del data
                    changed |= (await self._intros.active_ids(guild_id)).symmetric_difference(index)
                if len(changed) > snapshots.LOAD_AT_MOST:
                    log.info("The stored suggestion index of guild %s is %d members behind; it is built anew",
                             guild_id, len(changed))
                    return False
                self._indexes[guild_id], self._pauses[guild_id] = index, pauses
                self._stale.setdefault(guild_id, set()).update(changed)
                # The stored history may be older than the last one read (after a round, say), so it is read
                # again in the worker, but a minute after the start, the bot's busiest: until then the asker's
                # own history, read fresh with each suggestion, keeps the people they met out of it.
                self._history_stale.add(guild_id)
                self._history_due[guild_id] = asyncio.get_running_loop().time() + snapshots.HISTORY_AFTER_LOAD
            finally:
                self._building.discard(guild_id)
        await self._index(guild_id)   # the changed members read afresh
        log.info("Suggestion index of guild %s loaded (%d members, %d read afresh) in %.2f s", guild_id,
                 len(index), len(changed), asyncio.get_running_loop().time() - started)
        return True

    async def prepare_indexes(self, shards: Shards = EVERY, present: Callable[[int], bool] = lambda _: True) -> int:
        """Build the suggestion index of every large server of ``shards`` the bot is ``present`` in, largest
        first, one at a time (in the round worker): after a start, so that a server's first ``/match
        suggest`` finds it ready; those loaded (``load_indexes``) are there already, those of servers the
        bot is not in are let go. Smaller servers are built on their first use, at once. How many were built."""
        for guild_id in [guild for guild in self._indexes if not present(guild)]:
            del self._indexes[guild_id]
            self._pauses.pop(guild_id, None)
            self._history_stale.discard(guild_id)
            self._history_due.pop(guild_id, None)
        built = 0
        for guild_id in await self._intros.large_servers(READ_IN_WORKER_FROM, shards):
            if present(guild_id) and guild_id not in self._indexes:
                await self._index(guild_id)
                built += 1
        return built

    async def keep_snapshots(self, every: float = 300.0) -> None:
        """``renew_snapshots`` every ``every`` seconds, forever (a failure is logged, and tried again then)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.renew_snapshots()
            except Exception:
                log.exception("Could not look at the stored suggestion indexes; trying again in %.0f s", every)

    async def renew_snapshots(self) -> int:
        """Build again in the worker (and so store again) the index of each large server held whose stored one
        is gone (a member's erasure deletes it), of other code, or older than ``snapshots.RENEW_AFTER``, one
        at a time; the index held serves meanwhile. How many were built."""
        renewed = 0
        for guild_id, index in list(self._indexes.items()):
            if len(index) < READ_IN_WORKER_FROM or self._worker is None or guild_id in self._renewals:
                continue
            saved = await self.store.snapshot(guild_id)
            if saved is None or saved.format != snapshots.FORMAT \
                    or self._clock.now() - saved.as_of > snapshots.RENEW_AFTER:
                self._start_renewal(guild_id)
                await self._renewals[guild_id]
                renewed += 1
        return renewed

    def _start_renewal(self, guild_id: int) -> None:
        if guild_id not in self._renewals:
            self._renewals[guild_id] = asyncio.create_task(self._renew(guild_id),
                                                           name=f"suggestion index of guild {guild_id}")

    async def _renew(self, guild_id: int) -> None:
        """Build a large server's index again in the worker (which stores it) while the one held serves, and
        put it in the held one's place with the changes made meanwhile."""
        if self._worker is None:
            raise RuntimeError("only the round worker builds an index in the background")
        self._renewing[guild_id] = set()
        try:
            order = ServerOrder(self.store.storage.target, guild_id, self._clock.now())
            packed, pauses = await self._worker.run(build_index, order)
            with heap.building(f"the suggestion index of guild {guild_id}"):
                index = await asyncio.to_thread(unpack_index, packed)
            del packed
            async with self._index_locks.setdefault(guild_id, asyncio.Lock()):
                if guild_id in self._indexes and guild_id not in self._rebuild:   # not let go, aliases kept
                    self._indexes[guild_id], self._pauses[guild_id] = index, pauses
                    self._stale.setdefault(guild_id, set()).update(self._renewing[guild_id])
                    self._history_stale.add(guild_id)   # a history read while the build ran may be newer
        except Exception:
            log.exception("Could not build the suggestion index of guild %s again; the one held serves", guild_id)
        finally:
            del self._renewing[guild_id], self._renewals[guild_id]

    async def close(self) -> None:
        """Stop reading histories and building indexes in the background (before the database is closed)."""
        background = [*self._refreshing.values(), *self._renewals.values()]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)

    async def _refresh_history(self, guild_id: int) -> None:
        """The index's copy of who met whom read again, while suggestions go on with the one it has: after a
        round of 100,000 members, some 50,000 pairs take a few hundred milliseconds to read, and an asker's
        own history is read fresh with each suggestion anyway (``suggest``). Changes that keep coming (a
        round's delivery ending groups one after another) are read together, at most every
        ``HISTORY_PAUSE``."""
        try:
            while guild_id in self._history_stale:   # changed again while it was read: read once more
                self._history_stale.discard(guild_id)
                with heap.building(f"the history of guild {guild_id}"):
                    history = await self._whole_history(guild_id)
                    prepared = await asyncio.to_thread(PreparedHistory.of, history)
                    index = self._indexes.get(guild_id)   # the one in use now (rebuilt meanwhile, maybe)
                    if index is not None:
                        index.use_history(prepared)
                if guild_id in self._history_stale:
                    await asyncio.sleep(HISTORY_PAUSE)
        except Exception:
            log.exception("Could not read the history of guild %s again; the next suggestion tries again", guild_id)
            self._history_stale.add(guild_id)
        finally:
            del self._refreshing[guild_id]

    async def _whole_history(self, guild_id: int) -> History:
        """A server's whole history, for its suggestion index: read in the round worker for a large server
        (tens of thousands of pairs after a round of 100,000), here for a small one."""
        now = self._clock.now()
        index = self._indexes.get(guild_id)
        if self._worker is not None and index is not None and len(index) >= READ_IN_WORKER_FROM:
            packed = await self._worker.run(read_history, ServerOrder(self.store.storage.target, guild_id, now))
            _, history = await asyncio.to_thread(unpack_pool, packed)
            return history
        return await self._history(guild_id, await self.store.settings(guild_id), now)

    def history_changed(self, guild_id: int) -> None:
        """Rounds, answered requests and a new participant in a prompt thread change the history (who met,
        declined or replied alongside whom): the next use reads it again."""
        if guild_id in self._indexes:
            self._history_stale.add(guild_id)
            self._history_due.pop(guild_id, None)

    # -- suggestions and the rule

    async def _asker(self, guild_id: int, user_id: int) -> Profile:
        profile = await self._intros.profile(guild_id, user_id)
        if profile is None or not profile.active:
            raise UserError("match.no_profile")
        return profile

    async def suggest(self, guild_id: int, user_id: int) -> list[tuple[Suggestion, Profile]]:
        """Up to three people for the member to meet, best first, with the reasons; people they already
        asked are left out. Empty when nobody fits."""
        asker = await self._asker(guild_id, user_id)
        index = await self._index(guild_id)
        now = self._clock.now()
        async with self.store.storage.read() as tx:
            asked = {r.target_id for r in await MatchStore.open_requests_by(tx, guild_id, user_id, now)}
        # Who the asker met or declined, read fresh: the index's copy of the whole server's history may be
        # a moment old (being read again after a round, in _refresh_history).
        mine = await self._history(guild_id, await self.store.settings(guild_id), now, only=(user_id,))
        kept_apart = mine.met.get(user_id, frozenset()) | mine.declined.get(user_id, frozenset())
        if index.available(user_id) is False:
            raise UserError("match.rule.you_unavailable")
        suggestions = index.suggest(user_id, SUGGESTIONS, exclude=asked | kept_apart)
        # The reasons, from the two members' candidates read fresh (the index keeps none).
        fresh, profiles, _ = await self._candidates(guild_id, [user_id, *(s.user_id for s in suggestions)], now)
        me = fresh.get(user_id)
        found = []
        for suggestion in suggestions:
            profile, other = profiles.get(suggestion.user_id), fresh.get(suggestion.user_id)
            if me is not None and profile is not None and other is not None and profile.active:
                told = in_own_words(reasons(me, other, index.history), asker.interests)
                found.append((replace(suggestion, reasons=told), profile))
        return found

    async def check(self, guild_id: int, requester_id: int, target_id: int) -> tuple[Profile, Profile]:
        """Whether ``requester`` may ask to be introduced to ``target``: the rule, on fresh data."""
        if requester_id == target_id:
            raise UserError("match.rule.self")
        requester = await self._asker(guild_id, requester_id)
        target = await self._intros.profile(guild_id, target_id)
        if target is None or not target.active:
            raise UserError("match.request.no_profile")
        pool = await self.pool(guild_id, only=(requester_id, target_id))
        reason = rules.why_not(pool.candidates[requester_id], pool.candidates[target_id], pool.history)
        if reason in HIDDEN_COMPANY_REASONS and target.company_for(requester_id) is None:
            # Saying "same company" or "on your avoid list" would confirm a company its member keeps for
            # the people they are introduced to; guessing it by trial is exactly what must not work.
            reason = UNAVAILABLE
        if reason is not None:
            raise UserError(reason)
        return requester, target

    # -- requests

    async def request(self, guild_id: int, requester_id: int, target_id: int, note: str) -> MatchRequest:
        note = note.strip()
        if len(note) > NOTE_MAX:
            raise UserError("match.request.note_too_long", limit=NOTE_MAX)
        await self.check(guild_id, requester_id, target_id)
        now = self._clock.now()
        async with self.store.storage.transaction() as tx:
            if await MatchStore.open_between(tx, guild_id, requester_id, target_id, now) is not None:
                raise UserError("match.request.pending")
            if len(await MatchStore.open_requests_by(tx, guild_id, requester_id, now)) >= MAX_OPEN_REQUESTS:
                raise UserError("match.request.too_many", limit=MAX_OPEN_REQUESTS)
            request = await MatchStore.add_request(tx, guild_id, requester_id, target_id,
                                                   note if visible(note) else "", now, now + REQUEST_LIFETIME)
            await OutboxStore.enqueue(tx, REQUEST_JOB, guild_id, f"{REQUEST_JOB}:{request.id}",
                                      {"request": request.id}, due_at=request.expires_at, now=now,
                                      member_id=requester_id)
            # Delivering it is due work too, written with the request: a crash right after this commit
            # leaves a job that puts the request before its target, not an open request nobody received.
            await OutboxStore.enqueue(tx, DELIVER_JOB, guild_id, f"{DELIVER_JOB}:{request.id}",
                                      {"request": request.id}, due_at=now, now=now, member_id=requester_id)
        return request

    async def get_request(self, request_id: int) -> MatchRequest | None:
        return await self.store.request(request_id)

    async def delivering(self, request_id: int, channel_id: int) -> None:
        """The request is about to be sent in ``channel_id``: recorded first, so a retry looks there."""
        await self.store.set_delivery_channel(request_id, channel_id)

    async def delivered(self, request_id: int, channel_id: int, message_id: int) -> None:
        await self.store.set_delivery(request_id, channel_id, message_id)

    async def answer_request(self, request_id: int, user_id: int, accept: bool) -> MatchRequest:
        """The target's answer, once; anyone else, or a second answer, is told so."""
        now = self._clock.now()
        async with self.store.storage.transaction() as tx:
            row = await MatchStore.request_in(tx, request_id)
            if row is None:
                raise UserError("match.request.gone")
            if row.target_id != user_id:
                raise UserError("match.request.not_yours")
            state = RequestState.ACCEPTED if accept else RequestState.DECLINED
            if not await MatchStore.answer_request(tx, request_id, state, now):
                raise UserError("match.request.closed")
            request = replace(row, state=state, answered_at=now)
            if accept:
                # The introduction thread is due work: made exactly once, also if Discord fails or the bot
                # stops right after this answer is stored.
                await OutboxStore.enqueue(tx, INTRODUCE_JOB, request.guild_id, f"{INTRODUCE_JOB}:{request.id}",
                                          {"request": request.id}, due_at=now, now=now)
        self.history_changed(request.guild_id)
        return request

    async def withdraw(self, request_id: int) -> None:
        """Forget a request that could not be put before its target (nobody was asked anything)."""
        await self.store.delete_request(request_id)

    async def introduced(self, request_id: int, thread_id: int) -> None:
        await self.store.set_request_thread(request_id, thread_id)

    async def expire(self, request_id: int) -> MatchRequest | None:
        """The request, now expired; None when it was answered (or erased) first."""
        now = self._clock.now()
        async with self.store.storage.transaction() as tx:
            request = await MatchStore.request_in(tx, request_id)
            if request is None or not await MatchStore.expire_request(tx, request_id, now):
                return None
        return replace(request, state=RequestState.EXPIRED, answered_at=now)

    # -- members' own choices

    async def member(self, guild_id: int, user_id: int) -> MatchMember:
        return await self.store.member(guild_id, user_id)

    async def _change_member(self, guild_id: int, user_id: int, *, joined: bool | None = None,
                             paused_until: datetime | bool | None = False, auto_paused: bool | None = None,
                             joined_at: datetime | None = None) -> MatchMember:
        """Change what is given (``paused_until=False``: keep it) in one transaction."""
        now = self._clock.now()
        async with self.store.storage.transaction() as tx:
            member = await MatchStore.current_member(tx, guild_id, user_id)
            member = MatchMember(
                guild_id, user_id, member.joined if joined is None else joined,
                member.paused_until if isinstance(paused_until, bool) else paused_until,
                member.auto_paused if auto_paused is None else auto_paused,
                member.joined_at if joined_at is None else joined_at)
            await MatchStore.write_member(tx, member, now)
        self.changed(guild_id, user_id)
        return member

    async def join(self, guild_id: int, user_id: int) -> MatchMember:
        """Take part in rounds; a pause (set by the member or for unanswered follow-ups) ends."""
        await self._asker(guild_id, user_id)
        return await self._change_member(guild_id, user_id, joined=True, paused_until=None, auto_paused=False,
                                         joined_at=self._clock.now())

    async def leave(self, guild_id: int, user_id: int) -> MatchMember:
        return await self._change_member(guild_id, user_id, joined=False)

    async def pause(self, guild_id: int, user_id: int, weeks: int) -> MatchMember:
        if weeks not in PAUSE_WEEKS:
            raise UserError("match.pause.range", low=PAUSE_WEEKS.start, high=PAUSE_WEEKS.stop - 1)
        until = self._clock.now() + timedelta(weeks=weeks)
        member = await self._change_member(guild_id, user_id, paused_until=until)
        if guild_id in self._indexes:
            self._pauses.setdefault(guild_id, {})[user_id] = until   # back in suggestions once it ends
        return member

    async def avoided(self, guild_id: int, user_id: int) -> list[AvoidedCompany]:
        return await self.store.avoided(guild_id, user_id)

    async def avoid(self, guild_id: int, user_id: int, company: str) -> tuple[AvoidedCompany, bool]:
        """Add a company to the member's private avoid list; whether it was new."""
        name = company.strip()
        if len(name) > COMPANY_MAX:
            raise UserError("match.avoid.too_long", limit=COMPANY_MAX)
        key = companies.company_key(name)
        if not key:
            raise UserError("match.avoid.empty")
        entry = AvoidedCompany(key, name)
        async with self.store.storage.transaction() as tx:
            if await MatchStore.count_avoided(tx, guild_id, user_id) >= MAX_AVOIDED:
                raise UserError("match.avoid.too_many", limit=MAX_AVOIDED)
            added = await MatchStore.add_avoided(tx, guild_id, user_id, entry, self._clock.now())
        self.changed(guild_id, user_id)
        return entry, added

    async def unavoid(self, guild_id: int, user_id: int, company: str) -> AvoidedCompany | None:
        """Remove a company from the list, however it is spelled; the entry removed, if any."""
        if len(company) > COMPANY_MAX:
            raise UserError("match.avoid.too_long", limit=COMPANY_MAX)
        aliases = await self._intros.alias_map(guild_id)
        key = companies.company_key(company)
        wanted = aliases.get(key, key)
        async with self.store.storage.transaction() as tx:
            # Every spelling of that company goes ("Sony" and "ソニー" once an alias joins them), together.
            gone = [entry for entry in await MatchStore.current_avoided(tx, guild_id, user_id)
                    if aliases.get(entry.company_key, entry.company_key) == wanted]
            await MatchStore.remove_avoided(tx, guild_id, user_id, [entry.company_key for entry in gone],
                                            self._clock.now())
        if not gone:
            return None
        self.changed(guild_id, user_id)
        return gone[0]

    async def known_companies(self, guild_id: int, user_id: int, typed: str) -> list[str]:
        """Company names for autocomplete: the member's own avoid list, and companies members show to
        everyone (a company kept for matches is never offered, so autocomplete cannot reveal it)."""
        folded = fold(typed)
        names: dict[str, str] = {}
        for entry in await self.store.avoided(guild_id, user_id):
            names.setdefault(entry.company_key, entry.company)
        for profile in await self._intros.active_profiles(guild_id):
            if profile.company_for(None) is not None and profile.user_id != user_id:
                names.setdefault(profile.company_key, profile.company)
        matching = sorted((n for n in names.values() if folded in fold(n)),
                          key=lambda n: (not fold(n).startswith(folded), n.casefold()))
        return [shorten(name, COMPANY_MAX) for name in matching[:AUTOCOMPLETE]]

    # -- settings

    async def next_round(self, guild_id: int) -> tuple[RoundSettings, str, datetime | None]:
        settings = await self.store.settings(guild_id)
        timezone = (await self._guilds.settings(guild_id)).timezone_name
        return settings, timezone, schedule.next_round(settings, ZoneInfo(timezone), self._clock.now())

    async def set_rounds(self, guild_id: int, cadence: str | None, weekday: str | None, at: str | None,
                         enabled: bool | None, *, no_repeat_rounds: int | None = None,
                         follow_up_days: int | None = None,
                         actor_id: int) -> tuple[Change, RoundSettings, datetime | None]:
        """Change what is given, keep the rest. Rounds switched on (or moved) start with the next slot."""
        if no_repeat_rounds is not None and no_repeat_rounds not in NO_REPEAT_ROUNDS:
            raise UserError("match.rounds.bad_repeat", low=NO_REPEAT_ROUNDS.start, high=NO_REPEAT_ROUNDS.stop - 1)
        if follow_up_days is not None and follow_up_days not in FOLLOW_UP_DAYS:
            raise UserError("match.rounds.bad_follow_up", low=FOLLOW_UP_DAYS.start, high=FOLLOW_UP_DAYS.stop - 1)
        try:
            new_cadence = None if cadence is None else Cadence(cadence)
        except ValueError:
            raise UserError("errors.bad_value") from None
        day = None if weekday is None else parse_weekday(weekday)
        clock_time = None if at is None else parse_time(at).strftime("%H:%M")
        timezone = (await self._guilds.settings(guild_id)).timezone_name
        zone = ZoneInfo(timezone)
        now = self._clock.now()
        latest = await self.store.latest_round(guild_id)
        async with self.store.storage.transaction() as tx:
            old = await MatchStore.current_settings(tx, guild_id)
            new = replace(old, cadence=new_cadence or old.cadence, weekday=old.weekday if day is None else day,
                          time=clock_time or old.time, enabled=old.enabled if enabled is None else enabled,
                          no_repeat_rounds=no_repeat_rounds or old.no_repeat_rounds,
                          follow_up_days=follow_up_days or old.follow_up_days)
            change = Change(ROUNDS_SETTING, rounds_value(old), rounds_value(new))
            if change.changed:
                if new.enabled:
                    # The slot that just passed is not a round's: only slots after the change are. It is kept
                    # from running, and no more: counted from it, a longer cadence's gap would skip the coming
                    # slot too.
                    opened = replace(new, last_slot=None)
                    passed = schedule.due_round(opened, zone, now)
                    coming = schedule.next_round(opened, zone, now)
                    if passed is not None and coming is not None:
                        passed = min(passed, coming - schedule.MIN_GAPS[new.cadence])
                    # A slot that had its round (made then, or by hand in its stead) keeps its gap.
                    if old.last_slot is not None and latest is not None \
                            and latest.created_at >= old.last_slot - schedule.PERIODS[old.cadence] / 2:
                        passed = old.last_slot if passed is None else max(passed, old.last_slot)
                    new = replace(new, last_slot=passed)
                await MatchStore.write_settings(tx, new, now)
                await guild_store.record_change(tx, guild_id, actor_id, change, now)
        return change, new, schedule.next_round(new, zone, now)

    # -- rounds

    async def round_pool(self, guild_id: int) -> tuple[Pool, list[Candidate]]:
        """The server's pool, and the candidates of members who take part in rounds now."""
        pool = await self.pool(guild_id)
        taking_part = [c for user_id, c in pool.candidates.items()
                       if pool.members.get(user_id, MatchMember(guild_id, user_id)).joined and c.available]
        return pool, taking_part

    async def preview(self, guild_id: int) -> Preview:
        """What a round would do now, contacting no one (in the worker when there is one)."""
        if self._worker is None:
            return await self._preview(guild_id)
        self._planning += 1
        try:
            return await self._worker.run(preview_round, ServerOrder(self.store.storage.target, guild_id,
                                                                      self._clock.now()))
        finally:
            self._planning -= 1

    async def _preview(self, guild_id: int) -> Preview:
        pool, taking_part = await self.round_pool(guild_id)
        plan = await self._plan(taking_part, pool.history)
        return Preview(PlanFigures.of(plan), len(taking_part),
                       {user: pool.profiles[user].display_name for user in plan.left_out if user in pool.profiles})

    @property
    def planning(self) -> bool:
        """Whether a round is being planned (or waits to be) right now."""
        return self._planning > 0

    def building_index(self, guild_id: int) -> bool:
        """Whether the server's suggestion index is being built right now."""
        return guild_id in self._building

    def round_running(self, guild_id: int) -> bool:
        """Whether this process is making a round for the server right now."""
        lock = self._round_locks.get(guild_id)
        return lock is not None and lock.locked()

    async def run_round(self, guild_id: int, slot: datetime) -> RoundOutcome | None:
        """Make the scheduled round for ``slot``; None if it was made already, or if a round was made since
        the slot came (by hand: it took this one's place), or if another round was stored while this one
        was planned. Waits for a round of the server being made right now."""
        async with self._round_locks.setdefault(guild_id, asyncio.Lock()):
            return await self._round(guild_id, slot, scheduled=True)

    async def run_round_now(self, guild_id: int) -> RoundOutcome | None:
        """A round made by an admin now (``/rounds run``). It takes the place of the scheduled round that
        is due or less than half a period away (``schedule.replaced_slot``), so the schedule does not make
        another right after it. None if another round was stored while this one was planned; refused when
        a round of the server is being made right now."""
        lock = self._round_locks.setdefault(guild_id, asyncio.Lock())
        if lock.locked():
            raise UserError("match.rounds.running")
        async with lock:
            return await self._round(guild_id, self._clock.now().replace(microsecond=0), scheduled=False)

    async def _round(self, guild_id: int, slot: datetime, *, scheduled: bool) -> RoundOutcome | None:
        """The round made, in the worker when there is one; what this process keeps about the server's
        members brought up to date after it."""
        self._planning += 1
        try:
            if self._worker is None:
                outcome = await self._make_round(guild_id, slot, scheduled=scheduled)
            else:
                order = RoundOrder(self.store.storage.target, guild_id, slot, self._clock.now(), scheduled)
                outcome = await self._worker.run(make_round, order)
        finally:
            self._planning -= 1
        if outcome is None:
            return None
        self.history_changed(guild_id)
        for user_id in outcome.paused:
            self.changed(guild_id, user_id)
        log.info("Round %s of guild %s: %d members, %d groups; pool read in %.1f s, planned in %.1f s, "
                 "stored in %.1f s%s", outcome.round_id, guild_id, outcome.members, outcome.plan.groups,
                 *outcome.seconds, "" if self._worker is None else " (in the round worker)")
        return outcome

    async def _make_round(self, guild_id: int, slot: datetime, *, scheduled: bool) -> RoundOutcome | None:
        """The round, stored with all the work it starts (threads, follow-ups, telling those left out) and,
        for a round by hand, the schedule's move, in one transaction."""
        now = self._clock.now()
        loop = asyncio.get_running_loop()
        began = loop.time()
        # Read before the history the plan uses: a round stored after this read makes the plan stale, and
        # the round chain (UNIQUE (guild_id, previous_round_id)) then refuses to store it.
        latest = await self.store.latest_round(guild_id)
        if scheduled and latest is not None and latest.created_at >= slot:
            return None  # this slot's round, or one made by hand since the slot came
        previous_round_id = 0 if latest is None else latest.id
        zone = ZoneInfo((await self._guilds.settings(guild_id)).timezone_name)
        settings = await self.store.settings(guild_id)
        silent = await self.store.unanswered_streaks(guild_id, UNANSWERED_ROUNDS)
        pool, taking_part = await self.round_pool(guild_id)
        paused = tuple(sorted(c.user_id for c in taking_part if c.user_id in silent))
        taking_part = [c for c in taking_part if c.user_id not in silent]
        read = loop.time()
        plan = await self._plan(taking_part, pool.history)
        planned = loop.time()
        companies_of = {c.user_id: c.company for c in taking_part}
        async with self.store.storage.transaction() as tx:
            saved = await MatchStore.save_round(tx, guild_id, slot, now, len(taking_part), plan, companies_of,
                                                previous_round_id=previous_round_id)
            if saved is None:
                return None
            round_id, group_ids = saved
            replaced = None
            if not scheduled:
                current = await MatchStore.current_settings(tx, guild_id)
                replaced = schedule.replaced_slot(current, zone, now)
                if replaced is not None:
                    await MatchStore.write_settings(tx, replace(current, last_slot=replaced), now)
            # Delivery is chosen when it begins (the room for threads is Discord's, at that moment); each
            # group's follow-up is due work from now on.
            await OutboxStore.enqueue(tx, DELIVERY_JOB, guild_id, f"{DELIVERY_JOB}:{round_id}", {"round": round_id},
                                      due_at=now, now=now)
            follow_up = now + timedelta(days=settings.follow_up_days)
            await OutboxStore.enqueue_many(tx, (
                NewJob(FOLLOW_UP_JOB, guild_id, f"{FOLLOW_UP_JOB}:{group_id}", {"group": group_id}, follow_up)
                for group_id in group_ids), now=now)
            await OutboxStore.enqueue_many(tx, (
                NewJob(LEFT_OUT_JOB, guild_id, f"{LEFT_OUT_JOB}:{round_id}:{user_id}",
                       {"user": user_id, "reason": why.value}, now, member_id=user_id)
                for user_id, why in sorted(plan.left_out.items())), now=now)
            for user_id in paused:
                member = replace(await MatchStore.current_member(tx, guild_id, user_id), auto_paused=True)
                await MatchStore.write_member(tx, member, now)
                await OutboxStore.enqueue(tx, PAUSED_JOB, guild_id, f"{PAUSED_JOB}:{round_id}:{user_id}",
                                          {"user": user_id}, due_at=now, now=now, member_id=user_id)
        return RoundOutcome(round_id, PlanFigures.of(plan), len(taking_part), paused, replaced,
                            (read - began, planned - read, loop.time() - planned))

    async def materialise_due(self, now: datetime, shards: Shards = EVERY) -> None:
        """Turn each server's (of ``shards``) due round slot into a round job, once."""
        for settings in await self.store.scheduled(shards):
            try:
                await self._materialise(settings, now)
            except Exception:
                # One server's fault must not stop the others' rounds.
                log.exception("Could not schedule the round of guild %s", settings.guild_id)

    async def _materialise(self, settings: RoundSettings, now: datetime) -> None:
        timezone = (await self._guilds.settings(settings.guild_id)).timezone_name
        slot = schedule.due_round(settings, ZoneInfo(timezone), now)
        if slot is None:
            return
        async with self.store.storage.transaction() as tx:
            current = await MatchStore.current_settings(tx, settings.guild_id)
            if current.last_slot is not None and current.last_slot >= slot:
                return
            await MatchStore.write_settings(tx, replace(current, last_slot=slot), now)
            await OutboxStore.enqueue(tx, ROUND_JOB, settings.guild_id,
                                      f"{ROUND_JOB}:{settings.guild_id}:{to_text(slot)}",
                                      {"slot": to_text(slot)}, due_at=now, now=now)

    # -- delivering a round (decisions in bot/matching/delivery.py; the cog carries them out)

    async def begin_delivery(self, guild_id: int, round_id: int, present: Iterable[int],
                             active_threads: int | None) -> DeliveryStart | None:
        """Choose how each group of the round is introduced, once, and queue the groups' jobs (in the
        worker when there is one: a round of 100,000 members has some 50,000 groups to read and write).

        ``present`` is the server's members now; ``active_threads`` is how many active threads Discord
        listed (None: the matches channel cannot be used, so no thread at all). Members who left are taken
        out; a member left alone joins another pair of the round where the rule allows, else is told. None
        when the round's delivery had begun already."""
        if self._worker is None:
            started = await self._begin_delivery(guild_id, round_id, frozenset(present), active_threads)
        else:
            # The set the round's members are looked up in is made in the worker: here, the ids are only read.
            order = DeliveryOrder(self.store.storage.target, guild_id, round_id, self._clock.now(),
                                  array("q", present), active_threads)
            started = await self._worker.run(begin_delivery, order)
        if started is not None and (started.moved or started.left):
            self.history_changed(guild_id)
        return started

    async def _begin_delivery(self, guild_id: int, round_id: int, present: Collection[int],
                              active_threads: int | None) -> DeliveryStart | None:
        now = self._clock.now()
        room = 0 if active_threads is None else delivery.thread_room(active_threads)
        async with self.store.storage.read() as tx:
            planned = await MatchStore.planned_groups(tx, round_id)
        here = {user for group in planned for user in group.members if user in present}
        fits = await self._fits(guild_id, planned, here)
        regrouped = delivery.regroup(planned, here, fits)
        ways = delivery.choose_ways(regrouped.groups, await self.store.dms_closed(guild_id), room)
        threads = sum(1 for way in ways.values() if way is Way.THREAD)
        async with self.store.storage.transaction() as tx:
            if not await MatchStore.start_delivery(tx, round_id, room, max(0, room - threads), now):
                return None
            for group_id, gone in regrouped.left.items():
                for user_id in gone:
                    await MatchStore.mark_unreached(tx, group_id, user_id, Unreached.LEFT)
            for group_id in regrouped.cancelled:
                await MatchStore.cancel_group(tx, group_id, Ended.LEFT)
            old_group = {user: group.id for group in planned for user in group.members}
            for user_id, group_id in regrouped.moved_to.items():
                await MatchStore.move_member(tx, user_id, old_group[user_id], group_id)
            order = delivery.interleaved(regrouped.groups, ways)
            await MatchStore.set_ways(tx, {group.id: ways[group.id] for group in order})
            await OutboxStore.enqueue_many(tx, (NewJob(THREAD_JOB, guild_id, f"{THREAD_JOB}:{group.id}",
                                                       {"group": group.id}, now) for group in order), now=now)
            for user_id in regrouped.alone:
                await OutboxStore.enqueue(tx, LEFT_OUT_JOB, guild_id, f"{LEFT_OUT_JOB}:{round_id}:{user_id}",
                                          {"user": user_id, "reason": LeftOut.PARTNER_LEFT.value}, due_at=now,
                                          now=now, member_id=user_id)
            await self._finish_if_done(tx, guild_id, round_id, now)
        return DeliveryStart(round_id, room, threads, len(ways) - threads, len(regrouped.cancelled),
                             len(regrouped.moved_to), len(regrouped.alone),
                             sum(len(gone) for gone in regrouped.left.values()))

    async def _fits(self, guild_id: int, planned: list[PlannedGroup],
                    here: set[int]) -> Callable[[int, tuple[int, ...]], bool]:
        """The rule, on fresh data, for members left alone and the pairs they might join."""
        alone = [user for group in planned for user in group.members
                 if user in here and sum(1 for other in group.members if other in here) == 1]
        if not alone:
            return lambda user, members: False
        pairs = [group.members for group in planned
                 if len(group.members) == 2 and all(user in here for user in group.members)][:REGROUP_CANDIDATES]
        pool = await self.pool(guild_id, only={*alone, *(user for pair in pairs for user in pair)})

        def fits(user: int, members: tuple[int, ...]) -> bool:
            me = pool.candidates.get(user)
            return me is not None and all(
                other in pool.candidates and rules.why_not(me, pool.candidates[other], pool.history) is None
                for other in members)
        return fits

    async def _finish_if_done(self, tx: Transaction, guild_id: int, round_id: int, now: datetime) -> bool:
        """Once the round's last group is done, its summary is due (once: the round is marked first)."""
        if not await MatchStore.finish_round(tx, round_id, now):
            return False
        await OutboxStore.enqueue(tx, SUMMARY_JOB, guild_id, f"{SUMMARY_JOB}:{round_id}", {"round": round_id},
                                  due_at=now, now=now)
        return True

    async def threads_exhausted(self, round_id: int) -> int:
        """Discord refused a thread (its cap, or a permission): the round's other groups go by DM."""
        return await self.store.threads_exhausted(round_id)

    async def take_spare_thread(self, round_id: int) -> bool:
        return await self.store.take_spare_thread(round_id)

    async def set_way(self, group_id: int, way: Way) -> None:
        await self.store.set_group_way(group_id, way)

    async def reached(self, guild_id: int, group_id: int, user_id: int, way: Way) -> None:
        await self.store.reached(group_id, user_id, way)
        if way is Way.DM:
            await self.store.set_dms_closed(guild_id, user_id, None)

    async def unreached(self, guild_id: int, group_id: int, user_id: int, why: Unreached) -> None:
        await self.store.unreached(group_id, user_id, why)
        if why is Unreached.DMS_CLOSED:
            await self.store.set_dms_closed(guild_id, user_id, self._clock.now())

    async def group_done(self, group: GroupRecord, state: GroupState, way: Way | None,
                         ended: Ended | None = None) -> None:
        """The group's delivery is over: introduced (``way``), or ended without an introduction."""
        now = self._clock.now()
        async with self.store.storage.transaction() as tx:
            if state is GroupState.DELIVERED and way is not None:
                await MatchStore.deliver_group(tx, group.id, way, now)
            else:
                await MatchStore.cancel_group(tx, group.id, ended or Ended.UNREACHED)
            await self._finish_if_done(tx, group.guild_id, group.round_id, now)
        if state is not GroupState.DELIVERED:
            self.history_changed(group.guild_id)

    async def progress(self, round_id: int) -> Progress:
        return await self.store.progress(round_id)

    async def spare_threads(self, round_id: int) -> int:
        return await self.store.spare_threads(round_id)

    async def archive_later(self, guild_id: int, group_id: int) -> None:
        """The group's thread is archived a week after its follow-up, if nobody answered it by then."""
        now = self._clock.now()
        async with self.store.storage.transaction() as tx:
            await OutboxStore.enqueue(tx, ARCHIVE_JOB, guild_id, f"{ARCHIVE_JOB}:{group_id}", {"group": group_id},
                                      due_at=now + ARCHIVE_AFTER, now=now)

    async def group(self, group_id: int) -> GroupRecord | None:
        return await self.store.group(group_id)

    async def group_channel(self, group_id: int, channel_id: int) -> None:
        await self.store.set_group_channel(group_id, channel_id)

    async def group_thread(self, group_id: int, thread_id: int) -> None:
        await self.store.set_group_thread(group_id, thread_id)

    async def followed_up(self, group_id: int) -> bool:
        return await self.store.mark_followed_up(group_id, self._clock.now())

    async def answer_follow_up(self, group_id: int, user_id: int, answer: Answer) -> GroupRecord:
        """The member's answer; the group as it now stands (its thread is archived once all answered)."""
        if not await self.store.answer(group_id, user_id, answer, self._clock.now()):
            raise UserError("match.follow_up.not_yours")
        group = await self.store.group(group_id)
        assert group is not None
        return group

    async def everyone_answered(self, group_id: int) -> bool:
        return await self.store.everyone_answered(group_id)

    async def stats(self, guild_id: int) -> RoundStats:
        stats = await self.store.stats(guild_id)
        latest = await self.store.latest_round(guild_id)
        return stats if latest is None else replace(stats, last=await self.store.progress(latest.id))
