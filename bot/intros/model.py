"""Introductions as plain, frozen data: profiles, members' progress, a server's settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

WELCOME_JOB: Final = "intro.welcome"
NUDGE_JOB: Final = "intro.nudge"
PURGE_JOB: Final = "intro.purge"
REPLY_CLEANUP_JOB: Final = "intro.reply_cleanup"

# What a member may say they speak; "other" stands for any third language.
PROFILE_LANGUAGES: Final = ("ja", "en", "other")

# The modal's first step, then its second (Discord allows five fields a modal).
ABOUT_FIELDS: Final = ("display_name", "company", "role", "industry", "location")
MORE_FIELDS: Final = ("timezone", "interests", "offer", "seek", "bio")
TEXT_FIELDS: Final = ABOUT_FIELDS + MORE_FIELDS


class Visibility(StrEnum):
    """Who sees a member's company: everyone, or only people they are introduced to."""

    EVERYONE = "everyone"
    MATCHES = "matches"


class WelcomeMode(StrEnum):
    """Where a new member is welcomed: in the welcome channel, by DM, or not at all."""

    CHANNEL = "channel"
    DM = "dm"
    OFF = "off"


@dataclass(frozen=True)
class MessageRef:
    channel_id: int
    message_id: int

    def link(self, guild_id: int) -> str:
        return f"https://discord.com/channels/{guild_id}/{self.channel_id}/{self.message_id}"


@dataclass(frozen=True)
class Profile:
    guild_id: int
    user_id: int
    display_name: str
    company: str
    company_key: str
    role: str = ""
    industry: str = ""
    location: str = ""
    timezone: str | None = None
    languages: tuple[str, ...] = ("en",)
    interests: tuple[str, ...] = ()
    offer: str = ""
    seek: str = ""
    bio: str = ""
    visibility: Visibility = Visibility.EVERYONE
    open_to_intros: bool = True
    active: bool = True
    card: MessageRef | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def has_more(self) -> bool:
        """Whether anything of the modal's second step is filled in."""
        return any((self.timezone, self.interests, self.offer, self.seek, self.bio))

    def company_for(self, viewer_id: int | None) -> str | None:
        """The company as ``viewer_id`` may see it (None: a public place such as the introductions
        channel); None when the member keeps it for people they are introduced to."""
        if self.visibility is Visibility.EVERYONE or viewer_id == self.user_id:
            return self.company
        return None


@dataclass(frozen=True)
class About:
    """The modal's first step, as typed."""

    display_name: str
    company: str
    role: str = ""
    industry: str = ""
    location: str = ""


@dataclass(frozen=True)
class More:
    """The modal's second step, as typed."""

    timezone: str = ""
    interests: str = ""
    offer: str = ""
    seek: str = ""
    bio: str = ""


@dataclass(frozen=True)
class MemberRecord:
    """A member's time in a server as the bot saw it."""

    guild_id: int
    user_id: int
    joined_at: datetime | None = None
    left_at: datetime | None = None
    introduced_at: datetime | None = None
    intro_message: MessageRef | None = None
    nudged_at: datetime | None = None
    draft: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    offered_at: datetime | None = None


@dataclass(frozen=True)
class StoredPresence:
    """Who a server's stored data says is there (a member's row not marked left, or an active profile) and who
    it says has left (a member's row marked left); a member in both is set right by whichever holds now."""

    present: frozenset[int]
    left: frozenset[int]


@dataclass(frozen=True)
class Reconciled:
    """What comparing the stored members with a server's complete member list found: who left and who came
    back while the bot was not watching (each handled as the leave or return the bot would have seen)."""

    departed: tuple[int, ...] = ()
    returned: tuple[int, ...] = ()


@dataclass(frozen=True)
class IntroSettings:
    guild_id: int
    welcome: WelcomeMode = WelcomeMode.CHANNEL
    reminders_enabled: bool = False
    reminder_days: int = 3


@dataclass(frozen=True)
class Alias:
    alias: str
    company: str
    alias_key: str
    company_key: str


@dataclass(frozen=True)
class IntroMessage:
    """What a message in the introductions channel did: whether it was the one that counts (react to
    it), and the draft to offer as a profile when the member has none yet (offered once)."""

    counted: bool
    offer: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Forgotten:
    """What erasing a member's data left to undo on Discord: their card, and bot replies to them."""

    card: MessageRef | None
    replies: tuple[MessageRef, ...] = ()


@dataclass(frozen=True)
class IntroStats:
    members: int          # members the bot counts as present (see IntroService.stats)
    introduced: int
    by_industry: tuple[tuple[str, int], ...]
    no_industry: int
    companies: int
