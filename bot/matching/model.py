"""Matching as plain, frozen data: who can be matched, why a pair fits, what a round decided.

Everything here is free of Discord and SQLite, so the rule, the score and the
pairing are tested on plain data and benchmarked on synthetic communities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from bot.matching.delivery import Ended, GroupState, Progress, Way

REQUEST_JOB: Final = "matching.request_expire"
ROUND_JOB: Final = "matching.round"
THREAD_JOB: Final = "matching.thread"           # a group's introduction (named for its first way, a thread)
DELIVERY_JOB: Final = "matching.round_delivery"  # a round's delivery: the ways chosen, the groups' jobs queued
SUMMARY_JOB: Final = "matching.round_summary"    # a delivered round's summary in the log channel
ARCHIVE_JOB: Final = "matching.archive"          # a round thread archived a week after its follow-up
LEFT_OUT_JOB: Final = "matching.left_out"
FOLLOW_UP_JOB: Final = "matching.follow_up"
PAUSED_JOB: Final = "matching.paused"
INTRODUCE_JOB: Final = "matching.introduce"
DELIVER_JOB: Final = "matching.request_deliver"   # put a stored request before its target (DM or thread)

# Why two members cannot be matched: message keys, checked in this order. Reasons that would
# reveal the other member's private choices (their avoid list, their pause, a decline) share one
# neutral key, so nobody learns them by trying.
SELF: Final = "match.rule.self"
YOU_UNAVAILABLE: Final = "match.rule.you_unavailable"   # the asking member is paused or closed
UNAVAILABLE: Final = "match.rule.unavailable"           # the other member: neutral on purpose
SAME_COMPANY: Final = "match.rule.same_company"
YOU_AVOID: Final = "match.rule.you_avoid"
NO_LANGUAGE: Final = "match.rule.no_language"
MET_RECENTLY: Final = "match.rule.met_recently"

# Why a reason is shown for a pair (keys in data/locales), strongest first in a suggestion.
REASON_INTERESTS: Final = "match.reason.interests"      # topics
REASON_YOU_OFFER: Final = "match.reason.you_offer"      # name, what: they seek what you offer
REASON_THEY_OFFER: Final = "match.reason.they_offer"    # name, what: they offer what you seek
REASON_TIMEZONE: Final = "match.reason.timezone"        # hours
REASON_SAME_TIMEZONE: Final = "match.reason.same_timezone"
REASON_THREAD: Final = "match.reason.thread"


@dataclass(frozen=True)
class Candidate:
    """One member as matching sees them: a profile with aliases applied, and their own choices.

    ``available`` is false when the member's profile is inactive or closed to introductions, or when
    they paused matching; ``company`` is the canonical company key (aliases applied).
    """

    user_id: int
    company: str
    languages: frozenset[str]
    interests: frozenset[str] = frozenset()     # tag keys (terms.tag_key), folded once here
    offers: tuple[str, ...] = ()                # phrases as the member wrote them
    seeks: tuple[str, ...] = ()
    utc_offset: float | None = None             # hours east of UTC, at the time of matching
    avoid: frozenset[str] = frozenset()         # canonical company keys
    available: bool = True


@dataclass(frozen=True)
class History:
    """Pairs the rule keeps apart, each stored both ways (``met[a]`` holds b and ``met[b]`` holds a).

    ``met``: grouped in one of the last N rounds, or introduced by an accepted request.
    ``declined``: a request between them was declined in the last 90 days.
    ``threads``: pairs who both replied in one prompt thread (a bonus, not a rule).
    """

    met: Mapping[int, frozenset[int]] = field(default_factory=lambda: MappingProxyType({}))
    declined: Mapping[int, frozenset[int]] = field(default_factory=lambda: MappingProxyType({}))
    threads: Mapping[int, frozenset[int]] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Reason:
    """A message key and its values; ``name`` in values is filled in by whoever renders it."""

    key: str
    values: Mapping[str, str | int | tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    weight: float = 0.0


@dataclass(frozen=True)
class Suggestion:
    user_id: int
    score: float
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class Group:
    """Two members, or three when the count is odd; ``score`` is the sum over its pairs."""

    members: tuple[int, ...]
    score: float


class LeftOut(StrEnum):
    """Why a member who took part in a round was not placed."""

    NO_PARTNER = "no_partner"   # nobody eligible for them in this round
    NO_GROUP = "no_group"       # eligible partners, all placed with others (or no trio fitted)
    PARTNER_LEFT = "partner_left"   # placed, but the others left the server before the introduction


@dataclass(frozen=True)
class RoundPlan:
    groups: tuple[Group, ...]
    left_out: Mapping[int, LeftOut]
    total: float
    bound: float                 # an upper bound on the best total, so a round reports its quality

    @property
    def placed(self) -> int:
        return sum(len(g.members) for g in self.groups)


class RequestState(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"


class Cadence(StrEnum):
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"


class Answer(StrEnum):
    MET = "met"
    NOT_YET = "not_yet"
    SKIP = "skip"


@dataclass(frozen=True)
class MatchRequest:
    id: int
    guild_id: int
    requester_id: int
    target_id: int
    note: str
    state: RequestState
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None = None
    # Where the request was delivered: a DM channel or a private thread, and the message with its buttons.
    channel_id: int | None = None
    message_id: int | None = None
    thread_id: int | None = None     # the private thread of an accepted request


@dataclass(frozen=True)
class RoundSettings:
    guild_id: int
    enabled: bool = False
    cadence: Cadence = Cadence.WEEKLY
    weekday: int = 0            # Monday
    time: str = "10:00"
    no_repeat_rounds: int = 6
    follow_up_days: int = 5
    last_slot: datetime | None = None   # the latest slot a round was made for, or passed when switched on


@dataclass(frozen=True)
class MatchMember:
    """A member's own matching choices; the defaults stand for a member who never chose anything."""

    guild_id: int
    user_id: int
    joined: bool = False
    paused_until: datetime | None = None
    auto_paused: bool = False
    joined_at: datetime | None = None

    def paused(self, now: datetime) -> bool:
        return self.auto_paused or (self.paused_until is not None and self.paused_until > now)


@dataclass(frozen=True)
class AvoidedCompany:
    company_key: str
    company: str


@dataclass(frozen=True)
class GroupRecord:
    id: int
    round_id: int
    guild_id: int
    members: tuple[int, ...]
    score: float
    channel_id: int | None = None
    thread_id: int | None = None
    followed_up_at: datetime | None = None
    way: Way | None = None                  # None: not chosen yet (or stored before ways existed: a thread)
    state: GroupState = GroupState.PLANNED
    ended: Ended | None = None
    reached: frozenset[int] = frozenset()   # members introduced (in the thread, or by DM)
    unreached: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))  # member -> Unreached


@dataclass(frozen=True)
class LatestRound:
    """A server's newest round: the one a new round follows, and when it was made."""

    id: int
    created_at: datetime


@dataclass(frozen=True)
class RoundStats:
    rounds: int
    groups: int
    meetings: int            # groups in which at least one member answered "We met"
    bridged: int             # distinct pairs of companies put together in a group
    last: Progress | None = None   # the latest round's delivery


@dataclass(frozen=True)
class StoredSnapshot:
    """What is said of a server's stored suggestion index beside its bytes (bot/matching/snapshots.py): the
    code's ``format``, the moment the build read the data ``as_of``, how many members it holds, and the
    company aliases it was built with."""

    format: str
    as_of: datetime
    members: int
    aliases: Mapping[str, str]
