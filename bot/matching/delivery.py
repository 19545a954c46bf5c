"""How a round's groups reach their members: decisions on plain facts, which the glue carries out.

A Discord server holds at most 1,000 active threads, prompt and request
threads included, and past that refuses another with 160006. So threads are a
budget: a round spends the room the server has when its delivery starts, less
a margin kept for the week's prompt and request threads, on the groups that
need a thread most (members whose DMs are closed), and introduces the rest by
direct message: each member gets the others' cards and mentions. When Discord
refuses a thread anyway (the cap reached meanwhile, or a permission missing),
that group goes by DM at once and no thread is tried again in the round.

A member who left before their group was introduced is not waited for: the
group goes on with the others, and someone left alone is placed in another
group of the round where the rule lets them, else told. Nobody is dropped
without a record: each member ends reached (in a thread or by DM) or not
reached, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

THREAD_CAP: Final = 1000       # Discord's limit of active threads in a server
THREAD_MARGIN: Final = 25      # kept free for the prompt and request threads of the week
THREADS_FULL: Final = 160006   # Discord: "Maximum number of active threads reached"
# Discord's answers that say the bot may not do this here; trying again will not help until an admin acts.
NO_PERMISSION: Final = frozenset({50001, 50013})   # Missing Access, Missing Permissions
UNKNOWN_MEMBER: Final = frozenset({10007, 10013})  # Unknown Member, Unknown User
DMS_CLOSED: Final = 50007                          # Cannot send messages to this user


class Way(StrEnum):
    THREAD = "thread"
    DM = "dm"


class GroupState(StrEnum):
    PLANNED = "planned"       # stored, not introduced yet
    DELIVERED = "delivered"   # introduced to at least two of its members (or one, who can write to the other)
    CANCELLED = "cancelled"   # nobody to introduce any more: see Ended


class Ended(StrEnum):
    """Why a group was not introduced."""

    LEFT = "left"             # fewer than two of its members still in the server
    UNREACHED = "unreached"   # none of its members could be reached


class Unreached(StrEnum):
    """Why a member was not reached."""

    LEFT = "left"                 # left the server before their group was introduced
    DMS_CLOSED = "dms_closed"     # a DM was refused and their group had no thread
    NO_ACCESS = "no_access"       # could not be added to the thread, nor reached by DM


@dataclass(frozen=True)
class PlannedGroup:
    """A group as delivery sees it: who is in it, in the round's order."""

    id: int
    members: tuple[int, ...]


@dataclass(frozen=True)
class Regrouping:
    """What departures did to a round's groups before delivery.

    ``groups``: the groups still to introduce, with only members still here (a member left alone was moved
    into ``moved_to``'s group). ``cancelled``: groups with nobody left to introduce. ``alone``: members whose
    partners all left and for whom no other group of the round had room: they are told, and wait for the
    next round. ``left``: members who left, by group.
    """

    groups: tuple[PlannedGroup, ...]
    cancelled: tuple[int, ...]
    moved_to: Mapping[int, int] = field(default_factory=dict)     # member -> the group they joined
    alone: tuple[int, ...] = ()
    left: Mapping[int, tuple[int, ...]] = field(default_factory=dict)


def regroup(groups: Sequence[PlannedGroup], present: Collection[int],
            fits: Callable[[int, tuple[int, ...]], bool]) -> Regrouping:
    """Take out members who are gone; place each member left alone in a pair of the round that stays a
    pair and that ``fits(member, pair)`` allows (the eligibility rule, both ways, with each member), making
    it a trio. A group takes at most one newcomer, so no group grows past three."""
    kept: list[PlannedGroup] = []
    cancelled: list[int] = []
    left: dict[int, tuple[int, ...]] = {}
    alone: list[int] = []
    for group in groups:
        here = tuple(user for user in group.members if user in present)
        gone = tuple(user for user in group.members if user not in present)
        if gone:
            left[group.id] = gone
        if len(here) >= 2:
            kept.append(PlannedGroup(group.id, here))
        else:
            cancelled.append(group.id)
            alone.extend(here)
    moved: dict[int, int] = {}
    open_pairs = [i for i, group in enumerate(kept) if len(group.members) == 2 and group.id not in left]
    unplaced = []
    for user in alone:
        slot = next((i for i in open_pairs if fits(user, kept[i].members)), None)
        if slot is None:
            unplaced.append(user)
            continue
        open_pairs.remove(slot)
        group = kept[slot]
        kept[slot] = PlannedGroup(group.id, (*group.members, user))
        moved[user] = group.id
    return Regrouping(tuple(kept), tuple(cancelled), moved, tuple(unplaced), left)


def thread_room(active_threads: int, *, cap: int = THREAD_CAP, margin: int = THREAD_MARGIN) -> int:
    """How many threads a round may start: the server's room now, less the margin kept for the week."""
    return max(0, cap - margin - active_threads)


def choose_ways(groups: Sequence[PlannedGroup], dms_closed: Collection[int], room: int) -> dict[int, Way]:
    """A thread for as many groups as there is room, groups with more members whose DMs are known to be
    closed first (by DM they would not be reached), then in the round's order; the others by DM."""
    def closed(group: PlannedGroup) -> int:
        return sum(1 for user in group.members if user in dms_closed)

    ranked = sorted(range(len(groups)), key=lambda i: (-closed(groups[i]), i))
    threads = {groups[i].id for i in ranked[:max(0, room)]}
    return {group.id: Way.THREAD if group.id in threads else Way.DM for group in groups}


def interleaved(groups: Sequence[PlannedGroup], ways: Mapping[int, Way]) -> list[PlannedGroup]:
    """The groups in the order to introduce them: threads and DMs spread evenly through the round, so that
    while Discord makes the bot wait to start another thread (a per-channel rate limit), the DMs that need
    no thread go out, instead of all waiting behind the threads."""
    counts = {way: sum(1 for g in groups if ways[g.id] is way) for way in Way}
    seen = dict.fromkeys(Way, 0)
    keyed = []
    for index, group in enumerate(groups):
        way = ways[group.id]
        keyed.append(((seen[way] + 0.5) / counts[way], index, group))
        seen[way] += 1
    return [group for _, _, group in sorted(keyed, key=lambda item: (item[0], item[1]))]


class ThreadRefusal(StrEnum):
    """What a refused thread (create, or adding a member) means for the round."""

    FULL = "full"                   # the server's threads are at the cap: DMs for this group and the rest
    NO_PERMISSION = "no_permission"  # an admin must act: DMs for this group and the rest, admins told once
    RETRY = "retry"                 # anything else (Discord down): the job is tried again later


def thread_refused(code: int, status: int) -> ThreadRefusal:
    if code == THREADS_FULL:
        return ThreadRefusal.FULL
    if code in NO_PERMISSION or status == 403:
        return ThreadRefusal.NO_PERMISSION
    return ThreadRefusal.RETRY


@dataclass(frozen=True)
class DmOutcome:
    """After a group's DMs were tried: whether to open a thread after all (nobody was reached and the round
    still has a spare thread), whom to tell that someone was not reached, and the group's state."""

    use_thread: bool
    tell: tuple[int, ...]
    state: GroupState


def after_dms(reached: Collection[int], unreached: Collection[int], *, spare_threads: int) -> DmOutcome:
    if not reached:
        if spare_threads > 0 and len(unreached) >= 2:
            return DmOutcome(True, (), GroupState.PLANNED)
        return DmOutcome(False, (), GroupState.CANCELLED)
    return DmOutcome(False, tuple(reached) if unreached else (), GroupState.DELIVERED)


@dataclass(frozen=True)
class Progress:
    """A round's delivery so far, for the admin who ran it, the log channel and ``/rounds stats``."""

    round_id: int
    groups: int
    in_threads: int
    by_dm: int
    cancelled: int
    unreached: Mapping[str, int] = field(default_factory=dict)   # Unreached value -> members

    @property
    def done(self) -> int:
        return self.in_threads + self.by_dm + self.cancelled

    @property
    def finished(self) -> bool:
        return self.done >= self.groups

    @property
    def not_reached(self) -> int:
        return sum(self.unreached.values())


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """``▰▰▰▱▱``: how much of the round is delivered, in text (embeds have no progress bar)."""
    filled = width if total <= 0 else min(width, done * width // total)
    return "▰" * filled + "▱" * (width - filled)


def time_left(done: int, total: int, elapsed_seconds: float) -> float | None:
    """Seconds left at the pace so far; None before the first group, when there is no pace yet."""
    if done <= 0 or total <= done:
        return None if done <= 0 else 0.0
    return elapsed_seconds / done * (total - done)
